"""Weights I/O: safe loading, strict fit, inferred architecture, where files are found."""

from __future__ import annotations

import pickle
import shutil

import pytest
import torch

import jpegbench.models.weights as weights_mod
from jpegbench.errors import InputError, WeightsError
from jpegbench.models import (
    FBCNN,
    default_weights,
    find_weights,
    load_checkpoint,
    load_model,
    resolve_weights,
    save_checkpoint,
)


class _TouchOnUnpickle:
    """A pickle payload: unpickling it calls ``open(marker, "w")``, creating a file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _same_output(a: FBCNN, b: FBCNN) -> None:
    x = torch.rand(1, a.in_nc, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out_a, qf_a = a(x)
        out_b, qf_b = b(x)
    torch.testing.assert_close(out_a, out_b)
    torch.testing.assert_close(qf_a, qf_b)


# -- round trips ---------------------------------------------------------------------


def test_checkpoint_round_trip_strict(tmp_path, model_factory):
    model = model_factory(nb=2)
    path = save_checkpoint(model, tmp_path / "m.pt", meta={"epochs": 3, "data": ["bsds"], "lr": 1e-4})
    loaded = load_model(path, device="cpu")
    assert loaded.config == model.config
    assert not loaded.training
    assert loaded.checkpoint_meta["epochs"] == 3 and "versions" in loaded.checkpoint_meta
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    _same_output(model, loaded)
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temp file left behind


def test_half_storage_loads_as_float32(tmp_path, model_factory):
    model = model_factory()
    path = save_checkpoint(model, tmp_path / "half.pt", half=True)
    stored = torch.load(path, weights_only=True)
    assert stored["state_dict"]["m_head.weight"].dtype == torch.float16
    loaded = load_model(path, device="cpu")
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    torch.testing.assert_close(loaded.m_head.weight, model.m_head.weight, atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize("wrap", [None, "params", "state_dict", "module."])
def test_raw_state_dict_infers_architecture(tmp_path, wrap):
    model = FBCNN(in_nc=3, nc=(8, 16, 24, 32), nb=2)
    sd = model.state_dict()
    obj = (
        sd
        if wrap is None
        else {f"module.{k}": v for k, v in sd.items()}
        if wrap == "module."
        else {wrap: sd}
    )
    torch.save(obj, tmp_path / "raw.pth")
    loaded = load_model(tmp_path / "raw.pth", device="cpu")
    assert loaded.config == {"in_nc": 3, "out_nc": 3, "nc": [8, 16, 24, 32], "nb": 2, "act_mode": "R"}
    _same_output(model, loaded)


# -- refusals -------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        load_model(tmp_path / "nope" / "x.pth")


def test_missing_name_lists_search_folders(tmp_path, monkeypatch):
    monkeypatch.delenv(weights_mod.WEIGHTS_DIR_ENV, raising=False)
    with pytest.raises(WeightsError, match="looked in") as info:
        resolve_weights("fbcnn_gray.pth", weights_dir=tmp_path)
    assert str(tmp_path) in str(info.value) and "\n" not in str(info.value)


def test_directory_is_not_a_file(tmp_path):
    with pytest.raises(WeightsError, match="not a file"):
        load_model(tmp_path)


def test_truncated_file(tmp_path, model_factory):
    path = save_checkpoint(model_factory(), tmp_path / "m.pt")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="truncated"):
        load_model(path)


@pytest.mark.parametrize("content", [b"hello, I am not a checkpoint\n", b""])
def test_text_or_empty_file(tmp_path, content):
    path = tmp_path / "notes.pth"
    path.write_bytes(content)
    with pytest.raises(WeightsError):
        load_model(path)


@pytest.mark.parametrize("container", ["raw-pickle", "torch-save"])
def test_pickle_with_code_is_refused_and_never_runs(tmp_path, container):
    marker = tmp_path / "pwned"
    payload = {"m_head.weight": _TouchOnUnpickle(marker)}
    path = tmp_path / "evil.pth"
    if container == "raw-pickle":
        path.write_bytes(pickle.dumps(payload))
    else:
        torch.save(payload, path)
    assert not marker.exists()

    with pytest.raises(WeightsError, match="refused to unpickle: not a plain-tensor checkpoint"):
        load_model(path)
    assert not marker.exists()

    # Control: the payload is live. With torch.load(weights_only=False), or
    # plain pickle, loading this file would create the marker.
    if container == "raw-pickle":
        pickle.loads(path.read_bytes())["m_head.weight"].close()
        assert marker.exists()


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_refused(tmp_path, model_factory, bad):
    sd = model_factory().state_dict()
    sd["m_down2.0.res.0.weight"][0, 0, 0, 0] = bad
    torch.save(sd, tmp_path / "bad.pth")
    with pytest.raises(WeightsError, match="NaN or Inf.*m_down2.0.res.0.weight"):
        load_model(tmp_path / "bad.pth")


def test_size_limit_fails_before_reading(tmp_path, model_factory, monkeypatch):
    path = save_checkpoint(model_factory(), tmp_path / "m.pt")

    def forbidden(*args, **kwargs):
        raise AssertionError("torch.load must not run on an oversized file")

    monkeypatch.setattr(weights_mod.torch, "load", forbidden)
    with pytest.raises(WeightsError, match="over the limit of 100 bytes"):
        load_model(path, max_bytes=100)


def test_mismatch_lists_keys_and_describes_file(tmp_path, model_factory):
    sd = model_factory().state_dict()
    sd["m_head.extra"] = sd.pop("to_beta_1.0.bias")
    model = FBCNN(in_nc=3, nc=(8, 16, 16, 16), nb=1)  # claims 3 channels, file has 1
    torch.save(
        {"format": "jpegbench-fbcnn", "format_version": 1, "config": model.config, "state_dict": sd, "meta": {}},
        tmp_path / "m.pt",
    )
    with pytest.raises(WeightsError) as info:
        load_model(tmp_path / "m.pt")
    message = str(info.value)
    assert "missing: to_beta_1.0.bias" in message
    assert "unexpected: m_head.extra" in message
    assert "m_head.weight (8, 1, 3, 3) vs (8, 3, 3, 3)" in message
    assert "looks like a 1-channel FBCNN with nc=[8, 16, 16, 16], nb=1" in message
    assert "\n" not in message


def test_not_fbcnn_state_dict(tmp_path):
    torch.save({"conv.weight": torch.zeros(4, 1, 3, 3)}, tmp_path / "other.pth")
    with pytest.raises(WeightsError, match="does not look like an FBCNN"):
        load_model(tmp_path / "other.pth")


@pytest.mark.parametrize(
    ("obj", "match"),
    [
        (torch.zeros(3), "not a state dict"),
        ({"a": 1}, "not a state dict of tensors"),
        ({}, "empty state dict"),
        ({"format": "jpegbench-fbcnn", "format_version": 99, "config": {}, "state_dict": {}}, "format_version 99"),
    ],
)
def test_wrong_content(tmp_path, obj, match):
    torch.save(obj, tmp_path / "x.pt")
    with pytest.raises(WeightsError, match=match):
        load_checkpoint(tmp_path / "x.pt")


def test_save_checkpoint_validates(tmp_path, model_factory):
    model = model_factory()
    with pytest.raises(InputError, match="meta"):
        save_checkpoint(model, tmp_path / "m.pt", meta={"when": object()})
    with pytest.raises(InputError, match="does not exist"):
        save_checkpoint(model, tmp_path / "no" / "m.pt")
    with pytest.raises(InputError):
        save_checkpoint(torch.nn.Linear(2, 2), tmp_path / "m.pt")
    assert list(tmp_path.iterdir()) == []


# -- where weights are found ---------------------------------------------------------


def test_name_resolved_from_weights_dir_then_env(tmp_path, monkeypatch, model_factory):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    save_checkpoint(model_factory(), second / "fbcnn_gray.pth")
    monkeypatch.setenv(weights_mod.WEIGHTS_DIR_ENV, str(second))
    assert resolve_weights("fbcnn_gray.pth", weights_dir=first) == second / "fbcnn_gray.pth"
    shutil.copy(second / "fbcnn_gray.pth", first / "fbcnn_gray.pth")
    assert resolve_weights("fbcnn_gray.pth", weights_dir=first) == first / "fbcnn_gray.pth"
    assert load_model("fbcnn_gray.pth", weights_dir=first, device="cpu").in_nc == 1


def test_find_weights_by_role_and_channels(tmp_path, monkeypatch, model_factory):
    monkeypatch.delenv(weights_mod.WEIGHTS_DIR_ENV, raising=False)
    save_checkpoint(model_factory(), tmp_path / "fbcnn_gray.pth")
    assert find_weights("fbcnn", channels=1, weights_dir=tmp_path).name == "fbcnn_gray.pth"
    assert find_weights("fbcnn", channels=3, weights_dir=tmp_path).name == "fbcnn_gray.pth"  # Y fallback
    save_checkpoint(model_factory(in_nc=3), tmp_path / "fbcnn_color.pth")
    assert find_weights("fbcnn", channels=3, weights_dir=tmp_path).name == "fbcnn_color.pth"
    with pytest.raises(WeightsError, match="fbcnn_gray_double.pth"):
        find_weights("fbcnn-a", weights_dir=tmp_path)
    with pytest.raises(InputError):
        find_weights("dncnn")


def test_default_weights_absent_explains(tmp_path, monkeypatch):
    monkeypatch.setattr(weights_mod, "shipped_weights_dir", lambda: tmp_path)
    with pytest.raises(WeightsError, match="JPEGBENCH_WEIGHTS_DIR"):
        default_weights("fbcnn")
    with pytest.raises(InputError):
        default_weights("fbcnn-x")


def test_default_weights_present(tmp_path, monkeypatch, model_factory):
    monkeypatch.setattr(weights_mod, "shipped_weights_dir", lambda: tmp_path)
    save_checkpoint(model_factory(), tmp_path / "fbcnn_a_small_gray.pt")
    assert default_weights("fbcnn-a") == tmp_path / "fbcnn_a_small_gray.pt"
    monkeypatch.delenv(weights_mod.WEIGHTS_DIR_ENV, raising=False)
    assert find_weights("fbcnn-a") == tmp_path / "fbcnn_a_small_gray.pt"


def test_saved_checkpoint_has_ordinary_permissions(tmp_path):
    import os

    from jpegbench.models import FBCNN
    from jpegbench.models.weights import save_checkpoint

    mask = os.umask(0o022)
    try:
        path = save_checkpoint(FBCNN(in_nc=1, nc=(8, 16, 32, 64), nb=1), tmp_path / "w.pt")
    finally:
        os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600: a shared weights folder stays readable
