"""Report figures: drawn from data (no model), titled and labelled, saved as PNG and SVG."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jpegbench.errors import InputError
from jpegbench.report import figures as F


def _texts(fig) -> str:
    parts = [fig.get_suptitle()]
    for ax in fig.axes:
        parts += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
    return " | ".join(parts)


def test_qf_heatmap_two_panels_with_colorbars(results):
    fig = F.qf_heatmap_figure(results)
    images = [ax for ax in fig.axes if ax.images]
    assert len(images) == 2
    text = _texts(fig)
    assert "FBCNN: mean predicted QF" in text and "dominant-QF estimate" in text
    assert "QF1 (first compression)" in text and "QF2 (second, last compression)" in text
    assert "QF (IJG scale)" in text  # the colour bars' label
    grid = images[0].images[0].get_array()
    assert grid.shape == (3, 3)
    # conftest: the network predicts QF2 (columns), the estimator the dominant QF.
    np.testing.assert_allclose(grid, np.tile([10, 30, 50], (3, 1)))
    annotations = [t.get_text() for t in images[0].texts]
    assert len(annotations) == 9 and all("dom." in a for a in annotations)


def test_qf_heatmap_without_network_draws_estimate_only(results):
    fig = F.qf_heatmap_figure(results[results["method"] == "jpeg"])
    assert len([ax for ax in fig.axes if ax.images]) == 1


def test_qf_heatmap_needs_double_samples(results):
    with pytest.raises(InputError, match="double"):
        F.qf_heatmap_figure(results[results["qf2"] < 0])


def test_psnr_gain_one_panel_per_method(results):
    fig = F.psnr_gain_figure(results)
    panels = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in panels] == ["FBCNN − JPEG", "FBCNN-D − JPEG", "FBCNN-A − JPEG"]
    np.testing.assert_allclose(panels[2].images[0].get_array(), np.full((3, 3), 2.0))
    assert "PSNR gain (dB)" in _texts(fig)
    with pytest.raises(InputError):
        F.psnr_gain_figure(results[results["method"] == "jpeg"])
    with pytest.raises(InputError):
        F.psnr_gain_figure(results, metric="mse")


def test_mse_curves_figure_reuses_the_estimate_plot(rng):
    from jpegbench.estimate import estimate_qf
    from jpegbench.synth import double_jpeg

    from .conftest import make_image

    jpeg = double_jpeg(make_image(64, 64), 30, 60, shift=(4, 4)).lq_pixels
    result = estimate_qf(jpeg)
    fig = F.mse_curves_figure(result, title="example")
    panels = [ax for ax in fig.axes if ax.lines]
    assert len(panels) == 64
    assert fig.get_suptitle().startswith("example\n") and f"qf_last={result.qf_last}" in fig.get_suptitle()
    with pytest.raises(InputError):
        F.mse_curves_figure(np.zeros((8, 8, 100)))


def test_curves_from_arrays_round_trip(rng):
    mse = rng.random((8, 8, 100))
    meta = {"curves": {"backend": "fast", "image_shape": [64, 64], "crop_shape": [56, 56]},
            "estimate": {"qf_last": 60, "qf_dominant": 30, "shift": [4, 4], "verdict": "nonaligned-double",
                         "confidence": 0.8, "estimator": "robust", "qf_first": 30}}
    curves, result = F.curves_from_arrays(mse, np.arange(1, 101), meta)
    np.testing.assert_array_equal(curves.mse, mse)
    assert result.shift == (4, 4) and result.curves is curves
    assert F.curves_from_arrays(mse, np.arange(1, 101))[1] is None
    with pytest.raises(InputError):
        F.curves_from_arrays(mse[:, :, :10], np.arange(1, 101))


def test_flexibility_figure():
    flex = pd.DataFrame([dict(sample_id=s, qf1=10, qf2=30, dominant_qf=10, qf_predicted=29.0, qf=q,
                              psnr=30 - abs(q - 10) / 10, ssim=0.9, psnrb=29.0)
                         for s in ("a", "b") for q in range(5, 60, 5)])
    fig = F.flexibility_figure(flex)
    ax = fig.axes[0]
    assert ax.get_xlabel().startswith("QF given") and ax.get_ylabel() == "PSNR (dB)"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "a (QF 10→30)" in labels and "dominant QF (truth)" in labels
    with pytest.raises(InputError):
        F.flexibility_figure(flex.drop(columns="qf_predicted"))


def test_crop_strip_figure(rng):
    crop = lambda: rng.integers(0, 256, (32, 32), dtype=np.uint8)  # noqa: E731
    ex = {"meta": {"sample_id": "s", "qf1": 10, "qf2": 30, "shift": [4, 4], "box": [8, 8, 32, 32],
                   "psnr": {"jpeg": 27.0, "fbcnn": 28.5}, "qf_used": {"jpeg": None, "fbcnn": 29.6}},
          "crops": {"jpeg": crop(), "fbcnn": crop(), "hq": crop()}}
    fig = F.crop_strip_figure(ex)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["JPEG\n27.00 dB", "FBCNN\n28.50 dB, QF 30", "ground truth"]
    with pytest.raises(InputError):
        F.crop_strip_figure({"crops": {}})


def test_save_figure_png_and_svg(tmp_path, results):
    png, svg = F.save_figure(F.qf_heatmap_figure(results), tmp_path / "figs", "qf")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in svg.read_bytes()[:2000]
    assert F.figure_png(F.qf_heatmap_figure(results))[:4] == b"\x89PNG"
    png2, svg2 = F.save_figure(F.qf_heatmap_figure(results), tmp_path / "again", "qf")
    assert png2.read_bytes() == png.read_bytes() and svg2.read_bytes() == svg.read_bytes()  # reproducible
