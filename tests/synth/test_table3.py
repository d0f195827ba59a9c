"""``datasets/fbcnn-table3.toml`` reproduces the JPEG column of the FBCNN paper's Table 3.

Reference values: Jiang, Zhang, Timofte, "Towards Flexible Blind JPEG
Artifacts Removal", ICCV 2021, Table 3 (LIVE1 gray, non-aligned double JPEG,
shift (4, 4)), transcribed in ``../shared/reference/paper_tables.json``
(key ``table3_gray_double_nonaligned``, method ``JPEG``). PSNR and SSIM must
match at the printed precision (2 and 3 decimals). The printed PSNR-B is not
reproduced by the same formula (0.2-0.5 dB off; see ``../shared/README.md``),
so it is not checked here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest



@pytest.mark.shared
def test_table3_jpeg_column(shared_dir, tmp_path):
    from jpegbench.codec import read_image
    from jpegbench.metrics import psnr, ssim
    from jpegbench.synth import load_recipe, synthesize

    if not (shared_dir / "data" / "LIVE1_gray").is_dir():
        pytest.skip("needs ../shared/data/LIVE1_gray")
    recipe = load_recipe(Path(__file__).resolve().parents[2] / "datasets" / "fbcnn-table3.toml")
    assert recipe.source_dir == (shared_dir / "data" / "LIVE1_gray").resolve()
    df = synthesize(recipe, tmp_path / "t3", workers=2, progress=False)
    assert len(df) == 29 * 9 and set(df["regime"]) == {"simple", "complex"}
    scores: dict[str, list[tuple[float, float]]] = {}
    hq_of: dict[str, np.ndarray] = {}  # the 9 QF pairs of an image share one ground truth
    for r in df.itertuples():
        lq = read_image(tmp_path / "t3" / r.lq_path)
        if r.hq_sha256 not in hq_of:
            hq_of[r.hq_sha256] = read_image(tmp_path / "t3" / r.hq_path)
        hq = hq_of[r.hq_sha256]
        scores.setdefault(f"({r.qf1},{r.qf2})", []).append((psnr(hq, lq), ssim(hq, lq)))
    tables = json.loads((shared_dir / "reference" / "paper_tables.json").read_text())
    rows = tables["table3_gray_double_nonaligned"]["rows"]
    ref = {r["qf"]: r for r in rows if r["method"] == "JPEG"}
    assert set(ref) == set(scores)
    got = {k: np.mean(v, axis=0) for k, v in scores.items()}
    mismatches = [
        (k, round(float(p), 2), ref[k]["psnr"], round(float(s), 3), ref[k]["ssim"])
        for k, (p, s) in got.items()
        if round(float(p), 2) != ref[k]["psnr"] or round(float(s), 3) != ref[k]["ssim"]
    ]
    assert not mismatches, f"(qf pair, psnr, paper, ssim, paper): {mismatches}"
