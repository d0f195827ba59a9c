"""IJCN's DCT-domain transformer: window attention and channel attention in parallel, on the 16x16-pixel grid.

The offset module of :class:`jpegbench.models.IJCN` feeds it one token per
16x16 pixel area (the four luma blocks and two chroma blocks that share a
4:2:0 MCU, 320 low-frequency coefficients). Each of its ``depth`` blocks runs

* a windowed multi-head self-attention over 4x4 tokens with learned relative
  position biases (Swin style; odd blocks shift the windows by half a window
  and mask pairs that the cyclic shift brought together), and
* a channel self-attention (attention between feature channels within each
  head, over all tokens),

fuses the two residual branches with a linear layer + GELU, then applies an
MLP. Parameter names follow the authors' ``models/djvit.py``
(https://github.com/liushuai1998/IJCN) so their state dicts load strictly.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["DJViT"]


class DropPath(nn.Module):
    """Stochastic depth: drop a residual branch per sample while training."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


def _relative_index(window: int) -> Tensor:
    """(window², window²) pairs of (dy, dx) offsets, shifted to be >= 0, as two index tensors."""
    ys, xs = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
    coords = torch.stack([ys.flatten(), xs.flatten()], dim=1)
    rel = coords[:, None, :] - coords[None, :, :] + window - 1
    return rel


class WindowAttention(nn.Module):
    """Multi-head self-attention inside non-overlapping windows (``shifted``: SW-MSA)."""

    def __init__(self, dim: int, head_dim: int, window: int, shifted: bool) -> None:
        super().__init__()
        self.head_dim = head_dim
        self.n_heads = dim // head_dim
        self.window = window
        self.shifted = shifted
        self.embedding_layer = nn.Linear(dim, 3 * dim)
        # Stored (heads, 2w-1, 2w-1), the layout of the authors' checkpoints.
        self.relative_position_params = nn.Parameter(torch.zeros(self.n_heads, 2 * window - 1, 2 * window - 1))
        nn.init.trunc_normal_(self.relative_position_params, std=0.02)
        self.linear = nn.Linear(dim, dim)
        self.register_buffer("_rel", _relative_index(window), persistent=False)

    def _mask(self, h_windows: int, w_windows: int, device: torch.device) -> Tensor:
        # After the cyclic shift the last window row/column holds pixels from
        # both ends of the image; tokens from different ends must not attend.
        p, s = self.window, self.window - self.window // 2
        m = torch.zeros(h_windows, w_windows, p, p, p, p, dtype=torch.bool, device=device)
        m[-1, :, :s, :, s:, :] = True
        m[-1, :, s:, :, :s, :] = True
        m[:, -1, :, :s, :, s:] = True
        m[:, -1, :, s:, :, :s] = True
        return m.reshape(1, 1, h_windows * w_windows, p * p, p * p)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, H, W, C)`` -> ``(B, H, W, C)``; H and W multiples of the window."""
        b, h, w, c = x.shape
        p, half = self.window, self.window // 2
        if self.shifted:
            x = torch.roll(x, shifts=(-half, -half), dims=(1, 2))
        hw, ww = h // p, w // p
        tokens = x.reshape(b, hw, p, ww, p, c).permute(0, 1, 3, 2, 4, 5).reshape(b, hw * ww, p * p, c)
        qkv = self.embedding_layer(tokens).reshape(b, hw * ww, p * p, 3 * self.n_heads, self.head_dim)
        qkv = qkv.permute(3, 0, 1, 2, 4)  # (3 * heads, B, windows, p², d)
        q, k, v = qkv[: self.n_heads], qkv[self.n_heads : 2 * self.n_heads], qkv[2 * self.n_heads :]
        sim = torch.einsum("hbwpc,hbwqc->hbwpq", q, k) * self.head_dim**-0.5
        bias = self.relative_position_params[:, self._rel[..., 0], self._rel[..., 1]]
        sim = sim + bias[:, None, None]
        if self.shifted:
            sim = sim.masked_fill(self._mask(hw, ww, x.device), float("-inf"))
        out = torch.einsum("hbwij,hbwjc->bwihc", sim.softmax(dim=-1), v).reshape(b, hw * ww, p * p, c)
        out = self.linear(out)
        out = out.reshape(b, hw, ww, p, p, c).permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, c)
        if self.shifted:
            out = torch.roll(out, shifts=(half, half), dims=(1, 2))
        return out


class ChannelAttention(nn.Module):
    """Self-attention between the ``head_dim`` channels of each head, over all tokens."""

    def __init__(self, dim: int, head_dim: int) -> None:
        super().__init__()
        self.head_dim = head_dim
        self.n_heads = dim // head_dim
        self.channel_pos = nn.Parameter(torch.zeros(1, 1, 1, dim))
        nn.init.trunc_normal_(self.channel_pos, std=0.02)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, H, W, C)`` -> ``(B, H, W, C)``."""
        b, h, w, c = x.shape
        qkv = self.qkv(x + self.channel_pos).reshape(b, h * w, 3, self.n_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 4, 1)  # each (B, heads, d, HW)
        attn = ((q @ k.transpose(-2, -1)) * self.head_dim**-0.5).softmax(dim=-1)
        out = (attn @ v).permute(0, 3, 1, 2).reshape(b, h, w, c)
        return self.proj(out)


