"""Restoration methods by name, as the CLI and the evaluation runner use them.

========  ===================================================================
name      what it does
========  ===================================================================
jpeg      identity: the decoded JPEG itself (the baseline column)
fbcnn     FBCNN, blind: conditioned on its own QF prediction
fbcnn-d   FBCNN conditioned on the dominant QF found by the estimator
          (:func:`jpegbench.estimate.estimate_qf`), the paper's answer to
          non-aligned double JPEG
fbcnn-a   FBCNN trained with double-JPEG augmentation, blind
========  ===================================================================

Every method also takes a manual ``qf=`` (the paper's interactive control),
which replaces the predicted or estimated QF.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from jpegbench.codec import check_pixels, to_gray
from jpegbench.errors import InputError
from jpegbench.models.fbcnn import FBCNN
from jpegbench.models.device import pick_device
from jpegbench.models.inference import COLOR_POLICIES, Restoration, check_tiling, restore
from jpegbench.models.weights import find_weights, load_model, resolve_weights

__all__ = ["METHODS", "ESTIMATORS", "Method", "get_method"]

METHODS: tuple[str, ...] = ("jpeg", "fbcnn", "fbcnn-d", "fbcnn-a")
ESTIMATORS: tuple[str, ...] = ("robust", "paper")
_ROLE = {"fbcnn": "fbcnn", "fbcnn-d": "fbcnn", "fbcnn-a": "fbcnn-a"}

#: Signature of :func:`jpegbench.estimate.estimate_qf`:
#: ``estimate_fn(gray_uint8, *, estimator, backend) -> result with .qf_dominant``.
EstimateFn = Callable[..., Any]


def _estimate_qf() -> EstimateFn:
    # Lazy: estimate is a sibling layer, not needed unless fbcnn-d runs.
    from jpegbench.estimate import estimate_qf

    return estimate_qf


class Method:
    """A named restoration method; call it on pixels.

    Build with :func:`get_method`. Models are loaded on first use and kept.
    """

    def __init__(
        self,
        name: str,
        *,
        weights: str | os.PathLike[str] | FBCNN | None,
        weights_dir: str | os.PathLike[str] | None,
        device: str | torch.device | None,
        tile: int | None,
        overlap: int | None,
        estimator: str,
        estimate_fn: EstimateFn | None,
        color_policy: str,
    ) -> None:
        self.name = name
        self._weights = weights
        self._weights_dir = weights_dir
        self._device = device
        self._tile = tile
        self._overlap = overlap
        self._estimator = estimator
        self._estimate_fn = estimate_fn
        self._color_policy = color_policy
        self._models: dict[int, tuple[FBCNN, str]] = {}

    def __repr__(self) -> str:
        return f"Method({self.name!r}, weights={self._weights!r}, tile={self._tile})"

    def model(self, channels: int = 1) -> tuple[FBCNN, str]:
        """The model (and its weights' path) used for images with ``channels`` channels."""
        if self.name == "jpeg":
            raise InputError("method 'jpeg' has no model")
        if isinstance(self._weights, FBCNN):
            return self._weights, "<in-memory model>"
        if channels not in self._models:
            if self._weights is None:
                path = find_weights(_ROLE[self.name], channels=channels, weights_dir=self._weights_dir)
            else:
                path = resolve_weights(self._weights, weights_dir=self._weights_dir)
            cached = [m for m in self._models.values() if m[1] == str(path)]
            model = cached[0][0] if cached else load_model(path, device=self._device)
            self._models[channels] = (model, str(path))
        return self._models[channels]

    def __call__(self, pixels: np.ndarray, *, qf: float | None = None) -> Restoration:
        """Restore ``pixels``.

        Parameters
        ----------
        pixels : ndarray, uint8, shape (H, W) or (H, W, 3)
            A decoded JPEG.
        qf : float, optional
            Manual QF (1..100) replacing the predicted / estimated one.
            Not accepted by ``jpeg``.

        Returns
        -------
        Restoration
        """
        pixels = check_pixels(pixels)
        if self.name == "jpeg":
            if qf is not None:
                raise InputError(f"method 'jpeg' takes no qf, got qf={qf!r}")
            return Restoration(pixels.copy(), None, None, tiles=0, method="jpeg")
        model, path = self.model(1 if pixels.ndim == 2 else 3)
        start = time.perf_counter()
        if qf is None and self.name == "fbcnn-d":
            qf = self._estimate(pixels)
        result = restore(
            model,
            pixels,
            qf=qf,
            tile=self._tile,
            overlap=self._overlap,
            device=self._device,
            color_policy=self._color_policy,
        )
        seconds = time.perf_counter() - start
        return dataclasses.replace(result, method=self.name, weights=path, seconds=seconds)

    def _estimate(self, pixels: np.ndarray) -> float | None:
        estimate_fn = self._estimate_fn or _estimate_qf()
        value = getattr(estimate_fn(to_gray(pixels), estimator=self._estimator, backend="fast"), "qf_dominant", None)
        # No dominant QF found (e.g. an image too small to estimate): fall
        # back to the blind prediction; Restoration.qf_used shows which.
        return None if value is None else float(value)


def get_method(
    name: str,
    *,
    weights: str | os.PathLike[str] | FBCNN | None = None,
    weights_dir: str | os.PathLike[str] | None = None,
    device: str | torch.device | None = None,
    tile: int | None = None,
    overlap: int | None = None,
    estimator: str = "robust",
    estimate_fn: EstimateFn | None = None,
    color_policy: str = "y",
) -> Method:
    """Look up a restoration method by name.

    Parameters
    ----------
    name : {"jpeg", "fbcnn", "fbcnn-d", "fbcnn-a"}
    weights : path, file name or FBCNN, optional
        Weights to use; default: the released file for the method's role and
        the image's channels in ``weights_dir`` / ``$JPEGBENCH_WEIGHTS_DIR``,
        else the small gray model shipped with the package
        (:func:`jpegbench.models.weights.find_weights`).
    weights_dir : str or PathLike, optional
    device : str or torch.device, optional
        See :func:`jpegbench.models.pick_device`.
    tile, overlap : int, optional
        Tiled inference; see :func:`jpegbench.models.restore`.
    estimator : {"robust", "paper"}, default "robust"
        Estimator used by ``fbcnn-d``.
    estimate_fn : callable, optional
        Replaces :func:`jpegbench.estimate.estimate_qf` (same signature:
        ``estimate_fn(gray_uint8, *, estimator, backend)`` returning an object
        whose ``qf_dominant`` is the QF to use, or None to fall back to the
        blind prediction). Injected by tests.
    color_policy : {"y", "error"}, default "y"
        What gray models do with RGB images (``"y"``: restore the Y channel).

    Returns
    -------
    Method

    Raises
    ------
    InputError
        Unknown name, estimator, colour policy or device.
    """
    if name not in METHODS:
        raise InputError(f"unknown method {name!r}; valid methods: {', '.join(METHODS)}")
    if estimator not in ESTIMATORS:
        raise InputError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    if color_policy not in COLOR_POLICIES:
        raise InputError(f"color_policy must be one of {COLOR_POLICIES}, got {color_policy!r}")
    if estimate_fn is not None and not callable(estimate_fn):
        raise InputError(f"estimate_fn must be callable, got {type(estimate_fn).__name__}")
    if weights is not None and not isinstance(weights, (str, os.PathLike, FBCNN)):
        raise InputError(f"weights must be a path, a file name or an FBCNN, got {type(weights).__name__}")
    if tile is not None:
        check_tiling(tile, overlap)
    if device is not None:
        pick_device(device)  # fail now, not at the first image
    if isinstance(weights, (str, os.PathLike)) and not Path(weights).exists() and len(Path(weights).parts) > 1:
        resolve_weights(weights)  # raises the one-line "not found"
    return Method(
        name,
        weights=weights,
        weights_dir=weights_dir,
        device=device,
        tile=tile,
        overlap=overlap,
        estimator=estimator,
        estimate_fn=estimate_fn,
        color_policy=color_policy,
    )
