"""One restored image and how it was made: the result type every restoration method returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from jpegbench.codec import to_gray

__all__ = ["COLOR_PATHS", "QF_SOURCES", "EstimateFn", "Restoration", "dominant_qf"]

#: Where ``qf_used`` came from (:attr:`Restoration.qf_source`).
QF_SOURCES: tuple[str, ...] = ("predicted", "dominant", "manual", "tables", "tables-approx")

#: How an image was restored (:attr:`Restoration.color_path`).
COLOR_PATHS: tuple[str, ...] = ("gray", "color", "luma")

#: Signature of :func:`jpegbench.estimate.estimate_qf`:
#: ``estimate_fn(gray_uint8, *, estimator, backend) -> result with .qf_dominant``.
EstimateFn = Callable[..., Any]


@dataclass(frozen=True)
class Restoration:
    """One restored image and how it was made: what :func:`~jpegbench.models.restore` and every method return.

    Attributes
    ----------
    image : ndarray, uint8, shape (H, W) or (H, W, 3)
        Same shape as the input.
    qf_predicted : float or None
        The network's QF prediction (0..100; the median over tiles when
        tiled); None for ``jpeg`` and the table-guided methods (they predict
        none).
    qf_used : float or None
        The QF that conditioned the restoration (prediction, estimate or
        manual); for the table-guided methods the QF of the tables given to
        the network. None for ``jpeg``.
    qf_map : ndarray of float, shape (tiles_y, tiles_x), or None
        Per-tile QF predictions (:func:`~jpegbench.models.restore` with
        ``return_qf_map=True``).
    tiles : int
        Number of tiles run (1 when untiled, 0 for ``jpeg``).
    method : str or None
        The method's name; None from :func:`~jpegbench.models.restore` itself.
    weights : str or None
        Path of the weight file used (set by methods); None for ``jpeg``.
    seconds : float
        Wall time of the restoration as a method measures it (including QF
        estimation for the ``-d`` methods, excluding model loading and
        reading the file); 0 from :func:`~jpegbench.models.restore` itself.
    qf_source : str or None
        Where ``qf_used`` came from, one of :data:`QF_SOURCES`: FBCNN's
        ``"predicted"``, the estimator's ``"dominant"``, ``"manual"``, or
        the file's tables, ``"tables"`` (IJG tables: ``qf_used`` is their
        QF) or ``"tables-approx"`` (other tables: the nearest IJG QF). None
        for ``jpeg``.
    color_path : str or None
        How the image was restored: ``"gray"`` (a gray image, a gray model),
        ``"color"`` (an RGB image, a colour model) or ``"luma"`` (an RGB
        image, a gray model on its Y channel, chroma kept). None for
        ``jpeg`` and from :func:`~jpegbench.models.restore` itself.
    """

    image: np.ndarray = field(repr=False)
    qf_predicted: float | None
    qf_used: float | None
    qf_map: np.ndarray | None = field(default=None, repr=False)
    tiles: int = 1
    method: str | None = None
    weights: str | None = None
    seconds: float = 0.0
    qf_source: str | None = None
    color_path: str | None = None


def _estimate_qf() -> EstimateFn:
    # Lazy: estimate is a sibling layer, not needed unless fbcnn-d runs.
    from jpegbench.estimate import estimate_qf

    return estimate_qf


def dominant_qf(estimate_fn: EstimateFn | None, estimator: str, pixels: np.ndarray) -> float | None:
    """The estimator's dominant QF of ``pixels`` (the call fbcnn-d makes), or None if it finds none."""
    estimate_fn = estimate_fn or _estimate_qf()
    value = getattr(estimate_fn(to_gray(pixels), estimator=estimator, backend="fast"), "qf_dominant", None)
    return None if value is None else float(value)
