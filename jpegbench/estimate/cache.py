"""A disk cache of the fast backend's MSE curves, keyed by the JPEG file's SHA-256 and the software that computed them.

The curves are the expensive part of an evaluation (seconds per image, and
the same for every method, weight file and estimator), so a second
``evaluate`` of the same corpus, e.g. with new weights, reuses them.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from jpegbench import __version__
from jpegbench._fs import remove_stale_parts_in
from jpegbench.errors import JpegbenchError
from jpegbench.estimate.curves import MSECurves

__all__ = ["CurveCache"]

_STALE_PART_S = 3600.0  # a temporary file older than this is a killed run's


def _version(dist: str) -> str:
    from importlib import metadata  # here: importing it costs every command 10 ms of start-up

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


class CurveCache:
    """The fast backend's MSE curves of JPEG files, one ``.npz`` per file in a folder.

    An entry is keyed by the JPEG file's SHA-256 and a tag of the software
    that computes the curves (the fast backend's revision, jpegbench, Pillow,
    torch, numpy versions); a missing, unreadable or foreign entry is a miss
    (recomputed by the caller), and a folder that is not writable just means
    no cache. Entries are written by :meth:`MSECurves.save`, with the seconds
    the curves took to compute.

    Parameters
    ----------
    folder : path
        Where the entries live (``evaluate`` uses ``CORPUS/.cache/curves``);
        created on the first :meth:`put`. Temporary files that killed runs
        left there (older than an hour) are deleted on construction.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        # Read at construction, not import: tests (and a reinstall) may bump the revision.
        from jpegbench.estimate.curves import FAST_CURVES_REVISION

        self.dir = Path(folder)
        sig = "|".join(["fast", str(FAST_CURVES_REVISION), __version__,
                        *(_version(d) for d in ("pillow", "torch", "numpy"))])  # fmt: skip
        self.tag = hashlib.sha256(sig.encode()).hexdigest()[:12]
        # Several evaluate runs (other results files) may share the cache, so no lock covers it;
        # an entry is written in milliseconds, so an old temporary file is a killed run's.
        remove_stale_parts_in(self.dir, older_than_s=_STALE_PART_S)

    def _path(self, sha: str) -> Path | None:
        if not (len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)):
            return None
        return self.dir / f"{sha}-{self.tag}.npz"

    def get(self, sha: str) -> tuple[MSECurves, float] | None:
        """The curves of the file with SHA-256 ``sha`` and the seconds they took, or None on a miss."""
        import numpy as np

        path = self._path(sha)
        if path is None or not path.is_file():
            return None
        try:
            # Our own handle: np.load leaks the one it opens when the file is not a zip archive.
            with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
                curves = MSECurves.from_arrays(z)
                seconds = float(z["seconds"])
        except Exception:  # noqa: BLE001 - a damaged cache entry is recomputed, never trusted
            return None
        return curves, seconds

    def put(self, sha: str, curves: MSECurves, seconds: float) -> None:
        """Store ``curves`` of the file with SHA-256 ``sha``; silently nothing where the folder is not writable."""
        import numpy as np

        path = self._path(sha)
        if path is None:
            return
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            curves.save(path, seconds=np.float64(seconds))
        except (OSError, JpegbenchError):
            pass  # read-only corpus: evaluate without a cache
