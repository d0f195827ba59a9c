"""The ``jpegbench`` command line (click): one subcommand per stage, each a call of one public function.

Values are checked while the command line is parsed, by typed options
(choices, ranges, ``METHOD=PATH`` pairs, devices) that refuse in the same
words as the library would. Errors are turned into an exit status in one
place, the group's ``main`` (so the console script :func:`main` and
``click.testing.CliRunner`` see the same):

==========================  ======  ============================================
what                        status  stderr
==========================  ======  ============================================
success                     0
a batch skipped inputs      1       ``skipped N input(s):`` and one line each
                                    (0 with ``--skip-bad``)
bad input or usage          2       one line ``error: ...``
                                    (:class:`jpegbench.errors.JpegbenchError`,
                                    or a usage error from click)
a bug                       3       ``error: internal error: ...``
                                    (``JPEGBENCH_DEBUG=1`` for the traceback)
Ctrl-C                      130     ``error: interrupted``
==========================  ======  ============================================

Heavy modules (torch, pandas) are imported inside the commands, so that
``jpegbench --help`` stays fast; for the same reason the names of methods,
estimators and backends are written here and pinned to their registries by
``tests/test_cli.py``.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import click

from jpegbench import __version__
from jpegbench.errors import JpegbenchError

__all__ = ["cli", "main", "EXIT_OK", "EXIT_SKIPPED", "EXIT_ERROR", "EXIT_INTERNAL", "EXIT_INTERRUPTED"]

EXIT_OK, EXIT_SKIPPED, EXIT_ERROR, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

# Owned by jpegbench.models.methods (METHODS), jpegbench.estimate.api (ESTIMATORS),
# jpegbench.estimate.curves (CurveBackend) and jpegbench.models.weights (COLOR_CHOICES);
# importing those here would load torch for every --help. tests/test_cli.py checks they are equal.
METHODS: tuple[str, ...] = (
    "jpeg", "fbcnn", "fbcnn-d", "fbcnn-a", "qcn", "qcn-d", "qgcn", "qgcn-d", "ijcn", "ijcn-d",
)  # fmt: skip
ESTIMATORS: tuple[str, ...] = ("robust", "paper")
COLOR_CHOICES: tuple[str, ...] = ("auto", "color", "luma")  # jpegbench.models.weights.COLOR_CHOICES
BACKENDS: tuple[str, ...] = ("fast", "reference")
GRID = 8  # the JPEG block: tiles are whole blocks

MAX_PIXELS_HELP = (
    "refuse images of more than N pixels, checked on the header before decoding (overrides "
    "$JPEGBENCH_MAX_PIXELS; default 178956970). Files over $JPEGBENCH_MAX_FILE_BYTES (default 512 MiB) "
    "are refused before reading"
)


# ---------------------------------------------------------------- parameter types
class Refusal(click.BadParameter):
    """A value refused while parsing, in the library's words (the message names what it refuses)."""

    def format_message(self) -> str:
        return self.message


class Choice(click.Choice):
    """:class:`click.Choice` whose refusal reads like the library's (``refusal`` formats ``value``, ``choices``)."""

    def __init__(self, choices: Sequence[str], refusal: str) -> None:
        super().__init__(choices)
        self.refusal = refusal

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        if value in self.choices:
            return value
        raise Refusal(self.refusal.format(value=value, choices=tuple(self.choices),
                                          listed=", ".join(self.choices)), ctx, param)


METHOD = Choice(METHODS, "unknown method {value!r}; valid methods: {listed}")
ESTIMATOR = Choice(ESTIMATORS, "estimator must be one of {choices}, got {value!r}")
BACKEND = Choice(BACKENDS, "backend must be one of {choices}, got {value!r}")
COLOR_POLICY = Choice(COLOR_CHOICES, "color_policy must be one of {choices}, got {value!r}")


