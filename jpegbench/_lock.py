"""A pid lock file that keeps two runs from writing one output directory or file.

Used by every writer of the package (``synth``'s corpus, ``evaluate``'s
results file, ``train``'s run folder); it imports nothing but the errors.

``DIR/.lock`` (for a file ``DIR/NAME``: ``DIR/.NAME.lock``, see
:meth:`DirLock.for_file`) is created with ``O_CREAT | O_EXCL`` and holds
``"<pid> <host>"``. A lock whose process is gone (same host, pid not running
or a zombie) is stale and is taken over; breaking it is itself guarded by
``<lock>.break`` so two runs that find the same stale lock cannot both win.
A second run never waits: it fails at once with :class:`LockError`.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from jpegbench.errors import LockError

__all__ = ["DirLock"]

_BREAK_TIMEOUT_S = 30.0  # a .lock.break (or an empty .lock) older than this is left over from a crash


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child its parent has not reaped yet is a zombie: not running
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


class DirLock:
    """Exclusive lock on a directory (or, :meth:`for_file`, one file) for the life of a ``with`` block.

    Raises
    ------
    LockError
        On entry, when another live process holds the lock.
    """

    def __init__(self, directory: str | Path, *, name: str = ".lock", subject: str | Path | None = None) -> None:
        self.path = Path(directory) / name
        self.subject = str(directory if subject is None else subject)  # what the error message says is in use
        self._token = f"{os.getpid()} {socket.gethostname()}\n"
        self._held = False

    @classmethod
    def for_file(cls, path: str | Path) -> DirLock:
        """A lock on one output file ``DIR/NAME``: ``DIR/.NAME.lock``."""
        path = Path(path)
        return cls(path.parent, name=f".{path.name}.lock", subject=path)

    def _owner(self) -> tuple[str, float]:
        try:
            return self.path.read_text(), self.path.stat().st_mtime
        except FileNotFoundError:
            return "", -1.0

    def _is_stale(self, content: str, mtime: float) -> bool:
        parts = content.split()
        if len(parts) != 2 or not parts[0].isdigit():
            # Created but not yet written (or garbage): stale only once old.
            return mtime >= 0 and time.time() - mtime > _BREAK_TIMEOUT_S
        if parts[1] != socket.gethostname():
            return False  # cannot see another host's processes
        return not _pid_alive(int(parts[0]))

    def _break(self, content: str) -> None:
        guard = self.path.with_name(self.path.name + ".break")
        try:
            fd = os.open(guard, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                if time.time() - guard.stat().st_mtime > _BREAK_TIMEOUT_S:
                    guard.unlink()
            except FileNotFoundError:
                pass
            return
        try:
            if self._owner()[0] == content:  # still the same stale owner
                self.path.unlink(missing_ok=True)
        finally:
            os.close(fd)
            guard.unlink(missing_ok=True)

    def acquire(self) -> None:
        for _ in range(5):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                content, mtime = self._owner()
                if mtime >= 0 and not self._is_stale(content, mtime):
                    owner = " ".join(content.split()) or "unknown"
                    raise LockError(
                        f"{self.subject} is in use by another jpegbench run (pid/host {owner}); "
                        f"if no such run exists, delete {self.path}"
                    ) from None
                self._break(content)
                time.sleep(0.05)
                continue
            with os.fdopen(fd, "w") as f:
                f.write(self._token)
            self._held = True
            return
        raise LockError(f"could not take the lock {self.path} (contended); try again")

    def release(self) -> None:
        if self._held and self._owner()[0] == self._token:
            self.path.unlink(missing_ok=True)
        self._held = False

    def __enter__(self) -> DirLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
