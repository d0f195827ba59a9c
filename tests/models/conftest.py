"""Fixtures for the models tests: seeded tiny FBCNNs.

Every model here is a few thousand parameters so the whole folder runs in
seconds on one CPU thread; the default width is only instantiated on the
``meta`` device (shapes, no memory, no forward).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from jpegbench.models import FBCNN


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    # The CI box has 2 shared cores; more threads only add contention here.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_fbcnn(*, in_nc: int = 1, nb: int = 1, seed: int = 0, mid_output: bool = True) -> FBCNN:
    """A seeded tiny FBCNN (nc=(8, 16, 16, 16)).

    ``mid_output`` shifts the tail bias by 0.5 so the random network's output
    lies mostly inside [0, 1]: comparisons after clamping stay meaningful.
    """
    with torch.random.fork_rng(devices=[]):  # no global seeding
        torch.manual_seed(seed)
        model = FBCNN(in_nc=in_nc, nc=(8, 16, 16, 16), nb=nb)
    if mid_output:
        with torch.no_grad():
            model.m_tail.bias.add_(0.5)
    return model.eval()


@pytest.fixture
def model_factory():
    """:func:`tiny_fbcnn` as a factory (``rng`` and ``image_factory`` come from tests/conftest.py)."""
    return tiny_fbcnn



def make_image(height: int, width: int, *, color: str = "gray", seed: int = 0) -> np.ndarray:
    """A textured uint8 image: smooth gradients, an edge and mild noise.

    Same content as ``synthetic_image`` in tests/conftest.py (not importable
    from here: the tests folder is not a package); test_train.py imports it.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    base = 128 + 60 * np.sin(xx / 7.0 + seed) * np.cos(yy / 11.0) + 30 * (xx > width / 2)
    chans = [base + rng.normal(0, 8, base.shape) + 20 * c for c in range(3 if color == "rgb" else 1)]
    x = np.clip(np.round(np.stack(chans, axis=-1)), 0, 255).astype(np.uint8)
    return x[..., 0] if color == "gray" else x
