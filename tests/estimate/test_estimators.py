"""Estimators: the paper's rule as documented, the robust reader on clear cases, the public API."""

from __future__ import annotations

import numpy as np
import pytest

from jpegbench.codec import encode, jpeg_roundtrip
from jpegbench.errors import ImageReadError, InputError
from jpegbench.estimate import (
    FileEstimate,
    MSECurves,
    QFEstimateResult,
    estimate_file,
    estimate_qf,
    estimate_qf_batch,
    mse_curves,
    paper_estimate,
    robust_estimate,
)
from jpegbench.estimate.paper import first_local_minimum
from jpegbench.estimate._lattice import lattice_test, model_matrix, model_mse
from jpegbench.estimate.robust import median_polish, minima_prominence

QFS = np.arange(1, 101)


def _synthetic_curves(aligned=None, bumps=()):
    """Decreasing curves 300 -> 1 for every shift, optional aligned curve and (dy, dx, qf, depth) dips."""
    base = 300.0 * np.exp(-np.log(300.0) * (QFS - 1) / 99.0)
    mse = np.tile(base, (8, 8, 1))
    if aligned is not None:
        mse[0, 0] = aligned
    for dy, dx, qf, depth in bumps:
        mse[dy, dx, qf - 1] *= depth
    return MSECurves(mse=mse, qfs=QFS.copy(), backend="fast", image_shape=(64, 64), crop_shape=(56, 56))


# --- paper: parameters behave as documented -------------------------------------------------------


def test_first_local_minimum_strict_plateau_endpoints():
    c = np.array([5.0, 4.0, 4.0, 6.0, 3.0, 7.0])
    assert first_local_minimum(c) == 4  # the plateau 4, 4 is not a strict minimum
    assert first_local_minimum(c, minimum="plateau") == 1
    d = np.array([1.0, 2.0, 3.0, 2.5])
    assert first_local_minimum(d) is None
    assert first_local_minimum(d, endpoints=True) == 0
    assert first_local_minimum(np.array([3.0, 2.0, 1.0]), endpoints=True) == 2
    with pytest.raises(InputError):
        first_local_minimum(c, minimum="soft")


def test_paper_threshold_and_fallback():
    aligned = 300.0 * np.exp(-np.log(300.0) * (QFS - 1) / 99.0)
    aligned[59] = 0.01  # global minimum at QF 60
    # A dip at QF 20 on shift (3, 5) with MSE 300 * 0.2 ~ 20 < 30: the dominant QF.
    c = _synthetic_curves(aligned, bumps=[(3, 5, 20, 0.2)])
    r = paper_estimate(c)
    assert (r.qf_dominant, r.qf_last, r.shift, r.verdict) == (20, 60, (3, 5), "nonaligned-double")
    assert r.qf_first == 20 and 0 <= r.confidence <= 1
    # With T = 10 the dip (MSE ~ 20) no longer counts; the aligned minimum at 60 remains.
    r = paper_estimate(c, threshold=10.0)
    assert (r.qf_dominant, r.shift, r.verdict) == (60, (0, 0), "single")
    # No minimum below T anywhere: fall back to qf_last.
    r = paper_estimate(c, threshold=1e-3)
    assert (r.qf_dominant, r.verdict, r.confidence) == (60, "single", 0.0)
    assert r.details["n_candidates"] == 0


def test_paper_ties_qf_range_and_last_from():
    aligned = 300.0 * np.exp(-np.log(300.0) * (QFS - 1) / 99.0)
    aligned[69] = 0.5
    c = _synthetic_curves(aligned, bumps=[(2, 2, 30, 0.3), (1, 4, 30, 0.2), (6, 6, 40, 0.1)])
    r = paper_estimate(c)
    assert (r.qf_dominant, r.shift) == (30, (1, 4))  # same QF: the lower MSE wins
    r = paper_estimate(c, qf_range=(35, 100))
    assert (r.qf_dominant, r.shift) == (40, (6, 6))
    c.mse[5, 5, 89] = 0.01  # lower than the aligned minimum, on another shift
    assert paper_estimate(c).qf_last == 70
    assert paper_estimate(c, last_from="all").qf_last == 90
    with pytest.raises(InputError):
        paper_estimate(c, last_from="median")
    with pytest.raises(InputError):
        paper_estimate(c, qf_range=(50, 51))
    with pytest.raises(InputError):
        paper_estimate(c, threshold=0)


