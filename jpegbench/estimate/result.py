"""Result types of QF estimation: one image (:class:`QFEstimateResult`), one JPEG file (:class:`FileEstimate`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jpegbench.codec import QtableQF
from jpegbench.estimate.curves import MSECurves

__all__ = ["VERDICTS", "NO_QF_VERDICTS", "EVIDENCE", "QFEstimateResult", "FileEstimate"]

VERDICTS: tuple[str, ...] = ("single", "aligned-double", "nonaligned-double", "uncompressed", "undetermined")
#: The verdicts that claim no JPEG compression: their QFs and shift are None.
NO_QF_VERDICTS: tuple[str, ...] = ("uncompressed", "undetermined")
#: What decided a file's verdict (:attr:`FileEstimate.evidence`, the ``evidence`` column of ``jpegbench estimate``).
EVIDENCE: tuple[str, ...] = ("curves", "curves+dct", "dct-aligned", "dct-nonaligned")


@dataclass
class QFEstimateResult:
    """What an estimator reads off an image's recompression curves.

    Attributes
    ----------
    qf_last : int or None
        QF of the last compression (the one on the image's own 8x8 grid).
        None for ``"uncompressed"`` and ``"undetermined"``.
    qf_dominant : int or None
        The strongest compression the image went through: ``min(qf1, qf_last)``
        when an earlier compression ``qf1`` is detected, else ``qf_last``.
        None for ``"uncompressed"`` and ``"undetermined"``.
    shift : (int, int) or None
        Grid shift ``(dy, dx)`` of the detected first compression in the
        manifest convention (rows/columns removed after it); ``(0, 0)`` when
        no non-aligned compression is detected; for an image cropped after
        its last compression at an offset that is not a multiple of 8, where
        that grid now sits (``details["grid_moved"]``). None for
        ``"uncompressed"`` and ``"undetermined"``.
    verdict : {"single", "aligned-double", "nonaligned-double", "uncompressed", "undetermined"}
        ``"single"`` means no earlier compression was detected, not that
        there was none (an earlier compression with a QF above the last one
        leaves almost no trace). ``"uncompressed"``: no trace of any 8x8
        JPEG grid (a near-lossless JPEG, QF 97-100, can read so);
        ``"undetermined"``: the image cannot tell (too small, too flat,
        synthetic). See :mod:`jpegbench.estimate.verdict`.
    confidence : float in [0, 1]
        For the robust estimator, the calibrated probability that the answer
        is right (dominant QF within 2; for ``"uncompressed"``: no
        compression at QF <= 95); 0.0 for ``"undetermined"``, which claims
        nothing. The paper estimator's is its own score.
    qf_first : int or None
        QF of the detected earlier compression, None for ``"single"``.
    estimator : str
    curves : MSECurves or None
        The curves the decision was read from.
    details : dict
        Estimator-specific intermediate values (scores, candidates, parameters).
    """

    qf_last: int | None
    qf_dominant: int | None
    shift: tuple[int, int] | None
    verdict: str
    confidence: float
    qf_first: int | None = None
    estimator: str = ""
    curves: MSECurves | None = field(default=None, repr=False)
    details: dict[str, Any] = field(default_factory=dict, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """Flat record (no curves) for a results table; -1 stands for None."""
        shift = (-1, -1) if self.shift is None else self.shift
        return {
            "estimator": self.estimator,
            "qf_last": -1 if self.qf_last is None else self.qf_last,
            "qf_dominant": -1 if self.qf_dominant is None else self.qf_dominant,
            "qf_first": -1 if self.qf_first is None else self.qf_first,
            "shift_dy": shift[0],
            "shift_dx": shift[1],
            "verdict": self.verdict,
            "confidence": self.confidence,
        }


@dataclass
class FileEstimate:
    """Estimate for a JPEG file: from its pixels and, exactly, from its quantization tables.

    Attributes
    ----------
    path : str
    pixels : QFEstimateResult
        The estimate from the decoded pixels.
    tables : QtableQF
        The QF read from the file's quantization tables
        (:func:`jpegbench.codec.qf_from_qtables`); exact for IJG tables.
    qf_last_agrees : bool
        Whether ``pixels.qf_last == tables.qf`` (False when the pixels show no grid).
    qf_dominant : int
        ``min(pixels.qf_first, tables.qf)`` when an earlier compression was
        detected, else ``tables.qf``: the pixel estimate with its last QF
        replaced by the exact one. (A file whose pixels read
        ``"uncompressed"`` is still a JPEG at ``tables.qf``: typically a
        near-lossless one.)
    verdict, qf_first, shift :
        The file's one answer: the curves' reading, or, where the curves
        say ``"single"``, the DCT double-quantization detector's
        (:mod:`jpegbench.estimate.dq`) when it found a first compression
        finer than the last (``qf_first > tables.qf``, which the curves
        cannot see, so it never overrides a curve detection and never
        changes ``qf_dominant``). ``shift`` is None where the pixels read
        ``"uncompressed"`` or ``"undetermined"``.
    evidence : {"curves", "curves+dct", "dct-aligned", "dct-nonaligned"}
        What decided: the curves (a double compression, or no coefficients
        to read), the curves and the DCT detector agreeing on ``"single"``,
        or the DCT detector (aligned or non-aligned).
    dq : DQResult or None
        The DCT detector's own result, when it was consulted.
    """

    path: str
    pixels: QFEstimateResult
    tables: QtableQF
    qf_last_agrees: bool
    qf_dominant: int
    verdict: str = ""
    qf_first: int | None = None
    shift: tuple[int, int] | None = (0, 0)
    evidence: str = "curves"
    dq: Any = field(default=None, repr=False)
