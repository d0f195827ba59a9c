"""Is there any 8x8 JPEG grid in an image's recompression curves: the evidence behind ``uncompressed`` and ``undetermined``.

Every estimator reading of the curves assumes a JPEG grid. This module first
asks whether there is one, in the spirit of Fan & de Queiroz (2003): a JPEG
grid makes the blocks it cut special, so recompression on that grid (and
only there) reproduces the image far better than on the other 63 shifts. A
never-compressed image has no such grid: its 64 shifted crops are samples of
the same content, and no shift is special.

Statistic. With ``L = log(mse + floor)`` and ``R = L - median over the 64
shifts`` (per QF, as in :mod:`.robust`), each shift's *dip* is ``min_q R[s, q]``
(the deepest it falls below the typical shift at any QF). The *depth* of the
grid evidence is ``median_s(dip) - min_s(dip)`` (log units: how far the most
special shift falls below the typical one) and its *outlier score* is that
depth in units of the dips' robust spread (``1.4826 * MAD``, floored at
``min_spread``). On the calibration set, never-compressed images reach a
depth of at most 0.19 (the noise of choosing the deepest of 64 near-equal
dips) and an outlier score of 4.8; JPEGs at QF <= 95 at least 1.6 and 16.
Near-lossless JPEGs fall in between or below: on a 256 x 256 crop of
``camera`` the depth is 2.4 at QF 95, 1.7 at 97, 0.7 at 99 and 0.4 at 100 (which
therefore reads ``uncompressed``). Both tests must agree:

* depth ``>= depth_threshold`` **and** score ``>= outlier_threshold``: a grid
  (at the deepest shift; ``(0, 0)`` is preferred when its own depth passes,
  since the last compression is there unless the image was cropped after it);
* both below: ``uncompressed``;
* one above, one below (e.g. a ramp or a periodic pattern: every shift dips,
  none stands out): ``undetermined``.

Before that, ``undetermined`` for what cannot carry the evidence: fewer
than ``min_blocks`` whole 8x8 blocks per crop (the dips of tiny images scatter
as much as a grid's), or content so flat that recompression changes nothing
(``activity``, the median over shifts of the largest recompression MSE at any
QF, below ``min_activity``: a constant image encodes exactly at every QF, so
nothing distinguishes a JPEG of it from its original).

The thresholds ``depth_threshold`` and ``outlier_threshold`` are derived from
BSDS500 train/val alone by ``scripts/calibrate_confidence.py`` (never-compressed
crops downscaled by 4 against single and double JPEG chains at QF 5..95); its
output ``jpegbench/estimate/confidence.json`` records the scores behind them and
is what this module reads. ``min_blocks``, ``min_activity`` and ``min_spread`` are
fixed by design (see :data:`FIXED`).

References
----------
Z. Fan, R. L. de Queiroz, "Identification of bitmap compression history: JPEG
detection and quantizer estimation", IEEE Trans. Image Processing 12(2), 2003.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np

from jpegbench.estimate.curves import MSECurves, crop_geometry

__all__ = ["GridEvidence", "grid_evidence", "grid_kind", "calibration", "roll_curves", "FIXED", "CALIBRATION_FILE"]

CALIBRATION_FILE = Path(__file__).with_name("confidence.json")

#: Constants fixed by design, with the reason (the calibration script prints and records them).
FIXED: dict[str, tuple[float, str]] = {
    "floor": (1.0 / 12.0, "the MSE of uniform rounding, as in the robust estimator"),
    "min_blocks": (16, "a 4 x 4-block crop (about 40 x 40 pixels): below, 64 dips of a few blocks each scatter as "
                       "much as a grid's"),
    "min_activity": (0.5, "recompression error (8-bit units squared) at the coarsest QF below this: flat content that "
                          "every QF encodes almost exactly, so no grid can show"),
    "min_spread": (0.005, "floor of the dips' spread (log units) so that near-identical shifts (synthetic content) "
                          "do not make any depth an outlier"),
}

GridKind = Literal["grid", "moved", "uncompressed", "undetermined"]


@dataclass(frozen=True)
class GridEvidence:
    """What the curves say about the presence and place of an 8x8 grid (see the module docstring).

    Attributes
    ----------
    depth : float
        ``median(dip) - min(dip)`` over the 64 shifts, log units.
    depth_aligned : float
        ``median(dip) - dip[0, 0]``: the depth of the image's own grid.
    outlier : float
        ``depth`` in units of the dips' robust spread.
    shift : (int, int)
        The deepest shift (where a grid would be).
    blocks : int
        Whole 8x8 blocks in each shifted crop.
    activity : float
        Median over shifts of the largest recompression MSE at any QF.
    reason : str
        Why the evidence is insufficient, or ``""``.
    """

    depth: float
    depth_aligned: float
    outlier: float
    shift: tuple[int, int]
    blocks: int
    activity: float
    reason: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def grid_evidence(curves: MSECurves) -> GridEvidence:
    """Grid evidence of complete (64-shift) curves."""
    floor, min_spread = FIXED["floor"][0], FIXED["min_spread"][0]
    mse = np.asarray(curves.mse, dtype=np.float64)
    n = mse.shape[2]
    logs = np.log(mse + floor)
    rel = logs - np.median(logs.reshape(64, n), axis=0)
    dips = rel.min(axis=2)
    med = float(np.median(dips))
    spread = max(1.4826 * float(np.median(np.abs(dips - med))), min_spread)
    k = int(np.argmin(dips))
    depth = med - float(dips.flat[k])
    h, w = curves.crop_shape
    if h <= 0 or w <= 0:  # curves saved without their geometry: the image shape is the next best bound
        h, w = crop_geometry(*(int(v) for v in curves.image_shape))
    blocks = max(0, (h // 8) * (w // 8))
    activity = float(np.median(mse.reshape(64, n).max(axis=1)))
    reason = ""
    if blocks < FIXED["min_blocks"][0]:
        reason = f"too small: {blocks} whole 8x8 blocks per shifted crop, at least {int(FIXED['min_blocks'][0])} needed"
    elif activity < FIXED["min_activity"][0]:
        reason = f"too flat: recompression changes almost nothing (largest MSE {activity:.3g})"
    return GridEvidence(depth=depth, depth_aligned=med - float(dips[0, 0]), outlier=depth / spread,
                        shift=(k // 8, k % 8), blocks=blocks, activity=activity, reason=reason)  # fmt: skip


@lru_cache(maxsize=1)
def calibration() -> dict:
    """The committed output of ``scripts/calibrate_confidence.py`` (thresholds and confidence maps)."""
    return json.loads(CALIBRATION_FILE.read_text())


def grid_kind(ev: GridEvidence, *, depth_threshold: float | None = None,
              outlier_threshold: float | None = None) -> tuple[GridKind, str]:  # fmt: skip
    """``("grid" | "moved" | "uncompressed" | "undetermined", why)`` from the evidence and the calibrated thresholds.

    ``"moved"``: a grid, but not the image's own (0, 0) one: the image was
    cropped at an offset that is not a multiple of 8 after its last
    compression, and the grid sits at ``ev.shift``.
    """
    if depth_threshold is None or outlier_threshold is None:
        c = calibration()["thresholds"]
        depth_threshold = c["depth_threshold"] if depth_threshold is None else depth_threshold
        outlier_threshold = c["outlier_threshold"] if outlier_threshold is None else outlier_threshold
    depth_t, outlier_t = depth_threshold, outlier_threshold
    if ev.reason:
        return "undetermined", ev.reason
    deep, outlying = ev.depth >= depth_t, ev.outlier >= outlier_t
    if deep and outlying:
        if ev.depth_aligned >= depth_t or ev.shift == (0, 0):
            return "grid", ""
        return "moved", f"the grid is at shift {ev.shift}, not the image's own: cropped after its last compression"
    if not deep and not outlying:
        return "uncompressed", ""
    return "undetermined", (f"the evidence disagrees: depth {ev.depth:.3g} ({'above' if deep else 'below'} "
                            f"{depth_t}), outlier score {ev.outlier:.3g} ({'above' if outlying else 'below'} "
                            f"{outlier_t}); synthetic or periodic content?")  # fmt: skip


def roll_curves(curves: MSECurves, shift: tuple[int, int]) -> MSECurves:
    """The curves re-indexed so that shift ``shift`` becomes ``(0, 0)``.

    The curve of shift ``s`` is measured on the crop ``(8 - s) % 8``; relative
    to the crop of ``shift`` it is the crop of ``s - shift``, so ``new[s] =
    old[(s + shift) % 8]`` is what the curves would be had the image been
    cropped onto that grid (up to one block row or column at the border).
    """
    mse = np.roll(curves.mse, (-shift[0], -shift[1]), axis=(0, 1))
    return replace(curves, mse=mse)
