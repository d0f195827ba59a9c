"""Colour results in the report: Table 2 (single JPEG, colour) beside the paper's, the colour Table 3 protocol
without paper columns, one table per metric and colour."""

from __future__ import annotations

import pandas as pd
import pytest

from jpegbench.evaluate import software_versions, write_results
from jpegbench.report import build_report, single_jpeg_table, table3
from jpegbench.report.published import TABLE2_COLOR_SINGLE

from .conftest import make_results


def _paper(group: str, qf: int, method: str, col: int) -> float:
    return next(r[col] for r in TABLE2_COLOR_SINGLE if r[:3] == (group, str(qf), method))


@pytest.fixture
def colour() -> pd.DataFrame:
    return make_results(singles=(10, 20, 30, 40)).assign(color="rgb", source="LIVE1_color/bikes.png")


def test_table2_puts_the_papers_colour_numbers_beside_ours(colour):
    t = single_jpeg_table(colour)
    assert (t.attrs["paper_dataset"], t.attrs["paper_table"]) == ("LIVE1", 2)
    assert list(t.index) == [10, 20, 30, 40]
    assert t.loc[10, ("jpeg", "PSNR", "paper")] == _paper("LIVE1", 10, "JPEG", 3) == 25.69
    assert t.loc[40, ("fbcnn", "SSIM", "paper")] == _paper("LIVE1", 40, "FBCNN-C (Ours)", 4)
    delta = t.loc[10, ("fbcnn", "PSNR-B", "delta")]
    assert delta == pytest.approx(t.loc[10, ("fbcnn", "PSNR-B", "ours")] - _paper("LIVE1", 10, "FBCNN-C (Ours)", 5))
    # The paper has no colour FBCNN-D or FBCNN-A: no empty paper columns for them.
    assert ("fbcnn-a", "PSNR", "paper") not in t.columns and ("fbcnn-a", "PSNR", "ours") in t.columns
    # Gray numbers (Table 1) are not mixed in for colour samples.
    assert t.loc[10, ("jpeg", "PSNR", "paper")] != 27.77
    with pytest.raises(Exception, match="paper must be one of"):
        single_jpeg_table(colour, paper="Classic5")
    assert single_jpeg_table(colour, paper="ICB").loc[10, ("jpeg", "PSNR", "paper")] == 29.44


def test_one_metric_and_one_colour(colour):
    gray = make_results(singles=(10,))
    both = pd.concat([gray, colour.assign(sample_id="c" + colour["sample_id"])], ignore_index=True)
    t = single_jpeg_table(both, metric="psnr", color="rgb")
    assert set(t.columns.get_level_values("metric")) == {"", "PSNR"}
    assert t.attrs["paper_table"] == 2 and list(t.index) == [10, 20, 30, 40]
    assert single_jpeg_table(both, metric="ssim", color="gray").attrs["paper_table"] == 1
    with pytest.raises(Exception, match="color must be"):
        single_jpeg_table(both, color="cmyk")


def test_colour_table3_has_no_paper_columns(colour):
    t = table3(colour, metric="psnr")
    assert not t.empty and set(t.columns.get_level_values("value")) == {"", "ours"}
    assert len(table3(pd.concat([make_results(), colour.assign(sample_id="c" + colour["sample_id"])]),
                      metric="psnr", color="gray").columns.get_level_values("value").unique()) == 4


def test_report_of_gray_and_colour_results(colour, tmp_path):
    meta = {"corpus": "/c", "manifest_sha256": "0" * 64, "recipe": "", "recipe_sha256": "", "estimator": "robust",
            "metric_conventions": "test", "versions": software_versions(), "device": "cpu", "weights": {}}
    a = write_results(make_results(), tmp_path / "gray.parquet", meta)
    b = write_results(colour.assign(sample_id="c" + colour["sample_id"]), tmp_path / "colour.parquet", meta)
    build_report([a, b], tmp_path / "out")
    tables = tmp_path / "out" / "tables"
    for prefix in ("table3", "table3_color", "single_jpeg", "table2"):
        for key in ("psnr", "ssim", "psnrb"):
            assert (tables / f"{prefix}_{key}.csv").is_file(), (prefix, key)
    md = (tmp_path / "out" / "report.md").read_text()
    assert "## Table 2: single JPEG, colour, PSNR" in md and "## Table 3 protocol on colour" in md
    assert "| 10 | 2 | 26.00 | 25.69 | +0.31 |" in md  # Table 2 PSNR: n, jpeg, jpeg paper, jpeg Δ
    # Rows without color_path (as written before it existed) are filled in: FBCNN on colour ran on the luma then.
    line = next(x for x in md.splitlines() if x.startswith("- **colour path**"))
    assert "fbcnn: gray 26, luma 28" in line and "jpeg" not in line
    only_colour = write_results(colour, tmp_path / "only.parquet", meta)
    build_report(only_colour, tmp_path / "out2")
    assert not (tmp_path / "out2" / "tables" / "table3_psnr.csv").exists()
    assert (tmp_path / "out2" / "tables" / "table3_color_psnr.csv").is_file()


def test_the_report_finds_the_papers_dataset_in_the_recipe(colour, tmp_path):
    # A corpus's source column holds file names; its recipe names the data set.
    recipe = '[source]\npath = "../../shared/data/LIVE1_color"\n'
    meta = {"corpus": "/c/t2", "manifest_sha256": "0" * 64, "recipe": recipe, "recipe_sha256": "1" * 64,
            "estimator": "robust", "metric_conventions": "test", "versions": software_versions(), "device": "cpu",
            "weights": {}}
    res = write_results(colour.assign(source="bikes.png"), tmp_path / "r.parquet", meta)
    build_report(res, tmp_path / "out")
    t2 = pd.read_csv(tmp_path / "out" / "tables" / "table2_psnr.csv", index_col=0)
    assert t2.loc[10, "jpeg.PSNR.paper"] == 25.69 and t2.loc[40, "fbcnn.PSNR.paper"] == 32.34
    res = write_results(colour.assign(source="bikes.png"), tmp_path / "r2.parquet", {**meta, "recipe": ""})
    build_report(res, tmp_path / "out2")
    assert "jpeg.PSNR.paper" not in pd.read_csv(tmp_path / "out2" / "tables" / "table2_psnr.csv", index_col=0)
