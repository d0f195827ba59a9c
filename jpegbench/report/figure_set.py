"""Which figures a report shows, drawn from a results table and the sidecars next to it.

:func:`make_figures` draws each figure of the report with
:mod:`jpegbench.report.figures` and saves it; a figure whose data is
missing (no sidecar, no corpus) is kept with a note saying why, so the
report says what it lacks instead of silently leaving it out.
:func:`realworld_figures` does the same for a real-world sidecar
(:func:`jpegbench.evaluate.realworld`). One figure is not drawn from the
results: the double-quantization map of a splice made for the report from a
clean image of the corpus (:func:`_splice_example`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from jpegbench.errors import InputError
from jpegbench.evaluate.sidecars import flexibility_path, read_examples

__all__ = ["ReportFigure", "make_figures", "realworld_figures"]


@dataclass
class ReportFigure:
    """One figure of the report: drawn (``png``) or missing with a ``note`` saying why."""

    name: str
    title: str
    caption: str
    png: bytes | None = None
    note: str = ""


class _Skip(Exception):
    """A figure whose data is missing; its message is the report's note."""


def _saved_png(fig, fig_dir: Path, name: str) -> bytes:
    """Save ``fig`` as ``<name>.png`` and ``.svg`` in ``fig_dir``; the PNG's bytes, for the HTML report."""
    from jpegbench.report.figures import save_figure

    return save_figure(fig, fig_dir, name)[0].read_bytes()


def make_figures(df: pd.DataFrame, paths: list[Path], corpus_dir: Path | None, fig_dir: Path) -> list[ReportFigure]:
    """Draw and save every figure; a figure whose data is missing is kept with a note instead."""
    from jpegbench.report import figures as F

    out: list[ReportFigure] = []

    def add(name: str, title: str, caption: str, build) -> None:
        item = ReportFigure(name, title, caption)
        try:
            fig = build()
        except _Skip as why:
            item.note = str(why)
        except InputError as exc:
            item.note = str(exc)
        else:
            if fig is None:
                item.note = "not available"
            else:
                item.png = _saved_png(fig, fig_dir, name)
        out.append(item)

    examples = next((e for e in map(read_examples, paths) if e is not None), None)
    flex_file = next((flexibility_path(p) for p in paths if flexibility_path(p).is_file()), None)

    def qf_heat():
        return F.qf_heatmap_figure(df, method=next((m for m in ("fbcnn", "fbcnn-a") if m in set(df["method"])), "fbcnn"))

    add("qf_heatmap", "Predicted QF over the (QF1, QF2) grid",
        "Mean QF per cell for non-aligned double JPEG: the blind network's prediction (left, when a network was "
        "run) and the dominant-QF estimator (right); each cell also gives the true dominant QF, min(QF1, QF2). "
        "Where QF1 < QF2 the paper finds that FBCNN predicts QF2, the last compression, although the image is "
        "dominated by the stronger QF1; FBCNN-D replaces the prediction with the estimate.", qf_heat)
    add("psnr_gain", "PSNR gain over JPEG per method",
        "Mean PSNR of each method minus that of the JPEG input (dB) per (QF1, QF2) cell, non-aligned double JPEG.",
        lambda: F.psnr_gain_figure(df))

    def mse():
        if examples is not None and "mse_curves" in examples:
            m = examples["meta"]
            curves, result = F.curves_from_arrays(examples["mse_curves"], examples["mse_qfs"], m)
            sid, q1, q2 = m["sample_id"], m["qf1"], m["qf2"]
        else:
            curves, result, sid, q1, q2 = _curves_from_corpus(df, corpus_dir)
        return F.mse_curves_figure(curves, result, title=f"64 MSE curves of sample {sid} "
                                   f"(QF1 {q1}, shift {_shift_text(df, sid)}, QF2 {q2}) with the estimate read off them")

    add("mse_curves", "The 64 MSE curves of an example image",
        "Mean squared error (8-bit units, log scale) between the JPEG image and its recompression at every QF, "
        "one panel per position (dy, dx) of the 8x8 grid. Panel (0, 0) is the grid of the last compression "
        "(blue mark: its QF); a dip on a shifted grid is the trace of an earlier compression (red frame and "
        "mark: the estimator's reading).", mse)

    def dq():
        sid = examples["meta"]["sample_id"] if examples is not None else None
        x, source = _clean_from_corpus(df, corpus_dir, sid)
        tile = _dq_tile(x.shape)
        data, rect = _splice_example(x, tile)
        return F.dq_map_figure(data, tile=tile, qf_first=_SPLICE_QF1, rect=rect,
                               title=f"{source} ({x.shape[0]}x{x.shape[1]})\nQF1 {_SPLICE_QF1}, never-compressed "
                               f"rectangle pasted (dashed), QF2 {_SPLICE_QF2}\n"
                               f"P(double compressed) per {8 * tile}x{8 * tile} tile, QF1 given")

    add("dq_map", "Localising a splice: the DCT double-quantization map",
        f"A spliced image made for the report: the clean image behind the example sample, compressed at QF1 "
        f"{_SPLICE_QF1} and decoded, a centred rectangle of the never-compressed image pasted back (dashed outline), "
        f"then saved at QF2 {_SPLICE_QF2} on the same grid. A first compression finer than the last leaves no trace "
        "in the MSE curves above; it shows in the histograms of the last grid's DCT coefficients "
        f"(jpegbench.estimate.dq_map, Bianchi & Piva's per-tile posterior, given QF1 = {_SPLICE_QF1}). Red: the "
        "tile's coefficients show the first quantization (double compressed); blue: they do not (the pasted "
        "region); pale: flat tiles with no evidence either way. With QF1 > QF2 the evidence per tile is weak and "
        "the map noisy, more so on small images. jpegbench estimate --dct runs the file-level test on JPEG files; "
        "notebooks/03_dq_localisation.ipynb "
        "shows detection and localisation step by step.", dq)

    def flex():
        if flex_file is None:
            raise _Skip("no flexibility data next to the results (it needs a model: `jpegbench demo` computes it; "
                        f"or save jpegbench.evaluate.flexibility(...) as CSV to {flexibility_path(paths[0]).name})")
        return F.flexibility_figure(pd.read_csv(flex_file))

    add("flexibility", "Flexibility: PSNR against a manual QF",
        "Each image restored with the QF set by hand instead of the predicted one: the paper's interactive "
        "control. Triangles mark the network's own prediction, stars the true dominant QF.", flex)

    def strip():
        if examples is None or len(examples["crops"]) <= 2:
            raise _Skip("no example crops stored with the results (evaluate with an output file writes them)")
        return F.crop_strip_figure(examples)

    add("crop_strip", "Before and after: one example crop",
        "A crop of the example sample: the JPEG input, each method's output and the ground truth; titles give "
        "the whole image's PSNR and the QF the method used.", strip)
    return out


