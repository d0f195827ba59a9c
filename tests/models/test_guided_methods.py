"""The table-guided methods qcn, qgcn, ijcn and their -d twins: tables used, QF recorded, inputs refused, weights found.

Models are seeded random networks saved to tmp files as plain state dicts
(the authors' layout), loaded back through the weights lookup.
"""

from __future__ import annotations

import io
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import jpegbench.models.weights as weights_mod
from jpegbench.codec import decode, ijg_qtable, read_coefficients, read_image
from jpegbench.errors import ImageReadError, InputError, QualityError, UnsupportedImageError, WeightsError
from jpegbench.models import (
    GUIDED_METHODS,
    IJCN,
    METHODS,
    QCN,
    QGCN,
    GuidedMethod,
    find_guided_weights,
    get_method,
    restore_files,
    restore_ijcn,
    restore_qcn,
)


class StubEstimator:
    """Stands in for jpegbench.estimate.estimate_qf; records its calls."""

    def __init__(self, qf_dominant):
        self.qf_dominant = qf_dominant
        self.calls = []

    def __call__(self, pixels, *, estimator, backend):
        self.calls.append((pixels.shape, pixels.dtype, estimator, backend))
        return SimpleNamespace(qf_dominant=self.qf_dominant)


def _seeded(cls, seed=0, **kwargs):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return cls(**kwargs).eval()


def make_model(arch, color="gray", seed=0):
    if arch == "qcn":
        cin, cout = (2, 1) if color == "gray" else (5, 3)
        return _seeded(QCN, seed, in_channel=cin, out_channel=cout, n_feats=8, n_resblocks=2)
    if arch == "qgcn":
        cin, cout, cg = (2, 1, 1) if color == "gray" else (5, 3, 3)
        return _seeded(QGCN, seed, in_channel=cin, in_glo_channel=cg, out_channel=cout, n_feats=64, n_resblocks=2)
    return _seeded(IJCN, seed, nc=[4, 8, 8, 16])


def save(model, path):
    torch.save(model.state_dict(), path)
    return path


def jpeg(path, pixels, qf=None, **kwargs):
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", **({"quality": qf} if qf else {}), **kwargs)
    path.write_bytes(buf.getvalue())
    return path


@pytest.fixture(autouse=True)
def _cpu_by_default(monkeypatch):
    # Comparisons are float32 on the CPU: CUDA's TF32 convolutions would need looser tolerances.
    import jpegbench.models.guided_inference as guided

    real = guided.pick_device
    monkeypatch.setattr(guided, "pick_device", lambda device=None: real("cpu" if device is None else device))


@pytest.fixture(autouse=True)
def _no_weights_env(monkeypatch):
    monkeypatch.delenv(weights_mod.WEIGHTS_DIR_ENV, raising=False)


# -- registry ------------------------------------------------------------------------


def test_registry_names():
    assert METHODS == ("jpeg", "fbcnn", "fbcnn-d", "fbcnn-a", "qcn", "qcn-d", "qgcn", "qgcn-d", "ijcn", "ijcn-d")
    assert GUIDED_METHODS == {"qcn": "qcn", "qcn-d": "qcn", "qgcn": "qgcn", "qgcn-d": "qgcn", "ijcn": "ijcn",
                              "ijcn-d": "ijcn"}  # fmt: skip
    method = get_method("qgcn-d", weights=make_model("qgcn"))
    assert isinstance(method, GuidedMethod) and method.reads_file and method.dominant
    assert method.architecture == "qgcn"
    assert get_method("jpeg").reads_file is False


# -- plain methods: the file's own tables --------------------------------------------


@pytest.mark.parametrize("arch", ["qcn", "qgcn"])
@pytest.mark.parametrize("color", ["gray", "rgb"])
def test_plain_method_uses_the_files_tables(arch, color, tmp_path, image_factory):
    pixels = image_factory(36, 52, color=color)
    path = jpeg(tmp_path / "a.jpg", pixels, 35)
    model = make_model(arch, "gray" if color == "gray" else "color")
    weights = save(model, tmp_path / "w.pth")
    result = get_method(arch, weights=weights, device="cpu")(path)
    expected, _ = restore_qcn(model, decode(path.read_bytes()), [ijg_qtable(35), ijg_qtable(35, chroma=True)])
    np.testing.assert_array_equal(result.image, expected)
    assert (result.qf_used, result.qf_source, result.qf_predicted) == (35.0, "tables", None)
    assert result.method == arch and result.weights == str(weights) and result.seconds > 0
    # Bytes work as well as a path.
    np.testing.assert_array_equal(get_method(arch, weights=model)(path.read_bytes()).image, expected)


