"""Write a corpus from a recipe (``lq/``, ``hq/``, ``manifest.parquet``) and read its manifest back.

Layout of a corpus directory ``DIR``::

    DIR/lq/<sample_id>.jpg      the last JPEG exactly as the encoder wrote it
    DIR/hq/<sample_id>.png      the ground truth: the clean source (in the
                                recipe's colour mode) with the same shifts,
                                crops and resizes as the degraded image
    DIR/manifest.parquet        one row per sample (MANIFEST_COLUMNS), also as
    DIR/manifest.csv            CSV; written last, so its presence means complete
    DIR/recipe.toml             the recipe file, byte for byte
    DIR/corpus.json             effective recipe, seed, encoder, jpegbench
                                version, conventions, fingerprint

Guarantees
----------
* Same recipe, sources and seed give byte-identical files and manifest for
  any ``workers`` (every sample is a function of its spec only).
* Each finished sample leaves a journal row, written after its files: one
  JSON line appended to its writer process's journal (``DIR/.rows/*.jsonl``).
  Sample files and rows are written in place (a file a kill cuts short has no
  valid row, so it is redone; a row a kill cuts short is not valid JSON and
  is ignored), the corpus-level files
  (manifest, recipe, corpus.json) through a temporary name and a rename, the
  manifest last. A run killed at any point and started again reuses the
  samples whose files still hash to their journal row and ends with the same
  corpus as an uninterrupted run; without ``manifest.parquet`` a folder is
  never read as a corpus.
* ``DIR/.lock`` keeps a second concurrent run out (:class:`~jpegbench.errors.LockError`).
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import shutil
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from jpegbench._fs import atomic_write_bytes, remove_stale_parts_in, sha256_bytes, sha256_file
from jpegbench._lock import DirLock
from jpegbench._progress import progress_bar
from jpegbench.codec import default_max_file_bytes, default_max_pixels
from jpegbench.errors import CorpusError, InputError
from jpegbench.synth.recipe import Recipe, SampleSpec, load_recipe

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["synthesize", "read_manifest", "MANIFEST_COLUMNS", "CONVENTIONS"]

#: Columns of ``manifest.parquet``, in order (see :data:`CONVENTIONS` for their meaning).
MANIFEST_COLUMNS: tuple[str, ...] = (
    "sample_id", "index", "source", "source_sha256", "color", "y_definition",
    "qf1", "qf2", "qf_last", "dominant_qf", "n_jpeg", "qfs", "stages",
    "shift_dy", "shift_dx", "aligned", "regime",
    "backend", "encoder", "encoder_version", "subsampling",
    "lq_path", "hq_path", "lq_sha256", "hq_sha256", "lq_bytes", "width", "height", "recipe_sha256",
)  # fmt: skip
_INT_COLUMNS = ("index", "qf1", "qf2", "qf_last", "dominant_qf", "n_jpeg", "shift_dy", "shift_dx", "lq_bytes",
                "width", "height")  # fmt: skip

#: Conventions written into every ``corpus.json``.
CONVENTIONS: dict[str, str] = {
    "pixels": "uint8; gray (H, W), rgb (H, W, 3)",
    "gray": "Y of BT.601 studio swing (MATLAB rgb2ycbcr, jpegbench.codec.rgb_to_y), rounded to uint8",
    "shift": "(dy, dx): rows and columns removed from the top left, 0..7",
    "stages": "JSON list applied in order: jpeg(qf), shift(dy, dx), crop(top, left, height, width), "
    "resize(height, width, method)",
    "qf1_qf2": "qf1 = first QF; qf2 = last QF for two or more JPEG stages, -1 for a single JPEG",
    "shift_dy_dx": "where the first JPEG grid lies in the final image: rows/columns removed after it, mod 8; "
    "-1 if resized",
    "aligned": "every JPEG grid starts at pixel (0, 0) of the final image (mod 8)",
    "regime": "single | simple (aligned, or earlier QF > last QF) | "
    "complex (non-aligned earlier JPEG with QF <= last QF)",
    "dominant_qf": "min over the chain's QFs",
    "lq": "the last JPEG file exactly as the encoder wrote it (IJG tables, no optimisation)",
    "hq": "PNG (Pillow, compress_level 6) of the clean source with the same geometric stages",
    "subsampling": "chroma subsampling of RGB files; 'none' for gray (one component)",
}

_OURS = {"lq", "hq", ".rows", ".lock", ".lock.break", "manifest.parquet", "manifest.csv", "recipe.toml", "corpus.json"}
_FORMAT = "jpegbench-corpus/1"


from jpegbench.synth._samples import (  # noqa: E402  (the worker side)
    _HQ_CACHE, _SRC_CACHE, _append_row, _close_journals, _init_worker, _make_sample, _make_samples, _read_journals,
)  # fmt: skip

# --- parent side ------------------------------------------------------------------------------------------


def _corpus_info(recipe: Recipe) -> dict[str, Any]:
    from jpegbench import __version__

    enc = recipe.encoder_info
    encoder = {**enc, "subsampling": recipe.subsampling if recipe.color == "rgb" else "none"}
    if recipe.backend == "jpeglib":
        encoder["version"] = recipe.version
    key = {
        "format": _FORMAT,
        "jpegbench_version": __version__,
        "recipe_sha256": recipe.sha256,
        "seed": recipe.seed,
        "color": recipe.color,
        "encoder": encoder,
        "layout": recipe.layout,
        "sources": [[s.source_name, s.source_sha256] for s in _unique_sources(recipe.samples())],
    }
    fingerprint = sha256_bytes(json.dumps(key, sort_keys=True).encode())
    return {
        "format": _FORMAT,
        "jpegbench_version": __version__,
        "fingerprint": fingerprint,
        "recipe_file": "recipe.toml",
        "recipe_sha256": recipe.sha256,
        "recipe": recipe.to_dict(),
        "seed": recipe.seed,
        "color": recipe.color,
        "n_sources": len(recipe.sources),
        "n_samples": len(recipe.samples()),
        "encoder": encoder,
        "conventions": CONVENTIONS,
        "manifest_columns": list(MANIFEST_COLUMNS),
    }


def _unique_sources(specs: Iterable[SampleSpec]) -> list[SampleSpec]:
    seen: dict[str, SampleSpec] = {}
    for s in specs:
        seen.setdefault(s.source_name, s)
    return list(seen.values())


def _remove_parts(out: Path) -> None:
    """A killed run's temporary files: corpus-level files here, and sample files of older versions below."""
    remove_stale_parts_in(out)
    for d in ("lq", "hq", ".rows"):
        remove_stale_parts_in(out / d, recursive=True)


