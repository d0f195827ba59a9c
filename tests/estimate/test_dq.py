"""The DCT double-quantization detector: detection and QF1 on clear cases, the combination, the map, bad input.

Images: scikit-image's bundled CC0 ``camera`` and ``astronaut`` (not used by
the calibration, which sees BSDS500 only). Each test runs in a few seconds.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from jpegbench.codec import decode, encode, read_coefficients, to_gray
from jpegbench.errors import InputError, UnsupportedImageError
from jpegbench.estimate import (
    EVIDENCE,
    DQResult,
    QFEstimateResult,
    combine_readings,
    detect_double_quantization,
    dq_map,
    estimate_file,
    plot_dq_map,
)
from jpegbench.estimate.dq import dq_thresholds


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    from skimage import data

    return to_gray(data.astronaut())


def _double(x: np.ndarray, qf1: int, qf2: int) -> bytes:
    return encode(decode(encode(x, qf1)), qf2)


def test_thresholds_are_calibrated_and_state_their_false_alarms():
    th = dq_thresholds()
    assert th["aligned"] > 0 and th["nonaligned"] > 0
    assert 0 <= th["false_alarm_aligned"] <= 0.05
    assert "BSDS500" in th["data"] and th["script"] == "scripts/calibrate_dq.py"


@pytest.mark.parametrize(("qf1", "qf2"), [(85, 70), (95, 85)])
def test_finer_first_compression_is_found(camera, qf1, qf2):
    r = detect_double_quantization(_double(camera, qf1, qf2), nonaligned=False)
    assert r.verdict == "aligned-double" and r.detected
    assert abs(r.qf_first - qf1) <= 5
    assert r.qf_last == qf2 and r.shift == (0, 0)
    assert r.evidence_strength >= 1


def test_colour_file_reads_its_luma(camera):
    from skimage import data

    rgb = data.astronaut()
    r = detect_double_quantization(encode(decode(encode(rgb, 85)), 70), nonaligned=False)
    assert r.verdict == "aligned-double" and abs(r.qf_first - 85) <= 5


def test_single_jpeg_reads_single(camera):
    r = detect_double_quantization(encode(camera, 70), nonaligned=False)
    assert r.verdict == "single" and r.qf_first is None and not r.detected
    assert r.score_aligned < dq_thresholds()["aligned"]


def test_coarser_non_aligned_first_compression_found_at_its_shift(camera):
    from jpegbench.synth.degrade import double_jpeg

    data = double_jpeg(camera, 60, 85, (3, 5)).lq_bytes
    r = detect_double_quantization(data)
    assert r.verdict == "nonaligned-double"
    assert r.shift == (3, 5)
    assert abs(r.qf_first - 60) <= 5


def _mode(values: np.ndarray, q2: int = 3, kmax: int = 40):
    from jpegbench.estimate.dq import _ModeData

    values = np.clip(values, -kmax, kmax)
    return _ModeData(2, 0, q2, values, kmax, np.bincount(values + kmax, minlength=2 * kmax + 1))


def test_a_scale_mixture_is_not_read_as_a_lattice():
    # A mode of a photograph with flat and busy regions: most coefficients from a narrow density, the rest
    # from a wide one. One generalised Gaussian per hypothesis cannot follow it and the double hypothesis
    # (q1 = 2 under q2 = 3: bins holding two first-grid multiples and one alternately) takes up the misfit;
    # fitted as scale mixtures, the single hypothesis explains it.
    from jpegbench.estimate.dq import SIGMA, _mode_logratio

    rng = np.random.default_rng(0)
    n, q2 = 5000, 3
    for narrow, wide in ((0.8, 6.0), (0.5, 4.0)):
        x = np.where(rng.random(n) < 0.7, rng.normal(0, narrow * q2, n), rng.laplace(0, wide * q2, n))
        single = _mode(np.round(x / q2).astype(np.int64), q2)
        mixed = float(_mode_logratio(single, 2, SIGMA) @ single.counts)
        one = float(single.cache_one[(2, round(SIGMA, 6))] @ single.counts)
        assert one > 30 and mixed < 0, (narrow, wide, one, mixed)
        # The same content quantized first with step 2 (decoder rounding added) keeps evidence for it.
        x2 = 2 * np.round(x / 2) + rng.normal(0, SIGMA, n)
        double = _mode(np.round(x2 / q2).astype(np.int64), q2)
        assert float(_mode_logratio(double, 2, SIGMA) @ double.counts) > 0


def test_mixture_fit_is_never_worse_than_the_best_single_density():
    from jpegbench.estimate.dq import _fit_mixtures

    rng = np.random.default_rng(1)
    comps = rng.dirichlet(np.ones(12), size=(5, 168))  # 5 hypotheses, 168 densities over 12 bins
    counts = rng.integers(0, 50, size=12).astype(np.float64)
    best = np.argmax(np.log(comps) @ counts, axis=1)
    mixed, one = _fit_mixtures(comps, best, counts)
    assert np.all(mixed @ counts >= one @ counts - 1e-9)
    assert np.allclose(np.exp(mixed).sum(axis=1), 1, atol=1e-3)


@pytest.mark.parametrize("name", ["camera", "astronaut", "brick", "moon"])
def test_never_compressed_photographs_give_no_false_alarm(name):
    # Photographs with no JPEG history (the curves read each as uncompressed), not used by the calibration;
    # whole and as the 256 x 320 crops that gave the one-density score its false alarms on LIVE1.
    from skimage import data

    x = np.asarray(getattr(data, name)())
    for img in (x, np.ascontiguousarray(x[:256, :320])):
        for qf in (60, 70, 80, 90):
            r = detect_double_quantization(encode(img, qf), nonaligned=False)
            assert r.verdict == "single", (name, img.shape, qf, r.score_aligned, r.qf_first)


def test_too_few_coefficients_is_no_decision():
    flat = np.full((64, 64), 120, np.uint8)
    r = detect_double_quantization(encode(flat, 50), nonaligned=False)
    assert r.verdict == "single" and "too few" in r.details["note"]


def _curves_result(verdict: str, qf_first: int | None = None, shift=(0, 0)) -> QFEstimateResult:
    return QFEstimateResult(qf_last=70, qf_dominant=70 if qf_first is None else min(qf_first, 70), shift=shift,
                            verdict=verdict, confidence=0.9, qf_first=qf_first)  # fmt: skip


def _dq(verdict: str, qf_first: int | None, shift=(0, 0)) -> DQResult:
    return DQResult(verdict, 70, qf_first, shift, 1.0, None, np.full((8, 8), -1))


def test_combination_never_overrides_the_curves():
    curves = _curves_result("nonaligned-double", 40, (2, 3))
    assert combine_readings(curves, _dq("aligned-double", 90)) == ("nonaligned-double", 40, (2, 3), "curves")
    # Pixels only: the curves' reading as it is.
    assert combine_readings(_curves_result("single"), None) == ("single", None, (0, 0), "curves")


def test_combination_takes_a_finer_first_compression_where_the_curves_say_single():
    single = _curves_result("single")
    assert combine_readings(single, _dq("aligned-double", 90)) == ("aligned-double", 90, (0, 0), "dct-aligned")
    assert combine_readings(single, _dq("nonaligned-double", 85, (1, 2)))[3] == "dct-nonaligned"
    # A coarser first QF is the curves' job: a DCT reading of one where they saw none is not taken.
    assert combine_readings(single, _dq("aligned-double", 50)) == ("single", None, (0, 0), "curves+dct")
    assert combine_readings(single, _dq("single", None)) == ("single", None, (0, 0), "curves+dct")
    assert {"curves", "curves+dct", "dct-aligned", "dct-nonaligned"} == set(EVIDENCE)


def test_estimate_file_combines(tmp_path, camera):
    p = tmp_path / "d.jpg"
    p.write_bytes(_double(camera[:256, :256], 85, 70))
    fe = estimate_file(p)
    assert fe.pixels.verdict == "single"  # the curves cannot see a finer first compression
    assert (fe.verdict, fe.evidence) == ("aligned-double", "dct-aligned")
    assert abs(fe.qf_first - 85) <= 5 and fe.qf_dominant == 70
    assert estimate_file(p, dct=False).evidence == "curves"


def test_estimate_table_has_an_evidence_column(tmp_path, camera):
    from jpegbench.estimate.batch import estimate_inputs

    (tmp_path / "d.jpg").write_bytes(_double(camera[:256, :256], 85, 70))
    Image.fromarray(camera[:128, :128]).save(tmp_path / "p.png")
    # The DCT reading is opt-in (dct=True, CLI --dct): its non-aligned scan costs seconds per file.
    assert set(estimate_inputs([tmp_path], progress=False).table["evidence"]) == {"curves"}
    t = estimate_inputs([tmp_path], progress=False, dct=True).table.set_index("path")
    assert list(t.columns[-1:]) == ["evidence"]
    assert t.loc[str(tmp_path / "p.png"), "evidence"] == "curves"
    row = t.loc[str(tmp_path / "d.jpg")]
    assert (row["verdict"], row["evidence"]) == ("aligned-double", "dct-aligned")


# ---------------------------------------------------------------- localisation
# A region pasted from a never-compressed image into a double compressed one, then the whole saved once more:
# the region has no first-quantization pattern. Threshold: IoU >= 0.6 between the 64x64 tiles read below 0.5
# and the region's tiles (measured 1.00 on both pairs here; for QF1 > QF2 splices the 64x64 map is much noisier,
# see BENCHMARKS.md).
@pytest.mark.parametrize(("qf1", "qf2"), [(60, 80), (70, 85)])
def test_spliced_region_shows_in_the_map(camera, astronaut, qf1, qf2):
    comp = decode(encode(astronaut, qf1))
    comp[128:320, 192:384] = camera[128:320, 192:384]
    m = dq_map(encode(comp, qf2), tile=8)
    assert m.shape == (8, 8) and ((0 <= m) & (m <= 1)).all()
    truth = np.zeros((8, 8), bool)
    truth[2:5, 3:6] = True
    pred = m < 0.5
    assert (pred & truth).sum() / (pred | truth).sum() >= 0.6


def test_map_per_block_and_figure(camera):
    import matplotlib.pyplot as plt

    data = _double(camera[:128, :192], 60, 80)
    m = dq_map(data, tile=1)
    assert m.shape == (16, 24)
    figures = plt.get_fignums()
    fig = plot_dq_map(data, tile=2)
    assert fig.axes and fig.axes[0].images[1].get_array().shape == (8, 12)  # the map over the luma, 2x2 blocks a tile
    assert plt.get_fignums() == figures  # no pyplot state: nothing left open in a long session
    fig.savefig(io.BytesIO(), format="png")  # renders headless
    with pytest.raises(InputError, match="tile"):
        dq_map(data, tile=0)


# ---------------------------------------------------------------- bad input
def _patch_sof(data: bytes, *, marker: int | None = None, precision: int | None = None) -> bytes:
    b = bytearray(data)
    i = b.find(b"\xff\xc0")
    if marker is not None:
        b[i + 1] = marker
    if precision is not None:
        b[i + 4] = precision
    return bytes(b)


def test_progressive_and_restart_markers_read_like_baseline(camera):
    import io

    x = camera[:256, :256]
    base = detect_double_quantization(_double(x, 85, 70), nonaligned=False)
    prog = detect_double_quantization(encode(decode(encode(x, 85)), 70, progressive=True), nonaligned=False)
    buf = io.BytesIO()
    Image.fromarray(decode(encode(x, 85))).save(buf, "JPEG", quality=70, restart_marker_blocks=3)
    assert b"\xff\xdd" in buf.getvalue()
    rst = detect_double_quantization(buf.getvalue(), nonaligned=False)
    for r in (prog, rst):
        assert (r.verdict, r.qf_first) == (base.verdict, base.qf_first)
        assert r.score_aligned == pytest.approx(base.score_aligned)


@pytest.mark.parametrize(("patch", "match"), [
    ({"marker": 0xC9}, "arithmetic-coded JPEG is not supported"),
    ({"precision": 12}, "12-bit JPEG is not supported"),
])  # fmt: skip
def test_refused_kinds_one_line(camera, patch, match):
    with pytest.raises(UnsupportedImageError, match=match) as e:
        detect_double_quantization(_patch_sof(encode(camera[:64, :64], 70), **patch))
    assert "\n" not in str(e.value)


def test_cmyk_refused_one_line(camera):
    import io

    buf = io.BytesIO()
    Image.fromarray(np.dstack([camera[:64, :64]] * 3)).convert("CMYK").save(buf, "JPEG", quality=70)
    with pytest.raises(UnsupportedImageError, match="CMYK") as e:
        detect_double_quantization(buf.getvalue())
    assert "\n" not in str(e.value)


def test_accepts_read_coefficients(camera):
    data = _double(camera[:256, :256], 85, 70)
    a = detect_double_quantization(read_coefficients(data), nonaligned=False)
    b = detect_double_quantization(data, nonaligned=False)
    assert a.score_aligned == b.score_aligned
    with pytest.raises(InputError, match="sigma"):
        detect_double_quantization(data, sigma=0)


# ---------------------------------------------------------------- the figures the module and BENCHMARKS.md state
@pytest.mark.shared
def test_the_stated_false_alarms_and_their_cures(shared_dir):
    # dq.py and BENCHMARKS.md explain the two density models and the non-aligned mode rule with these files
    # (256 x 320 top-left crops, the combination benchmark's); the figures they give, to their printed digits.
    from skimage import data

    from jpegbench.codec import read_image
    from jpegbench.estimate.dq import SIGMA, _aligned_reading, _mode_data, _nonaligned_scan, decoded_luma

    def reading(x, qf):
        return _aligned_reading(_mode_data(read_coefficients(encode(np.ascontiguousarray(x[:256, :320]), qf))),
                                SIGMA, qf)  # fmt: skip

    parrots = reading(read_image(shared_dir / "data" / "LIVE1_gray" / "parrots.png", color="gray"), 90)
    assert round(parrots.scores_one[94], 2) == 0.50 and round(parrots.scores[94], 2) == -0.40
    assert parrots.score < dq_thresholds()["aligned"]
    astronaut = reading(data.astronaut(), 60)  # RGB, 4:2:0: the detector reads the luma
    assert round(astronaut.scores[95], 3) == 0.027 and round(astronaut.scores_one[95], 4) == 0.0005
    assert astronaut.score < dq_thresholds()["aligned"]
    cemetry = read_coefficients(encode(np.ascontiguousarray(read_image(shared_dir / "data" / "LIVE1_color" /
                                                                       "cemetry.png")[:256, :320]), 90))  # fmt: skip
    luma = np.clip(np.round(decoded_luma(cemetry)), 0, 255)
    stat = _nonaligned_scan(luma, 90, cemetry.qtables[0])[0]
    assert round(stat, 1) == 4.6 and stat < dq_thresholds()["nonaligned"]


def test_the_calibration_figures_benchmarks_md_states():
    # BENCHMARKS.md (issue 19): thresholds and the calibration's BSDS500 doubles, as scripts/calibrate_dq.py wrote them.
    th = dq_thresholds()
    assert (th["aligned"], round(th["nonaligned"], 2)) == (0.0059, 7.57)
    assert (th["bsds_aligned_double_detected"], th["bsds_aligned_double_qf1_within_5"]) == (0.73, 0.97)
