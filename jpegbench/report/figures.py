"""Matplotlib figures for the report (no pyplot state; saved as PNG and SVG).

Each ``*_figure`` function takes data already computed (a results table, a
flexibility table, the example sidecar) and returns a
:class:`matplotlib.figure.Figure`; none of them runs a model.
:func:`save_figure` writes it as PNG and SVG.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from jpegbench._fs import ensure_dir, write_atomic
from jpegbench.errors import InputError, ResultsError
from jpegbench.report.tables import in_method_order

__all__ = [
    "qf_heatmap_figure",
    "psnr_gain_figure",
    "mse_curves_figure",
    "curves_from_arrays",
    "dq_map_figure",
    "flexibility_figure",
    "crop_strip_figure",
    "realworld_figure",
    "save_figure",
    "figure_png",
]

_LABEL = {"jpeg": "JPEG", "fbcnn": "FBCNN", "fbcnn-d": "FBCNN-D", "fbcnn-a": "FBCNN-A", "qcn": "QCN", "qcn-d": "QCN-D",
          "qgcn": "QGCN", "qgcn-d": "QGCN-D", "ijcn": "IJCN", "ijcn-d": "IJCN-D"}  # fmt: skip
_PER_ROW = 5  # panels per row: many methods wrap instead of making one very wide figure


def _new(n: int, width: float = 4.2, height: float = 3.8):
    from matplotlib.figure import Figure

    rows, cols = math.ceil(n / _PER_ROW), min(n, _PER_ROW)
    fig = Figure(figsize=(width * cols, height * rows), layout="constrained")
    axes = list(fig.subplots(rows, cols, squeeze=False).ravel())
    for ax in axes[n:]:
        fig.delaxes(ax)
    return fig, axes[:n]


def _double(results: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(results, pd.DataFrame):
        raise InputError(f"results must be a DataFrame, got {type(results).__name__}")
    for c in ("qf1", "qf2", "aligned", "method"):
        if c not in results.columns:
            raise ResultsError(f"results table lacks column {c!r}")
    d = results[(results["qf2"].astype(int) >= 0) & ~results["aligned"].astype(bool)]
    if "n_jpeg" in d.columns:
        d = d[d["n_jpeg"].astype(int) == 2]
    return d


def _grid(d: pd.DataFrame, values: pd.Series) -> tuple[np.ndarray, list[int], list[int]]:
    q1 = sorted({int(v) for v in d["qf1"]})
    q2 = sorted({int(v) for v in d["qf2"]})
    grid = np.full((len(q1), len(q2)), np.nan)
    means = values.groupby([d["qf1"].astype(int), d["qf2"].astype(int)]).mean()
    for (a, b), v in means.items():
        grid[q1.index(a), q2.index(b)] = v
    return grid, q1, q2


def _heat(ax, fig, grid, q1, q2, *, title, cmap, vmin, vmax, fmt, cbar_label, truth=None):
    im = ax.imshow(grid, cmap=cmap, vmin=vmin, vmax=vmax, origin="lower", aspect="equal")
    ax.set_xticks(range(len(q2)), [str(q) for q in q2])
    ax.set_yticks(range(len(q1)), [str(q) for q in q1])
    ax.set_xlabel("QF2 (second, last compression)")
    ax.set_ylabel("QF1 (first compression)")
    ax.set_title(title, fontsize=10)
    norm = im.norm
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            v = grid[i, j]
            if math.isnan(v):
                continue
            dark = norm(v) < 0.35 or norm(v) > 0.8 if cmap == "RdBu" else norm(v) < 0.5
            text = format(v, fmt)
            if truth is not None:
                text += f"\n(dom. {truth[i, j]:.0f})"
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if dark else "black")
    fig.colorbar(im, ax=ax, shrink=0.85, label=cbar_label)


def qf_heatmap_figure(results: pd.DataFrame, *, method: str = "fbcnn"):
    """Mean predicted QF over the (QF1, QF2) grid: a network's prediction beside the dominant-QF estimate.

    Non-aligned double JPEG samples only. On ``QF1 < QF2`` cells FBCNN tends
    to predict QF2 (the last compression) while the estimator follows QF1
    (the dominant, stronger one); each cell also shows the true dominant QF.

    Parameters
    ----------
    results : DataFrame
        A results table.
    method : str, default "fbcnn"
        The network whose ``qf_predicted`` is shown; when absent from the
        results, only the estimate panel is drawn.

    Returns
    -------
    Figure
    """
    d = _double(results)
    if d.empty:
        raise InputError("no non-aligned double JPEG samples in the results: nothing to draw")
    per_sample = d.drop_duplicates("sample_id")
    panels = []
    net = d[d["method"] == method]
    if not net.empty and net["qf_predicted"].notna().any():
        panels.append((net, net["qf_predicted"], f"{_LABEL.get(method, method)}: mean predicted QF"))
    panels.append((per_sample, per_sample["qf_estimated"], "dominant-QF estimate on the JPEG image"))
    fig, axes = _new(len(panels))
    for ax, (sub, values, title) in zip(axes, panels):
        grid, q1, q2 = _grid(sub, values.astype(float))
        truth, _, _ = _grid(sub, sub["dominant_qf"].astype(float))
        _heat(ax, fig, grid, q1, q2, title=title, cmap="viridis", vmin=0, vmax=100, fmt=".1f",
              cbar_label="QF (IJG scale)", truth=truth)
    fig.suptitle("QF prediction on non-aligned double JPEG (lower-right triangle: QF1 < QF2)", fontsize=11)
    return fig


def psnr_gain_figure(results: pd.DataFrame, *, metric: str = "psnr"):
    """Mean gain over the JPEG input (dB) per method over the (QF1, QF2) grid.

    Non-aligned double JPEG samples; one panel per method other than
    ``jpeg``, all on one diverging colour scale centred on 0.
    """
    if metric not in ("psnr", "psnrb", "ssim"):
        raise InputError(f"metric must be 'psnr', 'psnrb' or 'ssim', got {metric!r}")
    d = _double(results)
    base = d[d["method"] == "jpeg"].set_index("sample_id")[metric]
    methods = in_method_order(set(d["method"]) - {"jpeg"})
    if base.empty or not methods:
        raise InputError("gain heatmaps need 'jpeg' and at least one other method on double JPEG samples")
    grids = []
    for m in methods:
        sub = d[d["method"] == m]
        gain = sub[metric].to_numpy() - base.reindex(sub["sample_id"]).to_numpy()
        grids.append((m, *_grid(sub, pd.Series(gain, index=sub.index))))
    lim = max(float(np.nanmax(np.abs(g[1]))) for g in grids) or 1.0
    fig, axes = _new(len(methods), width=3.9)
    unit = "dB" if metric != "ssim" else "SSIM"
    name = {"psnr": "PSNR", "psnrb": "PSNR-B", "ssim": "SSIM"}[metric]
    for ax, (m, grid, q1, q2) in zip(axes, grids):
        _heat(ax, fig, grid, q1, q2, title=f"{_LABEL.get(m, m)} − JPEG", cmap="RdBu", vmin=-lim, vmax=lim,
              fmt="+.2f" if metric != "ssim" else "+.3f", cbar_label=f"{name} gain ({unit})")
    fig.suptitle(f"Mean {name} gain over the JPEG input, non-aligned double JPEG", fontsize=11)
    return fig


def mse_curves_figure(curves: Any, result: Any = None, *, title: str | None = None):
    """The 64 MSE curves of one image as an 8x8 grid of panels (:func:`jpegbench.estimate.plot.plot_curves`).

    Parameters
    ----------
    curves : MSECurves or QFEstimateResult
        From :func:`jpegbench.estimate.mse_curves` / :func:`jpegbench.estimate.estimate_qf`.
    result : QFEstimateResult, optional
        Marks the last QF and the detected first compression.
    title : str, optional
        Put before the estimator's summary in the figure title.
    """
    from jpegbench.estimate import MSECurves, QFEstimateResult
    from jpegbench.estimate.plot import plot_curves

    if not isinstance(curves, (MSECurves, QFEstimateResult)):
        raise InputError(f"curves must be MSECurves or a QFEstimateResult, got {type(curves).__name__}")
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, LogLocator, NullLocator

    # No constrained layout and few ticks: with 64 axes both dominate the drawing time.
    fig = plot_curves(curves, result, fig=Figure(figsize=(11, 9.5)))
    ax = fig.axes[0]  # the 64 panels share their x and y tickers
    ax.xaxis.set_major_locator(FixedLocator([10, 50, 90]))
    ax.xaxis.set_minor_locator(NullLocator())
    if ax.get_yscale() == "log":
        ax.yaxis.set_major_locator(LogLocator(numticks=4))
        ax.yaxis.set_minor_locator(NullLocator())
    fig.subplots_adjust(left=0.07, right=0.99, bottom=0.06, top=0.9, wspace=0.1, hspace=0.1)
    summary = fig.get_suptitle()
    heading = title or "64 recompression MSE curves, one panel per 8x8 grid shift (dy, dx)"
    fig.suptitle(heading + (f"\n{summary}" if summary else ""), fontsize=10)
    fig.supylabel("MSE after recompression (8-bit units², log scale)", fontsize=9)
    return fig


def curves_from_arrays(mse: np.ndarray, qfs: Sequence[int], meta: Mapping[str, Any] | None = None):
    """Rebuild an ``MSECurves`` (and the estimate read from it, if recorded) from the examples sidecar."""
    from jpegbench.estimate import MSECurves, QFEstimateResult

    meta = dict(meta or {})
    # The sidecar keeps the arrays under its own names and the geometry in its meta document.
    geo = {k: v for k, v in meta.get("curves", {}).items() if k in ("backend", "image_shape", "crop_shape")}
    curves = MSECurves.from_arrays({"mse": mse, "qfs": qfs, **geo})
    est = meta.get("estimate")
    result = None
    if est:
        result = QFEstimateResult(qf_last=est["qf_last"], qf_dominant=est["qf_dominant"], shift=None if est["shift"] is None else tuple(est["shift"]),
                                  verdict=est["verdict"], confidence=est["confidence"], qf_first=est.get("qf_first"),
                                  estimator=est.get("estimator", ""), curves=curves)
    return curves, result


def dq_map_figure(
    data: bytes,
    *,
    tile: int = 8,
    qf_first: int | None = None,
    rect: tuple[int, int, int, int] | None = None,
    title: str | None = None,
):
    """A JPEG file's double-quantization map (:func:`jpegbench.estimate.plot_dq_map`), a known region outlined.

    Parameters
    ----------
    data : bytes
        The JPEG file.
    tile : int
        Tile size in 8x8 blocks (8: 64x64 pixel tiles).
    qf_first : int, optional
        First QF given to :func:`jpegbench.estimate.dq_map`; default: the file's own estimate.
    rect : (y, x, height, width), optional
        Pixels to outline (dashed, no fill), e.g. the true pasted region of a splice, so a reader can compare
        it with the blue tiles.
    title : str, optional
    """
    from matplotlib.patches import Rectangle

    from jpegbench.estimate import plot_dq_map

    fig = plot_dq_map(data, tile=tile, qf_first=qf_first, title=title)
    fig.axes[0].title.set_fontsize(9)  # a report title runs two lines on a 6-inch figure
    if rect is not None:
        y, x, h, w = rect
        ax = fig.axes[0]
        # In the map's coordinates (tile edges at multiples of 8 * tile), so an aligned region lies on tile edges.
        ax.add_patch(Rectangle((x, y), w, h, fill=False, edgecolor="black", linewidth=2,
                               linestyle="--", label="pasted region (truth)"))
        ax.legend(loc="lower left", fontsize=8, framealpha=0.8)
    return fig


def flexibility_figure(flex: pd.DataFrame):
    """PSNR against the manual QF, per image, with the predicted and the dominant QF marked.

    Parameters
    ----------
    flex : DataFrame
        As :func:`jpegbench.evaluate.flexibility` returns.
    """
    need = ("sample_id", "qf", "psnr", "qf_predicted", "dominant_qf", "qf1", "qf2")
    if not isinstance(flex, pd.DataFrame) or any(c not in flex.columns for c in need):
        raise InputError(f"flex must be a flexibility table with columns {', '.join(need)}")
    fig, (ax,) = _new(1, width=7.0, height=4.2)
    for k, (sid, g) in enumerate(flex.groupby("sample_id", sort=False)):
        g = g.sort_values("qf")
        color = f"C{k % 10}"
        q1, q2, dom, pred = int(g["qf1"].iloc[0]), int(g["qf2"].iloc[0]), int(g["dominant_qf"].iloc[0]), float(g["qf_predicted"].iloc[0])
        pair = f"QF {q1}" if q2 < 0 else f"QF {q1}→{q2}"
        ax.plot(g["qf"], g["psnr"], "-", color=color, lw=1.5, label=f"{sid} ({pair})")
        ax.plot([pred], [np.interp(pred, g["qf"], g["psnr"])], "v", color=color, ms=9, mec="black")
        ax.plot([dom], [np.interp(dom, g["qf"], g["psnr"])], "*", color=color, ms=12, mec="black")
        best = g.loc[g["psnr"].idxmax()]
        ax.plot([best["qf"]], [best["psnr"]], "o", color=color, ms=5, mfc="none")
    ax.plot([], [], "v", color="0.5", mec="black", label="network's predicted QF")
    ax.plot([], [], "*", color="0.5", mec="black", ms=12, label="dominant QF (truth)")
    ax.plot([], [], "o", color="0.5", mfc="none", label="best manual QF")
    ax.set_xlabel("QF given to the network (manual)")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title("Flexibility: restoration quality against the QF set by hand", fontsize=10)
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    return fig


def _show_crop(ax, img: np.ndarray) -> None:
    # Pixels as they are: no interpolation, no rescaling of the 0..255 range, no ticks.
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def crop_strip_figure(examples: Mapping[str, Any]):
    """Before/after crops of one sample: JPEG, each method's output (registry order), ground truth.

    Parameters
    ----------
    examples : dict
        As :func:`jpegbench.report.read_examples` returns (``meta``, ``crops``).
    """
    if not isinstance(examples, Mapping) or "crops" not in examples or "meta" not in examples:
        raise InputError("examples must be the dict read_examples returns (keys 'meta' and 'crops')")
    crops, meta = examples["crops"], examples["meta"]
    names = in_method_order(set(crops) - {"jpeg_input", "hq"}) + ["hq"]
    if "jpeg" not in crops and "jpeg_input" in crops:
        names = ["jpeg_input", *names]
    fig, axes = _new(len(names), width=2.6, height=3.0)
    for ax, n in zip(axes, names):
        _show_crop(ax, crops[n])
        if n == "hq":
            title = "ground truth"
        else:
            key = "jpeg" if n == "jpeg_input" else n
            p = meta.get("psnr", {}).get(key)
            qf = meta.get("qf_used", {}).get(key)
            title = _LABEL.get(key, key) + (f"\n{p:.2f} dB" if p is not None else "")
            title += f", QF {qf:.0f}" if qf is not None else ""
        ax.set_title(title, fontsize=9)
    q1, q2 = meta.get("qf1"), meta.get("qf2")
    pair = f"QF {q1}" if q2 is None or q2 < 0 else f"QF1 {q1}, shift {tuple(meta.get('shift', ()))}, QF2 {q2}"
    y, x, h, w = meta.get("box", (0, 0, 0, 0))
    fig.suptitle(f"Sample {meta.get('sample_id')} ({pair}); crop {h}x{w} at ({y}, {x}); PSNR of the whole image",
                 fontsize=9)
    return fig


_REAL_TITLE = {"jpeg": "JPEG input", "blind": "blind", "dominant": "dominant QF (FBCNN-D)", "manual": "manual QF"}


def realworld_figure(image: Mapping[str, Any], crops: Mapping[str, np.ndarray]):
    """One real-world JPEG: its crop and the crops of the three restorations, titled with the QF each used.

    Parameters
    ----------
    image : dict
        One entry of the real-world sidecar's ``meta["images"]``
        (:func:`jpegbench.evaluate.read_realworld`).
    crops : dict
        Its crops: ``jpeg``, ``blind``, ``dominant``, ``manual``.
    """
    if not isinstance(image, Mapping) or "paths" not in image or not isinstance(crops, Mapping):
        raise InputError("image must be an entry of the real-world sidecar's images, crops its dict of crops")
    names = [n for n in ("jpeg", "blind", "dominant", "manual") if n in crops]
    fig, axes = _new(len(names), width=2.8, height=3.1)
    for ax, n in zip(axes, names):
        _show_crop(ax, crops[n])
        title = _REAL_TITLE[n]
        if n == "jpeg" and image.get("qf_tables") is not None:
            title += f"\ntables QF {image['qf_tables']}"
        elif n != "jpeg":
            run = image["paths"][n]
            title += f"\nQF {run['qf_used']:.0f} ({run['qf_source']})"
        ax.set_title(title, fontsize=9)
    y, x, h, w = image.get("box", (0, 0, 0, 0))
    fig.suptitle(f"{image.get('name')} ({image.get('width')}x{image.get('height')}, {image.get('color_path')} "
                 f"model); crop {h}x{w} at ({y}, {x}); no ground truth", fontsize=9)
    return fig


def save_figure(fig, out_dir: str | os.PathLike[str], name: str, *, dpi: int = 110) -> tuple[Path, Path]:
    """Write ``<name>.png`` and ``<name>.svg`` into ``out_dir``; returns both paths.

    Both files are byte-identical for the same figure (no dates, a fixed SVG
    id salt), so regenerated reports diff only where the data changed.
    """
    import matplotlib

    out = Path(out_dir)
    ensure_dir(out)
    paths = []
    for fmt in ("png", "svg"):
        buf = io.BytesIO()
        kw = {"metadata": {"Date": None}} if fmt == "svg" else {"metadata": {"Software": None}}
        with matplotlib.rc_context({"svg.hashsalt": "jpegbench"}):
            fig.savefig(buf, format=fmt, dpi=dpi, **kw)
        path = out / f"{name}.{fmt}"
        write_atomic(path, buf.getvalue())
        paths.append(path)
    return paths[0], paths[1]


def figure_png(fig, *, dpi: int = 110) -> bytes:
    """The figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()
