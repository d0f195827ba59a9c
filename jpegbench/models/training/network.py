"""How a run's network starts: seeded random weights, the identity, or a checkpoint's weights.

``init_from`` fine-tunes from a checkpoint of the same architecture (FBCNN-A
from FBCNN, or one stage from the previous one), or, with
``init_channel_map``, warm-starts a colour model from a gray one
(:func:`gray_to_color`; ``"replicate_identity"`` then applies
:func:`identity_init`), or, with ``init_widen``, a wider model from a
narrower one (:func:`widen_state_dict`).

Why two maps: ``"replicate"`` is the exact colour equivalent of the gray
model, but its output is gray (R = G = B), and the architecture has no
global skip to let the input's chroma through, so it starts far below the
JPEG input on colour images and climbs slowly. Measured on the 5 held-out
BSDS crops (QF 10/30/50, RGB PSNR; JPEG 27.81 dB) with
``configs/fbcnn-small-color.toml`` shortened: ``"replicate"`` 23.06 dB at
step 0, 23.51 at 200, 25.51 at 300, 26.24 at 700;
``"replicate_identity"`` 27.81 at step 0 (the identity), 28.14 at 100,
28.32 at 300, its QF loss at 0.064 (from scratch with ``identity_init``:
27.91 at step 200, QF loss stuck at 0.23, the constant-prediction plateau).
"""

from __future__ import annotations

from typing import Any

import torch

from jpegbench.errors import ConfigError
from jpegbench.models.fbcnn import FBCNN
from jpegbench.models.training.config import TrainConfig
from jpegbench.models.weights import load_checkpoint

__all__ = ["build_model", "gray_to_color", "identity_init", "widen_state_dict"]


def build_model(cfg: TrainConfig) -> tuple[torch.nn.Module, dict[str, Any] | None]:
    """The run's starting network and, with ``init_from``, where its weights came from (for the meta).

    QCN, QGCN and IJCN (``arch``): :func:`jpegbench.models.training.guided.build_guided_model`.
    """
    if cfg.guided:
        from jpegbench.models.training.guided import build_guided_model

        return build_guided_model(cfg)
    with torch.random.fork_rng(devices=[]):  # seeded initialization, no global seeding
        torch.manual_seed(cfg.seed)
        model = FBCNN.from_config(cfg.model_config())
    if cfg.init_from is None:
        if cfg.identity_init:
            identity_init(model)
        return model, None
    p = cfg.path("init_from")
    ckpt = load_checkpoint(p if p is not None and p.exists() else cfg.init_from)
    config, state_dict = dict(ckpt.config, nc=list(ckpt.config["nc"])), ckpt.state_dict
    if cfg.init_channel_map is not None:
        if (config.get("in_nc"), config.get("out_nc", config.get("in_nc"))) != (1, 1):
            raise ConfigError(
                f"training config key 'model.init_channel_map' = {cfg.init_channel_map!r} needs a gray (1-channel) "
                f"'model.init_from' checkpoint; {ckpt.path} has in_nc={config.get('in_nc')}"
            )
        config, state_dict = dict(config, in_nc=3, out_nc=3), gray_to_color(state_dict)
    if cfg.init_widen != 1:
        if list(config["nc"]) and [c * cfg.init_widen for c in config["nc"]] != list(model.nc):
            raise ConfigError(
                f"training config key 'model.init_widen' = {cfg.init_widen}: {ckpt.path} has nc={config['nc']}, "
                f"so the config's nc must be {[c * cfg.init_widen for c in config['nc']]}, not {list(model.nc)}"
            )
        generator = torch.Generator().manual_seed(cfg.seed)
        config = dict(config, nc=list(model.nc))
        state_dict = widen_state_dict(state_dict, cfg.init_widen, nc=ckpt.config["nc"], generator=generator)
    if config != dict(model.config):
        raise ConfigError(
            f"training config key 'model.init_from': {ckpt.path} has architecture {ckpt.config}, "
            f"the config asks for {model.config}"
        )
    model.load_state_dict(state_dict, strict=True)
    if cfg.init_channel_map == "replicate_identity":
        identity_init(model)
    init = {"path": str(ckpt.path), "meta_name": str(ckpt.meta.get("name", ""))}
    if cfg.init_channel_map is not None:
        init["channel_map"] = cfg.init_channel_map
    if cfg.init_widen != 1:
        init["widen"] = cfg.init_widen
    return model, init


