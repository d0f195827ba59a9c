"""FBCNN weights: safe loading, where weight files are found, and saving (FBCNN and the table-guided networks).

Loading never runs code from a file: every checkpoint goes through
``torch.load(..., weights_only=True)``, which only rebuilds tensors and plain
containers, so a pickle carrying a ``__reduce__`` payload is refused instead
of executed.

Two file layouts are accepted:

* a raw state dict, as the authors release (``fbcnn_gray.pth``,
  ``fbcnn_color.pth``, ``fbcnn_gray_double.pth``), optionally wrapped as
  ``{'params': sd}``, ``{'params_ema': sd}`` or ``{'state_dict': sd}``; the
  architecture is inferred from the tensor shapes;
* jpegbench's own checkpoint ``{'format': 'jpegbench-fbcnn',
  'format_version': 1, 'config': FBCNN.config, 'state_dict': sd, 'meta': {...}}``,
  written by :func:`save_checkpoint` (float16 storage allowed; tensors are
  float32 after loading).

:func:`save_checkpoint` also writes the table-guided networks (QCN, QGCN,
IJCN) as ``{'format': 'jpegbench-guided', 'format_version': 1,
'architecture': 'qgcn', 'config': model.config, 'state_dict': sd, 'meta':
{...}}``; :func:`jpegbench.models.load_guided_model` reads those, and
:func:`load_checkpoint` refuses them with a pointer there.

Where files are found (:func:`resolve_weights`): an existing path; otherwise
a file name looked up in the ``weights_dir`` argument, then in the folder named
by the environment variable ``JPEGBENCH_WEIGHTS_DIR``, then among the small
weights shipped in ``jpegbench/models/weights/``.

Which file a method uses when none is named (:func:`find_weights`) depends on
the image's channels and the colour policy (:data:`COLOR_CHOICES`): a gray
image always gets a gray (1-channel) model; an RGB image gets a colour
(3-channel) model under ``"auto"`` when one is found, else the gray model on
its luma (``"luma"`` forces that path, ``"color"`` refuses it).
"""

from __future__ import annotations

import math
import os
import pickle
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from jpegbench._fs import atomic_write
from jpegbench.errors import ConfigError, InputError, WeightsError
from jpegbench.models.fbcnn import FBCNN
from jpegbench._device import pick_device

__all__ = [
    "CHECKPOINT_FORMAT",
    "GUIDED_CHECKPOINT_FORMAT",
    "COLOR_CHOICES",
    "DEFAULT_MAX_BYTES",
    "KNOWN_WEIGHTS",
    "SHIPPED_COLOR_WEIGHTS",
    "SHIPPED_WEIGHTS",
    "WEIGHTS_DIR_ENV",
    "Checkpoint",
    "KnownWeights",
    "default_weights",
    "describe_state_dict",
    "find_weights",
    "infer_config",
    "load_checkpoint",
    "load_model",
    "qf_patch_from_meta",
    "resolve_weights",
    "save_checkpoint",
    "shipped_weights_dir",
]

CHECKPOINT_FORMAT = "jpegbench-fbcnn"
#: The format of QCN, QGCN and IJCN checkpoints written by :func:`save_checkpoint`.
GUIDED_CHECKPOINT_FORMAT = "jpegbench-guided"
_FORMAT_VERSION = 1
#: Files larger than this are refused before anything is read (2 GiB; the
#: released default-width checkpoints are about 288 MB).
DEFAULT_MAX_BYTES = 2 * 1024**3
WEIGHTS_DIR_ENV = "JPEGBENCH_WEIGHTS_DIR"
_RELEASE_PAGE = "https://github.com/jiaxi-jiang/FBCNN/releases"
# What torch.load raises on files that are not (complete) checkpoints.
_READ_ERRORS = (RuntimeError, EOFError, ValueError, OSError, zipfile.BadZipFile, KeyError, TypeError, AttributeError)
_ROLES = ("fbcnn", "fbcnn-a")
#: What a method does with RGB images (:func:`find_weights`): ``"auto"`` a
#: colour model if one is found, else the gray model on the luma;
#: ``"color"`` a colour model or an error; ``"luma"`` the gray model on the
#: luma (BT.601 Y), chroma kept.
COLOR_CHOICES: tuple[str, ...] = ("auto", "color", "luma")


