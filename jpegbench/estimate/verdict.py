"""The open-world verdict: is there a JPEG grid at all (:mod:`.grid`), then the estimator's reading, with calibrated confidence.

Order of the decision:

1. ``undetermined`` when the image cannot carry the evidence (too small, too
   flat, a palette of a few values) or the two grid tests disagree
   (synthetic or periodic content);
2. ``uncompressed`` when neither finds a grid;
3. a grid on the image's own 8x8 lattice: the estimator reads the curves as
   they are;
4. a grid elsewhere (the image was cropped at an offset that is not a
   multiple of 8 after its last compression): the curves are re-indexed so
   that grid becomes ``(0, 0)`` and read again; ``shift`` then reports where
   that grid (``single``, ``aligned-double``) or the first one
   (``nonaligned-double``) sits in this image's coordinates, and
   ``details["grid_moved"]`` is True.

For ``uncompressed`` and ``undetermined`` the QFs and the shift are None: no
QF is claimed. ``confidence`` is then, for ``uncompressed``, the calibrated
probability that the image indeed never went through a JPEG grid that
matters (see below), and for ``undetermined`` 0.0: it claims nothing.

Confidence of the other verdicts is the probability that the dominant QF is
within 2 of the truth, mapped from the estimator's raw confidence by an
isotonic map per verdict; that of ``uncompressed`` the probability that the
image had no compression at QF <= 95 (near-lossless JPEGs at 97-100 can read
as uncompressed: their grid is faint), mapped from the grid depth. The maps
are fitted on BSDS500 train/val by ``scripts/calibrate_confidence.py``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from jpegbench.estimate.confidence import apply_map
from jpegbench.estimate.curves import MSECurves
from jpegbench.estimate.grid import calibration, grid_evidence, grid_kind, roll_curves
from jpegbench.estimate.result import NO_QF_VERDICTS, QFEstimateResult

__all__ = ["open_world_estimate", "distinct_levels", "MAX_SYNTHETIC_LEVELS"]

#: Images with at most this many distinct values (grey levels, or RGB colours) read ``undetermined``: a
#: palette image whose flat areas happen to fill 8x8 cells encodes exactly on the grid it is drawn on,
#: which the curves cannot tell from a JPEG grid; a decoded lossy JPEG of natural content has far more.
MAX_SYNTHETIC_LEVELS = 16


def distinct_levels(pixels) -> int:
    """Distinct grey levels (gray) or colours (RGB) of uint8 pixels."""
    x = np.asarray(pixels)
    if x.ndim != 3:
        return int(np.unique(x).size)
    packed = (x[..., 0].astype(np.uint32) << 16) | (x[..., 1].astype(np.uint32) << 8) | x[..., 2]
    if x.dtype != np.uint8:  # not what the estimators take; counted by sorting, as ever
        return int(np.unique(packed).size)
    # Every image of the estimate command passes here: marking its colours in a 2**24 table is linear in the
    # pixels, where np.unique sorts them (12-30 ms on a LIVE1 colour image, a sixth of the robust estimator).
    seen = np.zeros(1 << 24, dtype=bool)
    seen[packed.ravel()] = True
    return int(np.count_nonzero(seen))


def open_world_estimate(curves: MSECurves, estimate_fn, *, calibrated: bool = True,
                        depth_threshold: float | None = None, outlier_threshold: float | None = None,
                        levels: int | None = None, **params) -> QFEstimateResult:  # fmt: skip
    """Grid check, then ``estimate_fn(curves, **params)`` on the grid's curves, then calibrated confidence.

    Parameters
    ----------
    curves : MSECurves
        All 64 shifts.
    estimate_fn : callable
        A closed-world reader of the curves (:func:`~jpegbench.estimate.robust_estimate`).
    calibrated : bool
        Map the confidence through the committed calibration (False: the raw
        scores, what the calibration script fits on).
    depth_threshold, outlier_threshold : float, optional
        Override the calibrated grid thresholds (the calibration script derives them).
    levels : int, optional
        Distinct values of the image (:func:`distinct_levels`); at most
        :data:`MAX_SYNTHETIC_LEVELS` makes it ``undetermined``.
    **params
        For ``estimate_fn``.
    """
    ev = grid_evidence(curves)
    kind, why = grid_kind(ev, depth_threshold=depth_threshold, outlier_threshold=outlier_threshold)
    if levels is not None and levels <= MAX_SYNTHETIC_LEVELS and kind != "undetermined":
        kind, why = "undetermined", f"synthetic: only {levels} distinct values"
    grid = ev.as_dict()
    if kind in NO_QF_VERDICTS:
        raw = ev.depth
        conf = 0.0 if kind == "undetermined" else (_map("uncompressed", raw) if calibrated else float("nan"))
        return QFEstimateResult(qf_last=None, qf_dominant=None, shift=None, verdict=kind, confidence=conf,
                                qf_first=None, estimator=getattr(estimate_fn, "__name__", "").removesuffix("_estimate"),
                                curves=curves, details={"grid": grid, "why": why, "raw_confidence": raw})  # fmt: skip
    moved = kind == "moved"
    r = estimate_fn(roll_curves(curves, ev.shift) if moved else curves, **params)
    details = dict(r.details, grid=grid, grid_moved=moved, raw_confidence=r.confidence)
    if moved:
        dy, dx = ev.shift
        first = r.shift if r.verdict == "nonaligned-double" else (0, 0)
        details["why"] = why
        r = replace(r, shift=((first[0] + dy) % 8, (first[1] + dx) % 8), curves=curves)
    conf = _map(r.verdict, r.confidence) if calibrated else r.confidence
    return replace(r, confidence=conf, details=details)


def _map(verdict: str, raw: float) -> float:
    maps = calibration()["maps"]
    return apply_map(maps[verdict], raw) if verdict in maps else float(raw)
