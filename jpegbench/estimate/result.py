"""Result types of QF estimation: one image (:class:`QFEstimateResult`), one JPEG file (:class:`FileEstimate`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jpegbench.codec import QtableQF
from jpegbench.estimate.curves import MSECurves

__all__ = ["VERDICTS", "EVIDENCE", "QFEstimateResult", "FileEstimate"]

VERDICTS: tuple[str, ...] = ("single", "aligned-double", "nonaligned-double")
#: What decided a file's verdict (:attr:`FileEstimate.evidence`, the ``evidence`` column of ``jpegbench estimate``).
EVIDENCE: tuple[str, ...] = ("curves", "curves+dct", "dct-aligned", "dct-nonaligned")


@dataclass
class QFEstimateResult:
    """What an estimator reads off an image's recompression curves.

    Attributes
    ----------
    qf_last : int
        QF of the last compression (the one on the image's own 8x8 grid).
    qf_dominant : int
        The strongest compression the image went through: ``min(qf1, qf_last)``
        when an earlier compression ``qf1`` is detected, else ``qf_last``.
    shift : (int, int)
        Grid shift ``(dy, dx)`` of the detected first compression in the
        manifest convention (rows/columns removed after it); ``(0, 0)`` when
        no non-aligned compression is detected.
    verdict : {"single", "aligned-double", "nonaligned-double"}
        ``"single"`` means no earlier compression was detected, not that
        there was none (an earlier compression with a QF above the last one
        leaves almost no trace).
    confidence : float in [0, 1]
        How clear the decision is (estimator specific; see its docstring).
    qf_first : int or None
        QF of the detected earlier compression, None for ``"single"``.
    estimator : str
    curves : MSECurves or None
        The curves the decision was read from.
    details : dict
        Estimator-specific intermediate values (scores, candidates, parameters).
    """

    qf_last: int
    qf_dominant: int
    shift: tuple[int, int]
    verdict: str
    confidence: float
    qf_first: int | None = None
    estimator: str = ""
    curves: MSECurves | None = field(default=None, repr=False)
    details: dict[str, Any] = field(default_factory=dict, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """Flat record (no curves) for a results table."""
        return {
            "estimator": self.estimator,
            "qf_last": self.qf_last,
            "qf_dominant": self.qf_dominant,
            "qf_first": -1 if self.qf_first is None else self.qf_first,
            "shift_dy": self.shift[0],
            "shift_dx": self.shift[1],
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
        Whether ``pixels.qf_last == tables.qf``.
    qf_dominant : int
        ``min(pixels.qf_first, tables.qf)`` when an earlier compression was
        detected, else ``tables.qf``: the pixel estimate with its last QF
        replaced by the exact one.
    verdict, qf_first, shift :
        The file's one answer: the curves' reading, or, where the curves
        say ``"single"``, the DCT double-quantization detector's
        (:mod:`jpegbench.estimate.dq`) when it found a first compression
        finer than the last (``qf_first > tables.qf``, which the curves
        cannot see, so it never overrides a curve detection and never
        changes ``qf_dominant``).
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
    shift: tuple[int, int] = (0, 0)
    evidence: str = "curves"
    dq: Any = field(default=None, repr=False)
