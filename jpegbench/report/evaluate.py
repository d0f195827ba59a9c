"""Run restoration methods over a corpus and measure them: the results table.

One row per (sample, method). Each row carries the sample's ground truth
from the corpus manifest, the metrics of the restored image against the
clean one (PSNR / SSIM / PSNR-B with the defaults of :mod:`jpegbench.metrics`),
the QFs involved (the network's prediction, the QF it used, the dominant-QF
estimate on the JPEG image, the QF of the file's quantization tables), the
runtime, the device and the weights used, and the conventions.

The results file
----------------
A Parquet file whose schema metadata key ``jpegbench`` holds a JSON document
(:data:`RESULTS_FORMAT`, the corpus path and manifest hash, the recipe text
and its hash, software versions, the metric conventions, the estimator and
the weights of every method). :func:`read_results` refuses files without it.

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

Sidecar files (next to the results file, for the report)
--------------------------------------------------------
``<stem>.examples.npz``: for one example sample (the first non-aligned
double JPEG with QF1 < QF2, else the first sample), a centre crop of the
JPEG, the clean image and every method's output, and the sample's 64 MSE
curves. ``<stem>.flexibility.csv`` is written by :func:`jpegbench.report.run_demo`
(see :func:`flexibility`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import platform
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from jpegbench import __version__
from jpegbench.codec import qf_from_qtables, read_header, read_image, sha256_file, to_gray
from jpegbench.codec.imageio import atomic_write, remove_stale_parts, remove_stale_parts_in
from jpegbench.errors import CorpusError, ImageReadError, InputError, JpegbenchError, ResultsError
from jpegbench.metrics import METRIC_CONVENTIONS, psnr, psnrb, ssim
from jpegbench.report._io import ensure_dir, write_atomic

__all__ = [
    "RESULTS_FORMAT",
    "RESULT_COLUMNS",
    "evaluate",
    "read_results",
    "write_results",
    "examples_path",
    "flexibility_path",
    "read_examples",
    "flexibility",
]

RESULTS_FORMAT = "jpegbench-results"
_FORMAT_VERSION = 1
_META_KEY = b"jpegbench"
ESTIMATORS = ("robust", "paper")

#: Columns of a results table, in order, with their dtypes.
RESULT_COLUMNS: dict[str, str] = {
    "sample_id": "str", "method": "str", "source": "str", "color": "str",
    "qf1": "int64", "qf2": "int64", "shift_dy": "int64", "shift_dx": "int64", "aligned": "bool",
    "regime": "str", "dominant_qf": "int64", "n_jpeg": "int64",
    "encoder": "str", "encoder_version": "str", "width": "int64", "height": "int64",
    "psnr": "float64", "ssim": "float64", "psnrb": "float64",
    "qf_predicted": "float64", "qf_used": "float64", "qf_estimated": "float64",
    "qf_estimate_verdict": "str", "qf_estimate_confidence": "float64", "qf_last_tables": "int64",
    "seconds": "float64", "device": "str",
    "weights": "str", "weights_sha256": "str", "weights_shipped": "bool",
    "conventions": "str", "jpegbench_version": "str",
}  # fmt: skip
_MANIFEST_COLUMNS = ("sample_id", "source", "color", "qf1", "qf2", "shift_dy", "shift_dx", "aligned", "regime",
                     "dominant_qf", "encoder", "encoder_version", "lq_path", "hq_path")  # fmt: skip
_RUNTIME = ("seconds",)
_CROP = 96


# -- the results file ----------------------------------------------------------


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object if t == "str" else t) for c, t in RESULT_COLUMNS.items()})


def _typed(df: pd.DataFrame) -> pd.DataFrame:
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
    missing = [c for c in RESULT_COLUMNS if c not in results.columns]
    if missing:
        raise InputError(f"results lack column(s) {', '.join(missing)}")
    table = pa.Table.from_pandas(_typed(results).reset_index(drop=True), preserve_index=False)
    doc = {"format": RESULTS_FORMAT, "format_version": _FORMAT_VERSION, **meta}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), _META_KEY: json.dumps(doc).encode()})
    ensure_dir(path.parent)
    return atomic_write(path, lambda f: pq.write_table(table, f))


def read_results(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a results file written by :func:`evaluate`.

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
    df = table.to_pandas()
    missing = [c for c in RESULT_COLUMNS if c not in df.columns]
    if missing:
        raise ResultsError(f"{p}: results file lacks column(s) {', '.join(missing)}")
    df = _typed(df)
    df.attrs["jpegbench"] = meta
    return df


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


def _save_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    import io

    
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    write_atomic(path, buf.getvalue())


# -- provenance ----------------------------------------------------------------


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def software_versions() -> dict[str, str]:
    """Versions of the software that shapes the numbers (no heavy imports)."""
    from jpegbench.codec import encoder_info

    return {
        "jpegbench": __version__,
        "python": platform.python_version(),
        "numpy": _version("numpy"),
        "scipy": _version("scipy"),
        "torch": _version("torch"),
        "pillow": _version("pillow"),
        "libjpeg-turbo": encoder_info("pillow").encoder_version,
        "jpeglib": _version("jpeglib"),
        "pandas": _version("pandas"),
        "pyarrow": _version("pyarrow"),
        "platform": platform.platform(),
    }


def _recipe(corpus: Path, manifest: pd.DataFrame) -> tuple[str, str]:
    """The corpus recipe text and its sha256 ('' when the corpus does not keep one)."""
    text = ""
    attrs = getattr(manifest, "attrs", {}) or {}
    for key in ("recipe", "recipe_text"):
        if isinstance(attrs.get(key), str):
            text = attrs[key]
            break
    if not text:
        for name in ("recipe.toml", "recipe.json"):
            if (corpus / name).is_file():
                text = (corpus / name).read_text(encoding="utf-8", errors="replace")
                break
    return text, hashlib.sha256(text.encode()).hexdigest() if text else ""


# -- corpus --------------------------------------------------------------------


def _manifest(corpus: Path) -> pd.DataFrame:
    if not corpus.is_dir():
        raise CorpusError(f"{corpus}: no such corpus directory")
    if not (corpus / "manifest.parquet").is_file():
        raise CorpusError(f"{corpus}: not a corpus (no manifest.parquet); make one with `jpegbench synth`")
    from jpegbench.synth import read_manifest

    try:
        m = read_manifest(corpus)
    except JpegbenchError as exc:
        raise CorpusError(str(exc)) from None
    missing = [c for c in _MANIFEST_COLUMNS if c not in m.columns]
    if missing:
        raise CorpusError(f"{corpus}: manifest lacks column(s) {', '.join(missing)}")
    if m.empty:
        raise CorpusError(f"{corpus}: manifest has no samples")
    if m["sample_id"].duplicated().any():
        raise CorpusError(f"{corpus}: manifest has duplicate sample_id values")
    return m


def _manifest_hash(manifest: pd.DataFrame) -> str:
    """Identifies the corpus content: sample ids, paths and file hashes, in order."""
    cols = [c for c in ("sample_id", "lq_path", "hq_path", "lq_sha256", "hq_sha256") if c in manifest.columns]
    text = manifest[cols].astype(str).to_csv(index=False, lineterminator="\n")
    return hashlib.sha256(text.encode()).hexdigest()


def _n_jpeg(row: Mapping[str, Any]) -> int:
    if "n_jpeg" in row and row["n_jpeg"] is not None and not pd.isna(row["n_jpeg"]):
        return int(row["n_jpeg"])
    stages = row.get("stages")
    if isinstance(stages, str) and stages.startswith("["):
        return sum(1 for s in json.loads(stages) if s.get("op") == "jpeg")
    return 1 if int(row["qf2"]) < 0 else 2


def _example_id(manifest: pd.DataFrame) -> str:
    """The non-aligned double JPEG with the largest QF2 - QF1 > 0 (first in manifest order), else the first sample."""
    m = manifest.reset_index(drop=True)
    gap = m["qf2"].astype(int) - m["qf1"].astype(int)
    pick = m[(~m["aligned"].astype(bool)) & (gap > 0) & (m["shift_dy"].astype(int) >= 0)]
    if pick.empty:
        return str(m["sample_id"].iloc[0])
    return str(m.loc[gap[pick.index].idxmax(), "sample_id"])


def _load_pair(corpus: Path, row: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, int]:
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


# -- methods -------------------------------------------------------------------


def _valid_methods() -> tuple[str, ...]:
    from jpegbench.models.methods import METHODS

    return METHODS


def _check_methods(methods: Sequence[str] | str, weights: Mapping[str, Any] | None) -> tuple[str, ...]:
    if isinstance(methods, str):
        methods = (methods,)
    valid = _valid_methods()
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


_SHA_CACHE: dict[tuple[str, float, int], str] = {}


def _weights_info(path: str | None) -> dict[str, Any]:
    if not path:
        return {"weights": "", "weights_sha256": "", "weights_shipped": False}
    from jpegbench.models.weights import shipped_weights_dir

    p = Path(path)
    if not p.is_file():  # an in-memory model
        return {"weights": str(path), "weights_sha256": "", "weights_shipped": False}
    st = p.stat()
    key = (str(p.resolve()), st.st_mtime, st.st_size)
    if key not in _SHA_CACHE:
        _SHA_CACHE[key] = sha256_file(p)
    shipped = p.resolve().parent == shipped_weights_dir().resolve()
    return {"weights": p.name, "weights_sha256": _SHA_CACHE[key][:12], "weights_shipped": shipped}


class _CachedEstimate:
    """Hands fbcnn-d the estimate already computed for the current sample."""

    def __init__(self) -> None:
        self.value: Any = None

    def __call__(self, gray: np.ndarray, *, estimator: str, backend: str) -> Any:
        return self.value


def _estimate(lq: np.ndarray, estimator: str, cache: _CurveCache | None = None,
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


_STALE_PART_S = 3600.0  # a curve-cache temporary file older than this is a killed run's


class _CurveCache:
    """The fast backend's MSE curves of corpus images, on disk under ``CORPUS/.cache/curves``.

    The curves are the expensive part of an evaluation (seconds per image, and
    the same for every method, weight file and estimator), so a second
    ``evaluate`` of the same corpus, e.g. with new weights, reuses them. An
    entry is keyed by the JPEG file's SHA-256 and the software that computes
    the curves (the fast backend's revision, jpegbench, Pillow, torch, numpy
    versions); a missing,
    unreadable or foreign entry is recomputed, and a corpus folder that is not
    writable just means no cache.
    """

    def __init__(self, corpus: Path) -> None:
        self.dir = corpus / ".cache" / "curves"
        from jpegbench.estimate.curves import FAST_CURVES_REVISION

        sig = "|".join(["fast", str(FAST_CURVES_REVISION), __version__,
                        *(_version(d) for d in ("pillow", "torch", "numpy"))])  # fmt: skip
        self.tag = hashlib.sha256(sig.encode()).hexdigest()[:12]
        self._sweep()

    def _sweep(self) -> None:
        # Several evaluate runs (other results files) may share the cache, so no lock covers it;
        # an entry is written in milliseconds, so an old temporary file is a killed run's.
        remove_stale_parts_in(self.dir, older_than_s=_STALE_PART_S)

    def _path(self, sha: str) -> Path | None:
        if not (len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)):
            return None
        return self.dir / f"{sha}-{self.tag}.npz"

    def get(self, sha: str) -> tuple[Any, float] | None:
        from jpegbench.estimate.curves import MSECurves

        path = self._path(sha)
        if path is None or not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                curves = MSECurves(
                    mse=np.asarray(z["mse"], dtype=np.float64), qfs=np.asarray(z["qfs"], dtype=np.int64),
                    backend=str(z["backend"]), image_shape=tuple(int(v) for v in z["image_shape"]),
                    crop_shape=tuple(int(v) for v in z["crop_shape"]),
                    conventions=json.loads(str(z["conventions"])),
                )
                seconds = float(z["seconds"])
        except Exception:  # noqa: BLE001 - a damaged cache entry is recomputed, never trusted
            return None
        if curves.mse.ndim != 3 or curves.mse.shape[:2] != (8, 8) or curves.mse.shape[2] != curves.qfs.size:
            return None
        return curves, seconds

    def put(self, sha: str, curves: Any, seconds: float) -> None:
        path = self._path(sha)
        if path is None:
            return
        buf = io.BytesIO()
        np.savez(buf, mse=curves.mse, qfs=curves.qfs, backend=np.str_(curves.backend),
                 image_shape=np.asarray(curves.image_shape), crop_shape=np.asarray(curves.crop_shape),
                 conventions=np.str_(json.dumps(curves.conventions, default=str)), seconds=np.float64(seconds))
        try:
            ensure_dir(self.dir)
            write_atomic(path, buf.getvalue())
        except (OSError, JpegbenchError):
            pass  # read-only corpus: evaluate without a cache


def _device_name(device: Any) -> str:
    from jpegbench.models.inference import pick_device

    return str(pick_device(device))


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


# -- the runner ----------------------------------------------------------------


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
        tqdm progress bar on stderr.
    resume : bool, default True
        Keep and skip the (sample, method) rows already in ``out``; with
        False, ``out`` is overwritten and its sidecar files removed.
    save_every : int, default 16
        Rewrite ``out`` after this many samples.
    examples : bool, default True
        With ``out``, store the example crops and MSE curves sidecar
        (:func:`examples_path`) for the report.
    cache_curves : bool, default True
        Keep the MSE curves of each JPEG under ``CORPUS/.cache/curves`` and
        reuse them: the curves cost seconds per image and do not depend on
        the methods or weights, so re-evaluating a corpus with other weights
        skips them. The ``runtime`` of ``fbcnn-d`` still counts the curves'
        original computation time.

    Returns
    -------
    DataFrame
        One row per (sample, method), columns :data:`RESULT_COLUMNS`, in
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
        raise InputError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    if isinstance(save_every, bool) or not isinstance(save_every, int) or save_every < 1:
        raise InputError(f"save_every must be a positive int, got {save_every!r}")
    manifest = _manifest(corpus)
    out_path = Path(out) if out is not None else None
    if out_path is not None and out_path.suffix.lower() != ".parquet":
        raise InputError(f"out must be a .parquet file, got {out_path}")

    from jpegbench.models.methods import get_method

    channels = 1 if str(manifest["color"].iloc[0]) == "gray" else 3
    cached = _CachedEstimate()
    curve_cache = _CurveCache(corpus) if cache_curves else None
    per_method = dict(weights or {})
    if "fbcnn" in per_method:  # fbcnn-d is the same network, conditioned otherwise
        per_method.setdefault("fbcnn-d", per_method["fbcnn"])
    runners, winfo = {}, {}
    for m in methods:
        runners[m] = get_method(m, weights=per_method.get(m), weights_dir=weights_dir, device=device,
                                estimator=estimator, estimate_fn=cached)
        # Load now: missing weights fail before any work, and the file is recorded.
        winfo[m] = _weights_info(runners[m].model(channels)[1] if m != "jpeg" else None)
    device_name = _device_name(device) if any(m != "jpeg" for m in methods) else "cpu"

    recipe_text, recipe_hash = _recipe(corpus, manifest)
    manifest_hash = _manifest_hash(manifest)
    meta = {
        "corpus": str(corpus.resolve()),
        "manifest_sha256": manifest_hash,
        "recipe": recipe_text,
        "recipe_sha256": recipe_hash,
        "n_samples": int(len(manifest)),
        "estimator": estimator,
        "metric_conventions": METRIC_CONVENTIONS,
        "versions": software_versions(),
        "device": device_name,
        "weights": {},
    }

    with _locked_output(out_path):  # a second run on the same file fails here, before reading it
        done = _empty()
        if out_path is not None and not resume:
            for stale in (examples_path(out_path), flexibility_path(out_path)):
                stale.unlink(missing_ok=True)
        if out_path is not None and out_path.exists() and resume:
            done = read_results(out_path)
            old = done.attrs["jpegbench"]
            if old.get("manifest_sha256") != manifest_hash:
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
        order = {m: i for i, m in enumerate((*_valid_methods(), *sorted(set(done["method"]) - set(_valid_methods()))))}
        sample_order = {s: i for i, s in enumerate(manifest["sample_id"].astype(str))}
        example = _example_id(manifest) if (out_path is not None and examples) else None
        ex_state = read_examples(out_path) if example is not None and out_path.exists() and resume else None

        rows: list[dict[str, Any]] = []

        def table() -> pd.DataFrame:
            df = pd.concat([done, _typed(pd.DataFrame(rows))], ignore_index=True) if rows else done.copy()
            df = df.sort_values(["sample_id", "method"],
                                key=lambda s: s.map(sample_order if s.name == "sample_id" else order),
                                kind="stable", ignore_index=True)
            df.attrs["jpegbench"] = meta
            return df

        def save() -> None:
            if out_path is not None:
                write_results(table(), out_path, meta)

        pending = [r for r in manifest.to_dict("records") if any((str(r["sample_id"]), m) not in have for m in methods)]
        from tqdm import tqdm

        bar = tqdm(pending, desc="evaluate", unit="img", file=sys.stderr, disable=not progress, dynamic_ncols=True)
        try:
            for k, row in enumerate(bar, 1):
                sid = str(row["sample_id"])
                lq, hq, qf_tables = _load_pair(corpus, row)
                est, est_seconds = _estimate(lq, estimator, curve_cache, str(row.get("lq_sha256", "")))
                cached.value = None if isinstance(est, str) else est
                qf_est = getattr(cached.value, "qf_dominant", None)
                crops: dict[str, np.ndarray] = {}
                for m in methods:
                    if (sid, m) in have:
                        continue
                    bar.set_postfix_str(f"{sid} {m}", refresh=False)
                    res = runners[m](lq)
                    rows.append(_row(row, m, res, hq, lq, qf_est, est, qf_tables, est_seconds, device_name, winfo[m]))
                    if sid == example:
                        crops[m] = res.image
                if sid == example:
                    ex_state = _update_examples(out_path, ex_state, row, lq, hq, crops, rows, cached.value)
                if k % save_every == 0:
                    save()
        finally:
            bar.close()
        if rows or (out_path is not None and not out_path.exists()):
            save()
        return table()


def _float(v: Any) -> float:
    return math.nan if v is None else float(v)


def _row(row, method, res, hq, lq, qf_est, est, qf_tables, est_seconds, device_name, winfo) -> dict[str, Any]:
    img = res.image
    est_verdict = est if isinstance(est, str) else str(getattr(est, "verdict", "") or "")
    seconds = float(res.seconds) + (est_seconds if method == "fbcnn-d" else 0.0)
    out = {k: row.get(k) for k in ("sample_id", "source", "color", "qf1", "qf2", "shift_dy", "shift_dx", "aligned",
                                   "regime", "dominant_qf", "encoder", "encoder_version")}
    out.update(
        method=method, n_jpeg=_n_jpeg(row), width=int(lq.shape[1]), height=int(lq.shape[0]),
        psnr=psnr(hq, img), ssim=ssim(hq, img), psnrb=psnrb(hq, img),
        qf_predicted=_float(res.qf_predicted), qf_used=_float(res.qf_used), qf_estimated=_float(qf_est),
        qf_estimate_verdict=est_verdict,
        qf_estimate_confidence=_float(getattr(est, "confidence", None)),
        qf_last_tables=int(qf_tables), seconds=seconds, device=device_name if method != "jpeg" else "cpu",
        conventions=METRIC_CONVENTIONS, jpegbench_version=__version__, **winfo,
    )  # fmt: skip
    return out


def _update_examples(out_path, state, row, lq, hq, crops, rows, est) -> dict[str, Any]:
    h, w = lq.shape[:2]
    c = min(_CROP, h, w)
    y0, x0 = (h - c) // 2 // 8 * 8, (w - c) // 2 // 8 * 8
    box = [int(y0), int(x0), int(c), int(c)]
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
            state["mse_curves"], state["mse_qfs"] = _curves_arrays(curves)
            state["meta"]["curves"] = {"backend": str(curves.backend), "image_shape": list(curves.image_shape),
                                       "crop_shape": list(curves.crop_shape)}
            if est is not None:
                state["meta"]["estimate"] = {"qf_last": int(est.qf_last), "qf_dominant": int(est.qf_dominant),
                                             "shift": [int(v) for v in est.shift], "verdict": str(est.verdict),
                                             "confidence": float(est.confidence), "estimator": str(est.estimator),
                                             "qf_first": None if est.qf_first is None else int(est.qf_first)}
        except JpegbenchError:
            pass  # e.g. an image too small for the curves: the report says the figure is missing
    for m, img in crops.items():
        state["crops"][m] = img[y0:y0 + c, x0:x0 + c]
        r = next(r for r in reversed(rows) if r["sample_id"] == sid and r["method"] == m)
        state["meta"]["psnr"][m] = r["psnr"]
        state["meta"]["qf_used"][m] = None if math.isnan(r["qf_used"]) else r["qf_used"]
    arrays = {"meta": np.array(json.dumps(state["meta"]))}
    arrays.update({f"crop_{k}": v for k, v in state["crops"].items()})
    for k in ("mse_curves", "mse_qfs"):
        if k in state:
            arrays[k] = np.asarray(state[k])
    _save_npz(examples_path(out_path), arrays)
    return state


def _curves_arrays(curves: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(mse (8, 8, n_qf), qfs)`` of a :class:`jpegbench.estimate.MSECurves`."""
    return np.asarray(curves.mse, dtype=np.float64), np.asarray(curves.qfs, dtype=np.int64)


