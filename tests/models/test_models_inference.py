"""uint8 inference: devices, padding, tiled == untiled, one global QF, colour policy, batching."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from jpegbench.codec import rgb_to_ycbcr
from jpegbench.errors import InputError, QualityError, ShapeError
from jpegbench.models import pick_device, receptive_field_margin, restore, restore_batch, tile_spans
from jpegbench.models.inference import _tiled

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none on this machine)")


def _round8(v: int) -> int:
    return -(-v // 8) * 8


# -- devices ----------------------------------------------------------------------------


def test_pick_device_default():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert pick_device().type == expected
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize("device", ["gpu0", "tpu", 3, "cuda:99"])
def test_pick_device_invalid(device):
    with pytest.raises(InputError):
        pick_device(device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_pick_device_cuda_unavailable():
    with pytest.raises(InputError, match="CUDA is not available"):
        pick_device("cuda")


# -- receptive field and tile layout ----------------------------------------------------


def test_receptive_field_margin_values(model_factory):
    # Values derived by hand in the inference module docstring.
    assert [receptive_field_margin(nb) for nb in (1, 2, 4)] == [63, 125, 249]
    assert receptive_field_margin(model_factory(nb=2)) == 125
    with pytest.raises(InputError):
        receptive_field_margin(0)


@settings(max_examples=200, deadline=None)
@given(
    length=st.integers(1, 3000),
    tile_blocks=st.integers(2, 80),
    overlap_blocks=st.integers(0, 39),
)
def test_tile_spans_partition_and_alignment(length, tile_blocks, overlap_blocks):
    tile, overlap = 8 * tile_blocks, 8 * overlap_blocks
    assume(2 * overlap < tile)
    spans = tile_spans(length, tile=tile, overlap=overlap)
    assert spans[0][2] == 0 and spans[-1][3] == length
    for (start, stop, keep0, keep1), nxt in zip(spans, spans[1:] + [None]):
        assert start % 8 == 0
        assert 0 < stop - start <= tile
        assert start <= keep0 < keep1 <= stop
        assert keep0 == 0 or keep0 - start >= overlap
        assert keep1 == length or stop - keep1 >= overlap
        if nxt is not None:
            assert nxt[2] == keep1  # kept ranges are contiguous
            assert stop - start == tile  # only the last tile may be short


@pytest.mark.parametrize(("tile", "overlap"), [(100, 8), (8, 0), (64, 32), (64, -8), (64, 12), (True, 0)])
def test_bad_tiling_raises(model_factory, image_factory, tile, overlap):
    with pytest.raises(InputError):
        restore(model_factory(), image_factory(40, 40), tile=tile, overlap=overlap)


# -- tiled == untiled -------------------------------------------------------------------


@pytest.mark.parametrize("nb", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_tiled_equals_untiled_with_margin_overlap(model_factory, image_factory, nb):
    model = model_factory(nb=nb)
    overlap = _round8(receptive_field_margin(nb))  # 64 for nb=1, 128 for nb=2
    tile = 2 * overlap + 32
    image = image_factory(tile + 69, tile + 35, seed=nb)  # 4 x 3 tiles, short last ones
    planes = image[None]
    with torch.no_grad():
        whole, _ = model(torch.from_numpy(planes[None] / np.float32(255.0)), qf=35.0)
    whole = whole[0].clamp(0, 1).numpy()
    tiled, *_, count = _tiled(
        model, planes, 35.0, tile=tile, overlap=overlap, batch_size=2, device=torch.device("cpu"), precision="auto"
    )
    assert count > 4
    assert np.abs(tiled - whole).max() < 1e-4
    # Clamping must not hide the comparison: most outputs are inside (0, 1).
    assert np.mean((whole > 0) & (whole < 1)) > 0.95


def test_tiled_too_small_overlap_differs(model_factory, image_factory):
    """Control for the test above: without context the seams show."""
    model = model_factory(nb=1)
    image = image_factory(200, 200)
    planes = image[None]
    with torch.no_grad():
        whole = model(torch.from_numpy(planes[None] / np.float32(255.0)), qf=35.0)[0][0].clamp(0, 1).numpy()
    tiled, *_ = _tiled(
        model, planes, 35.0, tile=64, overlap=0, batch_size=1, device=torch.device("cpu"), precision="auto"
    )
    assert np.abs(tiled - whole).max() > 1e-3


def test_tiled_blind_uses_one_global_qf(model_factory, image_factory):
    model = model_factory(nb=1)
    image = image_factory(200, 260, seed=3)
    blind = restore(model, image, tile=128, overlap=16, return_qf_map=True)
    assert blind.tiles == blind.qf_map.size > 1
    assert blind.qf_used == pytest.approx(float(np.median(blind.qf_map)))
    assert blind.qf_predicted == pytest.approx(blind.qf_used)
    forced = restore(model, image, qf=blind.qf_used, tile=128, overlap=16, return_qf_map=True)
    np.testing.assert_array_equal(forced.image, blind.image)
    np.testing.assert_allclose(forced.qf_map, blind.qf_map, atol=1e-3)


def test_untiled_when_image_fits_in_tile(model_factory, image_factory):
    model, image = model_factory(), image_factory(40, 48)
    a, b = restore(model, image), restore(model, image, tile=64)
    np.testing.assert_array_equal(a.image, b.image)
    assert b.tiles == 1


# -- contract -----------------------------------------------------------------------------


@pytest.mark.parametrize(("height", "width"), [(1, 1), (13, 21), (31, 9)])
def test_restore_odd_sizes(model_factory, image_factory, height, width):
    result = restore(model_factory(), image_factory(height, width))
    assert result.image.shape == (height, width) and result.image.dtype == np.uint8
    assert 0 <= result.qf_predicted <= 100 and result.qf_used == result.qf_predicted


def test_manual_qf_changes_output_and_is_reported(model_factory, image_factory):
    model, image = model_factory(), image_factory(48, 48)
    blind = restore(model, image)
    low, high = restore(model, image, qf=5), restore(model, image, qf=95)
    assert (low.qf_used, high.qf_used) == (5.0, 95.0)
    assert low.qf_predicted == pytest.approx(blind.qf_predicted)
    assert np.any(low.image != high.image)


def test_input_not_modified(model_factory, image_factory):
    image = image_factory(24, 24, color="rgb")
    before = image.copy()
    restore(model_factory(), image, color_policy="y")
    np.testing.assert_array_equal(image, before)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"qf": 0}, QualityError),
        ({"qf": 101}, QualityError),
        ({"qf": "30"}, QualityError),
        ({"precision": "fp16"}, InputError),
        ({"precision": "fp8"}, InputError),
        ({"color_policy": "luma"}, InputError),
        ({"batch_size": 0}, InputError),
    ],
)
def test_restore_bad_options(model_factory, image_factory, kwargs, error):
    if torch.cuda.is_available() and kwargs.get("precision") == "fp16":
        pytest.skip("fp16 is valid on a CUDA default device")
    with pytest.raises(error):
        restore(model_factory(), image_factory(16, 16), **kwargs)


@pytest.mark.parametrize("pixels", [np.zeros((8, 8), np.float32), np.zeros((8, 8, 4), np.uint8), [[0]]])
def test_restore_bad_pixels(model_factory, pixels):
    with pytest.raises(ShapeError):
        restore(model_factory(), pixels)


def test_restore_requires_fbcnn(image_factory):
    with pytest.raises(InputError):
        restore(torch.nn.Identity(), image_factory(8, 8))


# -- colour -------------------------------------------------------------------------------


def test_gray_model_rgb_input_needs_a_policy(model_factory, image_factory):
    with pytest.raises(ShapeError, match="color_policy='y'"):
        restore(model_factory(), image_factory(24, 24, color="rgb"))


def test_gray_model_y_policy_keeps_chroma(model_factory, image_factory):
    image = image_factory(32, 40, color="rgb")
    result = restore(model_factory(), image, color_policy="y")
    assert result.image.shape == image.shape and result.image.dtype == np.uint8
    before, after = rgb_to_ycbcr(image), rgb_to_ycbcr(result.image)
    # Cb/Cr survive up to RGB rounding (and clipping where Y moved far).
    assert np.median(np.abs(after[..., 1:] - before[..., 1:])) < 1.0
    assert np.abs(after[..., 0] - before[..., 0]).mean() > 1.0  # Y was restored


def test_color_model(model_factory, image_factory):
    model = model_factory(in_nc=3)
    result = restore(model, image_factory(24, 30, color="rgb"))
    assert result.image.shape == (24, 30, 3)
    with pytest.raises(ShapeError, match="RGB"):
        restore(model, image_factory(24, 30))


# -- batching -----------------------------------------------------------------------------


def test_restore_batch_matches_single(model_factory, image_factory):
    model = model_factory()
    images = [image_factory(24, 32, seed=s) for s in range(3)] + [image_factory(17, 9, seed=9)]
    batch = restore_batch(model, images, batch_size=2)
    for image, got in zip(images, batch):
        single = restore(model, image)
        assert np.abs(got.image.astype(int) - single.image.astype(int)).max() <= 1  # batched conv rounding
        assert got.qf_predicted == pytest.approx(single.qf_predicted, abs=1e-3)


def test_restore_batch_per_image_qf(model_factory, image_factory):
    model = model_factory()
    images = [image_factory(16, 16, seed=s) for s in range(2)]
    results = restore_batch(model, images, qf=[10, 90])
    assert [r.qf_used for r in results] == [10.0, 90.0]
    with pytest.raises(InputError, match="one per image"):
        restore_batch(model, images, qf=[10])
    with pytest.raises(InputError):
        restore_batch(model, images[0])


# -- CUDA ---------------------------------------------------------------------------------


@requires_cuda
@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
def test_cuda_matches_cpu(model_factory, image_factory, precision):
    image = image_factory(64, 72)
    cpu = restore(model_factory(), image, device="cpu")
    gpu = restore(model_factory(), image, device="cuda", precision=precision)
    tolerance = {"fp32": 1, "fp16": 2, "bf16": 4}[precision]
    assert np.abs(cpu.image.astype(int) - gpu.image.astype(int)).max() <= tolerance
    assert gpu.qf_predicted == pytest.approx(cpu.qf_predicted, abs=0.5)


@requires_cuda
def test_cuda_tiled(model_factory, image_factory):
    model = model_factory(nb=1)
    image = image_factory(300, 280)
    whole = restore(model, image, qf=40, device="cuda", precision="fp32")
    tiled = restore(model, image, qf=40, tile=192, overlap=64, batch_size=4, device="cuda", precision="fp32")
    assert np.abs(whole.image.astype(int) - tiled.image.astype(int)).max() <= 1


def test_default_overlap_is_exact_enough_for_the_shipped_model():
    """The default overlap (64) is below the exact margin of nb=2 (125 px); measured on the trained model."""
    from skimage import data

    from jpegbench.codec import jpeg_roundtrip
    from jpegbench.models.weights import load_model, shipped_weights_dir

    model = load_model(shipped_weights_dir() / "fbcnn_small_gray.pt")
    lq = jpeg_roundtrip(data.camera(), 10)
    ref = restore(model, lq)
    full = ref.image.astype(int)
    # The same QF for both (blind tiling takes the median of the tiles' predictions): the tiling alone.
    tiled = restore(model, lq, tile=256, qf=ref.qf_used).image.astype(int)  # default overlap
    diff = np.abs(full - tiled)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-4
    seams = np.abs(full - restore(model, lq, tile=256, overlap=0, qf=ref.qf_used).image.astype(int))
    assert seams.max() > 1 and (seams > 0).mean() > 1e-3  # no context: visible seams (the check can fail)
