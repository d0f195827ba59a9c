"""The one place that turns a user's device choice into a checked ``torch.device``.

Inference, weight loading, methods, training and the fast MSE curves all call
:func:`pick_device`, so a device string means the same, and fails the same
way, everywhere.
"""

from __future__ import annotations

import torch

from jpegbench.errors import InputError

__all__ = ["pick_device"]


def pick_device(device: str | torch.device | None = None, *, default: str = "auto",
                kinds: tuple[str, ...] = ("cpu", "cuda", "mps")) -> torch.device:
    """The device to run on.

    Parameters
    ----------
    device : str or torch.device, optional
        ``None``: the ``default``. Otherwise checked: an unavailable CUDA
        (or CUDA index, or MPS) is an error, not a silent fallback.
    default : {"auto", "cpu"}
        What ``None`` means: ``"auto"`` is CUDA if available, else CPU (the
        networks); ``"cpu"`` is for work whose CPU path is the fast one (the
        MSE curves' C kernel).
    kinds : tuple of str
        The device types the caller can run on.

    Returns
    -------
    torch.device

    Raises
    ------
    InputError
        Not a device, or a device this machine does not have.
    """
    if device is None:
        return torch.device("cuda" if default == "auto" and torch.cuda.is_available() else "cpu")
    if not isinstance(device, (str, torch.device)):
        raise InputError(f"device must be a str or torch.device, got {type(device).__name__}")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise InputError(f"device must be like 'cpu', 'cuda' or 'cuda:1', got {device!r}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"device {str(dev)!r} requested but CUDA is not available (torch {torch.__version__})")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise InputError(f"device {str(dev)!r} requested but only {count} CUDA device(s) exist")
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise InputError(f"device {str(dev)!r} requested but MPS is not available")
    elif dev.type != "cpu":
        raise InputError(f"device must be {', '.join(kinds[:-1])} or {kinds[-1]}, got {str(dev)!r}")
    if dev.type not in kinds:
        raise InputError(f"device must be {', '.join(kinds[:-1])} or {kinds[-1]}, got {str(dev)!r}")
    return dev
