"""JpegDegradation transform and PatchDataset: shapes, dtypes, determinism, grid alignment."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from jpegbench.codec import decode, encode
from jpegbench.errors import InputError, ShapeError
from jpegbench.synth.dataset import PARAM_KEYS, JpegDegradation, PatchDataset


def test_transform_single(image_factory, rng):
    t = JpegDegradation(mode="single", qf_range=(20, 20))
    x = image_factory(32, 32)
    lq, hq, p = t(x, rng)
    assert t.margin == 0 and lq.shape == hq.shape == (32, 32) and lq.dtype == np.uint8
    np.testing.assert_array_equal(lq, decode(encode(x, 20)))
    assert set(p) == set(PARAM_KEYS)
    assert (p["qf1"], p["qf2"], p["qf_last"], p["n_jpeg"], p["is_double"]) == (20, -1, 20, 1, False)


def test_transform_double_last_grid_at_patch_origin(image_factory, rng):
    t = JpegDegradation(mode="double", qf_range=(30, 30), qf2_range=(10, 10), shift=(3, 6))
    x = image_factory(40, 40, color="rgb")
    lq, hq, p = t(x, rng)
    assert t.margin == 8 and lq.shape == hq.shape == (32, 32, 3)
    # The last JPEG was taken on the shifted image, whose origin is the patch origin.
    shifted = decode(encode(x, 30))[3:, 6:]
    np.testing.assert_array_equal(lq, decode(encode(shifted, 10))[:32, :32])
    np.testing.assert_array_equal(hq, x[3:35, 6:38])
    assert (p["shift_dy"], p["shift_dx"], p["regime"], p["dominant_qf"]) == (3, 6, "simple", 10)


def test_transform_modes_draw_as_asked(image_factory):
    x = image_factory(24, 24)
    r = np.random.default_rng(0)
    ps = [JpegDegradation(mode="double", shift="nonaligned")(x, r)[2] for _ in range(20)]
    assert all(p["is_double"] and not p["aligned"] for p in ps)
    ps = [JpegDegradation(mode="mixed", double_prob=0.5, shift="aligned")(x, r)[2] for _ in range(40)]
    assert {p["n_jpeg"] for p in ps} == {1, 2} and all(p["aligned"] for p in ps)


def test_transform_errors(image_factory, rng):
    with pytest.raises(InputError, match="mode"):
        JpegDegradation(mode="triple")
    with pytest.raises(InputError, match="qf_range"):
        JpegDegradation(qf_range=(0, 50))
    with pytest.raises(InputError, match="shift"):
        JpegDegradation(shift=(8, 0))
    with pytest.raises(ShapeError, match="margin"):
        JpegDegradation(mode="double")(image_factory(8, 8), rng)
    with pytest.raises(InputError, match="Generator"):
        JpegDegradation()(image_factory(8, 8), 0)


@pytest.mark.parametrize("color,channels", [("gray", 1), ("rgb", 3)])
def test_dataset_shapes_and_dtypes(image_folder, color, channels):
    src = image_folder(3, height=40, width=40, color="rgb")
    ds = PatchDataset(src, patch_size=16, color=color, degradation=JpegDegradation(mode="mixed"), seed=1, length=5)
    assert len(ds) == 5
    item = ds[4]
    assert item["lq"].shape == item["hq"].shape == (channels, 16, 16)
    assert item["lq"].dtype == torch.float32 and 0 <= item["lq"].min() and item["lq"].max() <= 1
    assert item["qf"].shape == (1,) and item["qf"].dtype == torch.float32
    assert item["is_double"].dtype == torch.bool
    for k in ("qf1", "qf2", "shift_dy", "shift_dx", "dominant_qf", "n_jpeg"):
        assert item[k].dtype == torch.int64 and item[k].shape == ()
    assert item["qf"].item() == (item["qf2"] if item["is_double"] else item["qf1"]).item()
    batch = torch.utils.data.default_collate([ds[i] for i in range(4)])
    assert batch["lq"].shape == (4, channels, 16, 16) and batch["qf"].shape == (4, 1)


def test_dataset_deterministic_per_seed_index_epoch(image_folder):
    src = image_folder(3)
    deg = JpegDegradation(mode="mixed")
    a = PatchDataset(src, patch_size=16, degradation=deg, seed=7, length=6)
    b = PatchDataset(src, patch_size=16, degradation=deg, seed=7, length=6, preload=False)
    for i in (5, 0, 3):  # order must not matter
        ia, ib = a[i], b[i]
        assert all(torch.equal(ia[k], ib[k]) for k in ia)
    e0 = a[2]
    a.set_epoch(1)
    assert not torch.equal(a[2]["hq"], e0["hq"])
    a.set_epoch(0)
    assert torch.equal(a[2]["lq"], e0["lq"])
    c = PatchDataset(src, patch_size=16, degradation=deg, seed=8, length=6)
    assert not all(torch.equal(c[i]["hq"], a[i]["hq"]) for i in range(6))


def test_dataset_errors(image_folder, tmp_path):
    src = image_folder(2, height=20, width=20)
    with pytest.raises(InputError, match="patch_size"):
        PatchDataset(src, patch_size=4)
    with pytest.raises(InputError, match="color"):
        PatchDataset(src, color="cmyk")
    with pytest.raises(OSError, match="smaller than the minimum"):
        PatchDataset(src, patch_size=16, degradation=JpegDegradation(mode="double"))
    with pytest.raises(OSError, match="no such file"):
        PatchDataset(tmp_path / "missing")
    with pytest.raises(IndexError):
        PatchDataset(src, patch_size=8)[2]


def test_dataset_pickles_for_dataloader_workers(image_folder):
    import pickle

    ds = PatchDataset(image_folder(2), patch_size=16, degradation=JpegDegradation(mode="double"), seed=3)
    clone = pickle.loads(pickle.dumps(ds))
    assert torch.equal(clone[1]["lq"], ds[1]["lq"])
