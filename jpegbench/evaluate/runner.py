"""The restore-and-score runner: every sample of a corpus through each method, measured, into a resumable results table.

One row per (sample, method). Each row carries the sample's ground truth
from the corpus manifest, the metrics of the restored image against the
clean one (PSNR / SSIM / PSNR-B with the defaults of :mod:`jpegbench.metrics`),
the QFs involved (the network's prediction, the QF it used, the dominant-QF
estimate on the JPEG image, the QF of the file's quantization tables), the
runtime, the device and the weights used, and the conventions.

Resuming
--------
With ``resume=True`` an existing results file is read, its (sample, method)
rows are kept and skipped, and the file is rewritten atomically (temporary
file, then ``os.replace``) every ``save_every`` samples. A run killed at any
point loses at most the last batch; rerunning ends with the same table
(runtime columns aside). Rows are always sorted in manifest order, then
method order.

A run holds the lock file ``.NAME.lock`` next to the results file ``NAME``
from before it reads the file until its last save: a second run on the same
file fails at once with :class:`~jpegbench.errors.LockError` instead of
overwriting the first one's rows (a lock whose process is gone is taken
over, as in ``synth``). Holding it, the run first deletes the temporary files
(``.NAME.XXXXXXXX.part``) a killed run left next to the results file and its
examples sidecar.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from jpegbench import __version__
from jpegbench._fs import ensure_dir
from jpegbench.codec import to_gray
from jpegbench._fs import remove_stale_parts
from jpegbench._progress import progress_bar
from jpegbench.errors import InputError, JpegbenchError, ResultsError
from jpegbench.estimate.api import ESTIMATORS
from jpegbench.estimate.cache import CurveCache
from jpegbench.evaluate.corpus import load_sample, n_jpeg, read_corpus_manifest
from jpegbench.evaluate.provenance import device_name, manifest_hash, recipe_text, software_versions, weights_info
from jpegbench.evaluate.results import empty_results, read_results, typed_results, write_results
from jpegbench.evaluate.sidecars import (
    example_sample_id,
    examples_path,
    flexibility_path,
    read_examples,
    update_examples,
)
from jpegbench.metrics import METRIC_CONVENTIONS, psnr, psnrb, ssim

__all__ = ["evaluate", "valid_methods"]


def valid_methods() -> tuple[str, ...]:
    """The restoration methods :func:`evaluate` runs, in the results' method order."""
    from jpegbench.models.methods import METHODS

    return METHODS


def _check_methods(methods: Sequence[str] | str, weights: Mapping[str, Any] | None) -> tuple[str, ...]:
    if isinstance(methods, str):
        methods = (methods,)
    valid = valid_methods()
    methods = tuple(dict.fromkeys(methods))
    if not methods:
        raise InputError(f"methods must name at least one method; valid methods: {', '.join(valid)}")
    for m in methods:
        if m not in valid:
            raise InputError(f"unknown method {m!r}; valid methods: {', '.join(valid)}")
    if weights is not None:
        if not isinstance(weights, Mapping):
            raise InputError(f"weights must be a dict of method -> weights path, got {type(weights).__name__}")
        for m in weights:
            if m not in valid or m == "jpeg":
                raise InputError(f"weights given for {m!r}, which has none; methods with weights: "
                                 f"{', '.join(v for v in valid if v != 'jpeg')}")
    return methods


class _CachedEstimate:
    """Hands fbcnn-d the estimate already computed for the current sample."""

    def __init__(self) -> None:
        self.value: Any = None

    def __call__(self, gray: np.ndarray, *, estimator: str, backend: str) -> Any:
        return self.value


