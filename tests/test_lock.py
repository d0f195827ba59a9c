"""jpegbench._lock: one holder at a time, a second one fails at once, the kernel frees a dead holder's lock."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap

import pytest

from jpegbench._lock import DirLock
from jpegbench.errors import LockError

# A process that takes the lock, says so, and holds it until it is killed.
HOLDER = textwrap.dedent(
    """
    import sys, time
    from jpegbench._lock import DirLock
    lock = DirLock(sys.argv[1])
    lock.acquire()
    print("locked", flush=True)
    time.sleep(300)
    """
)

# A process that tries the lock once and reports what happened.
TRY = textwrap.dedent(
    """
    import sys
    from jpegbench._lock import DirLock
    from jpegbench.errors import LockError
    try:
        with DirLock(sys.argv[1]):
            print("acquired")
    except LockError as exc:
        print("refused:", exc)
    """
)


def _python(code: str, *args: object, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], stdout=subprocess.PIPE, text=True,
                            env=env, **kw)


def _try_in_another_process(directory) -> str:
    p = _python(TRY, directory)
    out, _ = p.communicate(timeout=120)  # fails at once: a wait for the holder would hit this timeout
    return out.strip()


def test_a_second_locker_fails_at_once_with_the_holder_named(tmp_path):
    with DirLock(tmp_path) as held:
        assert held.path == tmp_path / ".lock"
        assert held.path.read_text() == f"{os.getpid()} {socket.gethostname()}\n"
        with pytest.raises(LockError, match=rf"^{tmp_path} is in use by another jpegbench run "
                                            rf"\(pid/host {os.getpid()} {socket.gethostname()}\)$"):
            DirLock(tmp_path).acquire()
        out = _try_in_another_process(tmp_path)
        assert out.startswith(f"refused: {tmp_path} is in use by another jpegbench run (pid/host {os.getpid()} ")
    assert not (tmp_path / ".lock").exists()  # released: the file goes with it
    assert _try_in_another_process(tmp_path) == "acquired"


def test_a_holder_killed_with_sigkill_releases_the_lock(tmp_path):
    holder = _python(HOLDER, tmp_path)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(LockError, match=f"pid/host {holder.pid} "):
            DirLock(tmp_path).acquire()
    finally:
        holder.send_signal(signal.SIGKILL)  # no handler, no finally, no atexit runs in the holder
        holder.wait(timeout=60)
        holder.stdout.close()
    assert (tmp_path / ".lock").read_text().split()[0] == str(holder.pid)  # its file is left behind...
    with DirLock(tmp_path) as lock:  # ...but not its lock: the kernel released it with the process
        assert lock.path.read_text() == f"{os.getpid()} {socket.gethostname()}\n"
    assert not (tmp_path / ".lock").exists()


def test_for_file_locks_one_output_file(tmp_path):
    results = tmp_path / "results.parquet"
    with DirLock.for_file(results) as lock:
        assert lock.path == tmp_path / ".results.parquet.lock"
        with pytest.raises(LockError, match=f"^{results} is in use by another jpegbench run"):
            DirLock.for_file(results).acquire()
        with DirLock(tmp_path):  # the folder's lock and one file's lock are independent
            pass
    assert not lock.path.exists()


def test_release_never_removes_a_lock_file_it_does_not_hold(tmp_path):
    lock = DirLock(tmp_path)
    lock.acquire()
    lock.path.unlink()  # someone deleted it by hand, and a new run created and locked its own
    with DirLock(tmp_path) as other:
        lock.release()
        assert other.path.exists()
        with pytest.raises(LockError):
            DirLock(tmp_path).acquire()
    lock.release()  # a second release is a no-op
    assert not (tmp_path / ".lock").exists()