def gray_to_color(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A gray FBCNN's state dict made into a colour (RGB in, RGB out) one that computes the same thing per channel.

    ``m_head.weight`` ``(nc0, 1, 3, 3)`` becomes ``(nc0, 3, 3, 3)`` with the
    gray kernel divided by 3 on each of R, G, B, so an image with
    R = G = B = y gives the gray model's features of y; ``m_tail``'s single
    output (weight ``(1, nc0, 3, 3)``, bias ``(1,)``) is copied to the three
    outputs. Every other tensor is independent of the channel count and is
    kept. The result is then a starting point: training separates the
    channels (chroma is restored from the colour-specific errors).

    Parameters
    ----------
    state_dict : dict of str to Tensor
        Of ``FBCNN(in_nc=1, out_nc=1, ...)``.

    Returns
    -------
    dict of str to Tensor
        New tensors for ``m_head.weight``, ``m_tail.weight`` and
        ``m_tail.bias``; the others are the input's.
    """
    out = dict(state_dict)
    head, tail_w, tail_b = state_dict["m_head.weight"], state_dict["m_tail.weight"], state_dict["m_tail.bias"]
    if head.shape[1] != 1 or tail_w.shape[0] != 1 or tail_b.shape != (1,):
        raise ConfigError(f"not a gray FBCNN state dict: m_head.weight {tuple(head.shape)}, "
                          f"m_tail.weight {tuple(tail_w.shape)}")
    out["m_head.weight"] = head.repeat(1, 3, 1, 1) / 3.0
    out["m_tail.weight"] = tail_w.repeat(3, 1, 1, 1)
    out["m_tail.bias"] = tail_b.repeat(3)
    return out


@torch.no_grad()
def identity_init(model: FBCNN) -> FBCNN:
    """Make a freshly built FBCNN return its input exactly, in place.

    The released architecture has no global skip connection
    (``out = m_tail(decoder + m_head(x))``), so a randomly initialized
    network first has to learn the identity, which costs a short CPU run most
    of its steps (the output is worse than the JPEG input for a long time).
    Here channel ``c`` of ``m_head`` copies input channel ``c``, ``m_tail``
    copies it back, and every layer that writes to those channels of the
    last decoder scale (the up-convolution, the second convolution of each
    QF-attention block, and ``to_beta_1``) starts at zero, so the decoder adds
    nothing to them: the network starts as the identity and learns the
    restoration as a residual. Other weights keep their random values;
    gradients reach them from the first step.
    """
    c_in = model.in_nc
    channels = range(min(c_in, model.out_nc))
    up1 = model.m_up1
    model.m_tail.weight.zero_()
    model.m_tail.bias.zero_()
    for c in channels:
        model.m_head.weight[c].zero_()
        model.m_head.weight[c, c, 1, 1] = 1.0
        model.m_head.bias[c] = 0.0
        model.m_tail.weight[c, c, 1, 1] = 1.0
        up1[0].weight[:, c].zero_()  # ConvTranspose2d weight is (in, out, kh, kw)
        up1[0].bias[c] = 0.0
        for block in up1[1:]:
            block.res[2].weight[c].zero_()
            block.res[2].bias[c] = 0.0
        model.to_beta_1[0].weight[c].zero_()
        model.to_beta_1[0].bias[c] = 0.0
    return model


#: Parameters whose first axis is an input, not an output (ConvTranspose2d: ``(in, out, kh, kw)``).
_TRANSPOSED = ("m_up3.0.weight", "m_up2.0.weight", "m_up1.0.weight")


@torch.no_grad()
def widen_state_dict(
    state_dict: dict[str, torch.Tensor],
    factor: int,
    *,
    nc: list[int] | tuple[int, ...],
    generator: torch.Generator | None = None,
    noise: float = 0.01,
) -> dict[str, torch.Tensor]:
    """A narrow FBCNN's state dict made into one ``factor`` times wider that computes the same function.

    Net2WiderNet (Chen, Goodfellow, Shlens, ICLR 2016) for the FBCNN layout:
    every feature channel ``j`` of a width-``c`` layer becomes ``factor``
    copies ``j, j + c, j + 2c, ...``. An output axis (convolution outputs,
    biases, the gamma / beta and MLP outputs) is copied; an input axis is
    split so that the copies sum to the original weight. ReLU, the residual
    additions, the skips, the average pooling and the per-channel QF
    attention all commute with the copying, so the wide network's output
    equals the narrow one's (up to float rounding) for any input and QF.

    Copies that stay equal receive equal gradients and never separate, so
    the split is not even: the ``factor`` shares of an input weight get a
    random perturbation (relative size ``noise`` of the tensor's standard
    deviation) that sums to zero over the copies, which breaks the symmetry
    without changing the function.

    Parameters
    ----------
    state_dict : dict of str to Tensor
        Of ``FBCNN(nc=nc, ...)``; the image channels (``in_nc``,
        ``out_nc``) and the QF scalar keep their sizes.
    factor : int
        Width multiplier, >= 1.
    nc : sequence of 4 ints
        The narrow model's widths (a feature axis is one whose size is one
        of them; image and QF axes are 1 or 3, kernels 2 or 3).
    generator : torch.Generator, optional
        For the symmetry-breaking perturbation (seed it for a reproducible run).
    noise : float, default 0.01

    Returns
    -------
    dict of str to Tensor
        Every tensor widened (float32 where the input was float16).
    """
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
        raise ConfigError(f"widening factor must be a positive int, got {factor!r}")
    widths = {int(c) for c in nc}
    if min(widths) <= 3:
        raise ConfigError(f"widening needs feature widths above 3 (image channels and kernels are 1-3), got nc={list(nc)}")
    if factor == 1:
        return dict(state_dict)

    def copy_axis(t: torch.Tensor, axis: int) -> torch.Tensor:
        return torch.cat([t] * factor, dim=axis)

    def split_axis(t: torch.Tensor, axis: int) -> torch.Tensor:
        shares = [t / factor for _ in range(factor)]
        if noise > 0 and t.numel() > 1:
            scale = noise * float(t.float().std())
            eps = [torch.randn(t.shape, generator=generator, dtype=t.dtype) * scale for _ in range(factor)]
            mean = sum(eps) / factor
            shares = [s + e - mean for s, e in zip(shares, eps)]  # the perturbations sum to zero
        return torch.cat(shares, dim=axis)

    out: dict[str, torch.Tensor] = {}
    for name, tensor in state_dict.items():
        t = tensor.float() if tensor.is_floating_point() else tensor
        if t.ndim == 0:
            out[name] = t
            continue
        out_axis, in_axis = (1, 0) if name in _TRANSPOSED else (0, 1)
        if t.ndim >= 2 and t.shape[in_axis] in widths:
            t = split_axis(t, in_axis)
        if t.shape[out_axis if t.ndim >= 2 else 0] in widths:
            t = copy_axis(t, out_axis if t.ndim >= 2 else 0)
        out[name] = t
    return out
