"""Atomic file writes for report outputs (world-readable, unlike a bare ``mkstemp`` file)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from jpegbench.codec.imageio import replace_into

__all__ = ["ensure_dir", "replace_into", "write_atomic"]


def ensure_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` (and parents); an unusable location is a one-line :class:`InputError`."""
    from jpegbench.errors import InputError

    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{p}: cannot create output folder ({exc.strerror or exc})") from None
    return p


def write_atomic(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    The file gets the permissions a plain ``open(path, "w")`` would give
    (0o666 minus the umask): reports are meant to be read by others.
    """
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    ensure_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        replace_into(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
