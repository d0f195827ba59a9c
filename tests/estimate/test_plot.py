"""Figures: the 64 small multiples and the estimated-vs-true scatter (Agg, no display)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jpegbench.codec import jpeg_roundtrip
from jpegbench.errors import InputError
from jpegbench.estimate import estimate_qf, mse_curves
from jpegbench.estimate.plot import plot_curves, plot_estimates


@pytest.fixture(scope="module")
def result(camera):
    return estimate_qf(jpeg_roundtrip(camera[:64, :64], 40), estimator="paper", qfs=range(20, 61))


def test_plot_curves_grid_and_marks(result, tmp_path):
    fig = plot_curves(result)
    axes = fig.get_axes()
    assert len(axes) == 64
    assert axes[0].get_yscale() == "log"
    assert "qf_last=" in fig._suptitle.get_text()
    fig.savefig(tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 0
    rel = plot_curves(result.curves, result, relative=True)
    assert rel.get_axes()[0].get_yscale() == "linear"
    again = plot_curves(result.curves, fig=fig)  # redraws into the same figure
    assert again is fig and len(fig.get_axes()) == 64


def test_plot_curves_rejects_other_input(make_image):
    with pytest.raises(InputError):
        plot_curves(np.zeros((8, 8, 3)))
    c = mse_curves(make_image(24, 24), qfs=[50, 60, 70], shifts="aligned")
    plot_curves(c)  # NaN shifts are simply empty panels


def test_plot_estimates(tmp_path):
    df = pd.DataFrame({
        "estimator": ["robust"] * 3 + ["paper"] * 3,
        "true_dominant_qf": [10, 50, 90] * 2, "qf_dominant": [11, 50, 60, 10, 52, 90],
        "regime": ["single", "aligned qf1<qf2", "single"] * 2,
    })  # fmt: skip
    fig = plot_estimates(df)
    assert len(fig.get_axes()) == 2
    fig.savefig(tmp_path / "scatter.png")
    with pytest.raises(InputError):
        plot_estimates(df.drop(columns="qf_dominant"))
