"""The resource limits in force when jpegbench reads an image file.

Two limits guard every reader of image files (:func:`jpegbench.codec.read_image`,
:func:`jpegbench.codec.decode`, :func:`jpegbench.codec.read_header`):

============== ============================== =============================== ===========================
limit          checked                        environment variable            default
============== ============================== =============================== ===========================
pixels         on the header, before decoding ``JPEGBENCH_MAX_PIXELS``        178,956,970 (Pillow's)
file size      on ``stat``, before reading    ``JPEGBENCH_MAX_FILE_BYTES``    536,870,912 (512 MiB)
============== ============================== =============================== ===========================

Each limit in force is, first found: the reading function's own argument
(``max_pixels=``, ``max_file_bytes=``), the innermost :func:`limits` block,
the environment variable, the default. The CLI's ``--max-pixels`` is a
:func:`limits` block around the command.

TOML files (synth recipes, training configs) have a fixed limit of their own:
:data:`jpegbench._config.MAX_TOML_BYTES`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from jpegbench.errors import InputError

__all__ = [
    "DEFAULT_MAX_PIXELS", "DEFAULT_MAX_FILE_BYTES", "default_max_pixels", "default_max_file_bytes", "limits",
]  # fmt: skip

#: Pillow's ``Image.MAX_IMAGE_PIXELS``: about a 13,000 x 13,000 image.
DEFAULT_MAX_PIXELS = 178_956_970
#: 512 MiB: far above any photograph file (100 Mpixel RGB is 300 MB even uncompressed), yet affordable in memory.
DEFAULT_MAX_FILE_BYTES = 512 * 2**20

# Set only by limits(): process-wide, like jpeglib.version(). Worker processes do not inherit it;
# code that starts workers passes the values on (jpegbench.synth does).
_BLOCK: dict[str, int] = {}


def _from_env(var: str, default: int) -> int:
    env = os.environ.get(var)
    if not env:
        return default
    try:
        return max(1, int(env))
    except ValueError:
        raise InputError(f"{var} must be an integer, got {env!r}") from None


def default_max_pixels() -> int:
    """The pixel limit in force: a :func:`limits` block, else ``JPEGBENCH_MAX_PIXELS``, else Pillow's default."""
    if "max_pixels" in _BLOCK:
        return _BLOCK["max_pixels"]
    return _from_env("JPEGBENCH_MAX_PIXELS", DEFAULT_MAX_PIXELS)


def default_max_file_bytes() -> int:
    """The file size limit in force: a :func:`limits` block, else ``JPEGBENCH_MAX_FILE_BYTES``, else 512 MiB."""
    if "max_file_bytes" in _BLOCK:
        return _BLOCK["max_file_bytes"]
    return _from_env("JPEGBENCH_MAX_FILE_BYTES", DEFAULT_MAX_FILE_BYTES)


def _check_limit(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{name} must be an integer >= 1, got {value!r}")
    return value


@contextlib.contextmanager
def limits(*, max_pixels: int | None = None, max_file_bytes: int | None = None) -> Iterator[None]:
    """Within the block, image readers use these limits instead of the environment's.

    Parameters
    ----------
    max_pixels : int, optional
        Refuse images with more pixels (width x height); None keeps the limit in force.
    max_file_bytes : int, optional
        Refuse image files larger than this many bytes, before reading them; None keeps
        the limit in force.

    Examples
    --------
    >>> from jpegbench.codec import default_max_pixels, limits
    >>> with limits(max_pixels=4096):
    ...     default_max_pixels()
    4096
    """
    new = {}
    if max_pixels is not None:
        new["max_pixels"] = _check_limit("max_pixels", max_pixels)
    if max_file_bytes is not None:
        new["max_file_bytes"] = _check_limit("max_file_bytes", max_file_bytes)
    saved = dict(_BLOCK)
    _BLOCK.update(new)
    try:
        yield
    finally:
        _BLOCK.clear()
        _BLOCK.update(saved)
