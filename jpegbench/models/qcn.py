"""QCN and QGCN: JPEG artifact removal guided by quantization maps (Li et al., TIP 2020).

Both networks see the decoded image concatenated with *quantization maps*:
each 8x8 quantization table of the file tiled over the image, so that every
pixel carries the quantization step of its DCT block position (one map for
gray, luma and chroma maps for colour; built by
:func:`jpegbench.models.jpeg_inputs.quantization_maps`). Image and maps are
scaled from [0, 255] to [-1, 1] (``x / 127.5 - 1``) and the output is on the
same scale.

* :class:`QCN` -- the restoration branch alone: a 3x3 head, a stride-2 4x4
  convolution, ``n_resblocks`` scaled residual blocks at half resolution, a
  pixel-shuffle back to full resolution with a skip from the head, a 3x3
  tail.
* :class:`QGCN` -- the same branch split in two halves, with a *global*
  branch in between: eight convolutions and two linear layers turn a
  112x112 resized copy of the whole image into a 64-vector that is
  broadcast over the half-resolution feature map and fused by a 3x3
  convolution.

Parameter names and shapes are those of the authors' ``src/nets/qmar.py``
and ``src/nets/qmarg.py`` (https://github.com/VDIGPKU/QGCN), so their state
dicts load with ``strict=True``; the constructors take the same keyword
arguments. The released models use ``n_feats=64, n_resblocks=64,
res_scale=0.1`` (the training script's defaults); the classes' own defaults
(``n_resblocks=16``) are kept as the authors wrote them.

Verified against the authors' modules (their code run outside this
repository, random weights loaded into both): identical outputs (max abs
difference 0) for gray (2 -> 1) and colour (5 -> 3) QCN and QGCN with
``n_resblocks`` 4 and 64; the input builders of
:mod:`jpegbench.models.jpeg_inputs` match their ``jpeg_qm*.py`` loaders
within 1.2e-7 (float32 rounding).

References
----------
.. [1] J. Li, Y. Wang, H. Xie, K.-K. Ma, "Learning a Single Model With a
   Wide Range of Quality Factors for JPEG Image Artifacts Removal",
   IEEE Transactions on Image Processing 29, 8842-8854, 2020.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from jpegbench.errors import ConfigError, ShapeError

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self needs Python 3.11

__all__ = ["QCN", "QGCN", "GLOBAL_SIZE"]

#: Side of the resized copy QGCN's global branch reads (four stride-2
#: convolutions take it to the 7x7 grid its first linear layer expects).
GLOBAL_SIZE = 112
_GLOBAL_FEATURES = 64  # width of the global vector, fixed by the authors
_GLOBAL_WIDTH = 32  # first conv width of the global branch (doubles twice)


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive int, got {value!r}")
    return value


def _check_common(in_channel: object, out_channel: object, n_feats: object, n_resblocks: object,
                  res_scale: object, scale: object) -> None:  # fmt: skip
    for name, value in (("in_channel", in_channel), ("out_channel", out_channel), ("n_feats", n_feats)):
        _positive_int(name, value)
    if isinstance(n_resblocks, bool) or not isinstance(n_resblocks, int) or n_resblocks < 0:
        raise ConfigError(f"n_resblocks must be a non-negative int, got {n_resblocks!r}")
    if isinstance(res_scale, bool) or not isinstance(res_scale, (int, float)) or not math.isfinite(res_scale):
        raise ConfigError(f"res_scale must be a finite number, got {res_scale!r}")
    if scale != 2:
        # The down-scaling convolution has stride 2 whatever ``scale`` says, so
        # any other factor would only break the skip connection's shapes.
        raise ConfigError(f"scale must be 2 (the network downsamples by a fixed stride of 2), got {scale!r}")


def _conv3(cin: int, cout: int, *, bias: bool) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=1, padding=1, bias=bias)


def _down(n_feats: int) -> nn.Sequential:
    # Index 0 holds the weight, as in the authors' ``downscale.0.weight``.
    return nn.Sequential(nn.Conv2d(n_feats, n_feats, kernel_size=4, stride=2, padding=1, bias=False), nn.ReLU())


def _up(n_feats: int) -> nn.Sequential:
    return nn.Sequential(_conv3(n_feats, 4 * n_feats, bias=True), nn.PixelShuffle(2))


def _init_convs(module: nn.Module) -> None:
    # The authors' initialisation (He normal with fan-out, zero bias); kept so
    # that training from scratch starts where theirs does.
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class ResidualBlock(nn.Module):
    """``x + res_scale * conv2(relu(conv1(x)))``, bias-free 3x3 convolutions (EDSR style)."""

    def __init__(self, n_feats: int = 64, res_scale: float = 0.1) -> None:
        super().__init__()
        self.conv1 = _conv3(n_feats, n_feats, bias=False)
        self.relu = nn.ReLU()
        self.conv2 = _conv3(n_feats, n_feats, bias=False)
        self.res_scale = float(res_scale)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(self.relu(self.conv1(x))) * self.res_scale


def _check_image(x: object, channels: int, what: str) -> Tensor:
    if not isinstance(x, Tensor) or x.ndim != 4:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ShapeError(f"{what} must be a tensor (N, {channels}, H, W), got {shape}")
    if x.shape[1] != channels:
        raise ShapeError(f"{what} must have {channels} channels (image + quantization maps), got {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if h < 2 or w < 2 or h % 2 or w % 2:
        raise ShapeError(
            f"{what} needs an even height and width (stride-2 branch, pixel-shuffle back), got {h}x{w}; "
            "pad the image (jpeg_inputs pads to a multiple of 8)"
        )
    return x


class _QNet(nn.Module):
    """What QCN and QGCN share around their layers: a :attr:`config` of the constructor's keyword arguments."""

    config: dict[str, Any]

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Self:
        """Build from :attr:`config` (the constructor's keyword arguments)."""
        return cls(**config)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.config.items())


