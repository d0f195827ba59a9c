"""JPEG encode/decode backends: Pillow (libjpeg-turbo) and jpeglib (many libjpeg versions).

``pillow`` is the default: Pillow's bundled libjpeg-turbo with IJG tables is
the encoder that reproduces the FBCNN paper's JPEG columns (the authors used
OpenCV, which wraps the same library with the same defaults). ``jpeglib``
gives a selectable libjpeg (``6b``, ``9e``, ``turbo210``, ``mozjpeg403``, ...)
for studies of encoder dependence.
"""

from __future__ import annotations

import io
import os
import tempfile
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np

from jpegbench.codec._validate import check_pixels, check_qf
from jpegbench.codec.limits import default_max_pixels
from jpegbench.errors import CodecError, ImageReadError, ImageTooLargeError, InputError, UnsupportedImageError

__all__ = ["BACKENDS", "SUBSAMPLINGS", "EncoderInfo", "encoder_info", "encode", "decode", "jpeg_roundtrip"]

Backend = Literal["pillow", "jpeglib"]
BACKENDS: tuple[str, ...] = ("pillow", "jpeglib")
SUBSAMPLINGS: tuple[str, ...] = ("4:4:4", "4:2:2", "4:2:0")
DCT_METHODS: tuple[str, ...] = ("islow", "ifast", "float")
_PIL_SUBSAMPLING = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}
# jpeglib's samp_factor rows are (vertical, horizontal), the reverse of the SOF's (H, V).
_JPEGLIB_SAMP = {
    "4:4:4": ((1, 1), (1, 1), (1, 1)),
    "4:2:2": ((1, 2), (1, 1), (1, 1)),
    "4:2:0": ((2, 2), (1, 1), (1, 1)),
}
DEFAULT_JPEGLIB_VERSION = "turbo210"


@dataclass(frozen=True)
class EncoderInfo:
    """Which encoder produced a file: backend name, library name and version."""

    backend: str
    encoder: str
    encoder_version: str

    def as_dict(self) -> dict[str, str]:
        return {"backend": self.backend, "encoder": self.encoder, "encoder_version": self.encoder_version}


def _check_backend(backend: str, version: str | None) -> None:
    if backend not in BACKENDS:
        raise InputError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "pillow" and version not in (None, "", "default"):
        raise InputError(f"the pillow backend has one libjpeg; version must be None, got {version!r}")
    if backend == "jpeglib" and version is not None:
        import jpeglib

        if version not in jpeglib.version.versions():
            raise InputError(
                f"jpeglib version must be one of {sorted(jpeglib.version.versions())}, got {version!r}"
            )


def encoder_info(backend: Backend = "pillow", version: str | None = None) -> EncoderInfo:
    """Describe the encoder that :func:`encode` uses for these arguments."""
    _check_backend(backend, version)
    if backend == "pillow":
        import PIL
        from PIL import features

        turbo = features.check_feature("libjpeg_turbo")
        lib = "libjpeg-turbo" if turbo else "libjpeg"
        # features.version('jpg') is the libjpeg API level (6.2); the release is what tells builds apart.
        release = features.version("libjpeg_turbo") if turbo else features.version("jpg")
        return EncoderInfo("pillow", lib, f"{release} (Pillow {PIL.__version__})")
    import jpeglib

    v = version or DEFAULT_JPEGLIB_VERSION
    return EncoderInfo("jpeglib", f"libjpeg {v}", f"{v} (jpeglib {jpeglib.__version__})")


