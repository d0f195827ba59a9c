"""read_coefficients: jpeglib's quantized DCT coefficients and per-component tables, checked against the header and the DCT."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from jpegbench.codec import block_dct, ijg_qtable, read_coefficients, read_header
from jpegbench.errors import ImageReadError, InputError


def _jpeg(pixels, qf, **kwargs) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=qf, **kwargs)
    return buf.getvalue()


def test_colour_420_layout(tmp_path, image_factory):
    data = _jpeg(image_factory(37, 50, color="rgb"), 40)
    path = tmp_path / "a.jpg"
    path.write_bytes(data)
    got = read_coefficients(path)
    assert (got.height, got.width, got.color, got.subsampling) == (37, 50, "ycbcr", "4:2:0")
    # ceil(37 / 8) x ceil(50 / 8) luma blocks; chroma on the half-size image: ceil(19 / 8) x ceil(25 / 8).
    assert [c.shape for c in got.coefficients] == [(5, 7, 8, 8), (3, 4, 8, 8), (3, 4, 8, 8)]
    assert all(c.dtype == np.int16 for c in got.coefficients)
    assert got.sampling == ((2, 2), (1, 1), (1, 1))
    hdr = read_header(data)
    for table, comp in zip(got.qtables, hdr.components):
        assert np.array_equal(table, hdr.qtables[comp["tq"]])
    assert np.array_equal(got.qtables[2], ijg_qtable(40, chroma=True))
    same = read_coefficients(data)
    assert all(np.array_equal(a, b) for a, b in zip(same.coefficients, got.coefficients))


def test_flat_gray_block_by_hand():
    # A flat 8x8 block of value v has DC = 8 * (v - 128) and nothing else
    # (orthonormal DCT); the file stores round(DC / q).
    pixels = np.full((8, 16), 200, np.uint8)
    got = read_coefficients(_jpeg(pixels, 90))
    q = int(got.qtables[0][0, 0])
    assert got.color == "gray" and got.subsampling is None and len(got.coefficients) == 1
    assert got.coefficients[0][0, 0, 0, 0] == round(8 * 72 / q)
    ac = got.coefficients[0].reshape(-1, 64)[:, 1:]
    assert np.count_nonzero(ac) == 0


def test_natural_order_matches_block_dct(image_factory):
    # Block [u, v]: u vertical, v horizontal frequency, as block_dct.
    pixels = image_factory(16, 16)
    got = read_coefficients(_jpeg(pixels, 100))
    ref = np.round(block_dct(pixels.astype(np.float64) - 128) / np.tile(got.qtables[0], (2, 2)))
    blocks = got.coefficients[0].transpose(0, 2, 1, 3).reshape(16, 16)
    assert np.abs(blocks - ref).max() <= 1  # islow integer DCT vs exact float DCT


def test_refusals(tmp_path, image_factory):
    png = tmp_path / "x.png"
    Image.fromarray(image_factory(8, 8)).save(png)
    with pytest.raises(ImageReadError, match="not a JPEG"):
        read_coefficients(png)
    data = _jpeg(image_factory(64, 64), 50)
    with pytest.raises(ImageReadError, match="truncated"):
        read_coefficients(data[: len(data) // 2])
    with pytest.raises(InputError):
        read_coefficients(123)
