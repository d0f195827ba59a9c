"""IJCN: blind JPEG artifact removal by inverting JPEG compression in the DCT domain (Liu et al., TCSVT 2025).

The network reads a colour 4:2:0 JPEG's *quantized* DCT coefficients and its
quantization tables, not pixels:

1. **Learnable offset guidance module** (:class:`LOGM`): the dequantized
   low-frequency coefficients (56 luma, 48 chroma per block, in zig-zag
   order) of every 16x16 MCU go through a DCT-domain transformer
   (:class:`jpegbench.models._djvit.DJViT`) modulated by an embedding of the
   tables; ``0.5 * tanh`` of its output is a rounding offset in
   quantization steps, added to the quantized coefficients (a coefficient can
   move by less than half a step, the rounding JPEG applied). High
   frequencies get no offset.
2. The corrected coefficients are dequantized, inverse-DCT'd (orthonormal
   8x8), chroma is upsampled bilinearly x2 and YCbCr (JFIF, full range) is
   converted to RGB in [0, 1].
3. A U-Net (pixel-unshuffle down, pixel-shuffle up, residual blocks) whose
   stages are modulated by two embeddings of the tables (gamma in (0, 1),
   beta in (-1, 1), :class:`QTAttention`) predicts a residual added to that
   RGB image.

``forward(tables, y, cbcr)`` takes the tables ``(N, 3, 8, 8)`` (Y, Cb, Cr),
the luma coefficients ``(N, 1, H/8, W/8, 8, 8)`` and the chroma coefficients
``(N, 2, H/16, W/16, 8, 8)``, all as quantized integers (float dtype) in
natural order, and returns ``(rgb, y_pred, cbcr_pred)``: the restored image
``(N, 3, H, W)`` in [0, 1] (not clamped) and the corrected quantized
coefficients. H and W must be multiples of 64 (the transformer's 4x4 token
windows on the 16-pixel grid); :func:`jpegbench.models.jpeg_inputs.ijcn_inputs`
pads in the DCT domain.

Parameter names and shapes follow the authors' ``models/network_ijcn.py``
(https://github.com/liushuai1998/IJCN), so their state dicts load with
``strict=True``. As in theirs, ``nb`` is accepted but every stage has four
residual blocks, and only ``nc[0]`` and ``nc[2]`` set widths.

Verified against the authors' modules (their code run outside this
repository, random weights loaded into both): max abs difference 1.6e-5 over
all three outputs for ``nc=[16, 32, 32, 64]``, PReLU and ReLU, 64x64 and
128x192 images (outputs of magnitude ~10), and 2.3e-6 at the default width
(64x128); the DCT-domain padding of :mod:`jpegbench.models.jpeg_inputs` is
identical to their ``dct_mirror_padding``.

References
----------
.. [1] S. Liu et al., "Blind JPEG Artifacts Removal via Inverse JPEG
   Compression", IEEE Transactions on Circuits and Systems for Video
   Technology, 2025.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from jpegbench.codec.header import ZIGZAG
from jpegbench.errors import ConfigError, ShapeError
from jpegbench.models._djvit import DJViT

__all__ = ["IJCN", "LOGM", "QTAttention", "ACT_MODES"]

#: Activation letters of the authors' conv-block mini language that IJCN's
#: residual blocks may use: PReLU (the released models), ReLU, LeakyReLU(0.2).
ACT_MODES = ("P", "R", "L")
_BLOCKS_PER_STAGE = 4  # hard-coded by the authors whatever ``nb`` says
_LOW_Y, _LOW_C = 56, 48  # zig-zag coefficients per block the offset module corrects
_TABLE_FEATURES = 128  # the luma and Cb tables, flattened


def _act(mode: str, channels: int) -> nn.Module:
    if mode == "P":
        return nn.PReLU(num_parameters=channels)
    if mode == "R":
        return nn.ReLU()
    return nn.LeakyReLU(0.2)


def _conv_act_conv(channels: int, kernel: int, act: str) -> nn.Sequential:
    pad = kernel // 2
    return nn.Sequential(
        nn.Conv2d(channels, channels, kernel, padding=pad),
        _act(act, channels),
        nn.Conv2d(channels, channels, kernel, padding=pad),
    )


class ResBlock(nn.Module):
    """``x + conv(act(conv(x)))``, 3x3 convolutions with bias."""

    def __init__(self, channels: int, act: str) -> None:
        super().__init__()
        self.res = _conv_act_conv(channels, 3, act)

    def forward(self, x: Tensor) -> Tensor:
        return self.res(x) + x


class QTAttention(nn.Module):
    """``x + gamma * conv(act(conv(x))) + beta`` with 1x1 convolutions and per-channel gamma, beta."""

    def __init__(self, channels: int, act: str) -> None:
        super().__init__()
        self.res1 = _conv_act_conv(channels, 1, act)

    def forward(self, x: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
        return x + (gamma[:, :, None, None] * self.res1(x) + beta[:, :, None, None])


def _embedding() -> nn.Sequential:
    # 128 table entries -> 512 features; Linear layers at indices 0, 2, 4.
    return nn.Sequential(
        nn.Linear(_TABLE_FEATURES, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU()
    )


def _head(width: int, squash: nn.Module) -> nn.Sequential:
    return nn.Sequential(nn.Linear(512, width), squash)


class LOGM(nn.Module):
    """Learnable offset guidance module: predicts rounding offsets of the quantized low-frequency coefficients.

    ``forward(y, cbcr, tables)`` with ``y`` ``(N, 1, 2h, 2w, 8, 8)``, ``cbcr``
    ``(N, 2, h, w, 8, 8)`` (quantized), ``tables`` ``(N, 3, 8, 8)`` returns
    ``(y_deq, cbcr_deq, y_pred, cbcr_pred)``: the corrected coefficients
    dequantized and in quantization steps. ``h`` and ``w`` must be multiples
    of 4.
    """

    def __init__(self) -> None:
        super().__init__()
        channels = 4 * _LOW_Y + 2 * _LOW_C
        self.learnable_offset = DJViT(dct_size=16, channel=channels)
        self.qt_embed = _embedding()
        self.qt_gamma = _head(channels, nn.Sigmoid())
        self.qt_beta = _head(channels, nn.Tanh())
        zigzag = torch.as_tensor(ZIGZAG, dtype=torch.long)
        self.register_buffer("_zigzag", zigzag, persistent=False)
        self.register_buffer("_unzigzag", torch.argsort(zigzag), persistent=False)

    def forward(self, y: Tensor, cbcr: Tensor, tables: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        n = tables.shape[0]
        emb = self.qt_embed(tables[:, :2].reshape(n, -1).float())
        gamma = self.qt_gamma(emb)[:, :, None, None]
        beta = self.qt_beta(emb)[:, :, None, None]
        h, w = cbcr.shape[2], cbcr.shape[3]
        # Group the four luma blocks of each MCU as channels, (row, col) order:
        # (N, 1, 2h, 2w, 8, 8) -> (N, 4, 64, h, w).
        y_mcu = y.reshape(n, h, 2, w, 2, 64).permute(0, 2, 4, 5, 1, 3).reshape(n, 4, 64, h, w)
        c_mcu = cbcr.reshape(n, 2, h, w, 64).permute(0, 1, 4, 2, 3)
        y_deq = y_mcu * tables[:, :1].reshape(n, 1, 64, 1, 1)
        c_deq = c_mcu * tables[:, 1:].reshape(n, 2, 64, 1, 1)
        low = torch.cat(
            [
                y_deq[:, :, self._zigzag[:_LOW_Y]].reshape(n, 4 * _LOW_Y, h, w),
                c_deq[:, :, self._zigzag[:_LOW_C]].reshape(n, 2 * _LOW_C, h, w),
            ],
            dim=1,
        )
        offset = gamma * self.learnable_offset(low) + beta
        y_off, c_off = torch.split(offset, [4 * _LOW_Y, 2 * _LOW_C], dim=1)
        # Back to natural order; coefficients past the low band get offset 0.
        y_full = F.pad(y_off.reshape(n, 4, _LOW_Y, h, w), (0, 0, 0, 0, 0, 64 - _LOW_Y))[:, :, self._unzigzag]
        c_full = F.pad(c_off.reshape(n, 2, _LOW_C, h, w), (0, 0, 0, 0, 0, 64 - _LOW_C))[:, :, self._unzigzag]
        y_pred = 0.5 * torch.tanh(y_full) + y_mcu
        c_pred = 0.5 * torch.tanh(c_full) + c_mcu
        y_pred = y_pred.reshape(n, 2, 2, 8, 8, h, w).permute(0, 5, 1, 6, 2, 3, 4).reshape(n, 1, 2 * h, 2 * w, 8, 8)
        c_pred = c_pred.reshape(n, 2, 8, 8, h, w).permute(0, 1, 4, 5, 2, 3)
        y_deq_out = y_pred * tables[:, :1, None, None]
        c_deq_out = c_pred * tables[:, 1:, None, None]
        return y_deq_out, c_deq_out, y_pred, c_pred


def _dct_basis(device: torch.device, dtype: torch.dtype) -> Tensor:
    """Orthonormal DCT-II matrix ``D`` (row k = frequency k): block = D.T @ coeffs @ D."""
    k = torch.arange(8, dtype=torch.float64)[:, None]
    i = torch.arange(8, dtype=torch.float64)[None, :]
    d = torch.cos(torch.pi * (2 * i + 1) * k / 16) * (2.0 / 8) ** 0.5
    d[0] /= 2**0.5
    return d.to(device=device, dtype=dtype)


def _blocks_to_plane(coeffs: Tensor) -> Tensor:
    """Inverse DCT of dequantized ``(N, C, bh, bw, 8, 8)`` blocks -> ``(N, C, 8 bh, 8 bw)``, level-shifted, / 255."""
    d = _dct_basis(coeffs.device, coeffs.dtype)
    pixels = d.T @ coeffs @ d
    n, c, bh, bw = coeffs.shape[:4]
    return (pixels.permute(0, 1, 2, 4, 3, 5).reshape(n, c, 8 * bh, 8 * bw) + 128) / 255


# JFIF YCbCr -> RGB (full range), rows R, G, B over (Y, Cb - 128, Cr - 128).
_YCBCR_TO_RGB = ((1.0, 0.0, 1.402), (1.0, -0.344136286, -0.714136286), (1.0, 1.772, 0.0))


def _ycbcr_to_rgb01(ycbcr01: Tensor) -> Tensor:
    m = torch.tensor(_YCBCR_TO_RGB, dtype=ycbcr01.dtype, device=ycbcr01.device)
    shift = torch.tensor([0.0, 128.0, 128.0], dtype=ycbcr01.dtype, device=ycbcr01.device)[None, :, None, None]
    rgb = torch.einsum("vc,bcxy->bvxy", m, ycbcr01 * 255 - shift)
    return rgb.clamp(0, 255) / 255


class IJCN(nn.Module):
    """Inverse JPEG compression network (the authors' ``IJCN``), colour 4:2:0 only.

    Parameters
    ----------
    in_nc, out_nc : int, default 3
        Must be 3: the network builds its own RGB input from the coefficients.
    nc : sequence of 4 ints, default (64, 128, 256, 512)
        Only ``nc[0]`` (full resolution) and ``nc[2]`` (half and quarter
        resolution) are used, as in the authors' code.
    nb : int, default 4
        Accepted and recorded; every stage has 4 residual blocks regardless.
    act_mode : {"P", "R", "L"}, default "P"
        Activation inside residual blocks: PReLU, ReLU, LeakyReLU(0.2).
    """

    def __init__(
        self,
        in_nc: int = 3,
        out_nc: int = 3,
        nc: Sequence[int] = (64, 128, 256, 512),
        nb: int = 4,
        act_mode: str = "P",
    ) -> None:
        super().__init__()
        if in_nc != 3 or out_nc != 3:
            raise ConfigError(f"IJCN is colour only: in_nc and out_nc must be 3, got {in_nc!r}, {out_nc!r}")
        nc = list(nc) if isinstance(nc, Sequence) and not isinstance(nc, str) else nc
        bad = [c for c in nc if isinstance(c, bool) or not isinstance(c, int) or c < 1] if isinstance(nc, list) else nc
        if not isinstance(nc, list) or len(nc) != 4 or bad:
            raise ConfigError(f"nc must be 4 positive ints, got {nc!r}")
        if isinstance(nb, bool) or not isinstance(nb, int) or nb < 1:
            raise ConfigError(f"nb must be a positive int, got {nb!r}")
        if act_mode not in ACT_MODES:
            raise ConfigError(f"act_mode must be one of {ACT_MODES}, got {act_mode!r}")
        self.config = {"in_nc": in_nc, "out_nc": out_nc, "nc": list(nc), "nb": nb, "act_mode": act_mode}
        c0, c2 = nc[0], nc[2]

        def blocks(width: int) -> list[nn.Module]:
            return [ResBlock(width, act_mode) for _ in range(_BLOCKS_PER_STAGE)]

        self.DCT_offset = LOGM()
        self.m_head = nn.Conv2d(3, c0, 3, padding=1)
        self.m_down1_QT = QTAttention(c0, act_mode)
        self.m_down1 = nn.Sequential(*blocks(c0), nn.PixelUnshuffle(2), nn.Conv2d(4 * c0, c2, 3, padding=1))
        self.m_down2_QT = QTAttention(c2, act_mode)
        self.m_down2 = nn.Sequential(*blocks(c2), nn.PixelUnshuffle(2), nn.Conv2d(4 * c2, c2, 1))
        self.m_down3_QT = QTAttention(c2, act_mode)
        self.m_down3 = nn.Sequential(*blocks(c2))
        self.m_down4 = nn.Sequential(*blocks(c2))
        self.m_up4 = nn.Sequential(*blocks(c2))
        self.m_up3 = nn.Sequential(*blocks(c2))
        self.m_up3_QT = QTAttention(c2, act_mode)
        self.m_up2 = nn.Sequential(nn.Conv2d(c2, 4 * c2, 1), nn.PixelShuffle(2), *blocks(c2))
        self.m_up2_QT = QTAttention(c2, act_mode)
        self.m_up1 = nn.Sequential(nn.Conv2d(c2, 4 * c0, 3, padding=1), nn.PixelShuffle(2), *blocks(c0))
        self.m_up1_QT = QTAttention(c0, act_mode)
        self.m_tail = nn.Conv2d(c0, 3, 3, padding=1)
        # Two table embeddings: one modulates the encoder (i), one the decoder (o);
        # stage 1 is full resolution (nc[0]), stages 2 and 3 are nc[2] wide.
        for side in ("i", "o"):
            setattr(self, f"qf_embed1{side}", _embedding())
            for stage, width in ((3, c2), (2, c2), (1, c0)):
                setattr(self, f"qf_gamma1_{stage}{side}", _head(width, nn.Sigmoid()))
                setattr(self, f"qf_beta1_{stage}{side}", _head(width, nn.Tanh()))

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> IJCN:
        """Build from :attr:`config` (the constructor's keyword arguments)."""
        return cls(**config)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.config.items())

    def _modulation(self, side: str, flat: Tensor) -> dict[int, tuple[Tensor, Tensor]]:
        emb = getattr(self, f"qf_embed1{side}")(flat)
        return {
            stage: (getattr(self, f"qf_gamma1_{stage}{side}")(emb), getattr(self, f"qf_beta1_{stage}{side}")(emb))
            for stage in (1, 2, 3)
        }

    def decode(self, y: Tensor, cbcr: Tensor) -> Tensor:
        """Dequantized coefficients -> RGB ``(N, 3, H, W)`` in [0, 1], as the network's decoder does it."""
        luma = _blocks_to_plane(y)
        chroma = F.interpolate(_blocks_to_plane(cbcr), scale_factor=2, mode="bilinear", align_corners=False)
        return _ycbcr_to_rgb01(torch.cat([luma, chroma], dim=1))

    def forward(self, tables: Tensor, y: Tensor, cbcr: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Restore from tables and quantized coefficients; see the module docstring for shapes."""
        _check_inputs(tables, y, cbcr)
        tables = tables.float()
        y_deq, c_deq, y_pred, c_pred = self.DCT_offset(y.float(), cbcr.float(), tables)
        return self.refine(self.decode(y_deq, c_deq), tables), y_pred, c_pred

    def refine(self, x_input: Tensor, tables: Tensor) -> Tensor:
        """The table-guided U-Net: decoded RGB ``(N, 3, H, W)`` -> restored RGB, H and W multiples of 4.

        The stage after :meth:`decode`; purely convolutional (the tables only
        modulate channels), so tiled inference can run it tile by tile while
        the offset module, whose channel attention is global, runs once on the
        whole image (:mod:`jpegbench.models.guided_inference`).
        """
        tables = tables.float()
        flat = tables[:, :2].reshape(tables.shape[0], -1)
        enc, dec = self._modulation("i", flat), self._modulation("o", flat)
        x1 = self.m_down1_QT(self.m_head(x_input), *enc[1])
        x2 = self.m_down1(x1)
        x3 = self.m_down2(self.m_down2_QT(x2, *enc[2]))
        x4 = self.m_down3(self.m_down3_QT(x3, *enc[3]))
        x = self.m_up4(self.m_down4(x4)) + x4
        x = self.m_up3_QT(self.m_up3(x), *dec[3]) + x3
        x = self.m_up2_QT(self.m_up2(x), *dec[2]) + x2
        x = self.m_up1_QT(self.m_up1(x), *dec[1])
        return self.m_tail(x) + x_input


def _shape(x: object) -> object:
    return tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__


def _check_inputs(tables: object, y: object, cbcr: object) -> None:
    if not isinstance(tables, Tensor) or tables.ndim != 4 or tuple(tables.shape[1:]) != (3, 8, 8):
        raise ShapeError(f"IJCN tables must be (N, 3, 8, 8) (Y, Cb, Cr), got {_shape(tables)}")
    n = tables.shape[0]
    if not isinstance(y, Tensor) or y.ndim != 6 or y.shape[0] != n or y.shape[1] != 1 or tuple(y.shape[4:]) != (8, 8):
        raise ShapeError(f"IJCN luma coefficients must be ({n}, 1, H/8, W/8, 8, 8), got {_shape(y)}")
    ok = isinstance(cbcr, Tensor) and cbcr.ndim == 6 and cbcr.shape[0] == n and cbcr.shape[1] == 2
    if not ok or tuple(cbcr.shape[4:]) != (8, 8):
        raise ShapeError(f"IJCN chroma coefficients must be ({n}, 2, H/16, W/16, 8, 8), got {_shape(cbcr)}")
    ch, cw = cbcr.shape[2], cbcr.shape[3]
    if tuple(y.shape[2:4]) != (2 * ch, 2 * cw):
        raise ShapeError(
            f"IJCN needs 4:2:0 blocks: luma {tuple(y.shape[2:4])} must be twice chroma {(ch, cw)}; "
            "pad with jpeg_inputs.ijcn_inputs"
        )
    if ch == 0 or cw == 0 or ch % 4 or cw % 4:
        raise ShapeError(
            f"IJCN needs the image a positive multiple of 64 pixels (chroma blocks multiple of 4), got chroma "
            f"blocks {(ch, cw)}; pad with jpeg_inputs.ijcn_inputs"
        )