def encode(
    pixels: np.ndarray,
    qf: int,
    *,
    backend: Backend = "pillow",
    version: str | None = None,
    subsampling: str = "4:2:0",
    dct_method: str = "islow",
    progressive: bool = False,
) -> bytes:
    """Compress uint8 pixels to JPEG bytes with IJG tables at quality ``qf``.

    Parameters
    ----------
    pixels : ndarray, uint8, shape (H, W) or (H, W, 3)
        Gray is written as a one-component JPEG; RGB is converted to YCbCr by
        the library (JFIF, full range) and subsampled as asked.
    qf : int, 1..100
    backend : {"pillow", "jpeglib"}
    version : str, optional
        libjpeg version for the ``jpeglib`` backend (default ``turbo210``).
    subsampling : {"4:4:4", "4:2:2", "4:2:0"}
        Chroma subsampling for RGB input; ignored for gray.
    dct_method : {"islow", "ifast", "float"}
        Forward DCT; Pillow only offers ``islow``.
    progressive : bool
        Write a progressive file (Pillow backend only). mozjpeg versions of
        the ``jpeglib`` backend write progressive files whatever this says
        (mozjpeg's defaults), and use trellis quantization.

    Returns
    -------
    bytes
        The file exactly as the encoder wrote it.
    """
    pixels = check_pixels(pixels)
    qf = check_qf(qf)
    _check_backend(backend, version)
    if subsampling not in SUBSAMPLINGS:
        raise InputError(f"subsampling must be one of {SUBSAMPLINGS}, got {subsampling!r}")
    if dct_method not in DCT_METHODS:
        raise InputError(f"dct_method must be one of {DCT_METHODS}, got {dct_method!r}")
    if backend == "pillow":
        if dct_method != "islow":
            raise InputError("the pillow backend only supports dct_method='islow'; use backend='jpeglib'")
        from PIL import Image

        buf = io.BytesIO()
        img = Image.fromarray(np.ascontiguousarray(pixels))
        kw = {"quality": qf, "optimize": False, "progressive": progressive}
        if pixels.ndim == 3:
            kw["subsampling"] = _PIL_SUBSAMPLING[subsampling]
        try:
            img.save(buf, format="JPEG", **kw)
        except (OSError, ValueError) as exc:  # pragma: no cover - libjpeg failure
            raise CodecError(f"Pillow failed to encode: {exc}") from exc
        return buf.getvalue()
    if progressive:
        raise InputError("progressive output is only supported by the pillow backend")
    return _jpeglib_encode(pixels, qf, version or DEFAULT_JPEGLIB_VERSION, subsampling, dct_method)


def _jpeglib_encode(pixels: np.ndarray, qf: int, version: str, subsampling: str, dct_method: str) -> bytes:
    import jpeglib

    from jpegbench.codec.qtables import ijg_qtable

    x = pixels[:, :, None] if pixels.ndim == 2 else pixels
    # Explicit tables, not ``qt=qf``: jpeglib's quality path calls jpeg_set_quality
    # with force_baseline=FALSE (16-bit "extended" tables above 255 for qf < 24),
    # and mozjpeg scales its own base tables; IJG baseline tables are what
    # Pillow/OpenCV write and what qf_from_qtables recognises.
    if pixels.ndim == 3:
        qt, tbl_no = np.stack([ijg_qtable(qf), ijg_qtable(qf, chroma=True)]), np.array([0, 1, 1])
    else:
        qt, tbl_no = ijg_qtable(qf)[None], np.array([0])
    fd, tmp = tempfile.mkstemp(suffix=".jpg")
    os.close(fd)
    try:
        with jpeglib.version(version):
            im = jpeglib.from_spatial(np.ascontiguousarray(x))
            if pixels.ndim == 3:
                im.samp_factor = _JPEGLIB_SAMP[subsampling]
            method = {"islow": jpeglib.JDCT_ISLOW, "ifast": jpeglib.JDCT_IFAST, "float": jpeglib.JDCT_FLOAT}[dct_method]
            im.write_spatial(tmp, qt=qt, quant_tbl_no=tbl_no, dct_method=method)
        with open(tmp, "rb") as f:
            return f.read()
    except Exception as exc:  # jpeglib raises bare Exception
        raise CodecError(f"jpeglib ({version}) failed to encode: {exc}") from exc
    finally:
        os.unlink(tmp)


