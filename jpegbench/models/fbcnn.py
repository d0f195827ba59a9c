"""The FBCNN architecture (flexible blind JPEG artifacts removal).

FBCNN is a U-Net of residual blocks with a second head: from the bottleneck
features it predicts the JPEG quality factor, embeds it with an MLP, and the
decoder's residual blocks are modulated by per-channel ``gamma`` / ``beta``
computed from that embedding ("QF attention"). Because the embedding can be
fed any QF instead of the predicted one, a user (or an estimator, FBCNN-D)
can steer the trade-off between artifact removal and detail preservation.

The parameter names and shapes match the authors' released checkpoints
(``fbcnn_gray.pth``, ``fbcnn_color.pth``, ``fbcnn_gray_double.pth``) so they
load with ``load_state_dict(strict=True)``; the layout is the one listed in
``shared/reference/fbcnn_state_dict.json``.

References
----------
.. [1] J. Jiang, K. Zhang, R. Timofte, "Towards Flexible Blind JPEG Artifacts
   Removal", ICCV 2021, pp. 4997-5006.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from jpegbench.errors import ConfigError, QualityError, ShapeError

__all__ = ["FBCNN", "ResBlock", "QFAttention", "DEFAULT_NC", "DEFAULT_NB", "GRID"]

DEFAULT_NC: tuple[int, int, int, int] = (64, 128, 256, 512)
DEFAULT_NB: int = 4
#: Three stride-2 downsamplings: inputs are padded to a multiple of this.
GRID: int = 8

_ACTIVATIONS = ("R", "L")


def _activation(act_mode: str) -> nn.Module:
    # In place is safe: the activation always follows a conv whose output is
    # not used anywhere else.
    if act_mode == "R":
        return nn.ReLU(inplace=True)
    return nn.LeakyReLU(0.2, inplace=True)


def _conv_act_conv(channels: int, act_mode: str) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(channels, channels, 3, 1, 1, bias=True),
        _activation(act_mode),
        nn.Conv2d(channels, channels, 3, 1, 1, bias=True),
    )


class ResBlock(nn.Module):
    """``x + conv(act(conv(x)))`` with 3x3 convolutions, channels preserved.

    Shapes: ``(N, C, H, W) -> (N, C, H, W)``.
    """

    def __init__(self, channels: int, *, act_mode: str = "R") -> None:
        super().__init__()
        self.res = _conv_act_conv(channels, act_mode)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.res(x)


class QFAttention(nn.Module):
    """Residual block whose residual is scaled and shifted per channel.

    ``x + gamma * conv(act(conv(x))) + beta`` where ``gamma`` (in (0, 1),
    from a sigmoid) and ``beta`` (in (-1, 1), from a tanh) come from the QF
    embedding.

    Shapes: ``x`` ``(N, C, H, W)``, ``gamma`` and ``beta`` ``(N, C)``;
    returns ``(N, C, H, W)``.
    """

    def __init__(self, channels: int, *, act_mode: str = "R") -> None:
        super().__init__()
        self.res = _conv_act_conv(channels, act_mode)

    def forward(self, x: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
        return x + (gamma[:, :, None, None] * self.res(x) + beta[:, :, None, None])


def _check_config(
    in_nc: Any, out_nc: Any, nc: Any, nb: Any, act_mode: Any
) -> tuple[int, int, tuple[int, ...], int, str]:
    def positive_int(value: Any, name: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"FBCNN {name} must be a positive int, got {value!r}")
        return value

    in_nc = positive_int(in_nc, "in_nc")
    out_nc = positive_int(out_nc, "out_nc")
    nb = positive_int(nb, "nb")
    if isinstance(nc, (str, bytes)) or not isinstance(nc, Sequence) or len(nc) != 4:
        raise ConfigError(f"FBCNN nc must be a sequence of 4 channel widths, got {nc!r}")
    nc = tuple(positive_int(c, "nc entry") for c in nc)
    if act_mode not in _ACTIVATIONS:
        raise ConfigError(f"FBCNN act_mode must be one of {_ACTIVATIONS}, got {act_mode!r}")
    return in_nc, out_nc, nc, nb, act_mode


class FBCNN(nn.Module):
    """Flexible blind convolutional network for JPEG artifacts removal [1]_.

    Parameters
    ----------
    in_nc : int, default 3
        Input channels (1 for gray, 3 for RGB).
    out_nc : int, optional
        Output channels; defaults to ``in_nc``.
    nc : sequence of 4 ints, default (64, 128, 256, 512)
        Channel widths of the four U-Net scales. The QF predictor and QF
        embedding MLPs are ``nc[-1]`` wide (512 in the paper).
    nb : int, default 4
        Residual blocks per scale (and in the QF predictor).
    act_mode : {"R", "L"}, default "R"
        ReLU or LeakyReLU(0.2) inside the residual blocks.

    Notes
    -----
    ``FBCNN(in_nc=1)`` and ``FBCNN(in_nc=3)`` at the default width have the
    exact state dict of the released checkpoints (184 tensors, about 71.9 M
    parameters). ``FBCNN(in_nc=1, nc=(16, 32, 64, 128), nb=2)`` is a small
    variant for CPU experiments.

    Attribute ``qf_patch`` (int or None, default None; set by
    :func:`jpegbench.models.load_model` from a checkpoint's ``meta["qf_patch"]``):
    the patch size the QF predictor was trained on. When set,
    :func:`jpegbench.models.predict_qf` and blind :func:`jpegbench.models.restore`
    read the QF as the median of the predictions on that grid of patches
    rather than from one global pooling over the whole image (see
    :func:`jpegbench.models.inference.predict_qf`). The module's own
    :meth:`forward` and :meth:`predict_qf` always see the tensor they are given.

    Inside the module the QF is represented as the paper's ``1 - qf / 100``
    (the sigmoid output of ``qf_pred`` and the input of ``qf_embed``); the
    public :meth:`forward` speaks the 0..100 scale only.

    References
    ----------
    .. [1] J. Jiang, K. Zhang, R. Timofte, "Towards Flexible Blind JPEG
       Artifacts Removal", ICCV 2021.
    """

    def __init__(
        self,
        in_nc: int = 3,
        out_nc: int | None = None,
        nc: Sequence[int] = DEFAULT_NC,
        nb: int = DEFAULT_NB,
        act_mode: str = "R",
    ) -> None:
        super().__init__()
        in_nc, out_nc, nc, nb, act_mode = _check_config(
            in_nc, in_nc if out_nc is None else out_nc, nc, nb, act_mode
        )
        self.in_nc, self.out_nc, self.nc, self.nb, self.act_mode = in_nc, out_nc, nc, nb, act_mode
        self.qf_patch: int | None = None
        top = nc[3]

        def res_blocks(channels: int) -> list[nn.Module]:
            return [ResBlock(channels, act_mode=act_mode) for _ in range(nb)]

        def down(c_in: int, c_out: int) -> nn.Sequential:
            return nn.Sequential(*res_blocks(c_in), nn.Conv2d(c_in, c_out, 2, 2, 0, bias=True))

        def up(c_in: int, c_out: int) -> nn.ModuleList:
            # A ModuleList, not a Sequential: the attention blocks take
            # (x, gamma, beta). Index 0 is the upsampling, as in the release.
            return nn.ModuleList(
                [nn.ConvTranspose2d(c_in, c_out, 2, 2, 0, bias=True)]
                + [QFAttention(c_out, act_mode=act_mode) for _ in range(nb)]
            )

        self.m_head = nn.Conv2d(in_nc, nc[0], 3, 1, 1, bias=True)
        self.m_down1 = down(nc[0], nc[1])
        self.m_down2 = down(nc[1], nc[2])
        self.m_down3 = down(nc[2], nc[3])
        self.m_body_encoder = nn.Sequential(*res_blocks(top))
        self.m_body_decoder = nn.Sequential(*res_blocks(top))
        self.m_up3 = up(nc[3], nc[2])
        self.m_up2 = up(nc[2], nc[1])
        self.m_up1 = up(nc[1], nc[0])
        self.m_tail = nn.Conv2d(nc[0], out_nc, 3, 1, 1, bias=True)

        # Index layout (pool 4, flatten 5, linears 6/8/10) is fixed by the
        # released checkpoints' key names.
        self.qf_pred = nn.Sequential(
            *res_blocks(top),
            nn.AdaptiveAvgPool2d((1, 1)),
            nn.Flatten(),
            nn.Linear(top, top),
            nn.ReLU(),
            nn.Linear(top, top),
            nn.ReLU(),
            nn.Linear(top, 1),
            nn.Sigmoid(),
        )
        self.qf_embed = nn.Sequential(
            nn.Linear(1, top), nn.ReLU(), nn.Linear(top, top), nn.ReLU(), nn.Linear(top, top), nn.ReLU()
        )
        self.to_gamma_3 = nn.Sequential(nn.Linear(top, nc[2]), nn.Sigmoid())
        self.to_beta_3 = nn.Sequential(nn.Linear(top, nc[2]), nn.Tanh())
        self.to_gamma_2 = nn.Sequential(nn.Linear(top, nc[1]), nn.Sigmoid())
        self.to_beta_2 = nn.Sequential(nn.Linear(top, nc[1]), nn.Tanh())
        self.to_gamma_1 = nn.Sequential(nn.Linear(top, nc[0]), nn.Sigmoid())
        self.to_beta_1 = nn.Sequential(nn.Linear(top, nc[0]), nn.Tanh())

    # -- description -------------------------------------------------------

    @property
    def config(self) -> dict[str, Any]:
        """Constructor arguments as a JSON-friendly dict (``FBCNN(**config)`` rebuilds it)."""
        return {
            "in_nc": self.in_nc,
            "out_nc": self.out_nc,
            "nc": list(self.nc),
            "nb": self.nb,
            "act_mode": self.act_mode,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> FBCNN:
        """Build a model from :attr:`config`; unknown or missing keys raise ConfigError."""
        if not isinstance(config, dict):
            raise ConfigError(f"FBCNN config must be a dict, got {type(config).__name__}")
        known = {"in_nc", "out_nc", "nc", "nb", "act_mode"}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ConfigError(f"FBCNN config has unknown keys {unknown}; expected a subset of {sorted(known)}")
        if "in_nc" not in config:
            raise ConfigError("FBCNN config lacks 'in_nc'")
        return cls(**config)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.config.items())

    # -- forward -------------------------------------------------------------

    def _check_input(self, x: Tensor) -> None:
        if not isinstance(x, Tensor):
            raise ShapeError(f"FBCNN input must be a torch.Tensor (N, C, H, W), got {type(x).__name__}")
        if x.ndim != 4 or x.shape[1] != self.in_nc:
            raise ShapeError(f"FBCNN input must have shape (N, {self.in_nc}, H, W), got {tuple(x.shape)}")
        if not x.is_floating_point():
            raise ShapeError(f"FBCNN input must be a float tensor in [0, 1], got dtype {x.dtype}")
        if x.shape[0] == 0 or x.shape[2] == 0 or x.shape[3] == 0:
            raise ShapeError(f"FBCNN input must be non-empty, got shape {tuple(x.shape)}")

    def _qf_condition(self, qf: Tensor | float | int, like: Tensor) -> Tensor:
        """Turn a caller's 0..100 QF into the embedding input ``1 - qf/100``, shape ``(N, 1)``."""
        n = like.shape[0]
        qf_t = torch.as_tensor(qf, dtype=like.dtype, device=like.device)
        if qf_t.ndim == 0:
            qf_t = qf_t.expand(n)
        elif qf_t.shape not in ((n,), (n, 1)):
            raise ShapeError(f"qf must be a scalar or have shape ({n},) or ({n}, 1), got {tuple(qf_t.shape)}")
        qf_t = qf_t.reshape(n, 1)
        if not torch.all((qf_t >= 0) & (qf_t <= 100)):
            raise QualityError(f"qf must be in 0..100, got {qf_t.flatten().tolist()[:8]}")
        return 1.0 - qf_t / 100.0

    def _pad(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        pad_bottom, pad_right = -h % GRID, -w % GRID
        if pad_bottom or pad_right:
            # Replicate (not zero or reflect) as the authors' code: no fake
            # edges for the network to "restore", and valid for any size.
            x = F.pad(x, (0, pad_right, 0, pad_bottom), mode="replicate")
        return x

    def _encode(self, x: Tensor) -> tuple[list[Tensor], Tensor]:
        x1 = self.m_head(x)
        x2 = self.m_down1(x1)
        x3 = self.m_down2(x2)
        x4 = self.m_down3(x3)
        return [x1, x2, x3, x4], self.m_body_encoder(x4)

    def predict_qf(self, x: Tensor) -> Tensor:
        """Predicted QF only (runs the encoder and the QF head, not the decoder).

        Parameters
        ----------
        x : Tensor, shape (N, in_nc, H, W), float in [0, 1]

        Returns
        -------
        Tensor, shape (N,), QF on the 0..100 scale (float, not rounded).
        """
        self._check_input(x)
        _, z = self._encode(self._pad(x))
        return 100.0 * (1.0 - self.qf_pred(z)[:, 0])

    def forward(self, x: Tensor, qf: Tensor | float | None = None) -> tuple[Tensor, Tensor]:
        """Restore a batch and predict its QF.

        Parameters
        ----------
        x : Tensor, shape (N, in_nc, H, W), float in [0, 1]
            Any H, W >= 1: padded (replicate) to a multiple of 8 and cropped back.
        qf : Tensor of shape (N,) or (N, 1), or a number, optional
            QF (0..100) that conditions the decoder instead of the predicted
            one: the paper's flexible control (a larger QF keeps more detail,
            a smaller one smooths more). ``None`` (default): blind, use the
            prediction.

        Returns
        -------
        restored : Tensor, shape (N, out_nc, H, W)
            Not clamped (training needs the raw output).
        qf_predicted : Tensor, shape (N,)
            The network's QF prediction on the 0..100 scale, also when ``qf``
            overrode it. Differentiable: a QF loss on the paper's scale is
            ``l1(qf_predicted / 100, qf_true / 100)``.
        """
        self._check_input(x)
        h, w = x.shape[-2:]
        skips, z = self._encode(self._pad(x))
        qf_internal = self.qf_pred(z)  # (N, 1), 1 - qf/100
        condition = qf_internal if qf is None else self._qf_condition(qf, z)
        embedding = self.qf_embed(condition)

        z = self.m_body_decoder(z)
        for up, skip, to_gamma, to_beta in (
            (self.m_up3, skips[3], self.to_gamma_3, self.to_beta_3),
            (self.m_up2, skips[2], self.to_gamma_2, self.to_beta_2),
            (self.m_up1, skips[1], self.to_gamma_1, self.to_beta_1),
        ):
            gamma, beta = to_gamma(embedding), to_beta(embedding)
            z = up[0](z + skip)
            for block in up[1:]:
                z = block(z, gamma, beta)
        out = self.m_tail(z + skips[0])
        return out[..., :h, :w], 100.0 * (1.0 - qf_internal[:, 0])