@dataclass(frozen=True)
class KnownWeights:
    """A weight file jpegbench knows by name.

    Attributes
    ----------
    filename : str
    role : {"fbcnn", "fbcnn-a"}
        ``"fbcnn"``: trained on single JPEG (used by the fbcnn and fbcnn-d
        methods); ``"fbcnn-a"``: trained with double JPEG augmentation.
    channels : int
        1 (gray) or 3 (RGB).
    origin : str
        Where the file comes from.
    """

    filename: str
    role: str
    channels: int
    origin: str


KNOWN_WEIGHTS: tuple[KnownWeights, ...] = (
    KnownWeights("fbcnn_gray.pth", "fbcnn", 1, f"released by the FBCNN authors ({_RELEASE_PAGE})"),
    KnownWeights("fbcnn_color.pth", "fbcnn", 3, f"released by the FBCNN authors ({_RELEASE_PAGE})"),
    KnownWeights("fbcnn_gray_double.pth", "fbcnn-a", 1, f"released by the FBCNN authors ({_RELEASE_PAGE})"),
)

#: Small gray models trained with jpegbench and shipped in the package
#: (``jpegbench/models/weights/``); absent until trained.
SHIPPED_WEIGHTS: dict[str, str] = {
    "fbcnn": "fbcnn_small_gray.pt",
    "fbcnn-a": "fbcnn_a_small_gray.pt",
}
#: Their colour (RGB, 3-channel) twins; absent until trained. The authors
#: released no colour double-JPEG model, so ``fbcnn_a_small_color.pt`` is the
#: only colour ``fbcnn-a`` file jpegbench knows.
SHIPPED_COLOR_WEIGHTS: dict[str, str] = {
    "fbcnn": "fbcnn_small_color.pt",
    "fbcnn-a": "fbcnn_a_small_color.pt",
}


@dataclass
class Checkpoint:
    """The content of a weight file after validation.

    Attributes
    ----------
    config : dict
        ``FBCNN`` constructor arguments (given by the file or inferred).
    state_dict : dict of str to Tensor
        float32 tensors on the CPU.
    meta : dict
        Free-form metadata from a jpegbench checkpoint; empty for released files.
    path : Path
    """

    config: dict[str, Any]
    state_dict: dict[str, Tensor]
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


# -- where files are -----------------------------------------------------------


def shipped_weights_dir() -> Path:
    """Folder of the weights that ship with the package."""
    return Path(__file__).with_name("weights")


def _search_dirs(weights_dir: str | os.PathLike[str] | None) -> list[Path]:
    dirs = []
    if weights_dir is not None:
        dirs.append(Path(weights_dir))
    env = os.environ.get(WEIGHTS_DIR_ENV)
    if env:
        dirs.append(Path(env))
    dirs.append(shipped_weights_dir())
    return dirs


def resolve_weights(path_or_name: str | os.PathLike[str], *, weights_dir: str | os.PathLike[str] | None = None) -> Path:
    """Find a weight file by path, or by file name in the weights folders.

    Parameters
    ----------
    path_or_name : str or PathLike
        An existing file, or a bare file name such as ``"fbcnn_gray.pth"``.
    weights_dir : str or PathLike, optional
        Folder searched first; then ``$JPEGBENCH_WEIGHTS_DIR``, then the
        shipped weights folder.

    Returns
    -------
    Path

    Raises
    ------
    WeightsError
        Nothing found; the message lists where it looked.
    """
    if not isinstance(path_or_name, (str, os.PathLike)):
        raise InputError(f"weights must be a path or a file name, got {type(path_or_name).__name__}")
    path = Path(path_or_name).expanduser()
    if path.is_file():
        return path
    if path.exists():
        raise WeightsError(f"weights path is not a file: {path}")
    if len(path.parts) == 1:
        dirs = _search_dirs(weights_dir)
        for folder in dirs:
            if (folder / path.name).is_file():
                return folder / path.name
        looked = ", ".join(str(d) for d in dirs)
        raise WeightsError(f"weights file {path.name!r} not found (looked in: {looked}); {_how_to_get()}")
    raise WeightsError(f"weights file not found: {path}")


