"""A training run's recipe: :class:`TrainConfig`, its validation and reading it from TOML.

Every key lives in one TOML table (``[model]``, ``[data]``, ``[optim]``,
``[train]``, ``[val]``); a wrong key, type or range is a
:class:`~jpegbench.errors.ConfigError` that names the key as
``table.key``, raised before any work.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from jpegbench.codec import SUBSAMPLINGS
from jpegbench._config import read_toml_bytes
from jpegbench.errors import ConfigError, InputError

__all__ = [
    "TrainConfig", "load_config", "SECTIONS", "RESUMABLE_CHANGES", "INIT_CHANNEL_MAPS", "where", "is_int",
    "saved_value",
]


# Which TOML table each field lives in; also the order of the dump.
SECTIONS: dict[str, tuple[str, ...]] = {
    "": ("name",),
    "model": ("channels", "nc", "nb", "act_mode", "init_from", "init_channel_map", "identity_init"),
    "data": (
        "train_dir", "val_dir", "val_count", "patch_size", "batch_size", "degradation",
        "qf_range", "qf2_range", "double_prob", "shift", "augment", "subsampling",
    ),
    "optim": ("steps", "lr", "milestones", "gamma", "qf_loss_weight", "betas", "qf_teacher_prob", "qf_head_lr_mult"),
    "train": ("seed", "log_every", "val_every", "checkpoint_every", "num_threads"),
    "val": ("val_qfs", "val_double", "val_shift", "val_crop"),
}  # fmt: skip
# Changing these between an interrupted run and its resumption is allowed.
#: How ``init_channel_map`` maps a gray checkpoint onto a colour model.
INIT_CHANNEL_MAPS: tuple[str, ...] = ("replicate", "replicate_identity")
RESUMABLE_CHANGES = frozenset({"steps", "log_every", "val_every", "checkpoint_every", "num_threads"})


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
            Checkpoint to start from (fine-tuning FBCNN-A from FBCNN): a
            path, or a weight file name found as
            :func:`~jpegbench.models.weights.resolve_weights` finds it (e.g.
            ``"fbcnn_small_gray.pt"``, shipped with the package).
        init_channel_map : {"replicate", "replicate_identity"}, optional
            Warm-start a colour model (``channels = 3``) from a gray
            ``init_from`` checkpoint of the same width and depth.
            ``"replicate"``: the first convolution's input weights are
            replicated over R, G, B and divided by 3, the last convolution's
            outputs replicated, so the colour model starts as the gray model
            on every channel (on an image with R = G = B it returns the gray
            model's output; on a colour image a gray one).
            ``"replicate_identity"``: the same, then :func:`identity_init` on
            the three colour channels, so the network starts as the identity
            (colour passes through) with the gray model's trained body and
            QF predictor. Default: the checkpoint must have the config's
            architecture.
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
        subsampling : {"4:2:0", "4:2:2", "4:4:4"}
            Chroma subsampling of colour JPEGs (training patches and
            validation cells). The encoder (Pillow) converts RGB to JFIF
            YCbCr and quantizes there, as real encoders do; ignored for gray.
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
    init_channel_map: str | None = None
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
    subsampling: str = "4:2:0"
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
            if key in SECTIONS and key != "" and isinstance(value, Mapping):
                for sub, item in value.items():
                    if sub not in SECTIONS[key]:
                        raise ConfigError(f"unknown training config key '{key}.{sub}' (known: {', '.join(SECTIONS[key])})")
                    flat[sub] = item
            elif key in _FIELD_SECTION:
                flat[key] = value
            else:
                raise ConfigError(f"unknown training config key '{key}' (tables: {', '.join(s for s in SECTIONS if s)})")
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
        for section, keys in SECTIONS.items():
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


_FIELD_SECTION = {k: s for s, keys in SECTIONS.items() for k in keys}


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


def where(key: str) -> str:
    """``table.key``: how messages name a config key."""
    section = _FIELD_SECTION.get(key, "")
    return f"{section}.{key}" if section else key


def _bad(key: str, expected: str, value: Any) -> ConfigError:
    return ConfigError(f"training config key '{where(key)}' must be {expected}, got {value!r}")


def is_int(v: Any) -> bool:
    """An integer that is not a bool."""
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_qf_pair(cfg: TrainConfig, key: str) -> None:
    v = getattr(cfg, key)
    if key == "qf2_range" and v is None:
        return
    if not (isinstance(v, tuple) and len(v) == 2 and all(is_int(q) and 1 <= q <= 100 for q in v) and v[0] <= v[1]):
        raise _bad(key, "a pair [low, high] of QFs with 1 <= low <= high <= 100", v)


def _validate(cfg: TrainConfig) -> None:
    def positive(key: str, minimum: int = 1) -> None:
        v = getattr(cfg, key)
        if not is_int(v) or v < minimum:
            raise _bad(key, f"an integer >= {minimum}", v)

    if not isinstance(cfg.name, str) or not cfg.name:
        raise _bad("name", "a non-empty string", cfg.name)
    if cfg.channels not in (1, 3) or isinstance(cfg.channels, bool):
        raise _bad("channels", "1 (gray) or 3 (RGB)", cfg.channels)
    if not (isinstance(cfg.nc, tuple) and len(cfg.nc) == 4 and all(is_int(c) and c >= 1 for c in cfg.nc)):
        raise _bad("nc", "a list of 4 positive channel widths", cfg.nc)
    positive("nb")
    if cfg.act_mode not in ("R", "L"):
        raise _bad("act_mode", "'R' (ReLU) or 'L' (LeakyReLU)", cfg.act_mode)
    for key in ("init_from", "val_dir"):
        v = getattr(cfg, key)
        if v is not None and (not isinstance(v, str) or not v):
            raise _bad(key, "a non-empty path string", v)
    if cfg.init_channel_map is not None:
        if cfg.init_channel_map not in INIT_CHANNEL_MAPS:
            raise _bad("init_channel_map", f"one of {list(INIT_CHANNEL_MAPS)} (or absent)", cfg.init_channel_map)
        if cfg.init_from is None or cfg.channels != 3:
            raise _bad("init_channel_map", "used only with 'model.init_from' and 'model.channels = 3'",
                       cfg.init_channel_map)
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
    if cfg.subsampling not in SUBSAMPLINGS:
        raise _bad("subsampling", f"one of {list(SUBSAMPLINGS)}", cfg.subsampling)
    positive("steps")
    if not _is_num(cfg.lr) or cfg.lr <= 0:
        raise _bad("lr", "a positive number", cfg.lr)
    ms = cfg.milestones
    if not (isinstance(ms, tuple) and all(is_int(m) and m >= 1 for m in ms) and list(ms) == sorted(set(ms))):
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
    if not (isinstance(cfg.val_qfs, tuple) and all(is_int(q) and 1 <= q <= 100 for q in cfg.val_qfs)):
        raise _bad("val_qfs", "a list of QFs in 1..100", cfg.val_qfs)
    vd = cfg.val_double
    if not (
        isinstance(vd, tuple)
        and all(isinstance(p, tuple) and len(p) == 2 and all(is_int(q) and 1 <= q <= 100 for q in p) for p in vd)
    ):
        raise _bad("val_double", "a list of [qf1, qf2] pairs of QFs", vd)
    if not (cfg.val_qfs or vd):
        raise _bad("val_qfs", "non-empty (or val.val_double non-empty): validation needs a cell", cfg.val_qfs)
    vs = cfg.val_shift
    if not (isinstance(vs, tuple) and len(vs) == 2 and all(is_int(s) and 0 <= s <= 7 for s in vs)):
        raise _bad("val_shift", "a pair [dy, dx] with 0 <= dy, dx <= 7", vs)
    positive("val_crop", 0)
    if cfg.val_crop % 8:
        raise _bad("val_crop", "a multiple of 8 (0 = whole image)", cfg.val_crop)


def saved_value(table: Mapping[str, Any], key: str) -> Any:
    """A key of a saved :meth:`TrainConfig.to_dict` table; its default if the table predates the key.

    States written before a key existed (``subsampling``,
    ``init_channel_map``) were trained with what is now its default.
    """
    if key in table:
        return table[key]
    return _plain(TrainConfig.__dataclass_fields__[key].default)


def load_config(config: TrainConfig | str | os.PathLike[str]) -> TrainConfig:
    """A :class:`TrainConfig` as is, or read from a TOML path."""
    if isinstance(config, TrainConfig):
        return config
    if isinstance(config, (str, os.PathLike)):
        return TrainConfig.from_toml(config)
    raise InputError(f"config must be a TrainConfig or a path to a TOML file, got {type(config).__name__}")
