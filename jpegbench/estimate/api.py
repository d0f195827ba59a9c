"""Public entry points: estimate the QFs of pixels, of a batch of images, or of a JPEG file."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from jpegbench.codec import qf_from_qtables, read_header, read_image
from jpegbench.errors import ImageReadError, ImageTooLargeError, InputError, ShapeError
from jpegbench.estimate.curves import CurveBackend, MSECurves, mse_curves_batch
from jpegbench.estimate.dq import DQResult, detect_double_quantization
from jpegbench.estimate.paper import paper_estimate
from jpegbench.estimate.result import FileEstimate, QFEstimateResult
from jpegbench.estimate.robust import _checked, robust_estimate
from jpegbench.estimate.verdict import distinct_levels, open_world_estimate

__all__ = ["ESTIMATORS", "combine_readings", "estimate_qf", "estimate_qf_batch", "estimate_file",
           "estimate_from_curves"]  # fmt: skip

ESTIMATORS = {"robust": robust_estimate, "paper": paper_estimate}
_CURVE_KEYS = ("qfs", "codec", "codec_version", "chunk_blocks", "num_threads", "luma")


def estimate_from_curves(curves: MSECurves, *, estimator: str = "robust", pixels: np.ndarray | None = None,
                         **params: Any) -> QFEstimateResult:  # fmt: skip
    """Run an estimator on precomputed curves (``params`` go to the estimator).

    The robust estimator runs in the open world (:func:`jpegbench.estimate.verdict.open_world_estimate`):
    it first asks whether the curves show any JPEG grid (verdicts ``"uncompressed"``,
    ``"undetermined"``) and its confidence is calibrated; ``pixels``, the image the curves
    came from, when given, lets it also call synthetic images of a few distinct levels
    ``"undetermined"``. The paper estimator is FBCNN-D's rule as written: it always answers a QF.
    """
    if estimator not in ESTIMATORS:
        raise InputError(f"estimator must be one of {sorted(ESTIMATORS)}, got {estimator!r}")
    fn = ESTIMATORS[estimator]
    accepted = [k for k in inspect.signature(fn).parameters if k != "curves"]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise InputError(f"unknown option(s) {unknown} for the {estimator!r} estimator; it accepts {accepted}")
    if estimator == "robust":
        _checked(curves)  # bad curves keep the estimator's own one-line error
        return open_world_estimate(curves, fn, levels=None if pixels is None else distinct_levels(pixels), **params)
    return fn(curves, **params)


def estimate_qf(
    pixels: np.ndarray | None,
    *,
    estimator: str = "robust",
    backend: CurveBackend = "fast",
    device: object = None,
    curves: MSECurves | None = None,
    **params: Any,
) -> QFEstimateResult:
    """Estimate the last and the dominant JPEG quality of an image from its pixels.

    Parameters
    ----------
    pixels : ndarray, uint8, (H, W) or (H, W, 3), or None
        The decoded image (RGB is reduced to luma, see :func:`mse_curves`).
        May be None when ``curves`` is given.
    estimator : {"robust", "paper"}
        :func:`jpegbench.estimate.robust.robust_estimate` (default) or the
        literal FBCNN-D rule :func:`jpegbench.estimate.paper.paper_estimate`.
    backend : {"fast", "reference"}
        How the curves are computed (ignored when ``curves`` is given).
    device : str or torch.device, optional
        For the fast backend.
    curves : MSECurves, optional
        Precomputed curves (all 64 shifts); skips the computation.
    **params
        Curve options (``qfs``, ``codec``, ``codec_version``, ``chunk_blocks``,
        ``num_threads``, ``luma``) go to :func:`mse_curves`; everything else to the estimator.

    Returns
    -------
    QFEstimateResult
        ``.qf_dominant`` is the number FBCNN-D feeds its restoration network.
    """
    curve_kw = {k: params.pop(k) for k in _CURVE_KEYS if k in params}
    if estimator not in ESTIMATORS:
        raise InputError(f"estimator must be one of {sorted(ESTIMATORS)}, got {estimator!r}")
    if curves is None:
        if pixels is None:
            raise InputError("estimate_qf needs pixels or curves")
        curves = mse_curves_batch([pixels], backend=backend, device=device, **curve_kw)[0]
    elif curve_kw:
        raise InputError(f"curve options {sorted(curve_kw)} cannot be used with precomputed curves")
    return estimate_from_curves(curves, estimator=estimator, pixels=pixels, **params)


def estimate_qf_batch(
    images: Sequence[np.ndarray],
    *,
    estimator: str = "robust",
    backend: CurveBackend = "fast",
    device: object = None,
    **params: Any,
) -> list[QFEstimateResult]:
    """:func:`estimate_qf` for several images; the fast backend batches their curves."""
    curve_kw = {k: params.pop(k) for k in _CURVE_KEYS if k in params}
    if estimator not in ESTIMATORS:
        raise InputError(f"estimator must be one of {sorted(ESTIMATORS)}, got {estimator!r}")
    all_curves = mse_curves_batch(images, backend=backend, device=device, **curve_kw)
    return [estimate_from_curves(c, estimator=estimator, pixels=x, **params) for c, x in zip(all_curves, images)]


def estimate_file(
    path: str | Path,
    *,
    estimator: str = "robust",
    backend: CurveBackend = "fast",
    device: object = None,
    dct: bool = True,
    **params: Any,
) -> FileEstimate:
    """Estimate a JPEG file's QFs from its pixels and read its last QF from its quantization tables.

    The file is decoded with the codec layer (no EXIF rotation, which would
    move the 8x8 grid); a colour file is reduced to the luma plane its
    encoder quantized (full-range BT.601, ``luma="bt601-full"``) unless
    ``luma`` says otherwise.

    With ``dct=True`` (default), where the curves read ``"single"`` the
    file's DCT coefficients are tested for a first compression finer than
    the last (:func:`jpegbench.estimate.dq.detect_double_quantization`),
    and the answer combined (:func:`combine_readings`).

    Returns
    -------
    FileEstimate
        Pixel estimate, table QF, whether the two last QFs agree, the
        dominant QF with the exact last QF substituted, and the combined
        ``verdict``, ``qf_first``, ``shift`` and ``evidence``.

    Raises
    ------
    ImageReadError
        Not a readable JPEG file.
    """
    p = Path(path)
    header = read_header(p)
    tables = qf_from_qtables(header.component_qtables())
    pixels = read_image(p, min_size=1)
    params.setdefault("luma", "bt601-full")
    result = estimate_qf(pixels, estimator=estimator, backend=backend, device=device, **params)
    # pixels that show no grid (a near-lossless JPEG) leave the file's own tables as the answer
    dominant = tables.qf if result.qf_first is None else min(result.qf_first, tables.qf)
    dq = _dct_reading(result, p) if dct else None
    verdict, qf_first, shift, evidence = combine_readings(result, dq)
    # None (no grid) == tables.qf is False: such pixels do not agree with the tables
    return FileEstimate(path=str(p), pixels=result, tables=tables, qf_last_agrees=result.qf_last == tables.qf,
                        qf_dominant=int(dominant), verdict=verdict, qf_first=qf_first, shift=shift,
                        evidence=evidence, dq=dq)  # fmt: skip


def combine_readings(
    curves: QFEstimateResult, dq: DQResult | None
) -> tuple[str, int | None, tuple[int, int] | None, str]:
    """One answer from the curve estimate and the DCT detector: ``(verdict, qf_first, shift, evidence)``.

    The curves decide whenever they see a double compression, and always
    without ``dq`` (pixels only). Only where they say ``"single"`` is the
    DCT detector's finding taken, and only when its first QF is above the
    last one -- the case the curves cannot see -- so a correct curve answer
    is never made wrong by it (a DCT false alarm on a single JPEG aside,
    whose rate :mod:`jpegbench.estimate.dq`'s ``dq_thresholds.json`` states).

    Parameters
    ----------
    curves : QFEstimateResult
    dq : DQResult or None

    Returns
    -------
    verdict, qf_first, shift, evidence
        ``evidence`` is one of :data:`jpegbench.estimate.result.EVIDENCE`.
    """
    if curves.verdict != "single" or dq is None:
        return curves.verdict, curves.qf_first, None if curves.shift is None else tuple(curves.shift), "curves"
    if dq.detected and dq.qf_first is not None and dq.qf_first > dq.qf_last:
        evidence = "dct-aligned" if dq.verdict == "aligned-double" else "dct-nonaligned"
        return dq.verdict, dq.qf_first, tuple(dq.shift), evidence
    return "single", None, (0, 0), "curves+dct"


def _dct_reading(result: QFEstimateResult, src: Path) -> DQResult | None:
    """The DCT detector's reading of the JPEG file ``src`` where the curves ``result`` say single, else None.

    Only there can it add anything (see :func:`combine_readings`). Also None
    where the file's coefficients cannot be read though its pixels could:
    the curves then answer alone.
    """
    if result.verdict != "single":
        return None
    try:
        return detect_double_quantization(src)
    except (ImageReadError, ImageTooLargeError, ShapeError):
        return None
