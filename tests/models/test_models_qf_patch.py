"""Patch-wise QF reading: a model trained on small patches is read at that size (median over a patch grid)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from jpegbench.models import load_model, predict_qf, qf_patch_from_meta, restore, restore_batch, save_checkpoint
from jpegbench.models.training import export_weights


def _manual_patch_median(model, x: np.ndarray, p: int) -> float:
    t = torch.from_numpy(x).float().div(255)[None, None]
    rows, cols = x.shape[0] // p, x.shape[1] // p
    patches = [t[..., i * p : (i + 1) * p, j * p : (j + 1) * p] for i in range(rows) for j in range(cols)]
    with torch.inference_mode():
        values = torch.cat([model.predict_qf(q) for q in patches]).numpy()
    return float(np.median(values))


@pytest.mark.parametrize("meta, expected", [
    ({"qf_patch": 64}, 64), ({"qf_patch": 128}, 128), ({}, None), ({"qf_patch": 60}, None),
    ({"qf_patch": 8}, None), ({"qf_patch": True}, None), ({"qf_patch": "64"}, None), (None, None),
])  # fmt: skip
def test_qf_patch_from_meta(meta, expected):
    assert qf_patch_from_meta(meta) == expected


def test_without_qf_patch_the_whole_image_is_read(model_factory, make_image):
    model = model_factory()
    x = make_image(80, 96)
    with torch.inference_mode():
        whole = float(model.predict_qf(torch.from_numpy(x).float().div(255)[None, None])[0])
    assert model.qf_patch is None
    assert predict_qf(model, x, device="cpu") == pytest.approx(whole, abs=1e-5)
    assert restore(model, x, device="cpu").qf_predicted == pytest.approx(whole, abs=1e-5)


def test_patch_median_is_read_and_conditions_the_decoder(model_factory, make_image):
    model = model_factory(seed=3)
    model.qf_patch = 32
    x = make_image(80, 104, seed=2)  # 2 x 3 full patches; the remainder is not read
    expected = _manual_patch_median(model, x, 32)
    assert predict_qf(model, x, device="cpu") == pytest.approx(expected, abs=1e-4)
    blind = restore(model, x, device="cpu", return_qf_map=True)
    assert blind.qf_predicted == blind.qf_used == pytest.approx(expected, abs=1e-4)
    assert blind.qf_map.shape == (2, 3)
    assert np.array_equal(blind.image, restore(model, x, device="cpu", qf=blind.qf_used).image)
    tiled = restore(model, x, device="cpu", tile=48, overlap=16)
    assert tiled.qf_used == pytest.approx(expected, abs=1e-4)
    # restore_batch agrees with restore, image by image
    y = make_image(80, 104, seed=5)
    batch = restore_batch(model, [x, y], device="cpu")
    assert batch[0].qf_predicted == pytest.approx(expected, abs=1e-4)
    assert np.array_equal(batch[0].image, blind.image)
    assert batch[1].qf_used == pytest.approx(predict_qf(model, y, device="cpu"), abs=1e-4)
    # smaller than one patch: the whole image
    small = x[:24, :40]
    with torch.inference_mode():
        whole = float(model.predict_qf(torch.from_numpy(small).float().div(255)[None, None])[0])
    assert predict_qf(model, small, device="cpu") == pytest.approx(whole, abs=1e-5)


def test_exported_weights_carry_the_training_patch_size(tmp_path, model_factory):
    model = model_factory()
    run = save_checkpoint(model, tmp_path / "last.pt", meta={"train_config": {"data": {"patch_size": 48}}})
    out = export_weights(run, tmp_path / "shipped.pt")
    assert load_model(out, device="cpu").qf_patch == 48
    plain = save_checkpoint(model, tmp_path / "plain.pt")
    assert load_model(plain, device="cpu").qf_patch is None
    override = export_weights(run, tmp_path / "o.pt", meta={"qf_patch": 64})
    assert load_model(override, device="cpu").qf_patch == 64
