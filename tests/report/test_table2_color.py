"""``datasets/fbcnn-table2-color.toml`` and :func:`single_jpeg_table` reproduce the JPEG column of the paper's Table 2.

Reference values: Jiang, Zhang, Timofte, ICCV 2021, Table 2 (LIVE1 colour,
single JPEG, QF 10..40), transcribed in ``../shared/reference/paper_tables.json``
(key ``table2_color_single``) and in :mod:`jpegbench.report.published`. With
libjpeg-turbo 4:2:0 and the metric conventions of :mod:`jpegbench.metrics`
every printed digit of the JPEG column (PSNR, SSIM, PSNR-B) is reproduced
(``../shared/README.md``); here through the recipe and the report's table, so
the report's Δ column of JPEG reads 0 at the printed precision.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest


@pytest.mark.shared
def test_table2_jpeg_column(shared_dir, tmp_path):
    from jpegbench.codec import read_image
    from jpegbench.metrics import psnr, psnrb, ssim
    from jpegbench.report import single_jpeg_table
    from jpegbench.synth import load_recipe, synthesize

    if not (shared_dir / "data" / "LIVE1_color").is_dir():
        pytest.skip("needs ../shared/data/LIVE1_color")
    recipe = load_recipe(Path(__file__).resolve().parents[2] / "datasets" / "fbcnn-table2-color.toml")
    assert recipe.source_dir == (shared_dir / "data" / "LIVE1_color").resolve()
    manifest = synthesize(recipe, tmp_path / "t2", workers=2, progress=False)
    assert len(manifest) == 29 * 4 and set(manifest["color"]) == {"rgb"}
    rows = []
    for r in manifest.itertuples():
        lq, hq = read_image(tmp_path / "t2" / r.lq_path), read_image(tmp_path / "t2" / r.hq_path)
        assert lq.ndim == 3
        rows.append({"sample_id": r.sample_id, "method": "jpeg", "qf1": r.qf1, "qf2": r.qf2, "regime": r.regime,
                     "dominant_qf": r.dominant_qf, "aligned": r.aligned, "n_jpeg": 1, "color": r.color,
                     "source": r.source, "psnr": psnr(hq, lq), "ssim": ssim(hq, lq), "psnrb": psnrb(hq, lq)})
    # The manifest's source is the file name; the report finds "LIVE1" in the recipe (test_color_tables.py).
    t = single_jpeg_table(pd.DataFrame(rows), paper="LIVE1")
    assert (t.attrs["paper_table"], t.attrs["paper_dataset"]) == (2, "LIVE1")
    assert list(t.index) == [10, 20, 30, 40]
    mismatches = [
        (qf, label, round(float(t.loc[qf, ("jpeg", label, "ours")]), nd), t.loc[qf, ("jpeg", label, "paper")])
        for qf in t.index for label, nd in (("PSNR", 2), ("SSIM", 3), ("PSNR-B", 2))
        if round(float(t.loc[qf, ("jpeg", label, "ours")]), nd) != t.loc[qf, ("jpeg", label, "paper")]
    ]
    assert not mismatches, f"(qf, metric, ours, paper): {mismatches}"