def test_paper_aligned_double_verdict():
    aligned = 300.0 * np.exp(-np.log(300.0) * (QFS - 1) / 99.0)
    aligned[79] = 0.01
    aligned[29] *= 0.2
    r = paper_estimate(_synthetic_curves(aligned))
    assert (r.qf_dominant, r.qf_last, r.verdict, r.shift) == (30, 80, "aligned-double", (0, 0))


def test_estimators_need_all_shifts(make_image):
    c = mse_curves(make_image(32, 32), qfs=range(40, 60), shifts="aligned")
    for est in (paper_estimate, robust_estimate):
        with pytest.raises(InputError, match="64 shifts"):
            est(c)
    with pytest.raises(InputError):
        robust_estimate("curves")


# --- robust helpers -----------------------------------------------------------------------------


def test_median_polish_recovers_an_additive_table_and_one_outlier():
    rng = np.random.default_rng(0)
    row, col = rng.normal(size=8), rng.normal(size=8)
    table = (3.0 + row[:, None] + col[None, :])[:, :, None].repeat(2, axis=2)
    table[2, 5, :] -= 4.0
    overall, r, c, e = median_polish(table)
    assert np.allclose(overall[:, None, None] + r.T[:, :, None] + c.T[:, None, :], np.moveaxis(table - e, 2, 0))
    assert e[2, 5, 0] < -3.5
    assert np.abs(np.delete(e.reshape(64, 2), 8 * 2 + 5, axis=0)).max() < 0.6


def test_minima_prominence():
    y = np.array([5.0, 3.0, 4.0, 1.0, 2.0, 2.0, 0.5, 6.0])
    assert minima_prominence(y) == [(1, 1.0), (3, 1.0), (6, 4.5)]
    assert minima_prominence(np.arange(5.0)) == []


# --- robust on real images: clear cases and the shift convention ----------------------------------


@pytest.fixture(scope="module")
def crop(camera):
    return camera[128:384, 128:384]  # 256 x 256


def test_single_jpeg(crop):
    r = estimate_qf(jpeg_roundtrip(crop, 50))
    assert (r.verdict, r.qf_last, r.qf_dominant, r.shift) == ("single", 50, 50, (0, 0))
    assert r.qf_first is None


def test_aligned_double(crop, double_jpeg):
    r = estimate_qf(double_jpeg(crop, 20, 80))
    assert (r.verdict, r.qf_last, r.shift) == ("aligned-double", 80, (0, 0))
    assert abs(r.qf_dominant - 20) <= 2 and r.qf_first == r.qf_dominant


@pytest.mark.parametrize("shift", [(3, 5), (0, 6), (7, 1)])
def test_nonaligned_double_recovers_the_manifest_shift(crop, double_jpeg, shift):
    y = double_jpeg(crop, 20, 80, shift)
    r = estimate_qf(y, estimator="robust", backend="fast")
    assert r.verdict == "nonaligned-double"
    assert r.shift == shift
    assert abs(r.qf_dominant - 20) <= 2 and r.qf_last == 80
    assert r.confidence > 0.5
    # The curve of that shift dips at QF1: the crop (8 - dy, 8 - dx) mod 8 of y realigns the first grid.
    assert r.curves.curve(shift)[19] < np.median(r.curves.mse[:, :, 19])


def test_qf1_above_qf2_reads_the_last_qf(crop, double_jpeg):
    r = estimate_qf(double_jpeg(crop, 90, 30, (2, 2)))
    assert r.qf_dominant == 30 and r.qf_last == 30


def test_robust_parameter_checks(crop):
    c = mse_curves(jpeg_roundtrip(crop[:64, :64], 40), qfs=range(30, 51))
    for kw in ({"floor": 0}, {"z_threshold": -1}, {"smooth": 2}, {"smooth": 0}, {"lattice_fraction": 0},
               {"lattice_fraction": float("nan")}, {"lattice_min_qf": 0}, {"lattice_min_qf": True},
               {"lattice_min_qf": 8.0}):  # fmt: skip
        with pytest.raises(InputError):
            robust_estimate(c, **kw)
    with pytest.raises(InputError):
        robust_estimate(mse_curves(crop[:32, :32], qfs=range(40, 45)))


