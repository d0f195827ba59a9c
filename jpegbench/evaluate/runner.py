"""The restore-and-score runner: every sample of a corpus through each method, measured, into a resumable results table.

One row per (sample, method). Each row carries the sample's ground truth
from the corpus manifest, the metrics of the restored image against the
clean one (PSNR / SSIM / PSNR-B with the defaults of :mod:`jpegbench.metrics`),
the QFs involved (the network's prediction, the QF it used and where that
came from, ``qf_source``, the dominant-QF estimate on the JPEG image, the
QF of the file's quantization tables), the runtime, the device and the
weights used, and the conventions.

On a Dask cluster (``scheduler=``) the samples are scored by workers
(:mod:`jpegbench.evaluate.cluster`) with the same function as here
(:func:`jpegbench.evaluate.sample.score_sample`); this process alone
writes, resumes and locks as described below.

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
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from jpegbench._fs import ensure_dir, remove_stale_parts
from jpegbench._progress import progress_bar
from jpegbench.errors import InputError, ResultsError
from jpegbench.estimate.api import ESTIMATORS
from jpegbench.estimate.cache import CurveCache
from jpegbench.evaluate import sample as _sample
from jpegbench.evaluate.corpus import read_corpus_manifest
from jpegbench.evaluate.provenance import device_name, manifest_hash, recipe_text, software_versions, weights_info
from jpegbench.evaluate.results import empty_results, read_results, typed_results, write_results
from jpegbench.evaluate.sidecars import (
    example_sample_id,
    examples_path,
    flexibility_path,
    read_examples,
    update_examples,
)
from jpegbench.metrics import METRIC_CONVENTIONS

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
    color_policy: str = "auto",
    progress: bool = True,
    resume: bool = True,
    save_every: int = 16,
    examples: bool = True,
    cache_curves: bool = True,
    scheduler: Any = None,
    workers: int = 1,
) -> pd.DataFrame:
    """Restore every sample of a corpus with each method and measure the results.

    Parameters
    ----------
    corpus_dir : path
        A corpus written by :func:`jpegbench.synth.synthesize` (``manifest.parquet``,
        ``lq/``, ``hq/``).
    methods : sequence of str, default ("jpeg",)
        Any of :data:`jpegbench.models.METHODS`: ``jpeg`` (the decoded JPEG
        itself: the paper's JPEG column, no model), ``fbcnn``, ``fbcnn-d``,
        ``fbcnn-a``, and the table-guided ``qcn``, ``qgcn``, ``ijcn`` with
        their ``-d`` twins, which read each sample's JPEG file (IJCN:
        colour 4:2:0 only, checked on the first sample before any work).
    weights_dir : path, optional
        Folder with released weights (``fbcnn_gray.pth``, ...); default: the
        shipped small models (see :func:`jpegbench.models.weights.find_weights`).
    weights : dict of method -> path or file name, optional
        Per-method weights overriding the lookup; a ``-d`` method takes those
        of its plain method (``fbcnn-d`` of ``fbcnn``, ``qcn-d`` of ``qcn``, ...)
        unless given its own.
    device : str, optional
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...; default CUDA if available.
    out : path, optional
        Parquet file to write (and resume from). Without it nothing is written.
    estimator : {"robust", "paper"}, default "robust"
        Dominant-QF estimator for ``qf_estimated`` and for the ``-d``
        methods (computed once per sample and shared; every ``-d`` row's
        ``seconds`` includes it).
    color_policy : {"auto", "color", "luma"}, default "auto"
        What the FBCNN methods do with a colour corpus: ``"auto"`` the colour
        model if one is found, else the gray model on the luma; ``"color"``
        the colour model or :class:`~jpegbench.errors.WeightsError` before
        any work; ``"luma"`` the gray model on the luma (see
        :func:`jpegbench.models.get_method`). Each row's ``color_path`` says
        which ran.
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
        skips them. The ``seconds`` of the ``-d`` methods still count the
        curves' original computation time.
    scheduler : str or distributed.Client, optional
        Run on Dask (the ``jpegbench[dask]`` extra): ``"local"`` for a
        LocalCluster of ``workers`` processes, the address of a running
        scheduler (``tcp://host:8786``), or a client. Tasks are batches of
        samples; each worker loads the models once and reads the corpus and
        the weight files at the paths this process sees (a shared
        filesystem), writes only the curve cache, and sends its rows back:
        this process alone writes ``out`` and its sidecar. The table is the
        same as a local run's (``seconds`` aside), for any number of
        workers and any order the tasks finish in.
    workers : int, default 1
        Worker processes of ``scheduler="local"`` (1 otherwise).

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
    UnsupportedImageError, ImageReadError
        A table-guided method cannot read the corpus's JPEGs (e.g. IJCN on a
        gray or 4:2:0-less corpus), found on the first sample.
    ClusterError
        ``scheduler`` unreachable, without workers, or dask.distributed missing.
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
    kwargs = {"methods": methods, "weights_dir": weights_dir, "weights": weights, "device": device, "out": out,
              "estimator": estimator, "color_policy": color_policy, "progress": progress, "resume": resume,
              "save_every": save_every,
              "examples": examples, "cache_curves": cache_curves}
    if scheduler is not None:
        from jpegbench._cluster import cluster_client, is_client

        if not is_client(scheduler):  # connect before any work or file: an unreachable address writes nothing
            with cluster_client(scheduler, workers=workers) as client:
                return evaluate(corpus_dir, **kwargs, scheduler=client)
    elif workers != 1:
        raise InputError(f"workers applies to scheduler='local' only (evaluate runs in this process), got {workers!r}")

    runners, winfo, paths = _prepare(corpus, manifest, methods, weights, weights_dir, device, estimator,
                                     color_policy)
    if scheduler is None:
        dev = device_name(device) if any(m != "jpeg" for m in methods) else "cpu"
    else:
        from jpegbench.evaluate.cluster import worker_devices

        dev = worker_devices(scheduler, device) if any(m != "jpeg" for m in methods) else "cpu"
    recipe, recipe_hash = recipe_text(corpus, manifest)
    corpus_hash = manifest_hash(manifest)
    meta = {
        "corpus": str(corpus.resolve()),
        "manifest_sha256": corpus_hash,
        "recipe": recipe,
        "recipe_sha256": recipe_hash,
        "n_samples": int(len(manifest)),
        "estimator": estimator,
        "color_policy": color_policy,
        "metric_conventions": METRIC_CONVENTIONS,
        "versions": software_versions(),
        "device": dev,
        "weights": {},
    }

    with _locked_output(out_path):  # a second run on the same file fails here, before reading it
        done = _resume(out_path, resume, corpus_hash, estimator, winfo, meta)
        have = set(zip(done["sample_id"], done["method"]))
        example = example_sample_id(manifest) if (out_path is not None and examples) else None
        collected = _Collected(done, manifest, out_path, meta, save_every,
                               read_examples(out_path) if example is not None and resume and out_path.exists() else None)
        pending = [(r, tuple(m for m in methods if (str(r["sample_id"]), m) not in have))
                   for r in manifest.to_dict("records")]  # fmt: skip
        pending = [(r, todo) for r, todo in pending if todo]
        curve_cache = CurveCache(corpus / ".cache" / "curves") if cache_curves else None
        bar = progress_bar(None, progress=progress, total=len(pending), desc="evaluate", unit="img")
        try:
            if scheduler is None:
                for row, todo in pending:
                    bar.set_postfix_str(str(row["sample_id"]), refresh=False)
                    collected.add(row, _sample.score_sample(
                        corpus, row, runners, todo, estimator=estimator, curve_cache=curve_cache, device=dev,
                        weights_info=winfo, keep_images=str(row["sample_id"]) == example))  # fmt: skip
                    bar.update(1)
            else:
                from jpegbench.evaluate.cluster import evaluate_on_cluster

                opts = {"corpus": str(corpus.resolve()), "methods": methods, "weights": paths,
                        "weights_dir": None if weights_dir is None else str(Path(weights_dir).resolve()),
                        "device": device, "estimator": estimator, "color_policy": color_policy,
                        "cache_curves": cache_curves, "winfo": winfo,
                        "example": example}  # fmt: skip
                evaluate_on_cluster(scheduler, pending, opts, bar, collected.add)
        finally:
            bar.close()
        collected.finish()
        return collected.table()