def _is_corpus(out: Path) -> bool:
    try:
        info = json.loads((out / "corpus.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and info.get("format") == _FORMAT


def _prepare_dir(out: Path, fingerprint: str, overwrite: bool) -> None:
    """Check that ``out`` is empty, or a corpus of this recipe (resume), or may be overwritten."""
    names = {n for n in os.listdir(out) if not n.endswith(".part")}
    foreign = sorted(names - _OURS)
    # What users and `jpegbench evaluate` keep in a corpus (results, the curve
    # cache, notes) is left alone; only a folder that is not a corpus is refused.
    if foreign and not _is_corpus(out):
        raise CorpusError(
            f"{out} is not empty and is not a jpegbench corpus (found {foreign[0]!r}); choose a new or empty directory"
        )
    old = None
    if (out / "corpus.json").exists():
        try:
            old = json.loads((out / "corpus.json").read_text()).get("fingerprint")
        except (OSError, ValueError, AttributeError):
            old = None
    has_data = bool(names & {"lq", "hq", ".rows", "manifest.parquet", "manifest.csv", "corpus.json"})
    if has_data and old != fingerprint:
        if not overwrite:
            raise CorpusError(
                f"{out} holds a corpus of another recipe, seed, source set or jpegbench version; "
                "pass overwrite=True (--overwrite) or choose another directory"
            )
        for n in ("lq", "hq", ".rows", ".cache"):
            shutil.rmtree(out / n, ignore_errors=True)
        for n in ("manifest.parquet", "manifest.csv", "corpus.json", "recipe.toml"):
            (out / n).unlink(missing_ok=True)
    _remove_parts(out)


def _verified(out: Path, spec: SampleSpec, row: dict[str, Any]) -> bool:
    if row.get("sample_id") != spec.sample_id or row.get("index") != spec.index:
        return False
    if row.get("lq_path") != spec.lq_path or row.get("hq_path") != spec.hq_path:
        return False
    try:
        lq_ok = sha256_file(out / spec.lq_path) == row["lq_sha256"]
        return lq_ok and sha256_file(out / spec.hq_path) == row["hq_sha256"]
    except (OSError, KeyError):
        return False


def _reusable_rows(out: Path, specs: list[SampleSpec], fingerprint: str) -> dict[int, dict[str, Any]]:
    """Rows of samples already made by an earlier run whose files still verify."""
    previous: dict[int, dict[str, Any]] = {}
    if (out / "manifest.parquet").exists():  # a finished corpus (journal already removed)
        try:
            import pyarrow.parquet as pq

            for r in pq.read_table(out / "manifest.parquet").to_pylist():
                previous[int(r["index"])] = r
        except Exception:  # a damaged manifest is simply rebuilt
            previous = {}
    if (out / ".rows").is_dir():
        previous.update(_read_journals(out / ".rows", fingerprint))
    done = {}
    for spec in specs:
        row = previous.get(spec.index)
        if row is not None and _verified(out, spec, row):
            done[spec.index] = {k: row[k] for k in MANIFEST_COLUMNS}
    return done


def _chunks(todo: list[SampleSpec], workers: int) -> list[list[SampleSpec]]:
    """Contiguous chunks that never split a source image, large first and shrinking at the end.

    Each chunk aims at ``remaining / (3 * workers)`` samples (guided
    self-scheduling): few chunks while there is plenty left, and chunks of one
    source at the end, so the workers finish close together instead of one
    waiting for the other's last big chunk. A worker decodes each source and
    encodes each ground-truth PNG once.
    """
    chunks: list[list[SampleSpec]] = []
    current: list[SampleSpec] = []
    remaining = len(todo)
    for i, spec in enumerate(todo):
        current.append(spec)
        last_of_source = i + 1 == len(todo) or todo[i + 1].source != spec.source
        if last_of_source and len(current) >= max(1, math.ceil(remaining / (3 * workers))):
            chunks.append(current)
            remaining -= len(current)
            current = []
    if current:
        chunks.append(current)
    return chunks


def _run_cluster(todo: list[SampleSpec], cfg: dict[str, Any], client: Any, bar) -> list[dict[str, Any]]:
    """The Dask path of :func:`_run`: chunks of samples are the tasks, and the client alone journals their rows.

    Workers write the sample files into the (shared) corpus folder and return
    the rows; each chunk's rows are journalled here as it arrives, so a
    killed client leaves a journal that the next run (local or Dask) resumes.
    """
    from jpegbench._cluster import n_threads, run_tasks

    out = Path(cfg["out_dir"])
    # Absolute: workers do not share this process's working directory.
    from jpegbench import __version__

    cfg = {**cfg, "cluster": True, "out_dir": str(out.resolve()), "jpegbench_version": __version__}
    chunks = _chunks(todo, n_threads(client))

    def arrived(i: int, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            _append_row(out, {"fingerprint": cfg["fingerprint"], "row": row})
        arrived.n += 1
        bar.set_postfix_str(f"{arrived.n}/{len(chunks)} tasks", refresh=False)
        bar.update(len(rows))

    arrived.n = 0
    return [row for rows in run_tasks(client, _make_samples, chunks, cfg, on_result=arrived) for row in rows]


def _run(todo: list[SampleSpec], cfg: dict[str, Any], workers: int, bar, client: Any = None) -> list[dict[str, Any]]:
    if client is not None:
        return _run_cluster(todo, cfg, client, bar)
    if workers == 1 or len(todo) < 2:
        rows = []
        for spec in todo:
            rows.append(_make_sample(spec, cfg))
            bar.update(1)
        return rows
    chunks = _chunks(todo, workers)
    rows: list[dict[str, Any]] = []
    ctx = _mp_context()
    with ProcessPoolExecutor(max_workers=min(workers, len(chunks)), mp_context=ctx, initializer=_init_worker) as ex:
        pending = {ex.submit(_make_samples, c, cfg): len(c) for c in chunks}
        while pending:
            finished, _ = wait(pending, return_when=FIRST_EXCEPTION)
            for f in finished:
                n = pending.pop(f)
                if f.exception() is not None:
                    for g in pending:
                        g.cancel()
                    raise f.exception()
                rows.extend(f.result())
                bar.update(n)
    return rows


def start_workers_early(workers: int) -> None:
    """Start the worker processes' fork server now, in the background, when ``workers > 1``.

    It takes ~0.3 s (a Python process importing the worker code); a caller
    that has other work before :func:`synthesize` (e.g. :func:`load_recipe`,
    which hashes every source) overlaps the two. Optional: ``synthesize``
    starts the server itself when needed.
    """
    if workers > 1 and _mp_context().get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


def _mp_context() -> multiprocessing.context.BaseContext:
    # Never fork this process (callers may hold threads: torch, tqdm, BLAS). A fork server
    # that has imported the worker code and the codec's Pillow plugins once (jpegbench.codec
    # imports Pillow lazily) makes each worker cheap to start.
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["jpegbench.synth.corpus", "jpegbench.synth._samples", "PIL.Image", "PIL.JpegImagePlugin", "PIL.PngImagePlugin"])
        return ctx
    return multiprocessing.get_context("spawn")


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    import pandas as pd

    df = pd.DataFrame(sorted(rows, key=lambda r: r["index"]), columns=list(MANIFEST_COLUMNS))
    df = df.astype({c: "int64" for c in _INT_COLUMNS} | {"aligned": "bool"})
    return df.reset_index(drop=True)


def _write_manifest(out: Path, df: pd.DataFrame) -> None:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), buf, compression="zstd")
    atomic_write_bytes(out / "manifest.csv", df.to_csv(index=False, lineterminator="\n").encode())
    atomic_write_bytes(out / "manifest.parquet", buf.getvalue())  # last: its presence means complete


