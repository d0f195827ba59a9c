"""What a run trains and validates on: source split, seeded patch batches, validation cells and their PSNR.

The batch of step ``s`` is a function of ``(seed, s)`` only: epoch ``e``
visits the items in a permutation seeded by ``(seed, e)`` and the dataset's
items depend on ``(seed, epoch, index)``
(:class:`jpegbench.synth.PatchDataset`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from jpegbench._config import config_error
from jpegbench.codec import encode, jpeg_roundtrip, list_images, read_image
from jpegbench.metrics import psnr
from jpegbench.models.fbcnn import FBCNN
from jpegbench.models.inference import _to_tensor
from jpegbench.models.training.config import _LABEL, TrainConfig

__all__ = [
    "Cells", "split_sources", "make_dataset", "step_items", "batch_at", "val_images", "val_cells", "score_cells",
    "validate", "jpeg_psnr",
]  # fmt: skip

#: Validation cells: ``(name, [(lq, hq), ...])`` with uint8 pixels.
Cells = list[tuple[str, list[tuple[np.ndarray, np.ndarray]]]]

# An exact restoration would make metrics.psnr infinite; the run's meta must
# hold finite numbers (and the log always capped the cell PSNR here).
_PSNR_CAP = 100.0


def _color(cfg: TrainConfig) -> str:
    return "gray" if cfg.channels == 1 else "rgb"


def split_sources(cfg: TrainConfig) -> tuple[list[Path], list[Path]]:
    """Training and validation image files: ``val_dir``, or the last ``val_count`` of ``train_dir`` by name."""
    train_dir = cfg.path("train_dir")
    if train_dir is None or not train_dir.is_dir():
        raise config_error(_LABEL, "data.train_dir", "an existing folder", repr(cfg.train_dir))
    files = list_images(train_dir)
    if cfg.val_dir is not None:
        val_dir = cfg.path("val_dir")
        if val_dir is None or not val_dir.is_dir():
            raise config_error(_LABEL, "data.val_dir", "an existing folder", repr(cfg.val_dir))
        val = list_images(val_dir)[: cfg.val_count or None]
        overlap = {p.resolve() for p in val} & {p.resolve() for p in files}
        files = [p for p in files if p.resolve() not in overlap]
    else:
        if cfg.val_count >= len(files):
            raise config_error(_LABEL, "data.val_count", f"fewer than the {len(files)} images in {train_dir}",
                               f"{cfg.val_count}, which leaves no training image")
        val = files[len(files) - cfg.val_count :] if cfg.val_count else []
        files = files[: len(files) - cfg.val_count]
    if not val:
        raise config_error(_LABEL, "data.val_count", ">= 1 (validation needs images)", "0")
    return files, val


def make_dataset(cfg: TrainConfig, files: list[Path]) -> tuple[Any, int]:
    """The run's :class:`~jpegbench.synth.PatchDataset` (images preloaded) and its batches per epoch."""
    from jpegbench.synth.dataset import JpegDegradation, PatchDataset

    degradation = JpegDegradation(
        mode=cfg.degradation,  # type: ignore[arg-type]
        qf_range=cfg.qf_range,
        qf2_range=cfg.qf2_range,
        double_prob=cfg.double_prob,
        shift=cfg.shift,
        subsampling=cfg.subsampling,
    )
    n = len(files)
    per_epoch = -(-n // cfg.batch_size)
    dataset = PatchDataset(
        files,
        patch_size=cfg.patch_size,
        color=_color(cfg),  # type: ignore[arg-type]
        degradation=degradation,
        seed=cfg.seed,
        length=per_epoch * cfg.batch_size,
        augment=cfg.augment,
        preload=True,
    )
    return dataset, per_epoch


def _step_indices(dataset: Any, per_epoch: int, cfg: TrainConfig, step: int) -> list[int]:
    # Epoch e visits the items in a permutation seeded by (seed, e); the dataset is set to that epoch.
    epoch, pos = divmod(step, per_epoch)
    order = np.random.default_rng(np.random.SeedSequence(cfg.seed, spawn_key=(1, epoch))).permutation(len(dataset))
    dataset.set_epoch(epoch)
    return [int(i) for i in order[pos * cfg.batch_size : (pos + 1) * cfg.batch_size]]


def step_items(dataset: Any, per_epoch: int, cfg: TrainConfig, step: int) -> list[Any]:
    """The dataset's samples (``dataset.sample(i)``) of 0-based ``step``: a function of (seed, step) only."""
    return [dataset.sample(i) for i in _step_indices(dataset, per_epoch, cfg, step)]


def batch_at(dataset: Any, per_epoch: int, cfg: TrainConfig, step: int) -> dict[str, torch.Tensor]:
    """The batch of 0-based ``step``: a function of (seed, step) only."""
    items = [dataset[i] for i in _step_indices(dataset, per_epoch, cfg, step)]
    return {k: torch.stack([it[k] for it in items]) for k in ("lq", "hq", "qf", "is_double")}


def val_images(cfg: TrainConfig, files: list[Path]) -> list[np.ndarray]:
    """The validation images in the run's colour, centre-cropped to ``val_crop`` on the 8x8 grid."""
    out = []
    for p in files:
        img = read_image(p, color=_color(cfg))
        if cfg.val_crop:
            c = cfg.val_crop
            h, w = img.shape[:2]
            top, left = max(0, (h - c) // 2) // 8 * 8, max(0, (w - c) // 2) // 8 * 8
            img = np.ascontiguousarray(img[top : top + c, left : left + c])
        out.append(img)
    return out


def val_cells(cfg: TrainConfig, images: list[np.ndarray], *, as_files: bool = False) -> Cells:
    """Pre-compressed validation pairs (lq, hq) per cell, computed once, with the training encoder settings.

    ``lq`` is the decoded JPEG, or with ``as_files`` the JPEG file's bytes
    (what the table-guided networks read).
    """
    from jpegbench.synth.degrade import double_jpeg

    single = encode if as_files else jpeg_roundtrip
    cells: Cells = []
    for qf in cfg.val_qfs:
        cells.append((f"qf{qf}", [(single(img, qf, subsampling=cfg.subsampling), img) for img in images]))
    for qf1, qf2 in cfg.val_double:
        pairs = []
        for img in images:
            res = double_jpeg(img, qf1, qf2, cfg.val_shift, subsampling=cfg.subsampling)
            pairs.append((res.lq_bytes if as_files else res.lq_pixels, res.hq_pixels))
        cells.append((f"d{qf1}-{qf2}", pairs))
    return cells


def _psnr(hq: np.ndarray, test: np.ndarray) -> float:
    return min(psnr(hq, test), _PSNR_CAP)


def _planes(pixels: np.ndarray) -> np.ndarray:
    # (H, W) or (H, W, 3) uint8 -> a (1, C, H, W) batch, as inference runs it.
    return pixels[None, None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)[None]


@torch.no_grad()
def score_cells(model: torch.nn.Module, cells: Cells, restore: Callable[[Any], np.ndarray]) -> dict[str, float]:
    """Mean PSNR of ``restore(lq)`` per cell and overall ``"mean"``, ``model`` in eval mode meanwhile.

    The one scoring of a run's validation, whatever restores (FBCNN here,
    the table-guided networks in :mod:`.guided`).
    """
    was_training = model.training
    model.eval()
    out = {name: float(np.mean([_psnr(hq, restore(lq)) for lq, hq in pairs])) for name, pairs in cells}
    out["mean"] = float(np.mean([out[n] for n, _ in cells]))
    model.train(was_training)
    return out


def validate(model: FBCNN, cells: Cells, device: torch.device) -> dict[str, float]:
    """Mean PSNR (8-bit output, blind; over R, G, B for colour) per cell and overall ``"mean"``."""

    def restore(lq: np.ndarray) -> np.ndarray:
        restored, _ = model(_to_tensor(_planes(lq), device))
        y = restored.clamp(0, 1).mul(255).round().to(torch.uint8).cpu().numpy()[0]
        return y[0] if y.shape[0] == 1 else y.transpose(1, 2, 0)

    return score_cells(model, cells, restore)


def jpeg_psnr(cells: Cells) -> dict[str, float]:
    """The JPEG input's PSNR per cell and overall ``"mean"``: what the model must beat."""
    out = {name: float(np.mean([_psnr(hq, lq) for lq, hq in pairs])) for name, pairs in cells}
    out["mean"] = float(np.mean(list(out.values())))
    return out
