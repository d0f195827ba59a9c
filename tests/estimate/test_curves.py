"""Recompression curves: the reference definition, the fast backend against it, geometry, input checks."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from jpegbench.codec import decode, encode, ijg_qtable, jpeg_roundtrip, rgb_to_y
from jpegbench.errors import InputError, JpegbenchError, QualityError, ShapeError
from jpegbench.estimate import (
    MSECurves,
    crop_for_shift,
    crop_geometry,
    mse_curves,
    mse_curves_batch,
    shift_for_crop,
)
from jpegbench.estimate import _ckernel
from jpegbench.estimate._fast import fast_sse
from jpegbench.estimate._islow import fdct_islow, idct_islow, range_limit
from jpegbench.estimate.curves import ALL_SHIFTS as ALL

# --- geometry ---------------------------------------------------------------------------------


@given(st.integers(0, 7), st.integers(0, 7))
def test_crop_for_shift_is_an_involution(dy, dx):
    crop = crop_for_shift((dy, dx))
    assert crop == ((8 - dy) % 8, (8 - dx) % 8)
    assert shift_for_crop(crop) == (dy, dx)


def test_crop_geometry_leaves_room_for_every_shift():
    assert crop_geometry(16, 16) == (8, 8)
    assert crop_geometry(512, 768) == (504, 760)  # a multiple of 8 loses its last block row
    assert crop_geometry(23, 31) == (16, 24)
    for h in range(16, 60):
        ch, _ = crop_geometry(h, h)
        assert ch % 8 == 0 and ch + 7 <= h < ch + 15


def test_shift_convention_first_grid_realigned(make_image):
    # Removing dy rows puts the first grid at row (8 - dy) % 8 of the result; the crop
    # for shift (dy, dx) must start exactly there.
    x = make_image(64, 64)
    grid = np.zeros_like(x, dtype=bool)
    grid[::8, ::8] = True  # top-left pixel of every first-compression block
    for dy, dx in [(0, 0), (3, 5), (7, 1), (4, 0)]:
        shifted = grid[dy:, dx:]
        cy, cx = crop_for_shift((dy, dx))
        assert shifted[cy, cx] and shifted[cy::8, cx::8].all()


# --- the reference backend is the definition --------------------------------------------------


def test_reference_is_encode_decode_mse_of_each_crop(make_image):
    x = make_image(21, 26, seed=3)
    qfs = [10, 55, 90]
    c = mse_curves(x, qfs=qfs, backend="reference", shifts=[(0, 0), (3, 5), (7, 7)])
    h, w = crop_geometry(21, 26)
    assert (h, w) == (8, 16) and c.crop_shape == (8, 16)
    for dy, dx in [(0, 0), (3, 5), (7, 7)]:
        cy, cx = crop_for_shift((dy, dx))
        crop = np.ascontiguousarray(x[cy : cy + h, cx : cx + w])
        for i, qf in enumerate(qfs):
            rec = decode(encode(crop, qf))
            assert c.mse[dy, dx, i] == np.mean((rec.astype(float) - crop) ** 2)
    assert np.isnan(c.mse[1, 1]).all()
    assert sorted(c.computed_shifts) == [(0, 0), (3, 5), (7, 7)]


def test_reference_zero_at_the_qf_of_a_jpeg(make_image):
    # Recompressing a decoded JPEG at its own QF on its own grid is (near) idempotent.
    x = jpeg_roundtrip(make_image(48, 48, seed=1), 50)
    c = mse_curves(x, qfs=range(40, 61), backend="reference", shifts="aligned")
    assert c.qfs[np.argmin(c.aligned)] == 50
    assert c.aligned[c.qf_index(50)] < 0.05


# --- the fast backend reproduces it ------------------------------------------------------------


def test_islow_dct_and_quantizer_match_the_file(camera, tmp_path):
    # The quantized coefficients the fast backend computes are those libjpeg writes
    # (read back with jpeglib, an independent reader).
    import jpeglib

    x = camera[:64, :96]
    blocks = torch.from_numpy(x.astype(np.int32) - 128).reshape(8, 8, 12, 8).permute(0, 2, 1, 3)
    t = fdct_islow(blocks).to(torch.int64)
    for qf in (3, 27, 50, 83, 97, 100):
        path = tmp_path / f"q{qf}.jpg"
        path.write_bytes(encode(x, qf))
        stored = torch.from_numpy(jpeglib.read_dct(str(path)).Y.astype(np.int64))
        q8 = 8 * torch.from_numpy(ijg_qtable(qf))
        k = torch.sign(t) * ((t.abs() + q8 // 2) // q8)
        assert torch.equal(k, stored), qf


@settings(max_examples=300, deadline=None)
@given(st.integers(-2**14, 2**14), st.integers(1, 255))
def test_fast_quantizer_is_libjpeg_rounding(t, q):
    # round((t + sign(t) / 4) / 8q) in float32 == sign(t) * ((|t| + 4q) // 8q), ties included.
    tt = torch.tensor([float(t)], dtype=torch.float32)
    nudged = tt + 0.25 * torch.sign(tt)
    got = int(torch.round(nudged * torch.tensor(1.0 / (8.0 * q), dtype=torch.float32)).item())
    want = int(np.sign(t)) * ((abs(t) + 4 * q) // (8 * q))
    assert got == want


KERNELS = ["c", "torch"]


@pytest.fixture(params=KERNELS)
def kernel(request, monkeypatch):
    """Run the fast backend with each implementation (the C one must have been built)."""
    if request.param == "c" and not _ckernel.available():
        if shutil.which("cc") or shutil.which("gcc"):
            pytest.fail("a C compiler is present but the kernel jpegbench.estimate._csse was not built")
        pytest.skip("no C compiler: the install skipped the optional C kernel")
    monkeypatch.setenv("JPEGBENCH_FAST_KERNEL", request.param)
    return request.param


def test_islow_idct_matches_the_decoder(camera, tmp_path):
    # idct_islow on the file's dequantized coefficients (jpeglib, an independent reader)
    # reproduces the decoder's pixels (Pillow's libjpeg-turbo) exactly, at every QF.
    import jpeglib

    x = camera[100:164, 40:136]
    for qf in (1, 4, 17, 50, 83, 96, 100):
        data = encode(x, qf)
        path = tmp_path / f"q{qf}.jpg"
        path.write_bytes(data)
        jpg = jpeglib.read_dct(str(path))
        coef = torch.from_numpy(jpg.Y.astype(np.int64) * jpg.qt[0].astype(np.int64))
        pixels = idct_islow(coef).numpy().transpose(0, 2, 1, 3).reshape(x.shape)
        assert np.array_equal(pixels, decode(data)), qf


def test_islow_idct_matches_libjpeg_c_far_out_of_range(tmp_path):
    # Coefficients no 8-bit image quantizes to (|k| up to 40 at q = 255: samples far outside
    # 0..255), so the range-limit table's wrap-around is exercised. libjpeg's C code (jpeglib's
    # 6b and turbo 2.1 builds) agrees with the emulation; Pillow's SIMD libjpeg-turbo saturates
    # such values differently, which never matters for curves of real images.
    import jpeglib

    rng = np.random.default_rng(7)
    (tmp_path / "a.jpg").write_bytes(encode(rng.integers(0, 256, (32, 48), dtype=np.uint8), 1))
    jpg = jpeglib.read_dct(str(tmp_path / "a.jpg"))
    jpg.Y = rng.integers(-40, 41, jpg.Y.shape).astype(np.int16)
    jpg.write_dct(str(tmp_path / "b.jpg"))
    coef = torch.from_numpy(jpg.Y.astype(np.int64) * jpg.qt[0].astype(np.int64))
    pixels = idct_islow(coef).numpy().transpose(0, 2, 1, 3).reshape(32, 48)
    for version in ("6b", "turbo210"):
        with jpeglib.version(version):
            decoded = jpeglib.read_spatial(str(tmp_path / "b.jpg")).spatial[..., 0]
        assert np.array_equal(pixels, decoded), version


def test_range_limit_is_libjpegs_table():
    v = torch.arange(-1024, 1024)
    got = range_limit(v).numpy()
    assert np.array_equal(got[(v >= -512) & (v < 512)], np.clip(np.arange(-512, 512) + 128, 0, 255))
    # beyond +-512 the masked index wraps: 600 & 1023 = 600 -> the table's zero region
    assert got[1024 + 600] == 0 and got[1024 - 600] == 255


@pytest.mark.parametrize(
    "chain",
    [None, (50, -1, (0, 0)), (30, 80, (0, 0)), (20, 70, (3, 6)), (95, 5, (1, 2))],
    ids=["raw", "single50", "aligned30-80", "nonaligned20-70", "nonaligned95-5"],
)
def test_fast_equals_reference(camera, double_jpeg, chain, kernel):
    # Bit-exact emulation of libjpeg's DCT, quantizer, IDCT and range limit: the curves
    # are the same numbers, not close ones, including the exact zeros of a recompression
    # at the file's own QF on its own grid.
    x = camera[200:260, 180:252]
    if chain is not None:
        qf1, qf2, shift = chain
        x = jpeg_roundtrip(x, qf1) if qf2 < 0 else double_jpeg(x, qf1, qf2, shift)[:52, :64]
    ref = mse_curves(x, backend="reference")
    fast = mse_curves(x, backend="fast")
    assert fast.mse.shape == ref.mse.shape == (8, 8, 100)
    assert np.array_equal(fast.mse, ref.mse)
    assert fast.conventions["implementation"] == kernel


def test_c_kernel_equals_torch_on_a_whole_image(camera):
    # A larger image than the reference comparison above affords, every shift and QF.
    x = jpeg_roundtrip(np.ascontiguousarray(jpeg_roundtrip(camera[:200, :264], 35)[3:, 6:]), 80)
    qfs = np.arange(1, 101)
    crops = [crop_for_shift(s) for s in [(0, 0), (5, 2), (7, 7)]]
    c = fast_sse([x], qfs, crops, kernel="c")[0]
    t = fast_sse([x], qfs, crops, kernel="torch")[0]
    assert np.array_equal(c, t)


def test_c_kernel_threads_and_batches_give_the_same_sums(camera):
    a, b = camera[:40, :56], camera[100:157, 300:333]
    qfs = np.arange(20, 100, 7)
    crops = [crop_for_shift(s) for s in ALL]
    one = fast_sse([a, b], qfs, crops, kernel="c")
    two = fast_sse([a, b], qfs, crops, kernel="c", num_threads=3)
    assert all(np.array_equal(p, q) for p, q in zip(one, two))


def test_kernel_choice_is_validated(monkeypatch, make_image):
    x = make_image(24, 24)
    with pytest.raises(InputError, match="kernel"):
        fast_sse([x], np.array([50]), [(0, 0)], kernel="asm")
    monkeypatch.setenv("JPEGBENCH_FAST_KERNEL", "fortran")
    with pytest.raises(InputError, match="JPEGBENCH_FAST_KERNEL"):
        mse_curves(x, qfs=[50])


def test_fast_chunking_and_batching_do_not_change_results(camera, kernel):
    a = camera[:40, :56]
    b = camera[100:157, 300:333]
    one = mse_curves(a, qfs=range(20, 100, 7))
    small = mse_curves(a, qfs=range(20, 100, 7), chunk_blocks=7)
    batch = mse_curves_batch([a, b], qfs=range(20, 100, 7), chunk_blocks=100)
    assert np.array_equal(one.mse, small.mse)  # exact integer sums, any chunking
    assert np.array_equal(one.mse, batch[0].mse)
    assert np.array_equal(mse_curves(b, qfs=range(20, 100, 7)).mse, batch[1].mse)
    assert batch[1].image_shape == (57, 33) and batch[1].crop_shape == (48, 24)


def test_fast_num_threads_is_restored(make_image, kernel):
    torch.set_num_threads(2)  # the autouse fixture restores the session's setting afterwards
    mse_curves(make_image(24, 24), qfs=[50, 90])  # runs with 1 thread by default
    assert torch.get_num_threads() == 2
    mse_curves(make_image(24, 24), qfs=[50, 90], num_threads=1)
    assert torch.get_num_threads() == 2


def test_rgb_uses_full_range_luma_by_default(make_image):
    rgb = make_image(32, 40, color="rgb")
    c = mse_curves(rgb, qfs=[30, 70])
    assert np.array_equal(c.mse, mse_curves(rgb_to_y(rgb, definition="bt601-full"), qfs=[30, 70]).mse)
    studio = mse_curves(rgb, qfs=[30, 70], luma="bt601-studio")
    assert np.array_equal(studio.mse, mse_curves(rgb_to_y(rgb), qfs=[30, 70]).mse)


def test_shift_subsets_and_accessors(make_image):
    x = make_image(40, 40)
    c = mse_curves(x, qfs=range(50, 61), shifts=[(2, 3)])
    assert isinstance(c, MSECurves)
    assert c.computed_shifts == [(2, 3)]
    assert np.array_equal(c.curve((2, 3)), c.mse[2, 3])
    assert np.isnan(c.aligned).all()
    full = mse_curves(x, qfs=range(50, 61))
    assert np.array_equal(full.mse[2, 3], c.mse[2, 3])
    with pytest.raises(InputError):
        c.qf_index(49)


# --- input checks -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((15, 40), np.uint8),
        np.zeros((40, 15), np.uint8),
        np.zeros((32, 32), np.uint16),
        np.zeros((32, 32), np.float32),
        np.zeros((32, 32, 4), np.uint8),
        np.zeros((32,), np.uint8),
        [[0] * 32] * 32,
    ],
    ids=["short", "narrow", "uint16", "float", "rgba", "1d", "list"],
)
def test_bad_pixels_raise_shape_error(bad):
    with pytest.raises(ShapeError):
        mse_curves(bad)
    with pytest.raises(ValueError):  # the tree's leaves are ValueErrors too
        mse_curves(bad)


def test_bad_options_raise_project_errors(make_image):
    x = make_image(32, 32)
    with pytest.raises(QualityError):
        mse_curves(x, qfs=[0, 50])
    with pytest.raises(QualityError):
        mse_curves(x, qfs=[50, 101])
    for qfs in ([], [50, 50], "50"):
        with pytest.raises(InputError):
            mse_curves(x, qfs=qfs)
    for kw in (
        {"backend": "slow"},
        {"shifts": "some"},
        {"shifts": [(8, 0)]},
        {"shifts": []},
        {"device": "tpu"},
        {"chunk_blocks": 0},
        {"num_threads": 0},
        {"backend": "reference", "device": "cpu"},
        {"backend": "fast", "codec": "jpeglib"},
        {"backend": "reference", "codec": "nope"},
    ):
        with pytest.raises(JpegbenchError):
            mse_curves(x, qfs=[50], **kw)
    with pytest.raises(InputError):
        mse_curves_batch(x)


def test_cuda_device_unavailable_is_an_input_error(make_image):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present; see test_fast_on_cuda_matches_cpu")
    with pytest.raises(InputError, match="cuda"):
        mse_curves(make_image(32, 32), device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fast_on_cuda_matches_cpu(camera):
    x = jpeg_roundtrip(camera[:120, :136], 60)
    cpu = mse_curves(x, device="cpu")
    gpu = mse_curves(x, device="cuda")
    assert np.array_equal(cpu.mse, gpu.mse)  # integer arithmetic on both


def test_matmul_idct_equals_the_elementwise_one():
    # The torch implementation's fast path against its specification, on coefficients from
    # typical to far out of range (where the range-limit table wraps).
    from jpegbench.estimate._islow import idct_islow_unlimited

    def idct_islow_matmul(coef):
        return range_limit(idct_islow_unlimited(coef.to(torch.float64)).to(torch.int32) - 128)

    g = torch.Generator().manual_seed(0)
    for scale in (8, 200, 2000, 40 * 255):
        coef = torch.randint(-scale, scale + 1, (2000, 8, 8), generator=g)
        assert torch.equal(idct_islow_matmul(coef), idct_islow(coef)), scale


@pytest.mark.parametrize("scale", [8, 2000, 40 * 255])
def test_torch_squared_error_path_is_exact_in_and_out_of_range(scale):
    from jpegbench.estimate._fast import _exact_sq_err

    g = torch.Generator().manual_seed(scale)
    coef = torch.randint(-scale, scale + 1, (500, 8, 8), generator=g)
    x = torch.randint(0, 256, (500, 8, 8), generator=g)
    want = ((idct_islow(coef) - x).to(torch.int64) ** 2).sum((1, 2))
    got = _exact_sq_err(coef.to(torch.float64), x.to(torch.float64))
    assert torch.equal(got.to(torch.int64), want)