class _InRange:
    """A number in a range (click's own message for a non-number, ``refusal`` for one out of range)."""

    number: click.ParamType

    def __init__(self, min: float | None = None, max: float | None = None, *, refusal: str) -> None:
        super().__init__(min=min, max=max)  # type: ignore[call-arg]
        self.refusal = refusal

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = self.number.convert(value, param, ctx)
        if (self.min is not None and number < self.min) or (self.max is not None and number > self.max):
            raise Refusal(self.refusal.format(value=number), ctx, param)
        return number


class IntRange(_InRange, click.IntRange):
    number = click.INT


class FloatRange(_InRange, click.FloatRange):
    number = click.FLOAT


class MethodList(click.ParamType):
    """``jpeg,fbcnn``: a comma-separated list of methods, each checked; the option may also be repeated."""

    name = "methods"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, ...]:
        if isinstance(value, tuple):
            return value
        methods = tuple(m.strip() for m in str(value).split(",") if m.strip())
        if not methods:
            raise Refusal(f"methods must name at least one method; valid methods: {', '.join(METHODS)}", ctx, param)
        return tuple(METHOD.convert(m, param, ctx) for m in methods)


class MethodWeights(click.ParamType):
    """``METHOD=PATH``: weights for one method that has weights."""

    name = "METHOD=PATH"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, str]:
        if isinstance(value, tuple):
            return value
        method, sep, path = str(value).partition("=")
        method, path = method.strip(), path.strip()
        if not sep or not method or not path:
            raise Refusal(f"--weights expects METHOD=PATH, got {value!r}", ctx, param)
        if method not in METHODS or method == "jpeg":
            raise Refusal(f"weights given for {method!r}, which has none; methods with weights: "
                          f"{', '.join(m for m in METHODS if m != 'jpeg')}", ctx, param)
        return method, path


class Device(click.ParamType):
    """``cpu``, ``cuda``, ``cuda:N`` or ``mps``; whether this machine has it is checked by the library."""

    name = "device"
    _FORM = re.compile(r"(cpu|cuda|mps)(:[0-9]+)?")

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        if self._FORM.fullmatch(str(value)):
            return str(value)
        raise Refusal(f"device must be like 'cpu', 'cuda' or 'cuda:1', got {value!r}", ctx, param)


# The library checks paths itself, with its own messages (a batch skips a bad input instead of stopping):
# click.Path only types the argument (help, shell completion), it checks nothing.
PATH = click.Path(readable=False)


def _multiple_of_grid(ctx: click.Context, param: click.Parameter, tile: int | None) -> int | None:
    if tile is not None and tile % GRID:
        raise Refusal(f"tile must be a multiple of {GRID} and at least {2 * GRID} pixels, got {tile!r}", ctx, param)
    return tile


def _table_suffix(ctx: click.Context, param: click.Parameter, out: str | None) -> str | None:
    if out and Path(out).suffix not in (".parquet", ".csv"):
        raise Refusal(f"--out must end in .parquet or .csv, got {out}", ctx, param)
    return out


# ---------------------------------------------------------------- shared options
def color_policy_option(f: Callable) -> Callable:
    return click.option("--color-policy", type=COLOR_POLICY, default="auto", show_default=True,
                        help="RGB images with fbcnn, fbcnn-d, fbcnn-a: auto (the colour model if found, else the "
                             "gray model on the luma), color (the colour model or an error), luma (the gray model "
                             "on the luma, chroma kept); gray images always get the gray model")(f)


def device_option(f: Callable) -> Callable:
    return click.option("--device", type=Device(), default=None, metavar="DEVICE",
                        help="cpu, cuda or cuda:N (default: cuda when present, else cpu)")(f)


def quiet_option(f: Callable) -> Callable:
    return click.option("--quiet", is_flag=True, help="no progress bar")(f)


def skip_bad_option(f: Callable) -> Callable:
    return click.option("--skip-bad", is_flag=True, help="exit 0 even if some inputs were skipped")(f)


