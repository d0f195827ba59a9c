"""Fixtures shared by every test folder: a seeded rng, a small image factory, ``../shared``.

Markers (declared in ``pyproject.toml``, which runs pytest with
``--strict-markers``):

* ``shared``: the test reads ``../shared`` (data sets, reference tables); it
  takes the ``shared_dir`` fixture, which skips with a reason when the folder
  is absent.
* ``slow``: paper-scale runs, left out of a plain ``pytest`` run; select them
  with ``-m slow`` (or any ``-m`` expression that names ``slow``).

``one_torch_thread``: torch on one intra-op thread for a test (a module opts
in with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``); on
two shared cores more threads only add contention.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture
def one_torch_thread():
    """torch on one intra-op thread for the test, the previous count restored after it."""
    import torch  # here, not at the top: most test folders never load torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "slow" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="slow: paper-scale run, select it with -m slow")
    for item in items:
        if item.get_closest_marker("slow") is not None:
            item.add_marker(skip)


def synthetic_image(height: int, width: int, *, color: str = "gray", seed: int = 0) -> np.ndarray:
    """A uint8 test image with JPEG-like content: smooth gradients, one edge and mild noise.

    Parameters
    ----------
    height, width : int
    color : {"gray", "rgb"}
        ``(H, W)`` or ``(H, W, 3)``; the RGB channels are offset from each other
        so that they differ.
    seed : int
        Same seed, same image.
    """
    if color not in ("gray", "rgb"):
        raise ValueError(f"color must be 'gray' or 'rgb', got {color!r}")
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    base = 128 + 60 * np.sin(xx / 7.0 + seed) * np.cos(yy / 11.0) + 30 * (xx > width / 2)
    chans = [base + rng.normal(0, 8, base.shape) + 20 * c for c in range(3 if color == "rgb" else 1)]
    x = np.clip(np.round(np.stack(chans, axis=-1)), 0, 255).astype(np.uint8)
    return x[..., 0] if color == "gray" else x


@pytest.fixture
def rng() -> np.random.Generator:
    """A freshly seeded generator per test (no global seeding)."""
    return np.random.default_rng(12345)


@pytest.fixture
def make_image():
    """:func:`synthetic_image` as a factory: ``make_image(h, w, color="gray" | "rgb", seed=0)``."""
    return synthetic_image


@pytest.fixture
def image_factory():
    """The same factory under the name the other test folders use."""
    return synthetic_image


@pytest.fixture
def shared_dir() -> Path:
    """``../shared`` next to the repository; skips the test when it is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"needs the shared data folder at {SHARED}")
    return SHARED
