"""Estimate the QFs of many images (files, folders or a corpus) into one table (the ``estimate`` command)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from jpegbench._fs import atomic_write_bytes
from jpegbench._progress import progress_bar
from jpegbench.codec import list_images, qf_from_qtables, read_header, read_image
from jpegbench.errors import ImageReadError, ImageTooLargeError, InputError, ShapeError
from jpegbench.estimate.api import ESTIMATORS, _dct_reading, combine_readings, estimate_qf
from jpegbench.estimate.curves import MIN_SIZE, mse_curves_batch

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["EstimateRun", "estimate_inputs", "corpus_accuracy"]

_TRUTH = ("sample_id", "qf1", "qf2", "shift_dy", "shift_dx", "aligned", "regime", "dominant_qf")


@dataclass
class EstimateRun:
    """Rows of :func:`estimate_inputs`, the inputs it skipped, and the accuracy when ground truth was known."""

    table: pd.DataFrame
    skipped: list[tuple[str, str]] = field(default_factory=list)
    accuracy: pd.DataFrame | None = None
    curves: dict[str, np.ndarray] = field(default_factory=dict, repr=False)


def _expand(inputs: Sequence[str | os.PathLike[str]]) -> list[tuple[Path, dict[str, Any]]]:
    """(path, ground truth) pairs: a corpus directory contributes its manifest's lq files."""
    items: list[tuple[Path, dict[str, Any]]] = []
    for inp in map(Path, inputs):
        if inp.is_dir() and (inp / "manifest.parquet").exists():
            from jpegbench.synth import read_manifest

            manifest = read_manifest(inp)
            for row in manifest.to_dict("records"):
                items.append((inp / row["lq_path"], {k: row[k] for k in _TRUTH if k in row}))
        else:
            items.extend((p, {}) for p in list_images([inp]))
    return items


