"""On-the-fly JPEG degradation of training patches: a transform and a torch Dataset.

:class:`JpegDegradation` draws a chain (single JPEG, or JPEG -> shift ->
JPEG) and runs it with :func:`jpegbench.synth.degrade.apply_chain`, the same
code the corpus writer uses. :class:`PatchDataset` crops random patches from
preloaded clean images and applies it, deterministically per
``(seed, epoch, index)``.

Patch geometry: a shifted double JPEG removes up to 7 rows and columns, so
the transform needs ``margin`` (8) extra rows and columns and returns the
top-left ``(H - margin, W - margin)`` window of the result. That window
starts at the last compression's grid origin: the last 8x8 grid always
starts at patch pixel ``(0, 0)``, and every output of one transform has the
same shape whatever shift was drawn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from jpegbench.codec import SUBSAMPLINGS, check_pixels, check_qf, check_shift, list_images, read_image
from jpegbench.errors import InputError, ShapeError
from jpegbench.synth.degrade import CropStage, JpegStage, ShiftStage, Stage, apply_chain

__all__ = ["JpegDegradation", "PatchDataset", "PARAM_KEYS"]

#: Keys of the ``params`` dict returned by :class:`JpegDegradation`.
PARAM_KEYS: tuple[str, ...] = (
    "qf1", "qf2", "shift_dy", "shift_dx", "n_jpeg", "is_double", "dominant_qf", "qf_last", "aligned", "regime",
)  # fmt: skip

_NONALIGNED = tuple((dy, dx) for dy in range(8) for dx in range(8) if (dy, dx) != (0, 0))


def _check_range(value: object, name: str) -> tuple[int, int]:
    try:
        lo, hi = value  # type: ignore[misc]
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a pair (low, high) of QFs, got {value!r}") from None
    lo, hi = check_qf(lo, name=f"{name}[0]"), check_qf(hi, name=f"{name}[1]")
    if lo > hi:
        raise InputError(f"{name} must have low <= high, got ({lo}, {hi})")
    return lo, hi


class JpegDegradation:
    """Random single or double JPEG degradation of a uint8 patch.

    Parameters
    ----------
    mode : {"single", "double", "mixed"}
        ``"mixed"``: double with probability ``double_prob``, else single.
    qf_range : (int, int)
        Inclusive range of the (first) QF, drawn uniformly.
    qf2_range : (int, int), optional
        Inclusive range of the second QF (default ``qf_range``).
    double_prob : float
        Probability of a double JPEG in ``"mixed"`` mode.
    shift : {"random", "aligned", "nonaligned"} or (dy, dx)
        Grid shift between the two compressions: uniform over the 64 shifts,
        ``(0, 0)``, uniform over the 63 non-zero shifts, or fixed.
    backend, version, subsampling
        Encoder options of :func:`jpegbench.codec.encode`.

    Notes
    -----
    Calling it as ``(patch, rng)`` with ``patch`` uint8 ``(H, W)`` or
    ``(H, W, 3)`` returns ``(lq, hq, params)``: uint8 arrays of shape
    ``(H - margin, W - margin[, 3])`` and a dict with :data:`PARAM_KEYS`.
    For a single JPEG ``qf2 = -1``, ``shift_dy = shift_dx = 0``,
    ``n_jpeg = 1`` and ``dominant_qf = qf_last = qf1``.
    """

    def __init__(
        self,
        *,
        mode: Literal["single", "double", "mixed"] = "single",
        qf_range: tuple[int, int] = (5, 95),
        qf2_range: tuple[int, int] | None = None,
        double_prob: float = 0.5,
        shift: str | tuple[int, int] = "random",
        backend: Literal["pillow", "jpeglib"] = "pillow",
        version: str | None = None,
        subsampling: str = "4:2:0",
    ) -> None:
        if mode not in ("single", "double", "mixed"):
            raise InputError(f"mode must be 'single', 'double' or 'mixed', got {mode!r}")
        if isinstance(double_prob, bool) or not isinstance(double_prob, (int, float)) or not 0 <= double_prob <= 1:
            raise InputError(f"double_prob must be a number in [0, 1], got {double_prob!r}")
        if isinstance(shift, str):
            if shift not in ("random", "aligned", "nonaligned"):
                raise InputError(f"shift must be 'random', 'aligned', 'nonaligned' or (dy, dx), got {shift!r}")
        else:
            shift = check_shift(shift)
        if subsampling not in SUBSAMPLINGS:
            raise InputError(f"subsampling must be one of {SUBSAMPLINGS}, got {subsampling!r}")
        from jpegbench.codec import encoder_info

        encoder_info(backend, version)  # validates backend/version now, not at the first patch
        self.mode = mode
        self.qf_range = _check_range(qf_range, "qf_range")
        self.qf2_range = self.qf_range if qf2_range is None else _check_range(qf2_range, "qf2_range")
        self.double_prob = float(double_prob)
        self.shift = shift
        self.encoder = {"backend": backend, "version": version, "subsampling": subsampling}

    @property
    def margin(self) -> int:
        """Rows and columns the transform removes: 8 if a shifted double JPEG can be drawn, else 0."""
        if self.mode == "single" or self.shift in ("aligned", (0, 0)):
            return 0
        return 8

    def __repr__(self) -> str:
        return (
            f"JpegDegradation(mode={self.mode!r}, qf_range={self.qf_range}, qf2_range={self.qf2_range}, "
            f"double_prob={self.double_prob}, shift={self.shift!r}, backend={self.encoder['backend']!r}, "
            f"version={self.encoder['version']!r}, subsampling={self.encoder['subsampling']!r})"
        )

    def sample_stages(self, rng: np.random.Generator, *, height: int, width: int) -> list[Stage]:
        """Draw the chain for one patch of ``height`` x ``width`` (input size)."""
        qf1 = int(rng.integers(self.qf_range[0], self.qf_range[1] + 1))
        double = self.mode == "double" or (self.mode == "mixed" and rng.random() < self.double_prob)
        stages: list[Stage] = [JpegStage(qf1)]
        if double:
            if self.shift == "random":
                dy, dx = (int(v) for v in rng.integers(0, 8, size=2))
            elif self.shift == "aligned":
                dy, dx = 0, 0
            elif self.shift == "nonaligned":
                dy, dx = _NONALIGNED[int(rng.integers(len(_NONALIGNED)))]
            else:
                dy, dx = self.shift  # type: ignore[misc]
            if (dy, dx) != (0, 0):
                stages.append(ShiftStage(dy, dx))
            stages.append(JpegStage(int(rng.integers(self.qf2_range[0], self.qf2_range[1] + 1))))
        m = self.margin
        if m:
            stages.append(CropStage(0, 0, height - m, width - m))
        return stages

    def __call__(
        self, patch: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """Degrade one clean patch; see the class notes for shapes and ``params``."""
        patch = check_pixels(patch, name="patch")
        if not isinstance(rng, np.random.Generator):
            raise InputError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        h, w = patch.shape[:2]
        if h <= self.margin or w <= self.margin:
            raise ShapeError(f"patch must be larger than {self.margin}x{self.margin} (the shift margin), got {h}x{w}")
        res = apply_chain(patch, self.sample_stages(rng, height=h, width=w), **self.encoder)
        params = {k: res.params[k] for k in PARAM_KEYS}
        return res.lq_pixels, res.hq_pixels, params


def _augment(x: np.ndarray, k: int) -> np.ndarray:
    # The 8 dihedral transforms: k & 3 quarter turns, k & 4 flips left-right.
    x = np.rot90(x, k & 3)
    if k & 4:
        x = x[:, ::-1]
    return np.ascontiguousarray(x)


class PatchDataset(Dataset):
    """Random clean patches degraded on the fly, for training.

    Parameters
    ----------
    sources : folder, file, or list of folders/files
        Clean images (any format :func:`jpegbench.codec.read_image` reads).
    patch_size : int
        Side of the returned square patches.
    color : {"gray", "rgb"}
        ``"gray"`` is the BT.601 studio-swing Y (:func:`jpegbench.codec.rgb_to_y`).
    degradation : JpegDegradation, optional
        Default ``JpegDegradation()`` (single JPEG, QF 5..95).
    seed : int
        Every item is a function of ``(seed, epoch, index)`` only.
    length : int, optional
        Items per epoch (default: the number of images); item ``i`` crops
        image ``i % n_images``.
    augment : bool
        Random flip / quarter turn of the clean patch before degrading it.
    preload : bool
        Decode every image once at construction (else on every item).

    Notes
    -----
    ``dataset[i]`` is a dict of tensors:

    ``lq``, ``hq``
        float32 ``(C, patch_size, patch_size)`` in [0, 1] (C = 1 gray, 3 rgb).
    ``qf``
        float32 ``(1,)``: the last QF (1..100), the label of FBCNN's QF
        predictor; batches to ``(N, 1)``.
    ``is_double``
        bool scalar.
    ``qf1``, ``qf2``, ``shift_dy``, ``shift_dx``, ``dominant_qf``, ``n_jpeg``
        int64 scalars (``qf2 = -1`` for a single JPEG).

    Call :meth:`set_epoch` before each epoch to draw new patches (with
    ``DataLoader(persistent_workers=True)`` the workers keep their own copy).
    """

    def __init__(
        self,
        sources: str | Path | Sequence[str | Path],
        *,
        patch_size: int = 64,
        color: Literal["gray", "rgb"] = "gray",
        degradation: JpegDegradation | None = None,
        seed: int = 0,
        length: int | None = None,
        augment: bool = True,
        preload: bool = True,
    ) -> None:
        if isinstance(patch_size, bool) or not isinstance(patch_size, int) or patch_size < 8:
            raise InputError(f"patch_size must be an integer >= 8, got {patch_size!r}")
        if color not in ("gray", "rgb"):
            raise InputError(f"color must be 'gray' or 'rgb', got {color!r}")
        if degradation is None:
            degradation = JpegDegradation()
        if not callable(degradation) or not hasattr(degradation, "margin"):
            raise InputError(f"degradation must be a JpegDegradation, got {type(degradation).__name__}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise InputError(f"seed must be an integer >= 0, got {seed!r}")
        self.paths = list_images(sources if isinstance(sources, (str, Path)) else list(sources))
        if length is not None and (isinstance(length, bool) or not isinstance(length, int) or length < 1):
            raise InputError(f"length must be a positive integer or None, got {length!r}")
        self.patch_size = patch_size
        self.color = color
        self.degradation = degradation
        self.seed = int(seed)
        self.length = len(self.paths) if length is None else length
        self.augment = bool(augment)
        self.epoch = 0
        need = patch_size + degradation.margin
        self._images: list[np.ndarray] | None = None
        if preload:
            self._images = [read_image(p, color=color, min_size=need) for p in self.paths]

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch: items depend on ``(seed, epoch, index)``."""
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise InputError(f"epoch must be an integer >= 0, got {epoch!r}")
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def _image(self, k: int) -> np.ndarray:
        if self._images is not None:
            return self._images[k]
        return read_image(self.paths[k], color=self.color, min_size=self.patch_size + self.degradation.margin)

    def sample(self, index: int) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """Item ``index`` as uint8 arrays ``(lq, hq, params)`` (no torch needed)."""
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise InputError(f"index must be an integer, got {index!r}")
        if not -self.length <= index < self.length:
            raise IndexError(f"index {index} out of range for a dataset of {self.length} items")
        index = int(index) % self.length
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(self.epoch, index)))
        img = self._image(index % len(self.paths))
        size = self.patch_size + self.degradation.margin
        top = int(rng.integers(0, img.shape[0] - size + 1))
        left = int(rng.integers(0, img.shape[1] - size + 1))
        patch = img[top : top + size, left : left + size]
        patch = _augment(patch, int(rng.integers(8))) if self.augment else np.ascontiguousarray(patch)
        return self.degradation(patch, rng)

    def __getitem__(self, index: int) -> dict[str, Any]:
        lq, hq, p = self.sample(index)

        def tensor(x: np.ndarray) -> torch.Tensor:
            x = x[None] if x.ndim == 2 else x.transpose(2, 0, 1)
            return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32) / np.float32(255.0))

        return {
            "lq": tensor(lq),
            "hq": tensor(hq),
            "qf": torch.tensor([float(p["qf_last"])], dtype=torch.float32),
            "is_double": torch.tensor(bool(p["is_double"])),
            "qf1": torch.tensor(p["qf1"], dtype=torch.int64),
            "qf2": torch.tensor(p["qf2"], dtype=torch.int64),
            "shift_dy": torch.tensor(p["shift_dy"], dtype=torch.int64),
            "shift_dx": torch.tensor(p["shift_dx"], dtype=torch.int64),
            "dominant_qf": torch.tensor(p["dominant_qf"], dtype=torch.int64),
            "n_jpeg": torch.tensor(p["n_jpeg"], dtype=torch.int64),
        }