def _prepare(corpus: Path, manifest: pd.DataFrame, methods: tuple[str, ...], weights: Mapping[str, Any] | None,
             weights_dir: Any, device: Any, estimator: str, color_policy: str = "auto") -> tuple[dict, dict, dict]:
    """Each method's runner, its weights columns and its weight file, checked on the first sample before any work."""
    channels = 1 if str(manifest["color"].iloc[0]) == "gray" else 3
    per_method = dict(weights or {})
    for m in methods:  # a -d twin is its plain method's network, given another QF or other tables
        if m.endswith("-d") and m[:-2] in per_method:
            per_method.setdefault(m, per_method[m[:-2]])
    first = corpus / str(manifest["lq_path"].iloc[0])
    runners, winfo, paths = {}, {}, {}
    for m in methods:
        runners[m] = _sample.build_runner(m, weights=per_method.get(m), weights_dir=weights_dir, device=device,
                                          estimator=estimator, color_policy=color_policy)  # fmt: skip
        if runners[m].reads_file:
            # A corpus the method cannot read (IJCN: gray or not 4:2:0) fails here, with one message.
            runners[m].method.check(first)
        # Load now: missing weights fail before any work, and the file is recorded.
        path = runners[m].method.model(channels)[1] if m != "jpeg" else None
        winfo[m], paths[m] = weights_info(path), path
    return runners, winfo, paths