# --- robust step 3b: an aligned first compression only ten QFs below the last (issue 4) -----------


def test_lattice_test_recovers_the_model_it_is_built_on():
    # Round trip: curves made by the codec model itself, a mixture of a single JPEG at 60 and a double
    # 50 -> 60 with weight w, give back QF1 = 50 (within one QF), the weight and the content.
    qfs = np.arange(1, 101)
    theta = np.array([np.log(30.0), 1.5, 0.8])
    single = model_mse(model_matrix(qfs, [60]), theta)
    double = model_mse(model_matrix(qfs, [50, 60]), theta)
    for w in (0.0, 0.3, 0.8, 1.0):
        i, fraction, fitted = lattice_test(np.log((1 - w) * single + w * double + 1 / 12), qfs, 59, 1 / 12, 8)
        assert fraction == pytest.approx(w, abs=0.05)
        assert np.allclose(fitted, theta, atol=0.1)
        if w >= 0.3:
            assert abs(int(qfs[i]) - 50) <= 1
    # on a QF range that does not start at 1, and too short a range to test
    sub = np.arange(30, 71)
    d = model_mse(model_matrix(sub, [50, 60]), theta)
    i, fraction, _ = lattice_test(np.log(d + 1 / 12), sub, 30, 1 / 12, 8)
    assert abs(int(sub[i]) - 50) <= 1 and fraction > 0.9
    assert lattice_test(np.log(d + 1 / 12)[:9], sub[:9], 8, 1 / 12, 8) is None  # 9 QFs: nothing to fit


@pytest.mark.parametrize("qfs, chain", [(range(1, 101), (100,)), (range(1, 81), (50, 80)), (range(30, 71), (90, 60)),
                                         (range(1, 13), (5, 12)), (range(1, 101), (1,))])  # fmt: skip
def test_model_matrix_c_kernel_equals_numpy_bit_for_bit(qfs, chain):
    # The C kernel computes the codec model for speed; the estimator's decisions rest on it being the numpy
    # computation's to the last bit, whether the kernel was built or not.
    from jpegbench.estimate import _lattice
    from jpegbench.estimate._ckernel import available

    if not available():
        pytest.skip("the C kernel was not built")
    qfs, chain = tuple(qfs), tuple(chain)
    c = _lattice._cached_matrix.__wrapped__(qfs, chain)
    ref = _lattice._cached_matrix.__wrapped__(qfs, chain, kernel=False)
    assert c.shape == ref.shape == (33 * 56 + 1, len(qfs))
    assert np.array_equal(c.view(np.int64), ref.view(np.int64))


@pytest.fixture(scope="module")
def small_crop(camera):
    return camera[128:256, 128:288]  # 128 x 160


@pytest.mark.parametrize(("qf1", "qf2"), [(40, 50), (50, 60), (70, 80)])
def test_aligned_double_ten_qfs_apart(small_crop, double_jpeg, qf1, qf2):
    r = estimate_qf(double_jpeg(small_crop, qf1, qf2))
    assert (r.verdict, r.qf_last, r.shift) == ("aligned-double", qf2, (0, 0))
    assert abs(r.qf_dominant - qf1) <= 2 and r.qf_first == r.qf_dominant
    assert r.details["lattice_fraction_fit"] >= r.details["lattice_fraction"]
    assert r.confidence > 0.5
    # a fraction above 1 switches step 3b off; 50 -> 60 then reads as a single JPEG (issue 4's misses)
    off = robust_estimate(r.curves, lattice_fraction=2.0)
    assert "lattice_qf" not in off.details
    if (qf1, qf2) == (50, 60):
        assert (off.verdict, off.qf_dominant) == ("single", 60)