def _estimate(lq: np.ndarray, estimator: str, cache: CurveCache | None = None,
              lq_sha256: str = "") -> tuple[Any, float]:
    """The estimate for a sample; an image the estimator refuses gets a verdict ``"error: ..."``.

    The seconds returned are those of computing the curves and the estimate,
    also when the curves came from ``cache`` (they took that long once).
    """
    from jpegbench.estimate import estimate_qf

    start = time.perf_counter()
    try:
        hit = cache.get(lq_sha256) if cache is not None else None
        if hit is not None:
            curves, curve_seconds = hit
            start -= curve_seconds
            est = estimate_qf(None, curves=curves, estimator=estimator)
        else:
            est = estimate_qf(to_gray(lq), estimator=estimator, backend="fast")
            if cache is not None and est.curves is not None:
                cache.put(lq_sha256, est.curves, time.perf_counter() - start)
    except JpegbenchError as exc:
        est = f"error: {exc}"
    return est, time.perf_counter() - start


@contextlib.contextmanager
def _locked_output(out_path: Path | None) -> Iterator[None]:
    """Hold ``.NAME.lock`` next to the results file for the run; first delete a killed run's temporary files.

    Without the lock two runs on one ``out`` would each rewrite the file with
    their own rows only. The second run does not wait: it fails at once
    (:class:`~jpegbench.errors.LockError`), like a second ``synth``. Under
    the lock no live run writes this results file or its sidecar, so their
    ``.NAME.XXXXXXXX.part`` files are a killed run's.
    """
    if out_path is None:
        yield
        return
    from jpegbench._lock import DirLock

    ensure_dir(out_path.parent)
    with DirLock.for_file(out_path):
        for p in (out_path, examples_path(out_path)):
            remove_stale_parts(p)
        yield