def estimator_option(help: str) -> Callable[[Callable], Callable]:
    return click.option("--estimator", type=ESTIMATOR, default="robust", show_default=True, help=help)


def decodes_images(f: Callable) -> Callable:
    """``--max-pixels``, for every command that decodes images: the command runs in a ``limits`` block."""

    @click.option("--max-pixels", type=IntRange(min=1, refusal="--max-pixels must be an integer >= 1, got {value}"),
                  default=None, metavar="N", help=MAX_PIXELS_HELP)
    @functools.wraps(f)
    def run(*args: Any, max_pixels: int | None, **kwargs: Any) -> int:
        from jpegbench.codec import limits

        with limits(max_pixels=max_pixels):
            return f(*args, **kwargs)

    return run


def _skip_summary(skipped: list[tuple[str, str]], *, skip_bad: bool = False) -> int:
    """Print what was skipped and why; exit status 1 unless ``--skip-bad``."""
    if not skipped:
        return EXIT_OK
    click.echo(f"skipped {len(skipped)} input(s):", err=True)
    for path, why in skipped:
        click.echo(f"  {path}: {why}", err=True)
    return EXIT_OK if skip_bad else EXIT_SKIPPED


# ---------------------------------------------------------------- the group
class _Command(click.Command):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:  # click's parser leaves some without the context that names the command
            exc.ctx = exc.ctx or ctx
            raise


class _Stages(click.Group):
    """The ``jpegbench`` group; its :meth:`main` is the one place where errors become an exit status."""

    command_class = _Command

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # in the order of the stages, not alphabetical

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,  # type: ignore[override]
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> int:
        """Run a command; return its exit status (or exit with it in ``standalone_mode``), see the module docstring."""
        code = _run(lambda: super(_Stages, self).main(args, prog_name, complete_var, standalone_mode=False, **extra))
        if standalone_mode:
            sys.exit(code)
        return code


def _run(invoke: Callable[[], Any]) -> int:
    """``invoke()``'s exit status; every error is printed as one ``error: ...`` line on stderr."""
    try:
        return int(invoke() or EXIT_OK)
    except click.UsageError as exc:
        _err(_usage_message(exc))
        return EXIT_ERROR
    except click.ClickException as exc:
        _err(exc.format_message())
        return exc.exit_code
    except JpegbenchError as exc:
        _err(str(exc))
        return EXIT_ERROR
    except (click.Abort, KeyboardInterrupt):  # click turns Ctrl-C into Abort
        _err("interrupted")
        return EXIT_INTERRUPTED
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


def _err(msg: str) -> None:
    click.echo(f"error: {msg}", err=True)


def _usage_message(exc: click.UsageError) -> str:
    """One line: a refused value as the library words it; click's other usage errors with a pointer to --help."""
    if isinstance(exc, Refusal):
        return exc.format_message()
    msg = " ".join(exc.format_message().splitlines()).rstrip(".")
    return f"{msg} (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else msg


@click.group(cls=_Stages, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
             invoke_without_command=True,
             epilog="Exit status: 0 done; 1 a batch skipped some inputs (0 with --skip-bad); 2 bad input or usage "
                    "(one 'error: ...' line); 3 internal error; 130 interrupted. `jpegbench COMMAND --help` "
                    "describes a command.")
@click.version_option(__version__, "--version", prog_name="jpegbench", message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """JPEG forensics and degraded-dataset workbench around FBCNN (Jiang, Zhang, Timofte, ICCV 2021).

    Stages: synth -> estimate -> restore -> evaluate -> report; `jpegbench demo` runs them all on built-in images.
    """
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())
        ctx.exit(EXIT_ERROR)