# -- flexibility ---------------------------------------------------------------


def flexibility(
    corpus_dir: str | os.PathLike[str],
    sample_ids: Sequence[str],
    qfs: Sequence[int],
    *,
    method: str = "fbcnn",
    weights_dir: str | os.PathLike[str] | None = None,
    weights: str | os.PathLike[str] | None = None,
    device: str | None = None,
) -> pd.DataFrame:
    """PSNR of a restoration against a manual QF: the paper's "flexibility" experiment.

    Each sample's JPEG image is restored with ``method`` once per QF in
    ``qfs`` (the manual QF replaces the predicted one), and once blind.

    Parameters
    ----------
    corpus_dir : path
    sample_ids : sequence of str
        Samples of the corpus (a few: each costs ``len(qfs) + 1`` restorations).
    qfs : sequence of int
        Manual QFs, 1..100.
    method : {"fbcnn", "fbcnn-a"}, default "fbcnn"
    weights_dir, weights, device
        As in :func:`evaluate`.

    Returns
    -------
    DataFrame
        Columns ``sample_id, qf1, qf2, dominant_qf, qf_predicted, qf,
        psnr, ssim, psnrb``; one row per (sample, manual QF).
    """
    from jpegbench.codec import check_qf

    corpus = Path(corpus_dir)
    if method not in ("fbcnn", "fbcnn-a"):
        raise InputError(f"flexibility needs a blind network method ('fbcnn' or 'fbcnn-a'), got {method!r}")
    if isinstance(sample_ids, str):
        sample_ids = [sample_ids]
    qfs = [check_qf(q) for q in qfs]
    if not qfs or not sample_ids:
        raise InputError("flexibility needs at least one sample id and one QF")
    manifest = _manifest(corpus).set_index("sample_id", drop=False)
    unknown = [s for s in sample_ids if s not in manifest.index]
    if unknown:
        raise InputError(f"sample id(s) not in the corpus: {', '.join(map(str, unknown[:5]))}")
    from jpegbench.models.methods import get_method

    run = get_method(method, weights=weights, weights_dir=weights_dir, device=device)
    rows = []
    for sid in sample_ids:
        row = manifest.loc[sid].to_dict()
        lq, hq, _ = _load_pair(corpus, row)
        blind = run(lq)
        for q in qfs:
            img = run(lq, qf=q).image
            rows.append({"sample_id": str(sid), "qf1": int(row["qf1"]), "qf2": int(row["qf2"]),
                         "dominant_qf": int(row["dominant_qf"]), "qf_predicted": float(blind.qf_predicted),
                         "qf": int(q), "psnr": psnr(hq, img), "ssim": ssim(hq, img), "psnrb": psnrb(hq, img)})
    return pd.DataFrame(rows)
