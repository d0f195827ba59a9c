"""Training FBCNN (single JPEG) and FBCNN-A (double-JPEG augmentation).

:func:`train` runs one training described by a :class:`TrainConfig` (or a
TOML file, see ``configs/``) into an output folder:

``out_dir/last.pt``
    The latest state (model, optimizer, scheduler, step, RNG, the running
    sums of the current log window, config): what :func:`train` resumes
    from. Written every ``checkpoint_every`` steps, at the end, where
    ``until_step`` stops, and when the run is interrupted (Ctrl-C).
``out_dir/best.pt``
    The model with the best validation PSNR so far, as a plain jpegbench
    checkpoint (:func:`jpegbench.models.weights.load_model` reads it).
``out_dir/log.csv``
    ``step, loss, l1, qf_loss, lr, val_psnr, seconds``, a row every
    ``log_every`` and ``val_every`` steps and at the config's last step;
    ``loss``, ``l1`` and ``qf_loss`` are means over the steps since the
    previous row (``val_psnr`` only on validation rows; ``seconds`` is
    training wall time, resumes included).
``out_dir/curves.png``
    Loss and validation PSNR against step.

Every file is written to a temporary name and renamed, so an interruption
never leaves a half-written one; the temporary files (``.NAME.XXXXXXXX.part``)
a killed run leaves are deleted by the next run on the folder.

Recipe
------
Patches come from :class:`jpegbench.synth.PatchDataset` with a
:class:`jpegbench.synth.JpegDegradation`: single JPEG for FBCNN; a mix of
single and ``JPEG(shift(JPEG(x, qf1)), qf2)`` with a random 8x8-grid shift
for FBCNN-A. The loss is, per batch,

    L1(restored, clean) + qf_loss_weight * L1(qf_pred / 100, qf / 100)

with the QF term averaged over single-JPEG samples only: a double JPEG has no
single true QF, so the QF predictor of FBCNN-A learns it without supervision
(the paper's "dominant QF"). Adam with a step schedule (``MultiStepLR``).

Two options exist for short runs of small models (both off by default, i.e.
the paper's recipe): ``qf_teacher_prob`` conditions the decoder on the true
QF for a share of the all-single-JPEG batches, and ``qf_head_lr_mult`` gives
the QF predictor a larger learning rate. Without them a small model trained
for a few thousand steps keeps predicting the mean QF (the pooled bottleneck
features barely change with the QF, the L1 gradients of samples above and
below the mean cancel), so its decoder also never learns to use the QF.

Determinism
-----------
The batch of step ``s`` is a function of ``(seed, s)`` only: epoch ``e``
visits the items in a permutation seeded by ``(seed, e)`` and the dataset's
items depend on ``(seed, epoch, index)``. With the model, optimizer and
scheduler restored from ``last.pt``, a resumed run on the CPU gives the same
weights as an uninterrupted one, and the same ``log.csv`` (``seconds``
aside): ``last.pt`` keeps the running sums of the log window it was written
in, and neither ``until_step`` nor an interruption adds a log row.

Ctrl-C is held while a step is applied (the optimizer update, the step
counter, its log row, its validation and ``best.pt``) and acted on when the
step is complete, so the ``last.pt`` written on the interrupt is always a
completed step under its own number; an interrupt during the forward or
backward pass discards that step (it is redone on resume, with the same
random draws). A second Ctrl-C while a step is applied stops at once and
writes no ``last.pt``, leaving the previous one.

Test sets are not training data: a source folder named like LIVE1 or
Classic5, or one with a file whose name, bytes or pixels equal those of an
image in ``shared/data/LIVE1_*`` or ``shared/data/Classic5`` (when that
folder exists), is refused.

References
----------
.. [1] J. Jiang, K. Zhang, R. Timofte, "Towards Flexible Blind JPEG Artifacts
   Removal", ICCV 2021 (Sec. 3 and 4: loss, double JPEG degradation model,
   training details).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from jpegbench._lock import DirLock
from jpegbench.codec import jpeg_roundtrip, list_images, read_image, sha256_file
from jpegbench.codec._validate import read_toml_bytes
from jpegbench.codec.imageio import atomic_write, atomic_write_bytes, remove_stale_parts
from jpegbench.errors import ConfigError, InputError, JpegbenchError
from jpegbench.models.fbcnn import FBCNN
from jpegbench.models.weights import CHECKPOINT_FORMAT, DEFAULT_MAX_BYTES, load_checkpoint, save_checkpoint

__all__ = [
    "TrainConfig",
    "load_config",
    "train",
    "identity_init",
    "export_weights",
    "check_not_test_data",
    "LOG_COLUMNS",
]

LOG_COLUMNS: tuple[str, ...] = ("step", "loss", "l1", "qf_loss", "lr", "val_psnr", "seconds")
_CKPT_VERSION = 1  # jpegbench-fbcnn format_version, read by jpegbench.models.weights
_TEST_SET_NAMES = ("live1", "classic5")
_TEST_SET_DIRS = ("LIVE1_gray", "LIVE1_color", "Classic5")
_OUTPUTS = ("last.pt", "best.pt", "log.csv", "curves.png")

# Which TOML table each field lives in; also the order of the dump.
_SECTIONS: dict[str, tuple[str, ...]] = {
    "": ("name",),
    "model": ("channels", "nc", "nb", "act_mode", "init_from", "identity_init"),
    "data": (
        "train_dir", "val_dir", "val_count", "patch_size", "batch_size", "degradation",
        "qf_range", "qf2_range", "double_prob", "shift", "augment",
    ),
    "optim": ("steps", "lr", "milestones", "gamma", "qf_loss_weight", "betas", "qf_teacher_prob", "qf_head_lr_mult"),
    "train": ("seed", "log_every", "val_every", "checkpoint_every", "num_threads"),
    "val": ("val_qfs", "val_double", "val_shift", "val_crop"),
}  # fmt: skip
# Changing these between an interrupted run and its resumption is allowed.
_RESUMABLE_CHANGES = frozenset({"steps", "log_every", "val_every", "checkpoint_every", "num_threads"})


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines one training run.

    Attributes are grouped as in the TOML file (``[model]``, ``[data]``,
    ``[optim]``, ``[train]``, ``[val]``); :meth:`from_toml` reads that file,
    :meth:`from_dict` a nested or flat dict. Relative paths (``train_dir``,
    ``val_dir``, ``init_from``) are relative to the TOML file's folder.

    Model
        channels : {1, 3}
            1 trains on the BT.601 studio-swing Y (jpegbench's "gray"), 3 on RGB.
        nc : 4 ints ; nb : int ; act_mode : {"R", "L"}
            :class:`~jpegbench.models.fbcnn.FBCNN` width, depth, activation.
        init_from : str, optional
            Checkpoint to start from (fine-tuning FBCNN-A from FBCNN).
        identity_init : bool
            Start from a network that returns its input (see
            :func:`identity_init`); ignored with ``init_from``.
    Data
        train_dir : str
            Folder of clean images.
        val_dir : str, optional
            Folder of validation images; if absent the last ``val_count``
            images of ``train_dir`` (sorted by name) are held out.
        val_count : int
        patch_size, batch_size : int
        degradation : {"single", "double", "mixed"}
        qf_range, qf2_range : (int, int)
            Inclusive QF ranges of the (first) and second compression.
        double_prob : float
            Share of double JPEGs for ``"mixed"``.
        shift : {"random", "aligned", "nonaligned"}
            Grid shift between the two compressions.
        augment : bool
            Random flips and quarter turns.
    Optimization
        steps : int ; lr : float ; milestones : list of int ; gamma : float
            Adam for ``steps`` steps, lr multiplied by ``gamma`` at each milestone.
        qf_loss_weight : float
            Weight of the QF L1 term (on the 0..1 QF scale).
        betas : (float, float)
        qf_teacher_prob : float
            Probability that a batch of single JPEGs conditions the decoder on
            the true QF instead of the predicted one (0 = the paper's blind
            training). See the notes.
        qf_head_lr_mult : float
            Learning-rate factor of the QF predictor (``qf_pred``) parameters.
    Bookkeeping
        seed : int
        log_every, val_every, checkpoint_every : int (steps)
        num_threads : int
            ``torch.set_num_threads`` for the run (0 = leave torch's default).
    Validation
        val_qfs : list of int
            Single-JPEG QFs at which PSNR is measured.
        val_double : list of (qf1, qf2)
            Double-JPEG cells, shifted by ``val_shift``, also measured.
        val_shift : (int, int)
        val_crop : int
            Centre crop of each validation image (multiple of 8; 0 = whole).
    """

    name: str = "fbcnn"
    channels: int = 1
    nc: tuple[int, int, int, int] = (16, 32, 64, 128)
    nb: int = 2
    act_mode: str = "R"
    init_from: str | None = None
    identity_init: bool = False
    train_dir: str = ""
    val_dir: str | None = None
    val_count: int = 5
    patch_size: int = 64
    batch_size: int = 16
    degradation: str = "single"
    qf_range: tuple[int, int] = (5, 95)
    qf2_range: tuple[int, int] | None = None
    double_prob: float = 0.5
    shift: str = "random"
    augment: bool = True
    steps: int = 1000
    lr: float = 1e-4
    milestones: tuple[int, ...] = ()
    gamma: float = 0.5
    qf_loss_weight: float = 0.1
    betas: tuple[float, float] = (0.9, 0.999)
    qf_teacher_prob: float = 0.0
    qf_head_lr_mult: float = 1.0
    seed: int = 0
    log_every: int = 50
    val_every: int = 500
    checkpoint_every: int = 250
    num_threads: int = 1
    val_qfs: tuple[int, ...] = (10, 30, 50)
    val_double: tuple[tuple[int, int], ...] = ()
    val_shift: tuple[int, int] = (4, 4)
    val_crop: int = 192
    base_dir: str = field(default="", compare=False, repr=False)

    def __post_init__(self) -> None:
        _validate(self)

    # -- construction ----------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, base_dir: str | os.PathLike[str] = "") -> TrainConfig:
        """Build from a dict, nested by TOML table or flat; unknown keys raise ConfigError."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"training config must be a table/dict, got {type(data).__name__}")
        flat: dict[str, Any] = {}
        for key, value in data.items():
            if key in _SECTIONS and key != "" and isinstance(value, Mapping):
                for sub, item in value.items():
                    if sub not in _SECTIONS[key]:
                        raise ConfigError(f"unknown training config key '{key}.{sub}' (known: {', '.join(_SECTIONS[key])})")
                    flat[sub] = item
            elif key in _FIELD_SECTION:
                flat[key] = value
            else:
                raise ConfigError(f"unknown training config key '{key}' (tables: {', '.join(s for s in _SECTIONS if s)})")
        if not flat.get("train_dir"):
            raise ConfigError("training config key 'data.train_dir' is required")
        converted = {k: _convert(k, v) for k, v in flat.items()}
        return cls(**converted, base_dir=str(base_dir))

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str]) -> TrainConfig:
        """Read a TOML training config; relative paths in it are relative to its folder."""
        path = Path(path)
        try:
            text = read_toml_bytes(path).decode("utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read training config {path}: {exc.strerror or exc}") from None
        except ConfigError as exc:  # not a regular file, or over MAX_TOML_BYTES (1 MiB)
            raise ConfigError(f"training config {exc}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML (not UTF-8: {exc.reason} at byte {exc.start})") from None
        try:
            data = _toml_loads(text)
        except ValueError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
        try:
            return cls.from_dict(data, base_dir=path.resolve().parent)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """Nested, JSON/TOML-friendly dict (``from_dict`` inverts it; ``base_dir`` excluded)."""
        out: dict[str, Any] = {}
        for section, keys in _SECTIONS.items():
            table = {k: _plain(getattr(self, k)) for k in keys}
            if section:
                out[section] = table
            else:
                out.update(table)
        return out

    def path(self, key: str) -> Path | None:
        """A path field resolved against the config's folder."""
        value = getattr(self, key)
        if value is None:
            return None
        p = Path(value).expanduser()
        return p if p.is_absolute() or not self.base_dir else Path(self.base_dir) / p

    def model_config(self) -> dict[str, Any]:
        return {"in_nc": self.channels, "out_nc": self.channels, "nc": list(self.nc), "nb": self.nb, "act_mode": self.act_mode}


