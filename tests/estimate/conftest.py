"""Fixtures for the estimate tests: natural images (scikit-image's bundled CC0 photographs) and degraders."""

from __future__ import annotations

import numpy as np
import pytest

from jpegbench.codec import jpeg_roundtrip


@pytest.fixture(scope="session")
def camera() -> np.ndarray:
    """scikit-image's ``camera`` (512 x 512 gray, public domain), bundled in the wheel."""
    from skimage import data

    return data.camera()


@pytest.fixture(scope="session")
def double_jpeg():
    """``double_jpeg(x, qf1, qf2, (dy, dx))``: JPEG at qf1, remove dy rows / dx columns, JPEG at qf2."""

    def make(x: np.ndarray, qf1: int, qf2: int, shift: tuple[int, int] = (0, 0)) -> np.ndarray:
        dy, dx = shift
        return jpeg_roundtrip(np.ascontiguousarray(jpeg_roundtrip(x, qf1)[dy:, dx:]), qf2)

    return make


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """One intra-op thread (the root conftest's fixture): the fast backend's small ops only lose on two shared cores."""
    yield