def _how_to_get() -> str:
    names = ", ".join(k.filename for k in KNOWN_WEIGHTS)
    return (
        f"download {names} from {_RELEASE_PAGE} into a folder and pass it as weights_dir "
        f"(CLI --weights-dir) or set {WEIGHTS_DIR_ENV}, or pass a checkpoint path with --weights"
    )


def default_weights(role: str, *, channels: int = 1) -> Path:
    """Path of the small model shipped with the package for ``role`` and ``channels``.

    Parameters
    ----------
    role : {"fbcnn", "fbcnn-a"}
    channels : {1, 3}, default 1
        1: :data:`SHIPPED_WEIGHTS` (gray); 3: :data:`SHIPPED_COLOR_WEIGHTS`.

    Raises
    ------
    WeightsError
        The shipped file is absent (e.g. a source checkout before training);
        the message says how to get weights.
    """
    if role not in SHIPPED_WEIGHTS:
        raise InputError(f"role must be one of {tuple(SHIPPED_WEIGHTS)}, got {role!r}")
    if channels not in (1, 3):
        raise InputError(f"channels must be 1 or 3, got {channels!r}")
    path = shipped_weights_dir() / (SHIPPED_COLOR_WEIGHTS if channels == 3 else SHIPPED_WEIGHTS)[role]
    if not path.is_file():
        raise WeightsError(f"no shipped weights for {role!r} ({path.name} is absent); {_how_to_get()}")
    return path


def _names(role: str, channels: int) -> list[str]:
    """File names of ``role`` with ``channels`` channels: the authors' first, then jpegbench's own."""
    shipped = (SHIPPED_COLOR_WEIGHTS if channels == 3 else SHIPPED_WEIGHTS)[role]
    return [k.filename for k in KNOWN_WEIGHTS if k.role == role and k.channels == channels] + [shipped]


def find_weights(
    role: str,
    *,
    channels: int = 1,
    weights_dir: str | os.PathLike[str] | None = None,
    color_policy: str = "auto",
) -> Path:
    """The weight file to use for a method when the caller named none.

    Searched: the folders ``weights_dir`` and ``$JPEGBENCH_WEIGHTS_DIR`` when
    either is given (the authors' file names, e.g. ``fbcnn_color.pth``, then
    jpegbench's, e.g. ``fbcnn_small_color.pt``), otherwise the weights
    shipped in the package. A configured folder without a usable file is an
    error rather than a silent fallback to the shipped small models.

    Parameters
    ----------
    role : {"fbcnn", "fbcnn-a"}
    channels : {1, 3}
        Channels of the images to restore. 1 finds a gray model only.
    weights_dir : str or PathLike, optional
    color_policy : {"auto", "color", "luma"}, default "auto"
        For ``channels=3`` (:data:`COLOR_CHOICES`): ``"auto"`` a colour model
        if found, else the gray one (which then restores the luma);
        ``"color"`` a colour model only; ``"luma"`` the gray model only.

    Returns
    -------
    Path
        Its channels say which path the method takes (a 1-channel file for
        RGB images: the luma path).

    Raises
    ------
    WeightsError
        None found; the message names the files looked for and where.
    """
    if role not in _ROLES:
        raise InputError(f"role must be one of {_ROLES}, got {role!r}")
    if channels not in (1, 3):
        raise InputError(f"channels must be 1 or 3, got {channels!r}")
    if color_policy not in COLOR_CHOICES:
        raise InputError(f"color_policy must be one of {COLOR_CHOICES}, got {color_policy!r}")
    if channels == 1 or color_policy == "luma":
        order = [1]
    else:
        order = [3] if color_policy == "color" else [3, 1]
    configured = [Path(d) for d in (weights_dir, os.environ.get(WEIGHTS_DIR_ENV)) if d]
    folders = configured or [shipped_weights_dir()]
    for ch in order:  # a colour file in any folder beats a gray one
        for folder in folders:
            for name in _names(role, ch):
                if (folder / name).is_file():
                    return folder / name
    names = " or ".join(n for ch in order for n in _names(role, ch))
    looked = ", ".join(str(d) for d in folders)
    hint = ""
    if channels == 3 and color_policy == "color":
        hint = "; color_policy 'luma' (CLI --color-policy luma) restores the luma with the gray model instead"
    if not configured:
        raise WeightsError(f"no shipped weights for {role!r} ({names} absent in {looked}){hint}; {_how_to_get()}")
    raise WeightsError(f"no {names} for method {role!r} in {looked}{hint}; {_how_to_get()}")


