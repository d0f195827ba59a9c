"""Paper-style tables from an evaluation results table (pandas in, pandas out).

Every function takes the DataFrame that :func:`jpegbench.evaluate.evaluate`
returns (or :func:`jpegbench.evaluate.read_results` reads back) and returns a
DataFrame of means; :mod:`jpegbench.report.formatting` prints and writes them.

Means are over images; a sample counts once per method. PSNR and PSNR-B are
in dB, SSIM is unitless.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from jpegbench.errors import InputError, ResultsError
from jpegbench.report.published import (
    PAPER_METHOD,
    PAPER_METHOD_COLOR,
    TABLE1_GRAY_SINGLE,
    TABLE2_COLOR_SINGLE,
    TABLE3_GRAY_DOUBLE_NONALIGNED,
    TABLE3_GROUPS,
)
from jpegbench.synth.degrade import chain_kind, qf_order

__all__ = [
    "METHOD_ORDER",
    "in_method_order",
    "METRICS",
    "table3",
    "qf_prediction_table",
    "qf_source_table",
    "estimator_accuracy",
    "single_jpeg_table",
    "double_jpeg_table",
    "paper_tables",
    "recipe_dataset",
]

#: Methods in the order of the registry (:data:`jpegbench.models.METHODS`, the paper's columns first);
#: unknown ones follow. Written out so that reading results does not import torch (a test pins the two equal).
METHOD_ORDER = ("jpeg", "fbcnn", "fbcnn-d", "fbcnn-a", "qcn", "qcn-d", "qgcn", "qgcn-d", "ijcn", "ijcn-d")
#: (results column, label) of the three metrics, in the paper's cell order.
METRICS = (("psnr", "PSNR"), ("ssim", "SSIM"), ("psnrb", "PSNR-B"))
_REQUIRED = ("sample_id", "method", "qf1", "qf2", "regime", "dominant_qf", "aligned", "psnr", "ssim", "psnrb")
_PAPER_ORDER = {pair: (g, i) for g, (_, pairs) in enumerate(TABLE3_GROUPS) for i, pair in enumerate(pairs)}


def _check(results: pd.DataFrame, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    if not isinstance(results, pd.DataFrame):
        raise InputError(f"results must be a pandas DataFrame, got {type(results).__name__}")
    missing = [c for c in (*_REQUIRED, *extra) if c not in results.columns]
    if missing:
        raise ResultsError(f"results table lacks column(s) {', '.join(missing)}; is it a jpegbench results table?")
    return results


def _metrics(metric: str | None) -> tuple[tuple[str, str], ...]:
    metrics = METRICS if metric is None else tuple(x for x in METRICS if x[0] == metric)
    if not metrics:
        raise InputError(f"metric must be one of {[k for k, _ in METRICS]} or None, got {metric!r}")
    return metrics


def _of_color(results: pd.DataFrame, color: str | None) -> pd.DataFrame:
    """The rows of one colour (``"gray"`` / ``"rgb"``), or all of them for None."""
    if color is None:
        return results
    if color not in ("gray", "rgb"):
        raise InputError(f"color must be 'gray', 'rgb' or None, got {color!r}")
    if "color" not in results.columns:
        raise ResultsError("results table lacks column color; is it a jpegbench results table?")
    return results[results["color"].astype(str) == color]


def _colors(results: pd.DataFrame) -> set[str]:
    return set(results["color"].astype(str)) if "color" in results.columns else {"gray"}


def in_method_order(methods: Iterable[str]) -> list[str]:
    """``methods`` once each, in :data:`METHOD_ORDER`, unknown ones after them in sorted order."""
    present = set(methods)
    return [m for m in METHOD_ORDER if m in present] + sorted(present - set(METHOD_ORDER))


def _methods(results: pd.DataFrame) -> list[str]:
    return in_method_order(results["method"])


def _n_jpeg(results: pd.DataFrame) -> pd.Series:
    if "n_jpeg" in results.columns:
        return results["n_jpeg"].astype(int)
    return np.where(results["qf2"].astype(int) < 0, 1, 2)


def _double_nonaligned(results: pd.DataFrame) -> pd.DataFrame:
    """Two compressions whose grids differ by a shift (no resize): the Table 3 protocol."""
    n = _n_jpeg(results)
    kind = np.array([chain_kind(q2, a) for q2, a in zip(results["qf2"], results["aligned"].astype(bool))], dtype=object)
    keep = (n == 2) & (kind == "nonaligned-double")
    if "shift_dy" in results.columns:
        keep &= results["shift_dy"].astype(int) >= 0
    return results[keep]


_PAPER_GROUP = {"qf1>qf2": "QF_1 > QF_2", "qf1=qf2": "QF_1 = QF_2", "qf1<qf2": "QF_1 < QF_2"}


def _group(qf1: int, qf2: int) -> str:
    """The paper's name for the QF order of a pair (:func:`jpegbench.synth.degrade.qf_order`)."""
    return _PAPER_GROUP[qf_order(qf1, qf2)]


