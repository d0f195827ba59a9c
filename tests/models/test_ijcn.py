"""IJCN: layout of the authors' network, hand-checked decoding and offsets, inputs from JPEG files, weights.

The layout reference (tests/models/data/authors_state_dicts.json, key
``ijcn_color``) was written by instantiating the authors' ``IJCN()``
(liushuai1998/IJCN, models/network_ijcn.py, default arguments as in their
test scripts) and reading ``state_dict()``. Reference values below are
derived by hand from the JPEG definitions (orthonormal 8x8 DCT, JFIF YCbCr).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from jpegbench.codec import block_idct, ijg_qtable
from jpegbench.codec.coefficients import read_coefficients
from jpegbench.codec.header import ZIGZAG
from jpegbench.errors import ConfigError, ImageReadError, ShapeError, UnsupportedImageError, WeightsError
from jpegbench.models import IJCN, detect_architecture, load_guided_model
from jpegbench.models.guided_weights import infer_guided_config
from jpegbench.models.jpeg_inputs import ijcn_output_to_uint8, mirror_pad_blocks, read_ijcn_inputs

LAYOUT = json.loads((Path(__file__).parent / "data" / "authors_state_dicts.json").read_text())["ijcn_color"]


def tiny_ijcn(seed=0, act_mode="P"):
    # The offset transformer keeps its fixed 320 channels; the U-Net is narrow.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return IJCN(nc=[4, 8, 8, 16], act_mode=act_mode).eval()


def _silence_offsets(model):
    # DJViT output 0 and beta = tanh(0) = 0: the offset module changes nothing.
    with torch.no_grad():
        model.DCT_offset.learnable_offset.conv_out.weight.zero_()
        model.DCT_offset.learnable_offset.conv_out.bias.zero_()
        for p in model.DCT_offset.qt_beta.parameters():
            p.zero_()


def _dc_only(n, rows, cols, value):
    x = torch.zeros(n, rows, cols, 8, 8)
    x[..., 0, 0] = value
    return x


def _jpeg(path, pixels, qf, **kwargs):
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=qf, **kwargs)
    path.write_bytes(buf.getvalue())
    return path


# -- layout -----------------------------------------------------------------------


def test_state_dict_layout_is_the_authors():
    with torch.device("meta"):
        model = IJCN(**LAYOUT["config"])
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert list(ours) == list(LAYOUT["state_dict"])
    assert ours == LAYOUT["state_dict"]
    meta_sd = {k: torch.empty(s, device="meta") for k, s in LAYOUT["state_dict"].items()}
    assert detect_architecture(meta_sd) == "ijcn"
    assert infer_guided_config(meta_sd) == ("ijcn", LAYOUT["config"])


def test_strict_round_trip(tmp_path):
    src = tiny_ijcn(seed=2, act_mode="R")
    path = tmp_path / "ijcn.pth"
    torch.save(src.state_dict(), path)
    loaded = load_guided_model(path, architecture="ijcn", device="cpu")
    assert isinstance(loaded, IJCN) and loaded.config["nc"][0] == 4 and loaded.config["act_mode"] == "R"
    tables = torch.full((1, 3, 8, 8), 4.0)
    y, c = torch.randn(1, 1, 8, 8, 8, 8).round(), torch.randn(1, 2, 4, 4, 8, 8).round()
    with torch.no_grad():
        for a, b in zip(loaded(tables, y, c), src(tables, y, c)):
            assert torch.equal(a, b)


# -- forward ----------------------------------------------------------------------


def test_smoke_and_shapes():
    model = tiny_ijcn()
    tables = torch.full((2, 3, 8, 8), 10.0)
    y, c = torch.zeros(2, 1, 16, 8, 8, 8), torch.zeros(2, 2, 8, 4, 8, 8)
    with torch.no_grad():
        rgb, y_pred, c_pred = model(tables, y, c)
    assert rgb.shape == (2, 3, 128, 64) and y_pred.shape == y.shape and c_pred.shape == c.shape


def test_decode_dc_blocks_by_hand():
    # DC coefficient d with step q is a flat block of d * q / 8 + 128 (orthonormal DCT);
    # JFIF: R = Y + 1.402 Cr', G = Y - 0.344136 Cb' - 0.714136 Cr', B = Y + 1.772 Cb'.
    model = tiny_ijcn()
    y = _dc_only(1, 8, 8, 4.0)[:, None] * 2  # Y = 4 * 2 / 8 + 128 = 129
    cb = _dc_only(1, 4, 4, 0.0)
    cr = _dc_only(1, 4, 4, 10.0) * 2  # Cr' = 2.5
    rgb = model.decode(y, torch.stack([cb, cr], dim=1)) * 255
    expected = torch.tensor([129 + 1.402 * 2.5, 129 - 0.714136286 * 2.5, 129.0])
    assert torch.allclose(rgb[0].mean(dim=(1, 2)), expected, atol=1e-3)
    assert float(rgb.std(dim=(2, 3)).max()) < 1e-3


def test_silent_offsets_and_zero_unet_give_the_jpeg_decoding():
    model = tiny_ijcn()
    _silence_offsets(model)
    with torch.no_grad():
        model.m_tail.weight.zero_()
        model.m_tail.bias.zero_()
    tables = torch.full((1, 3, 8, 8), 2.0)
    y = _dc_only(1, 8, 8, 4.0)[:, None]  # 4 * 2 / 8 + 128 = 129
    c = torch.zeros(1, 2, 4, 4, 8, 8)
    with torch.no_grad():
        rgb, y_pred, _ = model(tables, y, c)
    assert torch.equal(y_pred, y)
    assert torch.allclose(rgb, torch.full_like(rgb, 129 / 255), atol=1e-5)


def test_offsets_stay_within_half_a_step_and_spare_high_frequencies():
    model = tiny_ijcn(seed=5)
    tables = torch.randint(1, 50, (1, 3, 8, 8)).float()
    y, c = torch.randn(1, 1, 8, 16, 8, 8).mul(20).round(), torch.randn(1, 2, 4, 8, 8, 8).mul(5).round()
    with torch.no_grad():
        y_deq, c_deq, y_pred, c_pred = model.DCT_offset(y, c, tables)
    assert float((y_pred - y).abs().max()) <= 0.5 and float((c_pred - c).abs().max()) <= 0.5
    high_y = torch.as_tensor(ZIGZAG[56:])  # natural positions past the corrected low band
    high_c = torch.as_tensor(ZIGZAG[48:])
    assert torch.equal(y_pred.flatten(-2)[..., high_y], y.flatten(-2)[..., high_y])
    assert torch.equal(c_pred.flatten(-2)[..., high_c], c.flatten(-2)[..., high_c])
    assert torch.allclose(y_deq, y_pred * tables[:, :1, None, None])
    assert torch.allclose(c_deq, c_pred * tables[:, 1:, None, None])


def test_gradients_reach_every_parameter():
    model = tiny_ijcn().train()
    tables = torch.full((1, 3, 8, 8), 8.0)
    y, c = torch.randn(1, 1, 8, 8, 8, 8).round(), torch.randn(1, 2, 4, 4, 8, 8).round()
    rgb, y_pred, c_pred = model(tables, y, c)
    (rgb.square().mean() + y_pred.square().mean() + c_pred.square().mean()).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_bad_shapes_and_configs():
    model = tiny_ijcn()
    t = torch.ones(1, 3, 8, 8)
    with pytest.raises(ShapeError, match="tables"):
        model(torch.ones(1, 2, 8, 8), torch.zeros(1, 1, 8, 8, 8, 8), torch.zeros(1, 2, 4, 4, 8, 8))
    with pytest.raises(ShapeError, match="4:2:0"):
        model(t, torch.zeros(1, 1, 8, 8, 8, 8), torch.zeros(1, 2, 8, 8, 8, 8))
    with pytest.raises(ShapeError, match="multiple of 64"):
        model(t, torch.zeros(1, 1, 4, 4, 8, 8), torch.zeros(1, 2, 2, 2, 8, 8))
    with pytest.raises(ConfigError, match="colour only"):
        IJCN(in_nc=1, out_nc=1)
    with pytest.raises(ConfigError, match="act_mode"):
        IJCN(act_mode="X")
    with pytest.raises(ConfigError, match="nc"):
        IJCN(nc=[64, 128])


# -- inputs from JPEG files -------------------------------------------------------


def test_mirror_padding_is_a_spatial_mirror():
    rng = np.random.default_rng(0)
    blocks = torch.from_numpy(rng.normal(0, 20, (1, 1, 3, 2, 8, 8)))
    padded = mirror_pad_blocks(blocks, 5, 4)

    def pixels(b):  # (bh, bw, 8, 8) natural-order blocks -> image, with our numpy IDCT
        bh, bw = b.shape[:2]
        return block_idct(b.transpose(0, 2, 1, 3).reshape(8 * bh, 8 * bw))

    original = pixels(blocks[0, 0].numpy())
    expected = np.pad(original, ((0, 16), (0, 16)), mode="symmetric")
    assert np.allclose(pixels(padded[0, 0].numpy()), expected, atol=1e-9)
    assert mirror_pad_blocks(blocks, 9, 7).shape == (1, 1, 9, 7, 8, 8)  # repeats when the image is small


def test_read_ijcn_inputs(tmp_path, image_factory):
    path = _jpeg(tmp_path / "a.jpg", image_factory(70, 100, color="rgb"), 30)  # Pillow: 4:2:0
    got = read_ijcn_inputs(path)
    assert (got.height, got.width) == (70, 100)
    assert got.tables.shape == (1, 3, 8, 8)
    assert np.array_equal(got.tables[0, 0].numpy(), ijg_qtable(30))
    assert np.array_equal(got.tables[0, 2].numpy(), ijg_qtable(30, chroma=True))
    assert got.y.shape == (1, 1, 16, 16, 8, 8) and got.cbcr.shape == (1, 2, 8, 8, 8, 8)
    coefs = read_coefficients(path)
    assert coefs.coefficients[0].shape == (9, 13, 8, 8)
    assert np.array_equal(got.y[0, 0, :9, :13].numpy(), coefs.coefficients[0])
    assert np.array_equal(got.cbcr[0, 1, :5, :7].numpy(), coefs.coefficients[2])
    model = tiny_ijcn()
    with torch.no_grad():
        rgb, _, _ = model(got.tables, got.y, got.cbcr)
    assert ijcn_output_to_uint8(rgb, got.height, got.width).shape == (70, 100, 3)


def test_silenced_model_reproduces_a_jpeg_decoding(tmp_path, image_factory):
    # With no offsets and no U-Net residual, IJCN is a JPEG decoder (float IDCT,
    # bilinear chroma upsampling): within a few levels of libjpeg's.
    from jpegbench.codec import decode

    path = _jpeg(tmp_path / "a.jpg", image_factory(64, 64, color="rgb"), 90)
    got = read_ijcn_inputs(path)
    model = tiny_ijcn()
    _silence_offsets(model)
    with torch.no_grad():
        model.m_tail.weight.zero_()
        model.m_tail.bias.zero_()
        rgb, _, _ = model(got.tables, got.y, got.cbcr)
    ours = ijcn_output_to_uint8(rgb, 64, 64).astype(int)
    libjpeg = decode(path.read_bytes()).astype(int)
    assert np.abs(ours - libjpeg).mean() < 1.5


def test_refused_inputs(tmp_path, image_factory):
    gray = _jpeg(tmp_path / "g.jpg", image_factory(64, 64), 50)
    with pytest.raises(UnsupportedImageError, match="colour JPEGs only"):
        read_ijcn_inputs(gray)
    full = _jpeg(tmp_path / "f.jpg", image_factory(64, 64, color="rgb"), 50, subsampling="4:4:4")
    with pytest.raises(UnsupportedImageError, match="4:2:0.*4:4:4"):
        read_ijcn_inputs(full)
    png = tmp_path / "x.png"
    Image.fromarray(image_factory(64, 64, color="rgb")).save(png)
    with pytest.raises(ImageReadError, match="not a JPEG"):
        read_ijcn_inputs(png)


def test_weights_of_another_architecture_are_refused(tmp_path, model_factory):
    path = tmp_path / "fbcnn.pth"
    torch.save(model_factory().state_dict(), path)
    with pytest.raises(WeightsError, match="expected an IJCN state dict, found an FBCNN"):
        load_guided_model(path, architecture="ijcn", device="cpu")
