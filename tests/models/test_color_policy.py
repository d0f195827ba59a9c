"""Colour input gets the colour model, gray input the gray one; ``color_policy`` forces either path.

Tiny random checkpoints saved to a temporary weights folder stand in for the
shipped files, so these tests do not depend on which weights ship.
"""

from __future__ import annotations

import numpy as np
import pytest

import jpegbench.models.weights as weights_mod
from jpegbench.errors import InputError, WeightsError
from jpegbench.models import get_method, restore, save_checkpoint
from jpegbench.models.weights import COLOR_CHOICES, default_weights, find_weights


@pytest.fixture
def weights_dir(tmp_path, monkeypatch, model_factory):
    """A folder with a tiny gray and a tiny colour fbcnn (jpegbench's file names); no other folder configured."""
    monkeypatch.delenv(weights_mod.WEIGHTS_DIR_ENV, raising=False)
    save_checkpoint(model_factory(), tmp_path / "fbcnn_small_gray.pt")
    save_checkpoint(model_factory(in_nc=3, seed=1), tmp_path / "fbcnn_small_color.pt")
    return tmp_path


def test_policies():
    assert COLOR_CHOICES == ("auto", "color", "luma")


@pytest.mark.parametrize(
    ("channels", "policy", "expected"),
    [
        (1, "auto", "fbcnn_small_gray.pt"),
        (1, "color", "fbcnn_small_gray.pt"),  # gray images always get the gray model
        (1, "luma", "fbcnn_small_gray.pt"),
        (3, "auto", "fbcnn_small_color.pt"),
        (3, "color", "fbcnn_small_color.pt"),
        (3, "luma", "fbcnn_small_gray.pt"),
    ],
)
def test_find_weights_by_channels_and_policy(weights_dir, channels, policy, expected):
    assert find_weights("fbcnn", channels=channels, weights_dir=weights_dir, color_policy=policy).name == expected


def test_without_a_colour_file_auto_falls_back_to_the_luma_and_color_refuses(weights_dir):
    (weights_dir / "fbcnn_small_color.pt").unlink()
    assert find_weights("fbcnn", channels=3, weights_dir=weights_dir).name == "fbcnn_small_gray.pt"
    with pytest.raises(WeightsError, match="fbcnn_color.pth or fbcnn_small_color.pt.*--color-policy luma"):
        find_weights("fbcnn", channels=3, weights_dir=weights_dir, color_policy="color")
    with pytest.raises(InputError, match="color_policy must be one of"):
        find_weights("fbcnn", channels=3, weights_dir=weights_dir, color_policy="y")


def test_the_authors_colour_file_comes_first(weights_dir, model_factory):
    save_checkpoint(model_factory(in_nc=3, seed=2), weights_dir / "fbcnn_color.pth")
    assert find_weights("fbcnn", channels=3, weights_dir=weights_dir).name == "fbcnn_color.pth"
    # The authors released no colour double-JPEG model: fbcnn-a has jpegbench's file only.
    with pytest.raises(WeightsError, match="fbcnn_a_small_color.pt"):
        find_weights("fbcnn-a", channels=3, weights_dir=weights_dir, color_policy="color")


def test_a_colour_file_in_any_configured_folder_beats_a_gray_one(tmp_path, monkeypatch, model_factory):
    first, env = tmp_path / "first", tmp_path / "env"
    first.mkdir()
    env.mkdir()
    save_checkpoint(model_factory(), first / "fbcnn_gray.pth")
    save_checkpoint(model_factory(in_nc=3), env / "fbcnn_small_color.pt")
    monkeypatch.setenv(weights_mod.WEIGHTS_DIR_ENV, str(env))
    assert find_weights("fbcnn", channels=3, weights_dir=first) == env / "fbcnn_small_color.pt"
    assert find_weights("fbcnn", channels=1, weights_dir=first) == first / "fbcnn_gray.pth"


