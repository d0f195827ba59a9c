"""Turn a run's checkpoint into a shippable weight file: model and meta only, float16, no absolute path."""

from __future__ import annotations

import ntpath
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jpegbench.models.fbcnn import FBCNN
from jpegbench.models.weights import (
    DEFAULT_MAX_BYTES,
    GUIDED_CHECKPOINT_FORMAT,
    _checkpoint,
    _read,
    resolve_weights,
    save_checkpoint,
)

__all__ = ["export_weights", "strip_absolute_paths"]


def _is_absolute(value: str) -> bool:
    return os.path.isabs(value) or ntpath.isabs(value)


def strip_absolute_paths(meta: Any) -> Any:
    """``meta`` with every absolute path string replaced by its last component.

    A shipped file must not record the training machine's folders (who
    trained it where): ``/home/x/shared/data/BSDS500_trainval`` becomes
    ``BSDS500_trainval``. Relative paths (as the configs write them) stay.
    """
    if isinstance(meta, str):
        return (ntpath.basename(meta.rstrip("/\\")) or meta) if _is_absolute(meta) else meta
    if isinstance(meta, Mapping):
        return {k: strip_absolute_paths(v) for k, v in meta.items()}
    if isinstance(meta, (list, tuple)):
        return type(meta)(strip_absolute_paths(v) for v in meta)
    return meta


def export_weights(
    checkpoint: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    half: bool = True,
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write a shippable copy of a training checkpoint (model + meta, no optimizer).

    Parameters
    ----------
    checkpoint : path
        ``best.pt`` or ``last.pt`` of a run (FBCNN, or QCN / QGCN / IJCN,
        which stay in the ``jpegbench-guided`` format that
        :func:`jpegbench.models.load_guided_model` reads).
    dest : path
    half : bool, default True
        Store float16 (loaded back as float32).
    meta : mapping, optional
        Extra entries merged into the checkpoint's meta. ``qf_patch``
        defaults to the run's training patch size.

    Returns
    -------
    Path

    Notes
    -----
    Absolute paths in the meta (the run's ``train_dir``, an ``init_from``
    file) are reduced to their last component
    (:func:`strip_absolute_paths`).
    """
    # Read once (a run's last.pt carries the optimizer too), then built by the loader of its format.
    path = resolve_weights(checkpoint)
    raw = _read(path, DEFAULT_MAX_BYTES)
    if isinstance(raw, dict) and raw.get("format") == GUIDED_CHECKPOINT_FORMAT:
        from jpegbench.models.guided_weights import _guided_model

        model = _guided_model(raw, path)
        merged = {k: v for k, v in model.checkpoint_meta.items() if k != "versions"}
    else:
        ckpt = _checkpoint(raw, path)
        model = FBCNN.from_config(ckpt.config)
        model.load_state_dict(ckpt.state_dict, strict=True)
        merged = {k: v for k, v in ckpt.meta.items() if k != "versions"}
        # The QF predictor is read at the size it was trained on (see inference.predict_qf).
        tc = ckpt.meta.get("train_config")
        data = tc.get("data") if isinstance(tc, dict) else None
        patch = data.get("patch_size") if isinstance(data, dict) else None
        if isinstance(patch, int) and not isinstance(patch, bool):
            merged.setdefault("qf_patch", patch)
    merged.update(dict(meta or {}))
    merged["exported_from"] = Path(checkpoint).name
    merged["storage"] = "float16" if half else "float32"
    return save_checkpoint(model, dest, meta=strip_absolute_paths(merged), half=half)
