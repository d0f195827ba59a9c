"""Training the table-guided networks (QCN, QGCN, IJCN) with ``jpegbench.models.training``.

Tiny networks on small synthetic images, a few steps each, one CPU thread:
inputs identical to what restoring builds from the same JPEG bytes, runs,
checkpoints in the ``jpegbench-guided`` format, resume, export, validation
and the config rules of ``[model] arch``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from jpegbench.codec import decode, write_png
from jpegbench.errors import ConfigError, WeightsError
from jpegbench.models.guided_weights import load_guided_model
from jpegbench.models.jpeg_inputs import read_ijcn_inputs, read_qcn_inputs
from jpegbench.models.training import TrainConfig, export_weights, load_config, train
from jpegbench.models.weights import GUIDED_CHECKPOINT_FORMAT, load_checkpoint

from .conftest import make_image

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.fixture(scope="module")
def gray_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("gray")
    for i in range(4):
        write_png(folder / f"img{i}.png", make_image(40, 48, seed=i))
    return folder


@pytest.fixture(scope="module")
def rgb_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("rgb")
    for i in range(4):
        write_png(folder / f"img{i}.png", make_image(72, 80, color="rgb", seed=i))
    return folder


def tiny(folder: Path, arch: str, **changes) -> TrainConfig:
    base = dict(name=f"tiny-{arch}", arch=arch, train_dir=str(folder), val_count=1, patch_size=16, batch_size=2,
                steps=4, lr=1e-3, milestones=(3,), log_every=1, val_every=2, checkpoint_every=2, val_qfs=(20,),
                val_crop=0, num_threads=1)  # fmt: skip
    if arch in ("qcn", "qgcn"):
        base.update(n_feats=8 if arch == "qcn" else 64, n_resblocks=2)
    else:
        base.update(channels=3, nc=(8, 16, 16, 32), patch_size=64)
    base.update(changes)
    return TrainConfig(**base)


def read_log(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


# -- the training batch is what restoring reads ------------------------------------------------


@pytest.mark.parametrize(("arch", "color"), [("qcn", "gray"), ("qgcn", "gray"), ("qgcn", "rgb"), ("ijcn", "rgb")])
def test_training_sample_equals_what_jpeg_inputs_builds_from_the_same_bytes(arch, color, gray_dir, rgb_dir,
                                                                            tmp_path):  # fmt: skip
    from jpegbench.models.training.data import step_items
    from jpegbench.models.training.guided import guided_batch_at, make_guided_dataset

    folder = gray_dir if color == "gray" else rgb_dir
    cfg = tiny(folder, arch, channels=1 if color == "gray" else 3, batch_size=3)
    files = sorted(folder.glob("*.png"))
    dataset, per_epoch = make_guided_dataset(cfg, files)
    batch = guided_batch_at(dataset, per_epoch, cfg, 1)
    items = step_items(dataset, per_epoch, cfg, 1)
    assert len(items) == 3
    for i, (jpeg, clean, params) in enumerate(items):
        assert qf_in_range(params, cfg)
        path = tmp_path / f"patch{i}.jpg"
        path.write_bytes(jpeg)
        if arch == "ijcn":
            want = read_ijcn_inputs(path)
            for key in ("tables", "y", "cbcr"):
                assert torch.equal(batch[key][i], getattr(want, key)[0]), key
            torch.testing.assert_close(batch["hq"][i], torch.from_numpy(clean).permute(2, 0, 1).float() / 255)
        else:
            want = read_qcn_inputs(path, channels=cfg.channels)
            assert torch.equal(batch["x"][i], want.image[0])
            if arch == "qgcn":
                assert torch.equal(batch["resized"][i], want.resized[0])  # the global copy of the patch
            else:
                assert "resized" not in batch
            hq = torch.from_numpy(clean.astype(np.float32))
            hq = hq[None] if hq.ndim == 2 else hq.permute(2, 0, 1)
            torch.testing.assert_close(batch["hq"][i], hq / 127.5 - 1, rtol=0, atol=1e-6)
        # The patch's JPEG is decoded to the input image: not the clean patch.
        assert not np.array_equal(decode(jpeg), clean)


def qf_in_range(params: dict, cfg: TrainConfig) -> bool:
    return cfg.qf_range[0] <= params["qf1"] <= cfg.qf_range[1] and not params["is_double"]


def test_guided_batches_are_a_function_of_seed_and_step(gray_dir):
    from jpegbench.models.training.guided import guided_batch_at, make_guided_dataset

    cfg = tiny(gray_dir, "qgcn")
    files = sorted(gray_dir.glob("*.png"))
    a, per_epoch = make_guided_dataset(cfg, files)
    b, _ = make_guided_dataset(cfg, files)
    x, y = guided_batch_at(a, per_epoch, cfg, 5), guided_batch_at(b, per_epoch, cfg, 5)
    assert all(torch.equal(x[k], y[k]) for k in x)
    z = guided_batch_at(a, per_epoch, cfg, 6)
    assert not torch.equal(x["x"], z["x"])


# -- runs, checkpoints, export ------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["qcn", "qgcn", "ijcn"])
def test_short_run_writes_a_guided_checkpoint_the_restorer_loads(arch, gray_dir, rgb_dir, tmp_path):
    folder = rgb_dir if arch == "ijcn" else gray_dir
    cfg = tiny(folder, arch, val_double=((10, 30),))
    result = train(cfg, tmp_path / "run", progress=False, device="cpu")
    assert result["step"] == 4 and set(result["val_psnr"]) == {"qf20", "d10-30", "mean"}
    rows = read_log(tmp_path / "run" / "log.csv")
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert all(float(r["qf_loss"]) == 0.0 and float(r["loss"]) == float(r["l1"]) > 0 for r in rows)
    raw = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    assert raw["format"] == GUIDED_CHECKPOINT_FORMAT and raw["architecture"] == arch
    model = load_guided_model(tmp_path / "run" / "best.pt", architecture=arch, device="cpu")
    assert dict(model.config) == cfg.model_config()
    assert model.checkpoint_meta["architecture"] == arch
    assert model.checkpoint_meta["train_config"]["model"]["arch"] == arch
    with pytest.raises(WeightsError, match="jpegbench-guided"):  # not an FBCNN
        load_checkpoint(tmp_path / "run" / "best.pt")


def test_export_weights_of_a_guided_run(gray_dir, tmp_path):
    train(tiny(gray_dir, "qgcn", steps=2, milestones=()), tmp_path / "run", progress=False, device="cpu")
    dest = export_weights(tmp_path / "run" / "best.pt", tmp_path / "qgcn_small_gray.pt", meta={"note": "t"})
    raw = torch.load(dest, weights_only=True)
    assert raw["format"] == GUIDED_CHECKPOINT_FORMAT and "training" not in raw
    assert all(v.dtype == torch.float16 for v in raw["state_dict"].values() if v.is_floating_point())
    assert raw["meta"]["note"] == "t" and raw["meta"]["data"]["train_dir"] == gray_dir.name  # no absolute path
    assert "qf_patch" not in raw["meta"]
    exported = load_guided_model(dest, device="cpu")
    best = load_guided_model(tmp_path / "run" / "best.pt", device="cpu")
    for k, v in best.state_dict().items():
        torch.testing.assert_close(exported.state_dict()[k], v.half().float())


def test_the_shipped_name_is_found_by_the_restorer(gray_dir, tmp_path):
    from jpegbench.models.guided_weights import find_guided_weights

    train(tiny(gray_dir, "qgcn", steps=2, milestones=()), tmp_path / "run", progress=False, device="cpu")
    (tmp_path / "w").mkdir()
    export_weights(tmp_path / "run" / "best.pt", tmp_path / "w" / "qgcn_small_gray.pt")
    assert find_guided_weights("qgcn", channels=1, weights_dir=tmp_path / "w").name == "qgcn_small_gray.pt"


def test_guided_resume_gives_the_same_weights_as_an_uninterrupted_run(gray_dir, tmp_path):
    cfg = tiny(gray_dir, "qgcn", steps=5, log_every=2, checkpoint_every=2, val_every=4)
    train(cfg, tmp_path / "full", progress=False, device="cpu")
    train(cfg, tmp_path / "split", progress=False, device="cpu", until_step=3)
    train(cfg, tmp_path / "split", progress=False, device="cpu")
    a, b = (torch.load(d / "last.pt", weights_only=True) for d in (tmp_path / "full", tmp_path / "split"))
    assert a["training"]["step"] == b["training"]["step"] == 5
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(read_log(tmp_path / "split" / "log.csv")) == strip(read_log(tmp_path / "full" / "log.csv"))
    with pytest.raises(ConfigError, match=r"model\.n_resblocks"):  # the architecture is part of the recipe
        train(tiny(gray_dir, "qgcn", steps=6, n_resblocks=4), tmp_path / "split", progress=False, device="cpu")


def test_loss_goes_down_on_a_fixed_patch(gray_dir, tmp_path):
    cfg = tiny(gray_dir, "qcn", identity_init=True, steps=24, lr=2e-3, milestones=(), val_every=24,
               checkpoint_every=24, augment=False, qf_range=(10, 10))  # fmt: skip
    train(cfg, tmp_path / "run", progress=False, device="cpu")
    l1 = [float(r["l1"]) for r in read_log(tmp_path / "run" / "log.csv")]
    assert np.mean(l1[-5:]) < np.mean(l1[:5])


# -- the validation cells restore as the methods do ----------------------------------------------


@pytest.mark.parametrize("arch", ["qcn", "qgcn", "ijcn"])
def test_identity_start_validates_at_the_jpeg_psnr(arch, gray_dir, rgb_dir):
    from jpegbench.models.training.data import val_images
    from jpegbench.models.training.guided import guided_jpeg_psnr, guided_val_cells, guided_validate
    from jpegbench.models.training.network import build_model

    folder = rgb_dir if arch == "ijcn" else gray_dir
    cfg = tiny(folder, arch, identity_init=True, val_qfs=(10, 40))
    cells = guided_val_cells(cfg, val_images(cfg, sorted(folder.glob("*.png"))[-1:]))
    model, _ = build_model(cfg)
    got, want = guided_validate(model, cells, torch.device("cpu")), guided_jpeg_psnr(cells)
    # QCN and QGCN pass the decoded pixels through exactly; IJCN decodes the coefficients itself
    # (bilinear chroma upsampling, not libjpeg's), a few hundredths of a dB away.
    assert got["mean"] == pytest.approx(want["mean"], abs=1e-6 if arch != "ijcn" else 0.2)


@pytest.mark.parametrize("color", ["gray", "rgb"])
def test_qgcn_pass_through_start_returns_its_input_and_then_learns(color):
    from jpegbench.models.qcn import QGCN
    from jpegbench.models.training.guided import guided_identity_init

    c = 1 if color == "gray" else 3
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = guided_identity_init(QGCN(in_channel=c + min(c, 2), in_glo_channel=c, out_channel=c, n_resblocks=4))
    g = torch.Generator().manual_seed(1)
    x, resized = torch.rand(2, c + min(c, 2), 24, 40, generator=g) * 2 - 1, torch.rand(2, c, 112, 112, generator=g)
    out = model(x, resized)
    torch.testing.assert_close(out, x[:, :c], rtol=0, atol=1e-6)
    out.abs().mean().backward()
    assert model.conv_output.weight.grad.abs().sum() > 0  # the output layer learns from the first step


def test_guided_validation_equals_the_restore_method(gray_dir, tmp_path):
    from jpegbench.metrics import psnr
    from jpegbench.models.methods import get_method
    from jpegbench.models.training.data import val_images
    from jpegbench.models.training.guided import guided_val_cells, guided_validate

    cfg = tiny(gray_dir, "qgcn", steps=1, val_every=1, milestones=())
    train(cfg, tmp_path / "run", progress=False, device="cpu")
    model = load_guided_model(tmp_path / "run" / "best.pt", device="cpu")
    cells = guided_val_cells(cfg, val_images(cfg, sorted(gray_dir.glob("*.png"))[-1:]))
    got = guided_validate(model, cells, torch.device("cpu"))["qf20"]
    jpeg, hq = cells[0][1][0]
    (tmp_path / "v.jpg").write_bytes(jpeg)
    method = get_method("qgcn", weights=tmp_path / "run" / "best.pt", device="cpu")
    restored = method(tmp_path / "v.jpg").image
    assert got == pytest.approx(min(psnr(hq, restored), 100.0), abs=1e-6)


# -- config rules ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arch", "change", "key"),
    [
        ("qgcn", {"n_feats": 32}, "model.n_feats"),
        ("ijcn", {"channels": 1}, "model.channels"),
        ("ijcn", {"patch_size": 96}, "data.patch_size"),
        ("ijcn", {"subsampling": "4:4:4"}, "data.subsampling"),
        ("qcn", {"degradation": "mixed"}, "data.degradation"),
        ("qcn", {"nb": 4}, "model.nb"),  # an FBCNN key
        ("qcn", {"qf_teacher_prob": 0.5}, "optim.qf_teacher_prob"),  # no QF head
        ("qcn", {"act_mode": "P"}, "model.act_mode"),
        ("fbcnn", {"n_resblocks": 4}, "model.n_resblocks"),  # a QCN key
        ("fbcnn", {"act_mode": "P"}, "model.act_mode"),
        ("tcn", {}, "model.arch"),
    ],
)
def test_arch_rules_name_the_key(gray_dir, arch, change, key):
    base = dict(arch=arch, train_dir=str(gray_dir), val_crop=0)
    if arch == "ijcn":
        base.update(channels=3, patch_size=64)
    base.update(change)
    with pytest.raises(ConfigError, match=rf"training config key '{key.replace('.', chr(92) + '.')}': expected"):
        TrainConfig(**base)


def test_an_fbcnn_config_without_arch_is_unchanged(gray_dir):
    cfg = TrainConfig.from_dict({"data": {"train_dir": str(gray_dir)}})
    assert cfg.arch == "fbcnn" and not cfg.guided
    assert cfg.model_config() == {"in_nc": 1, "out_nc": 1, "nc": [16, 32, 64, 128], "nb": 2, "act_mode": "R"}


@pytest.mark.parametrize(
    ("name", "arch", "model_config"),
    [
        ("qgcn-small-gray", "qgcn", {"in_channel": 2, "in_glo_channel": 1, "out_channel": 1}),
        ("ijcn-small-color", "ijcn", {"in_nc": 3, "out_nc": 3}),
    ],
)
def test_shipped_guided_configs_are_valid(name, arch, model_config):
    cfg = load_config(CONFIGS / f"{name}.toml")
    assert (cfg.name, cfg.arch) == (name, arch)
    assert model_config.items() <= cfg.model_config().items()
    assert TrainConfig.from_dict(cfg.to_dict(), base_dir=cfg.base_dir) == cfg
    assert "BSDS500" in str(cfg.path("train_dir"))