# ---------------------------------------------------------------- inspect
@cli.command("inspect", short_help="Describe JPEG files: size, colour, tables, QF.")
@click.argument("files", nargs=-1, required=True, type=PATH, metavar="FILE...")
@click.option("--json", "as_json", is_flag=True, help="print one JSON document (a list of records)")
@click.option("--no-tables", is_flag=True, help="omit the quantization tables")
@click.option("--skip-bad", is_flag=True, help="exit 0 even if some files could not be read")
def inspect_command(files: tuple[str, ...], as_json: bool, no_tables: bool, skip_bad: bool) -> int:
    """Describe JPEG files: size, colour, subsampling, tables, QF from the tables."""
    from jpegbench.codec import inspect_jpeg

    records, skipped = [], []
    for f in files:
        try:
            records.append(inspect_jpeg(f, with_tables=not no_tables))
        except JpegbenchError as exc:
            msg = str(exc)
            skipped.append((f, msg.removeprefix(f"{f}: ")))
            if len(files) == 1:
                raise
    if as_json:
        click.echo(json.dumps(records, indent=1))
    else:
        for r in records:
            qf = f"QF {r['qf']} ({r['qf_kind']}" + ("" if r["ijg_tables"] else f", non-IJG tables, confidence {r['qf_confidence']:.2f}") + ")"
            sub = f" {r['subsampling']}" if r["subsampling"] else ""
            orient = f", EXIF orientation {r['orientation']}" if r["orientation"] not in (None, 1) else ""
            click.echo(f"{r['path']}: {r['width']}x{r['height']} {r['color']}{sub}, {r['mode']} {r['coding']}, "
                       f"{r['precision']}-bit, {r['bytes']} bytes, {qf}{orient}")
            for i, t in enumerate(r.get("qtables", [])):
                label = "luma" if i == 0 else f"chroma{'' if len(r['qtables']) == 2 else i}"
                click.echo(f"  {label:7s} " + " | ".join(" ".join(f"{v:3d}" for v in row) for row in t))
    return _skip_summary(skipped, skip_bad=skip_bad)


def scheduler_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--scheduler ADDRESS``: run on a Dask cluster (jpegbench[dask]); the output does not depend on it."""
    return click.option(
        "--scheduler", default=None, metavar="ADDRESS",
        help="run on a Dask cluster (needs jpegbench[dask]): the address of a running scheduler, e.g. "
             "tcp://10.0.0.5:8786 (reached within $JPEGBENCH_SCHEDULER_TIMEOUT s, default 10), or 'local' for a "
             "cluster of --workers processes on this machine; the output does not depend on it")(command)


def local_workers_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--workers N``: the worker processes of ``--scheduler local`` (estimate and evaluate)."""
    return click.option("--workers", type=IntRange(min=1, refusal="--workers must be >= 1, got {value}"), default=1,
                        show_default=True, help="worker processes of --scheduler local")(command)


# ---------------------------------------------------------------- synth
@cli.command("synth", short_help="Synthesise a JPEG corpus from a recipe (resumable).")
@click.argument("recipe", type=PATH, metavar="RECIPE")
@click.option("--out", type=PATH, default=None, metavar="DIR", help="corpus folder (default: corpora/<recipe name>)")
@click.option("--source", type=PATH, default=None, metavar="DIR",
              help="folder of clean images replacing the recipe's source")
@click.option("--workers", type=IntRange(min=1, refusal="--workers must be >= 1, got {value}"), default=1,
              show_default=True, help="worker processes (the corpus does not depend on it)")
@click.option("--seed", type=IntRange(min=0, refusal="seed override must be an integer >= 0, got {value!r}"),
              default=None, help="replace the recipe's seed")
