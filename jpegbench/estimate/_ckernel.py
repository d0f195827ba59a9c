"""The compiled CPU kernel of the fast backend (``_csse.c``), loaded through ctypes when it was built.

``pip install`` compiles ``jpegbench/estimate/_csse.c`` as an optional
extension (see ``setup.py``); where no C compiler was available the install
still succeeds and :func:`load` returns ``None``, so the fast backend falls
back to its torch implementation (same numbers, slower on CPU). Set
``JPEGBENCH_FAST_KERNEL=torch`` to force that fallback.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np

from jpegbench.errors import InputError

__all__ = ["KERNELS", "available", "c_model_matrix", "c_sse", "check_kernel", "configure", "lanes", "load"]

_ENV = "JPEGBENCH_FAST_KERNEL"
KERNELS = ("auto", "c", "torch")


@lru_cache(maxsize=1)
def _library() -> ctypes.CDLL | None:
    spec = importlib.util.find_spec("jpegbench.estimate._csse")
    if spec is None or not spec.origin or not spec.origin.endswith((".so", ".pyd", ".dylib")):
        return None
    try:
        return configure(ctypes.CDLL(spec.origin))
    except OSError:
        return None


def configure(lib: ctypes.CDLL) -> ctypes.CDLL:
    """Declare the kernel's C signatures on a loaded build of ``_csse`` (the installed one, or another)."""
    fn = lib.jb_sse_curves
    fn.restype = ctypes.c_int
    p, i64 = ctypes.c_void_p, ctypes.c_int64
    fn.argtypes = [p, i64, i64, i64, p, i64, p, i64, p]
    if hasattr(lib, "jb_model_matrix"):  # a build older than the robust estimator's use of it lacks it
        fn = lib.jb_model_matrix
        fn.restype = ctypes.c_int
        fn.argtypes = [p, p, p, i64, i64, p, i64, p, i64, p]
    if hasattr(lib, "jb_lanes"):
        lib.jb_lanes.restype = ctypes.c_int
        lib.jb_lanes.argtypes = []
    return lib


def load(kernel: str = "auto") -> ctypes.CDLL | None:
    """The kernel library, or ``None`` for the torch implementation.

    ``kernel``: ``"c"`` (an error if it was not built), ``"torch"``, or
    ``"auto"``: what ``$JPEGBENCH_FAST_KERNEL`` says (same values), else the
    C kernel when it was built.
    """
    check_kernel(kernel)
    choice = kernel
    if kernel == "auto":
        choice = check_kernel(os.environ.get(_ENV, "auto"), f"${_ENV}")
    if choice == "torch":
        return None
    lib = _library()
    if lib is None and choice == "c":
        raise InputError("the C kernel jpegbench.estimate._csse was not built (reinstall with a C compiler)")
    return lib


def check_kernel(choice: str, what: str = "kernel") -> str:
    """``choice`` if it is one of :data:`KERNELS`, else an :class:`InputError` naming ``what``."""
    if choice not in KERNELS:
        raise InputError(f"{what} must be 'auto', 'c' or 'torch', got {choice!r}")
    return choice


def lanes(lib: ctypes.CDLL | None = None) -> int | None:
    """Blocks per group of the built kernel (setup.py chose it for the building CPU); ``None`` without one."""
    lib = _library() if lib is None else lib
    return int(lib.jb_lanes()) if lib is not None and hasattr(lib, "jb_lanes") else None


def available() -> bool:
    """Whether the fast backend runs the C kernel on CPU (``False``: its torch implementation)."""
    return load() is not None