def _pair_key(pair: tuple[int, int]) -> tuple:
    g = {"QF_1 > QF_2": 0, "QF_1 = QF_2": 1, "QF_1 < QF_2": 2}[_group(*pair)]
    return (g, *_PAPER_ORDER.get(pair, (g, 99))[1:], pair)


def _means(d: pd.DataFrame, by: list[str], keys: list[tuple], metrics: tuple[tuple[str, str], ...]
           ) -> tuple[list[int], dict[tuple[str, str, str], list[float]]]:
    """The number of images per key of ``by``, and per ``(method, metric, label)`` our mean per key (NaN: not run).

    The shared core of :func:`table3`, :func:`double_jpeg_table` and
    :func:`single_jpeg_table`: ``keys`` are the rows' values of ``by`` in
    table order, methods come in :func:`_methods` order, metrics in ``metrics`` order.
    """
    if not keys:
        return [], {}
    means = d.groupby([*by, "method"])[[k for k, _ in metrics]].mean()
    counts = d.groupby(by)["sample_id"].nunique()
    ours = {(m, key, label): [float(means.loc[(*k, m), key]) if (*k, m) in means.index else math.nan for k in keys]
            for m in _methods(d) for key, label in metrics}  # fmt: skip
    return [int(counts.loc[k]) for k in keys], ours


def _frame(cols: dict[tuple[str, str, str], list[Any]], index: pd.Index) -> pd.DataFrame:
    """The table of ``cols`` with their ``(method, metric, value)`` column levels."""
    out = pd.DataFrame(cols, index=index)
    out.columns = pd.MultiIndex.from_tuples(list(cols), names=["method", "metric", "value"])
    return out


def _paper3() -> pd.DataFrame:
    return pd.DataFrame(TABLE3_GRAY_DOUBLE_NONALIGNED, columns=["group", "qf", "method", "psnr", "ssim", "psnrb"])


def table3(results: pd.DataFrame, *, paper: bool = True, baselines: bool = False,
           metric: str | None = None, color: str | None = None) -> pd.DataFrame:
    """The FBCNN paper's Table 3: non-aligned double JPEG, means per QF pair and method.

    Only samples with exactly two compressions whose grids are shifted
    against each other (``aligned`` false, no resize) count, whatever the
    shift; the paper used shift (4, 4) on LIVE1 gray.

    Parameters
    ----------
    results : DataFrame
        One row per (sample, method), as :func:`jpegbench.evaluate.evaluate` returns.
    paper : bool, default True
        Add the paper's printed value (``"paper"``) and ours minus the
        paper's (``"delta"``) next to each of our means (``"ours"``), where
        the paper has the method (the table-guided ones it has not) and the cell (our ``jpeg``, ``fbcnn``, ``fbcnn-d``,
        ``fbcnn-a`` are its JPEG, FBCNN, FBCNN-D, FBCNN-A columns).
    baselines : bool, default False
        With ``paper``, also add the paper's other methods (DnCNN, DCSC,
        QGAC) as paper-only columns.
    metric : {"psnr", "ssim", "psnrb"}, optional
        Only this metric (one table per metric keeps many methods readable);
        default all three.
    color : {"gray", "rgb"}, optional
        Only the samples of this colour; default all. The paper's Table 3
        is gray: colour samples (all of them ``"rgb"``) get no paper columns.

    Returns
    -------
    DataFrame
        Index ``(group, QF)``: group ``"QF_1 > QF_2"`` / ``"QF_1 = QF_2"`` /
        ``"QF_1 < QF_2"`` and QF the pair as the paper prints it,
        ``"(30,10)"``; rows in the paper's order, pairs the paper lacks
        after those of their group. Columns ``(method, metric, value)`` with
        metric ``PSNR`` / ``SSIM`` / ``PSNR-B`` and value ``ours`` / ``paper``
        / ``delta``, preceded by ``("n", "", "")``, the number of images.
        Empty (no rows) when the results hold no such samples.
    """
    results = _of_color(_check(results), color)
    metrics = _metrics(metric)
    d = _double_nonaligned(results)
    paper = paper and "rgb" not in _colors(d)
    pairs = sorted({(int(a), int(b)) for a, b in zip(d["qf1"], d["qf2"])}, key=_pair_key)
    index = pd.MultiIndex.from_tuples([(_group(*p), f"({p[0]},{p[1]})") for p in pairs], names=["group", "QF"])
    n, means = _means(d, ["qf1", "qf2"], pairs, metrics)
    cols: dict[tuple[str, str, str], list[float]] = {("n", "", ""): n}
    printed = _paper3().set_index(["qf", "method"]) if paper else None
    for (m, key, label), ours in means.items():
        cols[(m, label, "ours")] = ours
        name = PAPER_METHOD.get(m)
        if paper and name is not None:  # the paper has no column for e.g. qcn: no empty ones
            ref = [_lookup(printed, f"({p[0]},{p[1]})", name, key) for p in pairs]
            cols[(m, label, "paper")] = ref
            cols[(m, label, "delta")] = [o - r for o, r in zip(ours, ref)]
    if paper and baselines:
        ours_paper = {PAPER_METHOD.get(m) for m in _methods(d)}
        for name in dict.fromkeys(printed.index.get_level_values("method")):
            if name in ours_paper or name in PAPER_METHOD.values():
                continue
            for key, label in metrics:
                cols[(name, label, "paper")] = [_lookup(printed, f"({p[0]},{p[1]})", name, key) for p in pairs]
    out = _frame(cols, index)
    out[("n", "", "")] = out[("n", "", "")].astype(int)
    return out