@click.option("--overwrite", is_flag=True, help="replace a corpus of a different recipe in --out")
@scheduler_option
@decodes_images
@quiet_option
def synth_command(recipe: str, out: str | None, source: str | None, workers: int, seed: int | None,
                  overwrite: bool, scheduler: str | None, quiet: bool) -> int:
    """Synthesise a JPEG corpus (lq/*.jpg, hq/*.png, manifest.parquet) from a RECIPE (TOML, e.g.
    datasets/fbcnn-table3.toml); resumable."""
    from jpegbench.synth import load_recipe, synthesize
    from jpegbench.synth.corpus import start_workers_early

    if scheduler is None:
        start_workers_early(workers)  # the fork server boots while the recipe's sources are hashed
    loaded = load_recipe(recipe, source=source, seed=seed)
    folder = Path(out) if out else Path("corpora") / loaded.name
    df = synthesize(loaded, folder, workers=workers, progress=not quiet, overwrite=overwrite, scheduler=scheduler)
    counts = ", ".join(f"{k} {v}" for k, v in df["regime"].value_counts().sort_index().items())
    click.echo(f"wrote {len(df)} samples ({counts}) to {folder}; manifest: {folder / 'manifest.parquet'}")
    return EXIT_OK


# ---------------------------------------------------------------- estimate
@cli.command("estimate", short_help="Estimate last/dominant QF and grid shift of images.")
@click.argument("inputs", nargs=-1, required=True, type=PATH, metavar="INPUT...")
@estimator_option("robust, or paper (FBCNN-D as written)")
@click.option("--backend", type=BACKEND, default="fast", show_default=True,
              help="fast: the same numbers as reference, libjpeg's arithmetic emulated exactly (a C kernel on CPU, "
                   "torch on CUDA); reference: real re-encoding, ~25x slower")
@device_option
@click.option("--save-curves", is_flag=True, help="also write the [8, 8, n_qf] MSE curves (.npz) next to --out")
@click.option("--out", type=PATH, default=None, metavar="TABLE", callback=_table_suffix,
              help="results table (.parquet or .csv)")
@click.option("--json", "as_json", is_flag=True, help="print a JSON summary on stdout instead of lines")
@click.option("--dct", is_flag=True,
              help="also read JPEG files' DCT coefficients where the curves say single (a first compression finer "
                   "than the last; calibrated to 3 % false alarms on single JPEGs at QF 60..90, see BENCHMARKS.md; "
                   "seconds per file)")
@scheduler_option
@local_workers_option
@skip_bad_option
@decodes_images
@quiet_option
def estimate_command(inputs: tuple[str, ...], estimator: str, backend: str, device: str | None, save_curves: bool,
                     out: str | None, as_json: bool, dct: bool, scheduler: str | None, workers: int, skip_bad: bool,
                     quiet: bool) -> int:
    """Estimate the last and dominant QF, first grid shift and verdict of images from MSE curves.

    INPUT: images, folders of images, or corpus folders (then the accuracy against the manifest is shown too).
    """
    from jpegbench.estimate.batch import estimate_inputs, write_table

    run = estimate_inputs(list(inputs), estimator=estimator, backend=backend, device=device,
                          save_curves=save_curves, progress=not quiet, scheduler=scheduler, workers=workers, dct=dct)
    if out:
        write_table(run.table, out)
        if save_curves and run.curves:
            import io

            import numpy as np

            from jpegbench._fs import atomic_write_bytes

            buf = io.BytesIO()
            np.savez_compressed(buf, paths=np.array(list(run.curves)), mse=np.stack(list(run.curves.values())))
            atomic_write_bytes(Path(out).with_suffix(".curves.npz"), buf.getvalue())
    if as_json:
        summary = {"images": len(run.table), "skipped": [{"path": p, "reason": r} for p, r in run.skipped],
                   "estimator": estimator, "backend": backend,
                   "results": run.table.drop(columns=[c for c in run.table if c.startswith("true_")]).to_dict("records")}
        if run.accuracy is not None:
            summary["accuracy"] = run.accuracy.reset_index().to_dict("records")
        click.echo(json.dumps(summary, indent=1, default=lambda v: None if v is None or v != v else str(v)))
    else:
        for r in run.table.to_dict("records"):
            click.echo(_estimate_line(r))
        if run.accuracy is not None:
            click.echo("\naccuracy against the corpus manifest (%):")
            click.echo(run.accuracy.round(1).to_string())
    if out:
        click.echo(f"wrote {len(run.table)} rows to {out}", err=as_json)
    return _skip_summary(run.skipped, skip_bad=skip_bad)


