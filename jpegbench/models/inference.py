"""Running an FBCNN on uint8 images: batching, tiled inference, colour policy.

Tiled inference
---------------
Large images are cut into tiles of ``tile`` pixels (a multiple of 8) whose
origins are multiples of 8, so every tile sees the same 8x8 JPEG grid and the
same stride-2 lattice of the three downsamplings as the whole image. Each
tile is restored with ``overlap`` pixels of context on every side that is not
an image border; only its centre is kept (crop and stitch, no blending).

The receptive-field margin
    A tile border (zero padding of the convolutions) changes outputs up to
    :func:`receptive_field_margin` pixels inward. For FBCNN with ``nb``
    residual blocks per scale that margin is 249 pixels for the released
    models (``nb=4``), 125 for ``nb=2``, 63 for ``nb=1``. With
    ``overlap >=`` the margin (rounded up to a multiple of 8: 256, 128, 64),
    tiled and untiled outputs agree to float rounding; the tests check this.

Default overlap: 64 pixels
    The exact margin of the released models would need tiles of at least
    ``2 * 256 + 8`` pixels and cost (tile / (tile - 512))^2 times the
    untiled work. Trained networks' effective receptive field is much smaller
    than the theoretical one, so 64 pixels (the exact margin of ``nb=1``; a
    quarter of it for ``nb=4``) is used by default: about 1.8x the untiled
    work with 512-pixel tiles, plus about half of that again when the QF is
    predicted (the first pass runs the encoder). Pass ``overlap=256`` (and
    tiles over 512 pixels) for exact agreement. Measured on the shipped
    small model (``nb=2``, exact margin 125 px), camera 512 x 512 at QF 10,
    256-pixel tiles, the same QF for tiled and untiled: with overlap 64,
    6 pixels in 262 144 differ from the untiled output, by one grey level;
    with overlap 0, 7 % of the pixels differ, by up to 22 levels
    (``tests/models/test_models_inference.py``). Blind, the tiled run also
    uses the median of the tiles' QF predictions instead of the whole
    image's (7.9 against 8.6 there), which moves 3 % of the pixels by one
    level (-0.002 dB).

One QF for all tiles
    FBCNN's QF prediction is a global average over the image; a tile only
    sees part of it, and tiles restored with different QFs would disagree at
    the seams. So, when the QF is not given, it is first predicted on every
    tile (encoder and QF head only), the median of those predictions is
    taken as *the* QF, and every tile is then restored with it. The
    per-tile predictions are returned as ``qf_map`` on request.

Colour
------
Gray models on RGB input need an explicit ``color_policy``: ``"y"`` restores
the BT.601 studio-swing Y channel (:func:`jpegbench.codec.rgb_to_y`) and keeps
Cb/Cr from :func:`jpegbench.codec.rgb_to_ycbcr`; ``"error"`` (the default)
refuses.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

from jpegbench.codec import check_pixels, rgb_to_y, rgb_to_ycbcr, ycbcr_to_rgb
from jpegbench.errors import InputError, QualityError, ShapeError
from jpegbench.models._restoration import Restoration
from jpegbench._device import pick_device
from jpegbench.models.fbcnn import FBCNN, GRID

__all__ = [
    "COLOR_POLICIES",
    "DEFAULT_OVERLAP",
    "PRECISIONS",
    "Restoration",
    "check_tiling",
    "predict_qf",
    "receptive_field_margin",
    "restore",
    "restore_batch",
    "tile_spans",
]

DEFAULT_OVERLAP = 64
COLOR_POLICIES = ("y", "error")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")


# -- settings ------------------------------------------------------------------


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if device.type != "cuda":
        if precision in ("fp16", "bf16"):
            raise InputError(f"precision {precision!r} is supported on CUDA only, got device {str(device)!r}")
        return contextlib.nullcontext()
    if precision == "fp32":
        return contextlib.nullcontext()
    # fp16 keeps 10 mantissa bits, enough for an 8-bit output; bf16 (7 bits)
    # is offered for range, not chosen by default.
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def receptive_field_margin(model_or_nb: FBCNN | int) -> int:
    """Pixels inward from a tile border whose outputs the border can change.

    Follows the border contamination of zero padding through the network:
    one pixel per 3x3 convolution at its scale, halved (rounded up) by each
    stride-2 downsampling, doubled by each transposed-conv upsampling.

    Parameters
    ----------
    model_or_nb : FBCNN or int
        A model, or its residual blocks per scale ``nb``.

    Returns
    -------
    int
        249 for the released models (``nb=4``), 125 for ``nb=2``, 63 for ``nb=1``. Use an ``overlap`` of at
        least this (rounded up to a multiple of 8) for exact tiling.
    """
    nb = model_or_nb.nb if isinstance(model_or_nb, FBCNN) else model_or_nb
    if isinstance(nb, bool) or not isinstance(nb, int) or nb < 1:
        raise InputError(f"nb must be a positive int or an FBCNN, got {model_or_nb!r}")

    def half(v: int) -> int:
        return -(-v // 2)

    blocks = 2 * nb  # 3x3 convs per stage
    level0 = 1 + blocks  # m_head, m_down1 res blocks
    level1 = half(level0) + blocks
    level2 = half(level1) + blocks
    bottom = half(level2) + 2 * blocks  # encoder and decoder bodies
    up2 = 2 * bottom + blocks
    up1 = 2 * up2 + blocks
    up0 = 2 * up1 + blocks
    return up0 + 1  # m_tail


def check_tiling(tile: object, overlap: object) -> tuple[int, int]:
    """Return ``(tile, overlap)`` as ints or raise InputError.

    Both multiples of 8 with ``2 * overlap < tile``; ``overlap=None`` means
    :data:`DEFAULT_OVERLAP`, reduced to the largest allowed for small tiles.
    """
    if isinstance(tile, bool) or not isinstance(tile, (int, np.integer)) or tile < 2 * GRID or tile % GRID:
        raise InputError(f"tile must be a multiple of {GRID} and at least {2 * GRID} pixels, got {tile!r}")
    if overlap is None:
        overlap = min(DEFAULT_OVERLAP, (tile // 2 - 1) // GRID * GRID)
    if isinstance(overlap, bool) or not isinstance(overlap, (int, np.integer)) or overlap < 0 or overlap % GRID:
        raise InputError(f"overlap must be a non-negative multiple of {GRID} pixels, got {overlap!r}")
    if 2 * overlap >= tile:
        raise InputError(f"overlap must be less than tile / 2 (tile={tile}), got {overlap}")
    return int(tile), int(overlap)


def tile_spans(length: int, *, tile: int, overlap: int | None = None) -> list[tuple[int, int, int, int]]:
    """Cut one image axis into tiles aligned to the 8-pixel grid.

    Parameters
    ----------
    length : int
        Image height or width.
    tile, overlap : int
        Multiples of 8, ``2 * overlap < tile``.

    Returns
    -------
    list of (start, stop, keep_start, keep_stop)
        Each tile reads ``[start, stop)`` and its output is kept on
        ``[keep_start, keep_stop)``; the kept ranges partition ``[0, length)``.
        Every ``start`` is a multiple of 8; every kept range is at least
        ``overlap`` pixels from its tile's border unless that border is the
        image's. The last tile ends at the image border and may be up to 7
        pixels shorter than ``tile``.
    """
    tile, overlap = check_tiling(tile, overlap)
    if length <= tile:
        return [(0, length, 0, length)]
    step = tile - 2 * overlap
    starts = list(range(0, length - tile, step))
    starts.append(-(-(length - tile) // GRID) * GRID)  # last: grid-aligned, reaching the border
    spans, keep_start = [], 0
    for i, start in enumerate(starts):
        last = i == len(starts) - 1
        keep_stop = length if last else start + tile - overlap
        spans.append((start, min(start + tile, length), keep_start, keep_stop))
        keep_start = keep_stop
    return spans


# -- pixels <-> model planes -------------------------------------------------------


def _check_model(model: object) -> FBCNN:
    if not isinstance(model, FBCNN):
        raise InputError(f"model must be an FBCNN, got {type(model).__name__}")
    return model


def _planes(
    model: FBCNN, pixels: np.ndarray, color_policy: str
) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """Model input as uint8 ``(C, H, W)``, and how to turn the model's ``(C, H, W)`` output back into pixels.

    uint8, not float: a quarter of the memory for large tiled images and of
    the host-to-device traffic; tiles are scaled to [0, 1] on the device.
    """
    if color_policy not in COLOR_POLICIES:
        raise InputError(f"color_policy must be one of {COLOR_POLICIES}, got {color_policy!r}")

    def to_uint8(out: np.ndarray) -> np.ndarray:
        # In place: ``out`` is our own float32 buffer, as large as the image.
        out *= 255.0
        img = np.clip(np.rint(out, out=out), 0, 255, out=out).astype(np.uint8)
        return img[0] if img.shape[0] == 1 else np.ascontiguousarray(img.transpose(1, 2, 0))

    if model.in_nc == 3:
        if pixels.ndim != 3:
            raise ShapeError(f"a 3-channel model needs RGB pixels (H, W, 3), got shape {pixels.shape}")
        return pixels.transpose(2, 0, 1), to_uint8
    if model.in_nc != 1:
        raise ShapeError(f"restore handles 1- and 3-channel models, got in_nc={model.in_nc}")
    if pixels.ndim == 2:
        return pixels[None], to_uint8
    if color_policy == "error":
        raise ShapeError(
            f"a gray model got RGB pixels {pixels.shape}; pass color_policy='y' to restore the Y channel"
        )
    ycbcr = rgb_to_ycbcr(pixels)
    y = rgb_to_y(pixels)

    def back_to_rgb(out: np.ndarray) -> np.ndarray:
        ycbcr[..., 0] = np.clip(out[0] * 255.0, 0.0, 255.0)
        return ycbcr_to_rgb(ycbcr)

    return y[None], back_to_rgb


def _qf_value(qf: object) -> float | None:
    if qf is None:
        return None
    if isinstance(qf, bool) or not isinstance(qf, (int, float, np.integer, np.floating)):
        raise QualityError(f"qf must be a number in 1..100 or None, got {qf!r} ({type(qf).__name__})")
    if not 1 <= float(qf) <= 100:
        raise QualityError(f"qf must be in 1..100, got {qf}")
    return float(qf)


def _prepare(model: FBCNN, device: str | torch.device | None) -> torch.device:
    dev = pick_device(device)
    model.to(dev)
    if dev.type == "cuda":
        # Tensor cores want NHWC; on CPU (oneDNN) the measured gain is nil.
        model.to(memory_format=torch.channels_last)
    return dev


# -- running -------------------------------------------------------------------------


def _to_tensor(batch: np.ndarray, device: torch.device) -> Tensor:
    x = torch.from_numpy(np.ascontiguousarray(batch)).to(device)
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()


def _run(
    model: FBCNN, batch: np.ndarray, qf: float | None, device: torch.device, precision: str
) -> tuple[np.ndarray, np.ndarray]:
    """Forward a ``(N, C, H, W)`` uint8 (or float in [0, 1]) batch; ``qf``: one value for all, or None.

    Returns float32 outputs clamped to [0, 1] and the predicted QFs ``(N,)``.
    """
    x = _to_tensor(batch, device)
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    qf_t = None if qf is None else torch.full((x.shape[0],), float(qf), device=device)
    with torch.inference_mode(), _autocast(device, precision):
        out, qf_pred = model(x, qf=qf_t)
        return out.float().clamp_(0.0, 1.0).cpu().numpy(), qf_pred.float().cpu().numpy()


def _predict(model: FBCNN, batch: np.ndarray, device: torch.device, precision: str) -> np.ndarray:
    x = _to_tensor(batch, device)
    with torch.inference_mode(), _autocast(device, precision):
        return model.predict_qf(x).float().cpu().numpy()


_QF_PATCH_BATCH = 64
_QF_PATCH_MAX = 4096  # patches read at most (a regular subsample of the grid beyond)


def _patch_qf(model: FBCNN, planes: np.ndarray, device: torch.device, precision: str) -> tuple[float, np.ndarray]:
    """Median of the QF predictions on the non-overlapping ``model.qf_patch`` grid of ``planes`` (C, H, W).

    Returns the median and the grid of predictions ``(rows, cols)``.
    """
    p = int(model.qf_patch)  # type: ignore[arg-type]
    _, height, width = planes.shape
    rows, cols = height // p, width // p
    cells = [(i, j) for i in range(rows) for j in range(cols)]
    if len(cells) > _QF_PATCH_MAX:
        cells = [cells[k] for k in np.linspace(0, len(cells) - 1, _QF_PATCH_MAX).round().astype(int)]
    grid = np.full((rows, cols), np.nan)
    for chunk in _chunks(cells, _QF_PATCH_BATCH):
        batch = np.stack([planes[:, i * p : (i + 1) * p, j * p : (j + 1) * p] for i, j in chunk])
        for (i, j), value in zip(chunk, _predict(model, batch, device, precision)):
            grid[i, j] = value
    return float(np.nanmedian(grid)), grid


def _uses_patches(model: FBCNN, planes: np.ndarray) -> bool:
    p = getattr(model, "qf_patch", None)
    return isinstance(p, int) and min(planes.shape[1:]) >= p


def predict_qf(
    model: FBCNN,
    pixels: np.ndarray,
    *,
    device: str | torch.device | None = None,
    color_policy: str = "error",
    precision: str = "auto",
) -> float:
    """The model's QF prediction (0..100, not rounded) for one JPEG-decoded image.

    A model trained on small patches (``model.qf_patch`` set, as in the
    shipped small models: 64 px) is read the way it was trained: the image
    is cut into non-overlapping ``qf_patch`` squares and the median of
    their predictions is returned. One global average pooling over a whole
    image gives the QF head feature statistics it never saw in training; for
    the shipped small FBCNN on LIVE1 gray it reads QF 10 / 50 / 90 as about
    7 / 36 / 84, the patch median as about 13 / 50 / 86 (MODEL_CARD.md).
    Images smaller than one patch, and models without ``qf_patch`` (the
    released checkpoints), use the whole image, as the paper does.

    Parameters
    ----------
    model : FBCNN
    pixels : ndarray, uint8, shape (H, W) or (H, W, 3)
    device, color_policy, precision
        As in :func:`restore`.

    Returns
    -------
    float
    """
    model = _check_model(model)
    planes, _ = _planes(model, check_pixels(pixels), color_policy)
    dev = _prepare(model, device)
    _autocast(dev, precision)
    if _uses_patches(model, planes):
        return _patch_qf(model, planes, dev, precision)[0]
    return float(_predict(model, planes[None], dev, precision)[0])


def _chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _tiled(
    model: FBCNN,
    planes: np.ndarray,
    qf: float | None,
    *,
    tile: int,
    overlap: int,
    batch_size: int,
    device: torch.device,
    precision: str,
) -> tuple[np.ndarray, float, float, np.ndarray, int]:
    _, height, width = planes.shape
    rows, cols = tile_spans(height, tile=tile, overlap=overlap), tile_spans(width, tile=tile, overlap=overlap)
    grid = [(i, j) for i in range(len(rows)) for j in range(len(cols))]
    # Batch only tiles of equal size (edge tiles may be shorter).
    groups: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for i, j in grid:
        size = (rows[i][1] - rows[i][0], cols[j][1] - cols[j][0])
        groups.setdefault(size, []).append((i, j))

    def crops(ids: Sequence[tuple[int, int]]) -> np.ndarray:
        return np.stack([planes[:, rows[i][0] : rows[i][1], cols[j][0] : cols[j][1]] for i, j in ids])

    qf_map = np.empty((len(rows), len(cols)), dtype=np.float64)
    if qf is None:
        for ids in groups.values():
            for chunk in _chunks(ids, batch_size):
                for (i, j), value in zip(chunk, _predict(model, crops(chunk), device, precision)):
                    qf_map[i, j] = value
        qf_used = float(np.median(qf_map))
    else:
        qf_used = qf

    out = np.empty((model.out_nc, height, width), dtype=np.float32)
    for ids in groups.values():
        for chunk in _chunks(ids, batch_size):
            restored, predicted = _run(model, crops(chunk), qf_used, device, precision)
            for (i, j), tile_out, value in zip(chunk, restored, predicted):
                r0, _, rk0, rk1 = rows[i]
                c0, _, ck0, ck1 = cols[j]
                out[:, rk0:rk1, ck0:ck1] = tile_out[:, rk0 - r0 : rk1 - r0, ck0 - c0 : ck1 - c0]
                if qf is not None:
                    qf_map[i, j] = value
    return out, float(np.median(qf_map)), qf_used, qf_map, len(grid)


def restore(
    model: FBCNN,
    pixels: np.ndarray,
    *,
    qf: float | None = None,
    tile: int | None = None,
    overlap: int | None = None,
    batch_size: int = 1,
    device: str | torch.device | None = None,
    color_policy: str = "error",
    precision: str = "auto",
    return_qf_map: bool = False,
) -> Restoration:
    """Restore one JPEG-decoded image with an FBCNN.

    Parameters
    ----------
    model : FBCNN
        Moved to ``device`` (in place, as ``nn.Module.to``); its train/eval
        mode is left alone (FBCNN has no mode-dependent layers).
    pixels : ndarray, uint8, shape (H, W) or (H, W, 3)
    qf : float, optional
        QF (1..100) conditioning the decoder instead of the prediction.
        Blind (``None``), the prediction is :func:`predict_qf`'s: for a model
        with ``qf_patch`` the patch median, which then conditions the decoder.
    tile : int, optional
        Tile size in pixels, a multiple of 8; ``None`` runs the whole image
        at once. Memory is then bounded by the tile size (activations of
        ``batch_size`` tiles) plus about 6 bytes per pixel of image buffers
        (uint8 input planes, float32 output); colour with
        ``color_policy="y"`` adds a float64 YCbCr copy.
    overlap : int, optional
        Context kept around each tile, a multiple of 8; default 64 (less for
        tiles under 136 pixels). See the module docstring and
        :func:`receptive_field_margin` (exact tiling needs 256 for the
        released models).
    batch_size : int, default 1
        Tiles run together (tiled mode only).
    device : str or torch.device, optional
        See :func:`pick_device`.
    color_policy : {"error", "y"}, default "error"
        What a gray model does with RGB pixels.
    precision : {"auto", "fp32", "fp16", "bf16"}, default "auto"
        Autocast dtype on CUDA ("auto": fp16); CPU always runs fp32.
    return_qf_map : bool, default False
        Also return the per-tile QF predictions (per ``qf_patch`` patch for
        a model read patch-wise, see :func:`predict_qf`).

    Returns
    -------
    Restoration

    Raises
    ------
    ShapeError
        Pixels not uint8 (H, W) / (H, W, 3), or colour not matching the model.
    QualityError
        ``qf`` outside 1..100.
    InputError
        Bad tile, overlap, device, precision or colour policy.
    """
    model = _check_model(model)
    pixels = check_pixels(pixels)
    qf_value = _qf_value(qf)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a positive int, got {batch_size!r}")
    if tile is not None:
        tile, overlap = check_tiling(tile, overlap)
    planes, finish = _planes(model, pixels, color_policy)
    dev = _prepare(model, device)
    _autocast(dev, precision)  # validate before any work

    patch = None
    if qf_value is None and _uses_patches(model, planes):
        # Blind, with a model read at its training patch size: the patch median conditions the decoder.
        patch = _patch_qf(model, planes, dev, precision)
        qf_value = patch[0]
    if tile is None or max(planes.shape[1:]) <= tile:
        out, predicted = _run(model, planes[None], qf_value, dev, precision)
        out, qf_pred, count = out[0], float(predicted[0]), 1
        qf_used = qf_pred if qf_value is None else qf_value
        qf_map = np.array([[qf_pred]])
    else:
        out, qf_pred, qf_used, qf_map, count = _tiled(model, planes, qf_value, tile=tile, overlap=overlap,
                                                      batch_size=batch_size, device=dev, precision=precision)  # fmt: skip
    if patch is not None:
        qf_pred, qf_map = patch
    return Restoration(finish(out), qf_pred, qf_used, qf_map=qf_map if return_qf_map else None, tiles=count)


def restore_batch(
    model: FBCNN,
    images: Sequence[np.ndarray],
    *,
    qf: float | Sequence[float] | None = None,
    batch_size: int = 4,
    device: str | torch.device | None = None,
    color_policy: str = "error",
    precision: str = "auto",
) -> list[Restoration]:
    """Restore several images, running same-size images in one batch.

    Parameters
    ----------
    model : FBCNN
    images : sequence of ndarray, uint8, (H, W) or (H, W, 3)
    qf : float or sequence of float, optional
        One QF for all, one per image, or ``None`` (blind).
    batch_size : int, default 4
        Images per forward pass (only images of equal shape are batched).
    device, color_policy, precision
        As in :func:`restore`.

    Returns
    -------
    list of Restoration
        In the order of ``images``. For tiling, call :func:`restore` per image.
    """
    model = _check_model(model)
    if isinstance(images, np.ndarray) or not isinstance(images, Sequence):
        raise InputError(f"images must be a sequence of uint8 arrays, got {type(images).__name__}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a positive int, got {batch_size!r}")
    if qf is None or isinstance(qf, (int, float, np.integer, np.floating)):
        qfs = [_qf_value(qf)] * len(images)
    else:
        if len(qf) != len(images):
            raise InputError(f"qf must be one value or one per image ({len(images)}), got {len(qf)} values")
        qfs = [_qf_value(v) for v in qf]
    prepared = [_planes(model, check_pixels(img, name=f"images[{k}]"), color_policy) for k, img in enumerate(images)]
    dev = _prepare(model, device)
    _autocast(dev, precision)
    # Blind images of a patch-read model get their patch-median QF first (see predict_qf).
    patch_read = {k for k, (q, (planes, _)) in enumerate(zip(qfs, prepared)) if q is None and _uses_patches(model, planes)}
    qfs = [_patch_qf(model, prepared[k][0], dev, precision)[0] if k in patch_read else q for k, q in enumerate(qfs)]

    groups: dict[tuple, list[int]] = {}
    for k, (planes, _) in enumerate(prepared):
        groups.setdefault((planes.shape, qfs[k]), []).append(k)
    results: list[Restoration | None] = [None] * len(images)
    for (_, qf_value), ids in groups.items():
        for chunk in _chunks(ids, batch_size):
            out, predicted = _run(model, np.stack([prepared[k][0] for k in chunk]), qf_value, dev, precision)
            for k, restored, value in zip(chunk, out, predicted):
                if k in patch_read:
                    results[k] = Restoration(prepared[k][1](restored), qf_value, qf_value)
                    continue
                used = float(value) if qf_value is None else qf_value
                results[k] = Restoration(prepared[k][1](restored), float(value), used)
    return results  # type: ignore[return-value]
