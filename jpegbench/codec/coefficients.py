"""Read a JPEG file's quantized DCT coefficients and quantization tables with jpeglib.

What table-guided restorers read from a file instead of (or beside) its
pixels. Layout conventions, the same as libjpeg's and jpeglib's:

* coefficients of component ``c``: ``(rows, cols, 8, 8)`` int16 blocks,
  *quantized* (divide-and-round already applied: multiply by the table to
  dequantize), each block in natural order, ``block[u, v]`` with ``u`` the
  vertical and ``v`` the horizontal frequency; ``rows = ceil(height_c / 8)``
  for the component's own (subsampled) height, so blocks beyond the image
  are the encoder's padding and MCU filler blocks are not included;
* tables: one ``(8, 8)`` integer array per component, natural order (the
  table the component was quantized with, so Cb and Cr repeat the chroma
  table of a typical file).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jpegbench.codec._validate import read_regular_file
from jpegbench.codec.header import JpegHeader, read_header
from jpegbench.codec.limits import default_max_pixels
from jpegbench.errors import ImageReadError, ImageTooLargeError, InputError, UnsupportedImageError

__all__ = ["JpegCoefficients", "read_coefficients"]

# jpeglib bundles several libjpeg builds; entropy decoding gives the same
# coefficients in all of them, so one fixed choice keeps results reproducible.
_JPEGLIB_VERSION = "turbo210"


@dataclass(frozen=True)
class JpegCoefficients:
    """The quantized DCT coefficients and tables of one JPEG file.

    Attributes
    ----------
    height, width : int
        Image size in pixels (from the frame header).
    color : {"gray", "ycbcr"}
    subsampling : str or None
        ``"4:2:0"``, ``"4:4:4"``, ... (:attr:`JpegHeader.subsampling`); None for gray.
    coefficients : tuple of ndarray
        Per component, ``(rows, cols, 8, 8)`` int16, quantized, natural order.
    qtables : tuple of ndarray
        Per component, ``(8, 8)`` int64, natural order.
    sampling : tuple of (int, int)
        Per component, the (horizontal, vertical) sampling factors.
    """

    height: int
    width: int
    color: str
    subsampling: str | None
    coefficients: tuple[np.ndarray, ...]
    qtables: tuple[np.ndarray, ...]
    sampling: tuple[tuple[int, int], ...]


def _check_header(hdr: JpegHeader, name: str, max_pixels: int) -> None:
    # The same refusals as jpegbench.codec.decode, so a file either both
    # decodes and yields coefficients, or neither.
    if hdr.color not in ("gray", "ycbcr"):
        raise UnsupportedImageError(f"{name}: {hdr.color.upper()} JPEG is not supported (gray or YCbCr only)")
    if hdr.precision != 8:
        raise UnsupportedImageError(f"{name}: {hdr.precision}-bit JPEG is not supported (8-bit only)")
    if hdr.mode not in ("baseline", "extended", "progressive"):
        raise UnsupportedImageError(f"{name}: {hdr.mode} JPEG is not supported")
    if hdr.coding == "arithmetic":
        raise UnsupportedImageError(f"{name}: arithmetic-coded JPEG is not supported (Huffman coding only)")
    if hdr.width == 0 or hdr.height == 0:
        raise ImageReadError(f"{name}: JPEG frame has zero size ({hdr.width}x{hdr.height})")
    if hdr.width * hdr.height > max_pixels:
        raise ImageTooLargeError(
            f"{name}: {hdr.width}x{hdr.height} = {hdr.width * hdr.height} pixels is over the limit of {max_pixels} "
            "(raise it with --max-pixels or JPEGBENCH_MAX_PIXELS)"
        )
    if not hdr.complete:
        raise ImageReadError(f"{name}: truncated JPEG (no end-of-image marker after the scan data)")


def read_coefficients(
    source: str | os.PathLike[str] | bytes,
    *,
    max_pixels: int | None = None,
    max_file_bytes: int | None = None,
    name: str | None = None,
) -> JpegCoefficients:
    """Read the quantized DCT coefficients and per-component tables of a JPEG (jpeglib ``read_dct``).

    Parameters
    ----------
    source : path or bytes
    max_pixels : int, optional
        Decompression-bomb limit on the header's size (default
        :func:`jpegbench.codec.default_max_pixels`).
    max_file_bytes : int, optional
        Refuse larger files before reading (default
        :func:`jpegbench.codec.default_max_file_bytes`).
    name : str, optional
        What error messages call the source (default: the path, or
        ``"<bytes>"``).

    Returns
    -------
    JpegCoefficients

    Raises
    ------
    ImageReadError
        Missing, not a JPEG (a PNG, ...), truncated or corrupt.
    UnsupportedImageError
        CMYK/YCCK, not 8-bit, lossless/hierarchical or arithmetic coded.
    ImageTooLargeError
        Over the pixel or file-size limit.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, name = bytes(source), name or "<bytes>"
    elif isinstance(source, (str, os.PathLike)):
        name = name or str(source)
        data = read_regular_file(source, kind="a JPEG file", max_bytes=max_file_bytes)
    else:
        raise InputError(f"source must be a path or JPEG bytes, got {type(source).__name__}")
    if data[:2] != b"\xff\xd8":
        raise ImageReadError(f"{name}: not a JPEG file (no SOI marker); quantization tables and DCT coefficients "
                             "exist only in JPEG files")  # fmt: skip
    hdr = read_header(data)
    _check_header(hdr, name, default_max_pixels() if max_pixels is None else int(max_pixels))
    return _read_dct(data, hdr, name)


def _read_dct(data: bytes, hdr: JpegHeader, name: str) -> JpegCoefficients:
    import jpeglib

    fd, tmp = tempfile.mkstemp(suffix=".jpg")  # jpeglib reads from a path only
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        with jpeglib.version(_JPEGLIB_VERSION):
            dct = jpeglib.read_dct(tmp)
            planes = [dct.Y] + ([dct.Cb, dct.Cr] if dct.has_chrominance else [])
            qt, slots = np.asarray(dct.qt), np.asarray(dct.quant_tbl_no)
    except Exception as exc:  # jpeglib raises bare Exception
        raise ImageReadError(f"{name}: jpeglib cannot read the DCT coefficients: {exc}") from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    if len(planes) != len(hdr.components) or any(p is None for p in planes):
        raise ImageReadError(
            f"{name}: jpeglib read {len(planes)} components, the header declares {len(hdr.components)}"
        )
    return JpegCoefficients(
        height=hdr.height,
        width=hdr.width,
        color=hdr.color,
        subsampling=hdr.subsampling,
        coefficients=tuple(np.ascontiguousarray(p, dtype=np.int16) for p in planes),
        qtables=tuple(qt[int(s)].astype(np.int64) for s in slots[: len(planes)]),
        sampling=tuple((int(c["h"]), int(c["v"])) for c in hdr.components),
    )
