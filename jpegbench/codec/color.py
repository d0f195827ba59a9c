"""Colour conversions and the Y-channel definitions used in JPEG restoration.

Two Y definitions are in use in this field and give different numbers:

``"bt601-studio"``
    MATLAB's ``rgb2ycbcr`` (ITU-R BT.601, studio swing, Y in 16..235):
    ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255``. The FBCNN/KAIR code
    (``utils_image.rgb2ycbcr(img, only_y=True)``) and the LIVE1 gray test set
    use it; jpegbench's "gray" means this definition.
``"bt601-full"``
    JFIF / libjpeg / ``cv2.COLOR_RGB2GRAY`` full-range luma:
    ``Y = 0.299 R + 0.587 G + 0.114 B``.

uint8 input gives uint8 output rounded half to even (as numpy's ``round``,
matching the KAIR code).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from jpegbench.codec._validate import check_pixels
from jpegbench.errors import InputError, ShapeError

YDefinition = Literal["bt601-studio", "bt601-full"]
Y_DEFINITIONS: tuple[str, ...] = ("bt601-studio", "bt601-full")

_STUDIO = np.array([65.481, 128.553, 24.966]) / 255.0
_FULL = np.array([0.299, 0.587, 0.114])

# MATLAB rgb2ycbcr matrix (rows Y, Cb, Cr), applied to RGB in 0..255, offsets added after.
_YCBCR = np.array(
    [[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]]
) / 255.0
_YCBCR_OFFSET = np.array([16.0, 128.0, 128.0])


def rgb_to_y(rgb: np.ndarray, *, definition: YDefinition = "bt601-studio") -> np.ndarray:
    """Return the luma of an RGB image.

    Parameters
    ----------
    rgb : ndarray, uint8, shape (H, W, 3)
    definition : {"bt601-studio", "bt601-full"}
        Which Y (see the module docstring).

    Returns
    -------
    ndarray, uint8, shape (H, W)
    """
    rgb = check_pixels(rgb, name="rgb")
    if rgb.ndim != 3:
        raise ShapeError(f"rgb must have shape (H, W, 3), got {rgb.shape}")
    if definition == "bt601-studio":
        y = rgb.astype(np.float64) @ _STUDIO + 16.0
    elif definition == "bt601-full":
        y = rgb.astype(np.float64) @ _FULL
    else:
        raise InputError(f"definition must be one of {Y_DEFINITIONS}, got {definition!r}")
    return np.clip(np.round(y), 0, 255).astype(np.uint8)


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """MATLAB ``rgb2ycbcr`` on uint8 RGB; returns float64 ``(H, W, 3)`` (Y, Cb, Cr), unrounded."""
    rgb = check_pixels(rgb, name="rgb")
    if rgb.ndim != 3:
        raise ShapeError(f"rgb must have shape (H, W, 3), got {rgb.shape}")
    return rgb.astype(np.float64) @ _YCBCR.T + _YCBCR_OFFSET


def ycbcr_to_rgb(ycbcr: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_ycbcr`; returns uint8 RGB (rounded and clipped)."""
    ycbcr = np.asarray(ycbcr, dtype=np.float64)
    if ycbcr.ndim != 3 or ycbcr.shape[2] != 3:
        raise ShapeError(f"ycbcr must have shape (H, W, 3), got {ycbcr.shape}")
    rgb = (ycbcr - _YCBCR_OFFSET) @ np.linalg.inv(_YCBCR).T
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)


def to_gray(pixels: np.ndarray, *, definition: YDefinition = "bt601-studio") -> np.ndarray:
    """Gray pixels unchanged; RGB converted with :func:`rgb_to_y`."""
    pixels = check_pixels(pixels)
    return pixels if pixels.ndim == 2 else rgb_to_y(pixels, definition=definition)
