"""Tiled inference of QCN, QGCN and IJCN: tiled == untiled, receptive-field margins, tables and colour handling.

Every model is a seeded random network, small enough for one CPU thread.
The exactness claims are the module docstring's: with an overlap of at
least :func:`guided_margin` (rounded up to the tiling grid) tiled and
untiled outputs agree to float rounding everywhere; with the default
overlap of 64 pixels they agree in the tile interiors (pixels at least
the margin away from every tile border that is not the image's); with
overlap 0 they do not (so these tests can fail).
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from jpegbench.codec import decode, ijg_qtable, read_coefficients, rgb_to_y
from jpegbench.errors import InputError, UnsupportedImageError
from jpegbench.models import IJCN, QCN, QGCN, guided_margin, restore_ijcn, restore_qcn, tile_spans
from jpegbench.models.guided_inference import check_guided_tiling, run_ijcn, run_qcn
from jpegbench.models.jpeg_inputs import ijcn_inputs, ijcn_output_to_uint8, qcn_inputs, qcn_output_to_uint8


@pytest.fixture(autouse=True)
def _cpu_by_default(monkeypatch):
    # Comparisons are float32 on the CPU: CUDA's TF32 convolutions would need looser tolerances.
    import jpegbench.models.guided_inference as guided

    real = guided.pick_device
    monkeypatch.setattr(guided, "pick_device", lambda device=None: real("cpu" if device is None else device))


def _seeded(cls, seed=0, **kwargs):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return cls(**kwargs).eval()


def tiny_qcn(color="gray", seed=0):
    cin, cout = (2, 1) if color == "gray" else (5, 3)
    return _seeded(QCN, seed, in_channel=cin, out_channel=cout, n_feats=8, n_resblocks=2)


def small_qgcn(color="gray", seed=0):
    cin, cout, cg = (2, 1, 1) if color == "gray" else (5, 3, 3)
    return _seeded(QGCN, seed, in_channel=cin, in_glo_channel=cg, out_channel=cout, n_feats=64, n_resblocks=2)


def tiny_ijcn(seed=0, gain=1.3):
    """A narrow IJCN whose U-Net convolutions are scaled by ``gain``.

    At random initialisation the U-Net's residual is tiny, so tile borders
    would hardly show; scaling its convolutions (ReLU, std of the residual
    about 4) makes a wrong tiling visible while staying finite.
    """
    model = _seeded(IJCN, seed, nc=[8, 16, 8, 16], act_mode="R")
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 4 and not name.startswith("DCT_offset"):
                p.mul_(gain)
    return model


def _ceil(v, grid):
    return -(-v // grid) * grid


def _coefficients(height, width, seed=1):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(-3, 4, (1, 1, height // 8, width // 8, 8, 8), generator=g).float()
    y[..., 0, 0] = torch.randint(-40, 40, (1, 1, height // 8, width // 8), generator=g).float()
    c = torch.randint(-2, 3, (1, 2, height // 16, width // 16, 8, 8), generator=g).float()
    t = torch.randint(2, 30, (1, 3, 8, 8), generator=g).float()
    return t, y, c


def _jpeg_bytes(pixels, qf, **kwargs):
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=qf, **kwargs)
    return buf.getvalue()


# -- margins -------------------------------------------------------------------------


def test_margins_of_the_released_configurations():
    with torch.device("meta"):
        qcn = QCN(in_channel=2, out_channel=1, n_resblocks=64)
        qgcn = QGCN(in_channel=2, in_glo_channel=1, out_channel=1, n_resblocks=64)
        ijcn = IJCN()
    assert (guided_margin(qcn), guided_margin(qgcn), guided_margin(ijcn)) == (263, 265, 183)
    assert guided_margin(tiny_qcn()) == 15 and guided_margin(small_qgcn()) == 17
    with pytest.raises(InputError, match="QCN, QGCN or IJCN"):
        guided_margin(torch.nn.Conv2d(1, 1, 3))


def test_qcn_margin_is_the_reach_of_a_border_change(rng):
    # Changing the first 8 columns changes outputs exactly `margin` columns further (QCN has no global branch).
    model = tiny_qcn()
    planes = rng.integers(0, 256, (1, 64, 96), dtype=np.uint8)
    changed = planes.copy()
    changed[:, :, :8] = 255 - changed[:, :, :8]
    a, _ = run_qcn(model, planes, [ijg_qtable(30)])
    b, _ = run_qcn(model, changed, [ijg_qtable(30)])
    reach = int(np.nonzero(np.abs(a - b).max(axis=(0, 1)) > 0)[0].max()) - 7
    assert reach == guided_margin(model)


def test_ijcn_margin_bounds_the_unet_reach():
    model = tiny_ijcn()
    tables = torch.full((1, 3, 8, 8), 10.0)
    x = torch.rand(1, 3, 64, 320, generator=torch.Generator().manual_seed(0))
    changed = x.clone()
    changed[..., :8] = 1 - changed[..., :8]
    with torch.inference_mode():
        diff = (model.refine(x, tables) - model.refine(changed, tables)).abs().amax(dim=(0, 1, 2))
    reach = int(torch.nonzero(diff > 0).max()) - 7
    assert 150 < reach <= guided_margin(model)


# -- QCN / QGCN ----------------------------------------------------------------------


@pytest.mark.parametrize("make, color", [(tiny_qcn, "gray"), (tiny_qcn, "rgb"), (small_qgcn, "gray"),
                                         (small_qgcn, "rgb")])  # fmt: skip
def test_untiled_restore_is_the_authors_forward(make, color, image_factory):
    model = make("gray" if color == "gray" else "color")
    pixels = image_factory(37, 50, color=color)  # not multiples of 8: padded and cropped
    tables = [ijg_qtable(25), ijg_qtable(25, chroma=True)][: 1 if color == "gray" else 2]
    inputs = qcn_inputs(pixels, tables)
    with torch.inference_mode():
        ref = model(inputs.image) if isinstance(model, QCN) else model(inputs.image, inputs.resized)
    image, tiles = restore_qcn(model, pixels, tables)
    assert tiles == 1 and image.shape == pixels.shape and image.dtype == np.uint8
    np.testing.assert_array_equal(image, qcn_output_to_uint8(ref, 37, 50))


@pytest.mark.parametrize("make", [tiny_qcn, small_qgcn])
@pytest.mark.parametrize("color", ["gray", "color"])
def test_tiled_equals_untiled_with_overlap_at_least_the_margin(make, color, rng):
    model = make(color)
    c = 1 if color == "gray" else 3
    planes = rng.integers(0, 256, (c, 136, 200), dtype=np.uint8)
    tables = [ijg_qtable(20), ijg_qtable(20, chroma=True)][: 1 if c == 1 else 2]
    whole, _ = run_qcn(model, planes, tables)
    overlap = _ceil(guided_margin(model), 8)  # 16 (QCN), 24 (QGCN)
    tiled, tiles = run_qcn(model, planes, tables, tile=2 * overlap + 16, overlap=overlap)
    assert tiles > 4
    assert np.abs(tiled - whole).max() < 1e-4
    blind, _ = run_qcn(model, planes, tables, tile=64, overlap=0)  # tiles see zero padding inside the image
    assert np.abs(blind - whole).max() > 1e-2


def test_qgcn_global_branch_runs_once_on_the_whole_image(monkeypatch, rng):
    model = small_qgcn()
    planes = rng.integers(0, 256, (1, 96, 160), dtype=np.uint8)
    seen = []
    real = model.global_features
    monkeypatch.setattr(model, "global_features", lambda resized: (seen.append(resized), real(resized))[1])
    _, tiles = run_qcn(model, planes, [ijg_qtable(40)], tile=64, overlap=16)
    assert tiles == 8 and len(seen) == 1
    from jpegbench.models.jpeg_inputs import global_copy

    assert torch.equal(seen[0], global_copy(planes[0]))


def _interior(height, width, rows, cols, margin):
    """Pixels kept from a tile and at least ``margin`` from each of its borders that is not the image's."""
    def axis(length, spans):
        keep = np.zeros(length, dtype=bool)
        for start, stop, k0, k1 in spans:
            idx = np.arange(k0, k1)
            keep[idx] = ((idx - start >= margin) | (start == 0)) & ((stop - idx > margin) | (stop == length))
        return keep

    return axis(height, rows)[:, None] & axis(width, cols)[None, :]


