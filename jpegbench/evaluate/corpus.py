"""A corpus as evaluation reads it: its checked manifest and each sample's JPEG, ground truth and table QF."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from jpegbench._fs import sha256_file
from jpegbench.codec import qf_from_qtables, read_header, read_image
from jpegbench.errors import CorpusError, ImageReadError, JpegbenchError

__all__ = ["MANIFEST_COLUMNS", "read_corpus_manifest", "load_sample", "n_jpeg"]

#: Manifest columns evaluation needs.
MANIFEST_COLUMNS = ("sample_id", "source", "color", "qf1", "qf2", "shift_dy", "shift_dx", "aligned", "regime",
                    "dominant_qf", "encoder", "encoder_version", "lq_path", "hq_path")  # fmt: skip


def read_corpus_manifest(corpus: Path) -> pd.DataFrame:
    """The manifest of ``corpus``, checked for what evaluation needs (columns, samples, unique ids).

    Raises
    ------
    CorpusError
        No such folder, no manifest, or a manifest evaluation cannot use.
    """
    if not corpus.is_dir():
        raise CorpusError(f"{corpus}: no such corpus directory")
    if not (corpus / "manifest.parquet").is_file():
        raise CorpusError(f"{corpus}: not a corpus (no manifest.parquet); make one with `jpegbench synth`")
    from jpegbench.synth import read_manifest

    try:
        m = read_manifest(corpus)
    except JpegbenchError as exc:
        raise CorpusError(str(exc)) from None
    missing = [c for c in MANIFEST_COLUMNS if c not in m.columns]
    if missing:
        raise CorpusError(f"{corpus}: manifest lacks column(s) {', '.join(missing)}")
    if m.empty:
        raise CorpusError(f"{corpus}: manifest has no samples")
    if m["sample_id"].duplicated().any():
        raise CorpusError(f"{corpus}: manifest has duplicate sample_id values")
    return m


def n_jpeg(row: Mapping[str, Any]) -> int:
    """Number of JPEG compressions of a manifest row (its ``n_jpeg``, else counted from its stages)."""
    if "n_jpeg" in row and row["n_jpeg"] is not None and not pd.isna(row["n_jpeg"]):
        return int(row["n_jpeg"])
    stages = row.get("stages")
    if isinstance(stages, str) and stages.startswith("["):
        return sum(1 for s in json.loads(stages) if s.get("op") == "jpeg")
    return 1 if int(row["qf2"]) < 0 else 2


def load_sample(corpus: Path, row: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, int]:
    """``(jpeg pixels, ground truth, QF read from the JPEG's tables)`` of a manifest row, hashes checked.

    Raises
    ------
    CorpusError
        A file is missing, differs from its manifest hash, is unreadable, or
        the two images differ in shape.
    """
    lq_path, hq_path = corpus / str(row["lq_path"]), corpus / str(row["hq_path"])
    for p, key in ((lq_path, "lq_sha256"), (hq_path, "hq_sha256")):
        if not p.is_file():
            raise CorpusError(f"{p}: file of sample {row['sample_id']} is missing from the corpus")
        want = row.get(key)
        if isinstance(want, str) and want and sha256_file(p) != want:
            raise CorpusError(f"{p}: sha256 differs from the manifest (corpus modified after synthesis?)")
    try:
        lq, hq = read_image(lq_path), read_image(hq_path)
        tables = read_header(lq_path).component_qtables()
    except ImageReadError as exc:
        raise CorpusError(str(exc)) from None
    if lq.shape != hq.shape:
        raise CorpusError(f"sample {row['sample_id']}: JPEG {lq.shape} and ground truth {hq.shape} differ in shape")
    return lq, hq, qf_from_qtables(tables[:2]).qf
