"""A training run's recipe: :class:`TrainConfig`, its validation and reading it from TOML.

Every key lives in one TOML table (``[model]``, ``[data]``, ``[optim]``,
``[train]``, ``[val]``) and is checked against one schema (:data:`SCHEMA`)
by :func:`jpegbench._config.validate`, the validator of synth recipes, so
both speak one error style, raised before any work::

    training config key 'data.patch_size': expected an integer >= 8 and a multiple of 8, got 20

A config built in code (``TrainConfig(...)``) is checked by the same schema
in ``__post_init__``; rules between keys (a validation cell is needed, an
architecture's own keys) use :func:`jpegbench._config.config_error` for the
same wording.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from jpegbench._config import Array, Bool, Int, Key, Num, Str, Table, config_error, load_toml, validate
from jpegbench.codec import SUBSAMPLINGS
from jpegbench.errors import ConfigError, InputError

__all__ = [
    "TrainConfig", "load_config", "SECTIONS", "SCHEMA", "RESUMABLE_CHANGES", "INIT_CHANNEL_MAPS", "ARCHITECTURES",
    "GUIDED", "where", "is_int", "saved_value",
]  # fmt: skip

#: ``[model] arch``: FBCNN (and FBCNN-A), or a table-guided network (:mod:`.guided`).
ARCHITECTURES: tuple[str, ...] = ("fbcnn", "qcn", "qgcn", "ijcn")
#: The table-guided architectures: inputs read from the JPEG's tables, no QF head.
GUIDED: tuple[str, ...] = ("qcn", "qgcn", "ijcn")
_LABEL = "training config key"

# Which TOML table each field lives in; also the order of the dump.
SECTIONS: dict[str, tuple[str, ...]] = {
    "": ("name",),
    "model": (
        "arch", "channels", "nc", "nb", "act_mode", "n_feats", "n_resblocks", "res_scale", "init_from",
        "init_channel_map", "init_widen", "identity_init",
    ),
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
        arch : {"fbcnn", "qcn", "qgcn", "ijcn"}
            The network (default FBCNN). QCN, QGCN and IJCN are trained as
            described in :mod:`jpegbench.models.training.guided`; a key
            another architecture uses must keep its default.
        channels : {1, 3}
            1 trains on the BT.601 studio-swing Y (jpegbench's "gray"), 3 on
            RGB. IJCN: 3 only.
        nc : 4 ints ; nb : int ; act_mode : {"R", "L", "P"}
            :class:`~jpegbench.models.fbcnn.FBCNN` width, depth, activation
            (ReLU, LeakyReLU). IJCN: ``nc`` (only ``nc[0]`` and ``nc[2]`` set
            widths) and ``act_mode`` (also ``"P"``, PReLU, the authors'
            default); its depth is fixed.
        n_feats, n_resblocks : int ; res_scale : float
            QCN / QGCN width, residual blocks and their scale (QGCN:
            ``n_feats = 64``, fixed by its global branch).
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
        init_widen : int, default 1
            Warm-start a wider FBCNN from a narrower ``init_from`` checkpoint:
            the config's ``nc`` must be the checkpoint's times this factor
            (same depth and channels). The wider network computes exactly
            the checkpoint's function at step 0 (see
            :func:`~jpegbench.models.training.network.widen_state_dict`), so a
            run adds capacity without starting over.
        identity_init : bool
            Start from a network that returns its input (see
            :func:`identity_init`, and for QCN, QGCN and IJCN
            :func:`~jpegbench.models.training.guided.guided_identity_init`);
            ignored with ``init_from``.
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
    arch: str = "fbcnn"
    channels: int = 1
    nc: tuple[int, int, int, int] = (16, 32, 64, 128)
    nb: int = 2
    act_mode: str = "R"
    n_feats: int = 64
    n_resblocks: int = 16
    res_scale: float = 0.1
    init_from: str | None = None
    init_channel_map: str | None = None
    init_widen: int = 1
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
        """Build from a dict, nested by TOML table or flat; checked against :data:`SCHEMA`.

        ``None`` values stand for absent keys (as :meth:`to_dict` writes
        unset optional keys); ``data.train_dir`` is required.

        Raises
        ------
        ConfigError
            ``training config key 'TABLE.KEY': expected X, got Y``.
        """
        if not isinstance(data, Mapping):
            raise config_error("training config", "", "a table", type(data).__name__)
        nested = _nested(data)
        nested.setdefault("data", {})  # so that a missing [data] table is reported as its required train_dir
        checked = validate(nested, SCHEMA, label=_LABEL)
        return cls(**_flat(checked), base_dir=str(base_dir))

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str]) -> TrainConfig:
        """Read a TOML training config; relative paths in it are relative to its folder.

        Errors of the file (unreadable, not a regular file, over 1 MiB, not
        TOML) read ``training config PATH: ...``; errors of a key are
        prefixed by the path.
        """
        path = Path(path)
        data, _ = load_toml(path, what="training config")
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

    @property
    def guided(self) -> bool:
        """A table-guided network (QCN, QGCN, IJCN): no QF head, inputs from the JPEG's tables."""
        return self.arch in GUIDED

    def model_config(self) -> dict[str, Any]:
        """The network's constructor arguments (the class's ``config``)."""
        c = self.channels
        if self.arch in ("qcn", "qgcn"):
            # One quantization map for gray (luma), two for colour (luma, chroma): jpeg_inputs.qcn_inputs.
            out: dict[str, Any] = {"in_channel": c + (1 if c == 1 else 2)}
            if self.arch == "qgcn":
                out["in_glo_channel"] = c  # QGCN's global branch reads the image alone
            return {**out, "out_channel": c, "n_feats": self.n_feats, "n_resblocks": self.n_resblocks,
                    "res_scale": self.res_scale}
        if self.arch == "ijcn":
            # nb is recorded but unused by IJCN (four blocks per stage); 4 as in the authors' files.
            return {"in_nc": 3, "out_nc": 3, "nc": list(self.nc), "nb": 4, "act_mode": self.act_mode}
        return {"in_nc": c, "out_nc": c, "nc": list(self.nc), "nb": self.nb, "act_mode": self.act_mode}


