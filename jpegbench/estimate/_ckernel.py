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

__all__ = ["KERNELS", "available", "c_requant_error", "c_sse", "check_kernel", "load"]

_ENV = "JPEGBENCH_FAST_KERNEL"
KERNELS = ("auto", "c", "torch")


@lru_cache(maxsize=1)
def _library() -> ctypes.CDLL | None:
    spec = importlib.util.find_spec("jpegbench.estimate._csse")
    if spec is None or not spec.origin or not spec.origin.endswith((".so", ".pyd", ".dylib")):
        return None
    try:
        lib = ctypes.CDLL(spec.origin)
    except OSError:
        return None
    fn = lib.jb_sse_curves
    fn.restype = ctypes.c_int
    p, i64 = ctypes.c_void_p, ctypes.c_int64
    fn.argtypes = [p, i64, i64, i64, p, i64, p, i64, p]
    if hasattr(lib, "jb_requant_error"):  # a build older than the robust estimator's use of it lacks it
        fn = lib.jb_requant_error
        fn.restype = ctypes.c_int
        fn.argtypes = [p, i64, p, p, i64, p]
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


def available() -> bool:
    """Whether the fast backend runs the C kernel on CPU (``False``: its torch implementation)."""
    return load() is not None


def c_sse(
    lib: ctypes.CDLL, gray: np.ndarray, qtables: np.ndarray, crops: list[tuple[int, int]], threads: int = 1
) -> np.ndarray:
    """Summed squared recompression errors ``[n_crops, n_qf]`` of one uint8 image.

    ``qtables`` is ``(n_qf, 64)`` int32 in natural order. With ``threads > 1``
    the crops are split over that many threads (the call releases the GIL).
    """
    g = np.ascontiguousarray(gray, dtype=np.uint8)
    qt = np.ascontiguousarray(qtables, dtype=np.int32)
    all_crops = np.asarray(crops, dtype=np.int32).reshape(-1, 2)
    out = np.empty((len(crops), qt.shape[0]), dtype=np.float64)
    parts = np.array_split(np.arange(len(crops)), max(1, min(threads, len(crops))))

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

    parts = [p for p in parts if p.size]
    if len(parts) == 1:
        run(parts[0])
    else:
        with ThreadPoolExecutor(len(parts)) as pool:
            list(pool.map(run, parts))
    return out


def c_requant_error(y: np.ndarray, rows: np.ndarray, ts: np.ndarray) -> np.ndarray | None:
    """``mean((t * round(y[r] / t) - y[r])**2)`` over each row ``r = rows[i]`` of ``y`` with ``t = ts[i]``.

    The robust estimator's codec model (:mod:`jpegbench.estimate._lattice`);
    equal bit for bit to that numpy expression (``np.round``, ``np.mean``).
    ``None`` where the C kernel was not built (or is a build without it).
    """
    lib = _library()
    if lib is None or not hasattr(lib, "jb_requant_error"):
        return None
    y = np.ascontiguousarray(y, dtype=np.float64)
    r = np.ascontiguousarray(rows, dtype=np.int64)
    t = np.ascontiguousarray(ts, dtype=np.float64)
    if y.ndim != 2 or r.shape != t.shape or r.ndim != 1 or (r.size and (r.min() < 0 or r.max() >= y.shape[0])):
        raise InputError("c_requant_error: rows must index the rows of a 2-D y, one t per row")
    out = np.empty(r.size, dtype=np.float64)
    if lib.jb_requant_error(y.ctypes.data, y.shape[1], r.ctypes.data, t.ctypes.data, r.size, out.ctypes.data) != 0:
        return None  # more nodes than its pairwise sum handles: the numpy expression does it
    return out