# -- reading -------------------------------------------------------------------


def _read(path: Path, max_bytes: int) -> Any:
    size = path.stat().st_size
    if size > max_bytes:
        raise WeightsError(f"weights file {path} is {size} bytes, over the limit of {max_bytes} bytes")
    if size == 0:
        raise WeightsError(f"weights file {path} is empty")
    try:
        with warnings.catch_warnings():
            # Raised for foreign pickles before they fail with a clearer error below.
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only load failed" in str(exc).lower():
            found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
            what = f"it references {found.group(1)}" if found else "it holds more than tensors and plain containers"
            raise WeightsError(
                f"refused to unpickle: not a plain-tensor checkpoint ({path}: {what}); if it is a whole pickled "
                "model (as the QCN/QGCN authors save), convert it to a state dict with the code that defined it "
                "(see jpegbench/models/weights/README.md)"
            ) from exc
        raise WeightsError(f"not a PyTorch checkpoint or truncated: {path} ({_first_line(exc)})") from exc
    except _READ_ERRORS as exc:
        raise WeightsError(f"not a PyTorch checkpoint or truncated: {path} ({_first_line(exc)})") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line if len(line) <= 160 else line[:157] + "..."


def _unwrap(obj: Any, path: Path) -> tuple[dict[str, Any] | None, dict[str, Any], dict[str, Any]]:
    """Return (config or None, raw state dict, meta) from a loaded object."""
    if not isinstance(obj, dict):
        raise WeightsError(f"not a state dict: {path} holds a {type(obj).__name__}")
    if obj.get("format") == GUIDED_CHECKPOINT_FORMAT:
        arch = str(obj.get("architecture", "?")).upper()
        raise WeightsError(f"{path} is a {GUIDED_CHECKPOINT_FORMAT} checkpoint of {arch}, not an FBCNN; "
                           f"use it with the {arch.lower()} method (jpegbench.models.load_guided_model)")
    if obj.get("format") == CHECKPOINT_FORMAT:
        version = obj.get("format_version")
        if version != _FORMAT_VERSION:
            raise WeightsError(
                f"{path} is a {CHECKPOINT_FORMAT} checkpoint of format_version {version!r}; "
                f"this jpegbench reads version {_FORMAT_VERSION}"
            )
        config, sd, meta = obj.get("config"), obj.get("state_dict"), obj.get("meta") or {}
        if not isinstance(config, dict) or not isinstance(sd, dict) or not isinstance(meta, dict):
            raise WeightsError(f"{path} is a malformed {CHECKPOINT_FORMAT} checkpoint (config/state_dict/meta)")
        return config, sd, meta
    for wrapper in ("params", "params_ema", "state_dict"):
        if isinstance(obj.get(wrapper), dict):
            return None, obj[wrapper], {}
    return None, obj, {}


