"""Reports of results with every method (the table-guided qcn, qgcn, ijcn and their -d twins next to FBCNN)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from jpegbench.errors import InputError
from jpegbench.evaluate import software_versions, write_results
from jpegbench.report import build_report, qf_source_table, table3
from jpegbench.report.tables import METHOD_ORDER

from .conftest import ALL_METHODS, GAIN, PAIRS, make_results


def test_method_order_is_the_registrys():
    from jpegbench.models import METHODS

    assert METHOD_ORDER == METHODS


@pytest.fixture(scope="module")
def results():
    return make_results(methods=ALL_METHODS)


def test_table3_has_every_method_and_paper_columns_only_where_the_paper_has_them(results):
    t = table3(results)
    methods = list(dict.fromkeys(m for m in t.columns.get_level_values("method") if m != "n"))
    assert methods == list(METHOD_ORDER)
    values = {m: set(t[m].columns.get_level_values("value")) for m in methods}
    assert all(values[m] == {"ours", "paper", "delta"} for m in ("jpeg", "fbcnn", "fbcnn-d", "fbcnn-a"))
    assert all(values[m] == {"ours"} for m in ("qcn", "qcn-d", "qgcn", "qgcn-d", "ijcn", "ijcn-d"))
    # PSNR = 25 + qf2/10 + gain, noise of zero mean per pair.
    for q1, q2 in PAIRS:
        row = t.xs(f"({q1},{q2})", level="QF")
        for m in ("qcn", "ijcn-d"):
            assert math.isclose(float(row[(m, "PSNR", "ours")].iloc[0]), 25 + q2 / 10 + GAIN[m], abs_tol=1e-9)


def test_table3_one_metric(results):
    t = table3(results, metric="ssim")
    assert set(t.columns.get_level_values("metric")) == {"", "SSIM"}
    pd.testing.assert_frame_equal(t[("qgcn", "SSIM", "ours")].to_frame(),
                                  table3(results)[("qgcn", "SSIM", "ours")].to_frame())  # fmt: skip
    with pytest.raises(InputError, match="metric must be one of"):
        table3(results, metric="mse")


def test_qf_source_table(results):
    t = qf_source_table(results)
    assert "jpeg" not in set(t.index.get_level_values("method"))
    complex_ = results[(results["regime"] == "complex")]
    qcn = t.loc[("complex", "qcn")]
    assert qcn["source"] == "tables 100%"
    expected = (complex_["qf2"] - complex_["dominant_qf"])[complex_["method"] == "qcn"].mean()
    assert math.isclose(qcn["QF used - dominant"], expected) and expected > 0  # the last tables, above the dominant QF
    for m in ("qcn-d", "qgcn-d", "ijcn-d", "fbcnn-d"):
        row = t.loc[("complex", m)]
        assert row["source"] == "dominant 100%" and row["|QF used - dominant|"] == 0
    assert t.loc[("single", "fbcnn"), "source"] == "predicted 100%"
    mixed = results.copy()
    mixed.loc[mixed.index[mixed["method"] == "fbcnn-d"][:1], "qf_source"] = "predicted"
    assert qf_source_table(mixed).loc[(mixed.loc[mixed["method"] == "fbcnn-d", "regime"].iloc[0], "fbcnn-d"),
                                      "source"].startswith("dominant ")  # fmt: skip


def test_report_with_every_method(results, tmp_path):
    meta = {"corpus": "/data/corpus", "manifest_sha256": "0" * 64, "recipe": "", "recipe_sha256": "",
            "estimator": "robust", "metric_conventions": "psnr: test", "versions": software_versions(),
            "device": "cpu", "weights": {m: {"weights": f"{m}.pt", "weights_sha256": "abcdef012345",
                                             "weights_shipped": False} for m in ALL_METHODS if m != "jpeg"}}
    res = write_results(results, tmp_path / "results.parquet", meta)
    page = build_report(res, tmp_path / "out")
    tables = tmp_path / "out" / "tables"
    # Table 3 as one table per metric (always, and so readable with ten methods), no three-metric table.
    assert not (tables / "table3.csv").exists()
    for key in ("psnr", "ssim", "psnrb"):
        assert (tables / f"table3_{key}.csv").is_file()
    assert (tables / "qf_source.csv").is_file()
    md = (tmp_path / "out" / "report.md").read_text()
    assert "Table 3: non-aligned double JPEG, PSNR-B" in md and "What each method sees of the QF" in md
    assert "| complex | qgcn-d |" in md
    assert (tmp_path / "out" / "figures" / "psnr_gain.png").is_file()
    assert "qgcn-d" in page.read_text()
