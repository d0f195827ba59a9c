"""The sidecar files the report reads: example crops with their MSE curves, the flexibility table, real-world crops.

``<stem>.examples.npz``: for one example sample (the non-aligned double JPEG
with the largest QF2 - QF1 > 0, else the first sample), a centre crop of the
JPEG, the clean image and every method's output, and the sample's 64 MSE
curves (written by :func:`jpegbench.evaluate.evaluate`).
``<stem>.flexibility.csv`` is written by :func:`jpegbench.pipeline.run_demo`
(see :func:`jpegbench.evaluate.flexibility`).
A real-world sidecar (any ``*.npz`` name, :func:`read_realworld`) is written by
:func:`jpegbench.evaluate.realworld`: crops of real JPEGs restored three ways,
with the QFs used.
"""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from jpegbench._fs import write_atomic
from jpegbench.codec import to_gray
from jpegbench.errors import JpegbenchError, ResultsError

__all__ = ["REALWORLD_FORMAT", "REALWORLD_PATHS", "crop_box", "examples_path", "flexibility_path", "read_examples",
           "read_realworld", "example_sample_id", "update_examples", "write_realworld"]

REALWORLD_FORMAT = "jpegbench-realworld"
#: The three ways :func:`jpegbench.evaluate.realworld` chooses FBCNN's QF, in display order.
REALWORLD_PATHS = ("blind", "dominant", "manual")

_CROP = 96