def _clean_state_dict(sd: dict[str, Any], path: Path) -> dict[str, Tensor]:
    if not sd:
        raise WeightsError(f"{path} holds an empty state dict")
    bad = [k for k, v in sd.items() if not isinstance(k, str) or not isinstance(v, Tensor)]
    if bad:
        keys = ", ".join(repr(k) for k in list(sd)[:5])
        raise WeightsError(f"not a state dict of tensors: {path} (entries {bad[:3]!r} are not tensors; keys {keys})")
    if all(k.startswith("module.") for k in sd):  # saved from DataParallel
        sd = {k[len("module."):]: v for k, v in sd.items()}
    clean = {}
    for key, tensor in sd.items():
        if tensor.is_floating_point():
            tensor = tensor.float()
            if not bool(torch.isfinite(tensor).all()):
                raise WeightsError(f"refused: {path} has NaN or Inf values in {key!r}")
        clean[key] = tensor
    return clean


def infer_config(state_dict: dict[str, Tensor]) -> dict[str, Any]:
    """FBCNN constructor arguments implied by a state dict's shapes.

    ``in_nc`` from ``m_head.weight``, ``out_nc`` from ``m_tail.weight``,
    ``nc`` from the head and the three downsampling convolutions, ``nb`` from
    the number of residual blocks in ``m_down1``. The activation cannot be
    seen in weights and is assumed ReLU (``"R"``), as in every released file.

    Raises
    ------
    WeightsError
        A needed tensor is missing: not an FBCNN state dict.
    """
    blocks = {int(m.group(1)) for k in state_dict if (m := re.match(r"m_down1\.(\d+)\.res\.", k))}
    nb = len(blocks)
    needed = ["m_head.weight", "m_tail.weight"] + [f"m_down{i}.{nb}.weight" for i in (1, 2, 3)]
    missing = [k for k in needed if k not in state_dict or state_dict[k].ndim != 4]
    if nb == 0 or missing:
        keys = ", ".join(list(state_dict)[:4])
        lacks = missing or ["m_down1.*.res.*"]
        raise WeightsError(f"does not look like an FBCNN state dict: lacks {lacks} (first keys: {keys})")
    head = state_dict["m_head.weight"]
    nc = [int(head.shape[0])] + [int(state_dict[f"m_down{i}.{nb}.weight"].shape[0]) for i in (1, 2, 3)]
    return {
        "in_nc": int(head.shape[1]),
        "out_nc": int(state_dict["m_tail.weight"].shape[0]),
        "nc": nc,
        "nb": nb,
        "act_mode": "R",
    }


def describe_state_dict(state_dict: dict[str, Tensor]) -> str:
    """One phrase on what a state dict looks like, for error messages."""
    try:
        cfg = infer_config(state_dict)
    except WeightsError:
        keys = ", ".join(list(state_dict)[:3])
        return f"does not look like an FBCNN ({len(state_dict)} tensors, first keys: {keys})"
    return f"looks like a {cfg['in_nc']}-channel FBCNN with nc={cfg['nc']}, nb={cfg['nb']}"


