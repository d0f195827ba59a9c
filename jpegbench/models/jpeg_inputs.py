"""Network inputs read from a JPEG file for the table-guided restorers (QCN, QGCN, IJCN), and outputs back to pixels.

QCN / QGCN (the authors' ``src/dataset/jpeg_qm.py``, ``jpeg_qmg.py``):

* the image is the decoded JPEG (libjpeg-turbo through Pillow, as theirs),
  padded at the bottom/right to a multiple of 8 by edge replication (their
  ``padding8``; the JPEG block grid starts at the top left, so padding keeps
  every pixel on its block position);
* one quantization map per table: the 8x8 table tiled over the padded
  image. Gray files give one map (the luma table), colour files two (the
  tables of Y and of Cb, i.e. luma and chroma: the authors take the first
  two DQT tables of the file, which libjpeg writes in that order). Maps hold
  8-bit steps; a file with a 16-bit table (steps over 255) is refused;
* image and maps go from uint8 [0, 255] to [-1, 1] (``v / 127.5 - 1``,
  their ``uint2tensor``), concatenated as (image channels, maps);
* QGCN's global input: the padded image resized to 112x112 by
  ``skimage.transform.resize(order=3)`` (float in [0, 1], anti-aliased with
  the current scikit-image defaults), then to [-1, 1];
* the output is mapped back by ``round(clip(out * 0.5 + 0.5, 0, 1) * 255)``
  and cropped to the file's size.

Documented conversion: a gray model given a colour JPEG reads the JFIF luma
of the decoded RGB (BT.601 full range, the plane the luma table quantized)
with the luma table alone (``channels=1``). A colour model given a gray JPEG
is refused (no chroma table to build its second map from).

IJCN (the authors' ``test_real_IJCN.py``, which reads files with
``torchjpeg.codec.read_coefficients``; here jpeglib's ``read_dct``, same
layout):

* tables ``(1, 3, 8, 8)``: the table of Y, Cb and Cr, natural order, float;
* Y ``(1, 1, H/8, W/8, 8, 8)`` and CbCr ``(1, 2, H/16, W/16, 8, 8)``: the
  quantized coefficients as floats (not dequantized: the network multiplies
  by the tables itself);
* padded in the DCT domain to a multiple of 64 pixels by mirroring whole
  blocks (a block mirrored left-right is the same block with its odd
  horizontal frequencies negated; up-down, odd vertical ones), the authors'
  ``dct_mirror_padding``; luma to a multiple of 8 blocks, chroma of 4. When
  an image has fewer blocks than the padding needs, the mirroring repeats.
* only 3-component 4:2:0 files are accepted (the network's layout is
  4:2:0); others get :class:`~jpegbench.errors.UnsupportedImageError`
  rather than a re-encoding, which would change the data being restored;
* the output (RGB in [0, 1]) is mapped back by
  ``round(clip(out, 0, 1) * 255)`` and cropped.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from jpegbench.codec._validate import check_pixels, read_regular_file
from jpegbench.codec.backends import decode
from jpegbench.codec.coefficients import JpegCoefficients, read_coefficients
from jpegbench.codec.color import rgb_to_y
from jpegbench.errors import InputError, ShapeError, UnsupportedImageError
from jpegbench.models.qcn import GLOBAL_SIZE

__all__ = [
    "IJCNInputs",
    "QCNInputs",
    "global_copy",
    "ijcn_inputs",
    "ijcn_inputs_from_jpeg",
    "ijcn_output_to_uint8",
    "mirror_pad_blocks",
    "qcn_inputs",
    "qcn_inputs_from_jpeg",
    "qcn_output_to_uint8",
    "quantization_maps",
    "read_ijcn_inputs",
    "read_qcn_inputs",
]

_IJCN_MULTIPLE = 64  # pixels: 4x4 transformer windows on the 16-pixel MCU grid


# -- QCN / QGCN ------------------------------------------------------------------


@dataclass(frozen=True)
class QCNInputs:
    """What QCN and QGCN read, built from one JPEG file.

    Attributes
    ----------
    image : Tensor
        ``(1, C + M, Hp, Wp)`` float32 on [-1, 1]: the C image channels, then
        the M quantization maps; Hp, Wp the size padded to a multiple of 8.
        QCN's input, and the first of QGCN's pair.
    resized : Tensor
        ``(1, C, 112, 112)`` float32 on [-1, 1]: QGCN's global copy.
    height, width : int
        The file's size; crop outputs to it (:func:`qcn_output_to_uint8`).
    tables : tuple of ndarray
        The (8, 8) tables the maps were tiled from (luma, then chroma).
    """

    image: Tensor
    resized: Tensor
    height: int
    width: int
    tables: tuple[np.ndarray, ...]


def _to_unit_range(x: np.ndarray) -> np.ndarray:
    # The authors' uint2tensor: img_as_float32 (v / 255) then (x - 0.5) / 0.5.
    return (np.asarray(x, dtype=np.float32) / np.float32(255.0) - np.float32(0.5)) / np.float32(0.5)


def _check_tables(tables: object) -> list[np.ndarray]:
    if isinstance(tables, np.ndarray) and tables.ndim == 2:
        tables = [tables]
    if not isinstance(tables, (list, tuple)) or not 1 <= len(tables) <= 2:
        raise InputError(f"tables must be one or two (8, 8) quantization tables, got {type(tables).__name__}")
    out = []
    for i, t in enumerate(tables):
        t = np.asarray(t)
        if t.shape != (8, 8) or not np.issubdtype(t.dtype, np.integer):
            raise ShapeError(f"tables[{i}] must be an (8, 8) integer array, got {t.shape} {t.dtype}")
        if t.min() < 1:
            raise InputError(f"tables[{i}] has a step below 1 ({t.min()}); not a JPEG quantization table")
        if t.max() > 255:
            raise UnsupportedImageError(
                f"QCN's quantization maps hold 8-bit steps (1..255); table {i} has a step of {t.max()} "
                "(a 16-bit table)"
            )
        out.append(t.astype(np.uint8))
    return out


def quantization_maps(tables: Sequence[np.ndarray] | np.ndarray, height: int, width: int) -> np.ndarray:
    """Tile 8x8 quantization tables over an image, scaled as QCN reads them.

    Parameters
    ----------
    tables : (8, 8) integer array or a sequence of one or two
        Natural order, steps 1..255 (luma first).
    height, width : int
        Image size; need not be multiples of 8 (the last tile is cut).

    Returns
    -------
    ndarray, float32, ``(len(tables), height, width)``
        ``maps[k, i, j] = tables[k][i % 8, j % 8] / 127.5 - 1``.
    """
    checked = _check_tables(tables)
    for name, v in (("height", height), ("width", width)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise InputError(f"{name} must be a positive int, got {v!r}")
    reps = (-(-height // 8), -(-width // 8))
    tiled = np.stack([np.tile(t, reps)[:height, :width] for t in checked])
    return _to_unit_range(tiled)


def global_copy(pixels: np.ndarray) -> Tensor:
    """QGCN's global input: ``pixels`` resized to 112x112 (bicubic spline, anti-aliased), on [-1, 1].

    Parameters
    ----------
    pixels : ndarray, uint8, (H, W) or (H, W, 3)

    Returns
    -------
    Tensor, float32, ``(1, C, 112, 112)``
    """
    from skimage.transform import resize

    pixels = check_pixels(pixels)
    x = pixels[:, :, None] if pixels.ndim == 2 else pixels
    # resize() converts uint8 to float in [0, 1] first, as in the authors' loader.
    small = resize(x, (GLOBAL_SIZE, GLOBAL_SIZE), order=3)
    scaled = (small.astype(np.float32) - np.float32(0.5)) / np.float32(0.5)
    return torch.from_numpy(np.ascontiguousarray(scaled.transpose(2, 0, 1)))[None]


def qcn_inputs(pixels: np.ndarray, tables: Sequence[np.ndarray] | np.ndarray) -> QCNInputs:
    """QCN/QGCN inputs from decoded pixels and the file's tables.

    Parameters
    ----------
    pixels : ndarray, uint8, (H, W) or (H, W, 3)
        The decoded JPEG.
    tables : sequence of (8, 8) integer arrays
        One table for gray pixels (luma), two for RGB (luma, chroma).

    Returns
    -------
    QCNInputs
    """
    pixels = check_pixels(pixels)
    checked = _check_tables(tables)
    want = 1 if pixels.ndim == 2 else 2
    if len(checked) != want:
        kind = "gray" if pixels.ndim == 2 else "RGB"
        raise InputError(f"{kind} pixels take {want} quantization table(s) (luma{', chroma' if want == 2 else ''}), "
                         f"got {len(checked)}")  # fmt: skip
    h, w = pixels.shape[:2]
    pad = ((0, -h % 8), (0, -w % 8)) + (((0, 0),) if pixels.ndim == 3 else ())
    padded = np.pad(pixels, pad, mode="edge")
    planes = padded[None] if padded.ndim == 2 else padded.transpose(2, 0, 1)
    maps = quantization_maps(checked, padded.shape[0], padded.shape[1])
    image = np.concatenate([_to_unit_range(planes), maps])
    return QCNInputs(
        image=torch.from_numpy(np.ascontiguousarray(image))[None],
        resized=global_copy(padded),
        height=h,
        width=w,
        tables=tuple(t.astype(np.int64) for t in checked),
    )


def read_qcn_inputs(
    path: str | os.PathLike[str], *, channels: int | None = None, max_pixels: int | None = None
) -> QCNInputs:
    """QCN/QGCN inputs of a JPEG file: decoded pixels and quantization maps from its own tables.

    Parameters
    ----------
    path : str or PathLike
    channels : {None, 1, 3}
        Image channels of the model. None: the file's (gray 1, colour 3).
        1 on a colour file: its JFIF luma with the luma table (see the module
        docstring). 3 on a gray file is refused.
    max_pixels : int, optional

    Raises
    ------
    ImageReadError
        Not a JPEG (e.g. a PNG: it has no quantization tables), truncated.
    UnsupportedImageError
        A colour model on a gray JPEG; CMYK; a 16-bit table.
    """
    data = read_regular_file(path, kind="a JPEG file")
    return qcn_inputs_from_jpeg(data, channels=channels, max_pixels=max_pixels, name=str(path))


def qcn_inputs_from_jpeg(
    data: bytes, *, channels: int | None = None, max_pixels: int | None = None, name: str = "<jpeg>"
) -> QCNInputs:
    """QCN/QGCN inputs of JPEG bytes: what :func:`read_qcn_inputs` builds from a file holding them.

    The one builder from encoded bytes, used by restoring (through
    :func:`read_qcn_inputs`) and by training
    (:mod:`jpegbench.models.training.guided`), so the two cannot drift.
    ``channels`` as in :func:`read_qcn_inputs`; ``name`` is how errors call
    the data.
    """
    if channels not in (None, 1, 3):
        raise InputError(f"channels must be None, 1 or 3, got {channels!r}")
    coefs = read_coefficients(data, max_pixels=max_pixels, name=name)
    file_channels = 1 if coefs.color == "gray" else 3
    channels = file_channels if channels is None else channels
    if channels == 3 and file_channels == 1:
        raise UnsupportedImageError(f"{name}: a colour QCN/QGCN needs a colour JPEG (luma and chroma tables); "
                                    "this file is gray")  # fmt: skip
    pixels = decode(data, max_pixels=max_pixels)
    if channels == 1 and pixels.ndim == 3:
        pixels = rgb_to_y(pixels, definition="bt601-full")
    return qcn_inputs(pixels, list(coefs.qtables[: 1 if channels == 1 else 2]))


def qcn_output_to_uint8(output: Tensor, height: int, width: int) -> np.ndarray:
    """QCN/QGCN output ``(1, C, Hp, Wp)`` on [-1, 1] -> uint8 ``(height, width[, 3])``."""
    if not isinstance(output, Tensor) or output.ndim != 4 or output.shape[0] != 1:
        raise ShapeError(f"output must be a (1, C, H, W) tensor, got {getattr(output, 'shape', type(output))}")
    x = ((output[0, :, :height, :width].detach().float().cpu() * 0.5 + 0.5).clamp(0, 1) * 255).round()
    x = x.to(torch.uint8).numpy()
    return x[0] if x.shape[0] == 1 else np.ascontiguousarray(x.transpose(1, 2, 0))


# -- IJCN ------------------------------------------------------------------------


@dataclass(frozen=True)
class IJCNInputs:
    """What IJCN reads, built from one colour 4:2:0 JPEG.

    Attributes
    ----------
    tables : Tensor
        ``(1, 3, 8, 8)`` float32: the tables of Y, Cb, Cr.
    y : Tensor
        ``(1, 1, Hp/8, Wp/8, 8, 8)`` float32 quantized luma coefficients.
    cbcr : Tensor
        ``(1, 2, Hp/16, Wp/16, 8, 8)`` float32 quantized chroma coefficients.
    height, width : int
        The file's size (Hp, Wp: padded to a multiple of 64).
    """

    tables: Tensor
    y: Tensor
    cbcr: Tensor
    height: int
    width: int


def _mirror_axis(blocks: Tensor, extra: int, axis: int) -> Tensor:
    # Flipping the order of blocks and the pixels inside each block mirrors
    # the image; inside a block that is a sign flip of odd frequencies
    # (cos((2(7-x)+1)k*pi/16) = (-1)^k cos((2x+1)k*pi/16)).
    freq_dim = 4 if axis == 2 else 5
    sign = torch.ones(8, dtype=blocks.dtype, device=blocks.device)
    sign[1::2] = -1
    shape = [1] * blocks.ndim
    shape[freq_dim] = 8
    sign = sign.reshape(shape)
    out = blocks
    while extra > 0:
        take = min(extra, out.shape[axis])
        tail = out.narrow(axis, out.shape[axis] - take, take).flip(axis) * sign
        out = torch.cat([out, tail], dim=axis)
        extra -= take
    return out


def mirror_pad_blocks(blocks: Tensor, rows: int, cols: int) -> Tensor:
    """Pad ``(N, C, bh, bw, 8, 8)`` DCT blocks at the bottom/right to ``(rows, cols)`` blocks by mirroring.

    The padded image is the symmetric extension of the original at block
    granularity (columns first, then rows, as the IJCN authors do).
    """
    if not isinstance(blocks, Tensor) or blocks.ndim != 6 or tuple(blocks.shape[4:]) != (8, 8):
        raise ShapeError(f"blocks must be (N, C, bh, bw, 8, 8), got {getattr(blocks, 'shape', type(blocks))}")
    bh, bw = blocks.shape[2], blocks.shape[3]
    if rows < bh or cols < bw or bh == 0 or bw == 0:
        raise ShapeError(f"cannot pad {bh}x{bw} blocks to {rows}x{cols}")
    return _mirror_axis(_mirror_axis(blocks, cols - bw, axis=3), rows - bh, axis=2)


def ijcn_inputs(coefficients: JpegCoefficients, *, name: str = "<jpeg>") -> IJCNInputs:
    """IJCN inputs from a file's coefficients (:func:`jpegbench.codec.coefficients.read_coefficients`).

    Raises
    ------
    UnsupportedImageError
        A gray JPEG, or a colour JPEG that is not 4:2:0.
    """
    if not isinstance(coefficients, JpegCoefficients):
        raise InputError(f"coefficients must be JpegCoefficients, got {type(coefficients).__name__}")
    if coefficients.color != "ycbcr":
        raise UnsupportedImageError(f"{name}: IJCN restores colour JPEGs only; this file is {coefficients.color}")
    if coefficients.subsampling != "4:2:0":
        raise UnsupportedImageError(
            f"{name}: IJCN needs 4:2:0 chroma subsampling (its layout pairs 2x2 luma blocks with one chroma "
            f"block); this file is {coefficients.subsampling}"
        )
    luma, cb, cr = (torch.from_numpy(c.astype(np.float32)) for c in coefficients.coefficients)
    rows = -(-coefficients.height // _IJCN_MULTIPLE) * (_IJCN_MULTIPLE // 8)
    cols = -(-coefficients.width // _IJCN_MULTIPLE) * (_IJCN_MULTIPLE // 8)
    y = mirror_pad_blocks(luma[None, None], rows, cols)
    cbcr = mirror_pad_blocks(torch.stack([cb, cr])[None], rows // 2, cols // 2)
    tables = torch.from_numpy(np.stack(coefficients.qtables).astype(np.float32))[None]
    return IJCNInputs(tables=tables, y=y, cbcr=cbcr, height=coefficients.height, width=coefficients.width)


def read_ijcn_inputs(path: str | os.PathLike[str], *, max_pixels: int | None = None) -> IJCNInputs:
    """IJCN inputs of a JPEG file (coefficients and tables read with jpeglib).

    Raises
    ------
    ImageReadError
        Not a JPEG (a PNG has no coefficients), truncated, corrupt.
    UnsupportedImageError
        Gray, not 4:2:0, CMYK, 12-bit, arithmetic.
    """
    return ijcn_inputs(read_coefficients(path, max_pixels=max_pixels), name=str(Path(path)))


def ijcn_inputs_from_jpeg(data: bytes, *, max_pixels: int | None = None, name: str = "<jpeg>") -> IJCNInputs:
    """IJCN inputs of JPEG bytes: what :func:`read_ijcn_inputs` builds from a file holding them (training uses it)."""
    return ijcn_inputs(read_coefficients(data, max_pixels=max_pixels, name=name), name=name)


def ijcn_output_to_uint8(output: Tensor, height: int, width: int) -> np.ndarray:
    """IJCN output ``(1, 3, Hp, Wp)`` RGB in [0, 1] -> uint8 ``(height, width, 3)``."""
    if not isinstance(output, Tensor) or output.ndim != 4 or output.shape[:2] != (1, 3):
        raise ShapeError(f"output must be a (1, 3, H, W) tensor, got {getattr(output, 'shape', type(output))}")
    x = (output[0, :, :height, :width].detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8)
    return np.ascontiguousarray(x.numpy().transpose(1, 2, 0))
