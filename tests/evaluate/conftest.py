"""Fixtures for the evaluation tests: a tiny corpus synthesized with jpegbench.synth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def make_image(height: int, width: int, *, seed: int = 0) -> np.ndarray:
    """A textured uint8 gray image: smooth gradients, an edge and mild noise (JPEG-like content)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    base = 128 + 60 * np.sin(xx / 7.0 + seed) * np.cos(yy / 11.0) + 30 * (xx > width / 2)
    return np.clip(np.round(base + rng.normal(0, 8, base.shape)), 0, 255).astype(np.uint8)


TINY_RECIPE = """name = "tiny"
seed = 0
color = "gray"

[source]
path = "sources"
glob = "*.png"

[[stages]]
op = "jpeg"
qf = [10, 50]

[[stages]]
op = "shift"
shift = [4, 4]

[[stages]]
op = "jpeg"
qf = [10, 50]
"""


def write_corpus(root: Path, *, n_images: int = 2, size: int = 72) -> Path:
    """A tiny corpus (n_images x 4 non-aligned double JPEG samples) made with jpegbench.synth."""
    from jpegbench.codec import write_png
    from jpegbench.synth import load_recipe, synthesize

    (root / "sources").mkdir(parents=True)
    for i in range(n_images):
        write_png(root / "sources" / f"img{i}.png", make_image(size, size, seed=i))
    (root / "tiny.toml").write_text(TINY_RECIPE)
    synthesize(load_recipe(root / "tiny.toml"), root / "corpus", progress=False)
    return root / "corpus"


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    """Session-wide tiny corpus; tests must not modify it."""
    return write_corpus(tmp_path_factory.mktemp("tiny"))