def test_non_ijg_tables_are_recorded_as_approximate(tmp_path, image_factory):
    table = (ijg_qtable(50) * 1.3).astype(int).clip(1, 255)
    path = tmp_path / "custom.jpg"
    Image.fromarray(image_factory(32, 32)).save(path, format="JPEG", qtables=[table.flatten().tolist()])
    model = make_model("qcn")
    result = get_method("qcn", weights=model)(path)
    assert result.qf_source == "tables-approx" and 30 <= result.qf_used <= 45
    np.testing.assert_array_equal(result.image, restore_qcn(model, read_image(path), [table])[0])


def test_plain_ijcn(tmp_path, image_factory):
    path = jpeg(tmp_path / "c.jpg", image_factory(40, 72, color="rgb"), 25)
    model = make_model("ijcn")
    result = get_method("ijcn", weights=save(model, tmp_path / "i.pth"))(path)
    np.testing.assert_array_equal(result.image, restore_ijcn(model, read_coefficients(path))[0])
    assert (result.qf_used, result.qf_source) == (25.0, "tables") and result.image.shape == (40, 72, 3)


# -- the -d twins -------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["qcn", "qgcn"])
def test_d_twin_uses_the_ijg_tables_of_the_dominant_qf(arch, tmp_path, image_factory):
    pixels = image_factory(32, 40, color="rgb")
    path = jpeg(tmp_path / "a.jpg", pixels, 70)
    stub = StubEstimator(qf_dominant=23)
    model = make_model(arch, "color")
    result = get_method(f"{arch}-d", weights=model, estimator="paper", estimate_fn=stub)(path)
    assert stub.calls == [((32, 40), np.dtype(np.uint8), "paper", "fast")]  # the gray Y, as fbcnn-d hands it
    assert (result.qf_used, result.qf_source, result.method) == (23.0, "dominant", f"{arch}-d")
    expected, _ = restore_qcn(model, decode(path.read_bytes()), [ijg_qtable(23), ijg_qtable(23, chroma=True)])
    np.testing.assert_array_equal(result.image, expected)
    plain = get_method(arch, weights=model)(path)
    assert np.any(plain.image != result.image)


def test_ijcn_d_rescales_coefficients_to_the_dominant_tables(tmp_path, image_factory):
    path = jpeg(tmp_path / "c.jpg", image_factory(48, 64, color="rgb"), 60)
    model = make_model("ijcn", seed=2)
    stub = StubEstimator(qf_dominant=20)
    result = get_method("ijcn-d", weights=model, estimate_fn=stub)(path)
    expected, _ = restore_ijcn(model, read_coefficients(path), tables=[ijg_qtable(20), ijg_qtable(20, chroma=True)])
    np.testing.assert_array_equal(result.image, expected)
    assert (result.qf_used, result.qf_source) == (20.0, "dominant") and len(stub.calls) == 1


def test_d_twin_without_dominant_qf_falls_back_to_the_files_tables(tmp_path, image_factory):
    path = jpeg(tmp_path / "a.jpg", image_factory(24, 24), 45)
    model = make_model("qcn")
    result = get_method("qcn-d", weights=model, estimate_fn=StubEstimator(None))(path)
    assert (result.qf_used, result.qf_source) == (45.0, "tables")
    np.testing.assert_array_equal(result.image, get_method("qcn", weights=model)(path).image)


def test_manual_qf_means_ijg_tables_and_skips_the_estimator(tmp_path, image_factory):
    path = jpeg(tmp_path / "a.jpg", image_factory(24, 32), 45)
    model = make_model("qcn")
    stub = StubEstimator(qf_dominant=80)
    result = get_method("qcn-d", weights=model, estimate_fn=stub)(path, qf=12.4)
    assert stub.calls == [] and (result.qf_used, result.qf_source) == (12.0, "manual")
    np.testing.assert_array_equal(result.image, restore_qcn(model, read_image(path), [ijg_qtable(12)])[0])
    with pytest.raises(QualityError):
        get_method("qcn", weights=model)(path, qf=0)