@pytest.mark.parametrize("qf", [35, 60, 75])
def test_single_jpeg_is_not_an_aligned_double(small_crop, qf):
    r = estimate_qf(jpeg_roundtrip(small_crop, qf))
    assert (r.verdict, r.qf_last, r.qf_dominant) == ("single", qf, qf)
    assert r.details["lattice_fraction_fit"] < 0.5


# --- API -----------------------------------------------------------------------------------------


def test_estimate_qf_api(crop):
    y = jpeg_roundtrip(crop[:128, :128], 35)
    r = estimate_qf(y, estimator="robust", backend="fast")
    assert isinstance(r, QFEstimateResult) and isinstance(r.qf_dominant, int)
    assert r.curves is not None and r.estimator == "robust"
    again = estimate_qf(None, curves=r.curves, estimator="paper", threshold=30.0)
    assert again.curves is r.curves and again.estimator == "paper"
    rec = r.as_dict()
    assert set(rec) == {"estimator", "qf_last", "qf_dominant", "qf_first", "shift_dy", "shift_dx",
                        "verdict", "confidence"}  # fmt: skip
    with pytest.raises(InputError):
        estimate_qf(y, estimator="oracle")
    with pytest.raises(InputError):
        estimate_qf(None)
    with pytest.raises(InputError):
        estimate_qf(None, curves=r.curves, qfs=range(1, 50))
    with pytest.raises(InputError, match="z_thresh"):
        estimate_qf(None, curves=r.curves, z_thresh=3)


def test_estimate_qf_batch_equals_single_calls(crop):
    a = jpeg_roundtrip(crop[:96, :120], 30)
    b = jpeg_roundtrip(crop[100:180, 50:150], 70)
    batch = estimate_qf_batch([a, b], qfs=range(1, 101))
    for img, r in zip([a, b], batch):
        one = estimate_qf(img)
        assert (one.qf_last, one.qf_dominant, one.shift, one.verdict) == (r.qf_last, r.qf_dominant, r.shift, r.verdict)
        assert np.array_equal(one.curves.mse, r.curves.mse)


def test_estimate_file_gray_and_colour(tmp_path, crop):
    from skimage import data

    gray = tmp_path / "gray.jpg"
    gray.write_bytes(encode(crop[:160, :160], 45))
    f = estimate_file(gray)
    assert isinstance(f, FileEstimate)
    assert f.tables.qf == 45 and f.tables.kind == "exact"
    assert f.pixels.qf_last == 45 and f.qf_last_agrees and f.qf_dominant == 45
    colour = tmp_path / "colour.jpg"
    colour.write_bytes(encode(data.astronaut()[100:292, 150:342], 75, subsampling="4:2:0"))
    f = estimate_file(colour)
    assert f.tables.qf == 75 and f.pixels.qf_last == 75 and f.qf_last_agrees
    with pytest.raises(ImageReadError):
        estimate_file(tmp_path / "missing.jpg")
    (tmp_path / "not.jpg").write_bytes(b"hello")
    with pytest.raises(ImageReadError):
        estimate_file(tmp_path / "not.jpg")


def test_nelder_mead_takes_scipys_steps():
    # _lattice.nelder_mead transcribes scipy.optimize.minimize(method="Nelder-Mead", bounds=...) so that the
    # estimator needs no scipy.optimize import: same iterates, so the same result to the last bit.
    from scipy.optimize import minimize

    from jpegbench.estimate._lattice import BOUNDS, nelder_mead

    rng = np.random.default_rng(3)
    bounds = BOUNDS + ((0.0, 1.0),)
    for _ in range(40):
        c = rng.normal(size=4)

        def f(x, c=c):
            return float(np.sum((x - c) ** 2) + np.sin(3 * x[0]) * x[1] + 5 * (x[2] - x[3]) ** 2)

        x0 = np.array([rng.uniform(lo, hi) for lo, hi in bounds])
        ref = minimize(f, x0, method="Nelder-Mead", bounds=bounds, options={"xatol": 1e-3, "fatol": 1e-7,
                                                                            "maxiter": 600})  # fmt: skip
        x, fun = nelder_mead(f, x0, bounds, xatol=1e-3, fatol=1e-7, maxiter=600)
        assert np.array_equal(x, ref.x) and fun == ref.fun
