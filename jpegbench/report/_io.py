"""Report outputs: folders made on demand, files written atomically through :func:`jpegbench._fs.atomic_write`."""

from __future__ import annotations

import os
from pathlib import Path

from jpegbench._fs import atomic_write_bytes

__all__ = ["ensure_dir", "write_atomic"]


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
    atomic_write_bytes(path, data)
    return path