def _head(in_channel: int, n_feats: int) -> tuple[nn.Conv2d, nn.Sequential]:
    """``conv_input`` and ``downscale``: image and maps to features at half resolution."""
    return _conv3(in_channel, n_feats, bias=False), _down(n_feats)


def _tail(n_feats: int, out_channel: int) -> tuple[nn.Conv2d, nn.Sequential, nn.Conv2d]:
    """``conv_mid``, ``upscale`` and ``conv_output``: half-resolution features back to the image."""
    return _conv3(n_feats, n_feats, bias=False), _up(n_feats), _conv3(n_feats, out_channel, bias=False)


class QCN(_QNet):
    """Quantization-map guided restoration network (the paper's QCN, the authors' ``qmar.Net``).

    Parameters
    ----------
    in_channel : int
        Image channels plus map channels: 2 for gray (Y + luma map), 5 for
        RGB (RGB + luma and chroma maps).
    out_channel : int
        1 (gray) or 3 (RGB).
    n_colors : int, default 3
        Accepted for the authors' signature; unused (as in theirs).
    n_feats : int, default 64
    n_resblocks : int, default 16
        The released models use 64.
    res_scale : float, default 0.1
    scale : int, default 2
        Accepted for the authors' signature; must be 2.

    Notes
    -----
    ``forward(x)`` takes ``(N, in_channel, H, W)`` on the [-1, 1] scale with
    H and W even and returns ``(N, out_channel, H, W)`` on that scale.
    """

    def __init__(
        self,
        in_channel: int,
        out_channel: int,
        n_colors: int = 3,
        n_feats: int = 64,
        n_resblocks: int = 16,
        res_scale: float = 0.1,
        scale: int = 2,
    ) -> None:
        super().__init__()
        _check_common(in_channel, out_channel, n_feats, n_resblocks, res_scale, scale)
        self.config = {"in_channel": in_channel, "out_channel": out_channel, "n_feats": n_feats,
                       "n_resblocks": n_resblocks, "res_scale": float(res_scale)}  # fmt: skip
        self.conv_input, self.downscale = _head(in_channel, n_feats)
        self.residual = nn.Sequential(*(ResidualBlock(n_feats, res_scale) for _ in range(n_resblocks)))
        self.conv_mid, self.upscale, self.conv_output = _tail(n_feats, out_channel)
        _init_convs(self)

    def forward(self, x: Tensor) -> Tensor:
        """Restore ``x`` = image ⊕ quantization maps, ``(N, in_channel, H, W)`` -> ``(N, out_channel, H, W)``."""
        head = self.conv_input(_check_image(x, self.config["in_channel"], "QCN input"))
        out = self.conv_mid(self.residual(self.downscale(head)))
        return self.conv_output(self.upscale(out) + head)