def synthesize(
    recipe: Recipe | str | Path,
    out_dir: str | Path,
    *,
    workers: int = 1,
    progress: bool = True,
    overwrite: bool = False,
    scheduler: Any = None,
) -> pd.DataFrame:
    """Make the corpus of a recipe in ``out_dir`` (see the module docstring for the layout).

    Parameters
    ----------
    recipe : Recipe or path to a TOML recipe
        Use :func:`~jpegbench.synth.recipe.load_recipe` for ``source``/``seed`` overrides.
    out_dir : path
        Created if missing. If it holds an unfinished or finished corpus of the
        same recipe, seed and sources, that corpus is resumed (verified files
        are kept).
    workers : int
        Worker processes (1: in this process), also those of ``scheduler="local"``.
        The result does not depend on it.
    progress : bool
        Show a progress bar on stderr (only when stderr is a terminal, or with
        ``JPEGBENCH_PROGRESS=1``: :mod:`jpegbench._progress`).
    overwrite : bool
        Replace a corpus of a *different* recipe found in ``out_dir``.
    scheduler : str or distributed.Client, optional
        Run on Dask (the ``jpegbench[dask]`` extra) instead: ``"local"`` for a
        LocalCluster of ``workers`` processes, the address of a running
        scheduler (``tcp://host:8786``), or a client. Tasks are chunks of
        samples of whole sources; workers write the sample files into
        ``out_dir`` (on a real cluster a folder every worker sees at the same
        path, as the sources must be), and this process writes the journal
        and the manifest. The corpus is byte-identical to a local run's, and
        a run killed on one executor resumes on the other.

    Returns
    -------
    pandas.DataFrame
        The manifest (:data:`MANIFEST_COLUMNS`), ordered by ``index``.

    Notes
    -----
    With ``workers > 1`` the workers are started by a fork server (never by
    forking the caller), so a script that calls this at top level needs the
    usual ``if __name__ == "__main__":`` guard.

    Raises
    ------
    ConfigError
        Invalid recipe (when given as a path), before any work.
    CorpusError
        ``out_dir`` is a file, holds foreign files, or a different corpus.
    LockError
        Another run is writing ``out_dir``.
    ClusterError
        ``scheduler`` unreachable or without workers (before ``out_dir`` is
        touched), distributed missing, or a task's workers kept dying.
    """
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InputError(f"workers must be an integer >= 1, got {workers!r}")
    if scheduler is not None:
        from jpegbench._cluster import cluster_client, is_client

        # Connected (or the cluster started) before out_dir exists: a bad address writes nothing.
        if not is_client(scheduler):
            with cluster_client(scheduler, workers=workers) as client:
                return synthesize(recipe, out_dir, workers=workers, progress=progress, overwrite=overwrite,
                                  scheduler=client)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise CorpusError(f"{out} exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a parent is a file, read-only file system, permission denied
        raise CorpusError(f"{out}: cannot create the corpus directory ({exc.strerror or exc})") from None
    specs = recipe.samples()
    info = _corpus_info(recipe)
    with DirLock(out):
        _prepare_dir(out, info["fingerprint"], overwrite)
        atomic_write_bytes(out / "recipe.toml", recipe.text)
        atomic_write_bytes(out / "corpus.json", (json.dumps(info, indent=2, sort_keys=True) + "\n").encode())
        done = _reusable_rows(out, specs, info["fingerprint"])
        todo = [s for s in specs if s.index not in done]
        if todo:
            for n in ("manifest.parquet", "manifest.csv"):
                (out / n).unlink(missing_ok=True)
            (out / ".rows").mkdir(exist_ok=True)
        cfg = {
            "out_dir": str(out),
            "color": recipe.color,
            "encoder": {"backend": recipe.backend, "version": recipe.version, "subsampling": recipe.subsampling},
            "encoder_info": {k: v for k, v in recipe.encoder_info.items()},
            "recipe_sha256": recipe.sha256,
            "fingerprint": info["fingerprint"],
            # The parent's limits (a limits() block is not inherited by worker processes).
            "limits": {"max_pixels": default_max_pixels(), "max_file_bytes": default_max_file_bytes()},
        }
        try:
            bar = progress_bar(progress=progress, total=len(specs), initial=len(done), desc=f"synth {recipe.name}",
                               unit="img")
            with bar:
                rows = list(done.values()) + _run(todo, cfg, workers, bar, client=scheduler)
        finally:
            _close_journals()
            _SRC_CACHE.clear()
            _HQ_CACHE.clear()
        if scheduler is not None:
            _remove_parts(out)  # of workers killed mid-write (their tasks ran again elsewhere)
        df = _frame(rows)
        _write_manifest(out, df)
        shutil.rmtree(out / ".rows", ignore_errors=True)
    return df


def read_manifest(corpus_dir: str | Path, *, verify: bool = False) -> pd.DataFrame:
    """Read a corpus's ``manifest.parquet``.

    Parameters
    ----------
    corpus_dir : path
        A directory written by :func:`synthesize`.
    verify : bool
        Also check that every ``lq``/``hq`` file exists and matches its sha256.

    Raises
    ------
    CorpusError
        Missing directory or manifest (e.g. an unfinished run), unreadable or
        malformed manifest, or (``verify``) a missing or altered file.
    """
    import pandas as pd

    d = Path(corpus_dir)
    if not d.is_dir():
        raise CorpusError(f"{d}: no such corpus directory")
    m = d / "manifest.parquet"
    if not m.is_file():
        raise CorpusError(f"{d}: no manifest.parquet (not a corpus, or its synthesis did not finish; run synth again)")
    try:
        df = pd.read_parquet(m)
    except Exception as exc:
        msg = " ".join(str(exc).split())
        raise CorpusError(f"{m}: cannot read the manifest ({msg})") from None
    missing = [c for c in MANIFEST_COLUMNS if c not in df.columns]
    if missing:
        raise CorpusError(f"{m}: not a jpegbench manifest (missing column {missing[0]!r})")
    if verify:
        for r in df.itertuples(index=False):
            for rel, sha in ((r.lq_path, r.lq_sha256), (r.hq_path, r.hq_sha256)):
                p = d / rel
                if not p.is_file():
                    raise CorpusError(f"{p}: listed in the manifest but missing")
                if sha256_file(p) != sha:
                    raise CorpusError(f"{p}: sha256 differs from the manifest (file altered)")
    return df