def _resume(out_path: Path | None, resume: bool, corpus_hash: str, estimator: str,
            winfo: Mapping[str, Any], meta: dict[str, Any]) -> pd.DataFrame:
    """The rows already in ``out_path`` (checked to be of this corpus, estimator and weights); fills ``meta``."""
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
    return done


class _Collected:
    """The rows of a run as they arrive (in any order), saved every ``save_every`` samples, with the example sidecar."""

    def __init__(self, done: pd.DataFrame, manifest: pd.DataFrame, out_path: Path | None, meta: dict[str, Any],
                 save_every: int, examples: dict[str, Any] | None) -> None:
        self.done, self.out_path, self.meta, self.save_every = done, out_path, meta, save_every
        self.rows: list[dict[str, Any]] = []
        self.samples = 0
        self.examples = examples
        known = (*valid_methods(), *sorted(set(done["method"]) - set(valid_methods())))
        self.order = {m: i for i, m in enumerate(known)}
        self.sample_order = {s: i for i, s in enumerate(manifest["sample_id"].astype(str))}

    def add(self, row: Mapping[str, Any], result: _sample.SampleResult) -> None:
        self.rows.extend(result.rows)
        ex = result.example
        if ex is not None and self.out_path is not None:
            self.examples = update_examples(self.out_path, self.examples, row, ex["lq"], ex["hq"], ex["crops"],
                                            result.rows, ex["est"])  # fmt: skip
        self.samples += 1
        if self.samples % self.save_every == 0:
            self.save()

    def table(self) -> pd.DataFrame:
        """Kept and new rows in manifest order, then method order, whatever order they arrived in."""
        df = pd.concat([self.done, typed_results(pd.DataFrame(self.rows))], ignore_index=True) if self.rows \
            else self.done.copy()  # fmt: skip
        df = df.sort_values(["sample_id", "method"],
                            key=lambda s: s.map(self.sample_order if s.name == "sample_id" else self.order),
                            kind="stable", ignore_index=True)
        df.attrs["jpegbench"] = self.meta
        return df

    def save(self) -> None:
        if self.out_path is not None:
            write_results(self.table(), self.out_path, self.meta)

    def finish(self) -> None:
        if self.rows or (self.out_path is not None and not self.out_path.exists()):
            self.save()