def double_jpeg_table(results: pd.DataFrame, *, metric: str | None = None, color: str | None = None) -> pd.DataFrame:
    """Two compressions, aligned and non-aligned: means per grid shift and QF pair (e.g. IJCN's protocol).

    The paper's Table 3 keeps only non-aligned pairs; protocols that also
    test the aligned case (IJCN's ``test_colordouble_IJCN.py``: QF1, QF2 in
    {30, 50}, shifts (0, 0) and (4, 4); ``datasets/ijcn-double-color.toml``)
    read better with both shifts side by side. No paper columns: neither
    paper prints these cells for our methods.

    Parameters
    ----------
    results : DataFrame
        One row per (sample, method), as :func:`jpegbench.evaluate.evaluate` returns.
    metric : {"psnr", "ssim", "psnrb"}, optional
        Only this metric; default all three.
    color : {"gray", "rgb"}, optional
        Only the samples of this colour; default all.

    Returns
    -------
    DataFrame
        Index ``(shift, QF)``: the shift as ``"(4,4)"`` (``"(0,0)"``:
        aligned) and the pair as ``"(30,50)"``; shifts in order, pairs by the
        paper's groups (QF1 > QF2, =, <). Columns ``(method, metric, "ours")``
        (the layout of :func:`table3`, without paper columns) preceded by
        ``("n", "", "")``, the number of images. Empty when the
        results hold no two-compression samples with a known shift.
    """
    d = _of_color(_check(results, ("shift_dy", "shift_dx")), color)
    d = d[(_n_jpeg(d) == 2) & (d["shift_dy"].astype(int) >= 0) & (d["shift_dx"].astype(int) >= 0)]
    metrics = _metrics(metric)
    keys = sorted({(int(a), int(b), int(c), int(e)) for a, b, c, e in
                   zip(d["shift_dy"], d["shift_dx"], d["qf1"], d["qf2"])},
                  key=lambda k: (k[0], k[1], _pair_key((k[2], k[3]))))  # fmt: skip
    index = pd.MultiIndex.from_tuples([(f"({a},{b})", f"({c},{e})") for a, b, c, e in keys], names=["shift", "QF"])
    n, means = _means(d, ["shift_dy", "shift_dx", "qf1", "qf2"], keys, metrics)
    cols: dict[tuple[str, str, str], list[Any]] = {("n", "", ""): n}
    cols.update({(m, label, "ours"): ours for (m, _, label), ours in means.items()})
    return _frame(cols, index)


def _lookup(printed: pd.DataFrame, qf: str, method: str | None, key: str) -> float:
    if method is None or (qf, method) not in printed.index:
        return math.nan
    return float(printed.loc[(qf, method), key])