def _is_jpeg(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\xff\xd8"


def _source(path: Path, opts: dict[str, Any]) -> Path:
    """Where ``path`` is read: relative to ``opts["base"]`` when set (a Dask worker's folder is not the client's)."""
    base = opts.get("base")
    return path if base is None or path.is_absolute() else Path(base) / path


def _estimate_one(path: Path, truth: dict[str, Any], opts: dict[str, Any]) -> tuple[str, Any, Any]:
    """``("row", row, curves or None)`` for one input, or ``("skip", (path, reason), None)``.

    ``opts["base"]``, when set, is the folder relative paths are read from (a
    Dask worker's own working directory is not the client's); the row keeps
    ``path`` as given.
    """
    return _read_estimate(_read_curves(path, truth, opts), opts)


def _read_curves(path: Path, truth: dict[str, Any], opts: dict[str, Any]) -> tuple[str, Any, Any]:
    """First half of :func:`_estimate_one`: decode, read the tables, compute the curves (``("curves", ...)``)."""
    src = _source(path, opts)
    try:
        pixels = read_image(src, max_pixels=opts["max_pixels"], min_size=MIN_SIZE)
        tables = None
        if _is_jpeg(src):
            tables = qf_from_qtables(read_header(src).component_qtables())
        kw = {"luma": "bt601-full"} if pixels.ndim == 3 else {}
        t0 = time.perf_counter()
        curves = mse_curves_batch([pixels], backend=opts["backend"], device=opts["device"], **kw)[0]
        seconds = time.perf_counter() - t0
    except (ImageReadError, ImageTooLargeError, ShapeError) as exc:
        return "skip", (str(path), str(exc).removeprefix(f"{src}: ")), None
    return "curves", (path, truth, pixels, tables, curves, seconds), None


def _read_estimate(prepared: tuple[str, Any, Any], opts: dict[str, Any]) -> tuple[str, Any, Any]:
    """Second half of :func:`_estimate_one`: read the curves with the estimator and make the row."""
    if prepared[0] == "skip":
        return prepared
    import pandas as pd

    path, truth, pixels, tables, curves, seconds = prepared[1]
    estimator, backend = opts["estimator"], opts["backend"]
    t0 = time.perf_counter()
    r = estimate_qf(pixels, estimator=estimator, curves=curves)  # pixels: the open-world check of few levels
    dq = _dct_reading(r, _source(path, opts)) if opts.get("dct") and tables is not None else None  # JPEG files only
    verdict, qf_first, shift, evidence = combine_readings(r, dq)
    seconds += time.perf_counter() - t0  # the work of this image, whichever thread did it

    def na(v: Any) -> Any:
        return pd.NA if v is None else v

    shift = shift or (None, None)  # uncompressed / undetermined: no grid, no shift
    row = {
        "path": str(path), "width": pixels.shape[1], "height": pixels.shape[0], "estimator": estimator,
        "backend": backend, "qf_last": na(r.qf_last), "qf_dominant": na(r.qf_dominant),
        "qf_first": na(qf_first), "shift_dy": na(shift[0]), "shift_dx": na(shift[1]),
        "verdict": verdict, "confidence": r.confidence,
        "qf_tables": tables.qf if tables else pd.NA, "qf_tables_kind": tables.kind if tables else None,
        "qf_last_agrees": (r.qf_last == tables.qf) if tables else pd.NA,
        "seconds": seconds,
        # where the pixel QFs stand: IJG-scale estimates, flagged when the file's own tables are not IJG's
        "qf_ijg_scale": bool(tables is not None and not tables.ijg),
        "grid_moved": bool(r.details.get("grid_moved", False)), "note": str(r.details.get("why", "")),
        "evidence": evidence,
    }  # fmt: skip
    row.update({f"true_{k}" if k != "sample_id" else k: v for k, v in truth.items()})
    curves = np.asarray(r.curves.mse, dtype=np.float32) if opts["save_curves"] and r.curves is not None else None
    return "row", row, curves


def _estimate_local(items: list[tuple[Path, dict[str, Any]]], opts: dict[str, Any], bar: Any):
    """:func:`_estimate_one` of every item in this process, in input order, as a two-stage pipeline.

    A helper thread decodes the next image and computes its curves (the C
    kernel releases the GIL and runs on its own threads) while this thread
    reads the current one's curves with the estimator, so the estimator's
    time hides behind the curves'. Each row is what :func:`_estimate_one`
    gives; only ``seconds`` (the image's own work, summed over both stages)
    is measured differently.
    """
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1, thread_name_prefix="jpegbench-curves") as pool:
        ahead = [pool.submit(_read_curves, path, truth, opts) for path, truth in items[:1]]
        import pandas  # noqa: F401  (the rows need it: imported while the first curves compute)

        try:
            for i in range(len(items)):
                prepared = ahead.pop(0).result()
                if i + 1 < len(items):
                    ahead.append(pool.submit(_read_curves, *items[i + 1], opts))
                out = _read_estimate(prepared, opts)
                bar.update(1)
                yield out
        finally:
            for f in ahead:
                f.cancel()