def c_sse(
    lib: ctypes.CDLL, gray: np.ndarray, qtables: np.ndarray, crops: list[tuple[int, int]], threads: int = 1
) -> np.ndarray:
    """Summed squared recompression errors ``[n_crops, n_qf]`` of one uint8 image.

    ``qtables`` is ``(n_qf, 64)`` int32 in natural order. With ``threads > 1``
    that many threads take the crops a few at a time until none are left
    (each call releases the GIL). Not one fixed share per thread: where
    another thread of the process runs beside them (the estimate command
    reads the previous image meanwhile), the scheduler leaves one of them
    behind, and with fixed shares the other core then idled until it
    caught up (about an eighth of the command's time on two cores). Each
    crop's sums are its own, whichever call computes them.
    """
    g = np.ascontiguousarray(gray, dtype=np.uint8)
    qt = np.ascontiguousarray(qtables, dtype=np.int32)
    all_crops = np.asarray(crops, dtype=np.int32).reshape(-1, 2)
    out = np.empty((len(crops), qt.shape[0]), dtype=np.float64)
    n_threads = max(1, min(threads, len(crops)))
    # a few crops per call: small enough for the threads to finish together, large enough that the
    # kernel's per-call set-up stays negligible (64 crops on two threads: 16 calls of 4)
    size = max(1, -(-len(crops) // (8 * n_threads)) if n_threads > 1 else len(crops))
    parts = [np.arange(i, min(i + size, len(crops))) for i in range(0, len(crops), size)] or [np.arange(0)]

    def run(idx: np.ndarray) -> None:
        cr = np.ascontiguousarray(all_crops[idx])
        res = np.empty((idx.size, qt.shape[0]), dtype=np.float64)
        rc = lib.jb_sse_curves(
            g.ctypes.data, g.shape[0], g.shape[1], g.strides[0], cr.ctypes.data, idx.size,
            qt.ctypes.data, qt.shape[0], res.ctypes.data,
        )  # fmt: skip
        if rc == -2:
            raise MemoryError("the MSE-curve kernel could not allocate its working memory (a few MB)")
        if rc != 0:
            raise RuntimeError(f"jb_sse_curves failed with code {rc}")  # arguments are validated before
        out[idx] = res

    if n_threads == 1:
        for part in parts:
            run(part)
    else:
        with ThreadPoolExecutor(n_threads) as pool:
            list(pool.map(run, parts))
    return out


def c_model_matrix(
    y: np.ndarray, y2: np.ndarray, amax: np.ndarray, tables: np.ndarray, group: np.ndarray, n_groups: int
) -> np.ndarray | None:
    """The robust estimator's codec-model matrix, ``(n_groups * n_scales + 1, n_qf)``; ``None`` without the kernel.

    ``y`` ``(64, n_scales, nodes)``: content nodes; ``y2``, ``amax``
    ``(64, n_scales)``: their mean square and largest magnitude; ``tables``
    ``(n_qf, 64)``: IJG table values; ``group`` ``(64,)``: radial-frequency
    group of each frequency. Equal bit for bit to the numpy computation of
    :func:`jpegbench.estimate._lattice._cached_matrix` (same operations, numpy's
    summation order; ``jb_model_matrix`` in ``_csse.c``). ``None`` where the
    C kernel was not built, is a build without this function, or refuses
    the arguments (table values that are not integers 1..255, more than 128 nodes).
    """
    lib = _library()
    if lib is None or not hasattr(lib, "jb_model_matrix"):
        return None
    y = np.ascontiguousarray(y, dtype=np.float64)
    y2 = np.ascontiguousarray(y2, dtype=np.float64)
    amax = np.ascontiguousarray(amax, dtype=np.float64)
    tables = np.ascontiguousarray(tables, dtype=np.float64)
    group = np.ascontiguousarray(group, dtype=np.int64)
    if y.ndim != 3 or y.shape[0] != 64 or y2.shape != y.shape[:2] or amax.shape != y.shape[:2]:
        raise InputError("c_model_matrix: y must be (64, n_scales, nodes), y2 and amax (64, n_scales)")
    if tables.ndim != 2 or tables.shape[1] != 64 or group.shape != (64,):
        raise InputError("c_model_matrix: tables must be (n_qf, 64) and group (64,)")
    out = np.empty((n_groups * y.shape[1] + 1, tables.shape[0]), dtype=np.float64)
    rc = lib.jb_model_matrix(y.ctypes.data, y2.ctypes.data, amax.ctypes.data, y.shape[1], y.shape[2],
                             tables.ctypes.data, tables.shape[0], group.ctypes.data, n_groups, out.ctypes.data)  # fmt: skip
    if rc == -2:
        raise MemoryError("the codec-model kernel could not allocate its working memory (115 KB)")
    return out if rc == 0 else None
