"""Quantization tables: the IJG quality scaling and QF estimation from a file's tables.

References
----------
Independent JPEG Group, libjpeg ``jcparam.c``: ``jpeg_quality_scaling`` and
the example tables of ITU-T T.81 Annex K (K.1 luminance, K.2 chrominance).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np

from jpegbench.codec._validate import check_qf
from jpegbench.errors import InputError

__all__ = ["IJG_LUMA", "IJG_CHROMA", "ijg_qtable", "QtableQF", "qf_from_qtables"]

IJG_LUMA = np.array(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ],
    dtype=np.int64,
)
IJG_CHROMA = np.array(
    [
        [17, 18, 24, 47, 99, 99, 99, 99],
        [18, 21, 26, 66, 99, 99, 99, 99],
        [24, 26, 56, 99, 99, 99, 99, 99],
        [47, 66, 99, 99, 99, 99, 99, 99],
        [99, 99, 99, 99, 99, 99, 99, 99],
        [99, 99, 99, 99, 99, 99, 99, 99],
        [99, 99, 99, 99, 99, 99, 99, 99],
        [99, 99, 99, 99, 99, 99, 99, 99],
    ],
    dtype=np.int64,
)


def ijg_qtable(qf: int, *, chroma: bool = False, force_baseline: bool = True) -> np.ndarray:
    """The IJG quantization table for quality ``qf`` (1..100).

    ``scale = 5000 / qf`` below 50, ``200 - 2 qf`` from 50; each entry is
    ``(base * scale + 50) // 100`` clipped to 1..255 (1..32767 without
    ``force_baseline``), exactly as libjpeg's ``jpeg_add_quant_table``.

    Returns
    -------
    ndarray, int64, shape (8, 8), natural order.
    """
    qf = check_qf(qf)
    scale = 5000 // qf if qf < 50 else 200 - 2 * qf
    base = IJG_CHROMA if chroma else IJG_LUMA
    table = (base * scale + 50) // 100
    return np.clip(table, 1, 255 if force_baseline else 32767)


_ALL_LUMA = np.stack([ijg_qtable(q) for q in range(1, 101)])
_ALL_CHROMA = np.stack([ijg_qtable(q, chroma=True) for q in range(1, 101)])


@dataclass(frozen=True)
class QtableQF:
    """The QF read from a file's quantization tables (:func:`qf_from_qtables`), not from its pixels.

    Attributes
    ----------
    qf : int
        The IJG quality whose tables are nearest (1..100).
    kind : {"exact", "approximate"}
        ``"exact"``: every table equals the IJG table at ``qf``.
        ``"approximate"``: no IJG quality matches; ``qf`` is the nearest.
    ijg : bool
        Whether the tables are IJG tables at all (``kind == "exact"``).
    distance : float
        Mean absolute log2 ratio between the file's tables and the IJG tables at
        ``qf`` (0 for exact; 0.1 means entries off by about 7 % on average).
    confidence : float
        ``2 ** -distance`` in (0, 1]; 1 for exact.
    """

    qf: int
    kind: Literal["exact", "approximate"]
    ijg: bool
    distance: float
    confidence: float


def qf_from_qtables(tables: Sequence[np.ndarray]) -> QtableQF:
    """Estimate the IJG quality of a JPEG from its quantization tables.

    Parameters
    ----------
    tables : sequence of (8, 8) int arrays
        ``tables[0]`` is the luma table, ``tables[1]`` (optional) the chroma one,
        in natural order (as :func:`jpegbench.codec.read_header` gives them).
    """
    if len(tables) == 0:
        raise InputError("qf_from_qtables needs at least one (8, 8) table, got none")
    luma = np.asarray(tables[0], dtype=np.float64)
    if luma.shape != (8, 8):
        raise InputError(f"quantization tables must be (8, 8), got {luma.shape}")
    dist = np.abs(np.log2(_ALL_LUMA) - np.log2(np.maximum(luma, 1))).mean(axis=(1, 2))
    exact = np.all(_ALL_LUMA == luma, axis=(1, 2))
    if len(tables) > 1:
        chroma = np.asarray(tables[1], dtype=np.float64)
        if chroma.shape != (8, 8):
            raise InputError(f"quantization tables must be (8, 8), got {chroma.shape}")
        dist = 0.5 * (dist + np.abs(np.log2(_ALL_CHROMA) - np.log2(np.maximum(chroma, 1))).mean(axis=(1, 2)))
        exact &= np.all(_ALL_CHROMA == chroma, axis=(1, 2))
    if exact.any():
        return QtableQF(qf=int(np.argmax(exact)) + 1, kind="exact", ijg=True, distance=0.0, confidence=1.0)
    i = int(np.argmin(dist))
    return QtableQF(
        qf=i + 1, kind="approximate", ijg=False, distance=float(dist[i]), confidence=float(2.0 ** -dist[i])
    )