def crop_box(shape: tuple[int, ...], crop: int) -> list[int]:
    """``[y0, x0, h, w]`` of a centred square crop of at most ``crop`` pixels, its corner on the 8x8 grid."""
    h, w = shape[:2]
    c = min(crop, h, w)
    return [(h - c) // 2 // 8 * 8, (w - c) // 2 // 8 * 8, c, c]


def _write_npz(path: Path, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> Path:
    """The layout of every ``.npz`` sidecar: ``meta`` as a JSON string, then the arrays; written atomically."""
    buf = io.BytesIO()
    np.savez_compressed(buf, meta=np.array(json.dumps(meta)), **arrays)
    return write_atomic(path, buf.getvalue())


def examples_path(results_path: str | os.PathLike[str]) -> Path:
    """``<stem>.examples.npz`` next to a results file."""
    p = Path(results_path)
    return p.with_name(f"{p.stem}.examples.npz")


def flexibility_path(results_path: str | os.PathLike[str]) -> Path:
    """``<stem>.flexibility.csv`` next to a results file."""
    p = Path(results_path)
    return p.with_name(f"{p.stem}.flexibility.csv")


def read_examples(results_path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The example-crop sidecar of a results file, or None when there is none.

    Returns
    -------
    dict or None
        ``meta`` (dict: sample_id, qf1, qf2, shift, box, per-method PSNR and
        QF used, and with the curves their geometry and the estimate read
        from them), ``crops`` (dict of name -> uint8 crop: ``jpeg_input``,
        ``hq`` and one per method) and, when they were computed,
        ``mse_curves`` (float array ``(8, 8, n_qf)``) with ``mse_qfs``.
    """
    p = examples_path(results_path)
    if not p.is_file():
        return None
    try:
        with np.load(p, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            crops = {k.removeprefix("crop_"): z[k] for k in z.files if k.startswith("crop_")}
            out = {"meta": meta, "crops": crops}
            for k in ("mse_curves", "mse_qfs"):
                if k in z.files:
                    out[k] = z[k]
    except (OSError, ValueError, KeyError) as exc:
        raise ResultsError(f"{p}: unreadable examples file ({exc})") from None
    return out


def read_realworld(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A real-world sidecar written by :func:`jpegbench.evaluate.realworld`.

    Returns
    -------
    dict
        ``meta`` (``manual_qf``, ``estimator``, ``images``: per image its
        ``name``, size, ``color_path``, ``qf_tables``, ``qf_predicted`` and
        per path ``qf_used`` / ``qf_source``; ``skipped``; ``weights``) and
        ``crops``: one dict per image, ``jpeg`` and each of
        :data:`REALWORLD_PATHS` -> uint8 crop.

    Raises
    ------
    ResultsError
        Missing, unreadable, or not such a sidecar.
    """
    p = Path(path)
    if not p.is_file():
        raise ResultsError(f"{p}: no such real-world file")
    try:
        with np.load(p, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if not isinstance(meta, dict) or meta.get("format") != REALWORLD_FORMAT:
                raise ValueError("not a jpegbench real-world file")
            crops = [{k: z[f"crop_{i}_{k}"] for k in ("jpeg", *REALWORLD_PATHS)} for i in range(len(meta["images"]))]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ResultsError(f"{p}: unreadable real-world file ({exc})") from None
    return {"meta": meta, "crops": crops}


def write_realworld(path: str | os.PathLike[str], meta: Mapping[str, Any],
                    crops: Sequence[Mapping[str, np.ndarray]]) -> Path:
    """Write a real-world sidecar (atomically) for :func:`read_realworld`.

    ``meta`` is the document :func:`read_realworld` returns, less its
    ``format`` and ``paths``, which this function adds; ``crops`` holds per
    image of ``meta["images"]`` its ``jpeg`` crop and one per :data:`REALWORLD_PATHS`.
    """
    doc = {"format": REALWORLD_FORMAT, "paths": list(REALWORLD_PATHS), **meta}
    return _write_npz(Path(path), doc, {f"crop_{i}_{k}": v for i, c in enumerate(crops) for k, v in c.items()})


def example_sample_id(manifest: pd.DataFrame) -> str:
    """The non-aligned double JPEG with the largest QF2 - QF1 > 0 (first in manifest order), else the first sample."""
    m = manifest.reset_index(drop=True)
    gap = m["qf2"].astype(int) - m["qf1"].astype(int)
    pick = m[(~m["aligned"].astype(bool)) & (gap > 0) & (m["shift_dy"].astype(int) >= 0)]
    if pick.empty:
        return str(m["sample_id"].iloc[0])
    return str(m.loc[gap[pick.index].idxmax(), "sample_id"])


def update_examples(
    out_path: Path,
    state: dict[str, Any] | None,
    row: Mapping[str, Any],
    lq: np.ndarray,
    hq: np.ndarray,
    crops: Mapping[str, np.ndarray],
    rows: Sequence[Mapping[str, Any]],
    est: Any,
) -> dict[str, Any]:
    """Add the example sample's new method outputs to the sidecar of ``out_path`` and rewrite it atomically.

    ``state`` is the sidecar read so far (:func:`read_examples`, or the value
    this function returned last), None to start it; ``rows`` are the result
    rows holding each method's PSNR and QF used; ``est`` is the sample's
    :class:`~jpegbench.estimate.QFEstimateResult` (its curves are stored when
    it keeps them, otherwise computed), or None. Returns the new state.
    """
    box = crop_box(lq.shape, _CROP)
    y0, x0, c, _ = box
    sid = str(row["sample_id"])
    if state is None or state["meta"].get("sample_id") != sid:
        state = {"meta": {"sample_id": sid, "qf1": int(row["qf1"]), "qf2": int(row["qf2"]),
                          "shift": [int(row["shift_dy"]), int(row["shift_dx"])], "box": box,
                          "dominant_qf": int(row["dominant_qf"]), "psnr": {}, "qf_used": {}},
                 "crops": {"jpeg_input": lq[y0:y0 + c, x0:x0 + c], "hq": hq[y0:y0 + c, x0:x0 + c]}}
        curves = getattr(est, "curves", None)  # the estimator's own curves, when it keeps them
        try:
            if curves is None:
                from jpegbench.estimate import mse_curves

                curves = mse_curves(to_gray(lq), backend="fast")
            arrays = curves.to_arrays()
            # The sidecar's own layout: the curves' arrays under mse_*, their geometry in the meta document.
            state["mse_curves"], state["mse_qfs"] = arrays["mse"], arrays["qfs"]
            state["meta"]["curves"] = {"backend": str(curves.backend), "image_shape": list(curves.image_shape),
                                       "crop_shape": list(curves.crop_shape)}
            if est is not None:
                # uncompressed / undetermined verdicts carry no QF and no shift
                state["meta"]["estimate"] = {"qf_last": None if est.qf_last is None else int(est.qf_last),
                                             "qf_dominant": None if est.qf_dominant is None else int(est.qf_dominant),
                                             "shift": None if est.shift is None else [int(v) for v in est.shift],
                                             "verdict": str(est.verdict),
                                             "confidence": float(est.confidence), "estimator": str(est.estimator),
                                             "qf_first": None if est.qf_first is None else int(est.qf_first)}
        except JpegbenchError:
            pass  # e.g. an image too small for the curves: the report says the figure is missing
    for m, img in crops.items():
        state["crops"][m] = img[y0:y0 + c, x0:x0 + c]
        r = next(r for r in reversed(rows) if r["sample_id"] == sid and r["method"] == m)
        state["meta"]["psnr"][m] = r["psnr"]
        state["meta"]["qf_used"][m] = None if math.isnan(r["qf_used"]) else r["qf_used"]
    arrays = {f"crop_{k}": v for k, v in state["crops"].items()}
    for k in ("mse_curves", "mse_qfs"):
        if k in state:
            arrays[k] = np.asarray(state[k])
    _write_npz(examples_path(out_path), state["meta"], arrays)
    return state
