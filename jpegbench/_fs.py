"""Files written whole or not at all: atomic writes, the sweep of the temporary files killed writes leave, file hashes.

The file-system library of the package, below every layer (it imports
nothing but :mod:`jpegbench.errors`): every output file of jpegbench is
written through :func:`atomic_write`, so a reader never sees a
half-written file, and inputs and outputs are identified by their SHA-256.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import time
from pathlib import Path
from typing import BinaryIO, Callable

from jpegbench.errors import InputError

__all__ = [
    "atomic_write",
    "atomic_write_bytes",
    "ensure_dir",
    "write_atomic",
    "replace_into",
    "remove_stale_parts",
    "remove_stale_parts_in",
    "sha256_bytes",
    "sha256_file",
]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def replace_into(tmp: str | os.PathLike[str], path: str | os.PathLike[str]) -> None:
    """``os.replace`` a finished temporary file onto ``path`` with ordinary permissions.

    ``mkstemp`` makes owner-only (0600) files; the result gets what a plain
    ``open(path, "w")`` would give (0o666 minus the umask).
    """
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object]) -> Path:
    """Produce ``path`` by calling ``write`` on a temporary file in the same folder, then renaming it.

    The one atomic writer of the package: readers never see a half-written
    file, a failure (or Ctrl-C) removes the temporary file, and the result
    has the permissions a plain ``open(path, "w")`` would give. A kill
    leaves ``.NAME.XXXXXXXX.part`` behind (see :func:`remove_stale_parts`).

    Raises
    ------
    InputError
        The folder does not exist, is not a folder, or cannot be written to.
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as exc:  # missing folder, a file in the way, read-only, permission denied
        raise InputError(f"{path}: cannot write here ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        replace_into(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (:func:`atomic_write`)."""
    atomic_write(path, lambda f: f.write(data))


def ensure_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` (and parents); an unusable location is a one-line :class:`InputError`."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{p}: cannot create output folder ({exc.strerror or exc})") from None
    return p


def write_atomic(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Write ``data`` (text as UTF-8) to ``path``, creating its folder, through :func:`atomic_write_bytes`.

    The file gets the permissions a plain ``open(path, "w")`` would give
    (0o666 minus the umask): reports are meant to be read by others.
    """
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    ensure_dir(path.parent)
    atomic_write_bytes(path, data)
    return path


def remove_stale_parts(path: str | Path) -> list[Path]:
    """Delete the temporary files that interrupted atomic writes of ``path`` left next to it.

    Every atomic writer in jpegbench writes ``NAME`` through a temporary
    ``.NAME.XXXXXXXX.part`` in the same folder (``tempfile.mkstemp`` with
    prefix ``.NAME.``: 8 characters of ``[a-z0-9_]``) and renames it; a
    process killed in between leaves that file behind. Only files of exactly
    that form are removed: those of other outputs stay, even
    ``.NAME.x.XXXXXXXX.part`` of an output named ``NAME.x``.
    Call it only while holding the lock of the run that writes ``path``: the
    temporary file of a live writer looks the same.

    Returns
    -------
    list of Path
        The files removed.
    """
    path = Path(path)
    pattern = re.compile(rf"\.{re.escape(path.name)}\.[a-z0-9_]{{8}}\.part")
    removed = []
    try:
        names = os.listdir(path.parent)
    except OSError:
        return removed
    for name in names:
        if pattern.fullmatch(name):
            try:
                (path.parent / name).unlink()
            except FileNotFoundError:
                continue
            removed.append(path.parent / name)
    return sorted(removed)


def remove_stale_parts_in(folder: str | Path, *, recursive: bool = False, older_than_s: float | None = None) -> None:
    """Delete every atomic writer's temporary file (``.NAME.XXXXXXXX.part``) in ``folder``.

    ``recursive`` also searches its subfolders; ``older_than_s`` spares files
    modified more recently (for folders no lock covers, where a live
    writer's temporary file looks the same). Otherwise call it only while
    holding the lock of the run that writes ``folder``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return
    now = time.time()
    for p in folder.rglob(".*.part") if recursive else folder.glob(".*.part"):
        try:
            if older_than_s is None or now - p.stat().st_mtime > older_than_s:
                p.unlink()
        except OSError:
            continue


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks so a huge file is never held in memory."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
