"""Paper-style tables from a synthetic results table, and their CSV / Markdown / LaTeX writers."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from jpegbench.errors import InputError, ResultsError
from jpegbench.report import (
    compact_table,
    estimator_accuracy,
    qf_prediction_table,
    single_jpeg_table,
    table3,
    to_latex,
    to_markdown,
    write_tables,
)
from jpegbench.report.published import (
    PAPER_METHOD,
    PAPER_METHOD_COLOR,
    TABLE1_GRAY_SINGLE,
    TABLE2_COLOR_SINGLE,
    TABLE3_GRAY_DOUBLE_NONALIGNED,
)

from .conftest import GAIN, METHODS, SHARED

PAPER_ORDER = ["(30,10)", "(50,10)", "(50,30)", "(10,10)", "(30,30)", "(50,50)", "(10,30)", "(10,50)", "(30,50)"]


# -- the paper's numbers ---------------------------------------------------------


@pytest.mark.shared
def test_paper_values_match_shared_reference():
    path = SHARED / "reference" / "paper_tables.json"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    ref = json.loads(path.read_text())
    for key, ours in (("table3_gray_double_nonaligned", TABLE3_GRAY_DOUBLE_NONALIGNED),
                      ("table1_gray_single", TABLE1_GRAY_SINGLE), ("table2_color_single", TABLE2_COLOR_SINGLE)):
        rows = [(r["group"], r["qf"], r["method"], r["psnr"], r["ssim"], r["psnrb"]) for r in ref[key]["rows"]]
        assert list(ours) == rows


def test_paper_method_names_exist_in_table3():
    names = {r[2] for r in TABLE3_GRAY_DOUBLE_NONALIGNED}
    assert set(PAPER_METHOD.values()) <= names
    assert set(PAPER_METHOD_COLOR.values()) <= {r[2] for r in TABLE2_COLOR_SINGLE}


# -- table3 ----------------------------------------------------------------------


def test_table3_layout(results):
    t = table3(results)
    assert t.index.names == ["group", "QF"]
    assert list(t.index.get_level_values("QF")) == PAPER_ORDER
    assert list(dict.fromkeys(t.index.get_level_values("group"))) == ["QF_1 > QF_2", "QF_1 = QF_2", "QF_1 < QF_2"]
    assert t.columns.names == ["method", "metric", "value"]
    assert t.columns[0] == ("n", "", "")
    methods = list(dict.fromkeys(m for m, _, _ in t.columns[1:]))
    assert methods == ["jpeg", "fbcnn", "fbcnn-d", "fbcnn-a"]
    assert list(t["jpeg"].columns) == [(m, v) for m in ("PSNR", "SSIM", "PSNR-B") for v in ("ours", "paper", "delta")]
    assert (t[("n", "", "")] == 2).all()


def test_table3_values_paper_and_delta(results):
    t = table3(results)
    # conftest: PSNR = 25 + qf2 / 10 + gain, zero-mean noise per pair.
    for (_, qf), row in t.iterrows():
        qf2 = int(qf.strip("()").split(",")[1])
        for m, gain in ((m, GAIN[m]) for m in METHODS):  # the default results: the paper's four columns
            assert row[(m, "PSNR", "ours")] == pytest.approx(25 + qf2 / 10 + gain)
            assert row[(m, "SSIM", "ours")] == pytest.approx(0.8 + gain / 100)
    # Paper values straight from the transcription, and delta = ours - paper.
    assert t.loc[("QF_1 > QF_2", "(30,10)"), ("jpeg", "PSNR", "paper")] == 27.49
    assert t.loc[("QF_1 < QF_2", "(10,30)"), ("fbcnn-d", "SSIM", "paper")] == 0.802
    assert t.loc[("QF_1 = QF_2", "(50,50)"), ("fbcnn-a", "PSNR-B", "paper")] == 33.34
    d = t.xs("delta", axis=1, level="value")
    o = t.xs("ours", axis=1, level="value")
    p = t.xs("paper", axis=1, level="value")
    np.testing.assert_allclose(d.to_numpy(), (o - p).to_numpy())


def test_table3_without_paper(results):
    t = table3(results, paper=False)
    assert set(t.columns.get_level_values("value")) == {"ours", ""}


def test_table3_baselines_are_paper_only(results):
    t = table3(results, baselines=True)
    for name in ("DnCNN", "DCSC", "QGAC"):
        assert set(t[name].columns.get_level_values("value")) == {"paper"}
    assert t.loc[("QF_1 > QF_2", "(30,10)"), ("QGAC", "PSNR", "paper")] == 29.24


def test_table3_extra_pairs_and_missing_paper_cells(results_factory):
    r = results_factory(1)
    extra = r[(r["qf1"] == 10) & (r["qf2"] == 30)].copy()
    extra["qf2"] = 20
    extra["sample_id"] += "x"
    t = table3(pd.concat([r, extra], ignore_index=True))
    idx = list(t.index)
    assert ("QF_1 < QF_2", "(10,20)") in idx
    assert idx.index(("QF_1 < QF_2", "(10,20)")) > idx.index(("QF_1 < QF_2", "(30,50)"))
    assert math.isnan(t.loc[("QF_1 < QF_2", "(10,20)"), ("jpeg", "PSNR", "paper")])


def test_table3_ignores_aligned_and_single(results):
    aligned = results[results["aligned"]]
    assert table3(aligned).empty


def test_table3_only_jpeg(results):
    t = table3(results[results["method"] == "jpeg"])
    assert set(t.columns.get_level_values("method")) == {"n", "jpeg"}


def test_table3_bad_input():
    with pytest.raises(InputError):
        table3("results.parquet")
    with pytest.raises(ResultsError, match="psnr"):
        table3(pd.DataFrame({"sample_id": ["a"], "method": ["jpeg"]}))


# -- QF prediction and estimator accuracy ------------------------------------------


def test_qf_prediction_table(results):
    t = qf_prediction_table(results)
    assert t.index.names == ["regime", "aligned", "qf1", "qf2"]
    row = t.loc[("complex", False, 10, 30)]
    assert row["n"] == 2 and row["dominant_qf"] == 10
    assert row["fbcnn predicted"] == 30 and row["fbcnn tracks"] == "QF2"
    assert row["estimate"] == 10 and row["tables"] == 30
    assert "jpeg predicted" not in t.columns  # the JPEG baseline predicts nothing


def test_estimator_accuracy(results):
    t = estimator_accuracy(results)
    assert list(t.index) == ["single", "simple", "complex", "all"]
    assert (t["estimate"] == 1.0).all()
    # Last-table QF equals the dominant QF except on QF1 < QF2 cells: (10,30), (10,50), (30,50) + aligned (30,50).
    assert t.loc["complex", "tables"] == pytest.approx(3 / 6)
    assert t.loc["simple", "tables"] == pytest.approx(3 / 4)
    assert t.loc["all", "n"] == results["sample_id"].nunique()


def test_estimator_accuracy_tolerance(results):
    r = results.copy()
    r["qf_estimated"] = r["dominant_qf"] + 3
    assert (estimator_accuracy(r)["estimate"] == 0).all()
    assert (estimator_accuracy(r, tolerance=3)["estimate"] == 1).all()
    assert estimator_accuracy(r).loc["all", "estimate MAE"] == pytest.approx(3)


def test_single_jpeg_table(results):
    t = single_jpeg_table(results)
    assert list(t.index) == [10, 30, 50]
    assert t.loc[30, ("fbcnn", "PSNR", "ours")] == pytest.approx(25 + 3 + 1)
    assert "paper" not in set(t.columns.get_level_values("value"))  # source "synthetic": no Table 1 dataset


def test_single_jpeg_table_live1_paper_values(results):
    r = results.assign(source="LIVE1_gray/bikes.png")
    t = single_jpeg_table(r)
    assert t.attrs["paper_dataset"] == "LIVE1"
    assert t.loc[10, ("jpeg", "PSNR", "paper")] == next(
        row[3] for row in TABLE1_GRAY_SINGLE if row[:3] == ("LIVE1", "10", "JPEG"))
    assert ("fbcnn-d", "PSNR", "paper") not in t.columns  # Table 1 has no FBCNN-D column
    with pytest.raises(InputError, match="paper"):
        single_jpeg_table(r, paper="Kodak")


def test_single_jpeg_table_empty_without_singles(results):
    assert single_jpeg_table(results[results["qf2"] >= 0]).empty


# -- formatting and writers --------------------------------------------------------


def test_compact_table_paper_cells(results):
    c = compact_table(table3(results))
    assert list(c.columns[:4]) == ["n", "jpeg", "jpeg paper", "jpeg Δ"]
    assert c.loc[("QF_1 > QF_2", "(30,10)"), "jpeg paper"] == "27.49|0.762|25.62"
    assert c.loc[("QF_1 > QF_2", "(30,10)"), "jpeg"] == "26.00|0.800|25.00"
    assert c.loc[("QF_1 > QF_2", "(30,10)"), "jpeg Δ"] == "−1.49|+0.038|−0.62"


def test_markdown_escapes_pipes_and_has_one_line_per_row(results):
    md = to_markdown(table3(results))
    lines = md.strip().splitlines()
    assert len(lines) == 2 + 9
    assert "27.49\\|0.762\\|25.62" in lines[2]
    # Every line has the same number of unescaped separators.
    counts = {line.replace("\\|", "").count("|") for line in lines}
    assert len(counts) == 1


def test_latex_is_escaped_booktabs(results):
    tex = to_latex(table3(results), caption="Table 3 (ours_vs paper)")
    assert tex.count(r"\begin{tabular}") == 1 and r"\toprule" in tex and r"\bottomrule" in tex
    assert r"QF\_1 $>$ QF\_2" in tex and r"ours\_vs" in tex and r"$\Delta$" in tex
    body = [line for line in tex.splitlines() if line.endswith(r"\\")]
    assert len(body) == 1 + 9
    ncols = len(compact_table(table3(results)).columns) + 2
    assert all(line.count(" & ") == ncols - 1 for line in body)


def test_write_tables(tmp_path, results):
    tables = {"table3": table3(results), "estimator_accuracy": estimator_accuracy(results),
              "empty": pd.DataFrame()}
    written = write_tables(tables, tmp_path / "tables")
    assert set(written) == {"table3", "estimator_accuracy"}
    for name in written:
        for suffix in (".csv", ".md", ".tex"):
            assert (tmp_path / "tables" / f"{name}{suffix}").is_file()
    back = pd.read_csv(tmp_path / "tables" / "table3.csv", index_col=[0, 1])
    assert back.loc[("QF_1 > QF_2", "(30,10)"), "jpeg.PSNR.paper"] == 27.49
    assert "100%" in (tmp_path / "tables" / "estimator_accuracy.md").read_text()
    assert not list((tmp_path / "tables").glob(".*"))  # no temporary files left


def test_write_tables_bad_input(tmp_path, results):
    with pytest.raises(InputError):
        write_tables([table3(results)], tmp_path)
    with pytest.raises(InputError):
        write_tables({"../x": table3(results)}, tmp_path)
    with pytest.raises(InputError):
        write_tables({"x": "not a table"}, tmp_path)


def test_double_jpeg_table_puts_both_shifts_side_by_side(results_factory):
    from jpegbench.report.tables import double_jpeg_table, paper_tables

    from .conftest import GAIN

    df = results_factory()  # non-aligned pairs at shift (4, 4) plus (30, 50) aligned at (0, 0)
    t = double_jpeg_table(df, metric="psnr")
    assert list(t.columns.get_level_values("value").unique()) == ["", "ours"]
    assert ("(0,0)", "(30,50)") in t.index and ("(4,4)", "(30,50)") in t.index
    assert t.index.get_level_values("shift")[0] == "(0,0)"  # shifts in order, aligned first
    assert len(t) == 10 and (t[("n", "", "")] == 2).all()
    # means are known: 25 + qf2 / 10 + the method's gain (the noise has zero mean per pair)
    for m in ("jpeg", "fbcnn", "fbcnn-d", "fbcnn-a"):
        assert t.loc[("(0,0)", "(30,50)"), (m, "PSNR", "ours")] == pytest.approx(30 + GAIN[m])
        assert t.loc[("(4,4)", "(50,10)"), (m, "PSNR", "ours")] == pytest.approx(26 + GAIN[m])
    assert {"double_psnr", "double_ssim", "double_psnrb"} <= set(paper_tables(df))
    # without aligned doubles Table 3 shows every double JPEG: no extra table
    assert not any(k.startswith("double") for k in paper_tables(df[~(df["aligned"] & (df["n_jpeg"] == 2))]))
    assert double_jpeg_table(df[df["n_jpeg"] == 1]).empty