def _example_row(df: pd.DataFrame, manifest: pd.DataFrame, corpus: Path) -> pd.Series:
    """The manifest row of the results' sample with the largest QF2 - QF1: the example when none is stored."""
    known = manifest[manifest["sample_id"].isin(set(df["sample_id"]))]
    if known.empty:
        raise _Skip(f"the corpus {corpus} holds none of the results' samples")
    return known.loc[(known["qf2"] - known["qf1"]).idxmax()]


def _corpus_image(corpus: Path, rel_path: str, what: str):
    """The corpus image at ``rel_path``; one it cannot read (e.g. over --max-pixels) skips the figure, not the report."""
    from jpegbench.codec import read_image
    from jpegbench.errors import ImageReadError, ImageTooLargeError

    try:
        return read_image(corpus / rel_path)
    except (ImageReadError, ImageTooLargeError) as exc:
        raise _Skip(f"cannot {what} from the corpus: {exc}") from None


def _curves_from_corpus(df: pd.DataFrame, corpus: Path | None):
    """MSE curves of the example sample, computed from the corpus (a second or so: no model)."""
    if corpus is None or not (corpus / "manifest.parquet").is_file():
        raise _Skip("no MSE curves stored with the results, and the corpus is not available to compute them "
                    "(pass corpus_dir / --corpus)")
    from jpegbench.codec import to_gray
    from jpegbench.synth import read_manifest

    row = _example_row(df, read_manifest(corpus), corpus)
    from jpegbench.estimate import estimate_qf

    pixels = _corpus_image(corpus, row["lq_path"], "compute the MSE curves")
    result = estimate_qf(to_gray(pixels))
    return result.curves, result, row["sample_id"], int(row["qf1"]), int(row["qf2"])


