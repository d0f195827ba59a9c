"""An OS file lock that keeps two runs from writing one output directory or file.

Used by every writer of the package (``synth``'s corpus, ``evaluate``'s
results file, ``train``'s run folder); it imports nothing of jpegbench but
the errors.

``DIR/.lock`` (for a file ``DIR/NAME``: ``DIR/.NAME.lock``, see
:meth:`DirLock.for_file`) is locked with ``flock`` through :mod:`filelock`:
the kernel releases the lock when its holder's process ends, however it
ends (a SIGKILL included), so there is no stale lock to detect or break. The
file holds ``"<pid> <host>"`` of the holder, for the error message only. A
second run never waits: it fails at once with :class:`LockError`. The file is
removed on release, before the lock is let go, so a run that opened it in
between finds it unlinked and does not take it (filelock checks); a killed
holder leaves it behind, and the next run simply locks it again.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from filelock import Timeout, UnixFileLock

from jpegbench.errors import LockError

__all__ = ["DirLock"]


class DirLock:
    """Exclusive lock on a directory (or, :meth:`for_file`, one file) for the life of a ``with`` block.

    Raises
    ------
    LockError
        On entry, when another process (or another ``DirLock`` of this
        process) holds the lock.
    """

    def __init__(self, directory: str | Path, *, name: str = ".lock", subject: str | Path | None = None) -> None:
        self.path = Path(directory) / name
        self.subject = str(directory if subject is None else subject)  # what the error message says is in use
        self._inode: tuple[int, int] | None = None
        # Not blocking: a second run fails at once. No soft (pid-file) fallback on file systems without flock:
        # its liveness guesses are what this lock replaces.
        self._lock = UnixFileLock(self.path, blocking=False, fallback_to_soft=False, on_acquired=self._write_owner)

    @classmethod
    def for_file(cls, path: str | Path) -> DirLock:
        """A lock on one output file ``DIR/NAME``: ``DIR/.NAME.lock``."""
        path = Path(path)
        return cls(path.parent, name=f".{path.name}.lock", subject=path)

    def _write_owner(self, fd: int) -> None:
        st = os.fstat(fd)
        self._inode = (st.st_dev, st.st_ino)
        os.ftruncate(fd, 0)  # a killed holder's line is still there
        os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)

    def _owner(self) -> str:
        try:
            return " ".join(self.path.read_text(errors="replace").split()) or "unknown"
        except OSError:
            return "unknown"

    def acquire(self) -> None:
        try:
            self._lock.acquire()
        except Timeout:
            raise LockError(f"{self.subject} is in use by another jpegbench run (pid/host {self._owner()})") from None

    def release(self) -> None:
        if not self._lock.is_locked:
            return
        try:  # unlink while still holding it, and only our own file (see the module docstring)
            st = self.path.stat()
            if (st.st_dev, st.st_ino) == self._inode:
                self.path.unlink()
        except FileNotFoundError:
            pass
        finally:
            self._inode = None
            self._lock.release()

    def __enter__(self) -> DirLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
