"""QCN / QGCN: layout of the authors' networks, hand-checked forward values, inputs from JPEG files, weights.

The layout reference (tests/models/data/authors_state_dicts.json) was written
by instantiating the authors' ``nets.qmar.Net`` / ``nets.qmarg.Net``
(VDIGPKU/QGCN) and reading ``state_dict()``; equality of outputs with their
code (random weights) was checked outside this repository (the numbers are
in jpegbench/models/qcn.py's docstring). Everything else here is derived by hand.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from jpegbench.codec import decode, ijg_qtable
from jpegbench.errors import ConfigError, ImageReadError, InputError, ShapeError, UnsupportedImageError, WeightsError
from jpegbench.models import QCN, QGCN, detect_architecture, load_guided_model
from jpegbench.models.guided_weights import infer_guided_config
from jpegbench.models.jpeg_inputs import qcn_inputs, qcn_output_to_uint8, quantization_maps, read_qcn_inputs

LAYOUTS = json.loads((Path(__file__).parent / "data" / "authors_state_dicts.json").read_text())
CLASSES = {"qcn": QCN, "qgcn": QGCN}


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


def _jpeg(path: Path, pixels: np.ndarray, qf: int, **kwargs) -> Path:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=qf, **kwargs)
    path.write_bytes(buf.getvalue())
    return path


# -- layout -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["qcn_gray", "qcn_color", "qgcn_gray", "qgcn_color"])
def test_state_dict_layout_is_the_authors(name):
    ref = LAYOUTS[name]
    with torch.device("meta"):  # released width, shapes only
        model = CLASSES[name.split("_")[0]](**ref["config"])
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert list(ours) == list(ref["state_dict"])  # names, in the authors' order
    assert ours == ref["state_dict"]
    assert infer_guided_config({k: torch.empty(s, device="meta") for k, s in ref["state_dict"].items()}) == (
        name.split("_")[0],
        ref["config"],
    )


def test_authors_layout_loads_strictly_and_round_trips(tmp_path):
    # A state dict with the pinned names/shapes (fewer blocks to stay small)
    # saved as a plain file loads strictly and reproduces the model.
    src = tiny_qcn("color", seed=3)
    path = tmp_path / "qcn.pth"
    torch.save(src.state_dict(), path)
    loaded = load_guided_model(path, device="cpu")
    assert isinstance(loaded, QCN) and loaded.architecture == "qcn"
    assert loaded.config == src.config
    x = torch.rand(1, 5, 16, 24) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded(x), src(x))


def test_qgcn_round_trip_with_dataparallel_prefix(tmp_path):
    src = small_qgcn("gray", seed=4)
    path = tmp_path / "qgcn.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in src.state_dict().items()}}, path)
    loaded = load_guided_model(path, architecture="qgcn", device="cpu")
    assert loaded.config == src.config
    x, g = torch.rand(1, 2, 16, 16) * 2 - 1, torch.rand(1, 1, 112, 112) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded((x, g)), src((x, g)))


# -- forward ----------------------------------------------------------------------


@pytest.mark.parametrize("color", ["gray", "color"])
def test_qcn_smoke_and_shapes(color):
    model = tiny_qcn(color)
    cin, cout = (2, 1) if color == "gray" else (5, 3)
    out = model(torch.zeros(2, cin, 16, 24))
    assert out.shape == (2, cout, 16, 24) and out.dtype == torch.float32


@pytest.mark.parametrize("color", ["gray", "color"])
def test_qgcn_call_forms_agree(color):
    model = small_qgcn(color)
    cin, cg = (2, 1) if color == "gray" else (5, 3)
    x, g = torch.rand(1, cin, 16, 8) * 2 - 1, torch.rand(1, cg, 112, 112) * 2 - 1
    with torch.no_grad():
        a, b = model([x, g]), model(x, g)
        c = model.forward_with_features(x, model.global_features(g))
    assert a.shape == (1, cg, 16, 8)
    assert torch.equal(a, b) and torch.equal(a, c)


def _identity3(conv, out_ch=0, in_ch=0):
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[out_ch, in_ch, 1, 1] = 1.0


def test_qcn_skip_path_by_hand():
    # Zero down-path: out = conv_output(upscale(0) + conv_input(x)); with
    # centre-tap identities that is the image channel itself.
    model = QCN(in_channel=2, out_channel=1, n_feats=4, n_resblocks=0).eval()
    for p in model.parameters():
        torch.nn.init.zeros_(p)
    _identity3(model.conv_input)
    _identity3(model.conv_output)
    x = torch.rand(1, 2, 8, 6)
    with torch.no_grad():
        assert torch.allclose(model(x), x[:, :1])


def test_qgcn_global_branch_by_hand():
    # Local path zero, global vector v constant (the last linear layer's bias):
    # conv_res_mid reads the first global channel (index n_feats) -> relu(v0);
    # residual2 is empty, so its skip doubles it; identities carry 2 relu(v0) out.
    model = QGCN(in_channel=2, in_glo_channel=1, out_channel=1, n_feats=64, n_resblocks=0).eval()
    for p in model.parameters():
        torch.nn.init.zeros_(p)
    with torch.no_grad():
        model.conv_global_l[2].bias[0] = 0.3
        model.conv_res_mid.weight[0, 64, 1, 1] = 1.0
        _identity3(model.conv_mid)
        for k in range(4):  # pixel shuffle: output channel 0 comes from input channels 0..3
            model.upscale[0].weight[k, 0, 1, 1] = 1.0
        _identity3(model.conv_output)
    x, g = torch.rand(1, 2, 8, 10), torch.rand(1, 1, 112, 112)
    with torch.no_grad():
        out = model((x, g))
    assert torch.allclose(out, torch.full_like(out, 0.6))


def test_qcn_gradcheck():
    model = _seeded(QCN, 1, in_channel=2, out_channel=1, n_feats=2, n_resblocks=1).double()
    x = (torch.rand(1, 2, 4, 4, dtype=torch.float64) * 2 - 1).requires_grad_()
    assert torch.autograd.gradcheck(model, (x,), eps=1e-6, atol=1e-4)


def test_bad_shapes_and_configs():
    model = tiny_qcn("gray")
    with pytest.raises(ShapeError, match="even height and width"):
        model(torch.zeros(1, 2, 15, 16))
    with pytest.raises(ShapeError, match="2 channels"):
        model(torch.zeros(1, 1, 16, 16))
    qgcn = small_qgcn("gray")
    with pytest.raises(ShapeError, match="112"):
        qgcn((torch.zeros(1, 2, 16, 16), torch.zeros(1, 1, 64, 64)))
    with pytest.raises(ShapeError, match="pair"):
        qgcn(torch.zeros(1, 2, 16, 16))
    with pytest.raises(ConfigError, match="n_feats=64"):
        QGCN(in_channel=2, in_glo_channel=1, out_channel=1, n_feats=32)
    with pytest.raises(ConfigError, match="scale must be 2"):
        QCN(in_channel=2, out_channel=1, scale=3)
    with pytest.raises(ConfigError):
        QCN(in_channel=0, out_channel=1)


# -- inputs from JPEG files -------------------------------------------------------


def test_quantization_maps_by_hand():
    table = np.arange(1, 65).reshape(8, 8)
    maps = quantization_maps([table], 10, 12)
    assert maps.shape == (1, 10, 12) and maps.dtype == np.float32
    # maps[i, j] = table[i % 8, j % 8] / 127.5 - 1
    assert maps[0, 9, 11] == pytest.approx(table[1, 3] / 127.5 - 1)
    assert maps[0, 0, 0] == pytest.approx(1 / 127.5 - 1)
    assert np.allclose(quantization_maps(np.full((8, 8), 255), 3, 3), 1.0)
    with pytest.raises(UnsupportedImageError, match="8-bit"):
        quantization_maps([np.full((8, 8), 300)], 8, 8)


@pytest.mark.parametrize("qf", [10, 75])
def test_read_qcn_inputs_colour(tmp_path, image_factory, qf):
    pixels = image_factory(37, 50, color="rgb")
    path = _jpeg(tmp_path / "a.jpg", pixels, qf)
    got = read_qcn_inputs(path)
    assert (got.height, got.width) == (37, 50)
    assert got.image.shape == (1, 5, 40, 56) and got.resized.shape == (1, 3, 112, 112)
    decoded = decode(path.read_bytes())
    assert np.allclose(got.image[0, :3, :37, :50].numpy(), decoded.transpose(2, 0, 1) / 127.5 - 1, atol=1e-6)
    # Padding replicates the last row/column (the authors' padding8, mode 'edge').
    assert torch.equal(got.image[0, :3, 39, :50], got.image[0, :3, 36, :50])
    # Map channels are the IJG tables Pillow wrote (independent formula), tiled.
    for k, chroma in enumerate((False, True)):
        expected = np.tile(ijg_qtable(qf, chroma=chroma), (5, 7)) / 127.5 - 1
        assert np.allclose(got.image[0, 3 + k].numpy(), expected, atol=1e-6)
    assert got.resized.min() >= -1 and got.resized.max() <= 1


def test_read_qcn_inputs_gray_and_conversion(tmp_path, image_factory):
    gray = _jpeg(tmp_path / "g.jpg", image_factory(24, 16), 30)
    got = read_qcn_inputs(gray)
    assert got.image.shape == (1, 2, 24, 16) and got.resized.shape == (1, 1, 112, 112)
    with pytest.raises(UnsupportedImageError, match="gray"):
        read_qcn_inputs(gray, channels=3)
    colour = _jpeg(tmp_path / "c.jpg", image_factory(24, 16, color="rgb"), 30)
    as_gray = read_qcn_inputs(colour, channels=1)
    assert as_gray.image.shape == (1, 2, 24, 16)
    assert np.array_equal(as_gray.tables[0], ijg_qtable(30))


def test_read_qcn_inputs_refuses_png(tmp_path, image_factory):
    png = tmp_path / "x.png"
    Image.fromarray(image_factory(16, 16)).save(png)
    with pytest.raises(ImageReadError, match="not a JPEG"):
        read_qcn_inputs(png)


def test_qcn_inputs_validate():
    with pytest.raises(InputError, match="take 2 quantization table"):
        qcn_inputs(np.zeros((8, 8, 3), np.uint8), [ijg_qtable(50)])


def test_output_to_uint8_by_hand():
    out = torch.tensor([[[[-1.0, 1.0, 0.2], [3.0, -4.0, 0.0]]]])
    assert qcn_output_to_uint8(out, 2, 2).tolist() == [[0, 255], [255, 0]]
    assert qcn_output_to_uint8(out, 1, 3)[0, 2] == 153  # 0.6 * 255


def test_end_to_end_tiny_model_on_a_file(tmp_path, image_factory):
    path = _jpeg(tmp_path / "a.jpg", image_factory(20, 28, color="rgb"), 20)
    inputs = read_qcn_inputs(path)
    with torch.no_grad():
        out = small_qgcn("color")((inputs.image, inputs.resized))
    assert qcn_output_to_uint8(out, inputs.height, inputs.width).shape == (20, 28, 3)


# -- weights errors ---------------------------------------------------------------


def test_pickled_model_is_refused_with_conversion_hint(tmp_path):
    path = tmp_path / "model_epoch_1.pth"
    torch.save({"epoch": 0, "model": tiny_qcn(), "opt": {"colorMode": "L"}}, path)
    with pytest.raises(WeightsError, match=r"refused to unpickle.*state dict"):
        load_guided_model(path, device="cpu")


def test_other_architecture_is_refused(tmp_path, model_factory):
    path = tmp_path / "fbcnn.pth"
    torch.save(model_factory().state_dict(), path)
    with pytest.raises(WeightsError, match="expected a QCN state dict, found an FBCNN"):
        load_guided_model(path, architecture="qcn", device="cpu")
    qgcn = tmp_path / "qgcn.pth"
    torch.save(small_qgcn().state_dict(), qgcn)
    with pytest.raises(WeightsError, match="expected a QCN state dict, found a QGCN"):
        load_guided_model(qgcn, architecture="qcn", device="cpu")
    assert detect_architecture(model_factory().state_dict()) == "fbcnn"


def test_mismatched_shapes_are_refused(tmp_path):
    sd = tiny_qcn().state_dict()
    sd["conv_mid.weight"] = torch.zeros(8, 8, 5, 5)
    path = tmp_path / "bad.pth"
    torch.save(sd, path)
    with pytest.raises(WeightsError, match="wrong shape"):
        load_guided_model(path, device="cpu")
