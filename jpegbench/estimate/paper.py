"""The FBCNN-D dominant-QF rule exactly as the paper states it, every open choice a parameter.

The paper (Jiang, Zhang, Timofte, ICCV 2021, section on non-aligned double
JPEG) recompresses the image at every QF after each of the 64 grid shifts
and reads: "the first local minimum of each curve; the smallest first
minimum with MSE < T = 30 is the dominant QF; the global minimum is QF2".
What the sentence leaves open is fixed here, faithfully and without tuning:

* a curve is scanned from low to high QF over ``qf_range``;
* ``minimum="strict"``: a local minimum is a point strictly below both
  neighbours; ``minimum="plateau"``: a run of equal values strictly below the
  points on either side also counts, at its first QF;
* ``endpoints=False``: the first and last QF of the range are never local
  minima (they have one neighbour);
* each curve contributes only its *first* local minimum; among those with
  ``MSE < threshold`` the smallest QF is the dominant QF, ties broken by the
  lower MSE, then by the aligned shift, then by raster order of ``(dy, dx)``;
* ``qf_last`` is the QF of the global minimum of the aligned curve
  (``last_from="aligned"``) or of all 64 curves (``"all"``), ties to the lower QF;
* if no curve has a first minimum below the threshold, the dominant QF is
  ``qf_last`` (verdict ``"single"``).

The verdict is ``"nonaligned-double"`` when the dominant QF comes from a
shift other than ``(0, 0)``, ``"aligned-double"`` when it comes from the
aligned curve at a QF other than ``qf_last``, else ``"single"``. The paper
gives no confidence; here it is ``1 - mse / threshold`` at the chosen
minimum (0 on the fallback), a convenience only.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from jpegbench.errors import InputError
from jpegbench.estimate.curves import MSECurves
from jpegbench.estimate.result import QFEstimateResult

__all__ = ["paper_estimate", "first_local_minimum"]


def first_local_minimum(
    curve: np.ndarray, *, minimum: Literal["strict", "plateau"] = "strict", endpoints: bool = False
) -> int | None:
    """Index of the first local minimum of ``curve`` scanned left to right, or None.

    See the module docstring for ``minimum`` and ``endpoints``.
    """
    c = np.asarray(curve, dtype=np.float64)
    n = c.size
    if minimum not in ("strict", "plateau"):
        raise InputError(f"minimum must be 'strict' or 'plateau', got {minimum!r}")
    if n == 0:
        return None
    if n == 1:
        return 0 if endpoints else None
    i = 0
    while i < n:
        j = i
        if minimum == "plateau":
            while j + 1 < n and c[j + 1] == c[i]:
                j += 1
        left_ok = (c[i - 1] > c[i]) if i > 0 else endpoints
        right_ok = (c[j + 1] > c[j]) if j + 1 < n else endpoints
        if left_ok and right_ok:
            return i
        i = j + 1
    return None


def paper_estimate(
    curves: MSECurves,
    *,
    threshold: float = 30.0,
    qf_range: tuple[int, int] = (1, 100),
    minimum: Literal["strict", "plateau"] = "strict",
    endpoints: bool = False,
    last_from: Literal["aligned", "all"] = "aligned",
) -> QFEstimateResult:
    """FBCNN-D's reading of the 64 recompression curves (see the module docstring).

    Parameters
    ----------
    curves : MSECurves
        With all 64 shifts computed.
    threshold : float
        ``T``: a first minimum counts only if its MSE is below this (8-bit units).
    qf_range : (int, int)
        Inclusive QF range scanned; must lie within ``curves.qfs``.
    minimum, endpoints, last_from
        See the module docstring.

    References
    ----------
    J. Jiang, K. Zhang, R. Timofte, "Towards Flexible Blind JPEG Artifacts Removal", ICCV 2021.
    """
    mse, qfs = _checked(curves, qf_range)
    if last_from not in ("aligned", "all"):
        raise InputError(f"last_from must be 'aligned' or 'all', got {last_from!r}")
    if not threshold > 0:
        raise InputError(f"threshold must be positive, got {threshold!r}")
    source = mse[0, 0] if last_from == "aligned" else mse.reshape(64, -1).min(axis=0)
    qf_last = int(qfs[int(np.argmin(source))])

    candidates = []  # (qf, mse, not aligned, raster, dy, dx)
    first_minima = np.full((8, 8), -1, dtype=np.int64)
    for dy in range(8):
        for dx in range(8):
            i = first_local_minimum(mse[dy, dx], minimum=minimum, endpoints=endpoints)
            if i is None:
                continue
            first_minima[dy, dx] = qfs[i]
            if mse[dy, dx, i] < threshold:
                candidates.append((int(qfs[i]), float(mse[dy, dx, i]), (dy, dx) != (0, 0), 8 * dy + dx, dy, dx))
    details = {
        "threshold": threshold, "qf_range": tuple(qf_range), "minimum": minimum, "endpoints": endpoints,
        "last_from": last_from, "first_minima": first_minima, "n_candidates": len(candidates),
    }  # fmt: skip
    if not candidates:
        return QFEstimateResult(qf_last=qf_last, qf_dominant=qf_last, shift=(0, 0), verdict="single",
                                confidence=0.0, qf_first=None, estimator="paper", curves=curves,
                                details=details)  # fmt: skip
    qf_dom, m, _, _, dy, dx = min(candidates)
    if (dy, dx) != (0, 0):
        verdict = "nonaligned-double"
    elif qf_dom != qf_last:
        verdict = "aligned-double"
    else:
        verdict = "single"
    details["dominant_mse"] = m
    return QFEstimateResult(
        qf_last=qf_last, qf_dominant=int(qf_dom), shift=(int(dy), int(dx)), verdict=verdict,
        confidence=float(np.clip(1.0 - m / threshold, 0.0, 1.0)),
        qf_first=None if verdict == "single" else int(qf_dom), estimator="paper", curves=curves, details=details,
    )  # fmt: skip


def _checked(curves: MSECurves, qf_range: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(curves, MSECurves):
        raise InputError(f"curves must be an MSECurves, got {type(curves).__name__}")
    if np.isnan(curves.mse).any():
        raise InputError("the paper estimator needs all 64 shifts; compute the curves with shifts='all'")
    try:
        lo, hi = (int(v) for v in qf_range)
    except (TypeError, ValueError):
        raise InputError(f"qf_range must be a pair (low, high), got {qf_range!r}") from None
    keep = (curves.qfs >= lo) & (curves.qfs <= hi)
    if lo > hi or keep.sum() < 3:
        raise InputError(f"qf_range {qf_range!r} keeps fewer than 3 of the curves' QFs")
    return curves.mse[:, :, keep], curves.qfs[keep]
