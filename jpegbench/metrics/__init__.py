"""Image quality metrics with the FBCNN authors' conventions as defaults.

Defaults reproduce every printed digit of the JPEG columns of the FBCNN
paper's Tables 1 and 2 (LIVE1 gray, Classic5, LIVE1 colour; QF 10-40) with
:func:`jpegbench.codec.jpeg_roundtrip`; see ``tests/metrics/test_paper_tables.py``.

* ``psnr``: on the 8-bit images, MSE over all pixels and channels, peak 255.
* ``ssim``: Wang et al. (2004) with an 11x11 Gaussian window (sigma 1.5),
  ``K1=0.01, K2=0.03``, "valid" filtering (the map is cropped by 5 pixels on
  each side), per channel and averaged for RGB (the KAIR ``calculate_ssim``),
  computed by scikit-image's ``structural_similarity``, which equals it to
  rounding error (see :func:`ssim`).
* ``psnrb``: Yim & Bovik (2011) PSNR-B ``= 10 log10(255^2 / (MSE + BEF))``,
  the FBCNN ``utils_image.calculate_psnrb``:

  - the MSE is over all pixels and channels (RGB for colour);
  - the blocking-effect factor BEF is computed on the *test*
    (compressed/restored) image only; for RGB on a Y channel rounded to
    integers;
  - the boundary-pair counts in BEF use true division,
    ``N_HB = H (W / 8 - 1)``, so they are fractional when W or H is not a
    multiple of 8 (the FBCNN numpy ``compute_bef``; KAIR's torch
    ``_blocking_effect_factor`` floors them). On LIVE1 this moves the mean
    by up to 0.008 dB and decides QF 20 and 40 of Table 1;
  - the Y for colour BEF is ``"bt601-studio-bgr"``: MATLAB's studio-swing
    weights applied to the channels in reverse order
    (``Y = 16 + (24.966 R + 128.553 G + 65.481 B) / 255``), i.e. ``rgb2ycbcr``
    applied to an OpenCV BGR array. This is an empirical finding, not a
    reading of the authors' code (whose test script converts to RGB first):
    of the variants we tried (RGB or BGR order, rounded or not, full-range
    Y, per-channel BEF, MSE on Y, BEF of the ground truth; OpenCV's
    imencode/imdecode, which is pixel-identical to Pillow here; other libjpeg
    versions, IDCT methods and upsampling) only the BGR order gives all four
    Table 2 cells (24.2039, 26.4926, 27.8415, 28.8362 for 24.20, 26.49,
    27.84, 28.84; unrounded: 28.8370 at QF 40). The RGB order gives 28.8316,
    printed 28.83, at QF 40. Use ``y_definition="bt601-studio"`` for the
    textbook Y. MSE, PSNR and SSIM do not depend on the channel order, so
    only PSNR-B can show the difference.

Every convention is a keyword parameter so that other papers' numbers can be
reproduced too; :data:`METRIC_CONVENTIONS` states the defaults in one line
for result files.

References
----------
Wang, Bovik, Sheikh, Simoncelli. Image quality assessment: from error
visibility to structural similarity. IEEE TIP 13(4), 2004.
Yim, Bovik. Quality assessment of deblocked images. IEEE TIP 20(1), 2011.
Jiang, Zhang, Timofte. Towards flexible blind JPEG artifacts removal.
ICCV 2021 (Tables 1-3).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from skimage.metrics import structural_similarity

from jpegbench.codec.color import rgb_to_y
from jpegbench.errors import InputError, ShapeError

__all__ = ["psnr", "ssim", "psnrb", "blocking_effect_factor", "METRIC_CONVENTIONS", "Y_DEFINITIONS_BEF"]

METRIC_CONVENTIONS = (
    "psnr: 8-bit, peak 255, all channels; "
    "ssim: 11x11 Gaussian sigma 1.5, valid window, mean over RGB channels; "
    "psnrb: MSE over all channels + BEF of the test image (for RGB on its rounded Y, "
    "BT.601 studio weights in BGR order), fractional boundary counts; border 0"
)

Channels = Literal["all", "y"]


def _pair(image_true: np.ndarray, image_test: np.ndarray, border: int) -> tuple[np.ndarray, np.ndarray]:
    for name, im in (("image_true", image_true), ("image_test", image_test)):
        if not isinstance(im, np.ndarray):
            raise ShapeError(f"{name} must be a numpy array, got {type(im).__name__}")
        if im.ndim not in (2, 3) or (im.ndim == 3 and im.shape[2] != 3):
            raise ShapeError(f"{name} must have shape (H, W) or (H, W, 3), got {im.shape}")
        if im.size == 0:
            raise ShapeError(f"{name} is empty")
    if image_true.shape != image_test.shape:
        raise ShapeError(
            f"image_true and image_test must have the same shape, got {image_true.shape} and {image_test.shape}"
        )
    if border < 0:
        raise InputError(f"border must be >= 0, got {border}")
    if border:
        h, w = image_true.shape[:2]
        if 2 * border >= min(h, w):
            raise InputError(f"border {border} leaves nothing of a {h}x{w} image")
        image_true = image_true[border:-border, border:-border]
        image_test = image_test[border:-border, border:-border]
    return image_true, image_test


def _select(im: np.ndarray, channels: Channels) -> np.ndarray:
    if channels == "all" or im.ndim == 2:
        return im
    if channels == "y":
        if im.dtype != np.uint8:
            raise ShapeError("channels='y' needs uint8 RGB images")
        return rgb_to_y(im)
    raise InputError(f"channels must be 'all' or 'y', got {channels!r}")


def psnr(image_true: np.ndarray, image_test: np.ndarray, *, data_range: float = 255.0, border: int = 0,
         channels: Channels = "all") -> float:
    """Peak signal-to-noise ratio in dB.

    Parameters
    ----------
    image_true, image_test : ndarray (H, W) or (H, W, 3)
        Ground truth and test image (uint8 for the paper's convention).
    data_range : float
        Peak value (255 for uint8).
    border : int
        Pixels cropped from every side before comparing.
    channels : {"all", "y"}
        ``"y"``: compare the BT.601 studio-swing Y of RGB images.

    Returns
    -------
    float
        ``inf`` for identical images.
    """
    a, b = _pair(image_true, image_test, border)
    a, b = _select(a, channels).astype(np.float64), _select(b, channels).astype(np.float64)
    mse = np.mean((a - b) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(data_range**2 / mse))


# skimage's Gaussian filter is cut at 3.5 sigma (scipy's radius ``int(3.5 sigma + 0.5)``),
# so the window side follows from sigma: 11 for 1.5.
_SK_TRUNCATE = 3.5


def _gauss_window_size(sigma: float) -> int:
    return 2 * int(_SK_TRUNCATE * sigma + 0.5) + 1


def ssim(image_true: np.ndarray, image_test: np.ndarray, *, data_range: float = 255.0, border: int = 0,
         channels: Channels = "all", window_size: int = 11, sigma: float = 1.5) -> float:
    """Structural similarity (mean SSIM) with the KAIR/FBCNN conventions.

    Computed by :func:`skimage.metrics.structural_similarity` with
    ``gaussian_weights=True, sigma=sigma, use_sample_covariance=False,
    data_range=data_range`` (``channel_axis=-1`` for RGB) on float64 copies.
    That is the KAIR ``calculate_ssim`` of the FBCNN authors: a
    ``window_size`` x ``window_size`` sampled Gaussian (``K1=0.01, K2=0.03``),
    only windows fully inside the image averaged ("valid"), and RGB the mean
    of the per-channel SSIMs unless ``channels="y"``. skimage filters the
    whole image with reflect padding and then crops ``(window_size - 1) // 2``
    pixels from every side of the SSIM map; that crop equals the window's
    radius, so no padded pixel reaches the mean and the result is the valid
    one. Measured against a "valid" implementation (scipy filters, map
    cropped by 5): at most 5.6e-16 per image on every JPEG image of the
    paper's Tables 1-3 (LIVE1 gray, Classic5, LIVE1 colour at QF 10-40 and
    the 9 double-JPEG pairs of Table 3), so every printed SSIM digit is
    reproduced (``tests/metrics/test_paper_tables.py``,
    ``tests/synth/test_table3.py``).

    Parameters
    ----------
    image_true, image_test : ndarray (H, W) or (H, W, 3)
        Ground truth and test image (uint8 for the paper's convention).
    data_range : float
        Peak value (255 for uint8); sets ``C1 = (0.01 R)^2, C2 = (0.03 R)^2``.
    border : int
        Pixels cropped from every side before comparing.
    channels : {"all", "y"}
        ``"y"``: compare the BT.601 studio-swing Y of RGB images.
    window_size : int
        Side of the Gaussian window. skimage ties it to ``sigma`` (the filter
        is cut at 3.5 sigma: ``2 int(3.5 sigma + 0.5) + 1``, 11 for 1.5), so it
        must equal that value; it is kept to state the window explicitly.
    sigma : float
        Standard deviation of the Gaussian window.

    Returns
    -------
    float
        1 for identical images.

    Raises
    ------
    ShapeError
        Shapes differ or are not (H, W)/(H, W, 3), or an image is not larger
        than the window.
    InputError
        A bad ``border``, ``channels``, ``sigma`` or a ``window_size`` that
        does not match ``sigma``.
    """
    a, b = _pair(image_true, image_test, border)
    a, b = _select(a, channels).astype(np.float64), _select(b, channels).astype(np.float64)
    if not sigma > 0:
        raise InputError(f"sigma must be > 0, got {sigma}")
    if window_size != _gauss_window_size(sigma):
        raise InputError(
            f"window_size must be 2 * int(3.5 * sigma + 0.5) + 1 = {_gauss_window_size(sigma)} "
            f"for sigma={sigma} (skimage cuts its Gaussian at 3.5 sigma), got {window_size}"
        )
    if min(a.shape[:2]) <= window_size:
        raise ShapeError(f"ssim needs images larger than the {window_size}x{window_size} window, got {a.shape[:2]}")
    return float(structural_similarity(
        a, b, win_size=window_size, gaussian_weights=True, sigma=sigma, use_sample_covariance=False,
        data_range=data_range, channel_axis=-1 if a.ndim == 3 else None,
    ))


BoundaryCount = Literal["fractional", "floor"]
YDefinition = Literal["bt601-studio-bgr", "bt601-studio", "bt601-full"]
Y_DEFINITIONS_BEF: tuple[str, ...] = ("bt601-studio-bgr", "bt601-studio", "bt601-full")
_Y_WEIGHTS = {
    "bt601-studio": (np.array([65.481, 128.553, 24.966]) / 255.0, 16.0),
    "bt601-studio-bgr": (np.array([24.966, 128.553, 65.481]) / 255.0, 16.0),
    "bt601-full": (np.array([0.299, 0.587, 0.114]), 0.0),
}


def _luma(rgb: np.ndarray, definition: str, rounding: bool) -> np.ndarray:
    if definition not in _Y_WEIGHTS:
        raise InputError(f"y_definition must be one of {Y_DEFINITIONS_BEF}, got {definition!r}")
    w, offset = _Y_WEIGHTS[definition]
    y = rgb.astype(np.float64) @ w + offset
    # numpy's round is half-to-even, as the KAIR ``rgb2ycbcr(uint8).round()``.
    return np.round(y) if rounding else y


def blocking_effect_factor(image: np.ndarray, *, block_size: int = 8,
                           boundary_count: BoundaryCount = "fractional") -> float:
    """Blocking-effect factor of one gray image (Yim & Bovik 2011, eq. 9-10).

    Mean squared difference across the vertical and horizontal ``block_size``
    grid boundaries minus the mean inside blocks, weighted by
    ``log2(B) / log2(min(H, W))``; 0 when boundaries are not worse than the
    inside. The value is in the squared units of ``image`` (uint8 images give
    a BEF on the 0..255 scale).

    Parameters
    ----------
    image : ndarray, shape (H, W)
    block_size : int
    boundary_count : {"fractional", "floor"}
        How the number of boundary pairs is counted: ``H (W / B - 1)``
        (FBCNN's numpy ``compute_bef``, the default) or ``H (W // B - 1)``
        (KAIR's torch ``_blocking_effect_factor``). Equal when H and W are
        multiples of ``block_size``.

    Returns
    -------
    float
    """
    im = np.asarray(image, dtype=np.float64)
    if im.ndim != 2:
        raise ShapeError(f"blocking_effect_factor expects a 2-D image (H, W), got shape {im.shape}")
    if boundary_count not in ("fractional", "floor"):
        raise InputError(f"boundary_count must be 'fractional' or 'floor', got {boundary_count!r}")
    h, w = im.shape
    if min(h, w) < 2 * block_size:
        raise ShapeError(f"blocking_effect_factor needs at least {2 * block_size}x{2 * block_size} pixels, got {h}x{w}")
    dh = (im[:, 1:] - im[:, :-1]) ** 2  # pairs (x, x+1), x = 0..W-2
    dv = (im[1:, :] - im[:-1, :]) ** 2
    on_h = (np.arange(w - 1) % block_size) == block_size - 1
    on_v = (np.arange(h - 1) % block_size) == block_size - 1
    d_b = dh[:, on_h].sum() + dv[on_v, :].sum()
    d_n = dh[:, ~on_h].sum() + dv[~on_v, :].sum()
    if boundary_count == "fractional":
        n_hb, n_vb = h * (w / block_size - 1), w * (h / block_size - 1)
    else:
        n_hb, n_vb = h * (w // block_size - 1), w * (h // block_size - 1)
    n_hn, n_vn = h * (w - 1) - n_hb, w * (h - 1) - n_vb
    boundary = d_b / (n_hb + n_vb)
    inner = d_n / (n_hn + n_vn)
    if boundary <= inner:
        return 0.0
    return float(np.log2(block_size) / np.log2(min(h, w)) * (boundary - inner))


def _psnrb_from(mse: float, bef: float, data_range: float) -> float:
    return float("inf") if mse + bef == 0 else float(10.0 * np.log10(data_range**2 / (mse + bef)))


def psnrb(
    image_true: np.ndarray,
    image_test: np.ndarray,
    *,
    border: int = 0,
    channels: Literal["all", "y", "per-channel"] = "all",
    bef_on: Literal["test", "true"] = "test",
    y_definition: YDefinition = "bt601-studio-bgr",
    y_rounding: bool = True,
    boundary_count: BoundaryCount = "fractional",
    data_range: float = 255.0,
) -> float:
    """PSNR-B in dB: ``10 log10(data_range^2 / (MSE + BEF))`` (Yim & Bovik 2011).

    Defaults are the FBCNN paper's (see the module docstring); each keyword
    switches one convention.

    Parameters
    ----------
    image_true, image_test : ndarray, uint8, shape (H, W) or (H, W, 3)
        Ground truth and test (compressed or restored) image, same shape.
    border : int
        Pixels cropped from every side before comparing.
    channels : {"all", "y", "per-channel"}
        For RGB: ``"all"`` (default): MSE over all channels plus one BEF on a
        Y channel (FBCNN ``calculate_psnrb``); ``"y"``: MSE and BEF both on Y;
        ``"per-channel"``: mean over R, G, B of the per-channel PSNR-B, each
        with its own BEF (KAIR's torch ``calculate_psnrb``). Gray images are
        the same under all three.
    bef_on : {"test", "true"}
        Which image the BEF is computed on; Yim & Bovik and FBCNN use the test
        image.
    y_definition : {"bt601-studio-bgr", "bt601-studio", "bt601-full"}
        The Y used for RGB when ``channels`` is ``"all"`` or ``"y"``.
    y_rounding : bool
        Round that Y to integers first (as ``rgb2ycbcr`` on uint8 does).
    boundary_count : {"fractional", "floor"}
        See :func:`blocking_effect_factor`.
    data_range : float
        Peak value of the images (255 for uint8).

    Returns
    -------
    float
        ``inf`` when MSE and BEF are both 0.

    Raises
    ------
    ShapeError
        Shapes differ, are not (H, W)/(H, W, 3), or are too small for 8x8 blocks.
    InputError
        An unknown convention name or a bad ``border``.
    """
    a, b = _pair(image_true, image_test, border)
    if bef_on not in ("test", "true"):
        raise InputError(f"bef_on must be 'test' or 'true', got {bef_on!r}")
    if channels not in ("all", "y", "per-channel"):
        raise InputError(f"channels must be 'all', 'y' or 'per-channel', got {channels!r}")
    if y_definition not in _Y_WEIGHTS:
        raise InputError(f"y_definition must be one of {Y_DEFINITIONS_BEF}, got {y_definition!r}")
    a, b = a.astype(np.float64), b.astype(np.float64)
    ref = b if bef_on == "test" else a

    def bef(x: np.ndarray) -> float:
        return blocking_effect_factor(x, boundary_count=boundary_count)

    if a.ndim == 2:
        return _psnrb_from(float(np.mean((a - b) ** 2)), bef(ref), data_range)
    if channels == "per-channel":
        vals = [_psnrb_from(float(np.mean((a[..., c] - b[..., c]) ** 2)), bef(ref[..., c]), data_range)
                for c in range(3)]
        return float(np.mean(vals))
    y_ref = _luma(ref, y_definition, y_rounding)
    if channels == "y":
        ya, yb = _luma(a, y_definition, y_rounding), _luma(b, y_definition, y_rounding)
        return _psnrb_from(float(np.mean((ya - yb) ** 2)), bef(y_ref), data_range)
    return _psnrb_from(float(np.mean((a - b) ** 2)), bef(y_ref), data_range)
