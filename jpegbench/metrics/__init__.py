"""Image quality metrics with the FBCNN authors' conventions as defaults.

Defaults reproduce the JPEG columns of the FBCNN paper's Tables 1-3 (see
``tests/metrics``):

* ``psnr``: on the 8-bit images, MSE over all pixels and channels, peak 255.
* ``ssim``: Wang et al. (2004) with an 11x11 Gaussian window (sigma 1.5),
  ``K1=0.01, K2=0.03``, "valid" filtering (the map is cropped by 5 pixels on
  each side), per channel and averaged for RGB (the KAIR ``calculate_ssim``).
* ``psnrb``: Yim & Bovik (2011) PSNR-B = ``10 log10(1 / (MSE + BEF))`` with
  images in [0, 1], where the blocking-effect factor BEF is computed on the
  *test* (compressed/restored) image only; for RGB it is computed on the
  BT.601 studio-swing Y channel of both images (the FBCNN colour test code).

Every convention is a keyword parameter so that other papers' numbers can be
reproduced too.

References
----------
Wang, Bovik, Sheikh, Simoncelli. Image quality assessment: from error
visibility to structural similarity. IEEE TIP 13(4), 2004.
Yim, Bovik. Quality assessment of deblocked images. IEEE TIP 20(1), 2011.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.ndimage import correlate1d

from jpegbench.codec.color import rgb_to_y
from jpegbench.errors import InputError, ShapeError

__all__ = ["psnr", "ssim", "psnrb", "blocking_effect_factor", "METRIC_CONVENTIONS"]

METRIC_CONVENTIONS = (
    "psnr: 8-bit, peak 255, all channels; "
    "ssim: 11x11 Gaussian sigma 1.5, valid window, mean over RGB channels; "
    "psnrb: MSE + BEF of the test image (Y of BT.601 studio swing for RGB), images in [0,1]; border 0"
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
        raise ShapeError(f"image_true and image_test must have the same shape, got {image_true.shape} and {image_test.shape}")
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


def _gauss_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    # cv2.getGaussianKernel(11, 1.5): normalised sampled Gaussian.
    x = np.arange(size) - (size - 1) / 2.0
    k = np.exp(-(x**2) / (2 * sigma**2))
    return k / k.sum()


def _ssim_channel(a: np.ndarray, b: np.ndarray, data_range: float, k: np.ndarray) -> float:
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    r = len(k) // 2

    def filt(x: np.ndarray) -> np.ndarray:
        y = correlate1d(correlate1d(x, k, axis=0, mode="reflect"), k, axis=1, mode="reflect")
        return y[r:-r, r:-r]

    mu1, mu2 = filt(a), filt(b)
    s11 = filt(a * a) - mu1**2
    s22 = filt(b * b) - mu2**2
    s12 = filt(a * b) - mu1 * mu2
    m = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1**2 + mu2**2 + c1) * (s11 + s22 + c2))
    return float(m.mean())


def ssim(image_true: np.ndarray, image_test: np.ndarray, *, data_range: float = 255.0, border: int = 0,
         channels: Channels = "all", window_size: int = 11, sigma: float = 1.5) -> float:
    """Structural similarity (mean SSIM), the KAIR/FBCNN implementation.

    Gaussian window ``window_size`` x ``window_size`` with ``sigma``; only
    windows fully inside the image count ("valid"); RGB is the mean of the
    per-channel SSIMs unless ``channels="y"``.
    """
    a, b = _pair(image_true, image_test, border)
    a, b = _select(a, channels).astype(np.float64), _select(b, channels).astype(np.float64)
    if min(a.shape[:2]) <= window_size:
        raise ShapeError(f"ssim needs images larger than the {window_size}x{window_size} window, got {a.shape[:2]}")
    k = _gauss_window(window_size, sigma)
    if a.ndim == 2:
        return _ssim_channel(a, b, data_range, k)
    return float(np.mean([_ssim_channel(a[..., c], b[..., c], data_range, k) for c in range(3)]))


def blocking_effect_factor(image: np.ndarray, *, block_size: int = 8) -> float:
    """Blocking effect factor (Yim & Bovik 2011, eq. 9-10) of one gray image in [0, 1] scale.

    Squared differences across 8x8 block boundaries minus those inside
    blocks, weighted by ``log2(B) / log2(min(H, W))``; 0 when boundaries are
    not worse than the inside.
    """
    im = np.asarray(image, dtype=np.float64)
    if im.ndim != 2:
        raise ShapeError(f"blocking_effect_factor expects a 2-D image, got {im.shape}")
    h, w = im.shape
    hb = np.arange(block_size - 1, w - 1, block_size)
    vb = np.arange(block_size - 1, h - 1, block_size)
    hn = np.setdiff1d(np.arange(0, w - 1), hb)
    vn = np.setdiff1d(np.arange(0, h - 1), vb)
    d_hb = ((im[:, hb] - im[:, hb + 1]) ** 2).sum()
    d_vb = ((im[vb, :] - im[vb + 1, :]) ** 2).sum()
    d_hn = ((im[:, hn] - im[:, hn + 1]) ** 2).sum()
    d_vn = ((im[vn, :] - im[vn + 1, :]) ** 2).sum()
    n_hb = h * (w // block_size - 1)
    n_vb = w * (h // block_size - 1)
    n_hn = h * (w - 1) - n_hb
    n_vn = w * (h - 1) - n_vb
    boundary = (d_hb + d_vb) / (n_hb + n_vb)
    inner = (d_hn + d_vn) / (n_hn + n_vn)
    if boundary <= inner:
        return 0.0
    return float(np.log2(block_size) / np.log2(min(h, w)) * (boundary - inner))


def psnrb(image_true: np.ndarray, image_test: np.ndarray, *, border: int = 0, channels: Channels | None = None,
          bef_on: Literal["test", "true"] = "test") -> float:
    """PSNR-B in dB: ``10 log10(1 / (MSE + BEF))`` on images scaled to [0, 1].

    Parameters
    ----------
    image_true, image_test : uint8 (H, W) or (H, W, 3)
    border : int
    channels : {"all", "y"}, optional
        Default ``"y"`` for RGB (the FBCNN colour test code), i.e. gray in all
        cases; ``"all"`` averages per-channel PSNR-B over RGB (the KAIR
        ``calculate_psnrb`` applied to RGB).
    bef_on : {"test", "true"}
        Which image the blocking-effect factor is computed on. Yim & Bovik
        and the FBCNN code use the test image.
    """
    a, b = _pair(image_true, image_test, border)
    if bef_on not in ("test", "true"):
        raise InputError(f"bef_on must be 'test' or 'true', got {bef_on!r}")
    a, b = _select(a, channels or "y"), _select(b, channels or "y")
    a, b = a.astype(np.float64) / 255.0, b.astype(np.float64) / 255.0
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    total = 0.0
    for c in range(a.shape[2]):
        mse = np.mean((a[..., c] - b[..., c]) ** 2)
        bef = blocking_effect_factor(b[..., c] if bef_on == "test" else a[..., c])
        total += float("inf") if mse + bef == 0 else 10.0 * np.log10(1.0 / (mse + bef))
    return total / a.shape[2]
