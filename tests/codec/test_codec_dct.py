"""Block DCT: round trip, orthonormality, and agreement with scipy.fft.dctn (independent reference)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from jpegbench.codec import block_dct, block_idct, dct_matrix
from jpegbench.errors import ShapeError

blocks = st.tuples(st.integers(1, 4), st.integers(1, 4)).flatmap(
    lambda hw: arrays(np.float64, (8 * hw[0], 8 * hw[1]), elements=st.floats(-1024, 1024, allow_nan=False))
)


@settings(max_examples=50, deadline=None)
@given(x=blocks)
def test_idct_inverts_dct(x):
    np.testing.assert_allclose(block_idct(block_dct(x)), x, atol=1e-9)


@settings(max_examples=50, deadline=None)
@given(x=blocks)
def test_dct_matches_scipy_per_block(x):
    h, w = x.shape
    ref = x.reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3)
    ref = scipy.fft.dctn(ref, axes=(-2, -1), norm="ortho", type=2).transpose(0, 2, 1, 3).reshape(h, w)
    np.testing.assert_allclose(block_dct(x), ref, atol=1e-9)


def test_matrix_is_orthonormal():
    c = dct_matrix(8)
    np.testing.assert_allclose(c @ c.T, np.eye(8), atol=1e-12)


def test_dc_is_eight_times_the_block_mean(rng):
    x = rng.integers(0, 256, (16, 24)).astype(np.float64)
    dc = block_dct(x)[::8, ::8]
    means = x.reshape(2, 8, 3, 8).mean(axis=(1, 3))
    np.testing.assert_allclose(dc, 8 * means, atol=1e-9)


def test_leading_axes_are_kept(rng):
    x = rng.normal(size=(2, 3, 8, 16))
    y = block_dct(x)
    assert y.shape == x.shape and y.dtype == np.float64
    np.testing.assert_allclose(y[1, 2], block_dct(x[1, 2]))


@pytest.mark.parametrize("shape", [(7, 8), (8, 12), (0, 8), (8,), ()])
def test_bad_shape_raises(shape):
    with pytest.raises(ShapeError, match="multiples of 8"):
        block_dct(np.zeros(shape))
