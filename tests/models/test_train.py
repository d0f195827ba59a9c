"""Tests for jpegbench.models.training (``jpegbench.models.train``).

Short runs, resume, config validation, test-set guard, shipped weights, colour.

Training runs here are a few steps of a tiny FBCNN on 16x16 patches of
synthetic images, so the file runs in seconds on one CPU thread.
"""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from jpegbench._lock import DirLock
from jpegbench.codec import jpeg_roundtrip, write_png
from jpegbench.errors import ConfigError, InputError, LockError
from jpegbench.models.training import LOG_COLUMNS, TrainConfig, check_not_test_data, export_weights, load_config, train
from jpegbench.models.weights import SHIPPED_WEIGHTS, load_checkpoint, load_model, save_checkpoint, shipped_weights_dir

from .conftest import make_image

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.fixture
def image_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "clean"
    folder.mkdir()
    for i in range(5):
        write_png(folder / f"img{i}.png", make_image(40, 48, seed=i))
    return folder


@pytest.fixture
def rgb_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "clean_rgb"
    folder.mkdir()
    for i in range(5):
        write_png(folder / f"img{i}.png", make_image(40, 48, color="rgb", seed=i))
    return folder


def tiny_config(image_dir: Path, **changes) -> TrainConfig:
    base = dict(
        name="tiny",
        nc=(8, 16, 16, 16),
        nb=1,
        train_dir=str(image_dir),
        val_count=1,
        patch_size=16,
        batch_size=2,
        steps=6,
        lr=1e-3,
        milestones=(4,),
        log_every=1,
        val_every=3,
        checkpoint_every=2,
        val_qfs=(20,),
        val_crop=0,
        num_threads=1,
    )
    base.update(changes)
    return TrainConfig(**base)


