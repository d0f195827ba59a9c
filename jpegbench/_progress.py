"""Progress bars on stderr under one policy: shown on a terminal, hidden in redirected output unless asked for.

Every long loop of the package (``synth``, ``estimate``, ``restore``) makes
its bar with :func:`progress_bar`, and :func:`show_progress` decides,
first found:

1. ``progress=False`` (the CLI's ``--quiet``): no bar;
2. ``JPEGBENCH_PROGRESS=1``: a bar even in redirected output (a log file,
   CI); ``JPEGBENCH_PROGRESS=0``: no bar even on a terminal;
3. otherwise a bar exactly when stderr is a terminal, so redirected output
   never fills with carriage-return frames.

Other values of ``JPEGBENCH_PROGRESS`` count as unset.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import IO, Any

__all__ = ["ENV_VAR", "show_progress", "progress_bar"]

#: The environment variable that forces bars on (``1``) or off (``0``).
ENV_VAR = "JPEGBENCH_PROGRESS"


def show_progress(progress: bool = True, *, stream: IO[str] | None = None) -> bool:
    """Whether a bar is drawn: the policy of the module docstring (``stream`` defaults to the current stderr)."""
    if not progress:
        return False
    env = os.environ.get(ENV_VAR, "").strip()
    if env in ("0", "1"):
        return env == "1"
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (OSError, ValueError):  # a closed or detached stream
        return False


def progress_bar(
    iterable: Iterable[Any] | None = None,
    *,
    progress: bool = True,
    desc: str | None = None,
    total: int | None = None,
    initial: int = 0,
    unit: str = "it",
    leave: bool = True,
) -> Any:
    """A tqdm bar on stderr, disabled unless :func:`show_progress` says so; iterate it or ``update`` it.

    Parameters
    ----------
    iterable : optional, the items to wrap (``total`` then defaults to its length)
    progress : bool
        The caller's ``progress=`` argument; False never draws.
    desc, total, initial, unit, leave
        As :class:`tqdm.tqdm`.
    """
    from tqdm import tqdm

    stream = sys.stderr  # looked up now: tests and notebooks replace it
    return tqdm(iterable, desc=desc, total=total, initial=initial, unit=unit, leave=leave, file=stream,
                disable=not show_progress(progress, stream=stream), dynamic_ncols=True)