_FIELD_SECTION = {k: s for s, keys in _SECTIONS.items() for k in keys}


def _toml_loads(text: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    return tomllib.loads(text)


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _convert(key: str, value: Any) -> Any:
    """Lists from TOML to the tuple fields; everything is checked in ``_validate``."""
    if key in ("nc", "qf_range", "qf2_range", "milestones", "betas", "val_qfs", "val_shift") and isinstance(value, list):
        return tuple(value)
    if key == "val_double" and isinstance(value, list):
        return tuple(tuple(v) if isinstance(v, list) else v for v in value)
    return value


def _where(key: str) -> str:
    section = _FIELD_SECTION.get(key, "")
    return f"{section}.{key}" if section else key


def _bad(key: str, expected: str, value: Any) -> ConfigError:
    return ConfigError(f"training config key '{_where(key)}' must be {expected}, got {value!r}")


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_qf_pair(cfg: TrainConfig, key: str) -> None:
    v = getattr(cfg, key)
    if key == "qf2_range" and v is None:
        return
    if not (isinstance(v, tuple) and len(v) == 2 and all(_is_int(q) and 1 <= q <= 100 for q in v) and v[0] <= v[1]):
        raise _bad(key, "a pair [low, high] of QFs with 1 <= low <= high <= 100", v)


def _validate(cfg: TrainConfig) -> None:
    def positive(key: str, minimum: int = 1) -> None:
        v = getattr(cfg, key)
        if not _is_int(v) or v < minimum:
            raise _bad(key, f"an integer >= {minimum}", v)

    if not isinstance(cfg.name, str) or not cfg.name:
        raise _bad("name", "a non-empty string", cfg.name)
    if cfg.channels not in (1, 3) or isinstance(cfg.channels, bool):
        raise _bad("channels", "1 (gray) or 3 (RGB)", cfg.channels)
    if not (isinstance(cfg.nc, tuple) and len(cfg.nc) == 4 and all(_is_int(c) and c >= 1 for c in cfg.nc)):
        raise _bad("nc", "a list of 4 positive channel widths", cfg.nc)
    positive("nb")
    if cfg.act_mode not in ("R", "L"):
        raise _bad("act_mode", "'R' (ReLU) or 'L' (LeakyReLU)", cfg.act_mode)
    for key in ("init_from", "val_dir"):
        v = getattr(cfg, key)
        if v is not None and (not isinstance(v, str) or not v):
            raise _bad(key, "a non-empty path string", v)
    if not isinstance(cfg.identity_init, bool):
        raise _bad("identity_init", "true or false", cfg.identity_init)
    if not isinstance(cfg.train_dir, str):
        raise _bad("train_dir", "a path string", cfg.train_dir)
    positive("val_count", 0)
    positive("patch_size", 8)
    if cfg.patch_size % 8:
        raise _bad("patch_size", "a multiple of 8 (the JPEG grid)", cfg.patch_size)
    positive("batch_size")
    if cfg.degradation not in ("single", "double", "mixed"):
        raise _bad("degradation", "'single', 'double' or 'mixed'", cfg.degradation)
    _check_qf_pair(cfg, "qf_range")
    _check_qf_pair(cfg, "qf2_range")
    if not _is_num(cfg.double_prob) or not 0 <= cfg.double_prob <= 1:
        raise _bad("double_prob", "a number in [0, 1]", cfg.double_prob)
    if cfg.shift not in ("random", "aligned", "nonaligned"):
        raise _bad("shift", "'random', 'aligned' or 'nonaligned'", cfg.shift)
    if not isinstance(cfg.augment, bool):
        raise _bad("augment", "true or false", cfg.augment)
    positive("steps")
    if not _is_num(cfg.lr) or cfg.lr <= 0:
        raise _bad("lr", "a positive number", cfg.lr)
    ms = cfg.milestones
    if not (isinstance(ms, tuple) and all(_is_int(m) and m >= 1 for m in ms) and list(ms) == sorted(set(ms))):
        raise _bad("milestones", "a strictly increasing list of positive step numbers", ms)
    if not _is_num(cfg.gamma) or not 0 < cfg.gamma <= 1:
        raise _bad("gamma", "a number in (0, 1]", cfg.gamma)
    if not _is_num(cfg.qf_loss_weight) or cfg.qf_loss_weight < 0:
        raise _bad("qf_loss_weight", "a number >= 0", cfg.qf_loss_weight)
    if not _is_num(cfg.qf_teacher_prob) or not 0 <= cfg.qf_teacher_prob <= 1:
        raise _bad("qf_teacher_prob", "a number in [0, 1]", cfg.qf_teacher_prob)
    if not _is_num(cfg.qf_head_lr_mult) or cfg.qf_head_lr_mult <= 0:
        raise _bad("qf_head_lr_mult", "a positive number", cfg.qf_head_lr_mult)
    if not (isinstance(cfg.betas, tuple) and len(cfg.betas) == 2 and all(_is_num(b) and 0 <= b < 1 for b in cfg.betas)):
        raise _bad("betas", "a pair of numbers in [0, 1)", cfg.betas)
    positive("seed", 0)
    for key in ("log_every", "val_every", "checkpoint_every"):
        positive(key)
    positive("num_threads", 0)
    if not (isinstance(cfg.val_qfs, tuple) and all(_is_int(q) and 1 <= q <= 100 for q in cfg.val_qfs)):
        raise _bad("val_qfs", "a list of QFs in 1..100", cfg.val_qfs)
    vd = cfg.val_double
    if not (
        isinstance(vd, tuple)
        and all(isinstance(p, tuple) and len(p) == 2 and all(_is_int(q) and 1 <= q <= 100 for q in p) for p in vd)
    ):
        raise _bad("val_double", "a list of [qf1, qf2] pairs of QFs", vd)
    if not (cfg.val_qfs or vd):
        raise _bad("val_qfs", "non-empty (or val.val_double non-empty): validation needs a cell", cfg.val_qfs)
    vs = cfg.val_shift
    if not (isinstance(vs, tuple) and len(vs) == 2 and all(_is_int(s) and 0 <= s <= 7 for s in vs)):
        raise _bad("val_shift", "a pair [dy, dx] with 0 <= dy, dx <= 7", vs)
    positive("val_crop", 0)
    if cfg.val_crop % 8:
        raise _bad("val_crop", "a multiple of 8 (0 = whole image)", cfg.val_crop)


def load_config(config: TrainConfig | str | os.PathLike[str]) -> TrainConfig:
    """A :class:`TrainConfig` as is, or read from a TOML path."""
    if isinstance(config, TrainConfig):
        return config
    if isinstance(config, (str, os.PathLike)):
        return TrainConfig.from_toml(config)
    raise InputError(f"config must be a TrainConfig or a path to a TOML file, got {type(config).__name__}")


# -- test-set guard ---------------------------------------------------------------


def _shared_data_dir() -> Path | None:
    env = os.environ.get("JPEGBENCH_SHARED_DIR")
    candidates = [Path(env) / "data"] if env else []
    candidates.append(Path(__file__).resolve().parents[3] / "shared" / "data")
    for c in candidates:
        if c.is_dir():
            return c
    return None


def _pixel_hash(pixels: np.ndarray) -> str:
    h = hashlib.sha256(str(pixels.shape).encode())
    h.update(np.ascontiguousarray(pixels).tobytes())
    return h.hexdigest()


class _TestSets:
    """Names, file hashes and (lazily) pixel hashes of the shared test images."""

    def __init__(self, shared: Path) -> None:
        from PIL import Image

        self.stems: set[str] = set()
        self.files: set[str] = set()
        self.by_shape: dict[tuple[int, ...], list[Path]] = {}
        self._pixels: dict[tuple[int, ...], set[str]] = {}
        for name in _TEST_SET_DIRS:
            folder = shared / name
            if not folder.is_dir():
                continue
            for p in list_images(folder):
                self.stems.add(p.stem.lower())
                self.files.add(hashlib.sha256(p.read_bytes()).hexdigest())
                with Image.open(p) as im:  # header only
                    w, h = im.size
                for shape in ((h, w), (h, w, 3)):
                    self.by_shape.setdefault(shape, []).append(p)

    def pixel_hashes(self, shape: tuple[int, ...]) -> set[str]:
        # Decoding every test image is slow; only those of the same size can match.
        if shape not in self._pixels:
            hashes = set()
            for p in self.by_shape.get(shape, []):
                img = read_image(p)
                hashes.add(_pixel_hash(img))
                if img.ndim == 3:
                    hashes.add(_pixel_hash(read_image(p, color="gray")))
            self._pixels[shape] = hashes
        return self._pixels[shape]


_TEST_SETS: dict[str, _TestSets] = {}


def check_not_test_data(paths: Sequence[str | os.PathLike[str]], *, images: Sequence[np.ndarray] | None = None) -> None:
    """Refuse training images that belong to the LIVE1 / Classic5 test sets.

    Parameters
    ----------
    paths : sequence of paths
        Training image files.
    images : sequence of uint8 arrays, optional
        Their decoded pixels (as trained on), compared with the test images'
        pixels (colour and gray).

    Raises
    ------
    ConfigError
        A folder is named like a test set, or (when ``shared/data`` is next to
        the repository) a file's name, bytes or pixels match a test image.
    """
    for p in map(Path, paths):
        folder = p.resolve().parent.name.lower()
        if any(t in folder for t in _TEST_SET_NAMES):
            raise ConfigError(
                f"refusing training data from {p.parent}: it looks like a test set (LIVE1/Classic5); "
                "test images must never be trained on"
            )
    shared = _shared_data_dir()
    if shared is None:
        return
    if str(shared) not in _TEST_SETS:
        _TEST_SETS[str(shared)] = _TestSets(shared)
    tests = _TEST_SETS[str(shared)]
    if images is not None and len(images) != len(paths):
        raise InputError(f"images must match paths one to one, got {len(images)} images for {len(paths)} paths")
    for i, p in enumerate(map(Path, paths)):
        if p.stem.lower() in tests.stems:
            raise ConfigError(f"refusing training image {p}: its name matches a LIVE1/Classic5 test image")
        if sha256_file(p) in tests.files:  # chunked: a huge file is never held in memory
            raise ConfigError(f"refusing training image {p}: its bytes equal a LIVE1/Classic5 test image")
        if images is not None and _pixel_hash(images[i]) in tests.pixel_hashes(tuple(images[i].shape)):
            raise ConfigError(f"refusing training image {p}: its pixels equal a LIVE1/Classic5 test image")


# -- data ------------------------------------------------------------------------


def _split_sources(cfg: TrainConfig) -> tuple[list[Path], list[Path]]:
    train_dir = cfg.path("train_dir")
    if train_dir is None or not train_dir.is_dir():
        raise ConfigError(f"training config key 'data.train_dir' must be an existing folder, got {cfg.train_dir!r}")
    files = list_images(train_dir)
    if cfg.val_dir is not None:
        val_dir = cfg.path("val_dir")
        if val_dir is None or not val_dir.is_dir():
            raise ConfigError(f"training config key 'data.val_dir' must be an existing folder, got {cfg.val_dir!r}")
        val = list_images(val_dir)[: cfg.val_count or None]
        overlap = {p.resolve() for p in val} & {p.resolve() for p in files}
        files = [p for p in files if p.resolve() not in overlap]
    else:
        if cfg.val_count >= len(files):
            raise ConfigError(
                f"training config key 'data.val_count' ({cfg.val_count}) leaves no training image "
                f"out of {len(files)} in {train_dir}"
            )
        val = files[len(files) - cfg.val_count :] if cfg.val_count else []
        files = files[: len(files) - cfg.val_count]
    if not val:
        raise ConfigError("training config key 'data.val_count' must be >= 1: validation needs images")
    return files, val


def _make_dataset(cfg: TrainConfig, files: list[Path]):
    from jpegbench.synth.dataset import JpegDegradation, PatchDataset

    degradation = JpegDegradation(
        mode=cfg.degradation,  # type: ignore[arg-type]
        qf_range=cfg.qf_range,
        qf2_range=cfg.qf2_range,
        double_prob=cfg.double_prob,
        shift=cfg.shift,
    )
    n = len(files)
    per_epoch = -(-n // cfg.batch_size)
    dataset = PatchDataset(
        files,
        patch_size=cfg.patch_size,
        color="gray" if cfg.channels == 1 else "rgb",
        degradation=degradation,
        seed=cfg.seed,
        length=per_epoch * cfg.batch_size,
        augment=cfg.augment,
        preload=True,
    )
    return dataset, per_epoch


def _batch(dataset: Any, per_epoch: int, cfg: TrainConfig, step: int) -> dict[str, torch.Tensor]:
    """The batch of 0-based ``step``: a function of (seed, step) only."""
    epoch, pos = divmod(step, per_epoch)
    order = np.random.default_rng(np.random.SeedSequence(cfg.seed, spawn_key=(1, epoch))).permutation(len(dataset))
    dataset.set_epoch(epoch)
    items = [dataset[int(i)] for i in order[pos * cfg.batch_size : (pos + 1) * cfg.batch_size]]
    return {k: torch.stack([it[k] for it in items]) for k in ("lq", "hq", "qf", "is_double")}


def _val_images(cfg: TrainConfig, files: list[Path]) -> list[np.ndarray]:
    color = "gray" if cfg.channels == 1 else "rgb"
    out = []
    for p in files:
        img = read_image(p, color=color)
        if cfg.val_crop:
            c = cfg.val_crop
            h, w = img.shape[:2]
            top, left = max(0, (h - c) // 2) // 8 * 8, max(0, (w - c) // 2) // 8 * 8
            img = np.ascontiguousarray(img[top : top + c, left : left + c])
        out.append(img)
    return out


def _val_cells(cfg: TrainConfig, images: list[np.ndarray]) -> list[tuple[str, list[tuple[np.ndarray, np.ndarray]]]]:
    """Pre-compressed validation pairs (lq, hq) per cell, computed once."""
    from jpegbench.synth.degrade import double_jpeg

    cells = []
    for qf in cfg.val_qfs:
        cells.append((f"qf{qf}", [(jpeg_roundtrip(img, qf), img) for img in images]))
    for qf1, qf2 in cfg.val_double:
        pairs = []
        for img in images:
            res = double_jpeg(img, qf1, qf2, cfg.val_shift)
            pairs.append((res.lq_pixels, res.hq_pixels))
        cells.append((f"d{qf1}-{qf2}", pairs))
    return cells


def _to_tensor(x: np.ndarray, device: torch.device) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(x)).float().div_(255.0)
    t = t[None, None] if x.ndim == 2 else t.permute(2, 0, 1)[None]
    return t.to(device)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 100.0 if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


@torch.no_grad()
def _validate_model(model: FBCNN, cells: list, device: torch.device) -> dict[str, float]:
    """Mean PSNR (8-bit output) per cell and overall ``"mean"``."""
    was_training = model.training
    model.eval()
    out: dict[str, float] = {}
    for name, pairs in cells:
        vals = []
        for lq, hq in pairs:
            restored, _ = model(_to_tensor(lq, device))
            y = restored.clamp(0, 1).mul(255).round().to(torch.uint8).cpu().numpy()[0]
            y = y[0] if y.shape[0] == 1 else y.transpose(1, 2, 0)
            vals.append(_psnr(y, hq))
        out[name] = float(np.mean(vals))
    out["mean"] = float(np.mean([out[n] for n, _ in cells]))
    model.train(was_training)
    return out


def _jpeg_psnr(cells: list) -> dict[str, float]:
    out = {name: float(np.mean([_psnr(lq, hq) for lq, hq in pairs])) for name, pairs in cells}
    out["mean"] = float(np.mean(list(out.values())))
    return out


# -- files -----------------------------------------------------------------------


def _read_log(path: Path, upto_step: int) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r for r in rows if r.get("step", "").isdigit() and int(r["step"]) <= upto_step]


def _write_log(path: Path, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=LOG_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: r.get(k, "") for k in LOG_COLUMNS})
    atomic_write_bytes(path, buf.getvalue().encode("utf-8"))


