"""The ``jpegbench`` command line: one subcommand per stage, each a call of one public function.

Library errors (:class:`jpegbench.errors.JpegbenchError`) are caught here,
once, and printed as a single ``error: ...`` line with exit status 2; a
batch that skipped bad inputs exits with status 1 after a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Callable, Sequence

from jpegbench import __version__
from jpegbench.errors import InputError, JpegbenchError, QualityError

EXIT_OK, EXIT_SKIPPED, EXIT_ERROR, EXIT_INTERNAL = 0, 1, 2, 3

_COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {}


def command(name: str):
    """Register ``configure(parser)`` / ``run(args)`` for a subcommand."""

    def wrap(configure):
        def with_run(run):
            _COMMANDS[name] = (configure, run)
            return run

        return with_run

    return wrap


def _err(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)


def _skip_summary(skipped: list[tuple[str, str]], *, skip_bad: bool = False) -> int:
    """Print what was skipped and why; exit status 1 unless ``--skip-bad``."""
    if not skipped:
        return EXIT_OK
    print(f"skipped {len(skipped)} input(s):", file=sys.stderr)
    for path, why in skipped:
        print(f"  {path}: {why}", file=sys.stderr)
    return EXIT_OK if skip_bad else EXIT_SKIPPED


def _limit_args(p: argparse.ArgumentParser) -> None:
    """``--max-pixels``: for every command that decodes images (applied in :func:`main`)."""
    p.add_argument("--max-pixels", type=int, default=None, metavar="N",
                   help="refuse images of more than N pixels, checked on the header before decoding "
                        "(overrides $JPEGBENCH_MAX_PIXELS; default 178956970). Files over "
                        "$JPEGBENCH_MAX_FILE_BYTES (default 512 MiB) are refused before reading")


# ---------------------------------------------------------------- inspect
def _inspect_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", metavar="FILE", help="JPEG files to describe")
    p.add_argument("--json", action="store_true", help="print one JSON document (a list of records)")
    p.add_argument("--no-tables", action="store_true", help="omit the quantization tables")
    p.add_argument("--skip-bad", action="store_true", help="exit 0 even if some files could not be read")


@command("inspect")(_inspect_args)
def _inspect(args: argparse.Namespace) -> int:
    from jpegbench.codec import inspect_jpeg

    records, skipped = [], []
    for f in args.files:
        try:
            records.append(inspect_jpeg(f, with_tables=not args.no_tables))
        except JpegbenchError as exc:
            msg = str(exc)
            skipped.append((f, msg.removeprefix(f"{f}: ")))
            if len(args.files) == 1:
                raise
    if args.json:
        print(json.dumps(records, indent=1))
    else:
        for r in records:
            qf = f"QF {r['qf']} ({r['qf_kind']}" + ("" if r["ijg_tables"] else f", non-IJG tables, confidence {r['qf_confidence']:.2f}") + ")"
            sub = f" {r['subsampling']}" if r["subsampling"] else ""
            orient = f", EXIF orientation {r['orientation']}" if r["orientation"] not in (None, 1) else ""
            print(f"{r['path']}: {r['width']}x{r['height']} {r['color']}{sub}, {r['mode']} {r['coding']}, "
                  f"{r['precision']}-bit, {r['bytes']} bytes, {qf}{orient}")
            for i, t in enumerate(r.get("qtables", [])):
                label = "luma" if i == 0 else f"chroma{'' if len(r['qtables']) == 2 else i}"
                print(f"  {label:7s} " + " | ".join(" ".join(f"{v:3d}" for v in row) for row in t))
    return _skip_summary(skipped, skip_bad=args.skip_bad)




# ---------------------------------------------------------------- synth
def _synth_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", metavar="RECIPE", help="TOML recipe, e.g. datasets/fbcnn-table3.toml")
    p.add_argument("--out", default=None, help="corpus folder (default: corpora/<recipe name>)")
    p.add_argument("--source", default=None, help="folder of clean images replacing the recipe's source")
    p.add_argument("--workers", type=int, default=1, help="worker processes (the corpus does not depend on it)")
    p.add_argument("--seed", type=int, default=None, help="replace the recipe's seed")
    p.add_argument("--overwrite", action="store_true", help="replace a corpus of a different recipe in --out")
    _limit_args(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")


@command("synth")(_synth_args)
def _synth(args: argparse.Namespace) -> int:
    """Synthesise a JPEG corpus (lq/*.jpg, hq/*.png, manifest.parquet) from a recipe; resumable."""
    from jpegbench.synth import load_recipe, synthesize
    from jpegbench.synth.corpus import start_workers_early

    if args.workers < 1:
        raise InputError(f"--workers must be >= 1, got {args.workers}")
    start_workers_early(args.workers)  # the fork server boots while the recipe's sources are hashed
    recipe = load_recipe(args.recipe, source=args.source, seed=args.seed)
    out = Path(args.out) if args.out else Path("corpora") / recipe.name
    df = synthesize(recipe, out, workers=args.workers, progress=not args.quiet, overwrite=args.overwrite)
    counts = ", ".join(f"{k} {v}" for k, v in df["regime"].value_counts().sort_index().items())
    print(f"wrote {len(df)} samples ({counts}) to {out}; manifest: {out / 'manifest.parquet'}")
    return EXIT_OK



# ---------------------------------------------------------------- estimate
def _estimate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="images, folders of images, or corpus folders")
    p.add_argument("--estimator", default="robust", help="robust (default) or paper (FBCNN-D as written)")
    p.add_argument("--backend", default="fast",
                   help="fast (default: the same numbers as reference, libjpeg's arithmetic emulated exactly; a C "
                        "kernel on CPU, torch on CUDA) or reference (real re-encoding, ~25x slower)")  # fmt: skip
    _device_arg(p)
    p.add_argument("--save-curves", action="store_true", help="also write the [8, 8, n_qf] MSE curves (.npz)")
    p.add_argument("--out", default=None, help="results table (.parquet or .csv)")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout instead of lines")
    p.add_argument("--skip-bad", action="store_true", help="exit 0 even if some inputs were skipped")
    _limit_args(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")


@command("estimate")(_estimate_args)
def _estimate(args: argparse.Namespace) -> int:
    """Estimate the last and dominant QF, first grid shift and verdict of images from MSE curves."""
    from jpegbench.estimate.batch import estimate_inputs, write_table

    if args.out and Path(args.out).suffix not in (".parquet", ".csv"):
        raise InputError(f"--out must end in .parquet or .csv, got {args.out}")
    run = estimate_inputs(args.inputs, estimator=args.estimator, backend=args.backend, device=args.device,
                          save_curves=args.save_curves, progress=not args.quiet)
    if args.out:
        write_table(run.table, args.out)
        if args.save_curves and run.curves:
            import io

            import numpy as np

            from jpegbench.codec import atomic_write_bytes

            buf = io.BytesIO()
            np.savez_compressed(buf, paths=np.array(list(run.curves)), mse=np.stack(list(run.curves.values())))
            atomic_write_bytes(Path(args.out).with_suffix(".curves.npz"), buf.getvalue())
    if args.json:
        summary = {"images": len(run.table), "skipped": [{"path": p, "reason": r} for p, r in run.skipped],
                   "estimator": args.estimator, "backend": args.backend,
                   "results": run.table.drop(columns=[c for c in run.table if c.startswith("true_")]).to_dict("records")}
        if run.accuracy is not None:
            summary["accuracy"] = run.accuracy.reset_index().to_dict("records")
        print(json.dumps(summary, indent=1, default=lambda v: None if v is None or v != v else str(v)))
    else:
        for r in run.table.to_dict("records"):
            tables = "" if r["qf_tables"] is None or r["qf_tables"] != r["qf_tables"] else (
                f", tables QF {r['qf_tables']} ({r['qf_tables_kind']})")
            print(f"{r['path']}: {r['verdict']}, last QF {r['qf_last']}, dominant QF {r['qf_dominant']}, "
                  f"first-grid shift ({r['shift_dy']}, {r['shift_dx']}), confidence {r['confidence']:.2f}{tables}")
        if run.accuracy is not None:
            print("\naccuracy against the corpus manifest (%):")
            print(run.accuracy.round(1).to_string())
    if args.out:
        print(f"wrote {len(run.table)} rows to {args.out}", file=sys.stderr if args.json else sys.stdout)
    return _skip_summary(run.skipped, skip_bad=args.skip_bad)


# ---------------------------------------------------------------- restore
def _device_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when present, else cpu)")


def _restore_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders of images")
    p.add_argument("--method", default="fbcnn", help="jpeg, fbcnn, fbcnn-d or fbcnn-a (default fbcnn)")
    p.add_argument("--qf", type=float, default=None,
                   help="manual QF (1..100) for the controller instead of the predicted/estimated one")
    p.add_argument("--weights", default=None,
                   help="weight file (path or a known name such as fbcnn_gray.pth); default: shipped small model")
    p.add_argument("--weights-dir", default=None, help="folder of weight files (or $JPEGBENCH_WEIGHTS_DIR)")
    p.add_argument("--estimator", default="robust", help="dominant-QF estimator for fbcnn-d: robust or paper")
    p.add_argument("--tile", type=int, default=None,
                   help="tile size in pixels (multiple of 8); default: whole image, 512 above 4 Mpixel")
    _device_arg(p)
    p.add_argument("--out", required=True, help="output folder (PNG files and restore.csv)")
    p.add_argument("--skip-bad", action="store_true", help="exit 0 even if some inputs were skipped")
    _limit_args(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")


@command("restore")(_restore_args)
def _restore(args: argparse.Namespace) -> int:
    """Restore JPEG images with FBCNN, FBCNN-D, FBCNN-A (or the identity) and record the QFs used."""
    from jpegbench.models import restore_files

    if args.qf is not None and not 1 <= args.qf <= 100:
        raise QualityError(f"--qf must be in 1..100, got {args.qf:g}")
    run = restore_files(args.inputs, args.out, method=args.method, qf=args.qf, weights=args.weights,
                        weights_dir=args.weights_dir, tile=args.tile, device=args.device,
                        estimator=args.estimator, progress=not args.quiet)
    for row in run.table.itertuples():
        notes = [f"{label} {v:.1f}" for label, v in (("predicted QF", row.qf_predicted), ("QF used", row.qf_used))
                 if v is not None and v == v]
        print(f"{row.input} -> {row.output}" + (f" ({', '.join(notes)})" if notes else ""))
    print(f"wrote {len(run.table)} image(s) and {Path(args.out) / 'restore.csv'}")
    return _skip_summary(run.skipped, skip_bad=args.skip_bad)




# ---------------------------------------------------------------- train
def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", metavar="CONFIG", help="training config TOML, e.g. configs/fbcnn-small-gray.toml")
    p.add_argument("--out", required=True, help="run folder (checkpoints, log.csv, curves.png)")
    _device_arg(p)
    p.add_argument("--no-resume", action="store_true", help="start over instead of resuming from last.pt")
    _limit_args(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")


@command("train")(_train_args)
def _train(args: argparse.Namespace) -> int:
    """Train FBCNN (single JPEG) or FBCNN-A (double JPEG) from a config; resumes after interruption."""
    from jpegbench.models.training import train

    summary = train(args.config, args.out, resume=not args.no_resume, device=args.device, progress=not args.quiet)
    print(json.dumps(summary, indent=1, default=str))
    return EXIT_OK


# ---------------------------------------------------------------- evaluate
def _evaluate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("corpus", metavar="CORPUS", help="corpus folder written by `jpegbench synth`")
    p.add_argument("--methods", default="jpeg",
                   help="comma-separated methods: jpeg, fbcnn, fbcnn-d, fbcnn-a (default jpeg)")
    p.add_argument("--weights-dir", default=None, help="folder of weight files (or $JPEGBENCH_WEIGHTS_DIR)")
    p.add_argument("--weights", action="append", default=[], metavar="METHOD=PATH",
                   help="weights for one method, e.g. fbcnn=fbcnn_gray.pth (repeatable)")
    p.add_argument("--estimator", default="robust", help="dominant-QF estimator for fbcnn-d: robust or paper")
    _device_arg(p)
    p.add_argument("--out", default=None, help="results file (default: CORPUS/results.parquet)")
    p.add_argument("--no-resume", action="store_true", help="start over instead of keeping evaluated rows")
    p.add_argument("--no-curve-cache", action="store_true",
                   help="do not keep or reuse the MSE curves under CORPUS/.cache/curves (by default a second "
                        "evaluation of the same corpus, e.g. with other weights, skips the curves)")
    _limit_args(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _weights_overrides(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        method, sep, path = item.partition("=")
        if not sep or not method or not path:
            raise InputError(f"--weights expects METHOD=PATH, got {item!r}")
        out[method.strip()] = path.strip()
    return out


@command("evaluate")(_evaluate_args)
def _evaluate(args: argparse.Namespace) -> int:
    """Restore a corpus with each method and measure PSNR, SSIM, PSNR-B and QFs (results.parquet)."""
    from jpegbench.report import evaluate

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    out = Path(args.out) if args.out else Path(args.corpus) / "results.parquet"
    df = evaluate(args.corpus, methods=methods, weights_dir=args.weights_dir,
                  weights=_weights_overrides(args.weights) or None, device=args.device, out=out,
                  estimator=args.estimator, progress=not args.quiet, resume=not args.no_resume,
                  cache_curves=not args.no_curve_cache)
    summary = df.groupby("method", sort=False)[["psnr", "ssim", "psnrb"]].mean()
    print(summary.round({"psnr": 2, "ssim": 4, "psnrb": 2}).to_string())
    print(f"wrote {len(df)} rows to {out}")
    return EXIT_OK


# ---------------------------------------------------------------- report
def _report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", nargs="+", metavar="RESULTS", help="results file(s) written by `jpegbench evaluate`")
    p.add_argument("--out", default=None, help="report folder (default: report/ next to the first results file)")
    p.add_argument("--corpus", default=None, help="corpus folder, if it moved since evaluation")
    _limit_args(p)


@command("report")(_report_args)
def _report(args: argparse.Namespace) -> int:
    """Write report.html (self-contained), report.md, tables (CSV/MD/TeX) and figures from results."""
    from jpegbench.report import build_report

    out = Path(args.out) if args.out else Path(args.results[0]).parent / "report"
    path = build_report(args.results if len(args.results) > 1 else args.results[0], out, corpus_dir=args.corpus)
    print(f"report: {path}")
    return EXIT_OK


# ---------------------------------------------------------------- demo
def _demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="jpegbench-demo", help="demo folder (default: ./jpegbench-demo)")
    _device_arg(p)
    _limit_args(p)
    p.add_argument("--quiet", action="store_true", help="no progress messages")


@command("demo")(_demo_args)
def _demo(args: argparse.Namespace) -> int:
    """Run synth -> estimate -> restore -> evaluate -> report on built-in public-domain photos."""
    from jpegbench.report import run_demo

    path = run_demo(args.out, device=args.device, progress=not args.quiet)
    print(f"report: {path}")
    return EXIT_OK


# ---------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jpegbench",
        description=(
            "JPEG forensics and degraded-dataset workbench around FBCNN (Jiang, Zhang, Timofte, ICCV 2021). "
            "Stages: synth -> estimate -> restore -> evaluate -> report; `jpegbench demo` runs them all "
            "on built-in images."
        ),
    )
    parser.add_argument("--version", action="version", version=f"jpegbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (configure, run) in _COMMANDS.items():
        doc = (run.__doc__ or "").strip().splitlines()
        sp = sub.add_parser(name, help=doc[0] if doc else None, description=" ".join(doc) if doc else None)
        configure(sp)
        sp.set_defaults(_run=run)
    return parser


def _run_with_limits(args: argparse.Namespace) -> int:
    from jpegbench.codec import limits

    n = getattr(args, "max_pixels", None)
    if n is not None and n < 1:
        raise InputError(f"--max-pixels must be an integer >= 1, got {n}")
    with limits(max_pixels=n):
        return int(args._run(args) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``jpegbench`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return EXIT_ERROR
    try:
        return _run_with_limits(args)
    except JpegbenchError as exc:
        _err(str(exc))
        return EXIT_ERROR
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except MemoryError:
        _err("out of memory (try a smaller --tile or --max-pixels)")
        return EXIT_ERROR
    except Exception as exc:  # a bug, not bad input: still one line unless asked for more
        if os.environ.get("JPEGBENCH_DEBUG"):
            raise
        _err(f"internal error: {type(exc).__name__}: {exc} (set JPEGBENCH_DEBUG=1 for the traceback)")
        return EXIT_INTERNAL


_inspect.__doc__ = "Describe JPEG files: size, colour, subsampling, tables, QF from the tables."

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
