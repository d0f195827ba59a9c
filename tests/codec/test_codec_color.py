"""Y definitions and YCbCr conversion.

Reference: MATLAB ``rgb2ycbcr`` (ITU-R BT.601 studio swing) and the JFIF
full-range luma ``0.299 R + 0.587 G + 0.114 B``, written out by hand below.
"""

from __future__ import annotations

import numpy as np
import pytest

from jpegbench.codec import rgb_to_y, rgb_to_ycbcr, to_gray, ycbcr_to_rgb
from jpegbench.errors import InputError, ShapeError


def test_studio_y_reference_values():
    rgb = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255]]], np.uint8)
    # 16, 235, 16 + 65.481 = 81.481 -> 81, 16 + 128.553 -> 145, 16 + 24.966 -> 41
    assert rgb_to_y(rgb).tolist() == [[16, 235, 81, 145, 41]]


def test_full_range_y_reference_values():
    rgb = np.array([[[255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255]]], np.uint8)
    # 255, 76.245 -> 76, 149.685 -> 150, 29.07 -> 29
    assert rgb_to_y(rgb, definition="bt601-full").tolist() == [[255, 76, 150, 29]]


def test_ycbcr_round_trip_is_within_one(rng):
    rgb = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    back = ycbcr_to_rgb(rgb_to_ycbcr(rgb))
    assert np.abs(back.astype(int) - rgb).max() <= 1


def test_ycbcr_y_is_unrounded_studio_y(rng):
    rgb = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    y = rgb_to_ycbcr(rgb)[..., 0]
    np.testing.assert_allclose(y, 16 + rgb.astype(float) @ np.array([65.481, 128.553, 24.966]) / 255)
    assert np.array_equal(np.round(y).astype(np.uint8), rgb_to_y(rgb))


def test_to_gray_passes_gray_through(make_image):
    g = make_image(8, 8)
    assert to_gray(g) is g
    assert to_gray(make_image(8, 8, color="rgb")).shape == (8, 8)


def test_bad_inputs():
    with pytest.raises(ShapeError, match=r"\(H, W, 3\)"):
        rgb_to_y(np.zeros((4, 4), np.uint8))
    with pytest.raises(ShapeError, match="uint8"):
        rgb_to_y(np.zeros((4, 4, 3)))
    with pytest.raises(InputError, match="definition"):
        rgb_to_y(np.zeros((4, 4, 3), np.uint8), definition="bt709")
    with pytest.raises(ShapeError, match=r"\(H, W, 3\)"):
        ycbcr_to_rgb(np.zeros((4, 4)))
