"""Orthonormal 8x8 block DCT-II and its inverse (the JPEG transform, without level shift)."""

from __future__ import annotations

import numpy as np

from jpegbench.errors import ShapeError

__all__ = ["dct_matrix", "block_dct", "block_idct"]


def dct_matrix(n: int = 8) -> np.ndarray:
    """The orthonormal DCT-II matrix ``C`` (``C @ C.T == I``); row k is frequency k."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    c = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    c[0] /= np.sqrt(2.0)
    return c


_C = dct_matrix(8)


def _blocks(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 2 or x.shape[-1] % 8 or x.shape[-2] % 8 or x.shape[-1] == 0 or x.shape[-2] == 0:
        raise ShapeError(f"block DCT needs (..., H, W) with H and W positive multiples of 8, got {x.shape}")
    *lead, h, w = x.shape
    return x.reshape(*lead, h // 8, 8, w // 8, 8)


def block_dct(x: np.ndarray) -> np.ndarray:
    """Orthonormal 2-D DCT of every 8x8 block of ``(..., H, W)``; same shape, float64."""
    b = _blocks(x)
    return np.einsum("ki,...aibj,lj->...akbl", _C, b, _C).reshape(np.shape(x))


def block_idct(coeffs: np.ndarray) -> np.ndarray:
    """Inverse of :func:`block_dct`."""
    b = _blocks(coeffs)
    # X = C.T @ D @ C per block (C is orthonormal, so C.T is its inverse).
    return np.einsum("ki,...akbl,lj->...aibj", _C, b, _C).reshape(np.shape(coeffs))