def _tracks(mean: float, qf1: int, qf2: int) -> str:
    if math.isnan(mean):
        return ""
    d1, d2 = abs(mean - qf1), abs(mean - qf2)
    if qf1 == qf2:
        return "QF1=QF2"
    return "QF1" if d1 < d2 else "QF2" if d2 < d1 else "between"


def qf_prediction_table(results: pd.DataFrame) -> pd.DataFrame:
    """Mean predicted QF per QF pair: each network's prediction and the estimators'.

    Shows at a glance which compression each predictor follows: for a
    non-aligned double JPEG with ``QF1 < QF2`` the paper finds that FBCNN
    predicts QF2 (the last, weaker compression), while the image's quality
    is dominated by QF1.

    Returns
    -------
    DataFrame
        Index ``(regime, aligned, qf1, qf2)`` (``qf2 = -1`` for single JPEG).
        Columns: ``n`` (images), ``dominant_qf``, then for each method with a
        network prediction ``"<method> predicted"`` (mean ``qf_predicted``)
        and ``"<method> tracks"`` (which of QF1 / QF2 the mean is nearer),
        ``"estimate"`` (mean ``qf_estimated``, the dominant-QF estimator on
        the JPEG image) and ``"tables"`` (mean QF read from the file's last
        quantization tables).
    """
    results = _check(results, ("qf_predicted", "qf_estimated"))
    if results.empty:
        return pd.DataFrame()
    keys = ["regime", "aligned", "qf1", "qf2"]
    per_sample = results.drop_duplicates("sample_id").set_index("sample_id")
    g = per_sample.groupby(keys, sort=True)
    out = pd.DataFrame({"n": g.size(), "dominant_qf": g["dominant_qf"].mean()})
    for m in _methods(results):
        sub = results[results["method"] == m]
        if sub["qf_predicted"].notna().any():
            mean = sub.groupby(keys)["qf_predicted"].mean()
            out[f"{m} predicted"] = mean
            out[f"{m} tracks"] = [
                _tracks(mean.get(k, math.nan), int(k[2]), int(k[3])) if int(k[3]) >= 0 else ""
                for k in out.index
            ]
    out["estimate"] = g["qf_estimated"].mean()
    if "qf_last_tables" in per_sample.columns:
        out["tables"] = g["qf_last_tables"].mean()
    return out


def qf_source_table(results: pd.DataFrame) -> pd.DataFrame:
    """What each method sees of the QF, per regime: the QF it used, how far from the dominant QF, and from where.

    FBCNN uses its own prediction, QCN/QGCN/IJCN the QF of the file's last
    quantization tables, the ``-d`` methods the estimator's dominant QF
    (``qf_source`` of the results: ``predicted``, ``tables``,
    ``tables-approx``, ``dominant``, ``manual``).

    Returns
    -------
    DataFrame
        Index ``(regime, method)`` (methods with a QF only: not ``jpeg``).
        Columns ``n`` (images), ``mean QF used``, ``QF used - dominant``
        (mean signed difference: negative where the method assumes a
        stronger compression than the dominant one), ``|QF used - dominant|``
        (mean absolute) and ``source`` (the shares of each ``qf_source``,
        e.g. ``"dominant 75%, predicted 25%"``). Empty without such rows.
    """
    results = _check(results, ("qf_used",))
    d = results[results["qf_used"].notna()]
    if d.empty:
        return pd.DataFrame()
    source = d["qf_source"] if "qf_source" in d.columns else pd.Series("", index=d.index)
    d = d.assign(diff=d["qf_used"].astype(float) - d["dominant_qf"].astype(float),
                 source=source.replace("", "unknown"))  # fmt: skip
    regimes = [r for r in ("single", "simple", "complex") if r in set(d["regime"])]
    regimes += sorted(set(d["regime"]) - set(regimes))
    rows = {}
    for r in regimes:
        for m in _methods(d[d["regime"] == r]):
            g = d[(d["regime"] == r) & (d["method"] == m)]
            shares = g["source"].value_counts(normalize=True, sort=False)
            shares = shares.sort_values(ascending=False, kind="stable")
            rows[(r, m)] = {"n": int(g["sample_id"].nunique()), "mean QF used": float(g["qf_used"].mean()),
                            "QF used - dominant": float(g["diff"].mean()),
                            "|QF used - dominant|": float(g["diff"].abs().mean()),
                            "source": ", ".join(f"{k} {v:.0%}" for k, v in shares.items())}  # fmt: skip
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index = pd.MultiIndex.from_tuples(list(rows), names=["regime", "method"])
    return out