def test_qcn_d_accepts_images_without_tables(tmp_path, image_factory):
    pixels = image_factory(24, 32)
    png = tmp_path / "a.png"
    Image.fromarray(pixels).save(png)
    model = make_model("qcn")
    result = get_method("qcn-d", weights=model, estimate_fn=StubEstimator(30))(png)
    np.testing.assert_array_equal(result.image, restore_qcn(model, pixels, [ijg_qtable(30)])[0])
    from_pixels = get_method("qcn-d", weights=model, estimate_fn=StubEstimator(30))(pixels)
    np.testing.assert_array_equal(from_pixels.image, result.image)
    with pytest.raises(ImageReadError, match="no dominant QF .* no quantization tables"):
        get_method("qcn-d", weights=model, estimate_fn=StubEstimator(None))(png)


@pytest.mark.parametrize("name", ["qcn", "qgcn", "ijcn", "ijcn-d"])
def test_methods_that_read_tables_refuse_images_without(name, tmp_path, image_factory):
    png = tmp_path / "a.png"
    Image.fromarray(image_factory(64, 64, color="rgb")).save(png)
    method = get_method(name, weights=make_model(GUIDED_METHODS[name], "color"))
    for call in (method, method.check):
        with pytest.raises(ImageReadError, match="not a JPEG file; method .* reads the file's"):
            call(png)
    with pytest.raises(InputError, match="decoded pixels"):
        method(image_factory(64, 64, color="rgb"))


@pytest.mark.parametrize("kind, message", [("gray", "colour JPEGs only; this file is gray"),
                                           ("444", "needs 4:2:0 chroma subsampling"),
                                           ("422", "this file is 4:2:2")])  # fmt: skip
def test_ijcn_refuses_gray_and_other_subsamplings(kind, message, tmp_path, image_factory):
    if kind == "gray":
        path = jpeg(tmp_path / "g.jpg", image_factory(32, 32), 50)
    else:
        path = jpeg(tmp_path / "c.jpg", image_factory(32, 32, color="rgb"), 50, subsampling=0 if kind == "444" else 1)
    for name in ("ijcn", "ijcn-d"):
        method = get_method(name, weights=make_model("ijcn"), estimate_fn=StubEstimator(30))
        for call in (method, method.check):
            with pytest.raises(UnsupportedImageError, match=message):
                call(path)


def test_colour_model_refuses_a_gray_jpeg_before_any_work(tmp_path, image_factory):
    path = jpeg(tmp_path / "g.jpg", image_factory(32, 32), 50)
    method = get_method("qgcn", weights=save(make_model("qgcn", "color"), tmp_path / "w.pth"))
    with pytest.raises(UnsupportedImageError, match="a colour QGCN needs a colour JPEG"):
        method.check(path)


def test_check_returns_the_size_and_lets_corrupt_files_through(tmp_path, image_factory):
    path = jpeg(tmp_path / "a.jpg", image_factory(30, 41), 50)
    method = get_method("qcn", weights=make_model("qcn"))
    assert method.check(path) == (30, 41)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(path.read_bytes()[:3])
    assert method.check(cut) is None  # the restoration skips it, as for FBCNN
    with pytest.raises(ImageReadError):
        method(cut)


# -- weights -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["qcn", "qgcn-d", "ijcn"])
def test_no_weights_fails_at_once_with_one_line(name, tmp_path, monkeypatch):
    import jpegbench.models.weights as weights_mod

    monkeypatch.setattr(weights_mod, "shipped_weights_dir", lambda: tmp_path)  # as if none shipped
    monkeypatch.delenv(weights_mod.WEIGHTS_DIR_ENV, raising=False)
    with pytest.raises(WeightsError, match="weights are shipped yet") as info:
        get_method(name, weights_dir=tmp_path)
    msg = str(info.value)
    assert "\n" not in msg and "--weights FILE" in msg and "--weights-dir" in msg