def test_default_overlap_agrees_in_tile_interiors(rng):
    # 16 residual blocks: a margin of 71 px, above the default overlap of 64.
    model = _seeded(QCN, 0, in_channel=2, out_channel=1, n_feats=8, n_resblocks=16)
    assert guided_margin(model) == 71
    planes = rng.integers(0, 256, (1, 320, 328), dtype=np.uint8)
    whole, _ = run_qcn(model, planes, [ijg_qtable(50)])
    tiled, tiles = run_qcn(model, planes, [ijg_qtable(50)], tile=192)  # overlap 64
    spans = tile_spans(320, tile=192, overlap=64), tile_spans(328, tile=192, overlap=64)
    assert tiles == len(spans[0]) * len(spans[1]) > 4
    interior = _interior(320, 328, *spans, guided_margin(model))
    assert interior.sum() > 20_000
    diff = np.abs(tiled - whole)[0]
    assert diff[interior].max() < 1e-4  # guaranteed by the margin
    # Outside the interiors only the effective receptive field decides; with res_scale 0.1 this random
    # net's reaches less than 64 px (measured: max difference 1e-6), the point of the default overlap.
    assert diff.max() < 1e-3


def test_gray_model_on_rgb_restores_jfif_luma_and_keeps_chroma(image_factory):
    model = tiny_qcn("gray")
    with torch.no_grad():
        model.conv_output.weight.zero_()  # output 0 on [-1, 1]: a flat luma of 127.5 -> 128
    rgb = image_factory(40, 48, color="rgb")
    out, _ = restore_qcn(model, rgb, [ijg_qtable(30), ijg_qtable(30, chroma=True)])
    gray_out, _ = restore_qcn(model, rgb_to_y(rgb, definition="bt601-full"), [ijg_qtable(30)])
    assert out.shape == rgb.shape and np.all(gray_out == 128)
    m = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
    ycc_in, ycc_out = rgb.astype(float) @ m.T, out.astype(float) @ m.T
    unclipped = np.all((out > 0) & (out < 255), axis=-1)
    assert unclipped.mean() > 0.9
    assert np.abs(ycc_out[..., 0] - 128)[unclipped].max() <= 1.0  # the restored luma (RGB rounding only)
    assert np.abs(ycc_out[..., 1:] - ycc_in[..., 1:])[unclipped].max() <= 1.0  # the image's own chroma


