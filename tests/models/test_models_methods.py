"""Method registry: jpeg, fbcnn, fbcnn-d (estimator-driven QF), fbcnn-a, manual QF."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import jpegbench.models.weights as weights_mod
from jpegbench.errors import InputError, WeightsError
from jpegbench.models import METHODS, Restoration, get_method, restore, save_checkpoint


class StubEstimator:
    """Stands in for jpegbench.estimate.estimate_qf; records its calls."""

    def __init__(self, qf_dominant):
        self.qf_dominant = qf_dominant
        self.calls = []

    def __call__(self, pixels, *, estimator, backend):
        self.calls.append((pixels.shape, pixels.dtype, estimator, backend))
        return SimpleNamespace(qf_dominant=self.qf_dominant)


def test_methods_tuple():
    # The table-guided methods are tested in test_guided_methods.py.
    assert METHODS[:4] == ("jpeg", "fbcnn", "fbcnn-d", "fbcnn-a")


def test_unknown_method_lists_valid_names():
    with pytest.raises(InputError, match="valid methods: jpeg, fbcnn, fbcnn-d, fbcnn-a"):
        get_method("dncnn")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"estimator": "magic"},
        {"color_policy": "rgb"},
        {"tile": 100},
        {"device": "tpu"},
        {"weights": 3},
        {"estimate_fn": 5},
    ],
)
def test_bad_options(kwargs):
    with pytest.raises(InputError):
        get_method("fbcnn", **kwargs)


def test_jpeg_is_identity(image_factory):
    image = image_factory(20, 24)
    result = get_method("jpeg")(image)
    assert isinstance(result, Restoration)
    np.testing.assert_array_equal(result.image, image)
    assert result.image is not image
    assert (result.qf_predicted, result.qf_used, result.method, result.weights) == (None, None, "jpeg", None)
    with pytest.raises(InputError, match="no qf"):
        get_method("jpeg")(image, qf=30)


def test_fbcnn_blind_with_checkpoint(tmp_path, model_factory, image_factory):
    model = model_factory()
    path = save_checkpoint(model, tmp_path / "m.pt")
    image = image_factory(24, 32)
    result = get_method("fbcnn", weights=path, device="cpu")(image)
    expected = restore(model, image)
    assert type(expected) is type(result) is Restoration  # one result type for restore() and methods
    assert (expected.method, expected.weights, expected.tiles) == (None, None, 1)
    np.testing.assert_array_equal(result.image, expected.image)
    assert result.qf_used == result.qf_predicted == pytest.approx(expected.qf_predicted)
    assert (result.method, result.weights) == ("fbcnn", str(path))
    assert result.seconds >= 0


def test_fbcnn_manual_qf(model_factory, image_factory):
    method = get_method("fbcnn", weights=model_factory())
    image = image_factory(24, 32)
    blind, manual = method(image), method(image, qf=12)
    assert manual.qf_used == 12.0
    assert manual.qf_predicted == pytest.approx(blind.qf_predicted)
    assert np.any(manual.image != blind.image)


def test_fbcnn_d_uses_estimated_dominant_qf(model_factory, image_factory):
    stub = StubEstimator(qf_dominant=37)
    model = model_factory()
    image = image_factory(24, 32, color="rgb")
    result = get_method("fbcnn-d", weights=model, estimator="paper", estimate_fn=stub)(image)
    assert stub.calls == [((24, 32), np.dtype(np.uint8), "paper", "fast")]  # gray Y handed to the estimator
    assert result.qf_used == 37.0 and result.qf_source == "dominant"
    assert result.method == "fbcnn-d"
    np.testing.assert_array_equal(result.image, restore(model, image, qf=37, color_policy="y").image)


def test_fbcnn_d_manual_qf_skips_estimator(model_factory, image_factory):
    stub = StubEstimator(qf_dominant=37)
    result = get_method("fbcnn-d", weights=model_factory(), estimate_fn=stub)(image_factory(16, 16), qf=80)
    assert stub.calls == [] and result.qf_used == 80.0 and result.qf_source == "manual"


def test_fbcnn_d_without_dominant_qf_falls_back_to_blind(model_factory, image_factory):
    result = get_method("fbcnn-d", weights=model_factory(), estimate_fn=StubEstimator(None))(image_factory(16, 16))
    assert result.qf_used == result.qf_predicted and result.qf_source == "predicted"


def test_fbcnn_a_finds_double_weights_in_folder(tmp_path, monkeypatch, model_factory, image_factory):
    monkeypatch.delenv(weights_mod.WEIGHTS_DIR_ENV, raising=False)
    save_checkpoint(model_factory(seed=7), tmp_path / "fbcnn_gray_double.pth")
    result = get_method("fbcnn-a", weights_dir=tmp_path, device="cpu")(image_factory(16, 24, color="rgb"))
    assert result.weights == str(tmp_path / "fbcnn_gray_double.pth")
    assert result.image.shape == (16, 24, 3)


def test_missing_weights_folder_file_is_an_error(tmp_path, monkeypatch, image_factory):
    monkeypatch.delenv(weights_mod.WEIGHTS_DIR_ENV, raising=False)
    method = get_method("fbcnn", weights_dir=tmp_path)
    with pytest.raises(WeightsError, match="fbcnn_gray.pth"):
        method(image_factory(16, 16))


def test_missing_weights_path_fails_at_lookup(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        get_method("fbcnn", weights=tmp_path / "nope" / "w.pth")
