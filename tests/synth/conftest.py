"""Fixtures for the synth tests (``rng``, ``image_factory``, ``shared_dir`` come from ``tests/conftest.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def image_folder(tmp_path, image_factory):
    """Write ``n`` small PNG images to ``tmp_path / name`` and return the folder.

    Heights alternate between ``height`` and ``height + 8`` so that sizes differ.
    """
    from jpegbench.codec import write_png

    def make(n: int = 4, *, height: int = 48, width: int = 40, color: str = "gray", name: str = "src") -> Path:
        d = tmp_path / name
        d.mkdir()
        for i in range(n):
            write_png(d / f"img{i:03d}.png", image_factory(height + 8 * (i % 2), width, color=color, seed=i))
        return d

    return make


@pytest.fixture
def write_recipe(tmp_path):
    """Write a TOML recipe (text) into ``tmp_path`` and return its path (sources resolve from there)."""

    def write(text: str, name: str = "recipe.toml") -> Path:
        p = tmp_path / name
        p.write_text(text)
        return p

    return write