def _estimate_line(r: dict) -> str:
    """One printed line per image of ``jpegbench estimate``."""
    tables = ""
    if r["qf_tables"] is not None and r["qf_tables"] == r["qf_tables"]:
        tables = f", tables QF {r['qf_tables']} ({r['qf_tables_kind']}"
        tables += ": not IJG tables, the nearest IJG QF; pixel QFs are IJG-scale)" if r.get("qf_ijg_scale") else ")"
    note = f" ({r['note']})" if r.get("note") else ""
    if r["verdict"] == "uncompressed":
        return f"{r['path']}: uncompressed, no trace of an 8x8 JPEG grid, confidence {r['confidence']:.2f}{tables}"
    if r["verdict"] == "undetermined":
        return f"{r['path']}: undetermined, too little evidence to tell{note}{tables}"
    return (f"{r['path']}: {r['verdict']}, last QF {r['qf_last']}, dominant QF {r['qf_dominant']}, "
            f"first-grid shift ({r['shift_dy']}, {r['shift_dx']}), confidence {r['confidence']:.2f}{tables}"
            + (f"{note}" if r.get("grid_moved") else "") + (f", evidence {r['evidence']}" if r.get("evidence") else ""))


# ---------------------------------------------------------------- restore
@cli.command("restore", short_help="Restore JPEG images with FBCNN, QCN, QGCN, IJCN or jpeg.")
@click.argument("inputs", nargs=-1, required=True, type=PATH, metavar="INPUT...")
@click.option("--method", type=METHOD, default="fbcnn", show_default=True, help="restoration method")
@click.option("--qf", type=FloatRange(1, 100, refusal="--qf must be in 1..100, got {value:g}"), default=None,
              help="manual QF (1..100) for the controller instead of the predicted/estimated one (qcn, qgcn, ijcn: "
                   "the IJG tables of that QF instead of the file's)")
@click.option("--weights", type=PATH, default=None, metavar="FILE",
              help="weight file (path or a known name such as fbcnn_gray.pth; qcn, qgcn, ijcn: a state dict of "
                   "the authors' layout); default: shipped small model")
@click.option("--weights-dir", type=PATH, default=None, metavar="DIR",
              help="folder of weight files (or $JPEGBENCH_WEIGHTS_DIR)")
@estimator_option("dominant-QF estimator for the -d methods")
@click.option("--tile", callback=_multiple_of_grid, default=None, metavar="PIXELS",
              type=IntRange(min=2 * GRID, refusal=f"tile must be a multiple of {GRID} and at least {2 * GRID} "
                                                  "pixels, got {value!r}"),
              help="tile size in pixels (multiple of 8); default: whole image, 512 above 4 Mpixel")
