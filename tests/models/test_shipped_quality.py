"""The shipped small gray weights restore well enough: floors that break when the weight files do.

Images: centre crops (128 x 128) of the BT.601 studio-swing Y of scikit-image's
bundled public-domain photographs (``camera``, ``astronaut``, ``coffee``,
``chelsea``); no test set of the paper, nothing from ``../shared``.

Measured with the stage-3 shipped weights (torch 2.13 CPU, 2026-12-02), blind
``fbcnn`` at QF 10, PSNR gain over the JPEG: camera +1.41, astronaut +1.06,
coffee +1.35, chelsea +0.75 dB (mean +1.14). Non-aligned double JPEG (10, 30)
with shift (4, 4) on ``coffee``: JPEG 30.16, fbcnn 30.72, fbcnn-d 31.25 (robust
estimate QF 10), fbcnn-a 30.93 dB. The floors below leave about 0.3 dB of
margin. Checked once by breaking the files: zeroed weights give -21 dB;
every parameter scaled by 1 + 5 % Gaussian noise gives a mean gain of +0.45 dB,
and fbcnn-a falls 4 dB below fbcnn: both tests fail.
"""

from __future__ import annotations

import numpy as np
import pytest

from jpegbench.codec import jpeg_roundtrip, rgb_to_y
from jpegbench.metrics import psnr
from jpegbench.models import SHIPPED_WEIGHTS, get_method, load_model, restore
from jpegbench.models.weights import shipped_weights_dir
from jpegbench.synth import double_jpeg

CROP = 128
PHOTOS = ("camera", "astronaut", "coffee", "chelsea")
# Mean gain over JPEG at QF 10 (measured +1.14 dB) and the worst single crop (measured +0.75 dB).
MEAN_GAIN_FLOOR_DB = 0.8
CROP_GAIN_FLOOR_DB = 0.4
# fbcnn-d over fbcnn on coffee (10, 30) shift (4, 4): measured +0.53 dB; fbcnn-a over fbcnn: +0.21 dB.
D_OVER_BLIND_DB = 0.25
A_OVER_BLIND_DB = 0.1


def _photo(name: str) -> np.ndarray:
    from skimage import data

    x = np.asarray(getattr(data, name)())
    y = rgb_to_y(x[..., :3]) if x.ndim == 3 else x
    top, left = (y.shape[0] - CROP) // 2, (y.shape[1] - CROP) // 2
    return np.ascontiguousarray(y[top : top + CROP, left : left + CROP])


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    return {name: _photo(name) for name in PHOTOS}


def test_shipped_fbcnn_beats_jpeg_at_qf10(photos):
    model = load_model(shipped_weights_dir() / SHIPPED_WEIGHTS["fbcnn"], device="cpu")
    gains = {}
    for name, x in photos.items():
        lq = jpeg_roundtrip(x, 10)
        gains[name] = psnr(x, restore(model, lq, device="cpu").image) - psnr(x, lq)
    shown = ", ".join(f"{k} {v:+.2f}" for k, v in gains.items())
    assert np.mean(list(gains.values())) >= MEAN_GAIN_FLOOR_DB, f"PSNR gain over JPEG at QF 10 (dB): {shown}"
    assert min(gains.values()) >= CROP_GAIN_FLOOR_DB, f"PSNR gain over JPEG at QF 10 (dB): {shown}"


def test_shipped_fbcnn_d_and_a_beat_fbcnn_on_nonaligned_double_jpeg(photos):
    x = photos["coffee"]
    chain = double_jpeg(x, 10, 30, (4, 4))
    lq, ref = chain.lq_pixels, chain.hq_pixels
    assert np.array_equal(ref, x[4:, 4:])
    scores, qfs = {}, {}
    for name in ("jpeg", "fbcnn", "fbcnn-d", "fbcnn-a"):
        r = get_method(name, device="cpu")(lq)
        scores[name], qfs[name] = psnr(ref, r.image), r.qf_used
    shown = ", ".join(f"{k} {v:.2f} dB (QF used {qfs[k]})" for k, v in scores.items())
    assert qfs["fbcnn-d"] == pytest.approx(10, abs=2), shown  # the robust estimate of the dominant QF
    assert scores["fbcnn-d"] - scores["fbcnn"] >= D_OVER_BLIND_DB, shown
    assert scores["fbcnn-a"] - scores["fbcnn"] >= A_OVER_BLIND_DB, shown
    assert scores["fbcnn"] > scores["jpeg"], shown
