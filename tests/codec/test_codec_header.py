"""read_header: frame type, sampling factors, tables, orientation, malformed input."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from jpegbench.codec import encode, ijg_qtable, read_header
from jpegbench.errors import ImageReadError


@pytest.mark.parametrize("color", ["gray", "rgb"])
def test_baseline_header(make_image, color):
    x = make_image(21, 35, color=color)
    hdr = read_header(encode(x, 60))
    assert (hdr.width, hdr.height, hdr.precision) == (35, 21, 8)
    assert (hdr.mode, hdr.coding, hdr.progressive) == ("baseline", "huffman", False)
    assert hdr.color == ("gray" if color == "gray" else "ycbcr")
    assert np.array_equal(hdr.component_qtables()[0], ijg_qtable(60))  # natural order, not zig-zag
    if color == "rgb":
        assert np.array_equal(hdr.component_qtables()[1], ijg_qtable(60, chroma=True))
        assert len(hdr.component_qtables()) == 2  # Cb and Cr share table 1


@pytest.mark.parametrize("color", ["gray", "rgb"])
def test_progressive_header(make_image, color):
    hdr = read_header(encode(make_image(32, 32, color=color), 80, progressive=True))
    assert hdr.mode == "progressive" and hdr.progressive
    assert np.array_equal(hdr.component_qtables()[0], ijg_qtable(80))


@pytest.mark.parametrize("backend", ["pillow", "jpeglib"])
@pytest.mark.parametrize("subsampling", ["4:4:4", "4:2:2", "4:2:0"])
def test_subsampling_is_detected(make_image, backend, subsampling):
    hdr = read_header(encode(make_image(32, 32, color="rgb"), 75, backend=backend, subsampling=subsampling))
    assert hdr.subsampling == subsampling


def test_gray_has_no_subsampling(make_image):
    assert read_header(encode(make_image(16, 16), 75)).subsampling is None


def test_path_and_bytes_agree(make_image, tmp_path):
    data = encode(make_image(16, 16), 75)
    (tmp_path / "a.jpg").write_bytes(data)
    assert read_header(tmp_path / "a.jpg").qtables.keys() == read_header(data).qtables.keys()


def test_exif_orientation_is_read(make_image):
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    Image.fromarray(make_image(16, 24, color="rgb")).save(buf, format="JPEG", exif=exif.tobytes())
    assert read_header(buf.getvalue()).orientation == 6
    assert read_header(encode(make_image(16, 16), 75)).orientation is None


def test_cmyk_is_reported(tmp_path):
    buf = io.BytesIO()
    Image.new("CMYK", (16, 16), (10, 20, 30, 40)).save(buf, format="JPEG")
    hdr = read_header(buf.getvalue())
    assert len(hdr.components) == 4 and hdr.color in ("cmyk", "ycck")


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "empty"),
        (b"GIF89a....", "not a JPEG"),
        (b"\xff\xd8", "truncated"),
        (b"\xff\xd8\xff\xd9", "ends before any scan"),
        (b"\xff\xd8\xff\xdb\x00\x43\x00", "truncated or corrupt segment"),
    ],
)
def test_malformed_bytes_raise(data, match):
    with pytest.raises(ImageReadError, match=match):
        read_header(data)


def test_truncated_inside_the_header_raises(make_image):
    data = encode(make_image(16, 16), 75)
    sos = data.find(b"\xff\xda")
    with pytest.raises(ImageReadError):
        read_header(data[: sos - 10])


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ImageReadError, match="no such file"):
        read_header(tmp_path / "missing.jpg")
    with pytest.raises(ImageReadError, match="is a directory"):
        read_header(tmp_path)
