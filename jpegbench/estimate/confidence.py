"""Calibrated confidence: monotone maps from an estimator's raw score to how often such answers are right.

A map is fitted by isotonic regression (pool-adjacent-violators) of
correctness (0/1) on the raw score, on BSDS500 train/val chains only
(``scripts/calibrate_confidence.py``), and stored as knots: the pooled
blocks' score ranges and their smoothed rate of right answers
(``(right + 1) / (n + 2)``, so that no block claims 0 or 1 from a handful of
cases). Between knots the map is linear, beyond them constant.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["fit_isotonic", "apply_map", "expected_calibration_error", "reliability_table", "answer_is_right",
           "NEAR_LOSSLESS_QF"]

#: JPEGs whose every QF is above this count as right answers for ``uncompressed``: their grid is faint by nature.
NEAR_LOSSLESS_QF = 95


def answer_is_right(verdict: str, qf_dominant: int | None, true_dominant: int | None) -> bool | None:
    """Whether an open-world answer is right: the definition the confidence is calibrated to.

    A JPEG verdict is right when the dominant QF is within 2 of the truth;
    ``uncompressed`` when the image never went through a compression at
    QF <= :data:`NEAR_LOSSLESS_QF` (``true_dominant`` None: never compressed);
    ``undetermined`` claims nothing (None).
    """
    if verdict == "undetermined":
        return None
    if verdict == "uncompressed":
        return true_dominant is None or true_dominant > NEAR_LOSSLESS_QF
    return true_dominant is not None and qf_dominant is not None and abs(int(qf_dominant) - int(true_dominant)) <= 2


def fit_isotonic(score: Sequence[float], right: Sequence[bool], *, increasing: bool = True) -> dict:
    """Isotonic map ``score -> P(right)`` as knots ``{"x": [...], "y": [...], "n": [...]}``.

    Each pooled block contributes two knots, at its lowest and highest
    score, with its smoothed rate; a decreasing map is fitted as an
    increasing one of ``-score``.
    """
    s = np.asarray(score, dtype=np.float64)
    r = np.asarray(right, dtype=np.float64)
    if s.size == 0:
        raise ValueError("fit_isotonic needs at least one sample")
    if not increasing:
        s = -s
    order = np.argsort(s, kind="stable")
    s, r = s[order], r[order]
    # blocks: [sum, count, lo, hi]; merge while a block's mean is not above its left neighbour's
    blocks: list[list[float]] = []
    for x, y in zip(s, r):
        blocks.append([y, 1.0, x, x])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] >= blocks[-1][0] / blocks[-1][1]:
            a = blocks.pop()
            blocks[-1][0] += a[0]
            blocks[-1][1] += a[1]
            blocks[-1][3] = a[3]
    xs, ys, ns = [], [], []
    for total, count, lo, hi in blocks:
        rate = (total + 1.0) / (count + 2.0)
        for x in (lo, hi) if hi > lo else (lo,):
            xs.append(x)
            ys.append(rate)
            ns.append(int(count))
    # the smoothing can break monotonicity between a tiny block and a big one: restore it
    ys = list(np.maximum.accumulate(ys))
    if not increasing:
        xs, ys, ns = [-x for x in xs][::-1], ys[::-1], ns[::-1]
    return {"x": [float(v) for v in xs], "y": [float(v) for v in ys], "n": ns, "increasing": increasing}


def apply_map(m: dict, score: float) -> float:
    """The calibrated confidence of ``score`` under the map ``m`` (from :func:`fit_isotonic`)."""
    x, y = np.asarray(m["x"]), np.asarray(m["y"])
    if not np.isfinite(score):
        return float(y[-1] if score > 0 else y[0])
    return float(np.interp(score, x, y))


def reliability_table(confidence: Sequence[float], right: Sequence[bool], *, bins: int = 10) -> list[dict]:
    """Per confidence bin (equal width on [0, 1]): count, mean confidence and accuracy."""
    c = np.asarray(confidence, dtype=np.float64)
    r = np.asarray(right, dtype=np.float64)
    idx = np.clip((c * bins).astype(int), 0, bins - 1)
    out = []
    for b in range(bins):
        sel = idx == b
        if sel.any():
            out.append({"lo": b / bins, "hi": (b + 1) / bins, "n": int(sel.sum()),
                        "confidence": float(c[sel].mean()), "accuracy": float(r[sel].mean())})  # fmt: skip
    return out


def expected_calibration_error(confidence: Sequence[float], right: Sequence[bool], *, bins: int = 10) -> float:
    """ECE: the count-weighted mean of ``|accuracy - mean confidence|`` over equal-width bins (Guo et al. 2017)."""
    table = reliability_table(confidence, right, bins=bins)
    n = sum(t["n"] for t in table)
    return float(sum(t["n"] * abs(t["accuracy"] - t["confidence"]) for t in table) / max(n, 1))
