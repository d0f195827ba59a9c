"""The report: one self-contained HTML file, its Markdown twin, tables and figures.

:func:`build_report` reads a results file (:func:`jpegbench.evaluate.evaluate`)
and its sidecars and writes, into ``out_dir``::

    report.html     one file: CSS inline, figures embedded as base64 PNG
    report.md       the same content, figures linked from figures/
    tables/         <name>.csv / .md / .tex
    figures/        <name>.png / .svg

Both report files render one context of plain strings, lists and dicts
(:func:`_context`) through the jinja2 templates ``templates/report.html.j2``
(autoescaped) and ``templates/report.md.j2``, so they show the same content.

It runs no model: figures that need one (flexibility, the crop strip, the
real-world restorations) come from the sidecar files that
:func:`jpegbench.evaluate.evaluate`, :func:`jpegbench.evaluate.realworld` and
:func:`jpegbench.pipeline.run_demo` write, or are skipped with a note
(:mod:`jpegbench.report.figure_set` chooses and draws them).

The paper-style tables come one per metric (PSNR, SSIM, PSNR-B) and colour:
Table 3 (non-aligned double JPEG; the paper's gray numbers beside ours),
its colour twin (no paper numbers: the paper has none), single JPEG gray
(Table 1) and colour (Table 2, the paper's FBCNN-C beside our fbcnn).
"""

from __future__ import annotations

import base64
import functools
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from jpegbench._fs import sha256_file
from jpegbench._fs import write_atomic
from jpegbench.errors import InputError, ResultsError
from jpegbench.evaluate.results import read_results
from jpegbench.evaluate.sidecars import REALWORLD_PATHS, read_realworld
from jpegbench.report.figure_set import ReportFigure, make_figures, realworld_figures
from jpegbench.report.tables import (
    METRICS,
    estimator_accuracy,
    paper_tables,
    qf_prediction_table,
    qf_source_table,
    recipe_dataset,
)
from jpegbench.report.formatting import compact_table, to_markdown, write_tables

__all__ = ["SECTIONS", "PSNRB_NOTE", "build_report"]

#: Section ids of report.html, in order.
SECTIONS = ("summary", "conventions", "table3", "qf-prediction", "estimator", "figures", "real-world", "provenance")

PSNRB_NOTE = (
    "With the metric conventions above, the JPEG column of the paper's Tables 1 and 2 is reproduced to every "
    "printed digit (PSNR, SSIM and PSNR-B), and the JPEG column of Table 3 too for PSNR and SSIM. "
    "Table 3's PSNR-B is not: the same formula gives 0.2-0.5 dB less than the paper prints. Why is an open "
    "question (the paper's Table 3 code may compute the blocking-effect factor differently, e.g. on another "
    "grid or image); compare PSNR-B deltas in Table 3 with that in mind."
)
_SHIPPED_NOTE = (
    "The network methods here use the small models shipped with jpegbench (trained on BSDS500 with "
    "jpegbench.models.train), NOT the FBCNN authors' released checkpoints: their numbers are not the paper's "
    "and differences from the paper's FBCNN columns say nothing about FBCNN itself. For the paper's numbers, "
    "download fbcnn_gray.pth, fbcnn_gray_double.pth and fbcnn_color.pth and pass --weights-dir."
)
REALWORLD_NOTE = (
    "Real JPEGs have no clean original, so there is no PSNR here: judge the crops by eye. Each image is "
    "restored by FBCNN three ways: blind (conditioned on its own QF prediction), with the dominant QF the "
    "estimator reads off the image (FBCNN-D), and with a low QF set by hand; the titles give the QF each "
    "path used and where it came from."
)
_Y_DEFINITION = ("gray = Y of MATLAB's rgb2ycbcr (BT.601 studio swing, rounded to uint8), the definition of "
                 "the FBCNN/KAIR code and the LIVE1 gray test set")