def test_colour_model_refuses_gray_and_bad_tables(image_factory):
    with pytest.raises(UnsupportedImageError, match="needs a colour image"):
        restore_qcn(tiny_qcn("color"), image_factory(16, 16), [ijg_qtable(30)])
    with pytest.raises(InputError, match="reads 2 quantization map"):
        restore_qcn(tiny_qcn("color"), image_factory(16, 16, color="rgb"), [ijg_qtable(30)])
    with pytest.raises(UnsupportedImageError, match="16-bit"):
        restore_qcn(tiny_qcn(), image_factory(16, 16), [np.full((8, 8), 300)])


# -- IJCN --------------------------------------------------------------------------


def test_run_ijcn_untiled_is_the_forward():
    model = tiny_ijcn()
    t, y, c = _coefficients(128, 192)
    out, tiles = run_ijcn(model, t, y, c)
    with torch.inference_mode():
        ref = model(t, y, c)[0]
    assert tiles == 1 and torch.equal(out, ref)


def test_ijcn_tiled_equals_untiled():
    model = tiny_ijcn()
    t, y, c = _coefficients(384, 576)
    whole, _ = run_ijcn(model, t, y, c)
    scale = float(whole.abs().max())
    overlap = _ceil(guided_margin(model), 64)  # 192
    exact, tiles = run_ijcn(model, t, y, c, tile=512, overlap=overlap)
    assert tiles == 2 and float((exact - whole).abs().max()) < 1e-5 * scale

    # The default overlap (64 px): equal in the tile interiors.
    tiled, tiles = run_ijcn(model, t, y, c, tile=256)
    assert tiles == 8
    margin = guided_margin(model)
    spans = tile_spans(384, tile=256, overlap=64), tile_spans(576, tile=256, overlap=64)
    interior = torch.from_numpy(_interior(384, 576, *spans, margin))
    assert interior.sum() > 10_000
    diff = (tiled - whole).abs()[0].amax(dim=0)
    assert float(diff[interior].max()) < 1e-5 * scale

    blind, _ = run_ijcn(model, t, y, c, tile=256, overlap=0)
    assert float((blind - whole).abs().max()) > 0.1