#: The splice of the localisation figure: a first compression finer than the last (which the curves cannot see).
_SPLICE_QF1, _SPLICE_QF2 = 90, 75
_DQ_MIN, _DQ_MAX = 128, 512  # pixels: fewer tiles than 4x4 show nothing; 512 keeps the map at about a second


def _clean_from_corpus(df: pd.DataFrame, corpus: Path | None, sample_id: str | None):
    """The gray clean (hq) image of the example sample's source, cropped top-left to a multiple of 8.

    The example sample is ``sample_id`` (the stored examples') or else the one the MSE curves figure picks.
    Among the corpus's samples of the same source the largest hq image is read: a shifted sample's is a few
    pixels smaller. Returns ``(pixels, source)``.
    """
    if corpus is None or not (corpus / "manifest.parquet").is_file():
        raise _Skip("the splice is made from a clean image of the corpus, which is not available "
                    "(pass corpus_dir / --corpus)")
    from jpegbench.codec import to_gray
    from jpegbench.synth import read_manifest

    manifest = read_manifest(corpus)
    if sample_id is None or sample_id not in set(manifest["sample_id"]):
        sample_id = str(_example_row(df, manifest, corpus)["sample_id"])
    source = manifest.loc[manifest["sample_id"] == sample_id, "source"].iloc[0]
    same = manifest[manifest["source"] == source]
    row = same.loc[(same["height"].astype(int) * same["width"].astype(int)).idxmax()]
    x = to_gray(_corpus_image(corpus, row["hq_path"], f"read the clean image of sample {sample_id}"))
    h, w = (min(n, _DQ_MAX) // 8 * 8 for n in x.shape)
    if min(h, w) < _DQ_MIN:
        raise _Skip(f"the clean image of sample {sample_id} is {x.shape[0]}x{x.shape[1]} pixels; the localisation "
                    f"map needs at least {_DQ_MIN}x{_DQ_MIN}")
    return x[:h, :w], str(source)


def _dq_tile(shape: tuple[int, ...]) -> int:
    """Tile size in blocks: 64x64 pixel tiles, or 32x32 below 256 pixels so that the map keeps 4x4 tiles."""
    return 8 if min(shape[:2]) >= 256 else 4


def _splice_example(x: np.ndarray, tile: int) -> tuple[bytes, tuple[int, int, int, int]]:
    """JPEG bytes of ``x`` double compressed (QF1 90, QF2 75, aligned) with a centred never-compressed rectangle.

    The rectangle is about a third of each side, on the map's tile edges (``8 * tile`` pixels), so that
    whole tiles are pasted. Returns ``(data, (y, x, height, width))``; deterministic.
    """
    from jpegbench.codec import decode, encode

    step = 8 * tile
    h, w = x.shape
    th, tw = -(-h // step), -(-w // step)  # tiles, a partial one at the edge included (as dq_map counts)
    nh, nw = -(-th // 3), -(-tw // 3)
    y0, x0 = (th - nh) // 2 * step, (tw - nw) // 2 * step
    rect = (y0, x0, min(nh * step, h - y0), min(nw * step, w - x0))
    spliced = decode(encode(x, _SPLICE_QF1)).copy()
    spliced[y0:y0 + rect[2], x0:x0 + rect[3]] = x[y0:y0 + rect[2], x0:x0 + rect[3]]
    return encode(spliced, _SPLICE_QF2), rect


def _shift_text(df: pd.DataFrame, sample_id: str) -> str:
    rows = df[df["sample_id"] == sample_id]
    return f"({int(rows['shift_dy'].iloc[0])}, {int(rows['shift_dx'].iloc[0])})" if not rows.empty else "?"


def realworld_figures(realworld: dict[str, Any], fig_dir: Path) -> list[ReportFigure]:
    """One figure per image of a real-world sidecar (:func:`jpegbench.evaluate.read_realworld`), saved in ``fig_dir``."""
    from jpegbench.report import figures as F

    out = []
    for k, (image, crops) in enumerate(zip(realworld["meta"]["images"], realworld["crops"])):
        name = f"realworld_{k}"
        png = _saved_png(F.realworld_figure(image, crops), fig_dir, name)
        out.append(ReportFigure(name, str(image["name"]), "", png=png))
    return out