class ParallelBlock(nn.Module):
    """Window attention and channel attention side by side, fused, then an MLP."""

    def __init__(self, dim: int, head_dim: int, window: int, drop_path: float, shifted: bool) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.msa = WindowAttention(dim, head_dim, window, shifted)
        self.ln_channel = nn.LayerNorm(dim)
        self.channel_msa = ChannelAttention(dim, head_dim)
        self.fusion = nn.Sequential(nn.Linear(2 * dim, dim), nn.GELU())
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x: Tensor) -> Tensor:
        spatial = x + self.drop_path(self.msa(self.ln1(x)))
        channel = x + self.drop_path(self.channel_msa(self.ln_channel(x)))
        x = x + self.fusion(torch.cat([spatial, channel], dim=-1))
        return x + self.drop_path(self.mlp(self.ln2(x)))


class DJViT(nn.Module):
    """A stack of :class:`ParallelBlock` (plain, shifted, plain, ...), a LayerNorm and a 1x1 convolution.

    Parameters
    ----------
    dct_size : int, default 16
        The authors' nominal token grid; blocks are shifted only when it is
        larger than the window (always, with the defaults). The grid of the
        input itself may be any multiple of ``window_size``.
    channel : int, default 320
    window_size : int, default 4
    head_dim : int, default 32
    depth : int, default 4
    drop_path_rate : float, default 0.1
        Stochastic depth grows linearly from 0 to this over the blocks
        (training only).
    """

    def __init__(
        self,
        dct_size: int = 16,
        channel: int = 320,
        window_size: int = 4,
        head_dim: int = 32,
        depth: int = 4,
        drop_path_rate: float = 0.1,
    ) -> None:
        super().__init__()
        self.window_size = window_size
        # Plain floats (not torch.linspace) so the model also builds on the meta device.
        rates = [drop_path_rate * i / (depth - 1) if depth > 1 else 0.0 for i in range(depth)]
        shift_allowed = dct_size > window_size
        self.blocks = nn.ModuleList(
            ParallelBlock(channel, head_dim, window_size, rates[i], shifted=shift_allowed and i % 2 == 1)
            for i in range(depth)
        )
        self.norm = nn.LayerNorm(channel)
        self.conv_out = nn.Conv2d(channel, channel, kernel_size=1)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight)
            nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, H, W)`` -> ``(B, C, H, W)``; H and W multiples of ``window_size``."""
        x = x.permute(0, 2, 3, 1)
        for block in self.blocks:
            x = block(x)
        return self.conv_out(self.norm(x).permute(0, 3, 1, 2))