def evaluate(
    corpus_dir: str | os.PathLike[str],
    *,
    methods: Sequence[str] | str = ("jpeg",),
    weights_dir: str | os.PathLike[str] | None = None,
    weights: Mapping[str, str | os.PathLike[str]] | None = None,
    device: str | None = None,
    out: str | os.PathLike[str] | None = None,
    estimator: str = "robust",
    progress: bool = True,
    resume: bool = True,
    save_every: int = 16,
    examples: bool = True,
    cache_curves: bool = True,
) -> pd.DataFrame:
    """Restore every sample of a corpus with each method and measure the results.

    Parameters
    ----------
    corpus_dir : path
        A corpus written by :func:`jpegbench.synth.synthesize` (``manifest.parquet``,
        ``lq/``, ``hq/``).
    methods : sequence of str, default ("jpeg",)
        Any of ``jpeg``, ``fbcnn``, ``fbcnn-d``, ``fbcnn-a``. ``jpeg`` needs
        no model (the decoded JPEG itself: the paper's JPEG column).
    weights_dir : path, optional
        Folder with released weights (``fbcnn_gray.pth``, ...); default: the
        shipped small models (see :func:`jpegbench.models.weights.find_weights`).
    weights : dict of method -> path or file name, optional
        Per-method weights overriding the lookup; ``fbcnn-d`` takes those of
        ``fbcnn`` unless given its own.
    device : str, optional
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...; default CUDA if available.
    out : path, optional
        Parquet file to write (and resume from). Without it nothing is written.
    estimator : {"robust", "paper"}, default "robust"
        Dominant-QF estimator for ``qf_estimated`` and for ``fbcnn-d``
        (computed once per sample and shared).
    progress : bool, default True
        Progress bar on stderr (the policy of :mod:`jpegbench._progress`).
    resume : bool, default True
        Keep and skip the (sample, method) rows already in ``out``; with
        False, ``out`` is overwritten and its sidecar files removed.
    save_every : int, default 16
        Rewrite ``out`` after this many samples.
    examples : bool, default True
        With ``out``, store the example crops and MSE curves sidecar
        (:func:`~jpegbench.evaluate.examples_path`) for the report.
    cache_curves : bool, default True
        Keep the MSE curves of each JPEG under ``CORPUS/.cache/curves`` and
        reuse them: the curves cost seconds per image and do not depend on
        the methods or weights, so re-evaluating a corpus with other weights
        skips them. The ``runtime`` of ``fbcnn-d`` still counts the curves'
        original computation time.

    Returns
    -------
    DataFrame
        One row per (sample, method), columns :data:`~jpegbench.evaluate.RESULT_COLUMNS`, in
        manifest order then method order; ``attrs["jpegbench"]`` holds the run
        metadata.

    Raises
    ------
    CorpusError
        No manifest, or files missing / modified.
    InputError
        Unknown method (the message lists the valid ones) or estimator.
    WeightsError
        Weights for a method not found or unusable.
    ResultsError
        ``out`` exists and is not a jpegbench results file, or was made from
        another corpus or with another estimator or weights (use
        ``resume=False`` or another ``out``).
    LockError
        Another live run is writing ``out`` (its lock ``.NAME.lock`` is next
        to it); this run fails at once rather than wait.
    """
    corpus = Path(corpus_dir)
    methods = _check_methods(methods, weights)
    if estimator not in ESTIMATORS:
        raise InputError(f"estimator must be one of {tuple(ESTIMATORS)}, got {estimator!r}")
    if isinstance(save_every, bool) or not isinstance(save_every, int) or save_every < 1:
        raise InputError(f"save_every must be a positive int, got {save_every!r}")
    manifest = read_corpus_manifest(corpus)
    out_path = Path(out) if out is not None else None
    if out_path is not None and out_path.suffix.lower() != ".parquet":
        raise InputError(f"out must be a .parquet file, got {out_path}")

    from jpegbench.models.methods import get_method

    channels = 1 if str(manifest["color"].iloc[0]) == "gray" else 3
    cached = _CachedEstimate()
    curve_cache = CurveCache(corpus / ".cache" / "curves") if cache_curves else None
    per_method = dict(weights or {})
    if "fbcnn" in per_method:  # fbcnn-d is the same network, conditioned otherwise
        per_method.setdefault("fbcnn-d", per_method["fbcnn"])
    runners, winfo = {}, {}
    for m in methods:
        runners[m] = get_method(m, weights=per_method.get(m), weights_dir=weights_dir, device=device,
                                estimator=estimator, estimate_fn=cached)
        # Load now: missing weights fail before any work, and the file is recorded.
        winfo[m] = weights_info(runners[m].model(channels)[1] if m != "jpeg" else None)
    dev = device_name(device) if any(m != "jpeg" for m in methods) else "cpu"

    recipe, recipe_hash = recipe_text(corpus, manifest)
    corpus_hash = manifest_hash(manifest)
    meta = {
        "corpus": str(corpus.resolve()),
        "manifest_sha256": corpus_hash,
        "recipe": recipe,
        "recipe_sha256": recipe_hash,
        "n_samples": int(len(manifest)),
        "estimator": estimator,
        "metric_conventions": METRIC_CONVENTIONS,
        "versions": software_versions(),
        "device": dev,
        "weights": {},
    }

    with _locked_output(out_path):  # a second run on the same file fails here, before reading it
        done = empty_results()
        if out_path is not None and not resume:
            for stale in (examples_path(out_path), flexibility_path(out_path)):
                stale.unlink(missing_ok=True)
        if out_path is not None and out_path.exists() and resume:
            done = read_results(out_path)
            old = done.attrs["jpegbench"]
            if old.get("manifest_sha256") != corpus_hash:
                raise ResultsError(f"{out_path}: made from another corpus ({old.get('corpus')}); "
                                   "pass resume=False (CLI --no-resume) to overwrite, or choose another output file")
            if old.get("estimator") != estimator:
                raise ResultsError(f"{out_path}: made with estimator {old.get('estimator')!r}, not {estimator!r}; "
                                   "pass resume=False to overwrite, or choose another output file")
            for m, info in winfo.items():
                prev = old.get("weights", {}).get(m)
                if prev is not None and prev.get("weights_sha256") != info["weights_sha256"]:
                    raise ResultsError(f"{out_path}: method {m!r} was run with other weights "
                                       f"({prev.get('weights')}); pass resume=False or choose another output file")
            meta["weights"] = dict(old.get("weights", {}))
        meta["weights"].update(winfo)

        have = set(zip(done["sample_id"], done["method"]))
        order = {m: i for i, m in enumerate((*valid_methods(), *sorted(set(done["method"]) - set(valid_methods()))))}
        sample_order = {s: i for i, s in enumerate(manifest["sample_id"].astype(str))}
        example = example_sample_id(manifest) if (out_path is not None and examples) else None
        ex_state = read_examples(out_path) if example is not None and out_path.exists() and resume else None

        rows: list[dict[str, Any]] = []

        def table() -> pd.DataFrame:
            df = pd.concat([done, typed_results(pd.DataFrame(rows))], ignore_index=True) if rows else done.copy()
            df = df.sort_values(["sample_id", "method"],
                                key=lambda s: s.map(sample_order if s.name == "sample_id" else order),
                                kind="stable", ignore_index=True)
            df.attrs["jpegbench"] = meta
            return df

        def save() -> None:
            if out_path is not None:
                write_results(table(), out_path, meta)

        pending = [r for r in manifest.to_dict("records") if any((str(r["sample_id"]), m) not in have for m in methods)]
        bar = progress_bar(pending, progress=progress, desc="evaluate", unit="img")
        try:
            for k, row in enumerate(bar, 1):
                sid = str(row["sample_id"])
                lq, hq, qf_tables = load_sample(corpus, row)
                est, est_seconds = _estimate(lq, estimator, curve_cache, str(row.get("lq_sha256", "")))
                cached.value = None if isinstance(est, str) else est
                qf_est = getattr(cached.value, "qf_dominant", None)
                crops: dict[str, np.ndarray] = {}
                for m in methods:
                    if (sid, m) in have:
                        continue
                    bar.set_postfix_str(f"{sid} {m}", refresh=False)
                    res = runners[m](lq)
                    rows.append(_row(row, m, res, hq, lq, qf_est, est, qf_tables, est_seconds, dev, winfo[m]))
                    if sid == example:
                        crops[m] = res.image
                if sid == example:
                    ex_state = update_examples(out_path, ex_state, row, lq, hq, crops, rows, cached.value)
                if k % save_every == 0:
                    save()
        finally:
            bar.close()
        if rows or (out_path is not None and not out_path.exists()):
            save()
        return table()


