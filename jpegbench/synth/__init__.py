"""Corpus synthesis: degradation chains, recipes, the corpus writer and a training Dataset.

* :mod:`~jpegbench.synth.degrade`: stages (JPEG, shift, crop, resize) and
  :func:`apply_chain`, which degrades an image and its ground truth alike.
* :mod:`~jpegbench.synth.recipe`: TOML recipes, validated up front.
* :mod:`~jpegbench.synth.corpus`: :func:`synthesize` writes ``lq/``, ``hq/``
  and ``manifest.parquet``; :func:`read_manifest` reads it back.
* :mod:`~jpegbench.synth.dataset`: :class:`JpegDegradation` and
  :class:`PatchDataset` for on-the-fly training (imports torch lazily).
"""

from __future__ import annotations

import importlib

from jpegbench.synth.corpus import CONVENTIONS, MANIFEST_COLUMNS, read_manifest, synthesize
from jpegbench.synth.degrade import (
    CHAIN_KINDS,
    ChainResult,
    CropStage,
    JpegStage,
    ResizeStage,
    ShiftStage,
    Stage,
    apply_chain,
    chain_kind,
    chain_params,
    double_jpeg,
    double_jpeg_class,
    qf_order,
    shift_image,
    stages_from_json,
    stages_to_json,
)
from jpegbench.synth.recipe import Recipe, SampleSpec, load_recipe

__all__ = [
    "ChainResult", "CropStage", "JpegStage", "ResizeStage", "ShiftStage", "Stage", "apply_chain",
    "CHAIN_KINDS", "chain_kind", "chain_params", "double_jpeg", "double_jpeg_class", "qf_order", "shift_image",
    "stages_from_json", "stages_to_json",
    "Recipe", "SampleSpec", "load_recipe", "synthesize", "read_manifest", "MANIFEST_COLUMNS", "CONVENTIONS",
    "JpegDegradation", "PatchDataset",
]  # fmt: skip

_LAZY = {"JpegDegradation": "jpegbench.synth.dataset", "PatchDataset": "jpegbench.synth.dataset"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'jpegbench.synth' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
