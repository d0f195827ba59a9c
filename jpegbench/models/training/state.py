"""A run's resumable state ``last.pt``: what it holds, writing it, reading it back and checking it fits the config.

``last.pt`` is a jpegbench checkpoint (written by
:func:`jpegbench.models.weights.save_checkpoint`, so
:func:`~jpegbench.models.weights.load_model` reads it, or
:func:`~jpegbench.models.load_guided_model` for QCN, QGCN, IJCN) with one more
top-level entry, ``"training"``: step, wall time, optimizer, scheduler, best
validation so far, the teacher-forcing RNG, the open log window and the
config it was trained with.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import torch
from torch import nn

from jpegbench.errors import ConfigError
from jpegbench.models.training.config import RESUMABLE_CHANGES, SECTIONS, TrainConfig, saved_value, where
from jpegbench.models.weights import CHECKPOINT_FORMAT, DEFAULT_MAX_BYTES, GUIDED_CHECKPOINT_FORMAT, save_checkpoint

__all__ = ["run_meta", "save_state", "read_state", "check_resumable", "load_scheduler_state"]


def run_meta(
    cfg: TrainConfig, step: int, seconds: float, n_train: int, n_val: int, init: Any, val: dict | None
) -> dict:
    """The ``meta`` of the run's checkpoints: recipe, data, steps, wall time, validation."""
    return {
        "name": cfg.name,
        "architecture": cfg.arch,
        "trained_with": "jpegbench.models.train",
        "steps": int(step),
        "wall_seconds": round(float(seconds), 1),
        "data": {
            "train_dir": str(cfg.path("train_dir")),
            "train_images": n_train,
            "val_images": n_val,
            "color": "gray (BT.601 studio-swing Y)" if cfg.channels == 1 else "rgb",
            "encoder": f"pillow (libjpeg-turbo), IJG tables, {cfg.subsampling} for colour",
        },
        "init_from": init,
        "val_psnr": val,
        "train_config": cfg.to_dict(),
    }


def _scheduler_state(scheduler: Any) -> dict[str, Any]:
    # MultiStepLR keeps its milestones in a Counter, which weights_only
    # loading refuses; store a plain dict.
    state = dict(scheduler.state_dict())
    if "milestones" in state:
        state["milestones"] = {int(k): int(v) for k, v in state["milestones"].items()}
    return state


def load_scheduler_state(scheduler: Any, state: dict[str, Any]) -> None:
    """Restore a scheduler from what :func:`save_state` stored."""
    state = dict(state)
    if "milestones" in state:
        state["milestones"] = Counter(state["milestones"])
    scheduler.load_state_dict(state)


def save_state(
    path: Path,
    model: nn.Module,
    *,
    meta: dict[str, Any],
    step: int,
    seconds: float,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    best: float,
    best_step: int,
    last_val: dict[str, float] | None,
    torch_rng: torch.Generator,
    log_window: dict[str, Any],
    cfg: TrainConfig,
) -> Path:
    """Write ``last.pt`` atomically: the model as a checkpoint, plus the ``"training"`` entry."""
    training = {
        "step": step,
        "seconds": seconds,
        "optimizer": optimizer.state_dict(),
        "scheduler": _scheduler_state(scheduler),
        "best_val_psnr": best,
        "best_step": best_step,
        "last_val": last_val or {},
        "torch_rng": torch_rng.get_state(),
        "log_window": dict(log_window),
        "train_config": cfg.to_dict(),
    }
    return save_checkpoint(model, path, meta=meta, extra={"training": training})


def read_state(path: Path) -> dict[str, Any]:
    """Read ``last.pt`` safely (size checked first, ``weights_only``); a bad file is a ConfigError."""
    size = path.stat().st_size
    if size > DEFAULT_MAX_BYTES:  # checked before reading, as for weight files
        raise ConfigError(f"cannot resume from {path}: {size} bytes, over the limit of {DEFAULT_MAX_BYTES} "
                          "bytes for a training state; pass resume=False (CLI --no-resume) to start over")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user problem
        raise ConfigError(f"cannot resume from {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}; "
                          "pass resume=False (CLI --no-resume) to start over") from None
    formats = (CHECKPOINT_FORMAT, GUIDED_CHECKPOINT_FORMAT)
    if not isinstance(state, dict) or state.get("format") not in formats or "training" not in state:
        raise ConfigError(f"cannot resume from {path}: not a jpegbench training state; pass resume=False to start over")
    return state


def check_resumable(cfg: TrainConfig, state: dict[str, Any], path: Path) -> None:
    """Refuse to resume a state trained with another recipe (only steps and bookkeeping may change)."""
    saved = state["training"].get("train_config", {})
    now = cfg.to_dict()
    for section, keys in SECTIONS.items():
        a = saved.get(section, {}) if section else saved
        b = now.get(section, {}) if section else now
        for key in keys:
            if key in RESUMABLE_CHANGES:
                continue
            there = saved_value(a, key)
            if there != b.get(key):
                raise ConfigError(
                    f"{path} was trained with a different config (key '{where(key)}': {there!r} there, "
                    f"{b.get(key)!r} now); use another output folder or resume=False (CLI --no-resume)"
                )
    if int(state["training"]["step"]) > cfg.steps:
        raise ConfigError(
            f"{path} is at step {state['training']['step']}, past the config's 'optim.steps' ({cfg.steps})"
        )