def _float(v: Any) -> float:
    return math.nan if v is None else float(v)


def _row(row, method, res, hq, lq, qf_est, est, qf_tables, est_seconds, dev, winfo) -> dict[str, Any]:
    img = res.image
    est_verdict = est if isinstance(est, str) else str(getattr(est, "verdict", "") or "")
    seconds = float(res.seconds) + (est_seconds if method == "fbcnn-d" else 0.0)
    out = {k: row.get(k) for k in ("sample_id", "source", "color", "qf1", "qf2", "shift_dy", "shift_dx", "aligned",
                                   "regime", "dominant_qf", "encoder", "encoder_version")}
    out.update(
        method=method, n_jpeg=n_jpeg(row), width=int(lq.shape[1]), height=int(lq.shape[0]),
        psnr=psnr(hq, img), ssim=ssim(hq, img), psnrb=psnrb(hq, img),
        qf_predicted=_float(res.qf_predicted), qf_used=_float(res.qf_used), qf_estimated=_float(qf_est),
        qf_estimate_verdict=est_verdict,
        qf_estimate_confidence=_float(getattr(est, "confidence", None)),
        qf_last_tables=int(qf_tables), seconds=seconds, device=dev if method != "jpeg" else "cpu",
        conventions=METRIC_CONVENTIONS, jpegbench_version=__version__, **winfo,
    )  # fmt: skip
    return out
