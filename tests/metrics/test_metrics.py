"""psnr, ssim, psnrb, blocking_effect_factor: reference values, properties, errors.

Reference implementations:

* PSNR: ``skimage.metrics.peak_signal_noise_ratio(data_range=255)``.
* SSIM: ``jpegbench.metrics.ssim`` calls
  ``skimage.metrics.structural_similarity``, so skimage is no independent
  reference for it. The reference here is ``_ssim_valid``: the KAIR
  ``calculate_ssim`` written out with no padding at all (every window fully
  inside the image, via ``sliding_window_view``), which is what the docstring
  of ``ssim`` claims skimage's filter-then-crop equals to rounding error.
* PSNR-B / BEF: no independent implementation exists in our dependencies, so
  the reference values are worked out by hand on blocky images whose inner
  differences are zero (derivations next to each test).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view
from skimage.metrics import peak_signal_noise_ratio

from jpegbench.codec import jpeg_roundtrip
from jpegbench.errors import InputError, ShapeError
from jpegbench.metrics import METRIC_CONVENTIONS, Y_DEFINITIONS_BEF, blocking_effect_factor, psnr, psnrb, ssim



def _ssim_valid(x: np.ndarray, y: np.ndarray, sigma: float = 1.5, size: int = 11, data_range: float = 255.0) -> float:
    """Mean SSIM over windows fully inside the image (KAIR ``calculate_ssim``), mean over channels."""
    t = np.arange(size) - (size - 1) / 2
    g = np.exp(-(t**2) / (2 * sigma**2))
    w = np.outer(g, g) / np.outer(g, g).sum()  # cv2.getGaussianKernel(size, sigma) outer itself
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    x, y = np.atleast_3d(x).astype(np.float64), np.atleast_3d(y).astype(np.float64)
    means = []
    for c in range(x.shape[2]):
        def f(im):
            return np.einsum("ijkl,kl->ij", sliding_window_view(im, (size, size)), w)
        a, b = x[..., c], y[..., c]
        mu1, mu2 = f(a), f(b)
        s11, s22, s12 = f(a * a) - mu1**2, f(b * b) - mu2**2, f(a * b) - mu1 * mu2
        m = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1**2 + mu2**2 + c1) * (s11 + s22 + c2))
        means.append(m.mean())
    return float(np.mean(means))


def _pair(make_image, color, qf=30, h=64, w=80, seed=1):
    x = make_image(h, w, color=color, seed=seed)
    return x, jpeg_roundtrip(x, qf)


def _checkerboard(h: int, w: int, low: int = 100, high: int = 110) -> np.ndarray:
    """8x8 blocks alternating ``low``/``high``: every block edge jumps by ``high - low``, nothing inside."""
    by, bx = np.indices((h, w)) // 8
    return np.where((by + bx) % 2 == 0, low, high).astype(np.uint8)


# -- reference values -----------------------------------------------------------------


@pytest.mark.parametrize("color", ["gray", "rgb"])
def test_psnr_matches_skimage(make_image, color):
    x, y = _pair(make_image, color)
    assert psnr(x, y) == pytest.approx(peak_signal_noise_ratio(x, y, data_range=255), abs=1e-10)


@pytest.mark.parametrize("color", ["gray", "rgb"])
@pytest.mark.parametrize(("h", "w"), [(64, 80), (37, 53)])  # 37x53: no multiple of 8, odd sides
def test_ssim_equals_the_valid_window_reference(make_image, color, h, w):
    # Pins the claim in ssim's docstring: skimage's reflect-pad-then-crop equals
    # the authors' valid filtering to rounding error (measured <= 5.6e-16 per
    # image on the paper's test sets), so it decides no printed digit.
    x, y = _pair(make_image, color, h=h, w=w)
    assert ssim(x, y) == pytest.approx(_ssim_valid(x, y), abs=1e-13)


def test_ssim_other_sigma_equals_the_valid_window_reference(make_image):
    # sigma 1.0: skimage cuts at 3.5 sigma -> radius int(4.0) = 4 -> a 9x9 window.
    x, y = _pair(make_image, "rgb")
    assert ssim(x, y, sigma=1.0, window_size=9) == pytest.approx(_ssim_valid(x, y, sigma=1.0, size=9), abs=1e-13)


def test_psnr_reference_value_by_hand():
    x = np.zeros((4, 4), np.uint8)
    y = x.copy()
    y[0, 0] = 16  # MSE = 256 / 16 = 16
    assert psnr(x, y) == pytest.approx(10 * math.log10(255**2 / 16))


def test_bef_checkerboard_by_hand():
    # 16x16, blocks of 8: one boundary column (7|8) and one boundary row, 16 pairs
    # each, every pair differs by 10 -> boundary mean 100; inner differences 0;
    # eta = log2(8) / log2(16) = 3/4 -> BEF = 75 (both counting conventions agree).
    im = _checkerboard(16, 16)
    for count in ("fractional", "floor"):
        assert blocking_effect_factor(im, boundary_count=count) == pytest.approx(75.0)


def test_bef_counts_differ_when_size_is_not_a_multiple_of_8():
    # 20x20: boundary columns 7 and 15 (2 x 20 pairs differing by 10) and the same
    # for rows -> sum of squares 80 * 100 = 8000.
    # fractional: N_HB = N_VB = 20 * (20/8 - 1) = 30 -> mean 8000/60;
    # floor:      N_HB = N_VB = 20 * (20//8 - 1) = 20 -> mean 8000/40.
    # Inner differences are 0; eta = 3 / log2(20).
    im = _checkerboard(20, 20)
    eta = 3 / math.log2(20)
    assert blocking_effect_factor(im) == pytest.approx(eta * 8000 / 60)
    assert blocking_effect_factor(im, boundary_count="floor") == pytest.approx(eta * 8000 / 40)


def test_bef_is_zero_without_blocking(make_image):
    smooth = np.tile(np.arange(32, dtype=np.uint8) * 4, (32, 1))  # same step everywhere
    assert blocking_effect_factor(smooth) == 0.0
    assert blocking_effect_factor(np.full((16, 16), 7, np.uint8)) == 0.0


def test_psnrb_checkerboard_by_hand():
    # image_test == image_true -> MSE 0, PSNR-B = 10 log10(255^2 / BEF) with BEF 75.
    im = _checkerboard(16, 16)
    assert psnrb(im, im) == pytest.approx(10 * math.log10(255**2 / 75.0))


def test_psnrb_rgb_default_uses_bgr_studio_y():
    # Blue-only blocks: the default Y weights blue by 65.481/255, the textbook Y by
    # 24.966/255; the jump of 40 in B gives Y jumps of 40*w rounded.
    b = _checkerboard(16, 16, 0, 40)
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[..., 2] = b
    for definition, weight in (("bt601-studio-bgr", 65.481), ("bt601-studio", 24.966)):
        step = round(16 + 40 * weight / 255) - 16
        assert psnrb(rgb, rgb, y_definition=definition) == pytest.approx(10 * math.log10(255**2 / (0.75 * step**2)))
    full_step = 40 * 0.114  # unrounded full-range Y
    assert psnrb(rgb, rgb, y_definition="bt601-full", y_rounding=False) == pytest.approx(
        10 * math.log10(255**2 / (0.75 * full_step**2))
    )


# -- properties -------------------------------------------------------------------------


@pytest.mark.parametrize("color", ["gray", "rgb"])
def test_identical_images(make_image, color):
    x = make_image(40, 48, color=color)
    assert psnr(x, x) == math.inf
    assert ssim(x, x) == pytest.approx(1.0, abs=1e-12)


def test_psnrb_identical_unblocked_image_is_inf():
    flat = np.full((24, 24, 3), 90, np.uint8)
    assert psnrb(flat, flat) == math.inf


@pytest.mark.parametrize("color", ["gray", "rgb"])
def test_psnr_and_ssim_are_symmetric(make_image, color):
    x, y = _pair(make_image, color, qf=20)
    assert psnr(x, y) == psnr(y, x)
    assert ssim(x, y) == pytest.approx(ssim(y, x), abs=1e-14)


@pytest.mark.parametrize("color", ["gray", "rgb"])
def test_psnrb_bef_on_selects_the_image(make_image, color):
    # PSNR-B is not symmetric: the BEF belongs to one image; bef_on picks which.
    x, y = _pair(make_image, color, qf=10)
    assert psnrb(x, y) == pytest.approx(psnrb(y, x, bef_on="true"))
    assert psnrb(x, y) <= psnr(x, y) + 1e-12  # BEF >= 0


def test_psnrb_conventions_agree_on_gray(make_image):
    x, y = _pair(make_image, "gray", qf=10)
    ref = psnrb(x, y)
    for channels in ("all", "y", "per-channel"):
        assert psnrb(x, y, channels=channels) == pytest.approx(ref)


def test_psnrb_per_channel_on_replicated_gray_equals_gray(make_image):
    x, y = _pair(make_image, "gray", qf=10)
    x3, y3 = np.repeat(x[..., None], 3, axis=2), np.repeat(y[..., None], 3, axis=2)
    assert psnrb(x3, y3, channels="per-channel") == pytest.approx(psnrb(x, y))


@pytest.mark.parametrize("border", [1, 4])
def test_border_crops_before_comparing(make_image, border):
    x, y = _pair(make_image, "rgb")
    crop = (slice(border, -border), slice(border, -border))
    assert psnr(x, y, border=border) == pytest.approx(psnr(x[crop], y[crop]))
    assert ssim(x, y, border=border) == pytest.approx(ssim(x[crop], y[crop]))
    assert psnrb(x, y, border=border) == pytest.approx(psnrb(x[crop], y[crop]))


def test_channels_y_compares_luma(make_image):
    from jpegbench.codec import rgb_to_y

    x, y = _pair(make_image, "rgb")
    assert psnr(x, y, channels="y") == pytest.approx(psnr(rgb_to_y(x), rgb_to_y(y)))
    assert ssim(x, y, channels="y") == pytest.approx(ssim(rgb_to_y(x), rgb_to_y(y)))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), qf=st.integers(1, 100), color=st.sampled_from(["gray", "rgb"]))
def test_metrics_are_finite_and_in_range(seed, qf, color):
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(16, 40)), int(rng.integers(16, 40))) + ((3,) if color == "rgb" else ())
    x = rng.integers(0, 256, shape, dtype=np.uint8)
    y = jpeg_roundtrip(x, qf)
    p, s, b = psnr(x, y), ssim(x, y), psnrb(x, y)
    assert 0 < p < math.inf or np.array_equal(x, y)
    assert -1 <= s <= 1
    assert b <= p + 1e-12


# -- errors -----------------------------------------------------------------------------

GOOD = np.zeros((32, 32), np.uint8)


@pytest.mark.parametrize("metric", [psnr, ssim, psnrb])
@pytest.mark.parametrize(
    ("a", "b", "match"),
    [
        (GOOD, np.zeros((32, 33), np.uint8), "same shape"),
        (np.zeros((32, 32, 4), np.uint8), np.zeros((32, 32, 4), np.uint8), r"\(H, W\) or \(H, W, 3\)"),
        (np.zeros((2, 32, 32, 3), np.uint8), np.zeros((2, 32, 32, 3), np.uint8), r"\(H, W\) or \(H, W, 3\)"),
        (np.zeros(32, np.uint8), np.zeros(32, np.uint8), r"\(H, W\) or \(H, W, 3\)"),
        (GOOD.tolist(), GOOD, "numpy array"),
        (np.zeros((0, 0), np.uint8), np.zeros((0, 0), np.uint8), "empty"),
    ],
)
def test_bad_shapes_raise_shape_error(metric, a, b, match):
    with pytest.raises(ShapeError, match=match):
        metric(a, b)


@pytest.mark.parametrize("metric", [psnr, ssim, psnrb])
@pytest.mark.parametrize(("border", "match"), [(-1, ">= 0"), (16, "leaves nothing"), (40, "leaves nothing")])
def test_bad_border_raises_input_error(metric, border, match):
    with pytest.raises(InputError, match=match):
        metric(GOOD, GOOD, border=border)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"bef_on": "both"}, "bef_on"),
        ({"channels": "rgb"}, "channels"),
        ({"y_definition": "bt709"}, "y_definition"),
        ({"boundary_count": "ceil"}, "boundary_count"),
    ],
)
def test_psnrb_unknown_convention_raises(kwargs, match):
    rgb = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(InputError, match=match):
        psnrb(rgb, rgb, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"window_size": 7}, "window_size must be .* = 11 for sigma=1.5"),
        ({"sigma": 1.0}, "= 9 for sigma=1.0"),
        ({"sigma": 0.0}, "sigma must be > 0"),
    ],
)
def test_ssim_bad_window_raises_input_error(kwargs, match):
    with pytest.raises(InputError, match=match):
        ssim(GOOD, GOOD, **kwargs)


def test_too_small_for_the_metric_raises():
    tiny = np.zeros((11, 40), np.uint8)
    with pytest.raises(ShapeError, match="11x11 window"):
        ssim(tiny, tiny)
    small = np.zeros((12, 40), np.uint8)
    with pytest.raises(ShapeError, match="at least 16x16"):
        psnrb(small, small)
    with pytest.raises(ShapeError, match="2-D"):
        blocking_effect_factor(np.zeros((16, 16, 3)))


def test_errors_are_value_errors():
    # The leaves also subclass the built-in, for callers who do not know jpegbench.
    with pytest.raises(ValueError):
        psnr(GOOD, GOOD[:-1])


def test_conventions_are_stated():
    assert "BGR" in METRIC_CONVENTIONS and "fractional" in METRIC_CONVENTIONS
    assert Y_DEFINITIONS_BEF[0] == "bt601-studio-bgr"
