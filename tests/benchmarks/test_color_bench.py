"""Acceptance measurements of the shipped small colour models on LIVE1 colour (slow; needs ../shared).

Run (minutes on one CPU thread)::

    JPEGBENCH_BENCH_OUT=runs/small_color_eval.json \\
        python -m pytest tests/benchmarks/test_color_bench.py -m slow -s -p no:cacheprovider

Protocol (the paper's Table 2, with the conventions of ``../shared/README.md``):
LIVE1 colour (29 RGB images), Pillow / libjpeg-turbo encoder with IJG tables
and 4:2:0 chroma subsampling, PSNR on the 8-bit RGB image, border 0, the mean
over images. Restoration through :func:`jpegbench.models.get_method` with no
options, as ``jpegbench restore`` does it: blind, untiled, one CPU thread,
float32, the colour model chosen by the default ``color_policy="auto"``.

* single JPEG at QF 10: the shipped ``fbcnn`` (``fbcnn_small_color.pt``)
  gains at least 0.8 dB over JPEG;
* the colour Table 3 protocol (JPEG(QF1), crop 4 rows and 4 columns from the
  top left, JPEG(QF2), both 4:2:0; QF1, QF2 in {10, 30, 50}): every cell is
  printed; on the mean of the three non-aligned QF1 < QF2 cells the shipped
  ``fbcnn-a`` (``fbcnn_a_small_color.pt``) beats ``fbcnn`` by at least 0.15 dB.
* every figure the model card states for these (``STATED_*``) within 0.05 dB.

Each test skips, saying so, while its colour weights are not shipped (they are
trained by ``configs/fbcnn-small-color.toml`` and ``configs/fbcnn-a-small-color.toml``).
The numbers go to BENCHMARKS.md and the model card.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jpegbench.codec import jpeg_roundtrip, read_image
from jpegbench.metrics import psnr
from jpegbench.models import get_method
from jpegbench.models.weights import SHIPPED_COLOR_WEIGHTS, shipped_weights_dir
from jpegbench.synth.degrade import double_jpeg

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
LIVE1 = SHARED / "data" / "LIVE1_color"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.shared,
    pytest.mark.skipif(not LIVE1.is_dir(), reason="needs ../shared/data/LIVE1_color"),
]

PAIRS = tuple((q1, q2) for q1 in (10, 30, 50) for q2 in (10, 30, 50))
NONALIGNED_UP = ((10, 30), (10, 50), (30, 50))  # the QF1 < QF2 cells
SHIFT = (4, 4)
ENCODER = {"backend": "pillow", "subsampling": "4:2:0"}
# What MODEL_CARD.md and BENCHMARKS.md state (measured 2026-12-03, torch 2.13 CPU, fbcnn_small_color.pt the wide
# stage, fbcnn_a_small_color.pt stage 2); a run that moves a figure by more than STATED_TOL fails, so the documents
# are updated with the weights.
STATED_TOL = 0.05
STATED_QF10 = (25.69, 26.50)  # JPEG, FBCNN
STATED_TABLE3 = {  # (QF1, QF2): JPEG, FBCNN, FBCNN-A
    (10, 10): (24.53, 25.26, 25.32),
    (10, 30): (25.54, 26.04, 26.18),
    (10, 50): (25.61, 25.98, 26.25),
    (30, 10): (25.41, 26.24, 26.27),
    (30, 30): (28.00, 28.85, 28.91),
    (30, 50): (28.61, 29.36, 29.50),
    (50, 10): (25.56, 26.39, 26.42),
    (50, 30): (28.59, 29.52, 29.55),
    (50, 50): (29.55, 30.44, 30.52),
}


def _require(role: str) -> None:
    path = shipped_weights_dir() / SHIPPED_COLOR_WEIGHTS[role]
    if not path.is_file():
        pytest.skip(f"{path.name} is not shipped yet (train it with configs/"
                    f"{'fbcnn-a' if role == 'fbcnn-a' else 'fbcnn'}-small-color.toml and export it there); "
                    "until then colour input is restored on the luma with the gray model")


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    out = [read_image(p) for p in sorted(LIVE1.glob("*.png"))]
    assert len(out) == 29 and all(x.ndim == 3 for x in out)
    return out


def _mean_psnr(method, pairs) -> float:
    values = []
    for lq, hq in pairs:
        r = method(lq)
        assert r.color_path == "color", f"{method.name} did not use a colour model ({r.weights})"
        values.append(psnr(hq, r.image))
    return float(np.mean(values))


def test_single_jpeg_qf10_gain(images, record):
    _require("fbcnn")
    pairs = [(jpeg_roundtrip(x, 10, **ENCODER), x) for x in images]
    jpeg = float(np.mean([psnr(hq, lq) for lq, hq in pairs]))
    fbcnn = _mean_psnr(get_method("fbcnn", device="cpu"), pairs)
    print(f"LIVE1 colour QF 10: JPEG {jpeg:.2f} dB (paper 25.69), small colour FBCNN {fbcnn:.2f} dB "
          f"({fbcnn - jpeg:+.2f})")
    record("color_single_jpeg_psnr_qf10", {"jpeg": jpeg, "fbcnn_small_color": fbcnn})
    assert np.allclose((jpeg, fbcnn), STATED_QF10, atol=STATED_TOL), ((jpeg, fbcnn), STATED_QF10)
    assert fbcnn - jpeg >= 0.8


def test_color_table3_fbcnn_a_beats_fbcnn_on_qf1_below_qf2(images, record):
    _require("fbcnn")
    _require("fbcnn-a")
    fbcnn, fbcnn_a = get_method("fbcnn", device="cpu"), get_method("fbcnn-a", device="cpu")
    cells = {}
    for q1, q2 in PAIRS:
        pairs = [(r.lq_pixels, r.hq_pixels) for r in (double_jpeg(x, q1, q2, SHIFT, **ENCODER) for x in images)]
        jpeg = float(np.mean([psnr(hq, lq) for lq, hq in pairs]))
        f, a = _mean_psnr(fbcnn, pairs), _mean_psnr(fbcnn_a, pairs)
        cells[(q1, q2)] = {"jpeg": jpeg, "fbcnn_small_color": f, "fbcnn_a_small_color": a}
        print(f"colour ({q1},{q2}) shift {SHIFT}: JPEG {jpeg:.2f}, FBCNN {f:.2f}, FBCNN-A {a:.2f} dB "
              f"(A - FBCNN {a - f:+.2f})")
    record("color_table3_psnr", {f"{q1}_{q2}": v for (q1, q2), v in cells.items()})
    gain = float(np.mean([cells[c]["fbcnn_a_small_color"] - cells[c]["fbcnn_small_color"] for c in NONALIGNED_UP]))
    print(f"mean FBCNN-A - FBCNN over the QF1 < QF2 cells: {gain:+.3f} dB")
    moved = {c: (tuple(round(v, 2) for v in cells[c].values()), STATED_TABLE3[c]) for c in PAIRS
             if not np.allclose(list(cells[c].values()), STATED_TABLE3[c], atol=STATED_TOL)}
    assert not moved, f"cells away from the model card's (measured, stated): {moved}"
    assert gain >= 0.15
