"""Dominant-QF estimation from pixels: recompression curves over the 64 grid shifts and their readers.

FBCNN-D (Jiang, Zhang, Timofte, ICCV 2021) estimates the quality of the
strongest compression an image went through by recompressing it at every QF
after each of the 64 8x8 grid shifts. This package computes those curves
(:func:`mse_curves`, a pixel-domain reference backend and a fast torch one
that reproduces it) and reads them with the paper's rule (``"paper"``) or
with a content-normalised rule (``"robust"``). Curves go to and from files
with :meth:`MSECurves.save` / :meth:`MSECurves.load`, and
:class:`CurveCache` keeps them on disk keyed by the JPEG file's hash.

Open world: the robust estimator first asks whether the curves show any 8x8
JPEG grid (:mod:`.grid`, :mod:`.verdict`): verdicts ``"uncompressed"`` (no
grid: never compressed, or near-lossless) and ``"undetermined"`` (too small,
flat or synthetic to tell) carry no QF and no shift (None), and its
confidence is calibrated on BSDS500 (:mod:`.confidence`,
``scripts/calibrate_confidence.py``).

Shift convention: ``result.shift == (dy, dx)`` is the grid shift of the first
compression as the corpus manifest writes it (rows/columns removed after
it); ``curves.mse[dy, dx]`` is that grid's curve, computed on the crop
:func:`crop_for_shift` ``((8 - dy) % 8, (8 - dx) % 8)``.

Typical use::

    from jpegbench.estimate import estimate_qf
    r = estimate_qf(gray_uint8, estimator="robust", backend="fast")
    r.qf_dominant, r.qf_last, r.shift, r.verdict

A first compression *finer* than the last leaves no trace in the curves;
for JPEG files :func:`detect_double_quantization` finds it in the DCT
coefficients' histograms, :func:`estimate_file` combines both readings
(``verdict``, ``qf_first``, ``shift``, ``evidence``) and :func:`dq_map` /
:func:`plot_dq_map` localise it per 64x64 tile.
"""

from jpegbench.estimate.api import (
    ESTIMATORS,
    combine_readings,
    estimate_file,
    estimate_from_curves,
    estimate_qf,
    estimate_qf_batch,
)
from jpegbench.estimate.cache import CurveCache
from jpegbench.estimate.curves import (
    MIN_SIZE,
    MSECurves,
    crop_for_shift,
    crop_geometry,
    mse_curves,
    mse_curves_batch,
    shift_for_crop,
)
from jpegbench.estimate.dq import DQResult, detect_double_quantization, dq_map
from jpegbench.estimate.plot import plot_dq_map
from jpegbench.estimate.paper import paper_estimate
from jpegbench.estimate.result import EVIDENCE, VERDICTS, FileEstimate, QFEstimateResult
from jpegbench.estimate.robust import robust_estimate

__all__ = [
    "CurveCache", "DQResult", "ESTIMATORS", "EVIDENCE", "FileEstimate", "MIN_SIZE", "MSECurves", "QFEstimateResult",
    "VERDICTS", "combine_readings", "crop_for_shift", "crop_geometry", "detect_double_quantization", "dq_map",
    "estimate_file", "estimate_from_curves", "estimate_qf", "estimate_qf_batch", "mse_curves", "mse_curves_batch",
    "paper_estimate", "plot_dq_map", "robust_estimate", "shift_for_crop",
]  # fmt: skip
