"""encode / decode / jpeg_roundtrip: argument checks, backends, re-encoding."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jpegbench.codec import (
    BACKENDS,
    decode,
    encode,
    encoder_info,
    jpeg_roundtrip,
    qf_from_qtables,
    read_header,
)
from jpegbench.errors import CodecError, ImageReadError, InputError, QualityError, ShapeError
from jpegbench.metrics import psnr

# -- bad arguments ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("qf", "match"),
    [(0, r"in 1\.\.100, got 0"), (101, r"in 1\.\.100, got 101"), (50.5, r"integer in 1\.\.100, got 50\.5 \(float\)"),
     (True, r"integer in 1\.\.100, got True \(bool\)"), ("75", r"integer in 1\.\.100")],
)
@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_qf(make_image, qf, match, backend):
    with pytest.raises(QualityError, match=match):
        encode(make_image(16, 16), qf, backend=backend)


def test_numpy_integer_qf_is_accepted(make_image):
    x = make_image(16, 16)
    assert encode(x, np.int64(60)) == encode(x, 60)


@pytest.mark.parametrize(
    ("pixels", "match"),
    [
        (np.zeros((8, 8), np.float64), "dtype uint8, got float64"),
        (np.zeros((8, 8), np.uint16), "dtype uint8, got uint16"),
        (np.zeros((8, 8, 4), np.uint8), r"shape \(H, W\) or \(H, W, 3\), got \(8, 8, 4\)"),
        (np.zeros((2, 8, 8, 3), np.uint8), r"shape \(H, W\) or \(H, W, 3\)"),
        (np.zeros((0, 0), np.uint8), "at least 1x1 pixels, got 0x0"),
        (np.zeros((0, 5, 3), np.uint8), "at least 1x1 pixels, got 0x5"),
        ([[0, 1], [2, 3]], "numpy uint8 array"),
    ],
)
def test_bad_pixels(pixels, match):
    with pytest.raises(ShapeError, match=match):
        encode(pixels, 75)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"backend": "opencv"}, "backend must be one of"),
        ({"backend": "pillow", "version": "9e"}, "one libjpeg"),
        ({"backend": "jpeglib", "version": "10z"}, "jpeglib version must be one of"),
        ({"subsampling": "4:1:1"}, "subsampling must be one of"),
        ({"dct_method": "fast"}, "dct_method must be one of"),
        ({"dct_method": "float"}, "only supports dct_method='islow'"),
        ({"backend": "jpeglib", "progressive": True}, "only supported by the pillow backend"),
    ],
)
def test_bad_options(make_image, kwargs, match):
    with pytest.raises(InputError, match=match):
        encode(make_image(16, 16, color="rgb"), 75, **kwargs)


def test_decode_rejects_non_jpeg():
    with pytest.raises(InputError, match="bytes"):
        decode("not bytes")  # type: ignore[arg-type]
    with pytest.raises(ImageReadError, match="not a JPEG"):
        decode(b"\x89PNG\r\n\x1a\n....")
    with pytest.raises(ImageReadError, match="empty"):
        decode(b"")


@pytest.mark.parametrize("backend", BACKENDS)
def test_decode_truncated_scan_raises(backend, rng):
    data = encode(rng.integers(0, 256, (64, 64), dtype=np.uint8), 90, backend=backend)
    with pytest.raises(ImageReadError):
        decode(data[: len(data) // 2], backend=backend)


def test_errors_subclass_builtins():
    assert issubclass(QualityError, ValueError) and issubclass(ShapeError, ValueError)
    assert issubclass(ImageReadError, OSError) and issubclass(CodecError, RuntimeError)


# -- shapes, dtypes, backends -----------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("color", "shape"), [("gray", (23, 37)), ("rgb", (23, 37, 3))])
def test_roundtrip_shape_and_dtype(make_image, backend, color, shape):
    x = make_image(*shape[:2], color=color)
    y = jpeg_roundtrip(x, 75, backend=backend)
    assert y.shape == shape and y.dtype == np.uint8
    assert psnr(x, y) > 25


def test_roundtrip_does_not_modify_input(make_image):
    x = make_image(16, 16, color="rgb")
    before = x.copy()
    jpeg_roundtrip(x, 10)
    assert np.array_equal(x, before)


@pytest.mark.parametrize("color", ["gray", "rgb"])
@pytest.mark.parametrize("qf", [5, 23, 50, 95])
def test_jpeglib_turbo_equals_pillow(make_image, color, qf):
    # Both wrap libjpeg-turbo with IJG baseline tables and islow DCT: identical files
    # decode to identical pixels (QF < 24 checks the 8-bit table clipping).
    x = make_image(40, 56, color=color, seed=qf)
    assert np.array_equal(jpeg_roundtrip(x, qf), jpeg_roundtrip(x, qf, backend="jpeglib"))


@pytest.mark.parametrize("version", ["6b", "9e", "mozjpeg403"])
def test_jpeglib_versions_write_ijg_baseline_tables(make_image, version):
    # Explicit 8-bit IJG tables for every libjpeg (jpeglib's own quality path would
    # write 16-bit tables below QF 24, and mozjpeg would scale its own base tables).
    data = encode(make_image(24, 24, color="rgb"), 10, backend="jpeglib", version=version)
    hdr = read_header(data)
    assert hdr.precision == 8 and hdr.subsampling == "4:2:0"
    assert hdr.mode == ("progressive" if version.startswith("mozjpeg") else "baseline")  # mozjpeg's default
    assert qf_from_qtables(hdr.component_qtables()).kind == "exact"
    assert decode(data, backend="jpeglib", version=version).shape == (24, 24, 3)


def test_encoder_info_names_the_library():
    info = encoder_info()
    assert info.backend == "pillow" and "libjpeg" in info.encoder
    j = encoder_info("jpeglib", "6b")
    assert j.as_dict() == {"backend": "jpeglib", "encoder": "libjpeg 6b", "encoder_version": j.encoder_version}


# -- re-encoding is nearly idempotent ---------------------------------------------------
#
# Measured (pillow, 25 synthetic images of 16..96 px, every QF): the PSNR between
# decode(encode(x, q)) and its re-encode at q is >= 45.6 dB (gray) and >= 44.2 dB
# (RGB, where 4:2:0 chroma is resampled again) for q >= 20; below 20 it drops to
# about 37 dB (coarse tables with clipping to 0..255). The bound below keeps a
# margin of 4 dB over the measured minimum.


# make_image is a pure function, so sharing it across examples is safe.
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 2**16),
    qf=st.integers(20, 100),
    color=st.sampled_from(["gray", "rgb"]),
    backend=st.sampled_from(BACKENDS),
    h=st.integers(16, 72),
    w=st.integers(16, 72),
)
def test_reencoding_at_the_same_qf_is_near_idempotent(make_image, seed, qf, color, backend, h, w):
    y = jpeg_roundtrip(make_image(h, w, color=color, seed=seed), qf, backend=backend)
    z = jpeg_roundtrip(y, qf, backend=backend)
    assert psnr(y, z) >= 40.0
