"""The open-world verdicts: ``uncompressed``, ``undetermined``, moved grids, colour JPEGs, non-IJG tables, calibration.

Images: scikit-image's bundled photographs (``camera``, ``astronaut``: PNG,
no JPEG grid of their own; the grid statistic of ``chelsea``, ``rocket`` and
``grass`` shows they were JPEGs once, so they are not used as uncompressed
examples) and synthetic patterns. Each test computes a few 64-shift curves of
small crops (well under a second each).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from jpegbench.codec import encode, decode, jpeg_roundtrip
from jpegbench.estimate import estimate_file, estimate_from_curves, estimate_qf, estimate_qf_batch, mse_curves
from jpegbench.estimate.confidence import apply_map, expected_calibration_error, fit_isotonic, reliability_table
from jpegbench.estimate.grid import CALIBRATION_FILE, FIXED, grid_evidence, roll_curves
from jpegbench.estimate.result import QFEstimateResult

CLAIMS = ("single", "aligned-double", "nonaligned-double")


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A 160 x 160 crop of ``camera`` (never JPEG-compressed)."""
    from skimage import data

    return np.ascontiguousarray(data.camera()[100:260, 150:310])


@pytest.fixture(scope="module")
def colour() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[40:200, 200:360])


def test_never_compressed_photographs_read_uncompressed(photo, colour):
    gray_r, colour_r = estimate_qf_batch([photo, colour], luma="bt601-full")
    for r in (gray_r, colour_r):
        assert r.verdict == "uncompressed", r
        assert r.qf_last is None and r.qf_dominant is None and r.qf_first is None and r.shift is None
        assert 0.5 <= r.confidence <= 1.0
        assert r.as_dict()["qf_dominant"] == -1 and r.as_dict()["shift_dy"] == -1


@pytest.mark.parametrize("qf", [5, 50, 95])
def test_single_gray_jpegs_are_not_uncompressed(photo, qf):
    r = estimate_qf(jpeg_roundtrip(photo, qf))
    assert r.verdict in CLAIMS and abs(r.qf_dominant - qf) <= 2, r
    assert r.shift == (0, 0) and not r.details["grid_moved"]


@pytest.mark.parametrize("subsampling", ["4:2:0", "4:2:2", "4:4:4"])
def test_colour_jpegs_read_from_their_luma(colour, subsampling):
    r = estimate_qf(decode(encode(colour, 75, subsampling=subsampling)), luma="bt601-full")
    assert r.verdict in CLAIMS and abs(r.qf_last - 75) <= 2, r