def test_shipped_folder(tmp_path, monkeypatch, model_factory):
    monkeypatch.delenv(weights_mod.WEIGHTS_DIR_ENV, raising=False)
    monkeypatch.setattr(weights_mod, "shipped_weights_dir", lambda: tmp_path)
    save_checkpoint(model_factory(), tmp_path / "fbcnn_a_small_gray.pt")
    assert find_weights("fbcnn-a", channels=3) == tmp_path / "fbcnn_a_small_gray.pt"  # not shipped yet: luma
    with pytest.raises(WeightsError, match="no shipped weights for 'fbcnn-a'"):
        default_weights("fbcnn-a", channels=3)
    save_checkpoint(model_factory(in_nc=3), tmp_path / "fbcnn_a_small_color.pt")
    assert find_weights("fbcnn-a", channels=3) == tmp_path / "fbcnn_a_small_color.pt"
    assert default_weights("fbcnn-a", channels=3) == tmp_path / "fbcnn_a_small_color.pt"
    assert find_weights("fbcnn-a", channels=1) == tmp_path / "fbcnn_a_small_gray.pt"


@pytest.mark.parametrize("name", ["fbcnn", "fbcnn-d", "fbcnn-a"])
def test_methods_pick_the_model_by_the_image(weights_dir, image_factory, name, model_factory):
    save_checkpoint(model_factory(), weights_dir / "fbcnn_a_small_gray.pt")
    save_checkpoint(model_factory(in_nc=3, seed=3), weights_dir / "fbcnn_a_small_color.pt")
    method = get_method(name, weights_dir=weights_dir, device="cpu", estimate_fn=lambda *a, **k: None)
    rgb = method(image_factory(24, 32, color="rgb"), qf=30)
    gray = method(image_factory(24, 32), qf=30)
    stem = "fbcnn_a_small" if name == "fbcnn-a" else "fbcnn_small"
    assert (rgb.color_path, rgb.weights) == ("color", str(weights_dir / f"{stem}_color.pt"))
    assert (gray.color_path, gray.weights) == ("gray", str(weights_dir / f"{stem}_gray.pt"))
    assert rgb.image.shape == (24, 32, 3) and gray.image.shape == (24, 32)


def test_luma_policy_is_the_gray_model_on_y(weights_dir, image_factory, model_factory):
    image = image_factory(24, 32, color="rgb")
    r = get_method("fbcnn", weights_dir=weights_dir, device="cpu", color_policy="luma")(image, qf=40)
    assert r.color_path == "luma" and r.weights.endswith("fbcnn_small_gray.pt")
    np.testing.assert_array_equal(r.image, restore(model_factory(), image, qf=40, color_policy="y").image)
    # The older name of the same path.
    assert get_method("fbcnn", weights_dir=weights_dir, device="cpu", color_policy="y")(image).color_path == "luma"


def test_named_weights_must_fit_the_policy(weights_dir, image_factory, model_factory):
    rgb = image_factory(16, 16, color="rgb")
    gray_file, color_file = weights_dir / "fbcnn_small_gray.pt", weights_dir / "fbcnn_small_color.pt"
    assert get_method("fbcnn", weights=gray_file, device="cpu")(rgb).color_path == "luma"
    assert get_method("fbcnn", weights=color_file, device="cpu")(rgb).color_path == "color"
    with pytest.raises(WeightsError, match="'color' needs a colour"):
        get_method("fbcnn", weights=gray_file, device="cpu", color_policy="color")(rgb)
    with pytest.raises(WeightsError, match="'color' needs a colour"):
        get_method("fbcnn", weights=model_factory(), device="cpu", color_policy="color")(rgb)
    with pytest.raises(WeightsError, match="'luma' needs a gray"):
        get_method("fbcnn", weights=color_file, device="cpu", color_policy="luma")(rgb)


def test_jpeg_has_no_colour_path(image_factory):
    assert get_method("jpeg")(image_factory(16, 16, color="rgb")).color_path is None
