"""The results table's schema and its Parquet file (rows plus the run's metadata document).

The results file
----------------
A Parquet file whose schema metadata key ``jpegbench`` holds a JSON document
(:data:`RESULTS_FORMAT`, the corpus path and manifest hash, the recipe text
and its hash, software versions, the metric conventions, the estimator and
the weights of every method). :func:`read_results` refuses files without it.

``qf_source`` (where ``qf_used`` came from, one of
:data:`jpegbench.models.QF_SOURCES`; empty for ``jpeg``) was added after
the first files were written: :func:`read_results` (and
:func:`write_results`, for tables without it) fills it in from what those
runs could do (``fbcnn`` and ``fbcnn-a``: ``predicted``; ``fbcnn-d``:
``dominant`` where ``qf_used`` is the estimate, else ``predicted``, its
fallback).

``color_path`` (how the method restored the image: ``gray``, ``color`` for
a colour model, ``luma`` for a gray model on an RGB image's Y channel;
empty for ``jpeg``) came later still: for older files it is filled in from
the sample's ``color`` and what those runs could do (FBCNN methods on
colour: ``luma``, the only path then; the table-guided methods: the image's
own, ``gray`` or ``color``).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from jpegbench import __version__
from jpegbench._fs import ensure_dir
from jpegbench._fs import atomic_write
from jpegbench.errors import InputError, ResultsError

__all__ = ["RESULTS_FORMAT", "RESULT_COLUMNS", "empty_results", "typed_results", "write_results", "read_results"]

RESULTS_FORMAT = "jpegbench-results"
_FORMAT_VERSION = 1
_META_KEY = b"jpegbench"

#: Columns of a results table, in order, with their dtypes.
RESULT_COLUMNS: dict[str, str] = {
    "sample_id": "str", "method": "str", "source": "str", "color": "str",
    "qf1": "int64", "qf2": "int64", "shift_dy": "int64", "shift_dx": "int64", "aligned": "bool",
    "regime": "str", "dominant_qf": "int64", "n_jpeg": "int64",
    "encoder": "str", "encoder_version": "str", "width": "int64", "height": "int64",
    "psnr": "float64", "ssim": "float64", "psnrb": "float64",
    "qf_predicted": "float64", "qf_used": "float64", "qf_source": "str", "color_path": "str",
    "qf_estimated": "float64",
    "qf_estimate_verdict": "str", "qf_estimate_confidence": "float64", "qf_last_tables": "int64",
    "seconds": "float64", "device": "str",
    "weights": "str", "weights_sha256": "str", "weights_shipped": "bool",
    "conventions": "str", "jpegbench_version": "str",
}  # fmt: skip


def empty_results() -> pd.DataFrame:
    """A results table with no rows and the columns and dtypes of :data:`RESULT_COLUMNS`."""
    return pd.DataFrame({c: pd.Series(dtype=object if t == "str" else t) for c, t in RESULT_COLUMNS.items()})


def typed_results(df: pd.DataFrame) -> pd.DataFrame:
    """The :data:`RESULT_COLUMNS` of ``df``, in order, cast to their dtypes (missing strings become ``""``)."""
    out = {}
    for c, t in RESULT_COLUMNS.items():
        col = df[c]
        if t == "str":
            out[c] = col.map(lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)).astype(object)
        else:
            out[c] = col.astype(t)
    return pd.DataFrame(out, index=df.index)


def write_results(results: pd.DataFrame, path: str | os.PathLike[str], meta: Mapping[str, Any]) -> Path:
    """Write a results table with its run metadata atomically (temporary file, ``os.replace``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    results = _with_added_columns(results)  # a table made before those columns
    missing = [c for c in RESULT_COLUMNS if c not in results.columns]
    if missing:
        raise InputError(f"results lack column(s) {', '.join(missing)}")
    table = pa.Table.from_pandas(typed_results(results).reset_index(drop=True), preserve_index=False)
    doc = {"format": RESULTS_FORMAT, "format_version": _FORMAT_VERSION, **meta}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), _META_KEY: json.dumps(doc).encode()})
    ensure_dir(path.parent)
    return atomic_write(path, lambda f: pq.write_table(table, f))


def read_results(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a results file written by :func:`jpegbench.evaluate.evaluate`.

    Returns
    -------
    DataFrame
        The rows; ``df.attrs["jpegbench"]`` holds the run metadata (corpus,
        recipe, versions, conventions, weights).

    Raises
    ------
    ResultsError
        Missing file, not Parquet, or a Parquet file that jpegbench did not write.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = Path(path)
    if not p.is_file():
        raise ResultsError(f"{p}: no such results file")
    try:
        table = pq.read_table(p)
    except (pa.ArrowException, OSError) as exc:
        raise ResultsError(f"{p}: not a Parquet results file ({str(exc).splitlines()[0]})") from None
    raw = (table.schema.metadata or {}).get(_META_KEY)
    try:
        meta = json.loads(raw) if raw else None
    except ValueError:
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != RESULTS_FORMAT:
        raise ResultsError(f"{p}: not a jpegbench results file (no '{_META_KEY.decode()}' metadata); "
                           "make one with `jpegbench evaluate`")
    if int(meta.get("format_version", 0)) > _FORMAT_VERSION:
        raise ResultsError(f"{p}: results format version {meta.get('format_version')} is newer than this "
                           f"jpegbench ({__version__}) reads ({_FORMAT_VERSION})")
    df = _with_added_columns(table.to_pandas())
    missing = [c for c in RESULT_COLUMNS if c not in df.columns]
    if missing:
        raise ResultsError(f"{p}: results file lacks column(s) {', '.join(missing)}")
    df = typed_results(df)
    df.attrs["jpegbench"] = meta
    return df


def _with_added_columns(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with the columns added after the first files were written (``qf_source``, ``color_path``) filled in."""
    if "qf_source" not in df.columns and "method" in df.columns:
        df = df.assign(qf_source=_old_qf_source(df))
    if "color_path" not in df.columns and {"method", "color"} <= set(df.columns):
        df = df.assign(color_path=_old_color_path(df))
    return df


def _old_qf_source(df: pd.DataFrame) -> pd.Series:
    """``qf_source`` of a file written before the column existed (only FBCNN methods could be evaluated then)."""
    used, est = df.get("qf_used"), df.get("qf_estimated")
    dominant = (used == est) if used is not None and est is not None else pd.Series(False, index=df.index)
    source = {"fbcnn": "predicted", "fbcnn-a": "predicted"}
    out = df["method"].map(lambda m: source.get(str(m), "")).astype(object)
    d = df["method"] == "fbcnn-d"
    out[d] = ["dominant" if bool(x) else "predicted" for x in dominant[d]]
    return out


def _old_color_path(df: pd.DataFrame) -> pd.Series:
    """``color_path`` of a file written before the column existed (FBCNN restored colour on the luma only then)."""
    fbcnn = df["method"].astype(str).isin(["fbcnn", "fbcnn-d", "fbcnn-a"])
    gray = df["color"].astype(str) == "gray"
    out = pd.Series(["gray" if g else "color" for g in gray], index=df.index, dtype=object)
    out[fbcnn & ~gray] = "luma"
    out[df["method"].astype(str) == "jpeg"] = ""
    return out
