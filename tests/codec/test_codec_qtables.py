"""IJG quantization tables and QF estimation from a file's tables.

Reference: libjpeg ``jcparam.c`` (``jpeg_quality_scaling``, ``jpeg_add_quant_table``)
and ITU-T T.81 Annex K tables K.1/K.2.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jpegbench.codec import IJG_CHROMA, IJG_LUMA, encode, ijg_qtable, qf_from_qtables, read_header
from jpegbench.errors import InputError, QualityError

qfs = st.integers(1, 100)


@given(qf=qfs, chroma=st.booleans())
def test_tables_are_baseline_integers(qf, chroma):
    t = ijg_qtable(qf, chroma=chroma)
    assert t.shape == (8, 8) and t.dtype.kind == "i"
    assert t.min() >= 1 and t.max() <= 255


@given(a=qfs, b=qfs, chroma=st.booleans())
def test_tables_are_non_increasing_in_qf(a, b, chroma):
    lo, hi = sorted((a, b))
    assert np.all(ijg_qtable(hi, chroma=chroma) <= ijg_qtable(lo, chroma=chroma))


def test_known_values():
    # QF 50 is the Annex K table itself; QF 100 is all ones; QF 1 saturates at 255
    # with force_baseline and reaches base * 50 without it.
    assert np.array_equal(ijg_qtable(50), IJG_LUMA)
    assert np.array_equal(ijg_qtable(50, chroma=True), IJG_CHROMA)
    assert np.all(ijg_qtable(100) == 1)
    assert np.all(ijg_qtable(1) == 255)
    assert ijg_qtable(1, force_baseline=False)[0, 0] == 16 * 50
    # QF 75: scale 50 -> (16 * 50 + 50) // 100 = 8.
    assert ijg_qtable(75)[0, 0] == 8


@pytest.mark.parametrize("backend", ["pillow", "jpeglib"])
@pytest.mark.parametrize("color", ["gray", "rgb"])
def test_qf_read_back_exactly_for_every_qf(make_image, backend, color):
    x = make_image(16, 24, color=color)
    wrong = []
    for qf in range(1, 101):
        est = qf_from_qtables(read_header(encode(x, qf, backend=backend)).component_qtables())
        if (est.qf, est.kind, est.ijg, est.confidence) != (qf, "exact", True, 1.0):
            wrong.append((qf, est))
    assert not wrong


def test_non_ijg_tables_are_approximate():
    # 10 % coarser than IJG QF 80 everywhere: no exact match, nearest QF about 80.
    tables = [np.round(ijg_qtable(80) * 1.1), np.round(ijg_qtable(80, chroma=True) * 1.1)]
    est = qf_from_qtables(tables)
    assert est.kind == "approximate" and not est.ijg
    assert abs(est.qf - 80) <= 3
    assert 0 < est.confidence < 1 and est.distance > 0


def test_luma_only_tables_are_enough():
    assert qf_from_qtables([ijg_qtable(37)]).qf == 37


@pytest.mark.parametrize("qf", [0, 101, -5, 50.5, True, "50", None])
def test_bad_qf_raises_quality_error(qf):
    with pytest.raises(QualityError, match=r"1\.\.100"):
        ijg_qtable(qf)


@pytest.mark.parametrize(("tables", "match"), [([], "at least one"), ([np.ones((4, 4))], r"\(8, 8\)"),
                                               ([ijg_qtable(50), np.ones(64)], r"\(8, 8\)")])
def test_bad_tables_raise(tables, match):
    with pytest.raises(InputError, match=match):
        qf_from_qtables(tables)


@settings(max_examples=20, deadline=None)
@given(qf=qfs)
def test_estimate_inverts_ijg_qtable(qf):
    est = qf_from_qtables([ijg_qtable(qf), ijg_qtable(qf, chroma=True)])
    # Several low QFs share saturated tables; the estimate is the smallest such QF.
    assert np.array_equal(ijg_qtable(est.qf), ijg_qtable(qf)) and est.kind == "exact"