@dataclass
class _Report:
    results: pd.DataFrame
    metas: list[dict[str, Any]]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: list[ReportFigure] = field(default_factory=list)
    realworld: dict[str, Any] | None = None
    realworld_figures: list[ReportFigure] = field(default_factory=list)
    base: Path | None = None  # the report's folder: paths are shown relative to it

    def corpus(self, meta: dict[str, Any]) -> str:
        """A run's corpus path as the report shows it: relative to the report's folder.

        A report is read (and often committed) next to its corpus; an absolute
        path would show the machine it was made on. The provenance table
        keeps the absolute path as evaluate recorded it.
        """
        recorded = str(meta.get("corpus", "") or "")
        if not recorded or self.base is None:
            return recorded or "?"
        try:
            return Path(os.path.relpath(recorded, self.base)).as_posix()
        except ValueError:  # another drive (Windows)
            return recorded

    @property
    def meta(self) -> dict[str, Any]:
        """The first run's metadata (conventions are checked to agree)."""
        return self.metas[0]


# -- text ----------------------------------------------------------------------


def _fmt(v: float, nd: int = 2, signed: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return format(float(v), f"{'+' if signed else ''}.{nd}f")


def _summary(rep: _Report) -> list[str]:
    df, meta = rep.results, rep.meta
    n = df["sample_id"].nunique()
    corpora = ", ".join(rep.corpus(m) for m in rep.metas)
    methods = list(dict.fromkeys(df["method"]))
    regimes = df.drop_duplicates("sample_id")["regime"].value_counts()
    lines = [
        f"{n} images from corpus {corpora}, restored with {', '.join(methods)} "
        f"({len(df)} rows; regimes: " + ", ".join(f"{k} {v}" for k, v in regimes.items()) + ").",
    ]
    means = df.groupby("method")[["psnr", "ssim", "psnrb"]].mean()
    base = means.loc["jpeg"] if "jpeg" in means.index else None
    for m in methods:
        r = means.loc[m]
        gain = f" ({_fmt(r['psnr'] - base['psnr'], signed=True)} dB over JPEG)" if base is not None and m != "jpeg" else ""
        lines.append(f"{m}: mean PSNR {_fmt(r['psnr'])} dB{gain}, SSIM {_fmt(r['ssim'], 3)}, "
                     f"PSNR-B {_fmt(r['psnrb'])} dB over all images.")
    c = df[(df["regime"] == "complex") & (df["qf1"] < df["qf2"])]
    for m in ("fbcnn", "fbcnn-a"):
        sub = c[c["method"] == m]
        if sub.empty or not sub["qf_predicted"].notna().any():
            continue
        uninformative = _uninformative_predictor(df[df["method"] == m])
        if uninformative:
            lines.append(f"{m}'s QF prediction does not follow the compression: {uninformative}. Which QF it "
                         "'tracks' on double JPEG (QF prediction table) says nothing about the paper's finding here.")
            continue
        near2 = float(((sub["qf_predicted"] - sub["qf2"]).abs() < (sub["qf_predicted"] - sub["qf1"]).abs()).mean())
        lines.append(f"Non-aligned double JPEG with QF1 < QF2 ({sub['sample_id'].nunique()} images): {m}'s "
                     f"predicted QF is nearer QF2 (the last compression) than QF1 (the dominant one) for "
                     f"{near2:.0%} of them.")
    acc = rep.tables.get("estimator_accuracy")
    if acc is not None and not acc.empty and "all" in acc.index:
        lines.append(f"The {meta.get('estimator', 'robust')} dominant-QF estimator is within 2 of the dominant QF "
                     f"for {acc.loc['all', 'estimate']:.0%} of the images"
                     + (f" (the last quantization tables: {acc.loc['all', 'tables']:.0%})." if "tables" in acc.columns else "."))
    return lines


def _uninformative_predictor(rows: pd.DataFrame) -> str:
    """Why a network's QF predictions carry no information ('' when they do).

    A predictor that hardly varies, or does not rise with the QF of the last
    compression, "tracks" whichever QF happens to lie near its constant
    output; the summary must not read the paper's finding into that.
    """
    pred = rows["qf_predicted"].astype(float)
    last = np.where(rows["qf2"].astype(int) >= 0, rows["qf2"], rows["qf1"]).astype(float)
    ok = pred.notna().to_numpy()
    pred, last = pred.to_numpy()[ok], last[ok]
    spread = float(pred.max() - pred.min()) if pred.size else 0.0
    if pred.size < 3 or spread < 5:
        return f"it stays within {pred.min():.1f}-{pred.max():.1f} over all {pred.size} images" if pred.size else "none"
    if np.ptp(last) > 0:
        corr = float(np.corrcoef(pred, last)[0, 1])
        if not corr >= 0.5:
            return f"its correlation with the last compression's QF is {corr:.2f} over {pred.size} images"
    return ""


def _weights_rows(rep: _Report) -> list[list[str]]:
    rows: dict[tuple, list[str]] = {}
    for meta in rep.metas:
        for m, w in (meta.get("weights") or {}).items():
            if m == "jpeg":
                continue
            origin = "shipped small model (NOT the released one)" if w.get("weights_shipped") else "user-supplied"
            row = [m, w.get("weights", ""), w.get("weights_sha256", ""), origin]
            rows.setdefault(tuple(row), row)
    return list(rows.values())


def _shipped(rep: _Report) -> bool:
    return any(w.get("weights_shipped") for meta in rep.metas for m, w in (meta.get("weights") or {}).items()
               if m != "jpeg")


def _conventions(rep: _Report) -> list[tuple[str, str]]:
    df = rep.results
    enc = sorted({f"{a} {b}" for a, b in zip(df["encoder"], df["encoder_version"])})
    metric = sorted({str(m.get("metric_conventions", "")) for m in rep.metas})
    estimators = sorted({str(m.get("estimator", "?")) for m in rep.metas})
    return [
        ("encoder", "; ".join(enc)),
        ("colour", ", ".join(sorted(set(df["color"])))),
        ("Y definition", _Y_DEFINITION),
        ("metrics", " || ".join(metric) + ("" if len(metric) == 1 else " (DIFFERENT between the results files)")),
        ("metric inputs", "restored uint8 image against the clean (hq) image of the corpus, whole image"),
        ("QF estimator", f"{', '.join(estimators)} (dominant QF on the JPEG image; the -d methods use it)"),
        ("QF scale", "IJG quality 1..100"),
        ("colour path", _color_paths(df)),
    ]


def _color_paths(df: pd.DataFrame) -> str:
    """How each method restored the images (``color_path``): the colour model, or a gray one on the luma."""
    d = df[df["color_path"].astype(str) != ""] if "color_path" in df.columns else df.iloc[:0]
    if d.empty:
        return "no model was run"
    parts = []
    for m, g in d.groupby("method", sort=False):
        counts = g["color_path"].value_counts()
        order = [k for k in ("gray", "color", "luma") if k in counts.index] + sorted(set(counts.index) - {
            "gray", "color", "luma"})
        parts.append(f"{m}: " + ", ".join(f"{k} {counts[k]}" for k in order))
    return ("; ".join(parts) + " (gray: gray image and model; color: colour model; luma: gray model on the "
            "Y channel of a colour image, chroma kept)")


def _provenance(rep: _Report) -> list[tuple[str, str]]:
    rows = []
    for meta in rep.metas:
        p = Path(meta["results_file"])
        rows += [("results file", f"{p.name} (sha256 {sha256_file(p)[:16]})"),
                 ("corpus", str(meta.get("corpus", ""))),
                 ("corpus manifest sha256", str(meta.get("manifest_sha256", ""))[:16]),
                 ("recipe sha256", str(meta.get("recipe_sha256", ""))[:16] or "no recipe stored with the corpus"),
                 ("device", str(meta.get("device", "")))]
    versions: dict[str, set[str]] = {}
    for meta in rep.metas:
        for k, v in (meta.get("versions") or {}).items():
            versions.setdefault(k, set()).add(str(v))
    rows += [(k, " / ".join(sorted(v))) for k, v in versions.items()]
    return rows


def _recipes(rep: _Report) -> list[tuple[str, str]]:
    return [(rep.corpus(m), str(m.get("recipe") or "")) for m in rep.metas]


# -- the context and its two templates ----------------------------------------

def _per_metric(prefix: str, title: str, text: str) -> dict[str, tuple[str, str]]:
    return {f"{prefix}_{key}": (f"{title}, {label}", text.format(label=label)) for key, label in METRICS}


_PAPER_CELLS = ("For each method: our mean, the paper's printed value and ours minus the paper's (Δ), where the "
                "paper has the method and the cell. Our corpus may use other images than the paper's: the paper "
                "column is for orientation, not a pass/fail test unless the corpus is the paper's.")
_TABLE_TEXT = {
    **_per_metric("table3", "Table 3: non-aligned double JPEG",
                  "Mean {label} per QF pair in the layout of the FBCNN paper's Table 3 (LIVE1 gray, shift (4, 4)), "
                  "one table per metric so that many methods stay readable. " + _PAPER_CELLS),
    **_per_metric("table3_color", "Table 3 protocol on colour: non-aligned double JPEG",
                  "Mean {label} per QF pair of the colour samples (e.g. datasets/fbcnn-table3-color.toml: LIVE1 "
                  "colour, 4:2:0, shift (4, 4)). The paper reports this protocol on gray only: no paper columns."),
    **_per_metric("double", "Double JPEG by grid shift, gray",
                  "Mean {label} per grid shift and QF pair of the gray double JPEGs, aligned (shift (0,0)) and "
                  "non-aligned side by side (Table 3 above keeps only the non-aligned ones). No paper columns."),
    **_per_metric("double_color", "Double JPEG by grid shift, colour",
                  "Mean {label} per grid shift and QF pair of the colour double JPEGs, aligned (shift (0,0)) and "
                  "non-aligned side by side: the layout of IJCN's own double protocol (datasets/"
                  "ijcn-double-color.toml: LIVE1 colour, 4:2:0, QF1, QF2 in {{30, 50}}, shifts (0,0) and (4,4)). "
                  "No paper columns."),
    **_per_metric("single_jpeg", "Single JPEG, gray (Table 1)",
                  "Mean {label} per QF in the layout of the paper's Table 1. " + _PAPER_CELLS),
    **_per_metric("table2", "Table 2: single JPEG, colour",
                  "Mean {label} per QF of the colour samples in the layout of the paper's Table 2 (e.g. "
                  "datasets/fbcnn-table2-color.toml: LIVE1 colour, 4:2:0). The paper's FBCNN column here is its "
                  "colour FBCNN-C. With the metric conventions above our JPEG column reproduces the paper's. "
                  + _PAPER_CELLS),
    "qf_prediction": ("QF prediction", "Mean predicted QF per QF pair for each network, which of QF1 / QF2 it "
                      "tracks, the dominant-QF estimate and the QF of the file's last quantization tables."),
    "qf_source": ("What each method sees of the QF",
                  "Per regime and method: the mean QF the method used, its mean difference from the dominant QF "
                  "(min of all QFs) signed and absolute, and where the QF came from: FBCNN's own prediction "
                  "(predicted), the file's last quantization tables (tables; tables-approx when they are not IJG "
                  "tables), the dominant-QF estimator (dominant)."),
    "estimator_accuracy": ("Estimator accuracy", "Share of images whose QF is within 2 of the dominant QF "
                           "(min of all QFs) per regime: single JPEG, simple (aligned, or QF1 > QF2) and complex "
                           "(non-aligned with QF1 <= QF2); and the estimator's mean absolute error in QF units."),
}

#: Report section id -> the tables it shows, in order (the first is the section's heading).
_TABLE_SECTIONS = (("table3", tuple(f"{p}_{k}" for p in ("table3", "table3_color", "double", "double_color",
                                                            "single_jpeg", "table2")
                                    for k, _ in METRICS)),
                   ("qf-prediction", ("qf_prediction", "qf_source")),
                   ("estimator", ("estimator_accuracy",)))


def _table_context(name: str, table: pd.DataFrame | None) -> dict[str, Any]:
    """One table as plain strings: the cells of :func:`compact_table` for HTML, :func:`to_markdown` for Markdown.

    ``rows`` is empty when the results hold no samples of the table's kind.
    """
    title, text = _TABLE_TEXT[name]
    ctx: dict[str, Any] = {"name": name, "title": title, "text": text, "index_names": [], "columns": [], "rows": []}
    if table is None or table.empty:
        return ctx
    shown = compact_table(table)
    ctx["index_names"] = ["" if n is None else str(n) for n in shown.index.names]
    ctx["columns"] = [str(c) for c in shown.columns]
    ctx["rows"] = [{"index": [str(k) for k in (key if isinstance(key, tuple) else (key,))],
                    "cells": [str(v) for v in row]}
                   for key, row in zip(shown.index, shown.itertuples(index=False))]
    ctx["markdown"] = to_markdown(table)
    return ctx


def _context(rep: _Report) -> dict[str, Any]:
    """Everything report.html and report.md show, once, as plain strings, lists and dicts.

    Both templates render this one context, so the two files cannot drift
    apart; the HTML template escapes every value (nothing here is markup).
    """
    return {
        "title": Path(str(rep.meta.get("corpus", ""))).name,
        "sections": list(SECTIONS),
        "summary": _summary(rep),
        "shipped_note": _SHIPPED_NOTE if _shipped(rep) else "",
        "conventions": _conventions(rep),
        "psnrb_note": PSNRB_NOTE,
        "recipes": [{"corpus": c, "recipe": r} for c, r in _recipes(rep)],
        "weights": {"header": ["method", "file", "sha256 (prefix)", "origin"],
                    "rows": [{"index": row, "cells": []} for row in _weights_rows(rep)]},
        "table_sections": [{"id": sid, "tables": [_table_context(n, rep.tables[n]) for n in names if n in rep.tables]}
                           for sid, names in _TABLE_SECTIONS],
        "figures": [_figure_context(f) for f in rep.figures],
        "realworld": _realworld_context(rep),
        "provenance": _provenance(rep),
    }


def _figure_context(f: ReportFigure) -> dict[str, str]:
    return {"id": f.name.replace("_", "-"), "name": f.name, "title": f.title, "caption": f.caption,
            "png_base64": base64.b64encode(f.png).decode("ascii") if f.png is not None else "", "note": f.note}


def _realworld_context(rep: _Report) -> dict[str, Any]:
    """The real-world section: the note, one row of QFs per image, one figure per image."""
    ctx: dict[str, Any] = {"note": REALWORLD_NOTE, "header": [], "rows": [], "figures": [], "skipped": [],
                           "manual_qf": ""}
    if rep.realworld is None:
        return ctx
    meta = rep.realworld["meta"]
    ctx["manual_qf"] = str(meta.get("manual_qf", ""))
    ctx["header"] = ["image", "size", "model", "tables QF", "predicted QF",
                     *(f"{p} QF used" for p in REALWORLD_PATHS)]
    for im in meta["images"]:
        qf_tables = "–" if im.get("qf_tables") is None else f"{im['qf_tables']} ({im.get('qf_tables_kind', '')})"
        used = [f"{im['paths'][p]['qf_used']:.1f} ({im['paths'][p]['qf_source']})" for p in REALWORLD_PATHS]
        row = [str(im["name"]), f"{im['width']}x{im['height']}", str(im.get("color_path", "")), qf_tables,
               _fmt(im.get("qf_predicted"), 1), *used]
        ctx["rows"].append({"index": row, "cells": []})
    ctx["figures"] = [_figure_context(f) for f in rep.realworld_figures]
    ctx["skipped"] = [f"{p}: {why}" for p, why in meta.get("skipped", [])]
    return ctx


@functools.cache
def _templates():
    """The jinja2 environment of templates/ (package data, so an installed jpegbench finds it too).

    Autoescaping is on for ``*.html.j2`` only: the context holds text, and
    Markdown must show it unchanged. ``StrictUndefined`` turns a key missing
    from the context into an error instead of a silently empty section.
    """
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("jpegbench.report", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _render(template: str, context: dict[str, Any]) -> str:
    return _templates().get_template(template).render(context)


# -- entry point ---------------------------------------------------------------


def _load(paths: list[Path]) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    frames, metas = [], []
    for p in paths:
        df = read_results(p)
        if df.empty:
            raise ResultsError(f"{p}: results file has no rows")
        metas.append({**df.attrs.get("jpegbench", {}), "results_file": p})
        df.attrs = {}
        frames.append(df)
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    dup = df.duplicated(["sample_id", "method"])
    if dup.any():
        r = df[dup].iloc[0]
        raise ResultsError(f"results files overlap: sample {r['sample_id']!r} with method {r['method']!r} "
                           "appears twice; give each (sample, method) once")
    return df, metas


def build_report(
    results_path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    corpus_dir: str | os.PathLike[str] | None = None,
    realworld: str | os.PathLike[str] | None = None,
) -> Path:
    """Write the HTML and Markdown report of one or more results files.

    Parameters
    ----------
    results_path : path or sequence of paths
        Results file(s) written by :func:`jpegbench.evaluate.evaluate`; several
        (e.g. a single-JPEG and a double-JPEG corpus) are reported together,
        as long as no (sample, method) appears twice.
    out_dir : path
        Created if needed; ``report.html``, ``report.md``, ``tables/`` and
        ``figures/`` are (over)written in it.
    corpus_dir : path, optional
        Corpus of the first results file, to draw the example image's MSE
        curves when the results carry none; default: the corpus recorded
        in the results, if it still exists.
    realworld : path, optional
        A real-world sidecar (:func:`jpegbench.evaluate.realworld`) to show
        in the ``real-world`` section: crops of real JPEGs restored blind,
        with their dominant QF and with a manual QF, and the QFs used.

    Returns
    -------
    Path
        ``out_dir / "report.html"``.

    Raises
    ------
    ResultsError
        A file is missing or not a jpegbench results file, or files overlap;
        ``realworld`` missing or not a real-world sidecar.
    """
    if isinstance(results_path, (str, os.PathLike)):
        paths = [Path(results_path)]
    elif isinstance(results_path, Sequence) and results_path:
        paths = [Path(p) for p in results_path]
    else:
        raise InputError(f"results_path must be a path or a non-empty list of paths, got {results_path!r}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a directory")
    df, metas = _load(paths)
    rep = _Report(df, metas, base=out.resolve())
    if realworld is not None:
        rep.realworld = read_realworld(realworld)
    rep.tables = {
        **paper_tables(df, dataset=recipe_dataset(metas)),
        "qf_prediction": qf_prediction_table(df),
        "qf_source": qf_source_table(df),
        "estimator_accuracy": estimator_accuracy(df),
    }
    write_tables(rep.tables, out / "tables")
    recorded = metas[0].get("corpus")
    corpus = Path(corpus_dir) if corpus_dir is not None else Path(recorded) if recorded else None
    rep.figures = make_figures(df, paths, corpus, out / "figures")
    if rep.realworld is not None:
        rep.realworld_figures = realworld_figures(rep.realworld, out / "figures")
    context = _context(rep)
    write_atomic(out / "report.md", _render("report.md.j2", context))
    return write_atomic(out / "report.html", _render("report.html.j2", context))