def _estimate_batch(items: list[tuple[Path, dict[str, Any]]], opts: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """One Dask task: :func:`_estimate_one` for a batch of inputs, under the client's image limits."""
    from jpegbench.codec.limits import limits

    with limits(**opts["limits"]):  # a worker does not inherit the client's limits() block
        return [_estimate_one(path, truth, opts) for path, truth in items]


def _estimate_cluster(
    items: list[tuple[Path, dict[str, Any]]], opts: dict[str, Any], client: Any, bar: Any
) -> list[tuple[str, Any, Any]]:
    """:func:`_estimate_one` of every item on the cluster, in input order (batches of images are the tasks)."""
    import math

    from jpegbench._cluster import n_threads, run_tasks
    from jpegbench.codec import default_max_file_bytes, default_max_pixels

    # A few batches per worker thread: a killed worker costs little, and the last ones finish together.
    size = max(1, min(16, math.ceil(len(items) / (4 * n_threads(client)))))
    batches = [items[i : i + size] for i in range(0, len(items), size)]
    opts = {**opts, "base": os.getcwd(),
            "limits": {"max_pixels": default_max_pixels(), "max_file_bytes": default_max_file_bytes()}}

    def arrived(i: int, out: list) -> None:
        arrived.n += 1
        bar.set_postfix_str(f"{arrived.n}/{len(batches)} tasks", refresh=False)
        bar.update(len(out))

    arrived.n = 0
    return [r for out in run_tasks(client, _estimate_batch, batches, opts, on_result=arrived) for r in out]


def estimate_inputs(
    inputs: Sequence[str | os.PathLike[str]],
    *,
    estimator: str = "robust",
    backend: str = "fast",
    device: str | None = None,
    save_curves: bool = False,
    max_pixels: int | None = None,
    progress: bool = True,
    scheduler: Any = None,
    workers: int = 1,
    dct: bool = False,
) -> EstimateRun:
    """Estimate ``qf_last``, ``qf_dominant``, the first grid shift and the verdict of every input.

    Parameters
    ----------
    inputs : paths
        Image files, folders of images, or corpus folders (then the manifest's
        ground truth -- ``qf1, qf2, shift_dy, shift_dx, aligned, regime,
        dominant_qf`` -- is joined in and :attr:`EstimateRun.accuracy` is set).
    estimator : {"robust", "paper"}
    backend : {"fast", "reference"}
    device : str, optional
        Torch device of the fast backend.
    save_curves : bool
        Keep each image's ``[8, 8, n_qf]`` MSE curves in :attr:`EstimateRun.curves`.
    scheduler : str or distributed.Client, optional
        Run on Dask (the ``jpegbench[dask]`` extra): ``"local"`` for a
        LocalCluster of ``workers`` processes, the address of a running
        scheduler (``tcp://host:8786``), or a client. Tasks are batches of
        images; the table is the same as a local run's (``seconds`` aside).
        On a real cluster the inputs must be readable at the same paths on
        every worker (relative paths are taken from this process's folder).
    workers : int
        Worker processes of ``scheduler="local"`` (1 otherwise).
    dct : bool, default False
        Also read a JPEG file's DCT coefficients where the curves say
        "single" (:func:`jpegbench.estimate.detect_double_quantization`: a
        first compression finer than the last). Off by default: on
        full-size single JPEGs its false alarms are still above 5 % and it
        costs seconds per file (BENCHMARKS.md); the ``evidence`` column says
        which reading decided.

    Returns
    -------
    EstimateRun
        ``table`` has one row per readable image: ``path, width, height,
        estimator, backend, qf_last, qf_dominant, qf_first, shift_dy, shift_dx,
        verdict, confidence, qf_tables, qf_tables_kind, qf_last_agrees, seconds,
        qf_ijg_scale, grid_moved, note, evidence`` (table columns are empty for
        non-JPEG files; QFs and shift are empty for the verdicts
        ``uncompressed`` and ``undetermined``; ``qf_ijg_scale``: the file's
        tables are not IJG tables, so the pixel QFs are IJG-scale
        equivalents, ``qf_tables`` the nearest IJG QF; ``grid_moved``: the
        grid is not on the image's own 8x8 lattice, it was cropped after
        compression; ``note``: why a verdict is ``undetermined`` or a grid
        moved; ``verdict``, ``qf_first`` and the shift are the combined
        answer of :func:`jpegbench.estimate.combine_readings` with
        ``dct=True``; ``evidence`` says what decided), plus ground truth for
        corpus samples. Unreadable or too small images are listed in ``skipped``.
    """
    if estimator not in ESTIMATORS:
        raise InputError(f"estimator must be one of {sorted(ESTIMATORS)}, got {estimator!r}")
    if backend not in ("fast", "reference"):
        raise InputError(f"backend must be 'fast' or 'reference', got {backend!r}")
    if scheduler is not None:
        from jpegbench._cluster import cluster_client, is_client

        if not is_client(scheduler):
            with cluster_client(scheduler, workers=workers) as client:
                return estimate_inputs(inputs, estimator=estimator, backend=backend, device=device,
                                       save_curves=save_curves, max_pixels=max_pixels, progress=progress,
                                       scheduler=client)  # fmt: skip
    elif workers != 1:
        raise InputError(f"workers applies to scheduler='local' only (estimate runs in this process), got {workers!r}")
    items = _expand(inputs)
    opts = {"estimator": estimator, "backend": backend, "device": device, "max_pixels": max_pixels,
            "save_curves": save_curves, "dct": dct}  # fmt: skip
    bar = progress_bar(None, progress=progress, total=len(items), desc=f"estimate ({estimator})", unit="img",
                       leave=False)  # fmt: skip
    with bar:
        if scheduler is None:
            results = _estimate_local(items, opts, bar)
        else:
            results = _estimate_cluster(items, opts, scheduler, bar)
        rows, skipped, curves = [], [], {}
        for kind, value, mse in results:
            if kind == "skip":
                skipped.append(value)
                continue
            rows.append(value)
            if mse is not None:
                curves[value["path"]] = mse
    import pandas as pd

    table = pd.DataFrame(rows)
    accuracy = corpus_accuracy(table) if len(table) and "true_dominant_qf" in table else None
    return EstimateRun(table, skipped, accuracy, curves)


def corpus_accuracy(table: pd.DataFrame) -> pd.DataFrame:
    """Per manifest class, the share (%) of dominant QFs within 2, of correct shifts and of correct verdicts.

    Classes split the manifest's ``regime`` by alignment and QF order
    (:func:`jpegbench.synth.double_jpeg_class`, every aligned pair in one
    class): ``single``, ``aligned``, ``nonaligned qf1>qf2``,
    ``nonaligned qf1<qf2``, ``nonaligned qf1=qf2``. The true verdict is
    :func:`jpegbench.synth.chain_kind`. Rows without a manifest truth (loose
    images estimated in the same run) are left out.
    """
    import pandas as pd

    from jpegbench.synth.degrade import chain_kind, double_jpeg_class

    t = table[table["true_qf2"].notna()]
    truth = list(zip(t["true_qf1"], t["true_qf2"], t["true_aligned"].astype(bool)))
    verdict = np.array([chain_kind(q2, al) for _, q2, al in truth], dtype=object)
    cls = np.array(["aligned" if kind == "aligned-double" else double_jpeg_class(q1, q2, al)
                    for (q1, q2, al), kind in zip(truth, verdict)], dtype=object)  # fmt: skip
    d = pd.DataFrame({
        "class": cls,
        # an uncompressed / undetermined reading has no QF or shift: NaN, never within 2, never correct
        "dominant_within_2": (_num(t["qf_dominant"]) - _num(t["true_dominant_qf"])).abs() <= 2,
        "shift_correct": (_num(t["shift_dy"]) == _num(t["true_shift_dy"]))
        & (_num(t["shift_dx"]) == _num(t["true_shift_dx"])),
        "verdict_correct": t["verdict"] == verdict,
    })  # fmt: skip
    out = d.groupby("class", sort=False).agg(
        n=("dominant_within_2", "size"),
        dominant_within_2=("dominant_within_2", "mean"),
        shift_correct=("shift_correct", "mean"),
        verdict_correct=("verdict_correct", "mean"),
    )
    out[["dominant_within_2", "shift_correct", "verdict_correct"]] *= 100
    out.loc[out.index.isin(["single", "aligned"]), "shift_correct"] = np.nan
    return out


def _num(col: pd.Series) -> pd.Series:
    import pandas as pd

    return pd.to_numeric(col, errors="coerce").astype("float64")


def write_table(table: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a table as Parquet (``.parquet``) or CSV (anything else), atomically."""
    import io

    p = Path(path)
    buf = io.BytesIO()
    if p.suffix == ".parquet":
        table.to_parquet(buf, index=False)
    else:
        buf.write(table.to_csv(index=False).encode())
    atomic_write_bytes(p, buf.getvalue())
    return p