def read_log(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def total_variation(x: np.ndarray) -> float:
    x = x.astype(np.float64)
    return float(np.abs(np.diff(x, axis=0)).mean() + np.abs(np.diff(x, axis=1)).mean())


# -- smoke: a short run writes its outputs ------------------------------------------


def test_short_run_writes_log_checkpoints_and_plot(image_dir, tmp_path):
    out = tmp_path / "run"
    result = train(tiny_config(image_dir), out, progress=False, device="cpu")
    assert result["step"] == 6
    umask = os.umask(0)
    os.umask(umask)
    for name in ("last.pt", "best.pt", "log.csv", "curves.png"):
        assert (out / name).is_file(), name
        # ordinary files, as open() would make them (mkstemp's owner-only 0600 was a bug)
        assert (out / name).stat().st_mode & 0o777 == 0o666 & ~umask, name
    assert not list(out.glob(".*.part")) and not (out / ".lock").exists()
    rows = read_log(out / "log.csv")
    assert tuple(rows[0]) == LOG_COLUMNS
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert [bool(r["val_psnr"]) for r in rows] == [False, False, True, False, False, True]
    assert float(rows[-1]["lr"]) == pytest.approx(1e-3 * 0.5)  # MultiStep milestone at step 4
    assert result["best_val_psnr"] == pytest.approx(max(float(r["val_psnr"]) for r in rows if r["val_psnr"]), abs=1e-4)
    model = load_model(out / "best.pt", device="cpu")  # best.pt is a plain jpegbench checkpoint
    assert model.config["nc"] == [8, 16, 16, 16]
    assert model.checkpoint_meta["steps"] == result["best_step"]
    assert model.checkpoint_meta["train_config"]["data"]["patch_size"] == 16


def test_loss_goes_down_on_a_fixed_batch(image_dir, tmp_path):
    # 30 steps at a high lr on one image: the L1 term must drop.
    cfg = tiny_config(image_dir, steps=30, lr=2e-3, milestones=(), val_every=30, checkpoint_every=30, augment=False)
    train(cfg, tmp_path / "run", progress=False, device="cpu")
    l1 = [float(r["l1"]) for r in read_log(tmp_path / "run" / "log.csv")]
    assert np.mean(l1[-5:]) < np.mean(l1[:5])


def test_teacher_forcing_conditions_on_the_true_qf(image_dir, tmp_path, monkeypatch):
    from jpegbench.models.fbcnn import FBCNN

    seen = []
    forward = FBCNN.forward

    def spy(self, x, qf=None):
        seen.append(qf)
        return forward(self, x, qf)

    monkeypatch.setattr(FBCNN, "forward", spy)
    train(tiny_config(image_dir, steps=2, val_every=2, qf_teacher_prob=1.0), tmp_path / "run", progress=False)
    assert seen[0] is not None and seen[0].shape == (2,) and torch.all((seen[0] >= 5) & (seen[0] <= 95))


def test_double_samples_have_no_qf_loss(image_dir, tmp_path):
    cfg = tiny_config(image_dir, degradation="double", shift="nonaligned", steps=2, val_every=2)
    train(cfg, tmp_path / "run", progress=False, device="cpu")
    rows = read_log(tmp_path / "run" / "log.csv")
    assert all(float(r["qf_loss"]) == 0.0 for r in rows)
    assert all(float(r["loss"]) == pytest.approx(float(r["l1"])) for r in rows)


@pytest.mark.parametrize("in_nc", [1, 3])
def test_identity_init_returns_the_input(in_nc):
    from jpegbench.models.fbcnn import FBCNN
    from jpegbench.models.training import identity_init

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = identity_init(FBCNN(in_nc=in_nc, nc=(8, 16, 16, 16), nb=2))
    x = torch.rand(2, in_nc, 24, 40, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        for qf in (None, 10, 90):
            restored, _ = model(x, qf=qf)
            torch.testing.assert_close(restored, x, rtol=0, atol=1e-6)
    restored, _ = model(x)
    restored.abs().mean().backward()
    assert model.m_up1[0].weight.grad.abs().sum() > 0  # the zeroed layers still learn


def test_identity_init_run_starts_at_the_jpeg_psnr(image_dir, tmp_path):
    cfg = tiny_config(image_dir, identity_init=True, lr=1e-6, steps=1, val_every=1, milestones=())
    result = train(cfg, tmp_path / "run", progress=False)
    assert result["val_psnr"]["mean"] == pytest.approx(result["jpeg_psnr"]["mean"], abs=0.05)


# -- resume --------------------------------------------------------------------------


@pytest.mark.parametrize("teacher", [0.0, 0.5])
def test_resume_gives_the_same_result_as_an_uninterrupted_run(image_dir, tmp_path, teacher):
    cfg = tiny_config(image_dir, qf_teacher_prob=teacher, qf_head_lr_mult=3.0)
    full = train(cfg, tmp_path / "full", progress=False, device="cpu")
    part = train(cfg, tmp_path / "split", progress=False, device="cpu", until_step=3)
    assert part["step"] == 3
    state = torch.load(tmp_path / "split" / "last.pt", weights_only=True)
    assert state["training"]["step"] == 3
    resumed = train(cfg, tmp_path / "split", progress=False, device="cpu")
    assert resumed["step"] == full["step"] == 6
    a = load_checkpoint(tmp_path / "full" / "last.pt").state_dict
    b = load_checkpoint(tmp_path / "split" / "last.pt").state_dict
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(read_log(tmp_path / "split" / "log.csv")) == strip(read_log(tmp_path / "full" / "log.csv"))
    assert resumed["best_val_psnr"] == pytest.approx(full["best_val_psnr"])


def test_resume_may_extend_steps_but_not_change_the_recipe(image_dir, tmp_path):
    train(tiny_config(image_dir, steps=2, milestones=()), tmp_path / "run", progress=False, device="cpu")
    more = train(tiny_config(image_dir, steps=4, milestones=()), tmp_path / "run", progress=False, device="cpu")
    assert more["step"] == 4
    with pytest.raises(ConfigError, match=r"data\.patch_size"):
        train(tiny_config(image_dir, steps=6, patch_size=24), tmp_path / "run", progress=False, device="cpu")


def test_no_resume_starts_over(image_dir, tmp_path):
    train(tiny_config(image_dir, steps=4), tmp_path / "run", progress=False, device="cpu")
    train(tiny_config(image_dir, steps=2, milestones=()), tmp_path / "run", resume=False, progress=False, device="cpu")
    assert [int(r["step"]) for r in read_log(tmp_path / "run" / "log.csv")] == [1, 2]


def test_a_huge_training_state_is_refused_before_reading(image_dir, tmp_path):
    from jpegbench.models.weights import DEFAULT_MAX_BYTES

    out = tmp_path / "run"
    train(tiny_config(image_dir, steps=2, milestones=()), out, progress=False, device="cpu")
    with open(out / "last.pt", "r+b") as f:  # sparse: no disk used, and never read
        f.truncate(DEFAULT_MAX_BYTES + 1)
    with pytest.raises(ConfigError, match="over the limit"):
        train(tiny_config(image_dir, steps=4, milestones=()), out, progress=False, device="cpu")
    train(tiny_config(image_dir, steps=2, milestones=()), out, resume=False, progress=False, device="cpu")


def test_a_locked_output_folder_is_refused(image_dir, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    with DirLock(out), pytest.raises(LockError, match="in use by another jpegbench run"):  # held as by a live run
        train(tiny_config(image_dir), out, progress=False, device="cpu")


def test_until_step_out_of_range(image_dir, tmp_path):
    with pytest.raises(InputError, match="until_step"):
        train(tiny_config(image_dir), tmp_path / "run", progress=False, until_step=7)


# -- config validation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"channels": 2}, "model.channels"),
        ({"nc": (8, 16, 16)}, "model.nc"),
        ({"nb": 0}, "model.nb"),
        ({"act_mode": "gelu"}, "model.act_mode"),
        ({"identity_init": 1}, "model.identity_init"),
        ({"init_channel_map": "copy"}, "model.init_channel_map"),
        ({"init_channel_map": "replicate", "channels": 3}, "model.init_channel_map"),  # no init_from
        ({"init_channel_map": "replicate", "init_from": "g.pt"}, "model.init_channel_map"),  # gray model
        ({"init_widen": 2}, "model.init_widen"),  # no init_from
        ({"init_widen": 0, "init_from": "g.pt"}, "model.init_widen"),
        ({"init_widen": 2, "init_from": "g.pt", "channels": 3, "init_channel_map": "replicate"}, "model.init_widen"),
        ({"subsampling": "4:1:1"}, "data.subsampling"),
        ({"patch_size": 20}, "data.patch_size"),
        ({"batch_size": 0}, "data.batch_size"),
        ({"degradation": "triple"}, "data.degradation"),
        ({"qf_range": (50, 10)}, "data.qf_range"),
        ({"qf_range": (0, 10)}, "data.qf_range"),
        ({"qf2_range": (5, 101)}, "data.qf2_range"),
        ({"double_prob": 1.5}, "data.double_prob"),
        ({"shift": "left"}, "data.shift"),
        ({"steps": 0}, "optim.steps"),
        ({"lr": -1.0}, "optim.lr"),
        ({"milestones": (5, 3)}, "optim.milestones"),
        ({"gamma": 0.0}, "optim.gamma"),
        ({"qf_loss_weight": -0.1}, "optim.qf_loss_weight"),
        ({"qf_teacher_prob": 2.0}, "optim.qf_teacher_prob"),
        ({"qf_head_lr_mult": 0}, "optim.qf_head_lr_mult"),
        ({"seed": -1}, "train.seed"),
        ({"val_every": 0}, "train.val_every"),
        ({"val_qfs": (0,)}, "val.val_qfs"),
        ({"val_double": ((10, 30, 50),)}, "val.val_double"),
        ({"val_shift": (8, 0)}, "val.val_shift"),
        ({"val_crop": 100}, "val.val_crop"),
    ],
)
def test_invalid_config_names_the_key(image_dir, change, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        tiny_config(image_dir, **change)


def test_config_from_dict_unknown_and_missing_keys(image_dir):
    good = tiny_config(image_dir).to_dict()
    assert TrainConfig.from_dict(good) == tiny_config(image_dir)
    with pytest.raises(ConfigError, match=r"optim\.learning_rate"):
        TrainConfig.from_dict({**good, "optim": {**good["optim"], "learning_rate": 1e-4}})
    with pytest.raises(ConfigError, match="'epochs'"):
        TrainConfig.from_dict({**good, "epochs": 3})
    with pytest.raises(ConfigError, match=r"data\.train_dir"):
        TrainConfig.from_dict({"model": good["model"]})


def test_config_toml_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(ConfigError, match="bad.toml: invalid TOML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('[data]\ntrain_dir = "x"\npatch_size = 12\n')
    with pytest.raises(ConfigError, match=r"wrong\.toml: .*data\.patch_size"):
        load_config(wrong)
    with pytest.raises(InputError):
        load_config(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "name", ["fbcnn-small-gray", "fbcnn-a-small-gray", "fbcnn-paper-gray", "fbcnn-small-color", "fbcnn-a-small-color"]
)
def test_shipped_configs_are_valid(name):
    cfg = load_config(CONFIGS / f"{name}.toml")
    assert cfg.name == name
    assert TrainConfig.from_dict(cfg.to_dict(), base_dir=cfg.base_dir) == cfg


def test_paper_preset_has_the_paper_width():
    cfg = load_config(CONFIGS / "fbcnn-paper-gray.toml")
    assert (cfg.nc, cfg.nb, cfg.patch_size, cfg.lr) == ((64, 128, 256, 512), 4, 128, 1e-4)


def test_missing_train_dir(tmp_path):
    cfg = TrainConfig(train_dir=str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match=r"data\.train_dir"):
        train(cfg, tmp_path / "run", progress=False)


# -- the test sets are never training data -------------------------------------------------


@pytest.mark.parametrize("folder", ["LIVE1_gray", "live1-copy", "Classic5"])
def test_test_set_folder_names_are_refused(tmp_path, folder):
    src = tmp_path / folder
    src.mkdir()
    for i in range(3):
        write_png(src / f"x{i}.png", make_image(40, 40, seed=i))
    with pytest.raises(ConfigError, match="test set"):
        train(tiny_config(src), tmp_path / "run", progress=False)


@pytest.mark.shared
@pytest.mark.skipif(not (SHARED / "data" / "LIVE1_gray").is_dir(), reason="needs ../shared/data/LIVE1_gray")
def test_live1_images_under_another_name_are_refused(tmp_path):
    src = tmp_path / "clean"
    src.mkdir()
    live1 = sorted((SHARED / "data" / "LIVE1_gray").glob("*.png"))[0]
    shutil.copy(live1, src / "renamed_a.png")  # same bytes, other name
    with pytest.raises(ConfigError, match="bytes equal"):
        check_not_test_data([src / "renamed_a.png"])
    shutil.copy(live1, src / live1.name)  # same name
    with pytest.raises(ConfigError, match="name matches"):
        check_not_test_data([src / live1.name])


@pytest.mark.shared
@pytest.mark.skipif(not (SHARED / "data" / "LIVE1_color").is_dir(), reason="needs ../shared/data/LIVE1_color")
def test_live1_pixels_in_another_file_are_refused(tmp_path):
    from jpegbench.codec import read_image

    live1 = sorted((SHARED / "data" / "LIVE1_color").glob("*.png"))[0]
    gray = read_image(live1, color="gray")
    other = tmp_path / "clean" / "other.png"
    other.parent.mkdir()
    write_png(other, gray)  # re-encoded: other bytes, same (gray) pixels
    with pytest.raises(ConfigError, match="pixels equal"):
        check_not_test_data([other], images=[gray])


# -- export and shipped weights ---------------------------------------------------------


def test_export_weights_half(image_dir, tmp_path):
    train(tiny_config(image_dir, steps=3), tmp_path / "run", progress=False, device="cpu")
    dest = export_weights(tmp_path / "run" / "best.pt", tmp_path / "small.pt", meta={"note": "test"})
    raw = torch.load(dest, weights_only=True)
    assert "training" not in raw
    assert all(v.dtype == torch.float16 for v in raw["state_dict"].values() if v.is_floating_point())
    assert raw["meta"]["note"] == "test" and raw["meta"]["storage"] == "float16"
    assert dest.stat().st_size < (tmp_path / "run" / "best.pt").stat().st_size
    load_model(dest, device="cpu")


@pytest.mark.parametrize("role", ["fbcnn", "fbcnn-a"])
def test_shipped_weights_load_and_are_small(role):
    path = shipped_weights_dir() / SHIPPED_WEIGHTS[role]
    assert path.is_file(), f"{path.name} is not shipped"
    assert path.stat().st_size <= 10 * 1024**2
    model = load_model(path, device="cpu")
    assert model.in_nc == 1
    meta = model.checkpoint_meta
    assert meta["steps"] > 0 and meta["wall_seconds"] > 0 and "BSDS500" in meta["data"]["train_dir"]
    assert meta["storage"] == "float16"


def _strings(meta) -> list[str]:
    if isinstance(meta, str):
        return [meta]
    if isinstance(meta, dict):
        return [s for k, v in meta.items() for s in [k, *_strings(v)]]
    if isinstance(meta, (list, tuple)):
        return [s for v in meta for s in _strings(v)]
    return []


def _absolute(value: str) -> bool:
    import ntpath

    return os.path.isabs(value) or ntpath.isabs(value)


@pytest.mark.parametrize("role", ["fbcnn", "fbcnn-a"])
def test_shipped_weights_record_no_absolute_path(role):
    meta = load_checkpoint(shipped_weights_dir() / SHIPPED_WEIGHTS[role]).meta
    strings = _strings(meta)
    assert "BSDS500_trainval" in strings  # the folder's name is kept
    assert [s for s in strings if _absolute(s)] == []


def test_export_weights_records_no_absolute_path(image_dir, tmp_path):
    cfg = tiny_config(image_dir, steps=2, milestones=(), val_every=2)
    train(cfg, tmp_path / "run", progress=False, device="cpu")
    run_meta = load_checkpoint(tmp_path / "run" / "best.pt").meta
    assert _absolute(run_meta["data"]["train_dir"])  # the run's own files say where it ran ...
    init = tmp_path / "run" / "best.pt"
    train(tiny_config(image_dir, steps=2, milestones=(), val_every=2, init_from=str(init)), tmp_path / "ft",
          progress=False, device="cpu")
    meta = load_checkpoint(export_weights(tmp_path / "ft" / "best.pt", tmp_path / "small.pt",
                                          meta={"source": str(tmp_path / "notes.txt")})).meta
    assert [s for s in _strings(meta) if _absolute(s)] == []  # ... the exported file does not
    assert meta["data"]["train_dir"] == image_dir.name
    assert meta["init_from"]["path"] == "best.pt" and meta["source"] == "notes.txt"


def test_shipped_model_lower_qf_gives_smoother_output():
    model = load_model(shipped_weights_dir() / SHIPPED_WEIGHTS["fbcnn"], device="cpu")
    jpeg = jpeg_roundtrip(make_image(96, 96, seed=3), 30)
    x = torch.from_numpy(jpeg).float().div(255)[None, None]
    with torch.no_grad():
        smooth, _ = model(x, qf=10)
        sharp, _ = model(x, qf=90)
    assert total_variation(smooth[0, 0].numpy()) < total_variation(sharp[0, 0].numpy())


def test_until_step_equal_to_zero_writes_a_start_state(image_dir, tmp_path):
    result = train(tiny_config(image_dir), tmp_path / "run", progress=False, device="cpu", until_step=0)
    assert result["step"] == 0 and result["best"] is None
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=True)["training"]["step"] == 0


# -- exact resume: the log window and Ctrl-C ------------------------------------------------


def window_config(image_dir: Path) -> TrainConfig:
    """Log rows at 3, 6 and 7 (the last step), validation at 6 and 7, a periodic checkpoint at 2, 4 and 6."""
    return tiny_config(image_dir, steps=7, log_every=3, val_every=6, checkpoint_every=2, qf_teacher_prob=0.5)


def assert_same_run(a: Path, b: Path) -> None:
    """Same weights, Adam state, step and log (``seconds`` aside) in two run folders."""
    sa, sb = (torch.load(d / "last.pt", weights_only=True) for d in (a, b))
    assert sa["training"]["step"] == sb["training"]["step"]
    assert sa["state_dict"].keys() == sb["state_dict"].keys()
    assert all(torch.equal(sa["state_dict"][k], sb["state_dict"][k]) for k in sa["state_dict"])
    oa, ob = sa["training"]["optimizer"]["state"], sb["training"]["optimizer"]["state"]
    assert oa.keys() == ob.keys()
    assert all(torch.equal(oa[i][k], ob[i][k]) for i in oa for k in oa[i])
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(read_log(a / "log.csv")) == strip(read_log(b / "log.csv"))


def test_resume_off_a_log_row_gives_the_uninterrupted_log_and_weights(image_dir, tmp_path):
    cfg = window_config(image_dir)
    train(cfg, tmp_path / "full", progress=False, device="cpu")
    assert [int(r["step"]) for r in read_log(tmp_path / "full" / "log.csv")] == [3, 6, 7]
    train(cfg, tmp_path / "split", progress=False, device="cpu", until_step=5)
    assert [int(r["step"]) for r in read_log(tmp_path / "split" / "log.csv")] == [3]  # no extra row at 5
    window = torch.load(tmp_path / "split" / "last.pt", weights_only=True)["training"]["log_window"]
    assert window["n"] == 2 and window["loss"] > 0  # steps 4 and 5, not yet logged
    train(cfg, tmp_path / "split", progress=False, device="cpu")
    assert_same_run(tmp_path / "split", tmp_path / "full")


def test_resume_from_a_state_without_a_log_window(image_dir, tmp_path):
    """A last.pt written before the window was saved still resumes (its next row averages fewer steps)."""
    cfg = window_config(image_dir)
    train(cfg, tmp_path / "full", progress=False, device="cpu")
    train(cfg, tmp_path / "old", progress=False, device="cpu", until_step=5)
    state = torch.load(tmp_path / "old" / "last.pt", weights_only=True)
    del state["training"]["log_window"]
    torch.save(state, tmp_path / "old" / "last.pt")
    assert train(cfg, tmp_path / "old", progress=False, device="cpu")["step"] == 7
    a = load_checkpoint(tmp_path / "old" / "last.pt").state_dict
    b = load_checkpoint(tmp_path / "full" / "last.pt").state_dict
    assert all(torch.equal(a[k], b[k]) for k in a)  # the weights never depended on the window
    assert [int(r["step"]) for r in read_log(tmp_path / "old" / "log.csv")] == [3, 6, 7]


def _adam_step_then(monkeypatch, at_call: int, action) -> None:
    """Make the ``at_call``-th Adam update (1-based) run ``action()`` right after updating the weights."""
    original = torch.optim.Adam.step
    calls = [0]

    def step(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        calls[0] += 1
        if calls[0] == at_call:
            action()
        return out

    monkeypatch.setattr(torch.optim.Adam, "step", step)


def _ctrl_c() -> None:
    import signal

    signal.raise_signal(signal.SIGINT)  # a real Ctrl-C, delivered to this (main) thread


@pytest.fixture(autouse=True)
def _sigint_is_keyboard_interrupt():
    """Python's own SIGINT handler, whatever the runner inherited.

    A test process started in the background by a shell (``cmd &``) starts
    with SIGINT ignored, and then no Ctrl-C ever reaches it.
    """
    import signal

    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def test_ctrl_c_right_after_the_update_saves_that_step_under_its_number(image_dir, tmp_path, monkeypatch):
    cfg = window_config(image_dir)
    train(cfg, tmp_path / "full", progress=False, device="cpu")
    with monkeypatch.context() as m:
        _adam_step_then(m, 5, _ctrl_c)  # off a log row and off a checkpoint
        with pytest.raises(KeyboardInterrupt):
            train(cfg, tmp_path / "split", progress=False, device="cpu")
    state = torch.load(tmp_path / "split" / "last.pt", weights_only=True)
    assert state["training"]["step"] == 5  # step 5 was completed, then the interrupt acted
    assert state["training"]["log_window"]["n"] == 2
    assert not list((tmp_path / "split").glob(".*.part")) and not (tmp_path / "split" / ".lock").exists()
    train(cfg, tmp_path / "split", progress=False, device="cpu")
    assert_same_run(tmp_path / "split", tmp_path / "full")


def _second_ctrl_c() -> None:
    _ctrl_c()  # held until the step is complete ...
    _ctrl_c()  # ... but a second one stops at once


def _raise() -> None:
    raise KeyboardInterrupt  # as if raised by code in the middle of the step


@pytest.mark.parametrize("action", [_second_ctrl_c, _raise], ids=["second-ctrl-c", "raised"])
def test_interrupt_inside_the_update_keeps_the_previous_checkpoint(image_dir, tmp_path, monkeypatch, action):
    cfg = window_config(image_dir)
    train(cfg, tmp_path / "full", progress=False, device="cpu")
    with monkeypatch.context() as m:
        _adam_step_then(m, 5, action)
        with pytest.raises(KeyboardInterrupt):
            train(cfg, tmp_path / "split", progress=False, device="cpu")
    # The weights hold step 5, the bookkeeping may not: nothing saved, the periodic checkpoint of step 4 stays.
    assert torch.load(tmp_path / "split" / "last.pt", weights_only=True)["training"]["step"] == 4
    train(cfg, tmp_path / "split", progress=False, device="cpu")
    assert_same_run(tmp_path / "split", tmp_path / "full")


def test_ctrl_c_in_the_forward_pass_redoes_the_step_with_the_same_draws(image_dir, tmp_path, monkeypatch):
    from jpegbench.models.fbcnn import FBCNN

    cfg = window_config(image_dir)  # teacher forcing: each step draws from the run's RNG before its forward pass
    train(cfg, tmp_path / "full", progress=False, device="cpu")
    forward, calls = FBCNN.forward, [0]

    def interrupted_forward(self, x, qf=None):
        if self.training:
            calls[0] += 1
            if calls[0] == 5:
                _ctrl_c()
        return forward(self, x, qf)

    with monkeypatch.context() as m:
        m.setattr(FBCNN, "forward", interrupted_forward)
        with pytest.raises(KeyboardInterrupt):
            train(cfg, tmp_path / "split", progress=False, device="cpu")
    assert torch.load(tmp_path / "split" / "last.pt", weights_only=True)["training"]["step"] == 4
    train(cfg, tmp_path / "split", progress=False, device="cpu")
    assert_same_run(tmp_path / "split", tmp_path / "full")


def test_the_interrupt_handler_is_restored(image_dir, tmp_path):
    import signal

    before = signal.getsignal(signal.SIGINT)
    train(tiny_config(image_dir, steps=1, val_every=1), tmp_path / "run", progress=False, device="cpu")
    assert signal.getsignal(signal.SIGINT) is before


# -- colour --------------------------------------------------------------------------------


def test_color_run_trains_on_rgb_and_validates_rgb_psnr(rgb_dir, tmp_path):
    cfg = tiny_config(rgb_dir, channels=3, degradation="mixed", shift="nonaligned", val_double=((10, 30),))
    result = train(cfg, tmp_path / "run", progress=False, device="cpu")
    model = load_model(tmp_path / "run" / "best.pt", device="cpu")
    assert (model.in_nc, model.out_nc) == (3, 3)
    assert set(result["jpeg_psnr"]) == {"qf20", "d10-30", "mean"}
    meta = model.checkpoint_meta
    assert meta["data"]["color"] == "rgb" and "4:2:0" in meta["data"]["encoder"]
    assert meta["train_config"]["data"]["subsampling"] == "4:2:0"


def test_color_validation_cells_use_the_configured_subsampling(rgb_dir):
    from jpegbench.codec import decode, encode
    from jpegbench.models.training.data import jpeg_psnr, val_cells, val_images

    img = val_images(tiny_config(rgb_dir, channels=3), [rgb_dir / "img0.png"])
    by = {}
    for sub in ("4:4:4", "4:2:2", "4:2:0"):
        cfg = tiny_config(rgb_dir, channels=3, subsampling=sub, val_double=((10, 30),))
        cells = val_cells(cfg, img)
        np.testing.assert_array_equal(cells[0][1][0][0], decode(encode(img[0], 20, subsampling=sub)))
        by[sub] = jpeg_psnr(cells)["mean"]
    assert by["4:4:4"] > by["4:2:2"] > by["4:2:0"]  # less chroma kept, lower RGB PSNR


def test_color_double_samples_have_no_qf_loss(rgb_dir, tmp_path):
    cfg = tiny_config(rgb_dir, channels=3, degradation="double", shift="random", steps=2, val_every=2)
    train(cfg, tmp_path / "run", progress=False, device="cpu")
    rows = read_log(tmp_path / "run" / "log.csv")
    assert all(float(r["qf_loss"]) == 0.0 for r in rows)


def test_color_resume_gives_the_same_result_as_an_uninterrupted_run(rgb_dir, tmp_path):
    cfg = tiny_config(rgb_dir, channels=3, degradation="mixed", qf_teacher_prob=0.5, subsampling="4:2:2")
    train(cfg, tmp_path / "full", progress=False, device="cpu")
    train(cfg, tmp_path / "split", progress=False, device="cpu", until_step=4)
    train(cfg, tmp_path / "split", progress=False, device="cpu")
    assert_same_run(tmp_path / "split", tmp_path / "full")
    with pytest.raises(ConfigError, match=r"data\.subsampling"):  # the encoder is part of the recipe
        train(tiny_config(rgb_dir, channels=3, degradation="mixed", qf_teacher_prob=0.5, steps=8),
              tmp_path / "split", progress=False, device="cpu")


def test_a_state_written_before_the_colour_keys_still_resumes(image_dir, tmp_path):
    cfg = window_config(image_dir)
    train(cfg, tmp_path / "full", progress=False, device="cpu")
    train(cfg, tmp_path / "old", progress=False, device="cpu", until_step=4)
    state = torch.load(tmp_path / "old" / "last.pt", weights_only=True)
    del state["training"]["train_config"]["data"]["subsampling"]  # as jpegbench wrote it before these keys
    del state["training"]["train_config"]["model"]["init_channel_map"]
    torch.save(state, tmp_path / "old" / "last.pt")
    train(cfg, tmp_path / "old", progress=False, device="cpu")
    assert_same_run(tmp_path / "old", tmp_path / "full")


def _gray_equal_rgb(gray: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(gray).float().div(255)[None, None].expand(1, 3, *gray.shape).contiguous()


def test_gray_to_color_warm_start_equals_the_gray_model_on_gray_equal_rgb(tmp_path):
    """The shipped small gray FBCNN, replicated: on R = G = B it restores every channel as the gray model."""
    from jpegbench.models.training.network import build_model

    gray_path = shipped_weights_dir() / SHIPPED_WEIGHTS["fbcnn"]
    gray = load_model(gray_path, device="cpu")
    cfg = TrainConfig(channels=3, nc=(16, 32, 64, 128), nb=2, init_from=str(gray_path), init_channel_map="replicate")
    color, init = build_model(cfg)
    assert (color.in_nc, color.out_nc) == (3, 3) and init["channel_map"] == "replicate"
    y = jpeg_roundtrip(make_image(64, 80, seed=4), 20)
    x = _gray_equal_rgb(y)
    with torch.no_grad():
        for qf in (None, 20.0):
            want, want_qf = gray(x[:, :1], qf=qf)
            got, got_qf = color(x, qf=qf)
            torch.testing.assert_close(got, want.expand(-1, 3, -1, -1), rtol=0, atol=1e-5)
            torch.testing.assert_close(got_qf, want_qf, rtol=0, atol=1e-4)
    # Only the two end convolutions changed shape; every other tensor is the gray model's.
    g, c = gray.state_dict(), color.state_dict()
    assert all(torch.equal(g[k], c[k]) for k in g if not k.startswith(("m_head.", "m_tail.")))


def test_replicate_identity_warm_start_passes_colour_through_with_the_gray_body():
    from jpegbench.models.training.network import build_model

    gray_path = shipped_weights_dir() / SHIPPED_WEIGHTS["fbcnn"]
    gray = load_model(gray_path, device="cpu")
    cfg = TrainConfig(channels=3, nc=(16, 32, 64, 128), nb=2, init_from=str(gray_path),
                      init_channel_map="replicate_identity")
    color, init = build_model(cfg)
    assert init["channel_map"] == "replicate_identity"
    x = torch.from_numpy(make_image(48, 64, color="rgb", seed=5)).float().div(255).permute(2, 0, 1)[None]
    with torch.no_grad():
        restored, qf = color(x)
    torch.testing.assert_close(restored, x, rtol=0, atol=1e-6)  # the identity: chroma kept
    assert 1 <= float(qf) <= 100
    g, c = gray.state_dict(), color.state_dict()
    assert all(torch.equal(g[k], c[k]) for k in g if k.startswith(("m_down", "m_body", "qf_pred")))
    # Head channels beyond the three colour ones keep the gray kernels, replicated / 3.
    torch.testing.assert_close(c["m_head.weight"][3:], g["m_head.weight"][3:].repeat(1, 3, 1, 1) / 3)


def test_warm_start_needs_a_gray_checkpoint_and_the_same_width(tmp_path):
    from jpegbench.models.fbcnn import FBCNN
    from jpegbench.models.training.network import build_model

    rgb = save_checkpoint(FBCNN(in_nc=3, nc=(8, 16, 16, 16), nb=1), tmp_path / "rgb.pt")
    with pytest.raises(ConfigError, match="gray"):
        build_model(TrainConfig(channels=3, nc=(8, 16, 16, 16), nb=1, init_from=str(rgb),
                                init_channel_map="replicate"))
    gray = save_checkpoint(FBCNN(in_nc=1, nc=(8, 16, 16, 16), nb=1), tmp_path / "gray.pt")
    with pytest.raises(ConfigError, match="architecture"):
        build_model(TrainConfig(channels=3, nc=(8, 16, 16, 32), nb=1, init_from=str(gray),
                                init_channel_map="replicate"))
    with pytest.raises(ConfigError, match="architecture"):  # without the map, a gray file cannot start a colour model
        build_model(TrainConfig(channels=3, nc=(8, 16, 16, 16), nb=1, init_from=str(gray)))


@pytest.mark.parametrize("in_nc", [1, 3])
def test_widening_keeps_the_function_and_breaks_the_symmetry(in_nc):
    """Net2WiderNet: the wide FBCNN returns the narrow one's output and QF, blind and QF-steered."""
    from jpegbench.models.fbcnn import FBCNN
    from jpegbench.models.training.network import widen_state_dict

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        narrow = FBCNN(in_nc=in_nc, nc=(8, 16, 16, 32), nb=2).eval()
    state = widen_state_dict(narrow.state_dict(), 2, nc=narrow.nc, generator=torch.Generator().manual_seed(0))
    wide = FBCNN(in_nc=in_nc, nc=(16, 32, 32, 64), nb=2).eval()
    wide.load_state_dict(state, strict=True)
    x = torch.rand(2, in_nc, 29, 42, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        for qf in (None, 15.0, 80.0):
            (want, want_qf), (got, got_qf) = narrow(x, qf=qf), wide(x, qf=qf)
            torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
            torch.testing.assert_close(got_qf, want_qf, rtol=0, atol=1e-4)
    # The copies of a channel are not equal where they are read (input shares differ),
    # so training can separate them.
    w = state["m_down1.0.res.0.weight"]  # (16, 16, 3, 3) from (8, 8, 3, 3)
    assert not torch.equal(w[:, :8], w[:, 8:])
    torch.testing.assert_close(w[:8, :8] + w[:8, 8:], narrow.state_dict()["m_down1.0.res.0.weight"], rtol=0, atol=1e-6)
    torch.testing.assert_close(w[8:], w[:8], rtol=0, atol=0)  # outputs copied


def test_a_widened_run_starts_at_the_narrow_models_psnr(image_dir, tmp_path):
    from jpegbench.models.fbcnn import FBCNN
    from jpegbench.models.training.network import build_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        narrow = save_checkpoint(FBCNN(in_nc=1, nc=(8, 16, 16, 16), nb=1), tmp_path / "narrow.pt")
    with pytest.raises(ConfigError, match="init_widen"):  # nc must be the checkpoint's times the factor
        build_model(tiny_config(image_dir, nc=(16, 32, 32, 48), init_from=str(narrow), init_widen=2))
    base = train(tiny_config(image_dir, init_from=str(narrow), lr=1e-12, steps=1, val_every=1, milestones=()),
                 tmp_path / "narrow_run", progress=False, device="cpu")
    wide = train(tiny_config(image_dir, nc=(16, 32, 32, 32), init_from=str(narrow), init_widen=2, lr=1e-12,
                             steps=1, val_every=1, milestones=()), tmp_path / "wide_run", progress=False, device="cpu")
    assert wide["val_psnr"]["mean"] == pytest.approx(base["val_psnr"]["mean"], abs=1e-3)
    assert load_model(wide["best"], device="cpu").checkpoint_meta["init_from"]["widen"] == 2


def test_a_warm_started_colour_run_trains(rgb_dir, tmp_path):
    from jpegbench.models.fbcnn import FBCNN

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        gray = save_checkpoint(FBCNN(in_nc=1, nc=(8, 16, 16, 16), nb=1), tmp_path / "gray.pt")
    cfg = tiny_config(rgb_dir, channels=3, init_from=str(gray), init_channel_map="replicate", steps=2, val_every=2)
    result = train(cfg, tmp_path / "run", progress=False, device="cpu")
    meta = load_model(result["best"], device="cpu").checkpoint_meta
    assert meta["init_from"]["channel_map"] == "replicate"
    exported = load_checkpoint(export_weights(result["best"], tmp_path / "color.pt")).meta
    assert exported["init_from"]["path"] == "gray.pt"
