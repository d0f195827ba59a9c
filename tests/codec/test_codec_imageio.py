"""read_image's documented conversions and refusals; list_images; atomic writes."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from jpegbench.codec import encode, list_images, png_bytes, read_image, write_png
from jpegbench.errors import ImageReadError, ImageTooLargeError, InputError, UnsupportedImageError


def _save(tmp_path, img: Image.Image, name: str) -> str:
    p = tmp_path / name
    img.save(p)
    return p


# -- documented conversions -------------------------------------------------------------


@pytest.mark.parametrize("color", ["gray", "rgb"])
def test_png_round_trip_is_exact(tmp_path, make_image, color):
    x = make_image(13, 17, color=color)
    write_png(tmp_path / "x.png", x)
    y = read_image(tmp_path / "x.png")
    assert y.dtype == np.uint8 and np.array_equal(x, y)


def test_rgba_drops_alpha_without_compositing(tmp_path, rng):
    rgba = rng.integers(0, 256, (8, 9, 4), dtype=np.uint8)
    got = read_image(_save(tmp_path, Image.fromarray(rgba, "RGBA"), "a.png"))
    assert np.array_equal(got, rgba[..., :3])


def test_la_keeps_the_gray_channel(tmp_path, rng):
    la = rng.integers(0, 256, (8, 9, 2), dtype=np.uint8)
    got = read_image(_save(tmp_path, Image.fromarray(la, "LA"), "la.png"))
    assert got.shape == (8, 9) and np.array_equal(got, la[..., 0])


def test_palette_expands_to_rgb(tmp_path, make_image):
    img = Image.fromarray(make_image(12, 12, color="rgb")).quantize(16)
    assert img.mode == "P"
    got = read_image(_save(tmp_path, img, "p.png"))
    assert got.shape == (12, 12, 3) and np.array_equal(got, np.asarray(img.convert("RGB")))


def test_gray_palette_becomes_gray(tmp_path, make_image):
    img = Image.fromarray(make_image(12, 12)).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    rgb = np.asarray(img.convert("RGB"))
    assert np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2])
    got = read_image(_save(tmp_path, img, "pg.png"))
    assert got.shape == (12, 12) and np.array_equal(got, rgb[..., 0])


def test_16_bit_is_scaled_by_257(tmp_path):
    a = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16).astype(np.uint16)
    p = _save(tmp_path, Image.fromarray(a), "a16.png")
    with Image.open(p) as img:
        assert img.mode == "I;16"
    assert np.array_equal(read_image(p), np.round(a / 257.0).astype(np.uint8))


def test_bilevel_becomes_0_and_255(tmp_path):
    bits = np.eye(16, dtype=bool)
    got = read_image(_save(tmp_path, Image.fromarray(bits), "b.png"))
    assert got.dtype == np.uint8 and np.array_equal(got, np.where(bits, 255, 0))


def test_jpeg_is_decoded_by_the_codec(tmp_path, make_image):
    data = encode(make_image(16, 24, color="rgb"), 80)
    (tmp_path / "a.jpg").write_bytes(data)
    assert read_image(tmp_path / "a.jpg").shape == (16, 24, 3)


def test_color_argument(tmp_path, make_image):
    write_png(tmp_path / "c.png", make_image(8, 8, color="rgb"))
    write_png(tmp_path / "g.png", make_image(8, 8))
    assert read_image(tmp_path / "c.png", color="gray").shape == (8, 8)
    g3 = read_image(tmp_path / "g.png", color="rgb")
    assert g3.shape == (8, 8, 3) and np.array_equal(g3[..., 0], g3[..., 2])
    with pytest.raises(InputError, match="color must be"):
        read_image(tmp_path / "g.png", color="cmyk")


# -- refusals ---------------------------------------------------------------------------


def test_cmyk_jpeg_is_unsupported(tmp_path):
    p = _save(tmp_path, Image.new("CMYK", (16, 16), (10, 20, 30, 40)), "cmyk.jpg")
    with pytest.raises(UnsupportedImageError, match="CMYK"):
        read_image(p)


def test_unsupported_mode_is_refused(tmp_path):
    p = _save(tmp_path, Image.new("F", (8, 8), 0.5), "f.tif")
    with pytest.raises(UnsupportedImageError, match="mode F"):
        read_image(p)


def test_truncated_jpeg(tmp_path, rng):
    data = encode(rng.integers(0, 256, (64, 64), dtype=np.uint8), 90)
    (tmp_path / "t.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="t.jpg"):
        read_image(tmp_path / "t.jpg")


def test_truncated_png(tmp_path, make_image):
    data = png_bytes(make_image(64, 64, color="rgb"))
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="t.png"):
        read_image(tmp_path / "t.png")


@pytest.mark.parametrize(("content", "match"), [(b"hello, world\n", "not an image"), (b"", "empty file")])
def test_not_an_image(tmp_path, content, match):
    (tmp_path / "x.png").write_bytes(content)
    with pytest.raises(ImageReadError, match=match):
        read_image(tmp_path / "x.png")


def test_missing_path_and_directory(tmp_path):
    with pytest.raises(ImageReadError, match="no such file"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(ImageReadError, match="is a directory"):
        read_image(tmp_path)


@pytest.mark.parametrize("suffix", ["png", "jpg"])
def test_pixel_limit_is_checked_before_decoding(tmp_path, make_image, suffix):
    p = tmp_path / f"big.{suffix}"
    x = make_image(40, 50)
    p.write_bytes(png_bytes(x) if suffix == "png" else encode(x, 90))
    with pytest.raises(ImageTooLargeError, match="2000 pixels is over the limit of 1999"):
        read_image(p, max_pixels=1999)
    assert read_image(p, max_pixels=2000).shape == (40, 50)


def test_pixel_limit_from_environment(tmp_path, make_image, monkeypatch):
    write_png(tmp_path / "a.png", make_image(10, 10))
    monkeypatch.setenv("JPEGBENCH_MAX_PIXELS", "99")
    with pytest.raises(ImageTooLargeError, match="JPEGBENCH_MAX_PIXELS"):
        read_image(tmp_path / "a.png")
    monkeypatch.setenv("JPEGBENCH_MAX_PIXELS", "many")
    with pytest.raises(InputError, match="JPEGBENCH_MAX_PIXELS must be an integer"):
        read_image(tmp_path / "a.png")


def test_min_size(tmp_path, make_image):
    write_png(tmp_path / "a.png", make_image(4, 10))
    with pytest.raises(ImageReadError, match="smaller than the minimum 8x8"):
        read_image(tmp_path / "a.png", min_size=8)


# -- listing and writing ----------------------------------------------------------------


def test_list_images(tmp_path, make_image):
    for name in ("b.png", "a.JPG", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in list_images(tmp_path)] == ["a.JPG", "b.png"]
    with pytest.raises(ImageReadError, match="no such file or directory"):
        list_images(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageReadError, match="contains no images"):
        list_images(tmp_path / "empty")


def test_write_png_leaves_no_temporary_file(tmp_path, make_image):
    write_png(tmp_path / "a.png", make_image(8, 8))
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]
    assert png_bytes(make_image(8, 8)) == (tmp_path / "a.png").read_bytes()  # deterministic


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_image_from_bytes_is_read_image_on_the_same_bytes(tmp_path, make_image, suffix):
    from jpegbench.codec import image_from_bytes

    x = make_image(40, 48, color="rgb")
    p = tmp_path / f"a{suffix}"
    p.write_bytes(png_bytes(x) if suffix == ".png" else encode(x, 70))
    for color in ("keep", "gray", "rgb"):
        np.testing.assert_array_equal(image_from_bytes(p.read_bytes(), color=color), read_image(p, color=color))
    with pytest.raises(ImageReadError, match=r"^src\.png: not an image file"):
        image_from_bytes(b"not an image", name="src.png")
    with pytest.raises(ImageTooLargeError, match=r"^<bytes>: 48x40"):
        image_from_bytes(p.read_bytes(), max_pixels=100)