def _synthetic() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(15)
    ramp = np.tile(np.linspace(0, 255, 160).round().astype(np.uint8), (160, 1))
    few = (rng.integers(0, 4, size=(20, 20)) * 80).astype(np.uint8).repeat(8, 0).repeat(8, 1)  # 4 colours, 8x8 cells
    return {
        "constant": np.full((96, 96), 128, np.uint8),
        "black": np.zeros((64, 64), np.uint8),
        "ramp": ramp,
        "diagonal ramp": ((np.add.outer(np.arange(120), np.arange(120)) * 255) // 238).astype(np.uint8),
        "few colours": few,
        "tiny": np.ascontiguousarray(rng.integers(0, 256, size=(24, 24), dtype=np.uint8)),
        "saturated": np.where(rng.random((96, 96)) < 0.5, 0, 255).astype(np.uint8),
    }


@pytest.mark.parametrize("name", list(_synthetic()))
def test_synthetic_images_get_no_confident_jpeg_claim(name):
    r = estimate_qf(_synthetic()[name])
    assert r.verdict in ("uncompressed", "undetermined") or r.confidence < 0.5, (name, r, r.details.get("grid"))
    if r.verdict == "undetermined":
        assert r.confidence == 0.0 and r.qf_dominant is None and r.details["why"]


def test_tiny_and_flat_images_are_undetermined(photo):
    assert estimate_qf(photo[:30, :30]).verdict == "undetermined"  # 2 x 2 blocks per crop
    r = estimate_qf(np.full((64, 64), 77, np.uint8))
    assert r.verdict == "undetermined" and "synthetic: only 1 distinct values" in r.details["why"]
    # from the curves alone: mid-grey encodes exactly at every QF, nothing to measure
    r = estimate_from_curves(mse_curves(np.full((64, 64), 128, np.uint8)))
    assert r.verdict == "undetermined" and "too flat" in r.details["why"]


def test_a_grid_moved_by_a_crop_is_found_where_it_went(photo):
    jpeg = jpeg_roundtrip(np.ascontiguousarray(photo), 40)
    r = estimate_qf(np.ascontiguousarray(jpeg[3:, 5:]))
    assert r.verdict in CLAIMS and abs(r.qf_last - 40) <= 2, r
    # rows / columns removed after the compression, the manifest's convention
    assert r.shift == (3, 5) and r.details["grid_moved"]


def test_a_resized_jpeg_makes_no_confident_wrong_claim(photo):
    from jpegbench.synth.degrade import resize_image

    small = resize_image(jpeg_roundtrip(photo, 30), 117, 117, method="bicubic")
    r = estimate_qf(small)
    assert r.verdict in ("uncompressed", "undetermined") or abs(r.qf_dominant - 30) <= 2 or r.confidence < 0.5, r


def test_roll_curves_moves_a_shift_to_the_origin(photo):
    from jpegbench.estimate import mse_curves

    c = mse_curves(jpeg_roundtrip(photo, 60)[2:, 7:])
    ev = grid_evidence(c)
    assert ev.shift == (2, 7) and ev.depth_aligned < ev.depth
    rolled = roll_curves(c, ev.shift)
    np.testing.assert_array_equal(rolled.mse[0, 0], c.mse[2, 7])
    np.testing.assert_array_equal(rolled.mse[6, 1], c.mse[0, 0])


def test_non_ijg_tables_are_reported_with_the_nearest_ijg_qf(tmp_path, photo):
    from PIL import Image

    from jpegbench.estimate.batch import estimate_inputs

    # a flat table: no IJG quality has it
    path = tmp_path / "flat.jpg"
    Image.fromarray(photo).save(path, qtables=[[12] * 64])
    fe = estimate_file(path)
    assert fe.tables.kind == "approximate" and not fe.tables.ijg
    assert fe.pixels.verdict in CLAIMS  # the pixels show a grid; their QF is an IJG-scale equivalent
    row = estimate_inputs([path], progress=False).table.iloc[0]
    assert bool(row["qf_ijg_scale"]) and row["qf_tables_kind"] == "approximate"
    ijg = tmp_path / "ijg.jpg"
    ijg.write_bytes(encode(photo, 60))
    assert not bool(estimate_inputs([ijg], progress=False).table.iloc[0]["qf_ijg_scale"])


def test_table_and_cli_show_the_new_verdicts(tmp_path, photo):
    from click.testing import CliRunner

    from jpegbench.cli import cli
    from jpegbench.codec import write_png

    write_png(tmp_path / "photo.png", photo)
    write_png(tmp_path / "flat.png", np.full((64, 64), 9, np.uint8))
    (tmp_path / "q50.jpg").write_bytes(encode(photo, 50))
    out = tmp_path / "t.csv"
    res = CliRunner().invoke(cli, ["estimate", str(tmp_path), "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    lines = {line.split(":")[0].rsplit("/", 1)[-1]: line for line in res.output.splitlines() if ": " in line}
    assert "uncompressed, no trace of an 8x8 JPEG grid" in lines["photo.png"]
    assert "undetermined" in lines["flat.png"] and "synthetic" in lines["flat.png"]
    assert "last QF 50" in lines["q50.jpg"]
    t = pd.read_csv(out).set_index(pd.read_csv(out)["path"].str.rsplit("/", n=1).str[-1])
    assert pd.isna(t.loc["photo.png", "qf_dominant"]) and pd.isna(t.loc["photo.png", "shift_dy"])
    assert t.loc["q50.jpg", "qf_dominant"] == 50 and t.loc["flat.png", "verdict"] == "undetermined"


def test_fbcnn_d_falls_back_to_the_prediction_on_uncompressed_input(photo):
    from jpegbench.models._restoration import dominant_qf

    assert dominant_qf(None, "robust", photo) is None  # the method then uses qf_source="predicted"
    assert dominant_qf(None, "robust", jpeg_roundtrip(photo, 30)) == pytest.approx(30, abs=2)


def test_bad_curves_keep_their_one_line_errors():
    from jpegbench.errors import InputError
    from jpegbench.estimate import MSECurves, estimate_from_curves

    c = MSECurves(np.full((8, 8, 5), 1.0), np.arange(1, 6), "fast", (64, 64), (56, 56))
    with pytest.raises(InputError, match="at least 10 QFs"):
        estimate_from_curves(c)


# --- calibration ---------------------------------------------------------------------------------------------------


def test_isotonic_fit_is_monotone_and_smoothed():
    m = fit_isotonic([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [0, 1, 0, 1, 1, 1])
    assert np.all(np.diff(m["y"]) >= 0) and np.all(np.diff(m["x"]) >= 0)
    assert apply_map(m, 0.0) == pytest.approx(1 / 3) and apply_map(m, 1.0) == pytest.approx(4 / 5)
    d = fit_isotonic([0.1, 0.2, 0.9], [1, 1, 0], increasing=False)
    assert apply_map(d, 0.0) > apply_map(d, 1.0)


def test_expected_calibration_error():
    conf = [0.95] * 20 + [0.55] * 10
    right = [True] * 19 + [False] + [True] * 5 + [False] * 5
    assert expected_calibration_error(conf, right) == pytest.approx((20 * 0.0 + 10 * 0.05) / 30)
    assert [t["n"] for t in reliability_table(conf, right)] == [10, 20]


def test_code_reads_the_committed_calibration():
    """The file the code reads is the calibration script's output, with its evidence."""
    cal = json.loads(CALIBRATION_FILE.read_text())
    for name in ("depth_threshold", "outlier_threshold"):
        lo, hi = cal["evidence"][name]["interval"]
        assert lo < cal["thresholds"][name] <= hi, name
    assert {k: v["value"] for k, v in cal["fixed_by_design"].items()} == {k: v for k, (v, _) in FIXED.items()}
    assert cal["data"].startswith("BSDS500_trainval (100 of 300 images")
    for verdict, m in cal["maps"].items():
        y = np.asarray(m["y"])
        assert np.all((y > 0) & (y < 1)), verdict
        assert np.all(np.diff(y) >= 0) if m["increasing"] else np.all(np.diff(y) <= 0), verdict
    assert set(cal["maps"]) == {"single", "aligned-double", "nonaligned-double", "uncompressed"}
    # the default path applies the maps: same curves, raw vs calibrated
    from jpegbench.estimate import mse_curves, robust_estimate
    from jpegbench.estimate.verdict import open_world_estimate

    from skimage import data

    c = mse_curves(jpeg_roundtrip(np.ascontiguousarray(data.camera()[:96, :96]), 70))
    raw = open_world_estimate(c, robust_estimate, calibrated=False)
    cooked = open_world_estimate(c, robust_estimate)
    assert cooked.confidence == pytest.approx(apply_map(cal["maps"][raw.verdict], raw.confidence))


def test_result_without_qf_is_a_valid_result():
    r = QFEstimateResult(qf_last=None, qf_dominant=None, shift=None, verdict="uncompressed", confidence=0.9)
    assert r.as_dict()["qf_last"] == -1 and r.as_dict()["verdict"] == "uncompressed"
