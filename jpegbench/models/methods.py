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
qcn       QCN (Li et al. 2020): image + quantization maps of the file's
          last tables
qgcn      QGCN: QCN with a global branch on a 112x112 copy of the image
ijcn      IJCN (Liu et al. 2025): the file's DCT coefficients and last
          tables; colour 4:2:0 JPEGs only
qcn-d,    the same networks given the IJG tables of the dominant QF found
qgcn-d,   by the estimator (the call fbcnn-d makes) instead of the file's
ijcn-d    last tables: our extension of the FBCNN paper's FBCNN-D idea to
          table-guided networks
========  ===================================================================

Every method also takes a manual ``qf=`` (the paper's interactive control),
which replaces the predicted or estimated QF; for the table-guided methods
it means the IJG tables of that QF (rounded to an integer).

Colour: an FBCNN method restores an RGB image with a colour (3-channel)
model when one is found and the gray model on its luma otherwise
(``color_policy="auto"``; ``"color"`` and ``"luma"`` force one path, see
:func:`jpegbench.models.weights.find_weights`); a gray image always gets the
gray model. :attr:`Restoration.color_path` says which path ran.

The table-guided methods read the JPEG *file* (tables, coefficients), not
decoded pixels: call them with a path or the file's bytes
(:attr:`GuidedMethod.reads_file` is True). Their choices:

* ``qf_used`` is the QF of the tables the network was given: for the plain
  methods the IJG QF of the file's tables (the nearest one when they are not
  IJG tables, ``qf_source="tables-approx"``), for the ``-d`` twins the
  dominant QF (``qf_source="dominant"``); a ``-d`` twin whose estimator finds
  no dominant QF falls back to the file's tables, and says so in ``qf_source``;
* ``ijcn-d`` keeps the file's coefficients, rescaled per frequency by
  ``file table / IJG table`` so that IJCN's dequantization still gives the
  file's DCT values, while its table guidance and rounding offsets follow
  the dominant QF's tables (:func:`jpegbench.models.guided_inference.restore_ijcn`);
* ``qcn-d`` and ``qgcn-d`` also accept images without tables (a PNG, decoded
  pixels): they need only the dominant QF, estimated from the pixels, and
  assume the JPEG grid at the top left. ``qcn``, ``qgcn`` and both IJCN
  methods refuse them (IJCN would need the image re-encoded, which changes
  the data being restored).
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from jpegbench.codec import check_pixels
from jpegbench.errors import InputError, WeightsError
from jpegbench.estimate.api import ESTIMATORS
from jpegbench.models._method import BaseMethod
from jpegbench.models._restoration import QF_SOURCES, EstimateFn, Restoration, dominant_qf
from jpegbench.models.fbcnn import FBCNN
from jpegbench.models.guided_inference import check_guided_tiling
from jpegbench.models.guided_methods import GUIDED_METHODS, GuidedMethod
from jpegbench.models.guided_weights import GUIDED_ARCHITECTURES, _article, find_guided_weights
from jpegbench._device import pick_device
from jpegbench.models.inference import check_tiling, restore
from jpegbench.models.weights import COLOR_CHOICES, find_weights, load_model, resolve_weights

__all__ = ["METHODS", "GUIDED_METHODS", "QF_SOURCES", "EstimateFn", "GuidedMethod", "Method",
           "Restoration", "get_method"]

METHODS: tuple[str, ...] = (
    "jpeg", "fbcnn", "fbcnn-d", "fbcnn-a", "qcn", "qcn-d", "qgcn", "qgcn-d", "ijcn", "ijcn-d",
)  # fmt: skip
_ROLE = {"fbcnn": "fbcnn", "fbcnn-d": "fbcnn", "fbcnn-a": "fbcnn-a"}
# The names color_policy had before "auto" existed (the inference-level policies), still accepted.
_LEGACY_POLICY = {"y": "luma", "error": "color"}


class Method(BaseMethod):
    """A named restoration method; call it on pixels.

    Build with :func:`get_method`. Models are loaded on first use and kept.
    """

    #: Called on decoded pixels (the table-guided methods read files instead).
    reads_file = False
    model_class = FBCNN

    def __init__(self, name: str, *, color_policy: str, **settings: Any) -> None:
        # settings: those of BaseMethod (weights, weights_dir, device, tile, overlap, estimator, estimate_fn).
        super().__init__(name, **settings)
        self._color_policy = color_policy

    def model(self, channels: int = 1) -> tuple[FBCNN, str]:
        """The model (and its weights' path) used for images with ``channels`` channels."""
        if self.name == "jpeg":
            raise InputError("method 'jpeg' has no model")
        return super().model(channels)  # type: ignore[return-value]

    def _find_weights(self, channels: int) -> Path:
        return find_weights(_ROLE[self.name], channels=channels, weights_dir=self._weights_dir,
                            color_policy=self._color_policy)  # fmt: skip

    def _load(self, path: Path) -> FBCNN:
        return load_model(path, device=self._device)

    def _accept(self, model: FBCNN, channels: int, path: str) -> None:  # type: ignore[override]
        """Refuse a model that cannot take the path ``color_policy`` asks for (colour images only)."""
        if channels != 3:
            return
        if self._color_policy == "color" and model.in_nc != 3:
            raise WeightsError(f"color_policy 'color' needs a colour (3-channel) model for RGB images; {path} is "
                               "a gray model (use color_policy 'luma' or 'auto' to restore the luma with it)")
        if self._color_policy == "luma" and model.in_nc != 1:
            raise WeightsError(f"color_policy 'luma' needs a gray (1-channel) model; {path} is a colour model")

    def color_path(self, channels: int) -> str | None:
        """``"gray"``, ``"color"`` or ``"luma"``: how images with ``channels`` channels are restored (None for jpeg)."""
        if self.name == "jpeg":
            return None
        if channels == 1:
            return "gray"
        return "color" if self.model(3)[0].in_nc == 3 else "luma"

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
        channels = 1 if pixels.ndim == 2 else 3
        model, path = self.model(channels)
        color_path = self.color_path(channels)
        start = time.perf_counter()
        source = "manual" if qf is not None else "predicted"
        if qf is None and self.name == "fbcnn-d":
            qf = self._estimate(pixels)
            source = "predicted" if qf is None else "dominant"
        result = restore(
            model,
            pixels,
            qf=qf,
            tile=self._tile,
            overlap=self._overlap,
            device=self._device,
            color_policy="y",  # a gray model reached here on RGB pixels only on the luma path
        )
        seconds = time.perf_counter() - start
        return dataclasses.replace(result, method=self.name, weights=path, seconds=seconds, qf_source=source,
                                   color_path=color_path)

    def _estimate(self, pixels: np.ndarray) -> float | None:
        # No dominant QF found (e.g. an image too small to estimate): fall
        # back to the blind prediction; Restoration.qf_source shows which.
        return dominant_qf(self._estimate_fn, self._estimator, pixels)


