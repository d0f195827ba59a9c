"""Argument checks shared by the codec layer (one place, one wording)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np

from jpegbench.errors import ImageReadError, ImageTooLargeError, QualityError, ShapeError


def check_qf(qf: object, *, name: str = "qf") -> int:
    """Return ``qf`` as an int in 1..100 or raise :class:`QualityError`."""
    if isinstance(qf, bool) or not isinstance(qf, (int, np.integer)):
        raise QualityError(f"{name} must be an integer in 1..100, got {qf!r} ({type(qf).__name__})")
    if not 1 <= int(qf) <= 100:
        raise QualityError(f"{name} must be in 1..100, got {int(qf)}")
    return int(qf)


def check_pixels(pixels: object, *, name: str = "pixels", min_size: int = 1) -> np.ndarray:
    """Return ``pixels`` if it is a uint8 ``(H, W)`` or ``(H, W, 3)`` array."""
    if not isinstance(pixels, np.ndarray):
        raise ShapeError(f"{name} must be a numpy uint8 array (H, W) or (H, W, 3), got {type(pixels).__name__}")
    if pixels.dtype != np.uint8:
        raise ShapeError(f"{name} must have dtype uint8, got {pixels.dtype}")
    if pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] != 3):
        raise ShapeError(f"{name} must have shape (H, W) or (H, W, 3), got {pixels.shape}")
    if pixels.shape[0] < min_size or pixels.shape[1] < min_size:
        raise ShapeError(
            f"{name} must be at least {min_size}x{min_size} pixels, got {pixels.shape[0]}x{pixels.shape[1]}"
        )
    return pixels


def check_shift(shift: object) -> tuple[int, int]:
    """Return ``(dy, dx)`` with ``0 <= dy, dx <= 7`` or raise."""
    from jpegbench.errors import InputError

    try:
        dy, dx = (int(v) for v in shift)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise InputError(f"shift must be a pair (dy, dx) of integers in 0..7, got {shift!r}") from None
    if not (0 <= dy <= 7 and 0 <= dx <= 7):
        raise InputError(f"shift must be (dy, dx) with 0 <= dy, dx <= 7, got ({dy}, {dx})")
    return dy, dx


def read_regular_file(
    path: str | os.PathLike[str], *, kind: str = "an image", max_bytes: int | None = None
) -> bytes:
    """Return the bytes of ``path``, refusing anything that is not a regular file or is too large.

    Devices and pipes (``/dev/zero``, a FIFO) are refused before reading:
    reading them never ends or blocks forever. A file larger than
    ``max_bytes`` (default :func:`jpegbench.codec.default_max_file_bytes`) is
    refused from its size, before any byte is read, so a huge file named
    ``.jpg`` never lands in memory.

    Raises
    ------
    ImageReadError
        Missing, a directory, a device/pipe/socket, or unreadable.
    ImageTooLargeError
        Larger than ``max_bytes``.
    """
    from jpegbench.codec.limits import default_max_file_bytes

    p = Path(path)
    limit = default_max_file_bytes() if max_bytes is None else int(max_bytes)
    try:
        mode = p.stat().st_mode
    except FileNotFoundError:
        raise ImageReadError(f"{p}: no such file") from None
    except OSError as exc:
        raise ImageReadError(f"{p}: cannot read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(mode):
        raise ImageReadError(f"{p}: is a directory, not {kind}")
    if not stat.S_ISREG(mode):
        raise ImageReadError(f"{p}: not a regular file (a device, pipe or socket), not {kind}")
    try:
        with open(p, "rb") as f:
            size = os.fstat(f.fileno()).st_size  # of the file opened: the path may have changed since stat
            if size > limit:
                raise _too_large(p, size, limit)
            data = f.read(limit + 1)  # a file growing while read still stops here
    except OSError as exc:
        raise ImageReadError(f"{p}: cannot read ({exc.strerror or exc})") from None
    if len(data) > limit:
        raise _too_large(p, len(data), limit)
    return data


def _too_large(p: Path, size: int, limit: int) -> ImageTooLargeError:
    return ImageTooLargeError(f"{p}: file of {size} bytes is over the limit of {limit} bytes "
                              "(raise it with JPEGBENCH_MAX_FILE_BYTES)")