def test_weights_found_by_name_in_weights_dir_and_environment(tmp_path, monkeypatch, image_factory):
    path = jpeg(tmp_path / "a.jpg", image_factory(24, 24, color="rgb"), 40)
    folder = tmp_path / "w"
    folder.mkdir()
    save(make_model("qgcn", "gray", seed=4), folder / "qgcn_small_gray.pt")
    result = get_method("qgcn", weights_dir=folder)(path)  # a gray model restores the colour file's luma
    assert result.weights == str(folder / "qgcn_small_gray.pt") and result.image.shape == (24, 24, 3)
    save(make_model("qgcn", "color", seed=5), folder / "qgcn_color.pth")
    monkeypatch.setenv(weights_mod.WEIGHTS_DIR_ENV, str(folder))
    assert get_method("qgcn")(path).weights == str(folder / "qgcn_color.pth")  # own channels, full size first
    assert find_guided_weights("qgcn", channels=1) == folder / "qgcn_small_gray.pt"
    save(make_model("ijcn"), folder / "ijcn_small_color.pt")
    assert find_guided_weights("ijcn") == folder / "ijcn_small_color.pt"


def test_bad_weight_files_are_refused(tmp_path, image_factory):
    path = jpeg(tmp_path / "a.jpg", image_factory(24, 24), 40)
    other = save(make_model("qgcn"), tmp_path / "qgcn.pth")
    with pytest.raises(WeightsError, match="expected a QCN state dict, found a QGCN layout"):
        get_method("qcn", weights=other).check(path)
    pickled = tmp_path / "whole.pth"
    torch.save({"epoch": 3, "model": make_model("qcn")}, pickled)  # as the QCN authors save
    with pytest.raises(WeightsError, match="refused to unpickle"):
        get_method("qcn", weights=pickled)(path)
    with pytest.raises(InputError, match="a path, a file name or a QCN"):
        get_method("qcn", weights=make_model("qgcn"))


def test_tiling_is_checked_for_the_architecture():
    with pytest.raises(InputError, match="multiple of 64"):
        get_method("ijcn", weights=make_model("ijcn"), tile=96)
    assert get_method("qcn", weights=make_model("qcn"), tile=96)  # QCN tiles on the 8-pixel grid


def test_tiled_method_matches_untiled(tmp_path, image_factory):
    path = jpeg(tmp_path / "a.jpg", image_factory(150, 170), 30)
    model = make_model("qcn")  # margin 15 px: the overlap of 16 is exact
    whole = get_method("qcn", weights=model)(path).image
    tiled = get_method("qcn", weights=model, tile=64, overlap=16)(path).image
    assert np.abs(whole.astype(int) - tiled.astype(int)).max() <= 1


# -- restore_files ---------------------------------------------------------------------


def test_restore_files_writes_pngs_and_the_tables_record(tmp_path, image_factory):
    a = jpeg(tmp_path / "a.jpg", image_factory(40, 48), 30)
    b = jpeg(tmp_path / "b.jpg", image_factory(40, 48, color="rgb"), 60)
    weights = save(make_model("qcn"), tmp_path / "w.pth")
    run = restore_files([a, b], tmp_path / "out", method="qcn", weights=weights, device="cpu", progress=False)
    table = pd.read_csv(tmp_path / "out" / "restore.csv")
    assert list(table["qf_used"]) == [30.0, 60.0] and list(table["qf_source"]) == ["tables", "tables"]
    assert table["qf_predicted"].isna().all() and (table["weights"] == str(weights)).all()
    assert read_image(tmp_path / "out" / "b.png").shape == (40, 48, 3) and run.skipped == []


def test_restore_files_refuses_before_writing(tmp_path, image_factory):
    good = jpeg(tmp_path / "c.jpg", image_factory(32, 32, color="rgb"), 50)
    gray = jpeg(tmp_path / "g.jpg", image_factory(32, 32), 50)
    weights = save(make_model("ijcn"), tmp_path / "i.pth")
    with pytest.raises(UnsupportedImageError, match="g.jpg: IJCN restores colour JPEGs only"):
        restore_files([good, gray], tmp_path / "out", method="ijcn", weights=weights, progress=False)
    assert not (tmp_path / "out").exists()
