"""Figures for QF estimation: the 64 recompression curves as small multiples, estimated vs true QF, and
the double-quantization map of a JPEG file.

matplotlib is imported lazily and used through the object API on the Agg
canvas (no display, no global pyplot state), so these work in tests and on
headless machines.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from jpegbench.errors import InputError
from jpegbench.estimate.curves import MSECurves
from jpegbench.estimate.result import QFEstimateResult

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.axes import Axes

    from jpegbench.codec import JpegCoefficients
    from matplotlib.figure import Figure

__all__ = ["plot_curves", "plot_dq_map", "plot_estimates"]


def _new_figure(figsize: tuple[float, float]) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)  # fixed margins: constrained layout is slow on 64 axes
    FigureCanvasAgg(fig)
    return fig


def plot_curves(
    curves: MSECurves | QFEstimateResult,
    result: QFEstimateResult | None = None,
    *,
    fig: Figure | None = None,
    log: bool = True,
    relative: bool = False,
) -> Figure:
    """Small multiples of the 64 curves: an 8x8 grid of axes, panel ``(dy, dx)`` = shift ``(dy, dx)``.

    Parameters
    ----------
    curves : MSECurves or QFEstimateResult
        A result carries its curves; it is then also used as ``result``.
    result : QFEstimateResult, optional
        Marks the last QF on the aligned panel (blue), the detected first
        compression on its panel (red, panel framed) and, when the result
        has them (paper estimator), each curve's first local minimum (dot).
    fig : matplotlib Figure, optional
        Drawn into (cleared first); a new Agg figure otherwise.
    log : bool
        Log-scaled MSE axis (shared by all panels).
    relative : bool
        Plot ``log(mse + floor) - median over shifts`` instead of the MSE
        (the robust estimator's view; ``log`` is then ignored).

    Returns
    -------
    matplotlib.figure.Figure
    """
    if isinstance(curves, QFEstimateResult):
        result = curves if result is None else result
        if curves.curves is None:
            raise InputError("this result carries no curves; pass the MSECurves")
        curves = curves.curves
    if not isinstance(curves, MSECurves):
        raise InputError(f"curves must be MSECurves or a QFEstimateResult, got {type(curves).__name__}")
    if fig is None:
        fig = _new_figure((13, 11))
    else:
        fig.clear()
    axes = fig.subplots(8, 8, sharex=True, sharey=True, gridspec_kw={"hspace": 0.08, "wspace": 0.08})
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.05, top=0.95)
    qfs = curves.qfs
    data = curves.mse
    if relative:
        floor = float(result.details.get("floor", 0.1)) if result is not None else 0.1
        logs = np.log(data + floor)
        data = logs - np.nanmedian(logs.reshape(64, -1), axis=0)
    first_minima = None if result is None else result.details.get("first_minima")
    from matplotlib.ticker import LogLocator, MaxNLocator, NullLocator

    for dy in range(8):
        for dx in range(8):
            ax = axes[dy, dx]
            y = data[dy, dx]
            ax.plot(qfs, y, lw=0.8, color="0.25")
            if log and not relative:
                ax.set_yscale("log")
            ax.tick_params(labelsize=6, length=2)
            ax.text(0.96, 0.94, f"{dy},{dx}", transform=ax.transAxes, ha="right", va="top", fontsize=6)
            if first_minima is not None and first_minima[dy, dx] > 0 and first_minima[dy, dx] in qfs:
                i = int(np.flatnonzero(qfs == first_minima[dy, dx])[0])
                ax.plot(qfs[i], y[i], "o", ms=2.5, color="tab:orange")
    # few ticks, no minor ones: drawing 64 log axes is otherwise slow
    ax0 = axes[0, 0]
    ax0.xaxis.set_major_locator(MaxNLocator(3, integer=True))
    if log and not relative:
        ax0.yaxis.set_major_locator(LogLocator(numticks=4))
    else:
        ax0.yaxis.set_major_locator(MaxNLocator(3))
    ax0.xaxis.set_minor_locator(NullLocator())
    ax0.yaxis.set_minor_locator(NullLocator())
    if result is not None:
        if result.qf_last is not None:  # uncompressed / undetermined: no QF to mark
            _mark(axes[0, 0], qfs, data[0, 0], result.qf_last, "tab:blue")
        if result.verdict != "single" and result.qf_first is not None and result.shift is not None:
            dy, dx = result.shift
            ax = axes[dy, dx]
            _mark(ax, qfs, data[dy, dx], result.qf_first, "tab:red")
            for side in ax.spines.values():
                side.set_color("tab:red")
                side.set_linewidth(1.5)
        fig.suptitle(
            f"{result.estimator}: {result.verdict}, qf_dominant={result.qf_dominant}, qf_last={result.qf_last}, "
            f"shift={result.shift}, confidence={result.confidence:.2f}",
            fontsize=10,
        )
    fig.supxlabel("recompression QF", fontsize=9)
    fig.supylabel("log(MSE + floor) - median over shifts" if relative else "MSE", fontsize=9)
    return fig


def _mark(ax: Any, qfs: np.ndarray, y: np.ndarray, qf: int, color: str) -> None:
    ax.axvline(qf, color=color, lw=0.8, ls=":")
    hits = np.flatnonzero(qfs == qf)
    if hits.size:
        ax.plot(qf, y[hits[0]], "v", ms=4, color=color)


def plot_estimates(
    df: pd.DataFrame,
    *,
    true: str = "true_dominant_qf",
    estimated: str = "qf_dominant",
    by: str | None = "regime",
    fig: Figure | None = None,
) -> Figure:
    """Scatter of estimated vs true QF, one colour per ``by`` group, with the ±2 band.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per image, e.g. from :func:`jpegbench.estimate.accuracy.evaluate_corpus`;
        if it has an ``estimator`` column, one panel per estimator.
    true, estimated : str
        Column names.
    by : str or None
        Column that colours the points.
    """
    for col in (true, estimated) + ((by,) if by else ()):
        if col not in df.columns:
            raise InputError(f"df has no column {col!r} (columns: {list(df.columns)})")
    groups = list(df.groupby("estimator")) if "estimator" in df.columns else [("", df)]
    if fig is None:
        fig = _new_figure((4.5 * len(groups), 4.5))
    else:
        fig.clear()
    axes = np.atleast_1d(fig.subplots(1, len(groups), sharex=True, sharey=True, squeeze=False)[0])
    fig.subplots_adjust(left=0.1, right=0.98, bottom=0.12, top=0.9, wspace=0.08)
    rng = np.random.default_rng(0)  # jitter only, so overlapping points stay visible
    for ax, (name, sub) in zip(axes, groups):
        ax.fill_between([0, 101], [-2, 99], [2, 103], color="0.9", lw=0)
        ax.plot([0, 101], [0, 101], color="0.5", lw=0.8)
        cats = sub.groupby(by) if by else [("all", sub)]
        for label, part in cats:
            jit = rng.uniform(-0.6, 0.6, size=(2, len(part)))
            ax.scatter(part[true] + jit[0], part[estimated] + jit[1], s=9, alpha=0.7, label=str(label))
        ok = (np.abs(sub[estimated] - sub[true]) <= 2).mean() if len(sub) else np.nan
        ax.set_title(f"{name} (within ±2: {100 * ok:.1f} %)" if name else f"within ±2: {100 * ok:.1f} %", fontsize=9)
        ax.set_xlim(0, 101)
        ax.set_ylim(0, 101)
        ax.set_xlabel(f"true ({true})")
        ax.set_aspect("equal")
    axes[0].set_ylabel(f"estimated ({estimated})")
    axes[-1].legend(fontsize=7, loc="lower right")
    return fig


def plot_dq_map(
    source: str | os.PathLike[str] | bytes | JpegCoefficients,
    *,
    qf_first: int | None = None,
    tile: int = 8,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Draw a JPEG file's decoded luma with :func:`~jpegbench.estimate.dq.dq_map` over it; returns the figure.

    Red: the tile's coefficients show the first quantization (double
    compressed), blue: they do not (a region pasted from a single-compressed
    image). ``ax``: draw into this axes (its figure is returned); default a
    new figure.
    """
    from jpegbench.estimate.dq import _as_coefficients, decoded_luma, dq_map

    coefs = _as_coefficients(source)
    m = dq_map(coefs, qf_first=qf_first, tile=tile)
    luma = np.clip(decoded_luma(coefs), 0, 255)[: coefs.height, : coefs.width]
    if ax is None:
        fig = _new_figure((6, 6 * coefs.height / max(coefs.width, 1)))
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    ax.imshow(luma, cmap="gray", vmin=0, vmax=255)
    extent = (0, m.shape[1] * 8 * tile, m.shape[0] * 8 * tile, 0)
    im = ax.imshow(m, cmap="coolwarm", vmin=0, vmax=1, alpha=0.45, extent=extent, interpolation="nearest")
    ax.set_xlim(0, coefs.width)
    ax.set_ylim(coefs.height, 0)
    ax.set_axis_off()
    ax.set_title(title or f"P(double compressed) per {8 * tile}x{8 * tile} tile")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return fig
