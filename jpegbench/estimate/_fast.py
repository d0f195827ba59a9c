"""Fast backend of :func:`jpegbench.estimate.mse_curves`: recompression SSE per shift and QF, without entropy coding.

Both implementations compute, for every 8x8 block of every requested crop and
every QF, exactly what a libjpeg encode + decode (8-bit, baseline, ``islow``)
would give, so the fast curves are *identical* to the reference curves, not
close to them:

* the forward DCT is libjpeg's integer one (``jfdctint.c``), computed once per
  block; the quantizer ``round((t + sign(t) / 4) / 8q)`` equals libjpeg's
  ``sign(t) * ((|t| + 4q) // 8q)`` exactly in float32 (``t`` is an integer, so
  the nudged quotient is at least ``1 / 32q`` away from any half-integer,
  while float32 error is below ``3e-4 / q``);
* the inverse DCT is libjpeg's integer one (``jidctint.c``) with its
  range-limit table, emulated bit for bit (:func:`._islow.idct_islow`);
* a block whose AC coefficients all quantize to zero decodes to one value
  (closed form); squared errors are summed exactly (integers).

On CPU the work runs in a small C kernel (``_csse.c``, compiled at install
time, loaded by :mod:`._ckernel`): the per-block, per-QF arithmetic is a few
hundred integer operations, which tensor libraries can only express as dozens
of separate passes over memory. Everywhere else (CUDA, or a CPU install
without the kernel) the same arithmetic runs in torch, with blocks streamed in
groups so that memory stays bounded whatever the image size.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator, Sequence

import os
import sys

import numpy as np

from jpegbench.codec import ijg_qtable
from jpegbench.errors import InputError
from jpegbench.estimate._ckernel import c_sse, check_kernel, load

if TYPE_CHECKING:
    import torch

# torch is imported only where it runs (CUDA, or a CPU install without the C kernel): on CPU with the
# kernel, importing it would cost a command line more than the curves of a few images.

__all__ = ["fast_sse", "implementation", "resolve_device"]

_DEFAULT_CHUNK = {"cpu": 2048, "cuda": 65536}
_GROUP_CHUNKS = 4  # chunks per sorted group
_KEY_QFS = (10, 30, 50, 70, 90)  # QFs whose sparsity orders the blocks of a group


def resolve_device(device: object) -> torch.device:
    """``None`` -> CPU (the C kernel is the fast path there); otherwise a checked CPU or CUDA device."""
    from jpegbench._device import pick_device

    return pick_device(device, default="cpu", kinds=("cpu", "cuda"))  # type: ignore[arg-type]


def _is_plain_cpu(device: object) -> bool:
    """``None`` or ``"cpu"``: the CPU, known without importing torch."""
    return device is None or (isinstance(device, str) and device == "cpu")


def default_threads() -> int:
    """Threads of the C kernel: torch's intra-op setting when torch is loaded, else what torch would pick.

    That is ``$OMP_NUM_THREADS`` when it is a positive integer, otherwise
    the CPUs this process may run on.
    """
    if "torch" in sys.modules:
        return sys.modules["torch"].get_num_threads()
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _qtables(qfs: Sequence[int] | np.ndarray) -> np.ndarray:
    """IJG luminance tables of ``qfs``, ``(n_qf, 64)`` int64, natural order."""
    return np.stack([ijg_qtable(int(v)).reshape(64) for v in qfs]).astype(np.int64)


class _Tables:
    """Per-QF constants on the device (natural order)."""

    def __init__(self, qfs: np.ndarray, dev: torch.device):
        import torch

        q = _qtables(qfs)
        self.q = torch.tensor(q, dtype=torch.float64, device=dev)
        self.inv_eight_q = torch.tensor(1.0 / (8.0 * q), dtype=torch.float64, device=dev)
        self.four_q = torch.tensor(4.0 * q, dtype=torch.float32, device=dev)  # |t| >= 4q survives quantization
        key_q = _qtables(_KEY_QFS).astype(np.float64)
        self.key_four_q = torch.tensor(4.0 * key_q, dtype=torch.float32, device=dev)


def fast_sse(
    grays: Sequence[np.ndarray],
    qfs: np.ndarray,
    crops: Sequence[tuple[int, int]],
    *,
    device: object = None,
    chunk_blocks: int | None = None,
    num_threads: int | None = None,
    kernel: str = "auto",
) -> list[np.ndarray]:
    """Sum of squared recompression errors, ``[n_crops, n_qf]`` float64 per image.

    ``grays`` are uint8 (H, W) arrays of at least 16x16, ``qfs`` ascending,
    ``crops`` the (cy, cx) crops to measure; each crop has the common size of
    :func:`jpegbench.estimate.curves.crop_geometry`. ``kernel``: ``"auto"``
    (the C kernel on CPU when built), ``"c"`` or ``"torch"``.
    """
    dev_type = "cpu" if _is_plain_cpu(device) else resolve_device(device).type
    chunk = int(chunk_blocks) if chunk_blocks is not None else _DEFAULT_CHUNK[dev_type]
    if chunk < 1:
        raise InputError(f"chunk_blocks must be a positive integer, got {chunk_blocks!r}")
    bad_threads = isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1
    if num_threads is not None and bad_threads:
        raise InputError(f"num_threads must be a positive integer, got {num_threads!r}")
    lib = _pick_kernel(kernel, device)
    if lib is not None:
        # The kernel scales with cores (crops split over threads, GIL released); follow torch's
        # thread setting (OMP_NUM_THREADS, torch.set_num_threads) unless told otherwise.
        threads = num_threads if num_threads is not None else default_threads()
        q = _qtables(qfs).astype(np.int32)
        return [c_sse(lib, g, q, list(crops), threads=threads) for g in grays]
    import torch

    dev = resolve_device(device)
    tables = _Tables(qfs, dev)
    n_crops = len(crops)
    sse = torch.zeros(len(grays) * n_crops, qfs.size, dtype=torch.float64, device=dev)
    previous = torch.get_num_threads()
    try:
        if dev.type == "cpu":
            # Small ops: intra-op threads only add hand-off cost on a shared 2-core box.
            torch.set_num_threads(1 if num_threads is None else num_threads)
        with torch.inference_mode():
            for blocks, seg in _groups(grays, crops, chunk * _GROUP_CHUNKS):
                _process_group(blocks, seg, tables, chunk, sse, dev)
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)
    out = sse.cpu().numpy()
    return [out[i * n_crops : (i + 1) * n_crops] for i in range(len(grays))]


def implementation(device: object = None, kernel: str = "auto") -> str:
    """Which implementation :func:`fast_sse` uses for ``device``: ``"c"`` or ``"torch"``."""
    return "c" if _pick_kernel(kernel, device) is not None else "torch"


def _pick_kernel(kernel: str, device: object):
    if _is_plain_cpu(device) or resolve_device(device).type == "cpu":
        return load(kernel)  # validates kernel
    if check_kernel(kernel) == "c":
        raise InputError("the C kernel runs on CPU only")
    return None


def _groups(
    grays: Sequence[np.ndarray], crops: Sequence[tuple[int, int]], group: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(blocks uint8 (n, 8, 8), segment ids (n,))`` with about ``group`` blocks each."""
    pend_b: list[np.ndarray] = []
    pend_s: list[np.ndarray] = []
    count = 0
    n_crops = len(crops)
    for gi, g in enumerate(grays):
        h, w = 8 * ((g.shape[0] - 7) // 8), 8 * ((g.shape[1] - 7) // 8)
        nby, nbx = h // 8, w // 8
        rows_per_piece = max(1, group // nbx)
        for ci, (cy, cx) in enumerate(crops):
            for r0 in range(0, nby, rows_per_piece):
                r1 = min(nby, r0 + rows_per_piece)
                px = g[cy + 8 * r0 : cy + 8 * r1, cx : cx + w]
                b = px.reshape(r1 - r0, 8, nbx, 8).transpose(0, 2, 1, 3).reshape(-1, 8, 8)
                pend_b.append(b)
                pend_s.append(np.full(b.shape[0], gi * n_crops + ci, dtype=np.int64))
                count += b.shape[0]
                if count >= group:
                    yield np.concatenate(pend_b), np.concatenate(pend_s)
                    pend_b, pend_s, count = [], [], 0
    if pend_b:
        yield np.concatenate(pend_b), np.concatenate(pend_s)


def _process_group(
    blocks: np.ndarray, seg: np.ndarray, tb: _Tables, chunk: int, sse: torch.Tensor, dev: torch.device
) -> None:
    import torch

    from jpegbench.estimate._islow import fdct_islow

    samples = torch.from_numpy(blocks).to(dev)
    t = fdct_islow(samples.to(torch.int32) - 128).reshape(-1, 64).to(torch.float32)
    x = samples.reshape(-1, 64).to(torch.int32)
    segs = torch.from_numpy(seg).to(dev)
    abs_t = t.abs()
    # Sort blocks by how many AC coefficients survive at a few reference QFs, so that flat
    # blocks share chunks and take the DC-only shortcut (speed only; any order is correct).
    key = (abs_t[:, None, 1:] >= tb.key_four_q[None, :, 1:]).sum((1, 2))
    order = torch.argsort(key)
    t, x, segs, abs_t = t[order], x[order], segs[order], abs_t[order]
    t_nudged = t + 0.25 * torch.sign(t)
    for s in range(0, t.shape[0], chunk):
        sl = slice(s, s + chunk)
        _process_chunk(t_nudged[sl], x[sl], abs_t[sl], segs[sl], tb, sse)


def _exact_sq_err(coef: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-block sum of squared errors of libjpeg's islow decode of ``coef`` (n, 8, 8) against ``x``.

    Float64 throughout (every value an exact integer); the range limit is a
    plain clip unless some sample is far enough out of range for libjpeg's
    table to wrap.
    """
    import torch

    from jpegbench.estimate._islow import idct_islow_unlimited, range_limit

    rows = idct_islow_unlimited(coef)
    lo, hi = torch.aminmax(rows)
    if lo < -384 or hi > 639:  # beyond -512..511 around 128: the table's wrap-around
        rows = range_limit(rows.to(torch.int32) - 128).to(torch.float64)
    else:
        rows.clamp_(0, 255)
    d = rows.sub_(x).view(coef.shape[0], 64)
    return torch.einsum("ij,ij->i", d, d).to(torch.float32)


def _process_chunk(
    t: torch.Tensor, x: torch.Tensor, abs_t: torch.Tensor, segs: torch.Tensor, tb: _Tables, sse: torch.Tensor
) -> None:
    import torch

    n = t.shape[0]
    n_qf = tb.q.shape[0]
    # ac_live[j]: some AC coefficient of some block of the chunk survives quantization at QF j
    ac_live = (abs_t[:, 1:].amax(0)[None, :] >= tb.four_q[:, 1:]).any(1).tolist()
    errs = torch.empty(n_qf, n, dtype=torch.float32, device=t.device)
    t64 = t.to(torch.float64)  # every value below holds an exact integer (or the nudged t)
    x64 = x.to(torch.float64)
    s1, s2 = x64.sum(1), (x64 * x64).sum(1)
    for j in range(n_qf):
        if not ac_live[j]:
            # DC only: jidctint decodes every pixel of a block to floor(dc / 8 + 0.5) + 128
            dc = torch.round(t64[:, 0] * tb.inv_eight_q[j, 0]) * tb.q[j, 0]
            v = torch.floor(dc / 8 + 128.5).clamp_(0, 255)
            errs[j] = s2 - 2 * v * s1 + 64 * v * v
            continue
        coef = torch.round(t64 * tb.inv_eight_q[j]).mul_(tb.q[j])
        errs[j] = _exact_sq_err(coef.view(n, 8, 8), x64.view(n, 8, 8))
    sse.index_add_(0, segs, errs.T.to(torch.float64))