def estimator_accuracy(results: pd.DataFrame, *, tolerance: int = 2) -> pd.DataFrame:
    """Share of images whose QF estimate is within ``tolerance`` of the dominant QF, per regime.

    Parameters
    ----------
    results : DataFrame
    tolerance : int, default 2
        ``|estimate - dominant_qf| <= tolerance`` counts as right.

    Returns
    -------
    DataFrame
        Index ``regime`` (``single``, ``simple``, ``complex``, then ``all``).
        Columns ``n`` and, for the estimator (``estimate``), the file's last
        tables (``tables``) and each network's prediction
        (``"<method> predicted"``), the share right (0..1); plus
        ``"estimate MAE"``, the estimator's mean absolute error in QF units.
    """
    results = _check(results, ("qf_estimated",))
    if results.empty:
        return pd.DataFrame()
    per_sample = results.drop_duplicates("sample_id").set_index("sample_id")
    truth = per_sample["dominant_qf"].astype(float)
    sources = {"estimate": per_sample["qf_estimated"].astype(float)}
    if "qf_last_tables" in per_sample.columns:
        sources["tables"] = per_sample["qf_last_tables"].astype(float)
    for m in _methods(results):
        sub = results[results["method"] == m].set_index("sample_id")["qf_predicted"].astype(float)
        if sub.notna().any():
            sources[f"{m} predicted"] = sub.reindex(per_sample.index)
    regimes = [r for r in ("single", "simple", "complex") if r in set(per_sample["regime"])]
    regimes += sorted(set(per_sample["regime"]) - set(regimes))
    rows = {}
    for name in [*regimes, "all"]:
        mask = per_sample["regime"] == name if name != "all" else pd.Series(True, index=per_sample.index)
        row = {"n": int(mask.sum())}
        for label, est in sources.items():
            ok = (est[mask] - truth[mask]).abs() <= tolerance
            row[label] = float(ok[est[mask].notna()].mean()) if est[mask].notna().any() else math.nan
        row["estimate MAE"] = float((sources["estimate"][mask] - truth[mask]).abs().mean())
        rows[name] = row
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "regime"
    out.attrs["percent"] = [c for c in out.columns if c not in ("n", "estimate MAE")]
    return out


def single_jpeg_table(results: pd.DataFrame, *, paper: str | None = "auto", metric: str | None = None,
                      color: str | None = None) -> pd.DataFrame:
    """Single JPEG: means per QF and method (the layout of the paper's Tables 1 (gray) and 2 (colour)).

    Parameters
    ----------
    results : DataFrame
    paper : str or None, default "auto"
        A dataset of the paper's table (Table 1 for gray samples:
        ``"LIVE1"``, ``"Classic5"``, ``"BSDS500"``; Table 2 for colour:
        ``"LIVE1"``, ``"BSDS500"``, ``"ICB"``) whose printed JPEG and FBCNN
        values (FBCNN-C for colour) to put next to ours, ``None`` for none,
        or ``"auto"``: the dataset named in the corpus ``source`` column if
        every sample comes from one (e.g. ``LIVE1_color``).
    metric : {"psnr", "ssim", "psnrb"}, optional
        Only this metric; default all three.
    color : {"gray", "rgb"}, optional
        Only the samples of this colour; default all. Samples that are all
        ``"rgb"`` are compared with Table 2, others with Table 1.

    Returns
    -------
    DataFrame
        Index ``QF``; columns ``("n", "", "")`` and ``(method, metric,
        value)`` as in :func:`table3`. Empty when there are no single JPEG samples.
        ``attrs["paper_dataset"]`` and ``attrs["paper_table"]`` (1 or 2) say what the paper columns are.
    """
    results = _of_color(_check(results), color)
    metrics = _metrics(metric)
    d = results[(_n_jpeg(results) == 1)]
    if d.empty:
        return pd.DataFrame()
    colour = _colors(d) == {"rgb"}
    dataset = _paper_dataset(d, colour) if paper == "auto" else paper
    records, names = (TABLE2_COLOR_SINGLE, PAPER_METHOD_COLOR) if colour else (TABLE1_GRAY_SINGLE, PAPER_METHOD)
    printed = pd.DataFrame(records, columns=["group", "qf", "method", "psnr", "ssim", "psnrb"])
    if dataset is not None:
        if dataset not in set(printed["group"]):
            raise InputError(f"paper must be one of {sorted(set(printed['group']))}, None or 'auto', got {dataset!r}")
        printed = printed[printed["group"] == dataset].set_index(["qf", "method"])
    qfs = sorted({int(q) for q in d["qf1"]})
    n, means = _means(d, ["qf1"], [(q,) for q in qfs], metrics)
    cols: dict[tuple[str, str, str], list[float]] = {("n", "", ""): n}
    for (m, key, label), ours in means.items():
        cols[(m, label, "ours")] = ours
        if dataset is not None:
            ref = [_lookup(printed, str(q), names.get(m), key) for q in qfs]
            if not all(math.isnan(v) for v in ref):
                cols[(m, label, "paper")] = ref
                cols[(m, label, "delta")] = [o - r for o, r in zip(ours, ref)]
    out = _frame(cols, pd.Index(qfs, name="QF"))
    out.attrs["paper_dataset"] = dataset
    out.attrs["paper_table"] = 2 if colour else 1
    return out