@color_policy_option
@device_option
@click.option("--out", type=PATH, required=True, metavar="DIR", help="output folder (PNG files and restore.csv)")
@skip_bad_option
@decodes_images
@quiet_option
def restore_command(inputs: tuple[str, ...], method: str, qf: float | None, weights: str | None,
                    weights_dir: str | None, estimator: str, tile: int | None, color_policy: str,
                    device: str | None, out: str, skip_bad: bool, quiet: bool) -> int:
    """Restore JPEG images with FBCNN, FBCNN-D, FBCNN-A, QCN, QGCN, IJCN and their -d twins (or the identity) and
    record the QFs used.

    INPUT: image files or folders of images (JPEG files for qcn, qgcn, ijcn, ijcn-d: they read the file's tables;
    colour 4:2:0 for ijcn).
    """
    from jpegbench.models import restore_files

    run = restore_files(list(inputs), out, method=method, qf=qf, weights=weights, weights_dir=weights_dir,
                        tile=tile, device=device, estimator=estimator, color_policy=color_policy,
                        progress=not quiet)
    for row in run.table.itertuples():
        notes = [f"{label} {v:.1f}" for label, v in (("predicted QF", row.qf_predicted), ("QF used", row.qf_used))
                 if v is not None and v == v]
        if notes and isinstance(row.qf_source, str):
            notes[-1] += f" from {row.qf_source}"
        if row.color_path in ("color", "luma") and row.method.startswith("fbcnn"):  # the colour policy's choice
            notes.append("colour model" if row.color_path == "color" else "gray model on the luma")
        click.echo(f"{row.input} -> {row.output}" + (f" ({', '.join(notes)})" if notes else ""))
    click.echo(f"wrote {len(run.table)} image(s) and {Path(out) / 'restore.csv'}")
    return _skip_summary(run.skipped, skip_bad=skip_bad)


# ---------------------------------------------------------------- train
@cli.command("train", short_help="Train FBCNN, FBCNN-A, QCN/QGCN or IJCN from a config (resumable).")
@click.argument("config", type=PATH, metavar="CONFIG")
@click.option("--out", type=PATH, required=True, metavar="DIR", help="run folder (checkpoints, log.csv, curves.png)")
@device_option
@click.option("--no-resume", is_flag=True, help="start over instead of resuming from last.pt")
@decodes_images
@quiet_option
def train_command(config: str, out: str, device: str | None, no_resume: bool, quiet: bool) -> int:
    """Train FBCNN (single JPEG), FBCNN-A (double JPEG), or QCN/QGCN/IJCN ([model] arch) from a CONFIG (TOML,
    e.g. configs/fbcnn-small-gray.toml, configs/qgcn-small-gray.toml); resumes after interruption."""
    from jpegbench.models import train

    summary = train(config, out, resume=not no_resume, device=device, progress=not quiet)
    click.echo(json.dumps(summary, indent=1, default=str))
    return EXIT_OK


# ---------------------------------------------------------------- evaluate
@cli.command("evaluate", short_help="Restore a corpus with each method and score it.")
@click.argument("corpus", type=PATH, metavar="CORPUS")
@click.option("--methods", type=MethodList(), multiple=True, default=["jpeg"], metavar="M1,M2,...",
              help=f"comma-separated methods among {', '.join(METHODS)} (default jpeg); repeatable")
@click.option("--weights-dir", type=PATH, default=None, metavar="DIR",
              help="folder of weight files (or $JPEGBENCH_WEIGHTS_DIR)")
@click.option("--weights", type=MethodWeights(), multiple=True, metavar="METHOD=PATH",
              help="weights for one method, e.g. fbcnn=fbcnn_gray.pth (repeatable); a -d method takes its plain "
                   "method's unless given its own")
@estimator_option("dominant-QF estimator for the -d methods")
@color_policy_option
@device_option
@click.option("--out", type=PATH, default=None, metavar="FILE", help="results file (default: CORPUS/results.parquet)")
@click.option("--no-resume", is_flag=True, help="start over instead of keeping evaluated rows")
@click.option("--no-curve-cache", is_flag=True,
              help="do not keep or reuse the MSE curves under CORPUS/.cache/curves (by default a second evaluation "
                   "of the same corpus, e.g. with other weights, skips the curves)")
