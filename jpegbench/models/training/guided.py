"""Training the table-guided networks (QCN, QGCN, IJCN): JPEG patches, the networks' inputs read from them, loss, validation.

A config with ``[model] arch = "qcn" | "qgcn" | "ijcn"`` runs through the
same loop as FBCNN (:func:`jpegbench.models.training.train`: seeded batches,
resume, Ctrl-C, ``last.pt`` / ``best.pt``, ``log.csv``); this module holds
what differs.

Data
    Each clean patch is cropped and augmented as for FBCNN
    (:class:`jpegbench.synth.PatchDataset`, seeded by ``(seed, epoch,
    index)``) and compressed once by the same degradation code
    (:class:`jpegbench.synth.JpegDegradation`, single JPEG, QF uniform in
    ``qf_range``, Pillow with IJG tables, the config's ``subsampling``). The
    network's input is built from the *encoded bytes* by the builders that
    restoring uses, :func:`~jpegbench.models.jpeg_inputs.qcn_inputs_from_jpeg`
    and :func:`~jpegbench.models.jpeg_inputs.ijcn_inputs_from_jpeg`, so
    training and inference cannot drift:

    * QCN / QGCN: the decoded patch ⊕ quantization maps tiled from the
      JPEG's own tables (one map for gray, luma and chroma for colour), on
      [-1, 1]; the target is the clean patch on [-1, 1].
    * QGCN's global input is the 112x112 resized copy of the *patch*, as in
      the authors' training loader (``jpeg_qmg.TrainData`` resizes the
      cropped patch). At inference it is the copy of the whole image
      (:func:`~jpegbench.models.guided_inference.run_qcn` computes the
      global features once on it); a crop of the whole image would need
      the whole image per sample, and the authors' models were trained on
      patches too. The validation cells below restore whole crops, i.e.
      with the inference-time global view.
    * IJCN: the tables of Y, Cb, Cr ``(3, 8, 8)`` and the quantized
      coefficients of the patch's own bytes (luma ``(1, P/8, P/8, 8, 8)``,
      chroma ``(2, P/16, P/16, 8, 8)``); ``patch_size`` is a multiple of 64,
      so no padding is involved. The target is the clean RGB patch on [0, 1].

    Only single JPEGs: a double JPEG's network input would come from the
    last compression's tables, which is what the ``-d`` methods correct at
    inference, not what the networks are trained on.

Loss
    L1 between output and target on the network's own scale: [-1, 1] for
    QCN / QGCN (the authors' ``main.py`` with its default ``--loss L1`` on
    their tensors), RGB on [0, 1] for IJCN. IJCN's paper adds a term on the
    predicted coefficients; its authors released no training code that fixes
    that term's definition and weight, so it is not mirrored here: IJCN is
    trained with L1 on RGB only. There is no QF head, so ``qf_loss`` is 0 in
    ``log.csv`` and the QF keys of ``[optim]`` are not used.

Validation
    The cells of :func:`jpegbench.models.training.data.val_cells`
    (``val_qfs`` single JPEGs and ``val_double`` cells shifted by
    ``val_shift``), kept as JPEG bytes; each is restored as the ``qcn`` /
    ``qgcn`` / ``ijcn`` methods restore a file (the file's own tables, whole
    image, no tiles) and scored by PSNR (gray, or over R, G, B).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from jpegbench.codec import decode
from jpegbench.codec.coefficients import read_coefficients
from jpegbench.errors import ConfigError
from jpegbench.models.guided_inference import restore_ijcn, restore_qcn
from jpegbench.models.guided_weights import GUIDED_ARCHITECTURES, load_guided_model
from jpegbench.models.ijcn import IJCN
from jpegbench.models.jpeg_inputs import _to_unit_range, ijcn_inputs_from_jpeg, qcn_inputs_from_jpeg
from jpegbench.models.qcn import QGCN
from jpegbench.models.training.config import TrainConfig
from jpegbench.models.training.data import Cells, _color, _planes, _psnr, score_cells, step_items, val_cells

__all__ = [
    "build_guided_model", "guided_identity_init", "make_guided_dataset", "guided_sample", "guided_batch_at", "guided_forward", "guided_loss",
    "guided_val_cells", "guided_validate", "guided_jpeg_psnr",
]  # fmt: skip


@torch.no_grad()
def guided_identity_init(model: nn.Module) -> nn.Module:
    """Make a freshly built QCN, QGCN or IJCN return its input (the decoded JPEG), in place.

    Randomly initialized, both start far below the JPEG input (about 7-8 dB
    PSNR on 8-bit images), which costs a short CPU run many steps.

    * IJCN: ``m_tail`` is zeroed, so the output is the network's own global
      skip, the decoded coefficients; and the offset module's rounding
      offsets start at zero (the transformer's output convolution and the
      table-embedding's ``beta`` head zeroed; random offsets of up to half a
      step on every low frequency cost 20 dB). Gradients reach the zeroed
      layers at once and the layers before them from the second step.
    * QCN: image channel ``c`` is copied by ``conv_input`` into feature
      ``c`` (the full-resolution skip), ``conv_output`` copies it back, and
      the up-convolution's outputs that the pixel shuffle puts on those
      features start at zero.

    * QGCN has no full-resolution skip: the image is carried through the
      half-resolution path exactly (see ``_qgcn_pass_through``), using
      ``8 * channels`` of its 64 features; the global branch starts with no
      say in those features.

    Only the weights that write to the carried features (and the output)
    are set; every other weight keeps its random value and learns from the
    first step.
    """
    if isinstance(model, IJCN):
        logm = model.DCT_offset
        for layer in (model.m_tail, logm.learnable_offset.conv_out, logm.qt_beta[0]):
            layer.weight.zero_()
            layer.bias.zero_()
        return model
    if isinstance(model, QGCN):
        return _qgcn_pass_through(model)
    c = model.config["out_channel"]
    model.conv_output.weight.zero_()
    up = model.upscale[0]
    for k in range(c):
        model.conv_input.weight[k].zero_()
        model.conv_input.weight[k, k, 1, 1] = 1.0
        model.conv_output.weight[k, k, 1, 1] = 1.0
        up.weight[4 * k : 4 * k + 4].zero_()  # PixelShuffle(2): output feature k comes from channels 4k..4k+3
        up.bias[4 * k : 4 * k + 4] = 0.0
    return model


def _qgcn_pass_through(model: QGCN) -> QGCN:
    # QGCN's only path runs at half resolution behind ReLUs: image channel k is carried as its
    # positive and negative parts (features 2k, 2k + 1 of conv_input), the stride-2 convolution
    # puts each of the four 2x2 phases of each part in a feature of its own (8 per channel: a
    # space-to-depth that survives the ReLU), the residual blocks and the fusion convolution let
    # them through (the blocks' second convolutions write zero to them; each "blocks(x) + x"
    # doubles them, so the fusion and conv_mid halve them), the up-convolution recombines
    # part(+) - part(-) per phase before the pixel shuffle, and conv_output reads feature k.
    c = model.config["out_channel"]
    if 8 * c > model.config["n_feats"]:
        raise ConfigError(f"QGCN's pass-through start needs n_feats >= {8 * c}")
    for conv in (model.conv_input, model.downscale[0], model.conv_res_mid, model.conv_mid, model.upscale[0],
                 model.conv_output):  # fmt: skip
        rows = range(c) if conv is model.conv_output else range(4 * c if conv is model.upscale[0] else 8 * c)
        rows = range(2 * c) if conv is model.conv_input else rows
        for r in rows:
            conv.weight[r].zero_()
            if conv.bias is not None:
                conv.bias[r] = 0.0
    for block in (*model.residual1, *model.residual2):
        block.conv2.weight[: 8 * c].zero_()
    model.conv_output.weight.zero_()
    for k in range(c):
        model.conv_input.weight[2 * k, k, 1, 1] = 1.0
        model.conv_input.weight[2 * k + 1, k, 1, 1] = -1.0
        model.conv_output.weight[k, k, 1, 1] = 1.0
        for a in range(2):
            for b in range(2):
                for sign in range(2):
                    f = 8 * k + 4 * sign + 2 * a + b  # feature of (channel, part, phase) at half resolution
                    # 4x4 kernel, stride 2, padding 1: output (i, j) reads input rows 2i - 1 .. 2i + 2.
                    model.downscale[0].weight[f, 2 * k + sign, 1 + a, 1 + b] = 1.0
                    model.conv_res_mid.weight[f, f, 1, 1] = 0.5
                    model.conv_mid.weight[f, f, 1, 1] = 0.5
                    # PixelShuffle(2): output feature k at phase (a, b) is up-conv channel 4k + 2a + b.
                    model.upscale[0].weight[4 * k + 2 * a + b, f, 1, 1] = 1.0 if sign == 0 else -1.0
    return model


def build_guided_model(cfg: TrainConfig) -> tuple[nn.Module, dict[str, Any] | None]:
    """The run's starting QCN / QGCN / IJCN (seeded), or ``init_from``'s weights of the same architecture and size."""
    with torch.random.fork_rng(devices=[]):  # seeded initialization, no global seeding
        torch.manual_seed(cfg.seed)
        model = GUIDED_ARCHITECTURES[cfg.arch](**cfg.model_config())
    if cfg.init_from is None:
        if cfg.identity_init:
            guided_identity_init(model)
        return model, None
    p = cfg.path("init_from")
    start = load_guided_model(p if p is not None and p.exists() else cfg.init_from, architecture=cfg.arch,
                              device="cpu")  # fmt: skip
    if dict(start.config) != dict(model.config):
        raise ConfigError(f"training config key 'model.init_from': {start.checkpoint_path} has architecture "
                          f"{start.config}, the config asks for {model.config}")  # fmt: skip
    model.load_state_dict(start.state_dict(), strict=True)
    meta = getattr(start, "checkpoint_meta", {}) or {}
    return model, {"path": str(start.checkpoint_path), "meta_name": str(meta.get("name", ""))}


class _EncodedPatch:
    """A :class:`~jpegbench.synth.JpegDegradation` whose result is the encoded bytes (not decoded pixels).

    Draws exactly what the wrapped degradation draws (its
    ``sample_stages``) and runs the same chain, so a guided run sees the
    patches and QFs an FBCNN run of the same seed sees.
    """

    def __init__(self, degradation: Any) -> None:
        self.degradation = degradation
        self.margin = degradation.margin

    def __call__(self, patch: np.ndarray, rng: np.random.Generator) -> tuple[bytes, np.ndarray, dict[str, Any]]:
        from jpegbench.synth.degrade import apply_chain

        h, w = patch.shape[:2]
        stages = self.degradation.sample_stages(rng, height=h, width=w)
        res = apply_chain(patch, stages, decode_last=False, **self.degradation.encoder)
        return res.lq_bytes, res.hq_pixels, res.params


def make_guided_dataset(cfg: TrainConfig, files: list[Path]) -> tuple[Any, int]:
    """The run's :class:`~jpegbench.synth.PatchDataset` whose samples are ``(jpeg_bytes, clean_patch, params)``."""
    from jpegbench.synth.dataset import JpegDegradation, PatchDataset

    degradation = JpegDegradation(mode="single", qf_range=cfg.qf_range, subsampling=cfg.subsampling)
    per_epoch = -(-len(files) // cfg.batch_size)
    dataset = PatchDataset(files, patch_size=cfg.patch_size, color=_color(cfg),  # type: ignore[arg-type]
                           degradation=_EncodedPatch(degradation), seed=cfg.seed,  # type: ignore[arg-type]
                           length=per_epoch * cfg.batch_size, augment=cfg.augment, preload=True)  # fmt: skip
    return dataset, per_epoch


def guided_sample(cfg: TrainConfig, jpeg: bytes, clean: np.ndarray) -> dict[str, Tensor]:
    """One training sample (no batch axis): the network's inputs built from ``jpeg``, and the target from ``clean``.

    Keys: ``x`` (QCN/QGCN image ⊕ maps), ``resized`` (QGCN), ``tables``,
    ``y``, ``cbcr`` (IJCN), ``hq`` (target on the network's scale).
    """
    planes = _planes(clean)[0]
    if cfg.arch == "ijcn":
        inp = ijcn_inputs_from_jpeg(jpeg)
        hq = torch.from_numpy(planes.astype(np.float32) / np.float32(255.0))
        return {"tables": inp.tables[0], "y": inp.y[0], "cbcr": inp.cbcr[0], "hq": hq}
    q = qcn_inputs_from_jpeg(jpeg, channels=cfg.channels)
    out = {"x": q.image[0], "hq": torch.from_numpy(_to_unit_range(planes))}
    if cfg.arch == "qgcn":
        out["resized"] = q.resized[0]
    return out


def guided_batch_at(dataset: Any, per_epoch: int, cfg: TrainConfig, step: int) -> dict[str, Tensor]:
    """The batch of 0-based ``step`` (a function of seed and step only, as for FBCNN)."""
    samples = [guided_sample(cfg, jpeg, clean) for jpeg, clean, _ in step_items(dataset, per_epoch, cfg, step)]
    return {k: torch.stack([s[k] for s in samples]) for k in samples[0]}


def guided_forward(model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
    """The network's image output for a batch of :func:`guided_batch_at`."""
    if isinstance(model, IJCN):
        return model(batch["tables"], batch["y"], batch["cbcr"])[0]
    if isinstance(model, QGCN):
        return model(batch["x"], batch["resized"])
    return model(batch["x"])


def guided_loss(model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, float, float]:
    """``(loss, l1, qf_loss)``: L1 on the network's scale; no QF term."""
    l1 = torch.nn.functional.l1_loss(guided_forward(model, batch), batch["hq"])
    return l1, float(l1.detach()), 0.0


def guided_val_cells(cfg: TrainConfig, images: list[np.ndarray]) -> Cells:
    """Validation pairs ``(jpeg_bytes, hq)`` per cell, encoded once as the training patches are."""
    return val_cells(cfg, images, as_files=True)


def _restore(model: nn.Module, jpeg: bytes, device: torch.device) -> np.ndarray:
    # As the qcn / qgcn / ijcn methods restore a file: its own tables, the whole image.
    coefs = read_coefficients(jpeg)
    if isinstance(model, IJCN):
        return restore_ijcn(model, coefs, device=device)[0]
    n_maps = model.config["in_channel"] - model.config["out_channel"]
    return restore_qcn(model, decode(jpeg), list(coefs.qtables[:n_maps]), device=device)[0]


def guided_validate(model: nn.Module, cells: Cells, device: torch.device) -> dict[str, float]:
    """Mean PSNR per cell and overall ``"mean"`` of the restored validation JPEGs."""
    return score_cells(model, cells, lambda jpeg: _restore(model, jpeg, device))


def guided_jpeg_psnr(cells: Cells) -> dict[str, float]:
    """The JPEG input's PSNR per cell and overall ``"mean"``."""
    out = {name: float(np.mean([_psnr(hq, decode(jpeg)) for jpeg, hq in pairs])) for name, pairs in cells}
    out["mean"] = float(np.mean(list(out.values())))
    return out