_FIELD_SECTION = {k: s for s, keys in SECTIONS.items() for k in keys}

_QF = Int(1, 100)
_QF_PAIR = Array(_QF, length=2, order="<=", what="a pair [low, high] of QFs with 1 <= low <= high <= 100")


def _schema(*, from_file: bool) -> Table:
    # A file must name its training folder; a config built in code may leave it empty (default "").
    train_dir = Key(Str(nonempty=True), required=True) if from_file else Str()
    return Table({
        "name": Str(nonempty=True),
        "model": Table({
            "arch": Str(ARCHITECTURES),
            "channels": Int(choices=(1, 3)),
            "nc": Array(Int(lo=1), length=4, what="a list of 4 positive channel widths"),
            "nb": Int(lo=1),
            "act_mode": Str(("R", "L", "P")),
            "n_feats": Int(lo=1),
            "n_resblocks": Int(lo=0),
            "res_scale": Num(lo=0, lo_open=True),
            "init_from": Str(nonempty=True),
            "init_channel_map": Str(INIT_CHANNEL_MAPS),
            "init_widen": Int(lo=1, hi=8),
            "identity_init": Bool(),
        }),
        "data": Table({
            "train_dir": train_dir,
            "val_dir": Str(nonempty=True),
            "val_count": Int(lo=0),
            "patch_size": Int(lo=8, multiple_of=8),
            "batch_size": Int(lo=1),
            "degradation": Str(("single", "double", "mixed")),
            "qf_range": _QF_PAIR,
            "qf2_range": _QF_PAIR,
            "double_prob": Num(0, 1),
            "shift": Str(("random", "aligned", "nonaligned")),
            "augment": Bool(),
            "subsampling": Str(SUBSAMPLINGS),
        }),
        "optim": Table({
            "steps": Int(lo=1),
            "lr": Num(lo=0, lo_open=True),
            "milestones": Array(Int(lo=1), order="<", what="a strictly increasing list of positive step numbers"),
            "gamma": Num(0, 1, lo_open=True),
            "qf_loss_weight": Num(lo=0),
            "betas": Array(Num(0, 1, hi_open=True), length=2, what="a pair of numbers in [0, 1)"),
            "qf_teacher_prob": Num(0, 1),
            "qf_head_lr_mult": Num(lo=0, lo_open=True),
        }),
        "train": Table({
            "seed": Int(lo=0),
            "log_every": Int(lo=1),
            "val_every": Int(lo=1),
            "checkpoint_every": Int(lo=1),
            "num_threads": Int(lo=0),
        }),
        "val": Table({
            "val_qfs": Array(_QF),
            "val_double": Array(Array(_QF, length=2, what="a pair [qf1, qf2] of QFs in 1..100")),
            "val_shift": Array(Int(0, 7), length=2, what="a pair [dy, dx] with 0 <= dy, dx <= 7"),
            "val_crop": Int(lo=0, multiple_of=8),
        }),
    }, what="a table of [model], [data], [optim], [train] and [val]")  # fmt: skip


