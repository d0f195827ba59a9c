"""The test-set leakage guard: LIVE1 and Classic5 images are never training data.

A source folder named like LIVE1 or Classic5, or a file whose name, bytes
or pixels equal those of an image in ``shared/data/LIVE1_*`` or
``shared/data/Classic5`` (when that folder exists, found through
``$JPEGBENCH_SHARED_DIR`` or next to the repository), is refused.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from jpegbench._fs import sha256_file
from jpegbench.codec import list_images, read_image
from jpegbench.errors import ConfigError, InputError

__all__ = ["check_not_test_data"]

_TEST_SET_NAMES = ("live1", "classic5")
_TEST_SET_DIRS = ("LIVE1_gray", "LIVE1_color", "Classic5")


def _shared_data_dir() -> Path | None:
    env = os.environ.get("JPEGBENCH_SHARED_DIR")
    candidates = [Path(env) / "data"] if env else []
    # ../shared next to the repository (this file is jpegbench/models/training/guard.py).
    candidates.append(Path(__file__).resolve().parents[4] / "shared" / "data")
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