def _plot(path: Path, rows: list[dict[str, Any]], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    def series(key: str) -> tuple[list[int], list[float]]:
        pts = [(int(r["step"]), float(r[key])) for r in rows if r.get(key) not in ("", None)]
        return [p[0] for p in pts], [p[1] for p in pts]

    fig = Figure(figsize=(9, 3.5), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    for key in ("loss", "l1"):
        x, y = series(key)
        ax1.plot(x, y, label=key)
    ax1.set_xlabel("step")
    ax1.set_ylabel("training loss")
    ax1.set_yscale("log")
    ax1.legend()
    x, y = series("val_psnr")
    ax2.plot(x, y, marker="o")
    ax2.set_xlabel("step")
    ax2.set_ylabel("validation PSNR (dB)")
    fig.suptitle(title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    atomic_write_bytes(path, buf.getvalue())


# -- training --------------------------------------------------------------------


def _pick_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {device!r} asked for, but CUDA is not available")
    return dev


def _build_model(cfg: TrainConfig) -> tuple[FBCNN, dict[str, Any] | None]:
    with torch.random.fork_rng(devices=[]):  # seeded initialization, no global seeding
        torch.manual_seed(cfg.seed)
        model = FBCNN.from_config(cfg.model_config())
    if cfg.init_from is None:
        if cfg.identity_init:
            identity_init(model)
        return model, None
    p = cfg.path("init_from")
    ckpt = load_checkpoint(p if p is not None and p.exists() else cfg.init_from)
    if dict(ckpt.config, nc=list(ckpt.config["nc"])) != dict(model.config):
        raise ConfigError(
            f"training config key 'model.init_from': {ckpt.path} has architecture {ckpt.config}, "
            f"the config asks for {model.config}"
        )
    model.load_state_dict(ckpt.state_dict, strict=True)
    return model, {"path": str(ckpt.path), "meta_name": str(ckpt.meta.get("name", ""))}


@torch.no_grad()
def identity_init(model: FBCNN) -> FBCNN:
    """Make a freshly built FBCNN return its input exactly, in place.

    The released architecture has no global skip connection
    (``out = m_tail(decoder + m_head(x))``), so a randomly initialized
    network first has to learn the identity, which costs a short CPU run most
    of its steps (the output is worse than the JPEG input for a long time).
    Here channel ``c`` of ``m_head`` copies input channel ``c``, ``m_tail``
    copies it back, and every layer that writes to those channels of the
    last decoder scale (the up-convolution, the second convolution of each
    QF-attention block, and ``to_beta_1``) starts at zero, so the decoder adds
    nothing to them: the network starts as the identity and learns the
    restoration as a residual. Other weights keep their random values;
    gradients reach them from the first step.
    """
    c_in = model.in_nc
    channels = range(min(c_in, model.out_nc))
    up1 = model.m_up1
    model.m_tail.weight.zero_()
    model.m_tail.bias.zero_()
    for c in channels:
        model.m_head.weight[c].zero_()
        model.m_head.weight[c, c, 1, 1] = 1.0
        model.m_head.bias[c] = 0.0
        model.m_tail.weight[c, c, 1, 1] = 1.0
        up1[0].weight[:, c].zero_()  # ConvTranspose2d weight is (in, out, kh, kw)
        up1[0].bias[c] = 0.0
        for block in up1[1:]:
            block.res[2].weight[c].zero_()
            block.res[2].bias[c] = 0.0
        model.to_beta_1[0].weight[c].zero_()
        model.to_beta_1[0].bias[c] = 0.0
    return model


def _loss(
    model: FBCNN, batch: dict[str, torch.Tensor], cfg: TrainConfig, rng: torch.Generator
) -> tuple[torch.Tensor, float, float]:
    single = ~batch["is_double"]
    condition = None
    # Drawn every step (not only for all-single batches) so the stream of
    # draws, and thus a resumed run, does not depend on the batch content.
    if cfg.qf_teacher_prob > 0 and float(torch.rand((), generator=rng)) < cfg.qf_teacher_prob and bool(single.all()):
        condition = batch["qf"][:, 0]
    restored, qf_pred = model(batch["lq"], qf=condition)
    l1 = torch.nn.functional.l1_loss(restored, batch["hq"])
    if cfg.qf_loss_weight > 0 and bool(single.any()):
        # The paper's QF loss is on the 0..1 scale; the model speaks 0..100.
        qf_loss = (qf_pred[single] / 100.0 - batch["qf"][single, 0] / 100.0).abs().mean()
    else:
        qf_loss = torch.zeros((), device=l1.device)
    loss = l1 + cfg.qf_loss_weight * qf_loss
    return loss, float(l1.detach()), float(qf_loss.detach())


def _meta(cfg: TrainConfig, step: int, seconds: float, n_train: int, n_val: int, init: Any, val: dict | None) -> dict:
    return {
        "name": cfg.name,
        "trained_with": "jpegbench.models.train",
        "steps": int(step),
        "wall_seconds": round(float(seconds), 1),
        "data": {
            "train_dir": str(cfg.path("train_dir")),
            "train_images": n_train,
            "val_images": n_val,
            "color": "gray (BT.601 studio-swing Y)" if cfg.channels == 1 else "rgb",
            "encoder": "pillow (libjpeg-turbo), IJG tables, 4:2:0 for colour",
        },
        "init_from": init,
        "val_psnr": val,
        "train_config": cfg.to_dict(),
    }


def train(
    config: TrainConfig | str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    resume: bool = True,
    device: str | torch.device | None = None,
    progress: bool = True,
    until_step: int | None = None,
) -> dict[str, Any]:
    """Train an FBCNN as described by ``config`` into ``out_dir``.

    Parameters
    ----------
    config : TrainConfig or path to a TOML file
    out_dir : str or PathLike
        Created if needed. See the module docstring for what is written.
    resume : bool, default True
        Continue from ``out_dir/last.pt`` if present (its config must match,
        except ``steps`` and the bookkeeping intervals); ``False`` starts over
        and overwrites.
    device : str or torch.device, optional
        Default CUDA when available, else CPU.
    progress : bool, default True
        Show a tqdm bar (loss, steps/s, patches/s).
    until_step : int, optional
        Stop after this step as if interrupted (``last.pt`` written, no extra
        log row); a later call resumes, and ends with the files of an
        uninterrupted run. Default: ``config.steps``.

    Returns
    -------
    dict
        ``step``, ``seconds``, ``best_val_psnr``, ``best_step``, ``val_psnr``
        (last validation, per cell), ``jpeg_psnr`` (the JPEG input, per
        cell), ``out_dir``, ``last``, ``best``.

    Raises
    ------
    ConfigError
        Invalid config, test images in the training data, or a resumable run
        with a different config in ``out_dir``.
    LockError
        Another run writes to ``out_dir``.
    """
    cfg = load_config(config)
    target = _pick_device(device)
    stop = cfg.steps if until_step is None else until_step
    if not _is_int(stop) or not 0 <= stop <= cfg.steps:
        raise InputError(f"until_step must be an integer in 0..{cfg.steps} (config steps), got {until_step!r}")
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create output folder {out}: {exc.strerror or exc}") from None
    with DirLock(out):
        for name in _OUTPUTS:  # left by a killed run; no live run writes here while we hold the lock
            remove_stale_parts(out / name)
        return _run(cfg, out, resume=resume, device=target, progress=progress, stop=int(stop))


def _run(cfg: TrainConfig, out: Path, *, resume: bool, device: torch.device, progress: bool, stop: int) -> dict[str, Any]:
    old_threads = torch.get_num_threads()
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    try:
        return _loop(cfg, out, resume=resume, device=device, progress=progress, stop=stop)
    finally:
        torch.set_num_threads(old_threads)


def _loop(cfg: TrainConfig, out: Path, *, resume: bool, device: torch.device, progress: bool, stop: int) -> dict[str, Any]:
    train_files, val_files = _split_sources(cfg)
    dataset, per_epoch = _make_dataset(cfg, train_files)
    check_not_test_data(train_files, images=dataset._images)
    check_not_test_data(val_files)
    cells = _val_cells(cfg, _val_images(cfg, val_files))
    jpeg_psnr = _jpeg_psnr(cells)

    model, init = _build_model(cfg)
    model.to(device).train()
    head = list(model.qf_pred.parameters())
    head_ids = {id(p) for p in head}
    rest = [p for p in model.parameters() if id(p) not in head_ids]
    optimizer = torch.optim.Adam(
        [{"params": rest}, {"params": head, "lr": cfg.lr * cfg.qf_head_lr_mult}], lr=cfg.lr, betas=cfg.betas
    )
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(cfg.milestones), gamma=cfg.gamma)
    step, seconds, best, best_step, last_val = 0, 0.0, -math.inf, 0, None
    last_path, best_path, log_path = out / "last.pt", out / "best.pt", out / "log.csv"
    torch_rng = torch.Generator().manual_seed(cfg.seed)  # teacher-forcing draws
    acc = _log_window(None)  # sums over the steps since the last log row

    if resume and last_path.is_file():
        state = _read_state(last_path)
        _check_resumable(cfg, state, last_path)
        model.load_state_dict(state["state_dict"], strict=True)
        tr = state["training"]
        optimizer.load_state_dict(tr["optimizer"])
        _load_scheduler_state(scheduler, tr["scheduler"])
        step, seconds = int(tr["step"]), float(tr["seconds"])
        best, best_step = float(tr["best_val_psnr"]), int(tr["best_step"])
        last_val = tr.get("last_val") or None
        torch_rng.set_state(tr["torch_rng"])
        acc = _log_window(tr.get("log_window"))
        rows: list[dict[str, Any]] = _read_log(log_path, step)
    else:
        rows = []
        for p in (last_path, best_path, log_path, out / "curves.png"):
            p.unlink(missing_ok=True)
    n_train, n_val = len(train_files), len(val_files)
    saved_step = [step if last_path.is_file() else None]  # the step in last.pt on disk

    def meta(val: dict | None) -> dict:
        return _meta(cfg, step, seconds, n_train, n_val, init, val)

    def write_last() -> None:
        payload = {
            "format": CHECKPOINT_FORMAT,
            "format_version": _CKPT_VERSION,
            "config": model.config,
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "meta": meta(last_val),
            "training": {
                "step": step,
                "seconds": seconds,
                "optimizer": optimizer.state_dict(),
                "scheduler": _scheduler_state(scheduler),
                "best_val_psnr": best,
                "best_step": best_step,
                "last_val": last_val or {},
                "torch_rng": torch_rng.get_state(),
                "log_window": dict(acc),
                "train_config": cfg.to_dict(),
            },
        }
        atomic_write(last_path, lambda f: torch.save(payload, f))
        saved_step[0] = step

    def flush_log() -> None:
        _write_log(log_path, rows)
        _plot(out / "curves.png", rows, f"{cfg.name}: JPEG input val PSNR {jpeg_psnr['mean']:.2f} dB")

    bar = None
    if progress and step < stop:
        from tqdm.auto import tqdm

        bar = tqdm(total=stop, initial=step, desc=cfg.name, unit="step", dynamic_ncols=True)
    # "compute": the step's forward/backward, nothing of the state changed yet but the RNG draws;
    # "apply": the update and the step's bookkeeping (Ctrl-C held); "between": a consistent state.
    phase, rng_at_start = "between", torch_rng.get_state()
    guard = _HeldInterrupt(notify=progress)
    try:
        with guard:
            while step < stop:
                rng_at_start = torch_rng.get_state()
                phase = "compute"
                t0 = time.perf_counter()
                batch = {k: v.to(device) for k, v in _batch(dataset, per_epoch, cfg, step).items()}
                loss, l1, qf_loss = _loss(model, batch, cfg, torch_rng)
                if not torch.isfinite(loss):
                    raise JpegbenchError(f"training diverged at step {step + 1}: loss is {float(loss)}")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                with guard.held(f"step {step + 1}"):
                    phase = "apply"
                    optimizer.step()
                    scheduler.step()
                    step += 1
                    dt = time.perf_counter() - t0
                    seconds += dt
                    row = _account(acc, cfg, step, float(loss.detach()), l1, qf_loss, optimizer, seconds)
                    if step % cfg.val_every == 0 or step == cfg.steps:
                        last_val = _validate_model(model, cells, device)
                        assert row is not None
                        row["val_psnr"] = f"{last_val['mean']:.4f}"
                        if last_val["mean"] > best:
                            best, best_step = last_val["mean"], step
                            save_checkpoint(model, best_path, meta=meta(last_val))
                    if row is not None:
                        rows.append(row)
                    phase = "between"  # a Ctrl-C held above is raised as the block ends
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{float(loss):.4f}", img_s=f"{cfg.batch_size / dt:.1f}", refresh=False)
                if step % cfg.checkpoint_every == 0 or row is not None and row["val_psnr"]:
                    flush_log()
                    write_last()
    except KeyboardInterrupt:
        if phase == "apply":
            # Only a second Ctrl-C (or an interrupt raised by code) lands here: the weights may hold
            # part of step `step + 1`, so no state is saved; last.pt keeps its last consistent step.
            if progress:
                kept = f"it holds step {saved_step[0]}" if saved_step[0] is not None else "there is none yet"
                print(f"\n{cfg.name}: interrupted while a step was applied; {last_path} not updated ({kept})",
                      file=sys.stderr)
            raise
        if phase == "compute":
            torch_rng.set_state(rng_at_start)  # the step is redone on resume, with the same draws
        # Keep what was done: the state after the last complete step.
        flush_log()
        write_last()
        raise
    finally:
        if bar is not None:
            bar.close()
    flush_log()
    write_last()
    return {
        "step": step,
        "seconds": seconds,
        "best_val_psnr": best if best > -math.inf else None,
        "best_step": best_step if best > -math.inf else None,
        "val_psnr": last_val,
        "jpeg_psnr": jpeg_psnr,
        "out_dir": out,
        "last": last_path,
        "best": best_path if best_path.is_file() else None,
    }


def _log_window(saved: Any) -> dict[str, Any]:
    """The running sums of the current log window: empty, or as saved in ``last.pt``.

    A state written before the window was saved in it has none (nor has a
    damaged one): the run then resumes with an empty window, as such runs
    always did (the next log row averages only the steps after the resume).
    """
    empty = {"loss": 0.0, "l1": 0.0, "qf_loss": 0.0, "n": 0}
    if not isinstance(saved, Mapping) or set(saved) != set(empty):
        return empty
    sums_ok = all(isinstance(saved[k], float) for k in ("loss", "l1", "qf_loss"))
    if not (sums_ok and _is_int(saved["n"]) and saved["n"] >= 0):
        return empty
    return {"loss": saved["loss"], "l1": saved["l1"], "qf_loss": saved["qf_loss"], "n": int(saved["n"])}


def _account(
    acc: dict[str, Any], cfg: TrainConfig, step: int, loss: float, l1: float, qf_loss: float, optimizer: Any,
    seconds: float,
) -> dict[str, Any] | None:
    """Add step ``step`` to the log window ``acc`` (in place); at a log row return the row and empty the window.

    Rows fall on multiples of ``log_every`` and ``val_every`` and on the
    config's last step, never where ``until_step`` or an interruption stops
    the run, so a run stopped and resumed logs exactly what an uninterrupted
    one logs.
    """
    acc["loss"] += loss
    acc["l1"] += l1
    acc["qf_loss"] += qf_loss
    acc["n"] += 1
    if not (step % cfg.log_every == 0 or step % cfg.val_every == 0 or step == cfg.steps):
        return None
    n = acc["n"]
    row = {
        "step": step,
        "loss": f"{acc['loss'] / n:.6f}",
        "l1": f"{acc['l1'] / n:.6f}",
        "qf_loss": f"{acc['qf_loss'] / n:.6f}",
        "lr": f"{optimizer.param_groups[0]['lr']:.3g}",
        "val_psnr": "",
        "seconds": f"{seconds:.1f}",
    }
    acc.update(loss=0.0, l1=0.0, qf_loss=0.0, n=0)
    return row


class _HeldInterrupt:
    """Hold Ctrl-C (SIGINT) while a training step is applied, so that a step is applied whole or not at all.

    Inside ``with guard:`` SIGINT goes to this handler. Outside a
    :meth:`held` block it calls the previous handler at once (Python's
    default raises KeyboardInterrupt). Inside one, the first SIGINT is held
    and delivered when the block ends normally; a second one is delivered at
    once (an escape hatch for a slow validation), and the caller must then
    treat the state as torn. The handler is installed only in the main thread
    (the only one Python delivers signals to) and only over a Python-level
    previous handler; otherwise nothing is held.
    """

    def __init__(self, *, notify: bool = True) -> None:
        self._notify = notify
        self._previous: Any = None
        self._holding: str | None = None
        self._pending: tuple[int, Any] | None = None

    def __enter__(self) -> _HeldInterrupt:
        if threading.current_thread() is threading.main_thread():
            previous = signal.getsignal(signal.SIGINT)
            if callable(previous):
                self._previous = previous
                signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def _handle(self, signum: int, frame: Any) -> None:
        if self._holding is not None and self._pending is None:
            self._pending = (signum, frame)
            if self._notify:
                print(f"\ninterrupted: finishing {self._holding}, then saving (Ctrl-C again to stop without saving)",
                      file=sys.stderr)
            return
        self._previous(signum, frame)

    @contextlib.contextmanager
    def held(self, what: str) -> Iterator[None]:
        self._holding, self._pending = what, None
        try:
            yield
        finally:
            self._holding = None
        pending, self._pending = self._pending, None
        if pending is not None and self._previous is not None:
            self._previous(*pending)


def _scheduler_state(scheduler: Any) -> dict[str, Any]:
    # MultiStepLR keeps its milestones in a Counter, which weights_only
    # loading refuses; store a plain dict.
    state = dict(scheduler.state_dict())
    if "milestones" in state:
        state["milestones"] = {int(k): int(v) for k, v in state["milestones"].items()}
    return state


def _load_scheduler_state(scheduler: Any, state: dict[str, Any]) -> None:
    from collections import Counter

    state = dict(state)
    if "milestones" in state:
        state["milestones"] = Counter(state["milestones"])
    scheduler.load_state_dict(state)


def _read_state(path: Path) -> dict[str, Any]:
    size = path.stat().st_size
    if size > DEFAULT_MAX_BYTES:  # checked before reading, as for weight files
        raise ConfigError(f"cannot resume from {path}: {size} bytes, over the limit of {DEFAULT_MAX_BYTES} "
                          "bytes for a training state; pass resume=False (CLI --no-resume) to start over")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user problem
        raise ConfigError(f"cannot resume from {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}; "
                          "pass resume=False (CLI --no-resume) to start over") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT or "training" not in state:
        raise ConfigError(f"cannot resume from {path}: not a jpegbench training state; pass resume=False to start over")
    return state


def _check_resumable(cfg: TrainConfig, state: dict[str, Any], path: Path) -> None:
    saved = state["training"].get("train_config", {})
    now = cfg.to_dict()
    for section, keys in _SECTIONS.items():
        a = saved.get(section, {}) if section else saved
        b = now.get(section, {}) if section else now
        for key in keys:
            if key in _RESUMABLE_CHANGES:
                continue
            if a.get(key) != b.get(key):
                raise ConfigError(
                    f"{path} was trained with a different config (key '{_where(key)}': {a.get(key)!r} there, "
                    f"{b.get(key)!r} now); use another output folder or resume=False (CLI --no-resume)"
                )
    if int(state["training"]["step"]) > cfg.steps:
        raise ConfigError(
            f"{path} is at step {state['training']['step']}, past the config's 'optim.steps' ({cfg.steps})"
        )


def export_weights(
    checkpoint: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    half: bool = True,
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write a shippable copy of a training checkpoint (model + meta, no optimizer).

    Parameters
    ----------
    checkpoint : path
        ``best.pt`` or ``last.pt`` of a run.
    dest : path
    half : bool, default True
        Store float16 (loaded back as float32).
    meta : mapping, optional
        Extra entries merged into the checkpoint's meta. ``qf_patch``
        defaults to the run's training patch size.
    """
    ckpt = load_checkpoint(checkpoint)
    model = FBCNN.from_config(ckpt.config)
    model.load_state_dict(ckpt.state_dict, strict=True)
    merged = {k: v for k, v in ckpt.meta.items() if k != "versions"}
    # The QF predictor is read at the size it was trained on (see inference.predict_qf).
    tc = ckpt.meta.get("train_config")
    data = tc.get("data") if isinstance(tc, dict) else None
    patch = data.get("patch_size") if isinstance(data, dict) else None
    if isinstance(patch, int) and not isinstance(patch, bool):
        merged.setdefault("qf_patch", patch)
    merged.update(dict(meta or {}))
    merged["exported_from"] = Path(checkpoint).name
    merged["storage"] = "float16" if half else "float32"
    return save_checkpoint(model, dest, meta=merged, half=half)
