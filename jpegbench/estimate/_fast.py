"""Fast backend of :func:`jpegbench.estimate.mse_curves`: recompression SSE per shift and QF in torch.

Work is organised so that memory is bounded and every QF costs as little as
its quantized coefficients need:

* blocks of all requested crops of all images are streamed in *groups* (a few
  thousand blocks, whole block rows of one crop at a time), so a large image
  never has its 64 crops in memory at once;
* the forward DCT is libjpeg's integer one (:mod:`._islow`), computed once per
  block; the quantizer ``round((t + sign(t) / 4) / 8q)`` equals libjpeg's
  ``sign(t) * ((|t| + 4q) // 8q)`` exactly in float32: ``t`` is an integer,
  so the nudged quotient is at least ``1 / 32q`` away from any half-integer
  (no ties), while float32 error is below ``3e-4 / q``;
* coefficients are kept in zig-zag order and blocks of a group are sorted by
  how early their coefficients become non-zero, so a chunk of blocks at a QF
  needs only the first ``K`` zig-zag coefficients (the rest quantize to zero
  for every block of the chunk): the dequantize + IDCT is one
  ``(n, K) @ (K, 64)`` product with the QF's table folded into the matrix;
* a chunk where only DC survives is closed form (flat blocks);
* the decoder's rounding (``floor(x + 0.5)``, libjpeg's DESCALE) and clipping
  are applied per pixel, and squared errors summed per block exactly (integers
  in float32).
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch

from jpegbench.codec import dct_matrix, ijg_qtable
from jpegbench.codec.header import ZIGZAG
from jpegbench.errors import InputError
from jpegbench.estimate._islow import fdct_islow

__all__ = ["fast_sse", "resolve_device"]

_DEFAULT_CHUNK = {"cpu": 2048, "cuda": 65536}
_GROUP_CHUNKS = 4  # chunks per sorted group
_KEY_QFS = (10, 30, 50, 70, 90)  # QFs whose sparsity orders the blocks of a group


def resolve_device(device: object) -> torch.device:
    """``None`` -> CPU; a string or :class:`torch.device`; CUDA must be available."""
    if device is None:
        return torch.device("cpu")
    try:
        dev = torch.device(device)  # type: ignore[arg-type]
    except (RuntimeError, TypeError):
        raise InputError(f"device must be 'cpu', 'cuda' or a torch.device, got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError("device='cuda' was asked for but torch.cuda.is_available() is False")
    if dev.type not in ("cpu", "cuda"):
        raise InputError(f"device must be a CPU or CUDA device, got {dev}")
    return dev


class _Tables:
    """Per-QF constants on the device: zig-zag tables and the folded dequantize+IDCT matrices."""

    def __init__(self, qfs: np.ndarray, dev: torch.device):
        zz = np.asarray(ZIGZAG)
        q = np.stack([ijg_qtable(int(v)).reshape(64)[zz] for v in qfs]).astype(np.float64)  # (n_qf, 64)
        d = dct_matrix(8)
        # pixel_vec = coef_vec @ kron(D, D) for natural order; rows re-ordered to zig-zag.
        idct = np.kron(d, d)[zz]
        self.q = q
        self.inv_eight_q = torch.tensor(1.0 / (8.0 * q), dtype=torch.float32, device=dev)
        self.four_q = torch.tensor(4.0 * q, dtype=torch.float32, device=dev)
        self.mat = torch.tensor(q[:, :, None] * idct[None], dtype=torch.float32, device=dev)
        self.dc_over_8 = torch.tensor(q[:, 0] / 8.0, dtype=torch.float32, device=dev)
        self.zz = torch.tensor(zz, dtype=torch.long, device=dev)
        key_q = np.stack([ijg_qtable(v).reshape(64)[zz] for v in _KEY_QFS]).astype(np.float64)
        self.key_four_q = torch.tensor(4.0 * key_q, dtype=torch.float32, device=dev)


def fast_sse(
    grays: Sequence[np.ndarray],
    qfs: np.ndarray,
    crops: Sequence[tuple[int, int]],
    *,
    device: object = None,
    chunk_blocks: int | None = None,
    num_threads: int | None = None,
) -> list[np.ndarray]:
    """Sum of squared recompression errors, ``[n_crops, n_qf]`` float64 per image.

    ``grays`` are uint8 (H, W) arrays of at least 16x16, ``qfs`` ascending,
    ``crops`` the (cy, cx) crops to measure; each crop has the common size of
    :func:`jpegbench.estimate.curves.crop_geometry`.
    """
    dev = resolve_device(device)
    chunk = int(chunk_blocks) if chunk_blocks is not None else _DEFAULT_CHUNK[dev.type]
    if chunk < 1:
        raise InputError(f"chunk_blocks must be a positive integer, got {chunk_blocks!r}")
    bad_threads = isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1
    if num_threads is not None and bad_threads:
        raise InputError(f"num_threads must be a positive integer, got {num_threads!r}")
    tables = _Tables(qfs, dev)
    n_crops = len(crops)
    sse = torch.zeros(len(grays) * n_crops, qfs.size, dtype=torch.float64, device=dev)
    previous = torch.get_num_threads()
    try:
        if dev.type == "cpu":
            # Small ops: intra-op threads only add hand-off cost (measured on the 2-core box:
            # 768x512 image, 11.5 s with 1 thread, 60-470 s with 2 under load).
            torch.set_num_threads(1 if num_threads is None else num_threads)
        with torch.inference_mode():
            for blocks, seg in _groups(grays, crops, chunk * _GROUP_CHUNKS):
                _process_group(blocks, seg, tables, chunk, sse, dev)
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)
    out = sse.cpu().numpy()
    return [out[i * n_crops : (i + 1) * n_crops] for i in range(len(grays))]


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
    samples = torch.from_numpy(blocks).to(dev)
    t = fdct_islow(samples.to(torch.int32) - 128).reshape(-1, 64)[:, tb.zz].to(torch.float32)
    x = samples.reshape(-1, 64).to(torch.float32)
    segs = torch.from_numpy(seg).to(dev)
    abs_t = t.abs()
    # Sort blocks by their last non-zero zig-zag index at a few reference QFs, so that
    # a chunk holds blocks that need a similar K (speed only; any order is correct).
    idx = torch.arange(1, 65, device=dev, dtype=torch.float32)
    key = ((abs_t[:, None, :] >= tb.key_four_q[None]) * idx).amax(2).sum(1)
    order = torch.argsort(key)
    t, x, segs, abs_t = t[order], x[order], segs[order], abs_t[order]
    # t + sign(t)/4 never lands on a rounding tie, so round(t' / 8q) is libjpeg's
    # round-half-away-from-zero quantizer even with a float32 reciprocal.
    t_nudged = t + 0.25 * torch.sign(t)
    for s in range(0, t.shape[0], chunk):
        sl = slice(s, s + chunk)
        _process_chunk(t_nudged[sl], x[sl], abs_t[sl], segs[sl], tb, sse)


def _process_chunk(
    t: torch.Tensor, x: torch.Tensor, abs_t: torch.Tensor, segs: torch.Tensor, tb: _Tables, sse: torch.Tensor
) -> None:
    n = t.shape[0]
    dev = t.device
    n_qf = tb.mat.shape[0]
    # ks[j]: 1 + last zig-zag index that is non-zero for some block of the chunk at QF j
    any_nz = abs_t.amax(0)[None, :] >= tb.four_q  # (n_qf, 64)
    ks = (any_nz * torch.arange(1, 65, device=dev)).amax(1).clamp(min=1).tolist()
    errs = torch.empty(n_qf, n, dtype=torch.float32, device=dev)
    if min(ks) == 1:
        s1, s2 = x.sum(1), (x * x).sum(1)
    if max(ks) > 1:
        # r = xhat + 0.5 - x, so floor(r) is the decoded pixel minus the original one
        bias = 128.5 - x
        lo, hi = -x, 255.0 - x
        kflat = torch.empty(n * 64, dtype=torch.float32, device=dev)
        r = torch.empty(n, 64, dtype=torch.float32, device=dev)
    for j, k in enumerate(ks):
        if k == 1:
            # only DC survives: every pixel of a block decodes to the same value
            k0 = torch.round(t[:, 0] * tb.inv_eight_q[j, 0])
            v = torch.floor(k0 * tb.dc_over_8[j] + 128.5).clamp_(0, 255)
            errs[j] = s2 - 2 * v * s1 + 64 * v * v
            continue
        kq = torch.mul(t[:, :k], tb.inv_eight_q[j, :k], out=kflat[: n * k].view(n, k)).round_()
        torch.addmm(bias, kq, tb.mat[j, :k], out=r)
        r.floor_()
        torch.clamp(r, min=lo, max=hi, out=r)
        torch.sum(r.square_(), dim=1, out=errs[j])
    sse.index_add_(0, segs, errs.T.to(torch.float64))
