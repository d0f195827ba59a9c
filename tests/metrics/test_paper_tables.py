"""The JPEG columns of the FBCNN paper's Tables 1 and 2, reproduced to every printed digit.

Reference values: Jiang, Zhang, Timofte, "Towards Flexible Blind JPEG
Artifacts Removal", ICCV 2021, Table 1 (LIVE1 gray and Classic5, single JPEG)
and Table 2 (LIVE1 colour, single JPEG), column "JPEG", transcribed in
``../shared/reference/paper_tables.json``. Printed precision: PSNR and PSNR-B
2 decimals, SSIM 3 decimals; each cell is the mean over the test set of the
per-image metric.

Pipeline: ``jpegbench.codec.jpeg_roundtrip(x, qf)`` (Pillow's libjpeg-turbo,
IJG tables, 4:2:0 for colour; on LIVE1 colour pixel-identical to the
imencode/imdecode of OpenCV 5.0, the library the authors used) and the
defaults of ``jpegbench.metrics``; a failure message gives the measured mean
to 5 decimals.

How close the rounding is (measured means, for the record): the tightest
cells are Classic5 QF40 SSIM 0.88494 (printed 0.885), Table 2 QF20 PSNR-B
26.4926 (26.49) and Table 2 QF40 PSNR-B 28.8362 (28.84). The last one holds
only with the ``"bt601-studio-bgr"`` Y of ``psnrb``; the textbook Y gives
28.8316 (see the module docstring of ``jpegbench.metrics``).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest

from jpegbench.codec import jpeg_roundtrip, list_images, read_image
from jpegbench.metrics import psnr, psnrb, ssim

pytestmark = pytest.mark.shared

QFS = (10, 20, 30, 40)
# (table key, group in the table, folder under shared/data)
SETS = (
    ("table1_gray_single", "LIVE1", "LIVE1_gray"),
    ("table1_gray_single", "Classic5", "Classic5"),
    ("table2_color_single", "LIVE1", "LIVE1_color"),
)
DIGITS = {"psnr": 2, "ssim": 3, "psnrb": 2}
CELLS = [pytest.param(t, g, f, q, id=f"{f}-qf{q}") for t, g, f in SETS for q in QFS]


@functools.cache
def _images(folder: Path) -> tuple[np.ndarray, ...]:
    return tuple(read_image(p) for p in list_images(folder))


@functools.cache
def _means(folder: Path, qf: int) -> dict[str, float]:
    """Mean PSNR, SSIM and PSNR-B of the JPEG round trip over one test set (computed once)."""
    scores = []
    for x in _images(folder):
        y = jpeg_roundtrip(x, qf)
        scores.append((psnr(x, y), ssim(x, y), psnrb(x, y)))
    return dict(zip(("psnr", "ssim", "psnrb"), np.mean(scores, axis=0).tolist()))


@functools.cache
def _paper_row(shared: Path, table: str, group: str, qf: int) -> dict:
    rows = json.loads((shared / "reference" / "paper_tables.json").read_text())[table]["rows"]
    (row,) = [r for r in rows if r["method"] == "JPEG" and r["group"] == group and r["qf"] == str(qf)]
    return row


@pytest.mark.parametrize("metric", ["psnr", "ssim", "psnrb"])
@pytest.mark.parametrize(("table", "group", "folder", "qf"), CELLS)
def test_jpeg_column_matches_paper(shared_dir, table, group, folder, qf, metric):
    data = shared_dir / "data" / folder
    if not data.is_dir():
        pytest.skip(f"needs {data}")
    printed = _paper_row(shared_dir, table, group, qf)[metric]
    measured = _means(data, qf)[metric]
    assert round(measured, DIGITS[metric]) == printed, (
        f"{table} {group} QF{qf} {metric}: measured {measured:.5f}, paper prints {printed}"
    )