def get_method(
    name: str,
    *,
    weights: str | os.PathLike[str] | torch.nn.Module | None = None,
    weights_dir: str | os.PathLike[str] | None = None,
    device: str | torch.device | None = None,
    tile: int | None = None,
    overlap: int | None = None,
    estimator: str = "robust",
    estimate_fn: EstimateFn | None = None,
    color_policy: str = "auto",
) -> Method | GuidedMethod:
    """Look up a restoration method by name.

    Parameters
    ----------
    name : str
        One of :data:`METHODS`.
    weights : path, file name or model, optional
        Weights to use. FBCNN methods: a file or an :class:`FBCNN`; default:
        the released file for the method's role and the image's channels in
        ``weights_dir`` / ``$JPEGBENCH_WEIGHTS_DIR``, else the small gray
        model shipped with the package
        (:func:`jpegbench.models.weights.find_weights`). Table-guided
        methods: a state dict of the method's architecture
        (:func:`jpegbench.models.load_guided_model`) or a model of it;
        default: :func:`jpegbench.models.guided_weights.find_guided_weights`,
        which must find one now.
    weights_dir : str or PathLike, optional
    device : str or torch.device, optional
        See :func:`jpegbench.models.pick_device`.
    tile, overlap : int, optional
        Tiled inference; see :func:`jpegbench.models.restore` and, for the
        table-guided methods, :mod:`jpegbench.models.guided_inference`
        (IJCN: multiples of 64 pixels).
    estimator : {"robust", "paper"}, default "robust"
        Estimator used by the ``-d`` methods.
    estimate_fn : callable, optional
        Replaces :func:`jpegbench.estimate.estimate_qf` (same signature:
        ``estimate_fn(gray_uint8, *, estimator, backend)`` returning an object
        whose ``qf_dominant`` is the QF to use, or None to fall back to the
        blind prediction). Injected by tests.
    color_policy : {"auto", "color", "luma"}, default "auto"
        What FBCNN methods do with RGB images: ``"auto"`` a colour model if
        one is found (or given), else the gray model on the luma; ``"color"``
        a colour model or :class:`~jpegbench.errors.WeightsError`; ``"luma"``
        the gray model on the BT.601 Y channel, chroma kept. Gray images
        always get a gray model. (``"y"`` and ``"error"``, the older names,
        mean ``"luma"`` and ``"color"``.) The table-guided methods use their
        weights' own channels and ignore it.

    Returns
    -------
    Method or GuidedMethod
        :class:`GuidedMethod` (``reads_file`` True) for the table-guided methods.

    Raises
    ------
    InputError
        Unknown name, estimator, colour policy, tiling or device.
    WeightsError
        A table-guided method with no weights given and none found.
    """
    if name not in METHODS:
        raise InputError(f"unknown method {name!r}; valid methods: {', '.join(METHODS)}")
    if estimator not in ESTIMATORS:
        raise InputError(f"estimator must be one of {tuple(ESTIMATORS)}, got {estimator!r}")
    color_policy = _LEGACY_POLICY.get(color_policy, color_policy) if isinstance(color_policy, str) else color_policy
    if color_policy not in COLOR_CHOICES:
        raise InputError(f"color_policy must be one of {COLOR_CHOICES}, got {color_policy!r}")
    if estimate_fn is not None and not callable(estimate_fn):
        raise InputError(f"estimate_fn must be callable, got {type(estimate_fn).__name__}")
    arch = GUIDED_METHODS.get(name)
    model_class = GUIDED_ARCHITECTURES[arch] if arch else FBCNN
    if weights is not None and not isinstance(weights, (str, os.PathLike, model_class)):
        raise InputError(f"weights must be a path, a file name or {_article(model_class.__name__)}, "
                         f"got {type(weights).__name__}")  # fmt: skip
    if tile is not None:
        check_guided_tiling(arch, tile, overlap) if arch else check_tiling(tile, overlap)
    if device is not None:
        pick_device(device)  # fail now, not at the first image
    if isinstance(weights, (str, os.PathLike)) and not Path(weights).exists() and len(Path(weights).parts) > 1:
        resolve_weights(weights)  # raises the one-line "not found"
    if arch:
        if weights is None:
            find_guided_weights(arch, weights_dir=weights_dir)  # none at all: fail before any work
        return GuidedMethod(name, weights=weights, weights_dir=weights_dir, device=device, tile=tile,
                            overlap=overlap, estimator=estimator, estimate_fn=estimate_fn)  # fmt: skip
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