def _mismatch(model: nn.Module, sd: dict[str, Tensor]) -> list[tuple[str, list[str]]]:
    """How ``sd`` does not fit ``model``: ``(label, keys)`` for each kind of misfit found; empty if it fits."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    wrong = [
        f"{k} {tuple(sd[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in sd and sd[k].shape != v.shape
    ]
    kinds = (("missing", missing), ("unexpected", unexpected), ("wrong shape (file vs model)", wrong))
    return [(label, items) for label, items in kinds if items]


def _check_fit(model: FBCNN, sd: dict[str, Tensor], path: Path) -> None:
    problems = _mismatch(model, sd)
    if not problems:
        return
    parts = []
    for label, items in problems:
        more = f" (+{len(items) - 3} more)" if len(items) > 3 else ""
        parts.append(f"{len(items)} {label}: {', '.join(items[:3])}{more}")
    raise WeightsError(
        f"weights {path.name} do not fit FBCNN({model.extra_repr()}): {'; '.join(parts)}; "
        f"the file {describe_state_dict(sd)}"
    )


def load_checkpoint(
    path_or_name: str | os.PathLike[str],
    *,
    weights_dir: str | os.PathLike[str] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Checkpoint:
    """Read and validate a weight file without building a model.

    Parameters
    ----------
    path_or_name : str or PathLike
        See :func:`resolve_weights`.
    weights_dir : str or PathLike, optional
    max_bytes : int, default 2 GiB
        Larger files are refused before any byte is read.

    Returns
    -------
    Checkpoint

    Raises
    ------
    WeightsError
        Missing, too large, not a checkpoint, truncated, carrying code,
        containing NaN/Inf, or not an FBCNN layout.
    """
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
        raise InputError(f"max_bytes must be a positive int, got {max_bytes!r}")
    path = resolve_weights(path_or_name, weights_dir=weights_dir)
    return _checkpoint(_read(path, max_bytes), path)


def _checkpoint(obj: Any, path: Path) -> Checkpoint:
    """The validated :class:`Checkpoint` of ``obj``, what :func:`_read` read from ``path``."""
    config, raw, meta = _unwrap(obj, path)
    sd = _clean_state_dict(raw, path)
    if config is None:
        config = infer_config(sd)
    return Checkpoint(config=dict(config), state_dict=sd, meta=dict(meta), path=path)


def load_model(
    path_or_name: str | os.PathLike[str],
    *,
    device: str | torch.device | None = None,
    weights_dir: str | os.PathLike[str] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> FBCNN:
    """Build an :class:`FBCNN` from a weight file, strictly.

    Parameters
    ----------
    path_or_name : str or PathLike
        A path, or a file name looked up as in :func:`resolve_weights`.
    device : str or torch.device, optional
        Where to put the model; default :func:`jpegbench.models.pick_device`
        (CUDA if available, else CPU).
    weights_dir : str or PathLike, optional
    max_bytes : int, default 2 GiB

    Returns
    -------
    FBCNN
        In eval mode, float32, every parameter from the file (strict).
        ``model.checkpoint_meta`` holds the file's meta dict,
        ``model.checkpoint_path`` its path and ``model.qf_patch`` the QF
        predictor's training patch size (:func:`qf_patch_from_meta`).

    Raises
    ------
    WeightsError
        See :func:`load_checkpoint`; also when keys or shapes differ from
        the architecture (the message lists the first few).
    """
    target = pick_device(device)
    ckpt = load_checkpoint(path_or_name, weights_dir=weights_dir, max_bytes=max_bytes)
    try:
        model = FBCNN.from_config(ckpt.config)
    except ConfigError as exc:
        raise WeightsError(f"{ckpt.path}: invalid architecture config {ckpt.config!r} ({exc})") from exc
    _check_fit(model, ckpt.state_dict, ckpt.path)  # type: ignore[arg-type]
    model.load_state_dict(ckpt.state_dict, strict=True)
    model.checkpoint_meta = ckpt.meta
    model.checkpoint_path = ckpt.path
    model.qf_patch = qf_patch_from_meta(ckpt.meta)
    return model.to(target).eval()


def qf_patch_from_meta(meta: Any) -> int | None:
    """``meta["qf_patch"]`` if it is a usable patch size (an int in 16..4096, a multiple of 8), else ``None``.

    Files without it (the released checkpoints, trained on 128-px patches and
    read on whole images in the paper) keep whole-image QF prediction.
    """
    value = meta.get("qf_patch") if isinstance(meta, dict) else None
    if isinstance(value, bool) or not isinstance(value, int) or not 16 <= value <= 4096 or value % 8:
        return None
    return value


# -- writing -------------------------------------------------------------------


def _check_meta(meta: Any, where: str = "meta") -> None:
    # weights_only loading rebuilds only plain containers and scalars, so
    # anything else would make our own file unreadable.
    if meta is None or isinstance(meta, (str, bool, int)):
        return
    if isinstance(meta, float):
        if not math.isfinite(meta):
            raise InputError(f"{where} must hold finite numbers, got {meta!r}")
        return
    if isinstance(meta, (list, tuple)):
        for i, item in enumerate(meta):
            _check_meta(item, f"{where}[{i}]")
        return
    if isinstance(meta, dict):
        for key, item in meta.items():
            if not isinstance(key, str):
                raise InputError(f"{where} keys must be str, got {key!r}")
            _check_meta(item, f"{where}[{key!r}]")
        return
    raise InputError(f"{where} must hold only str, int, float, bool, None, list and dict, got {type(meta).__name__}")


def _guided_architecture(model: Any) -> str | None:
    # Imported here: the guided architectures' modules are not needed to read or write FBCNN files
    # (and guided_weights, the owner of the name -> class table, imports this module).
    from jpegbench.models.guided_weights import GUIDED_ARCHITECTURES

    return next((arch for arch, cls in GUIDED_ARCHITECTURES.items() if isinstance(model, cls)), None)


def save_checkpoint(
    model: Any,
    path: str | os.PathLike[str],
    *,
    meta: dict[str, Any] | None = None,
    half: bool = False,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a jpegbench checkpoint (config + state dict + meta), atomically.

    The one writer of checkpoint files: shipped weights, a training run's
    ``best.pt`` and its resumable ``last.pt`` (``extra={"training": ...}``).

    Parameters
    ----------
    model : FBCNN, QCN, QGCN or IJCN
        FBCNN: format ``jpegbench-fbcnn``; the others ``jpegbench-guided``
        with their ``architecture`` (see the module docstring).
    path : str or PathLike
        Written via a temporary file in the same folder and a rename, so a
        crash never leaves a half-written checkpoint.
    meta : dict, optional
        Plain data (str, int, float, bool, None, lists, dicts): training
        recipe, data, metrics. jpegbench and torch versions are added under
        ``"versions"`` unless given.
    half : bool, default False
        Store floating tensors as float16 (half the size; :func:`load_model`
        returns float32).
    extra : dict, optional
        Further top-level entries written as given (tensors allowed), e.g.
        a training state's ``"training"``; :func:`load_checkpoint` ignores
        them. They may not replace the checkpoint's own keys.

    Returns
    -------
    Path
    """
    arch = None if isinstance(model, FBCNN) else _guided_architecture(model)
    if not isinstance(model, FBCNN) and arch is None:
        raise InputError(f"model must be an FBCNN, QCN, QGCN or IJCN, got {type(model).__name__}")
    meta = {} if meta is None else meta
    if not isinstance(meta, dict):
        raise InputError(f"meta must be a dict, got {type(meta).__name__}")
    _check_meta(meta)
    import jpegbench

    # str(): torch.__version__ is a TorchVersion, which weights_only refuses.
    meta = {"versions": {"jpegbench": str(jpegbench.__version__), "torch": str(torch.__version__)}, **meta}
    dtype = torch.float16 if half else torch.float32
    state = {
        k: (v.detach().to("cpu", dtype) if v.is_floating_point() else v.detach().cpu()).contiguous()
        for k, v in model.state_dict().items()
    }
    payload: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT if arch is None else GUIDED_CHECKPOINT_FORMAT,
        "format_version": _FORMAT_VERSION,
        **({} if arch is None else {"architecture": arch}),
        "config": dict(model.config),
        "state_dict": state,
        "meta": meta,
    }
    if extra is not None:
        if not isinstance(extra, dict) or set(extra) & set(payload):
            raise InputError(f"extra must be a dict without the keys {sorted(payload)}, got {extra!r:.80}")
        payload.update(extra)
    path = Path(path)
    if not path.parent.is_dir():
        raise InputError(f"folder for the checkpoint does not exist: {path.parent}")
    return atomic_write(path, lambda f: torch.save(payload, f))
