"""Running the table-guided restorers (QCN, QGCN, IJCN) on one image: tables in, tiled inference, uint8 out.

The networks' inputs are those of :mod:`jpegbench.models.jpeg_inputs`; this
module cuts them into tiles so that memory is bounded by the tile size, as
:func:`jpegbench.models.restore` does for FBCNN (crop and stitch, no
blending: each tile is run with ``overlap`` pixels of context on every side
that is not an image border and only its centre is kept).

QCN / QGCN: tiles in pixels
    The image is padded to a multiple of 8 (edge replication, as the
    authors) and cut by :func:`jpegbench.models.tile_spans`: tile origins are
    multiples of 8, so every tile sees the JPEG block grid and the stride-2
    lattice of the whole image, and its quantization maps (8-periodic from
    the origin) are built for the tile alone and equal the crop of the whole
    image's maps. QGCN's global branch is computed *once*, on the 112x112
    copy of the whole padded image, and its 64 features condition every
    tile (:meth:`QGCN.forward_with_features`): a tile never sees a resized
    copy of itself.

IJCN: tiles on the block grid
    The offset module (:class:`jpegbench.models.ijcn.LOGM`) runs once on the
    whole image's coefficients: its transformer's channel attention sums
    over *all* tokens, a global statistic that no tile reproduces. It works
    on one token per 16x16 pixels (320 channels), about 5 bytes per pixel
    per feature map, so a whole image costs far less than one full-resolution
    feature map of the U-Net. Its corrected, dequantized coefficients are
    then cut on the 64-pixel grid (tiles and overlap whole multiples of 64
    pixels: 8 luma and 4 chroma blocks, the transformer's 4x4-token window)
    and each tile is decoded to RGB and refined by the U-Net
    (:meth:`IJCN.refine`), whose table modulation is the same for every tile.

Receptive-field margins and the default overlap
    A tile border changes outputs up to :func:`guided_margin` pixels inward:
    ``4 n_resblocks + 7`` for QCN, ``8 (n_resblocks // 2) + 9`` for QGCN
    (263 and 265 for the released ``n_resblocks=64``), 183 for IJCN (its
    U-Net has four residual blocks per stage whatever its width; the chroma
    upsampling adds one pixel). With ``overlap`` at least the margin, tiled
    and untiled outputs agree to float rounding (the tests check this on
    small random networks). The default overlap is 64 pixels, FBCNN's
    trade-off: trained networks' effective receptive field is far smaller
    than the theoretical one; pass a larger overlap for exactness.

Precision: float32 on every device (no autocast).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from jpegbench.codec import check_pixels, rgb_to_y
from jpegbench.codec.coefficients import JpegCoefficients
from jpegbench.errors import InputError, ShapeError, UnsupportedImageError
from jpegbench.models.ijcn import IJCN, _check_inputs
from jpegbench.models.inference import check_tiling, pick_device, tile_spans
from jpegbench.models.jpeg_inputs import _check_tables, _to_unit_range, global_copy, ijcn_inputs, quantization_maps
from jpegbench.models.qcn import QCN, QGCN

__all__ = [
    "IJCN_GRID",
    "check_guided_tiling",
    "guided_margin",
    "restore_ijcn",
    "restore_qcn",
    "run_ijcn",
    "run_qcn",
]

#: IJCN tiles are whole multiples of this many pixels (4x4 transformer tokens of 16x16 pixels).
IJCN_GRID = 64
_IJCN_BLOCKS_PER_STAGE = 4


# -- margins and tiling ------------------------------------------------------------


def guided_margin(model: nn.Module) -> int:
    """Pixels inward from a tile border whose outputs the border can change (QCN, QGCN or IJCN).

    Follows the contamination of zero padding through the network: one
    pixel per 3x3 convolution at its scale, halved (rounded up) by each
    downsampling, doubled by each pixel-shuffle; QGCN's global branch and
    IJCN's offset module run on the whole image and add nothing.
    """
    if isinstance(model, (QCN, QGCN)):
        nr = model.config["n_resblocks"]
        half_res_convs = 2 * nr + 2 if isinstance(model, QCN) else 4 * (nr // 2) + 3
        # head conv (1 px) -> the 4x4 stride-2 conv leaves 1 px at half resolution
        return 2 * (1 + half_res_convs) + 1
    if isinstance(model, IJCN):
        blocks = 2 * _IJCN_BLOCKS_PER_STAGE  # 3x3 convs per stage

        def half(v: int) -> int:
            return -(-v // 2)

        c = 1 + 1 + blocks  # chroma upsampling at the tile edge, m_head, m_down1
        c = half(c) + 1 + blocks  # unshuffle, 3x3 conv; m_down2
        c = half(c) + 4 * blocks  # unshuffle, 1x1 conv; m_down3, m_down4, m_up4, m_up3
        c = 2 * c + blocks  # m_up2: shuffle, blocks
        c = 2 * (c + 1) + blocks  # m_up1: 3x3 conv, shuffle, blocks
        return c + 1  # m_tail
    raise InputError(f"model must be a QCN, QGCN or IJCN, got {type(model).__name__}")


def check_guided_tiling(model_or_arch: nn.Module | str, tile: object, overlap: object) -> tuple[int, int]:
    """``(tile, overlap)`` as ints for a guided architecture, or InputError.

    QCN/QGCN: as :func:`jpegbench.models.inference.check_tiling` (multiples of
    8, default overlap 64). IJCN: multiples of 64 pixels, tile at least 128,
    ``2 * overlap < tile``, default overlap 64 (0 for 128-pixel tiles).
    """
    arch = model_or_arch if isinstance(model_or_arch, str) else _arch(model_or_arch)
    if arch != "ijcn":
        return check_tiling(tile, overlap)
    g = IJCN_GRID
    if isinstance(tile, bool) or not isinstance(tile, (int, np.integer)) or tile < 2 * g or tile % g:
        raise InputError(f"IJCN tiles must be a multiple of {g} pixels and at least {2 * g} (whole 4x4-token "
                         f"windows of 16x16-pixel MCUs), got tile={tile!r}")  # fmt: skip
    if overlap is None:
        overlap = g if tile > 2 * g else 0
    if isinstance(overlap, bool) or not isinstance(overlap, (int, np.integer)) or overlap < 0 or overlap % g:
        raise InputError(f"IJCN overlap must be a non-negative multiple of {g} pixels, got {overlap!r}")
    if 2 * overlap >= tile:
        raise InputError(f"overlap must be less than tile / 2 (tile={tile}), got {overlap}")
    return int(tile), int(overlap)


def _arch(model: object) -> str:
    if isinstance(model, QGCN):
        return "qgcn"
    if isinstance(model, QCN):
        return "qcn"
    if isinstance(model, IJCN):
        return "ijcn"
    raise InputError(f"model must be a QCN, QGCN or IJCN, got {type(model).__name__}")


def _prepare(model: nn.Module, device: str | torch.device | None) -> torch.device:
    dev = pick_device(device)
    model.to(dev)
    return dev


# -- QCN / QGCN --------------------------------------------------------------------


def run_qcn(
    model: QCN | QGCN,
    planes: np.ndarray,
    tables: Sequence[np.ndarray],
    *,
    tile: int | None = None,
    overlap: int | None = None,
    device: str | torch.device | None = None,
) -> tuple[np.ndarray, int]:
    """The network's output on ``planes``, tile by tile, on its own [-1, 1] scale.

    Parameters
    ----------
    model : QCN or QGCN
    planes : ndarray, uint8, ``(C, Hp, Wp)``
        The image channels the model reads, Hp and Wp multiples of 8.
    tables : sequence of (8, 8) integer arrays
        The maps' tables, one per map channel (``in_channel - C``).
    tile, overlap : int, optional
        ``tile=None`` runs the whole image at once.
    device : str or torch.device, optional

    Returns
    -------
    (ndarray float32 ``(out_channel, Hp, Wp)``, number of tiles)
    """
    arch = _arch(model)
    if arch == "ijcn":
        raise InputError("run_qcn takes a QCN or QGCN; use run_ijcn for IJCN")
    if not isinstance(planes, np.ndarray) or planes.dtype != np.uint8 or planes.ndim != 3:
        raise ShapeError(f"planes must be uint8 (C, H, W), got {getattr(planes, 'shape', type(planes))}")
    c, height, width = planes.shape
    if height % 8 or width % 8:
        raise ShapeError(f"planes must be padded to a multiple of 8, got {height}x{width}")
    checked = _check_tables(list(tables))
    if c + len(checked) != model.config["in_channel"] or c != model.config["out_channel"]:
        raise ShapeError(f"{arch.upper()}(in_channel={model.config['in_channel']}, out_channel="
                         f"{model.config['out_channel']}) cannot read {c} image channel(s) and {len(checked)} "
                         "map(s)")  # fmt: skip
    if tile is None:
        tile, overlap = max(height, width), 0
    tile, overlap = check_tiling(tile, overlap)
    dev = _prepare(model, device)
    rows, cols = tile_spans(height, tile=tile, overlap=overlap), tile_spans(width, tile=tile, overlap=overlap)
    out = np.empty((model.config["out_channel"], height, width), dtype=np.float32)
    with torch.inference_mode():
        features = None
        if arch == "qgcn":
            # Once, on the whole image: every tile is conditioned on the same global view.
            features = model.global_features(global_copy(planes[0] if c == 1 else planes.transpose(1, 2, 0)).to(dev))
        for (r0, r1, rk0, rk1), (c0, c1, ck0, ck1) in itertools.product(rows, cols):
            # Tile origins are multiples of 8: the tile's own maps equal the crop of the whole image's.
            x = np.concatenate([_to_unit_range(planes[:, r0:r1, c0:c1]), quantization_maps(checked, r1 - r0, c1 - c0)])
            x = torch.from_numpy(x)[None].to(dev)
            y = model(x) if features is None else model.forward_with_features(x, features)
            out[:, rk0:rk1, ck0:ck1] = y[0, :, rk0 - r0 : rk1 - r0, ck0 - c0 : ck1 - c0].float().cpu().numpy()
    return out, len(rows) * len(cols)


# JFIF (full-range BT.601) YCbCr, the space the luma table quantized; rows Y, Cb, Cr over R, G, B.
_JFIF = np.array([[0.299, 0.587, 0.114], [-0.168735892, -0.331264108, 0.5], [0.5, -0.418687589, -0.081312411]])


def _replace_jfif_luma(rgb: np.ndarray, luma: np.ndarray) -> np.ndarray:
    """``rgb`` with its JFIF luma replaced by ``luma`` (float, 0..255), chroma kept; uint8."""
    ycc = rgb.astype(np.float64) @ _JFIF.T
    ycc[..., 0] = luma
    out = ycc @ np.linalg.inv(_JFIF).T
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def restore_qcn(
    model: QCN | QGCN,
    pixels: np.ndarray,
    tables: Sequence[np.ndarray],
    *,
    tile: int | None = None,
    overlap: int | None = None,
    device: str | torch.device | None = None,
) -> tuple[np.ndarray, int]:
    """Restore one decoded JPEG with a QCN or QGCN guided by ``tables``.

    Parameters
    ----------
    model : QCN or QGCN
    pixels : ndarray, uint8, (H, W) or (H, W, 3)
    tables : sequence of (8, 8) integer arrays
        Luma (and chroma for a colour model) tables, steps 1..255: the
        file's, or the IJG tables of a chosen QF.
    tile, overlap, device
        As in :func:`run_qcn` (``overlap`` default 64).

    Returns
    -------
    (ndarray uint8 shaped like ``pixels``, number of tiles)

    Notes
    -----
    A gray model given RGB pixels restores their JFIF luma (the plane the
    luma table quantized) with the luma table and puts it back with the
    image's own chroma. A colour model refuses gray pixels (no chroma
    table to build its second map from).
    """
    pixels = check_pixels(pixels)
    arch = _arch(model)
    channels = model.config["out_channel"]
    if channels == 3 and pixels.ndim == 2:
        raise UnsupportedImageError(f"a colour {arch.upper()} needs a colour image (luma and chroma tables); "
                                    "this one is gray")  # fmt: skip
    if channels not in (1, 3):
        raise ShapeError(f"{arch.upper()} with out_channel={channels} is neither gray nor colour")
    plane = rgb_to_y(pixels, definition="bt601-full") if channels == 1 and pixels.ndim == 3 else pixels
    n_maps = model.config["in_channel"] - channels
    tables = list(tables) if not isinstance(tables, np.ndarray) else [tables]
    if len(tables) < n_maps:
        raise InputError(f"{arch.upper()} reads {n_maps} quantization map(s), got {len(tables)} table(s)")
    h, w = plane.shape[:2]
    pad = ((0, -h % 8), (0, -w % 8)) + (((0, 0),) if plane.ndim == 3 else ())
    padded = np.pad(plane, pad, mode="edge")
    planes = padded[None] if padded.ndim == 2 else np.ascontiguousarray(padded.transpose(2, 0, 1))
    out, count = run_qcn(model, planes, tables[:n_maps], tile=tile, overlap=overlap, device=device)
    # The authors' tensor2uint: round(clip(out * 0.5 + 0.5, 0, 1) * 255).
    unit = np.clip(out[:, :h, :w] * np.float32(0.5) + np.float32(0.5), 0.0, 1.0) * np.float32(255.0)
    if plane is not pixels:
        return _replace_jfif_luma(pixels, np.round(unit[0])), count
    img = np.round(unit).astype(np.uint8)
    return (img[0] if channels == 1 else np.ascontiguousarray(img.transpose(1, 2, 0))), count


# -- IJCN --------------------------------------------------------------------------


def _ijg_like(tables: Sequence[np.ndarray]) -> Tensor:
    """(Y, Cb, Cr) tables ``(1, 3, 8, 8)`` float32 from (luma, chroma) or (Y, Cb, Cr) tables."""
    checked = [np.asarray(t) for t in tables]
    if len(checked) == 2:
        checked = [checked[0], checked[1], checked[1]]
    if len(checked) != 3 or any(t.shape != (8, 8) for t in checked):
        raise ShapeError("IJCN tables must be (luma, chroma) or (Y, Cb, Cr), each (8, 8)")
    if any(not np.issubdtype(t.dtype, np.integer) or t.min() < 1 for t in checked):
        raise InputError("IJCN tables must hold integer quantization steps >= 1")
    return torch.from_numpy(np.stack(checked).astype(np.float32))[None]


def run_ijcn(
    model: IJCN,
    tables: Tensor,
    y: Tensor,
    cbcr: Tensor,
    *,
    tile: int | None = None,
    overlap: int | None = None,
    device: str | torch.device | None = None,
) -> tuple[Tensor, int]:
    """IJCN's restored RGB ``(1, 3, Hp, Wp)`` (unclamped, CPU float32), the U-Net run tile by tile.

    Takes the inputs of :func:`jpegbench.models.jpeg_inputs.ijcn_inputs`
    (one image, padded to a multiple of 64 pixels). The offset module runs
    on the whole image (see the module docstring); ``tile=None`` runs the
    U-Net on the whole image too, which is exactly ``model(tables, y, cbcr)[0]``.
    Returns the output and the number of tiles.
    """
    if not isinstance(model, IJCN):
        raise InputError(f"model must be an IJCN, got {type(model).__name__}")
    if not isinstance(tables, Tensor) or tables.shape[0] != 1:
        shape = getattr(tables, "shape", type(tables).__name__)
        raise ShapeError(f"run_ijcn restores one image: tables must be (1, 3, 8, 8), got {shape}")
    height, width = 8 * y.shape[2], 8 * y.shape[3]
    if tile is None:
        tile, overlap = max(height, width, 2 * IJCN_GRID), 0
    tile, overlap = check_guided_tiling("ijcn", tile, overlap)
    dev = _prepare(model, device)
    # In 8-pixel block units tile_spans' 8-unit grid is the 64-pixel grid.
    rows = tile_spans(height // 8, tile=tile // 8, overlap=overlap // 8)
    cols = tile_spans(width // 8, tile=tile // 8, overlap=overlap // 8)
    out = torch.empty((1, 3, height, width), dtype=torch.float32)
    with torch.inference_mode():
        _check_inputs(tables, y, cbcr)
        t = tables.float().to(dev)
        y_deq, c_deq, _, _ = model.DCT_offset(y.float().to(dev), cbcr.float().to(dev), t)
        for (r0, r1, rk0, rk1), (c0, c1, ck0, ck1) in itertools.product(rows, cols):
            x = model.decode(y_deq[:, :, r0:r1, c0:c1], c_deq[:, :, r0 // 2 : r1 // 2, c0 // 2 : c1 // 2])
            restored = model.refine(x, t)
            keep = restored[:, :, 8 * (rk0 - r0) : 8 * (rk1 - r0), 8 * (ck0 - c0) : 8 * (ck1 - c0)]
            out[:, :, 8 * rk0 : 8 * rk1, 8 * ck0 : 8 * ck1] = keep.float().cpu()
    return out, len(rows) * len(cols)


def restore_ijcn(
    model: IJCN,
    coefficients: JpegCoefficients,
    *,
    tables: Sequence[np.ndarray] | None = None,
    tile: int | None = None,
    overlap: int | None = None,
    device: str | torch.device | None = None,
    name: str = "<jpeg>",
) -> tuple[np.ndarray, int]:
    """Restore one colour 4:2:0 JPEG with IJCN, from its coefficients.

    Parameters
    ----------
    model : IJCN
    coefficients : JpegCoefficients
        :func:`jpegbench.codec.read_coefficients` of the file.
    tables : sequence of (8, 8) integer arrays, optional
        Tables to give the network instead of the file's: (luma, chroma) or
        (Y, Cb, Cr). The coefficients stay the file's: they are rescaled by
        ``file_table / tables`` per frequency so that the network's
        dequantization (coefficient x table) still yields the file's DCT
        values, while its table guidance and its rounding offsets (up to
        half a step of ``tables``) follow the given tables. This is how the
        ``ijcn-d`` method hands IJCN the tables of the dominant QF.
    tile : int, optional
        A multiple of 64 pixels; None: the whole image at once.
    overlap : int, optional
        A multiple of 64 pixels; default 64.
    device : str or torch.device, optional
    name : str
        How error messages call the file.

    Returns
    -------
    (ndarray uint8 ``(H, W, 3)``, number of tiles)

    Raises
    ------
    UnsupportedImageError
        Gray, or a colour JPEG that is not 4:2:0.
    """
    if not isinstance(model, IJCN):
        raise InputError(f"model must be an IJCN, got {type(model).__name__}")
    inputs = ijcn_inputs(coefficients, name=name)
    file_tables, y, cbcr = inputs.tables, inputs.y, inputs.cbcr
    if tables is not None:
        given = _ijg_like(tables)
        # Per-frequency positive factors commute with the DCT-domain mirror padding (a sign flip).
        y = y * (file_tables[:, :1] / given[:, :1])[:, :, None, None]
        cbcr = cbcr * (file_tables[:, 1:] / given[:, 1:])[:, :, None, None]
        file_tables = given
    out, count = run_ijcn(model, file_tables, y, cbcr, tile=tile, overlap=overlap, device=device)
    img = (out[0, :, : inputs.height, : inputs.width].clamp(0, 1) * 255).round().to(torch.uint8)
    return np.ascontiguousarray(img.numpy().transpose(1, 2, 0)), count
