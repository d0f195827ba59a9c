"""What every restoration method holds: its settings and the models it has loaded, one per channel count."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from jpegbench.models._restoration import EstimateFn
from jpegbench.models.weights import resolve_weights

__all__ = ["BaseMethod"]


class BaseMethod:
    """The settings and model cache shared by :class:`~jpegbench.models.methods.Method` and
    :class:`~jpegbench.models.guided_methods.GuidedMethod`.

    A subclass says where its default weights are (:meth:`_find_weights`),
    how a file is loaded (:meth:`_load`) and, optionally, what it refuses of
    a model, loaded or given in memory (:meth:`_accept`).
    """

    #: Whether the method is called on a file's path or bytes (True) or on decoded pixels (False).
    reads_file = False
    #: The model class an in-memory ``weights`` is used as is.
    model_class: type[nn.Module] = nn.Module

    def __init__(
        self,
        name: str,
        *,
        weights: str | os.PathLike[str] | nn.Module | None,
        weights_dir: str | os.PathLike[str] | None,
        device: str | torch.device | None,
        tile: int | None,
        overlap: int | None,
        estimator: str,
        estimate_fn: EstimateFn | None,
    ) -> None:
        self.name = name
        self._weights = weights
        self._weights_dir = weights_dir
        self._device = device
        self._tile = tile
        self._overlap = overlap
        self._estimator = estimator
        self._estimate_fn = estimate_fn
        self._models: dict[int, tuple[nn.Module, str]] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, weights={self._weights!r}, tile={self._tile})"

    def model(self, channels: int = 1) -> tuple[nn.Module, str]:
        """The model (and its weights' path) used for images with ``channels`` channels."""
        if isinstance(self._weights, self.model_class):
            self._accept(self._weights, channels, "<in-memory model>")
            return self._weights, "<in-memory model>"
        if channels not in self._models:
            if self._weights is None:
                path = self._find_weights(channels)
            else:
                path = resolve_weights(self._weights, weights_dir=self._weights_dir)
            # Two channel counts may resolve to one file: load it once.
            cached = [m for m in self._models.values() if m[1] == str(path)]
            model = cached[0][0] if cached else self._load(path)
            self._accept(model, channels, str(path))
            self._models[channels] = (model, str(path))
        return self._models[channels]

    def _find_weights(self, channels: int) -> Path:
        raise NotImplementedError

    def _load(self, path: Path) -> nn.Module:
        raise NotImplementedError

    def _accept(self, model: nn.Module, channels: int, path: str) -> None:
        """Refuse a model (loaded or given) this method cannot use for ``channels`` channels (default: accept all)."""