def test_ijcn_tiling_is_checked():
    assert check_guided_tiling("ijcn", 256, None) == (256, 64)
    assert check_guided_tiling("ijcn", 128, None) == (128, 0)
    for tile, overlap in ((96, None), (64, None), (256, 32), (256, 128)):
        with pytest.raises(InputError, match="64|tile / 2"):
            check_guided_tiling("ijcn", tile, overlap)
    assert check_guided_tiling("qcn", 96, None) == (96, 40)


def _silenced(model):
    # Offsets 0 and a zero U-Net residual: IJCN returns the decoding of the coefficients it dequantizes.
    with torch.no_grad():
        model.DCT_offset.learnable_offset.conv_out.weight.zero_()
        model.DCT_offset.learnable_offset.conv_out.bias.zero_()
        for p in model.DCT_offset.qt_beta.parameters():
            p.zero_()
        model.m_tail.weight.zero_()
        model.m_tail.bias.zero_()
    return model


def test_restore_ijcn_with_other_tables_keeps_the_files_dct_values(image_factory):
    # The -d path: coefficients rescaled by file/given tables, so the dequantized values are the file's.
    data = _jpeg_bytes(image_factory(80, 100, color="rgb"), 60)
    coefs = read_coefficients(data)
    model = _silenced(tiny_ijcn())
    own, _ = restore_ijcn(model, coefs)
    other, _ = restore_ijcn(model, coefs, tables=[ijg_qtable(12), ijg_qtable(12, chroma=True)])
    assert np.abs(own.astype(int) - other.astype(int)).max() <= 1  # float rounding of the rescaling only
    # ... and a JPEG decoding (bilinear chroma upsampling, not libjpeg's fancy one: compare luma loosely)
    dec = decode(data)
    luma_own, luma_dec = (rgb_to_y(x, definition="bt601-full").astype(int) for x in (own, dec))
    assert np.abs(luma_own - luma_dec).mean() < 1.5

    # Unsilenced, the table guidance does change the restoration.
    live = tiny_ijcn(seed=3)
    a, _ = restore_ijcn(live, coefs)
    b, _ = restore_ijcn(live, coefs, tables=[ijg_qtable(12), ijg_qtable(12, chroma=True)])
    assert np.any(a != b)


def test_restore_ijcn_matches_the_authors_pipeline(image_factory):
    data = _jpeg_bytes(image_factory(70, 90, color="rgb"), 30)
    coefs = read_coefficients(data)
    model = tiny_ijcn(gain=1.0)
    inputs = ijcn_inputs(coefs)
    with torch.inference_mode():
        ref = ijcn_output_to_uint8(model(inputs.tables, inputs.y, inputs.cbcr)[0], 70, 90)
    image, _ = restore_ijcn(model, coefs)
    np.testing.assert_array_equal(image, ref)
    same, _ = restore_ijcn(model, coefs, tables=list(coefs.qtables))  # the file's own tables: no change
    np.testing.assert_array_equal(same, ref)
