"""The C kernel's group width (``JB_LANES``, chosen by setup.py for the building CPU) does not change a sum.

The installed build is compared with a build at another width, made here
with ``JPEGBENCH_KERNEL_LANES`` (about 20 s of compiling): every crop's
summed squared errors at every QF must be equal.
"""

from __future__ import annotations

import ctypes
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jpegbench.codec import decode, encode, ijg_qtable
from jpegbench.estimate import _ckernel

ROOT = Path(__file__).resolve().parents[2]


def _build(tmp: Path, lanes: str) -> subprocess.CompletedProcess:
    env = {**__import__("os").environ, "JPEGBENCH_KERNEL_LANES": lanes}
    return subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--build-lib", str(tmp / "lib"),
                           "--build-temp", str(tmp / "tmp")], cwd=ROOT, env=env, capture_output=True, text=True, check=False)  # fmt: skip


def test_an_unknown_width_is_refused_with_one_line(tmp_path):
    pytest.importorskip("setuptools")
    r = _build(tmp_path, "7")
    assert r.returncode != 0
    assert "JPEGBENCH_KERNEL_LANES must be one of 4, 8, 16, 32, 64, got '7'" in r.stderr
    assert "Traceback" not in r.stderr


def test_every_group_width_gives_the_same_sums(tmp_path):
    pytest.importorskip("setuptools")
    installed = _ckernel.load("auto")
    if installed is None:
        pytest.skip("the C kernel was not built")
    other = "8" if _ckernel.lanes() != 8 else "32"
    r = _build(tmp_path, other)
    assert r.returncode == 0, r.stderr[-2000:]
    (so,) = (tmp_path / "lib" / "jpegbench" / "estimate").glob("_csse*")
    lib = _ckernel.configure(ctypes.CDLL(str(so)))
    assert _ckernel.lanes(lib) == int(other)
    from skimage import data

    rng = np.random.default_rng(0)
    qtables = np.stack([ijg_qtable(q).ravel() for q in range(1, 101)]).astype(np.int32)
    crops = [(dy, dx) for dy in range(8) for dx in range(8)]
    # a photograph's JPEG, and noise of a size whose block count is not a multiple of any width (partial groups)
    images = [decode(encode(data.camera()[:200, :232], 70)), rng.integers(0, 256, (75, 91), dtype=np.uint8)]
    for x in images:
        a = _ckernel.c_sse(installed, x, qtables, crops)
        b = _ckernel.c_sse(lib, x, qtables, crops)
        assert np.array_equal(a, b)
