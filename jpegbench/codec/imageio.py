"""Read image files into the package's pixel convention; encode pixels as PNG.

Documented conversions (``read_image``):

* JPEG: decoded by the codec backend; EXIF orientation is **not** applied
  (forensics needs the stored pixel grid: rotating moves the 8x8 grid);
  CMYK/YCCK, 12-bit, lossless and arithmetic-coded JPEG are refused.
* PNG/TIFF/BMP/...: ``L`` and ``RGB`` as they are; ``LA``/``RGBA`` lose
  their alpha channel (no compositing); palette (``P``) is expanded to RGB
  (to gray if the palette is gray); 16-bit (``I;16``) is scaled to 8 bits by
  ``round(v / 257)`` (or refused, ``high_bit_depth="refuse"``: restoration
  reads decoded 8-bit JPEGs only); ``1`` (bilevel) becomes 0/255 gray; other
  modes are refused.
* Images with more than ``max_pixels`` pixels are refused on their header,
  before decoding (a decompression-bomb guard), and files larger than
  ``max_file_bytes`` before reading; see :mod:`jpegbench.codec.limits` for
  the defaults, ``JPEGBENCH_MAX_PIXELS`` / ``JPEGBENCH_MAX_FILE_BYTES`` and
  :func:`jpegbench.codec.limits`.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Literal

import numpy as np

from jpegbench._fs import atomic_write_bytes
from jpegbench.codec._validate import read_regular_file
from jpegbench.codec.backends import decode
from jpegbench.codec.color import rgb_to_y
from jpegbench.codec.limits import default_max_pixels
from jpegbench.errors import ImageReadError, ImageTooLargeError, InputError, UnsupportedImageError


__all__ = ["IMAGE_SUFFIXES", "read_image", "image_from_bytes", "list_images", "png_bytes", "write_png"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".tif", ".tiff", ".ppm", ".pgm", ".webp")


def _is_jpeg(data: bytes) -> bool:
    return data[:2] == b"\xff\xd8"


def read_image(
    path: str | Path,
    *,
    color: Literal["keep", "gray", "rgb"] = "keep",
    max_pixels: int | None = None,
    max_file_bytes: int | None = None,
    min_size: int = 1,
    high_bit_depth: Literal["scale", "refuse"] = "scale",
) -> np.ndarray:
    """Read an image file as uint8 pixels.

    Parameters
    ----------
    path : path to a JPEG, PNG, ... file
    color : {"keep", "gray", "rgb"}
        ``"gray"`` converts RGB with the BT.601 studio-swing Y
        (:func:`jpegbench.codec.rgb_to_y`); ``"rgb"`` repeats gray to 3 channels.
    max_pixels : int, optional
        Refuse images with more pixels, checked on the header (default
        :func:`jpegbench.codec.default_max_pixels`).
    max_file_bytes : int, optional
        Refuse larger files before reading them (default
        :func:`jpegbench.codec.default_max_file_bytes`).
    min_size : int
        Refuse images whose height or width is below this.
    high_bit_depth : {"scale", "refuse"}, default "scale"
        16-bit images: scaled to 8 bits, or refused with
        :class:`~jpegbench.errors.UnsupportedImageError` (for restoration,
        whose inputs are decoded 8-bit JPEGs).

    Returns
    -------
    ndarray, uint8, (H, W) or (H, W, 3)
    """
    _check_color(color)  # before reading the file
    _check_depth(high_bit_depth)
    p = Path(path)
    data = read_regular_file(p, kind="an image", max_bytes=max_file_bytes)
    return image_from_bytes(data, name=p, color=color, max_pixels=max_pixels, min_size=min_size,
                            high_bit_depth=high_bit_depth)


def image_from_bytes(
    data: bytes,
    *,
    name: str | Path = "<bytes>",
    color: Literal["keep", "gray", "rgb"] = "keep",
    max_pixels: int | None = None,
    min_size: int = 1,
    high_bit_depth: Literal["scale", "refuse"] = "scale",
) -> np.ndarray:
    """Decode the bytes of an image file as :func:`read_image` decodes the file.

    For callers that already hold the bytes, e.g. to hash exactly the bytes
    they decode. ``name`` only appears in error messages.
    """
    _check_color(color)
    _check_depth(high_bit_depth)
    p = Path(name)
    limit = default_max_pixels() if max_pixels is None else int(max_pixels)
    if not data:
        raise ImageReadError(f"{p}: empty file")
    try:
        if _is_jpeg(data):
            from jpegbench.codec.header import read_header

            hdr = read_header(data)
            _check_size(p, hdr.width, hdr.height, limit, min_size)
            x = decode(data, max_pixels=limit)
        else:
            x = _read_pil(p, data, limit, min_size, high_bit_depth == "refuse")
    except (ImageReadError, ImageTooLargeError) as exc:
        msg = str(exc)
        if not msg.startswith(str(p)):
            msg = f"{p}: {msg.removeprefix('<bytes>: ')}"
        raise type(exc)(msg) from None
    if color == "gray" and x.ndim == 3:
        x = rgb_to_y(x)
    elif color == "rgb" and x.ndim == 2:
        x = np.repeat(x[:, :, None], 3, axis=2)
    return x


def _check_color(color: object) -> None:
    if color not in ("keep", "gray", "rgb"):
        raise InputError(f"color must be 'keep', 'gray' or 'rgb', got {color!r}")


def _check_depth(high_bit_depth: object) -> None:
    if high_bit_depth not in ("scale", "refuse"):
        raise InputError(f"high_bit_depth must be 'scale' or 'refuse', got {high_bit_depth!r}")


def _check_size(p: Path, w: int, h: int, limit: int, min_size: int) -> None:
    if w * h > limit:
        raise ImageTooLargeError(
            f"{p}: {w}x{h} = {w * h} pixels is over the limit of {limit} "
            "(raise it with --max-pixels or JPEGBENCH_MAX_PIXELS)"
        )
    if w < min_size or h < min_size:
        raise ImageReadError(f"{p}: {w}x{h} image is smaller than the minimum {min_size}x{min_size}")


def _read_pil(p: Path, data: bytes, limit: int, min_size: int, refuse_16bit: bool = False) -> np.ndarray:
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            old = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None
            try:
                img = Image.open(io.BytesIO(data))
            finally:
                Image.MAX_IMAGE_PIXELS = old
            _check_size(p, img.width, img.height, limit, min_size)
            img.load()
    except UnidentifiedImageError:
        raise ImageReadError(f"{p}: not an image file (unrecognised format)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        if isinstance(exc, (ImageReadError, ImageTooLargeError)):
            raise
        raise ImageReadError(f"{p}: cannot decode image ({exc})") from None
    mode = img.mode
    if mode in ("L", "RGB"):
        return np.asarray(img).copy()
    if mode == "LA":
        return np.asarray(img.getchannel("L")).copy()
    if mode in ("RGBA", "RGBX"):
        return np.asarray(img.convert("RGB")).copy()
    if mode in ("P", "PA"):
        rgb = np.asarray(img.convert("RGB"))
        if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]):
            return rgb[..., 0].copy()
        return rgb.copy()
    if mode == "1":
        return np.asarray(img.convert("L")).copy()
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(img).astype(np.float64)
        if mode == "I" and a.max(initial=0) <= 255:
            return a.astype(np.uint8)
        if refuse_16bit:
            raise UnsupportedImageError(f"{p}: {mode} image with more than 8 bits per sample is not supported here "
                                        "(restoration reads decoded 8-bit JPEGs; convert it to 8 bits first)")
        return np.clip(np.round(a / 257.0), 0, 255).astype(np.uint8)
    raise UnsupportedImageError(f"{p}: image mode {mode} is not supported (expected gray or RGB)")


def list_images(paths: list[str | Path] | str | Path) -> list[Path]:
    """Expand files and folders (non-recursive, sorted) to image paths; missing paths raise."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise ImageReadError(f"{p}: directory contains no images ({', '.join(IMAGE_SUFFIXES[:4])}, ...)")
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            raise ImageReadError(f"{p}: no such file or directory")
    return out


def png_bytes(pixels: np.ndarray, *, compress_level: int = 6) -> bytes:
    """Deterministic PNG encoding (no metadata, fixed compression level 0..9)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def write_png(path: str | Path, pixels: np.ndarray) -> bytes:
    """Write pixels as PNG atomically; returns the bytes written."""
    data = png_bytes(pixels)
    atomic_write_bytes(path, data)
    return data