def decode(
    data: bytes, *, backend: Backend = "pillow", version: str | None = None, max_pixels: int | None = None
) -> np.ndarray:
    """Decompress JPEG bytes to uint8 pixels (``(H, W)`` gray or ``(H, W, 3)`` RGB).

    Uses the library's defaults (islow IDCT, fancy upsampling), as OpenCV and
    Pillow do. Truncated data is an error, not a grey-padded image.
    ``max_pixels`` (default :func:`jpegbench.codec.default_max_pixels`) is
    the decompression-bomb limit, checked on the header.

    Raises
    ------
    ImageReadError
        Not a JPEG, or truncated/corrupt.
    UnsupportedImageError
        CMYK/YCCK, a precision other than 8 bits, lossless/hierarchical or
        arithmetic coding (not every libjpeg of the jpeglib backend decodes
        it; refused everywhere so that backends agree).
    ImageTooLargeError
        More pixels than :func:`jpegbench.codec.default_max_pixels`, checked
        on the header before anything is decoded.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InputError(f"decode expects JPEG bytes, got {type(data).__name__}")
    _check_backend(backend, version)
    from jpegbench.codec.header import read_header

    hdr = read_header(bytes(data))
    if hdr.color in ("cmyk", "ycck"):
        raise UnsupportedImageError(f"{hdr.color.upper()} JPEG is not supported (convert it to RGB first)")
    if hdr.precision != 8:
        raise UnsupportedImageError(f"{hdr.precision}-bit JPEG is not supported (8-bit only)")
    if hdr.mode in ("lossless", "differential-sequential", "differential-progressive", "differential-lossless"):
        raise UnsupportedImageError(f"{hdr.mode} JPEG is not supported")
    if hdr.coding == "arithmetic":
        raise UnsupportedImageError("arithmetic-coded JPEG is not supported (Huffman coding only)")
    limit = default_max_pixels() if max_pixels is None else int(max_pixels)
    if hdr.width * hdr.height > limit:
        raise ImageTooLargeError(
            f"{hdr.width}x{hdr.height} = {hdr.width * hdr.height} pixels is over the limit of {limit} "
            "(raise it with --max-pixels or JPEGBENCH_MAX_PIXELS)"
        )
    if backend == "pillow":
        return _pillow_decode(bytes(data))
    return _jpeglib_decode(bytes(data), version or DEFAULT_JPEGLIB_VERSION)


def _pillow_decode(data: bytes) -> np.ndarray:
    from PIL import Image, ImageFile

    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with warnings.catch_warnings():
            # decode() has checked the size against our own limit; Pillow's would warn or refuse differently.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            old, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                img = Image.open(io.BytesIO(data))
            finally:
                Image.MAX_IMAGE_PIXELS = old
        with img:
            img.load()
            if img.mode not in ("L", "RGB"):
                raise UnsupportedImageError(f"JPEG with mode {img.mode} is not supported")
            return np.asarray(img).copy()
    except (OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, UnsupportedImageError):
            raise
        raise ImageReadError(f"cannot decode JPEG: {exc}") from None


def _jpeglib_decode(data: bytes, version: str) -> np.ndarray:
    import jpeglib

    # libjpeg only warns on a truncated file ("Premature end of JPEG file") and pads
    # it with grey; Pillow raises. FF D9 cannot occur inside entropy-coded data
    # (0xFF is stuffed there), so a missing EOI after the first scan means truncation.
    if data.rfind(b"\xff\xd9") < data.find(b"\xff\xda"):
        raise ImageReadError("truncated JPEG (no end-of-image marker after the scan data)")
    fd, tmp = tempfile.mkstemp(suffix=".jpg")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        with jpeglib.version(version):
            x = jpeglib.read_spatial(tmp).spatial
    except Exception as exc:  # jpeglib raises bare Exception
        raise ImageReadError(f"jpeglib ({version}) cannot decode JPEG: {exc}") from None
    finally:
        os.unlink(tmp)
    return np.ascontiguousarray(x[:, :, 0] if x.shape[2] == 1 else x)


def jpeg_roundtrip(pixels: np.ndarray, qf: int, **kwargs) -> np.ndarray:
    """``decode(encode(pixels, qf, **kwargs))`` with the same backend and version."""
    data = encode(pixels, qf, **kwargs)
    return decode(data, backend=kwargs.get("backend", "pillow"), version=kwargs.get("version"))