def _paper_dataset(d: pd.DataFrame, colour: bool = False) -> str | None:
    if "source" not in d.columns:
        return None
    sources = {str(s).lower() for s in d["source"]}
    for name in ("LIVE1", "BSDS500", "ICB") if colour else ("LIVE1", "Classic5", "BSDS500"):
        if sources and all(name.lower() in s for s in sources):
            return name
    return None


def recipe_dataset(metas: Sequence[Mapping[str, Any]]) -> str:
    """The paper's dataset every run's recipe reads (``LIVE1_color`` in its source path: ``"LIVE1"``), else ``"auto"``.

    ``metas`` are the results files' metadata documents (``recipe``, ``corpus``): a corpus's
    ``source`` column holds file names only, its recipe says which data set they are.
    """
    found = set()
    for meta in metas:
        text = f"{meta.get('recipe') or ''} {meta.get('corpus') or ''}".lower()
        names = {n for n in ("LIVE1", "Classic5", "BSDS500", "ICB") if n.lower() in text}
        if len(names) != 1:
            return "auto"
        found |= names
    return found.pop() if len(found) == 1 else "auto"


def _has_aligned_double(results: pd.DataFrame) -> bool:
    return bool(((_n_jpeg(results) == 2) & results["aligned"].astype(bool)).any()) if not results.empty else False


def paper_tables(results: pd.DataFrame, *, dataset: str | None = "auto") -> dict[str, pd.DataFrame]:
    """The report's Tables 3 and 1/2: one per metric and colour, by file stem.

    ``table3_<metric>`` and ``single_jpeg_<metric>`` for gray samples (also
    for a results table without colour samples: they then say "no samples
    of this kind"), ``table3_color_<metric>`` and ``table2_<metric>`` when
    there are colour samples; ``double_<metric>`` / ``double_color_<metric>``
    (:func:`double_jpeg_table`) when some double JPEGs are aligned, which
    Table 3 leaves out. One table per metric keeps many methods
    readable. ``dataset`` is the paper's dataset for the single JPEG tables
    (see :func:`single_jpeg_table`; :func:`recipe_dataset` finds it).
    """
    df = _check(results)
    colors = _colors(df)
    # Gray tables for a results table without colour samples too (they say "no samples of this kind").
    # (colour, stems of the Table 3, double JPEG by shift and single JPEG tables)
    kinds = [("gray" if "rgb" in colors else None, "table3", "double", "single_jpeg")] if colors != {"rgb"} else []
    if "rgb" in colors:
        kinds.append(("rgb", "table3_color", "double_color", "table2"))
    out = {}
    for color, nonaligned, by_shift, single in kinds:
        for key, _ in METRICS:
            out[f"{nonaligned}_{key}"] = table3(df, paper=True, metric=key, color=color)
        if "shift_dy" in df.columns and _has_aligned_double(_of_color(df, color)):  # Table 3 leaves these out: both shifts side by side
            for key, _ in METRICS:
                out[f"{by_shift}_{key}"] = double_jpeg_table(df, metric=key, color=color)
        for key, _ in METRICS:
            try:
                out[f"{single}_{key}"] = single_jpeg_table(df, metric=key, color=color, paper=dataset)
            except InputError:  # a dataset of the other table (Classic5 has no colour Table 2 row)
                out[f"{single}_{key}"] = single_jpeg_table(df, metric=key, color=color)
    return out
