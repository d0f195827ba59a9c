"""Acceptance measurements of the shipped small gray models on LIVE1 (slow; needs ../shared).

Run (about 10 minutes on one idle CPU thread; the cases are independent and
may run in parallel processes, each with its own output file)::

    JPEGBENCH_BENCH_OUT=runs/small_models_eval.json \\
        python -m pytest tests/benchmarks/test_training_bench.py -m slow -s -p no:cacheprovider

Protocol (the paper's, with the conventions of ``../shared/README.md``):
LIVE1 gray (29 images, BT.601 studio-swing Y), Pillow / libjpeg-turbo
encoder with IJG tables, PSNR on the 8-bit restored image, border 0, the
mean over images. Restoration is blind (predicted QF) and untiled, one CPU
thread, float32.

* single JPEG at QF 10..40: PSNR of JPEG and of the small FBCNN; targets
  +0.8 dB at QF 10 and +0.5 dB at QF 30;
* QF prediction of the small FBCNN on single JPEGs at QF 10, 20, ..., 90:
  mean absolute error per QF; target mean over QFs <= 5;
* Table 3 cells with qf1 < qf2 (JPEG(qf1), crop 4 rows and 4 columns from
  the top left, JPEG(qf2)): the small FBCNN-A must beat the small FBCNN;
* manual QF control: on one JPEG, conditioning on a lower QF gives a
  smoother output (lower total variation).

The numbers are recorded in ``jpegbench/models/weights/MODEL_CARD.md``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from jpegbench.codec import jpeg_roundtrip, read_image
from jpegbench.metrics import psnr
from jpegbench.models import get_method
from jpegbench.models.inference import predict_qf, restore
from jpegbench.models.weights import SHIPPED_WEIGHTS, load_model, shipped_weights_dir
from jpegbench.synth.degrade import double_jpeg

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
LIVE1 = SHARED / "data" / "LIVE1_gray"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.shared,
    pytest.mark.skipif(not LIVE1.is_dir(), reason="needs ../shared/data/LIVE1_gray"),
]

SINGLE_QFS = (10, 20, 30, 40)
PREDICT_QFS = (10, 20, 30, 40, 50, 60, 70, 80, 90)
TABLE3_CELLS = ((10, 30), (10, 50), (30, 50))
SHIFT = (4, 4)


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    return [read_image(p, color="gray") for p in sorted(LIVE1.glob("*.png"))]


def _model(role: str):
    path = shipped_weights_dir() / SHIPPED_WEIGHTS[role]
    if not path.is_file():
        pytest.fail(f"{path.name} is not shipped")
    return load_model(path, device="cpu")


@pytest.fixture(scope="module")
def fbcnn():
    return _model("fbcnn")


@pytest.fixture(scope="module")
def fbcnn_a():
    return _model("fbcnn-a")


def _mean_psnr(model, pairs, **kw) -> float:
    return float(np.mean([psnr(hq, restore(model, lq, device="cpu", **kw).image) for lq, hq in pairs]))


@pytest.mark.parametrize("qf", SINGLE_QFS)
def test_single_jpeg_gain(images, fbcnn, qf, record):
    pairs = [(jpeg_roundtrip(x, qf), x) for x in images]
    jpeg = float(np.mean([psnr(hq, lq) for lq, hq in pairs]))
    small = _mean_psnr(fbcnn, pairs)
    print(f"single QF {qf}: JPEG {jpeg:.2f} dB, small FBCNN {small:.2f} dB ({small - jpeg:+.2f})")
    record(f"single_jpeg_psnr_qf{qf}", {"jpeg": jpeg, "fbcnn_small": small})
    target = {10: 0.8, 30: 0.5}.get(qf, 0.0)
    assert small - jpeg >= target


def test_qf_prediction_error(images, fbcnn, record):
    # predict_qf is what restore/evaluate report (patch median for the shipped model, trained on
    # 64-px patches); the whole-image reading (one pooling over the image) is printed beside it.
    mae = {}
    for qf in PREDICT_QFS:
        lqs = [jpeg_roundtrip(x, qf) for x in images]
        preds = np.array([predict_qf(fbcnn, lq, device="cpu") for lq in lqs])
        with torch.inference_mode():
            whole = np.array([float(fbcnn.predict_qf(torch.from_numpy(lq).float().div(255)[None, None])[0])
                              for lq in lqs])  # fmt: skip
        mae[qf] = {"mae": float(np.mean(np.abs(preds - qf))), "mean_pred": float(np.mean(preds)),
                   "whole_image_mae": float(np.mean(np.abs(whole - qf))), "whole_image_mean_pred": float(np.mean(whole))}  # fmt: skip
        print(f"QF {qf}: mean predicted {mae[qf]['mean_pred']:.1f}, MAE {mae[qf]['mae']:.2f} "
              f"(whole-image reading: {mae[qf]['whole_image_mean_pred']:.1f}, MAE {mae[qf]['whole_image_mae']:.2f})")  # fmt: skip
    overall = float(np.mean([v["mae"] for v in mae.values()]))
    overall_whole = float(np.mean([v["whole_image_mae"] for v in mae.values()]))
    print(f"QF MAE over {PREDICT_QFS[0]}..{PREDICT_QFS[-1]}: {overall:.2f} (whole-image reading {overall_whole:.2f}); "
          f"qf_patch = {fbcnn.qf_patch}")
    record("qf_prediction", {"per_qf": mae, "mean_mae": overall, "whole_image_mean_mae": overall_whole,
                              "qf_patch": fbcnn.qf_patch})  # fmt: skip
    assert overall <= 5.0


def _double_pairs(images, qf1: int, qf2: int) -> list[tuple[np.ndarray, np.ndarray]]:
    pairs = []
    for x in images:
        res = double_jpeg(x, qf1, qf2, SHIFT)
        pairs.append((res.lq_pixels, res.hq_pixels))
    return pairs


@pytest.mark.parametrize(("qf1", "qf2"), TABLE3_CELLS)
def test_fbcnn_a_beats_fbcnn_on_nonaligned_double_jpeg(images, fbcnn, fbcnn_a, qf1, qf2, record):
    pairs = _double_pairs(images, qf1, qf2)
    jpeg = float(np.mean([psnr(hq, lq) for lq, hq in pairs]))
    a, f = _mean_psnr(fbcnn_a, pairs), _mean_psnr(fbcnn, pairs)
    print(f"double ({qf1},{qf2}) shift {SHIFT}: JPEG {jpeg:.2f}, small FBCNN {f:.2f}, small FBCNN-A {a:.2f} dB")
    record(f"table3_psnr_{qf1}_{qf2}", {"jpeg": jpeg, "fbcnn_small": f, "fbcnn_a_small": a})
    assert a > f


@pytest.mark.parametrize(("qf1", "qf2"), TABLE3_CELLS)
def test_fbcnn_d_beats_fbcnn_on_nonaligned_double_jpeg(images, fbcnn, qf1, qf2, record):
    # fbcnn-d as evaluate runs it: the small FBCNN conditioned on the robust estimator's dominant QF.
    pairs = _double_pairs(images, qf1, qf2)
    fbcnn_d = get_method("fbcnn-d", weights=fbcnn, device="cpu")
    d = float(np.mean([psnr(hq, fbcnn_d(lq).image) for lq, hq in pairs]))
    f = _mean_psnr(fbcnn, pairs)
    print(f"double ({qf1},{qf2}) shift {SHIFT}: small FBCNN {f:.2f}, small FBCNN-D {d:.2f} dB")
    record(f"table3_fbcnn_d_psnr_{qf1}_{qf2}", {"fbcnn_small": f, "fbcnn_d_small": d})
    assert d > f


def test_manual_qf_lower_is_smoother(images, fbcnn, record):
    lq = jpeg_roundtrip(images[0], 30)

    def tv(x: np.ndarray) -> float:
        x = x.astype(np.float64)
        return float(np.abs(np.diff(x, axis=0)).mean() + np.abs(np.diff(x, axis=1)).mean())

    tvs = {qf: tv(restore(fbcnn, lq, qf=qf, device="cpu").image) for qf in (10, 30, 50, 90)}
    print("total variation by conditioning QF:", {k: round(v, 3) for k, v in tvs.items()})
    record("manual_qf_tv", {str(k): v for k, v in tvs.items()})
    assert tvs[10] < tvs[30] < tvs[90]
