"""Degradation chains: shift semantics, ground-truth geometry, chain parameters."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jpegbench.codec import decode, encode, jpeg_roundtrip
from jpegbench.errors import InputError, QualityError, ShapeError
from jpegbench.synth import (
    CropStage,
    JpegStage,
    ResizeStage,
    ShiftStage,
    apply_chain,
    chain_params,
    double_jpeg,
    shift_image,
    stages_from_json,
    stages_to_json,
)

shifts = st.tuples(st.integers(0, 7), st.integers(0, 7))
qfs = st.integers(1, 100)


# --- shift ------------------------------------------------------------------------------------------


@given(shift=shifts)
def test_shift_removes_top_left_rows_and_columns(shift):
    x = np.arange(20 * 18, dtype=np.int64).reshape(20, 18).astype(np.uint8)
    dy, dx = shift
    y = shift_image(x, shift)
    assert y.shape == (20 - dy, 18 - dx)
    assert y[0, 0] == x[dy, dx]
    np.testing.assert_array_equal(y, x[dy:, dx:])


def test_shift_copies_and_keeps_rgb(image_factory):
    x = image_factory(16, 16, color="rgb")
    y = shift_image(x, (3, 5))
    assert y.shape == (13, 11, 3) and y.dtype == np.uint8
    y[...] = 0
    assert x.any()  # the input is untouched


@pytest.mark.parametrize("shift", [(8, 0), (0, -1), (1,), "ab", None])
def test_shift_rejects_bad_shift(shift):
    with pytest.raises(InputError):
        shift_image(np.zeros((16, 16), np.uint8), shift)


def test_shift_rejects_too_small_and_wrong_dtype():
    with pytest.raises(ShapeError):
        shift_image(np.zeros((4, 16), np.uint8), (4, 0))
    with pytest.raises(ShapeError):
        shift_image(np.zeros((16, 16), np.float32), (1, 1))


# --- chains -----------------------------------------------------------------------------------------


def test_single_jpeg_is_the_codec_roundtrip(image_factory):
    x = image_factory(40, 48)
    r = apply_chain(x, [JpegStage(37)])
    assert r.lq_bytes == encode(x, 37)
    np.testing.assert_array_equal(r.lq_pixels, jpeg_roundtrip(x, 37))
    np.testing.assert_array_equal(r.hq_pixels, x)
    assert r.params["regime"] == "single" and r.params["qf2"] == -1 and r.params["dominant_qf"] == 37


@pytest.mark.parametrize("color", ["gray", "rgb"])
def test_double_jpeg_matches_the_table3_protocol(image_factory, color):
    # Reference: the protocol written out with the codec functions directly.
    x = image_factory(48, 56, color=color, seed=3)
    first = decode(encode(x, 30))
    data = encode(first[4:, 4:], 10)
    r = double_jpeg(x, 30, 10, shift=(4, 4))
    assert r.lq_bytes == data
    np.testing.assert_array_equal(r.lq_pixels, decode(data))
    np.testing.assert_array_equal(r.hq_pixels, x[4:, 4:])
    assert r.lq_pixels.shape == r.hq_pixels.shape == x[4:, 4:].shape
    assert (r.params["height"], r.params["width"]) == (44, 52)


# image_factory returns a pure function, so sharing it across examples is safe.
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shift=shifts, qf1=qfs, qf2=qfs, top=st.integers(0, 9), left=st.integers(0, 9))
def test_ground_truth_geometry_matches_lq(image_factory, shift, qf1, qf2, top, left):
    x = image_factory(40, 36, seed=qf1)
    stages = [CropStage(top, left, 24, 20), JpegStage(qf1), ShiftStage(*shift), JpegStage(qf2)]
    r = apply_chain(x, stages)
    dy, dx = shift
    np.testing.assert_array_equal(r.hq_pixels, x[top + dy : top + 24, left + dx : left + 20])
    assert r.lq_pixels.shape == r.hq_pixels.shape
    assert decode(r.lq_bytes).shape == r.lq_pixels.shape


def test_resize_applies_to_both(image_factory):
    x = image_factory(40, 40)
    r = apply_chain(x, [JpegStage(50), ResizeStage(24, 20), JpegStage(70)])
    assert r.lq_pixels.shape == r.hq_pixels.shape == (24, 20)
    assert r.params["shift_dy"] == -1 and r.params["aligned"] is False


def test_trailing_geometry_drops_lq_bytes(image_factory):
    r = apply_chain(image_factory(24, 24), [JpegStage(50), ShiftStage(1, 2)])
    assert r.lq_bytes is None and r.lq_pixels.shape == (23, 22)
    assert r.params["aligned"] is False and (r.params["shift_dy"], r.params["shift_dx"]) == (1, 2)


def test_chain_errors(image_factory):
    x = image_factory(16, 16)
    with pytest.raises(InputError, match="at least one JpegStage"):
        apply_chain(x, [ShiftStage(1, 1)])
    with pytest.raises(InputError, match="stages\\[0\\]"):
        apply_chain(x, ["jpeg"])
    with pytest.raises(QualityError):
        JpegStage(101)
    with pytest.raises(ShapeError, match="does not fit"):
        apply_chain(x, [CropStage(0, 0, 32, 8), JpegStage(50)])


# --- chain parameters ---------------------------------------------------------------------------------


@given(qf1=qfs, qf2=qfs, shift=shifts)
def test_double_regime_and_dominant_qf(qf1, qf2, shift):
    stages = [JpegStage(qf1)] + ([ShiftStage(*shift)] if shift != (0, 0) else []) + [JpegStage(qf2)]
    p = chain_params(stages)
    aligned = shift == (0, 0)
    assert p["aligned"] is aligned
    assert (p["shift_dy"], p["shift_dx"]) == shift
    assert p["regime"] == ("simple" if aligned or qf1 > qf2 else "complex")
    assert p["dominant_qf"] == min(qf1, qf2)
    assert (p["qf1"], p["qf2"], p["qf_last"], p["n_jpeg"], p["is_double"]) == (qf1, qf2, qf2, 2, True)


@given(qf1=qfs, qf2=qfs, shift=shifts)
def test_double_jpeg_class_and_kind_agree_with_chain_params(qf1, qf2, shift):
    from jpegbench.synth import chain_kind, double_jpeg_class

    stages = [JpegStage(qf1)] + ([ShiftStage(*shift)] if shift != (0, 0) else []) + [JpegStage(qf2)]
    p = chain_params(stages)
    kind = chain_kind(p["qf2"], p["aligned"])
    cls = double_jpeg_class(p["qf1"], p["qf2"], p["aligned"])
    assert kind == ("aligned-double" if shift == (0, 0) else "nonaligned-double")
    assert cls.startswith("aligned " if shift == (0, 0) else "nonaligned ")
    # The manifest's "complex" regime is exactly the non-aligned classes with qf1 <= qf2.
    assert (p["regime"] == "complex") == (cls in ("nonaligned qf1<qf2", "nonaligned qf1=qf2"))


def test_double_jpeg_class_labels():
    from jpegbench.synth import chain_kind, double_jpeg_class

    assert chain_kind(-1, True) == "single" and double_jpeg_class(30, -1, True) == "single"
    assert double_jpeg_class(30, 10, True) == "aligned qf1>qf2"
    assert double_jpeg_class(90, 95, False) == "nonaligned qf1<qf2"
    assert double_jpeg_class(90, 95, False, split_gap=10) == "nonaligned qf1<qf2 (gap<10)"
    assert double_jpeg_class(80, 95, False, split_gap=10) == "nonaligned qf1<qf2"
    assert double_jpeg_class(50, 50, False, split_gap=10) == "nonaligned qf1=qf2"


def test_crop_offsets_count_as_grid_shifts():
    # A crop starting at (8, 16) keeps the grid; one at (4, 4) is the Table 3 shift.
    assert chain_params([JpegStage(30), CropStage(8, 16), JpegStage(50)])["aligned"] is True
    p = chain_params([JpegStage(30), CropStage(4, 4), JpegStage(50)])
    assert (p["shift_dy"], p["shift_dx"], p["regime"]) == (4, 4, "complex")
    # Two shifts add up modulo 8.
    p = chain_params([JpegStage(30), ShiftStage(5, 3), ShiftStage(3, 5), JpegStage(50)])
    assert p["aligned"] is True and p["regime"] == "simple"


def test_triple_chain():
    p = chain_params([JpegStage(60), ShiftStage(2, 2), JpegStage(20), JpegStage(40)])
    assert p["qfs"] == [60, 20, 40] and p["n_jpeg"] == 3
    assert (p["qf1"], p["qf2"], p["dominant_qf"]) == (60, 40, 20)
    assert p["regime"] == "simple"  # the non-aligned first JPEG has QF 60 > 40
    p = chain_params([JpegStage(30), ShiftStage(2, 2), JpegStage(20), JpegStage(40)])
    assert p["regime"] == "complex"


def test_stages_json_round_trip():
    stages = (JpegStage(30), ShiftStage(4, 4), CropStage(1, 2, 3, None), ResizeStage(5, 6, "area"), JpegStage(9))
    text = stages_to_json(stages)
    assert stages_from_json(text) == stages
    assert text.startswith('[{"op":"jpeg","qf":30}')
