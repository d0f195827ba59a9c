"""Weights of the table-guided restorers (QCN, QGCN, IJCN): layout detection, config inference, strict loading.

Files are read as FBCNN files are (:mod:`jpegbench.models.weights`): through
``torch.load(..., weights_only=True)`` after a size check, accepting a raw
state dict (optionally under ``params`` / ``params_ema`` / ``state_dict``,
``module.`` prefixes from DataParallel removed). The architecture is
recognised from the parameter names and its constructor arguments from the
shapes, so the authors' state dicts load as they are.

The QCN/QGCN authors' training script saves *whole pickled models*
(``{'epoch', 'model': Net, 'opt'}``); unpickling those would run code, so
they are refused. Turn one into a state dict once, with the authors' code
on the Python path (their ``src/`` folder, where ``nets.qmar`` lives)::

    import torch
    ckpt = torch.load("model_epoch_50.pth", map_location="cpu", weights_only=False)  # trusted file only
    torch.save(ckpt["model"].state_dict(), "qcn_gray.pth")

IJCN's test scripts already load plain state dicts.

Networks trained here (``jpegbench train`` with ``[model] arch``) are saved
by :func:`jpegbench.models.weights.save_checkpoint` in the
``jpegbench-guided`` format: the architecture and its constructor arguments
travel with the state dict (so ``res_scale`` or IJCN's activation need not
be guessed) together with the training meta.

Where files are found when none is named (:func:`find_guided_weights`): in
the ``weights_dir`` argument (CLI ``--weights-dir``), then
``$JPEGBENCH_WEIGHTS_DIR``, then the package's ``jpegbench/models/weights/``,
under the names of :func:`guided_weight_names`: ``{arch}_{gray|color}.pth``
(full-size weights, e.g. converted from the authors') before
``{arch}_small_{gray|color}.pt`` (the small models trained and shipped with
jpegbench: ``qgcn_small_gray.pt``, ``ijcn_small_color.pt``, ...); a model
of the image's own channels first, then, for QCN/QGCN on colour images, a
gray one (it restores the luma).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from jpegbench._device import pick_device
from jpegbench.errors import ConfigError, InputError, WeightsError
from jpegbench.models.ijcn import IJCN
from jpegbench.models.qcn import QCN, QGCN
from jpegbench.models.weights import (
    _FORMAT_VERSION,
    DEFAULT_MAX_BYTES,
    GUIDED_CHECKPOINT_FORMAT,
    WEIGHTS_DIR_ENV,
    _clean_state_dict,
    _mismatch,
    _read,
    _search_dirs,
    _unwrap,
    resolve_weights,
)

__all__ = [
    "GUIDED_ARCHITECTURES",
    "detect_architecture",
    "find_guided_weights",
    "guided_weight_names",
    "infer_guided_config",
    "load_guided_model",
]

#: Architecture name -> class.
GUIDED_ARCHITECTURES: dict[str, type[nn.Module]] = {"qcn": QCN, "qgcn": QGCN, "ijcn": IJCN}
_COLOR_ONLY = ("ijcn",)


def guided_weight_names(architecture: str, channels: int) -> tuple[str, str]:
    """File names looked up for an architecture and image channels: ``(full-size, shipped small)``.

    >>> guided_weight_names("qgcn", 1)
    ('qgcn_gray.pth', 'qgcn_small_gray.pt')
    """
    if architecture not in GUIDED_ARCHITECTURES:
        raise InputError(f"architecture must be one of {tuple(GUIDED_ARCHITECTURES)}, got {architecture!r}")
    if channels not in (1, 3):
        raise InputError(f"channels must be 1 or 3, got {channels!r}")
    kind = "gray" if channels == 1 else "color"
    return f"{architecture}_{kind}.pth", f"{architecture}_small_{kind}.pt"


def find_guided_weights(
    architecture: str, *, channels: int | None = None, weights_dir: str | os.PathLike[str] | None = None
) -> Path:
    """The weight file to use for a QCN, QGCN or IJCN method when the caller named none.

    Parameters
    ----------
    architecture : {"qcn", "qgcn", "ijcn"}
    channels : {1, 3}, optional
        Channels of the image to restore; None: any model of the
        architecture (to check, before any work, that one exists).
    weights_dir : str or PathLike, optional
        Searched first, then ``$JPEGBENCH_WEIGHTS_DIR``, then the shipped folder.

    Raises
    ------
    WeightsError
        Nothing found: one line saying that no weights ship yet and how to pass them.
    """
    if architecture not in GUIDED_ARCHITECTURES:
        raise InputError(f"architecture must be one of {tuple(GUIDED_ARCHITECTURES)}, got {architecture!r}")
    if channels not in (None, 1, 3):
        raise InputError(f"channels must be None, 1 or 3, got {channels!r}")
    if architecture in _COLOR_ONLY:
        wanted = [3]  # a gray image is refused by the method itself, with its own message
    elif channels is None:
        wanted = [1, 3]
    else:
        wanted = [channels] if channels == 1 else [3, 1]  # a gray model restores a colour image's luma
    dirs = _search_dirs(weights_dir)
    for ch in wanted:
        for name in guided_weight_names(architecture, ch):
            for folder in dirs:
                if (folder / name).is_file():
                    return folder / name
    names = " or ".join(n for ch in wanted for n in guided_weight_names(architecture, ch))
    arch = architecture.upper()
    for_what = {None: "", 1: " for gray images", 3: " for colour images"}[channels]
    raise WeightsError(
        f"no {arch} weights are shipped yet{for_what} and none were found ({names} in "
        f"{', '.join(str(d) for d in dirs)}); pass {_article(arch)} state dict of the authors' layout with "
        f"--weights FILE, or put it under one of those names in --weights-dir or ${WEIGHTS_DIR_ENV}"
    )


def detect_architecture(state_dict: dict[str, Tensor]) -> str:
    """Which network a state dict belongs to: ``"qcn"``, ``"qgcn"``, ``"ijcn"``, ``"fbcnn"`` or ``"unknown"``.

    Decided by names only: IJCN has its offset module (``DCT_offset.*``),
    QGCN its global branch (``conv_global.*``), QCN ``conv_input`` and
    ``residual.*`` / ``upscale.*``, FBCNN ``m_head`` with its QF predictor.
    """
    keys = set(state_dict)
    if any(k.startswith("DCT_offset.") for k in keys):
        return "ijcn"
    if "conv_global.0.weight" in keys and "conv_input.weight" in keys:
        return "qgcn"
    if "conv_input.weight" in keys and "upscale.0.weight" in keys:
        return "qcn"
    if "m_head.weight" in keys and any(k.startswith("m_down1.") for k in keys):
        return "fbcnn"
    return "unknown"


def _article(name: str) -> str:
    # Spoken letter names: "an FBCNN", "an IJCN", "a QCN".
    return f"{'an' if name[0] in 'AEFHILMNORSX' else 'a'} {name}"


def _count(state_dict: dict[str, Tensor], pattern: str) -> int:
    return len({m.group(1) for k in state_dict if (m := re.fullmatch(pattern, k))})


def _need(state_dict: dict[str, Tensor], arch: str, *keys: str) -> list[Tensor]:
    missing = [k for k in keys if k not in state_dict or state_dict[k].ndim < 2]
    if missing:
        raise WeightsError(f"does not look like a {arch.upper()} state dict: lacks {missing}")
    return [state_dict[k] for k in keys]


def infer_guided_config(state_dict: dict[str, Tensor], architecture: str | None = None) -> tuple[str, dict[str, Any]]:
    """Architecture and constructor arguments implied by a state dict.

    Parameters
    ----------
    state_dict : dict of str to Tensor
    architecture : {"qcn", "qgcn", "ijcn"}, optional
        Expected architecture; default: detected.

    Returns
    -------
    (str, dict)

    Notes
    -----
    Not visible in the weights and assumed as in every released model:
    ``res_scale=0.1`` (QCN/QGCN); IJCN's unused ``nc[1]``, ``nc[3]`` (set
    to ``2 * nc[0]``, ``2 * nc[2]``), ``nb=4``, and ReLU when the residual
    blocks have no PReLU weights (ReLU and LeakyReLU look the same).

    Raises
    ------
    WeightsError
        Another architecture than the one expected, or none of ours.
    """
    found = detect_architecture(state_dict)
    if architecture is not None and architecture not in GUIDED_ARCHITECTURES:
        raise InputError(f"architecture must be one of {tuple(GUIDED_ARCHITECTURES)}, got {architecture!r}")
    arch = architecture or found
    if found != arch or arch not in GUIDED_ARCHITECTURES:
        what = _article(found.upper()) if found != "unknown" else "no known"
        want = _article(arch.upper()) if arch in GUIDED_ARCHITECTURES else "a QCN, QGCN or IJCN"
        keys = ", ".join(list(state_dict)[:3])
        raise WeightsError(
            f"expected {want} state dict, found {what} layout ({len(state_dict)} tensors, first keys: {keys})"
        )
    if arch == "ijcn":
        head, down = _need(state_dict, arch, "m_head.weight", "m_down1.5.weight")
        c0, c2 = int(head.shape[0]), int(down.shape[0])
        act = "P" if "m_down1.0.res.1.weight" in state_dict else "R"
        nc = [c0, 2 * c0, c2, 2 * c2]
        return arch, {"in_nc": int(head.shape[1]), "out_nc": 3, "nc": nc, "nb": 4, "act_mode": act}
    head, tail = _need(state_dict, arch, "conv_input.weight", "conv_output.weight")
    config: dict[str, Any] = {"in_channel": int(head.shape[1]), "out_channel": int(tail.shape[0])}
    if arch == "qgcn":
        (glob,) = _need(state_dict, arch, "conv_global.0.weight")
        config["in_glo_channel"] = int(glob.shape[1])
        config["n_resblocks"] = 2 * _count(state_dict, r"residual1\.(\d+)\.conv1\.weight")
    else:
        config["n_resblocks"] = _count(state_dict, r"residual\.(\d+)\.conv1\.weight")
    config.update(n_feats=int(head.shape[0]), res_scale=0.1)
    return arch, config


def _check_fit(model: nn.Module, sd: dict[str, Tensor], name: str, arch: str) -> None:
    problems = _mismatch(model, sd)
    if problems:
        parts = [f"{len(items)} {label}: {', '.join(items[:3])}{' ...' if len(items) > 3 else ''}"
                 for label, items in problems]  # fmt: skip
        raise WeightsError(f"weights {name} do not fit {arch.upper()}({model.extra_repr()}): {'; '.join(parts)}")


def load_guided_model(
    path_or_name: str | os.PathLike[str],
    *,
    architecture: str | None = None,
    device: str | torch.device | None = None,
    weights_dir: str | os.PathLike[str] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> nn.Module:
    """Build a :class:`QCN`, :class:`QGCN` or :class:`IJCN` from a state-dict file, strictly.

    Parameters
    ----------
    path_or_name : str or PathLike
        A path, or a file name looked up as in :func:`jpegbench.models.resolve_weights`.
    architecture : {"qcn", "qgcn", "ijcn"}, optional
        Refuse files of any other architecture; default: whatever the file is.
    device : str or torch.device, optional
    weights_dir : str or PathLike, optional
    max_bytes : int, default 2 GiB

    Returns
    -------
    nn.Module
        In eval mode, float32, every parameter from the file.
        ``model.architecture`` names it, ``model.checkpoint_path`` is the file,
        ``model.checkpoint_meta`` its meta (empty for the authors' files).

    Raises
    ------
    WeightsError
        Missing, too large, truncated, a pickled model or other code (see
        the module docstring for converting the QCN authors' files), NaN/Inf,
        another architecture, or keys/shapes that do not fit.
    """
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
        raise InputError(f"max_bytes must be a positive int, got {max_bytes!r}")
    target = pick_device(device)
    path = resolve_weights(path_or_name, weights_dir=weights_dir)
    if architecture is not None and architecture not in GUIDED_ARCHITECTURES:
        raise InputError(f"architecture must be one of {tuple(GUIDED_ARCHITECTURES)}, got {architecture!r}")
    return _guided_model(_read(path, max_bytes), path, architecture).to(target).eval()


def _guided_model(obj: Any, path: Path, architecture: str | None = None) -> nn.Module:
    """The model built from ``obj`` (what :func:`_read` read from ``path``), checked as in :func:`load_guided_model`."""
    saved = _saved_guided(obj, path)
    if saved is None:
        _config, raw, meta = _unwrap(obj, path)
    else:
        raw, meta = saved[2], saved[3]
    sd = _clean_state_dict(raw, path)
    try:
        if saved is None:
            arch, config = infer_guided_config(sd, architecture)
        else:
            arch, config = saved[0], saved[1]
            if architecture is not None and arch != architecture:
                raise WeightsError(f"expected {_article(architecture.upper())} checkpoint, found "
                                   f"{_article(arch.upper())} one")  # fmt: skip
        model = GUIDED_ARCHITECTURES[arch](**config)
    except WeightsError as exc:
        raise WeightsError(f"{path}: {exc}") from None
    except ConfigError as exc:
        raise WeightsError(f"{path}: the weights imply an invalid configuration ({exc})") from None
    _check_fit(model, sd, path.name, arch)
    model.load_state_dict(sd, strict=True)
    model.architecture = arch
    model.checkpoint_path = path
    model.checkpoint_meta = meta
    return model


def _saved_guided(obj: Any, path: Path) -> tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]] | None:
    """``(architecture, config, state dict, meta)`` of a ``jpegbench-guided`` checkpoint; None for other files."""
    if not isinstance(obj, dict) or obj.get("format") != GUIDED_CHECKPOINT_FORMAT:
        return None
    if obj.get("format_version") != _FORMAT_VERSION:
        raise WeightsError(f"{path} is a {GUIDED_CHECKPOINT_FORMAT} checkpoint of format_version "
                           f"{obj.get('format_version')!r}; this jpegbench reads version {_FORMAT_VERSION}")
    arch, config, sd, meta = obj.get("architecture"), obj.get("config"), obj.get("state_dict"), obj.get("meta") or {}
    if arch not in GUIDED_ARCHITECTURES or not all(isinstance(v, dict) for v in (config, sd, meta)):
        raise WeightsError(f"{path} is a malformed {GUIDED_CHECKPOINT_FORMAT} checkpoint "
                           "(architecture/config/state_dict/meta)")  # fmt: skip
    return arch, dict(config), sd, dict(meta)
