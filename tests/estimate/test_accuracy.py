"""The synthetic accuracy grid: chain specs, degradation, evaluation rows and the per-regime table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jpegbench.codec import jpeg_roundtrip
from jpegbench.errors import InputError, QualityError
from jpegbench.estimate.accuracy import (
    DEFAULT_QF_GRID,
    REGIMES,
    ChainSpec,
    accuracy_table,
    degrade,
    evaluate,
    grid_specs,
)


def test_chain_spec_truth():
    s = ChainSpec(30)
    assert (s.double, s.dominant_qf, s.last_qf, s.kind, s.regime) == (False, 30, 30, "single", "single")
    s = ChainSpec(20, 80)
    assert (s.dominant_qf, s.last_qf, s.kind, s.regime) == (20, 80, "aligned-double", "aligned qf1<qf2")
    s = ChainSpec(90, 40, (3, 1))
    assert (s.dominant_qf, s.last_qf, s.kind, s.regime) == (40, 40, "nonaligned-double", "nonaligned qf1>qf2")
    assert ChainSpec(90, 95, (1, 1)).regime == "nonaligned qf1<qf2 (gap<10)"
    assert ChainSpec(50, 50, (4, 4)).regime == "nonaligned qf1=qf2"
    with pytest.raises(QualityError):
        ChainSpec(0)
    with pytest.raises(InputError):
        ChainSpec(50, -1, (1, 1))
    with pytest.raises(InputError):
        ChainSpec(50, 60, (8, 0))


def test_grid_specs_cover_the_grid():
    specs = grid_specs(rng=1)
    n = len(DEFAULT_QF_GRID)
    assert len(specs) == n + n * (n - 1) + n * n
    assert {s.regime for s in specs} <= set(REGIMES)
    nonaligned = [s for s in specs if s.kind == "nonaligned-double"]
    assert len(nonaligned) == n * n and all(s.shift != (0, 0) for s in nonaligned)
    assert grid_specs(rng=1) == specs  # seeded


def test_degrade_applies_the_manifest_shift(make_image):
    x = make_image(40, 48)
    y = degrade(x, ChainSpec(30, 70, (3, 5)))
    assert y.shape == (37, 43)
    want = jpeg_roundtrip(np.ascontiguousarray(jpeg_roundtrip(x, 30)[3:, 5:]), 70)
    assert np.array_equal(y, want)
    assert np.array_equal(degrade(x, ChainSpec(30)), jpeg_roundtrip(x, 30))


def test_evaluate_and_table(camera):
    images = [camera[:96, :96], camera[200:296, 200:296]]
    specs = [ChainSpec(40), ChainSpec(20, 80, (2, 3))]
    df = evaluate(images, specs, names=["a", "b"], qfs=range(1, 101))
    assert len(df) == 4 and set(df["estimator"]) == {"robust", "paper"}
    assert {"true_dominant_qf", "qf_dominant", "dominant_ok", "shift_ok", "verdict_ok", "regime"} <= set(df.columns)
    table = accuracy_table(df)
    assert table.index.names == ["estimator", "regime"]
    assert table.loc[("robust", "single"), "n"] == 1
    assert np.isnan(table.loc[("robust", "single"), "shift_correct"])
    with pytest.raises(InputError):
        evaluate(images, specs[:1])


def test_accuracy_table_arithmetic():
    rows = []
    for i in range(20):
        ok = i < 19
        rows.append({"estimator": "robust", "regime": "nonaligned qf1<qf2", "dominant_ok": ok, "last_ok": True,
                     "shift_ok": i < 18, "verdict_ok": True, "qf_dominant": 20 if ok else 50,
                     "true_dominant_qf": 20})  # fmt: skip
    for i in range(4):
        rows.append({"estimator": "robust", "regime": "nonaligned qf1=qf2", "dominant_ok": True, "last_ok": True,
                     "shift_ok": False, "verdict_ok": False, "qf_dominant": 50, "true_dominant_qf": 50})  # fmt: skip
    for i in range(10):  # 90 % within 2: below the 95 % target
        rows.append({"estimator": "robust", "regime": "single", "dominant_ok": i < 9, "last_ok": True,
                     "shift_ok": False, "verdict_ok": True, "qf_dominant": 40, "true_dominant_qf": 40})  # fmt: skip
    for i in range(20):  # 95 % within 2 and 95 % correct shifts: meets it
        rows.append({"estimator": "paper", "regime": "nonaligned qf1<qf2", "dominant_ok": i > 0, "last_ok": True,
                     "shift_ok": i > 0, "verdict_ok": True, "qf_dominant": 20, "true_dominant_qf": 20})  # fmt: skip
    t = accuracy_table(pd.DataFrame(rows))
    row = t.loc[("robust", "nonaligned qf1<qf2")]
    assert row["n"] == 20 and row["dominant_within_2"] == 95.0 and row["shift_correct"] == 90.0
    # dominant QFs meet the 95 % target, shifts (90 %) do not; read cells from their columns (a row
    # Series would coerce the object column's booleans to floats)
    target, meets = t["target"], t["meets_target"]
    assert bool(target[("robust", "nonaligned qf1<qf2")]) is True
    assert meets[("robust", "nonaligned qf1<qf2")] is False
    assert meets[("robust", "single")] is False
    assert meets[("paper", "nonaligned qf1<qf2")] is True
    eq = t.loc[("robust", "nonaligned qf1=qf2")]
    assert not target[("robust", "nonaligned qf1=qf2")] and eq["verdict_correct"] == 0.0
    assert np.isnan(meets[("robust", "nonaligned qf1=qf2")])  # no target, no verdict on it
    assert list(t.loc["robust"].index) == ["single", "nonaligned qf1<qf2", "nonaligned qf1=qf2"]  # REGIMES order
    with pytest.raises(InputError):
        accuracy_table(pd.DataFrame({"estimator": ["x"]}))