#: The schema of a training config file (the TOML tables of :data:`SECTIONS`).
SCHEMA = _schema(from_file=True)
_CODE_SCHEMA = _schema(from_file=False)

# Keys that only some architectures read; the others must leave them at their defaults.
_ARCH_KEYS: dict[str, tuple[str, ...]] = {
    "nc": ("fbcnn", "ijcn"),
    "nb": ("fbcnn",),
    "n_feats": ("qcn", "qgcn"),
    "n_resblocks": ("qcn", "qgcn"),
    "res_scale": ("qcn", "qgcn"),
    "init_channel_map": ("fbcnn",),
    "init_widen": ("fbcnn",),
    "identity_init": ARCHITECTURES,
    "qf_teacher_prob": ("fbcnn",),
}


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _nested(data: Mapping[str, Any]) -> dict[str, Any]:
    """The flat form (``{"patch_size": 64}``) turned nested (``{"data": {"patch_size": 64}}``); ``None`` dropped."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if value is None:
            continue
        if key in SECTIONS and key and isinstance(value, Mapping):
            table = out.setdefault(key, {})
            if isinstance(table, dict):
                table.update({k: _plain(v) for k, v in value.items() if v is not None})
        elif _FIELD_SECTION.get(key):
            table = out.setdefault(_FIELD_SECTION[key], {})
            if isinstance(table, dict):
                table.setdefault(key, _plain(value))
        else:
            out[key] = _plain(value)  # top-level keys, and unknown ones for the schema to refuse
    return out


def _flat(checked: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in checked.items():
        if key in SECTIONS and key:
            out.update(value)
        else:
            out[key] = value
    return out


def where(key: str) -> str:
    """``table.key``: how messages name a config key."""
    section = _FIELD_SECTION.get(key, "")
    return f"{section}.{key}" if section else key


def is_int(v: Any) -> bool:
    """An integer that is not a bool."""
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _bad(key: str, expected: str, value: Any) -> ConfigError:
    return config_error(_LABEL, where(key), expected, repr(value))


def _validate(cfg: TrainConfig) -> None:
    """Check a config against the schema (storing the checked values: tuples, floats), then the rules between keys."""
    values = {f.name: getattr(cfg, f.name) for f in fields(cfg) if f.name != "base_dir"}
    checked = _flat(validate(_nested(values), _CODE_SCHEMA, label=_LABEL))
    for key, value in checked.items():
        object.__setattr__(cfg, key, value)
    if cfg.init_channel_map is not None and (cfg.init_from is None or cfg.channels != 3):
        raise _bad("init_channel_map", "used only with 'model.init_from' and 'model.channels = 3'",
                   cfg.init_channel_map)
    if cfg.init_widen != 1 and (cfg.init_from is None or cfg.init_channel_map is not None):
        raise _bad("init_widen", "1 unless 'model.init_from' is set (and 'model.init_channel_map' is not)",
                   cfg.init_widen)
    if not (cfg.val_qfs or cfg.val_double):
        raise _bad("val_qfs", "non-empty (or val.val_double non-empty): validation needs a cell", cfg.val_qfs)
    defaults = {f.name: f.default for f in fields(cfg)}
    for key, archs in _ARCH_KEYS.items():
        if cfg.arch not in archs and getattr(cfg, key) != defaults[key]:
            raise _bad(key, f"its default {_plain(defaults[key])!r}: only arch {' or '.join(map(repr, archs))} "
                       f"reads it, this config has arch {cfg.arch!r}", _plain(getattr(cfg, key)))
    if cfg.act_mode == "P" and cfg.arch != "ijcn":
        raise _bad("act_mode", f"'R' or 'L' for arch {cfg.arch!r} (PReLU 'P' is IJCN's)", cfg.act_mode)
    if cfg.guided and cfg.degradation != "single":
        raise _bad("degradation", f"'single' for arch {cfg.arch!r} (table-guided networks train on single JPEGs)",
                   cfg.degradation)
    if cfg.arch == "qgcn" and cfg.n_feats != 64:
        raise _bad("n_feats", "64 for arch 'qgcn' (its global branch emits 64 features)", cfg.n_feats)
    if cfg.arch == "ijcn":
        if cfg.channels != 3:
            raise _bad("channels", "3 for arch 'ijcn' (colour only)", cfg.channels)
        if cfg.subsampling != "4:2:0":
            raise _bad("subsampling", "'4:2:0' for arch 'ijcn' (its layout)", cfg.subsampling)
        if cfg.patch_size % 64:
            raise _bad("patch_size", "a multiple of 64 for arch 'ijcn' (its 4x4 tokens of 16x16 pixels)",
                       cfg.patch_size)


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