class QGCN(_QNet):
    """QCN with a global branch on a 112x112 copy of the image (the authors' ``qmarg.Net``).

    Parameters
    ----------
    in_channel : int
        2 for gray, 5 for RGB (image + quantization maps).
    in_glo_channel : int
        Channels of the resized copy: 1 (gray) or 3 (RGB); no maps.
    out_channel : int
    n_colors : int, default 3
        Accepted for the authors' signature; unused.
    n_feats : int, default 64
        Must be 64: the global branch's 64 features are concatenated with
        the ``n_feats`` local ones into a convolution the authors built for
        ``2 * n_feats`` inputs.
    n_resblocks : int, default 16
        Split in two halves (``n_resblocks // 2`` each) around the fusion;
        the released models use 64.
    res_scale : float, default 0.1
    scale : int, default 2
        Must be 2.

    Notes
    -----
    ``forward(source)`` takes the pair ``(x, resized)``: ``x`` as for
    :class:`QCN` and ``resized`` ``(N, in_glo_channel, 112, 112)`` on the
    [-1, 1] scale (:func:`jpegbench.models.jpeg_inputs.global_copy`);
    ``forward(x, resized)`` is accepted too.
    """

    def __init__(
        self,
        in_channel: int,
        in_glo_channel: int,
        out_channel: int,
        n_colors: int = 3,
        n_feats: int = 64,
        n_resblocks: int = 16,
        res_scale: float = 0.1,
        scale: int = 2,
    ) -> None:
        super().__init__()
        _check_common(in_channel, out_channel, n_feats, n_resblocks, res_scale, scale)
        _positive_int("in_glo_channel", in_glo_channel)
        if n_feats != _GLOBAL_FEATURES:
            raise ConfigError(
                f"QGCN needs n_feats={_GLOBAL_FEATURES} (its global branch emits {_GLOBAL_FEATURES} features fused "
                f"by a convolution over 2 * n_feats channels), got {n_feats}"
            )
        self.config = {"in_channel": in_channel, "in_glo_channel": in_glo_channel, "out_channel": out_channel,
                       "n_feats": n_feats, "n_resblocks": n_resblocks, "res_scale": float(res_scale)}  # fmt: skip
        g = _GLOBAL_WIDTH
        widths = [(in_glo_channel, g), (g, g), (g, 2 * g), (2 * g, 2 * g), (2 * g, 4 * g), (4 * g, 4 * g),
                  (4 * g, 4 * g), (4 * g, 4 * g)]  # fmt: skip
        layers: list[nn.Module] = []
        for i, (cin, cout) in enumerate(widths):
            # Even layers halve the resolution (112 -> 56 -> 28 -> 14 -> 7).
            k, s = (4, 2) if i % 2 == 0 else (3, 1)
            layers += [nn.Conv2d(cin, cout, kernel_size=k, stride=s, padding=1, bias=True), nn.ReLU()]
        self.conv_global = nn.Sequential(*layers)
        self._global_flat = (GLOBAL_SIZE // 16) ** 2 * 4 * g
        self.conv_global_l = nn.Sequential(
            nn.Linear(self._global_flat, 1024), nn.ReLU(), nn.Linear(1024, _GLOBAL_FEATURES)
        )
        self.conv_input, self.downscale = _head(in_channel, n_feats)
        half = n_resblocks // 2
        self.residual1 = nn.Sequential(*(ResidualBlock(n_feats, res_scale) for _ in range(half)))
        self.conv_res_mid = _conv3(n_feats + _GLOBAL_FEATURES, n_feats, bias=True)
        self.relu_mid = nn.ReLU()
        self.residual2 = nn.Sequential(*(ResidualBlock(n_feats, res_scale) for _ in range(half)))
        self.conv_mid, self.upscale, self.conv_output = _tail(n_feats, out_channel)
        _init_convs(self)

    def global_features(self, resized: Tensor) -> Tensor:
        """The global branch: ``(N, in_glo_channel, 112, 112)`` -> ``(N, 64)``.

        Exposed so that tiled inference can compute it once on the whole
        image and reuse it for every tile.
        """
        c = self.config["in_glo_channel"]
        if not isinstance(resized, Tensor) or tuple(resized.shape[1:]) != (c, GLOBAL_SIZE, GLOBAL_SIZE):
            shape = tuple(resized.shape) if isinstance(resized, Tensor) else type(resized).__name__
            raise ShapeError(f"QGCN resized copy must be (N, {c}, {GLOBAL_SIZE}, {GLOBAL_SIZE}), got {shape}")
        return self.conv_global_l(self.conv_global(resized).flatten(1))

    def forward(self, source: Sequence[Tensor] | Tensor, resized: Tensor | None = None) -> Tensor:
        """Restore ``(x, resized)`` -> ``(N, out_channel, H, W)`` on the [-1, 1] scale."""
        if resized is None:
            if isinstance(source, Tensor) or not isinstance(source, Sequence) or len(source) != 2:
                raise ShapeError("QGCN takes the pair (image with maps, 112x112 resized copy)")
            source, resized = source
        return self.forward_with_features(source, self.global_features(resized))

    def forward_with_features(self, x: Tensor, features: Tensor) -> Tensor:
        """The restoration branch given the global features of :meth:`global_features`."""
        x = _check_image(x, self.config["in_channel"], "QGCN input")
        if not isinstance(features, Tensor) or tuple(features.shape) != (x.shape[0], _GLOBAL_FEATURES):
            shape = tuple(features.shape) if isinstance(features, Tensor) else type(features).__name__
            raise ShapeError(f"QGCN global features must be ({x.shape[0]}, {_GLOBAL_FEATURES}), got {shape}")
        out = self.downscale(self.conv_input(x))
        out = self.residual1(out) + out
        glob = features[:, :, None, None].expand(-1, -1, out.shape[2], out.shape[3])
        out = self.relu_mid(self.conv_res_mid(torch.cat((out, glob), dim=1)))
        out = self.residual2(out) + out
        return self.conv_output(self.upscale(self.conv_mid(out)))