@scheduler_option
@local_workers_option
@decodes_images
@quiet_option
def evaluate_command(corpus: str, methods: tuple[tuple[str, ...], ...], weights_dir: str | None,
                     weights: tuple[tuple[str, str], ...], estimator: str, color_policy: str, device: str | None,
                     out: str | None,
                     no_resume: bool, no_curve_cache: bool, scheduler: str | None, workers: int, quiet: bool) -> int:
    """Restore a CORPUS (written by `jpegbench synth`) with each method and measure PSNR, SSIM, PSNR-B and QFs
    (results.parquet)."""
    from jpegbench.evaluate import evaluate

    results = Path(out) if out else Path(corpus) / "results.parquet"
    df = evaluate(corpus, methods=[m for group in methods for m in group], weights_dir=weights_dir,
                  weights=dict(weights) or None, device=device, out=results, estimator=estimator,
                  color_policy=color_policy,
                  progress=not quiet, resume=not no_resume, cache_curves=not no_curve_cache, scheduler=scheduler,
                  workers=workers)
    summary = df.groupby("method", sort=False)[["psnr", "ssim", "psnrb"]].mean()
    click.echo(summary.round({"psnr": 2, "ssim": 4, "psnrb": 2}).to_string())
    click.echo(f"wrote {len(df)} rows to {results}")
    return EXIT_OK


# ---------------------------------------------------------------- report
@cli.command("report", short_help="Write the HTML/Markdown report, tables and figures.")
@click.argument("results", nargs=-1, required=True, type=PATH, metavar="RESULTS...")
@click.option("--out", type=PATH, default=None, metavar="DIR",
              help="report folder (default: report/ next to the first results file)")
@click.option("--corpus", type=PATH, default=None, metavar="DIR", help="corpus folder, if it moved since evaluation")
@click.option("--real", type=PATH, multiple=True, metavar="DIR",
              help="real-world JPEGs (files or folders, repeatable; e.g. ../shared/data/Real): restored with fbcnn "
                   "blind, with the dominant QF (fbcnn-d) and with --real-qf, shown as crops (no ground truth)")
@click.option("--real-qf", type=IntRange(1, 100, refusal="--real-qf must be in 1..100, got {value}"), default=10,
              show_default=True, help="the manual QF of the real-world section")
@click.option("--weights-dir", type=PATH, default=None, metavar="DIR",
              help="folder of weight files for --real (or $JPEGBENCH_WEIGHTS_DIR)")
@color_policy_option
@device_option
@decodes_images
def report_command(results: tuple[str, ...], out: str | None, corpus: str | None, real: tuple[str, ...],
                   real_qf: int, weights_dir: str | None, color_policy: str, device: str | None) -> int:
    """Write report.html (self-contained), report.md, tables (CSV/MD/TeX) and figures from RESULTS files
    (written by `jpegbench evaluate`); with --real, also restore real-world JPEGs for its real-world section."""
    from jpegbench.report import build_report

    folder = Path(out) if out else Path(results[0]).parent / "report"
    sidecar = None
    if real:
        from jpegbench.evaluate import realworld

        # The report layer runs no model: the restorations are made here, into a sidecar it renders.
        sidecar = realworld(list(real), folder / "realworld.npz", manual_qf=real_qf, weights_dir=weights_dir,
                            device=device, color_policy=color_policy)
    path = build_report(list(results) if len(results) > 1 else results[0], folder, corpus_dir=corpus,
                        realworld=sidecar)
    click.echo(f"report: {path}")
    return EXIT_OK


# ---------------------------------------------------------------- demo
@cli.command("demo", short_help="Run every stage on built-in public-domain photos.")
@click.option("--out", type=PATH, default="jpegbench-demo", show_default=True, metavar="DIR", help="demo folder")
@device_option
@decodes_images
@click.option("--quiet", is_flag=True, help="no progress messages")
def demo_command(out: str, device: str | None, quiet: bool) -> int:
    """Run synth -> estimate -> restore -> evaluate -> report on built-in public-domain photos."""
    from jpegbench.pipeline import run_demo

    path = run_demo(out, device=device, progress=not quiet)
    click.echo(f"report: {path}")
    return EXIT_OK


# ---------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``jpegbench`` console script: run ``argv`` (default ``sys.argv[1:]``), return the exit status."""
    return cli.main(argv, prog_name="jpegbench", standalone_mode=False)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
