"""FBCNN architecture: released state-dict layout, forward contract, QF control."""

from __future__ import annotations

import json
import pytest
import torch
import torch.nn.functional as F

from jpegbench.errors import ConfigError, QualityError, ShapeError
from jpegbench.models import FBCNN

@pytest.mark.shared
@pytest.mark.parametrize(("entry", "in_nc"), [("fbcnn_gray", 1), ("fbcnn_color", 3)])
def test_default_width_matches_released_state_dict(shared_dir, entry, in_nc):
    # Provenance: key names and shapes of the authors' released fbcnn_gray.pth
    # and fbcnn_color.pth, listed in shared/reference (see shared/README.md).
    ref = json.loads((shared_dir / "reference" / "fbcnn_state_dict.json").read_text())[entry]
    with torch.device("meta"):  # 72 M parameters: shapes only, no memory
        model = FBCNN(in_nc=in_nc)
    shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert list(shapes) == list(ref["state_dict"])  # same keys, same order
    assert shapes == ref["state_dict"]
    assert len(shapes) == 184
    assert sum(p.numel() for p in model.parameters()) == ref["num_params"]
    assert model.config == {k: ref[k] for k in ("in_nc", "out_nc", "nc", "nb")} | {"act_mode": ref["act_mode"]}


def test_small_variant_scales_mlps_with_top_width():
    model = FBCNN(in_nc=1, out_nc=1, nc=(16, 32, 64, 128), nb=2)
    sd = model.state_dict()
    assert sd["qf_pred.6.weight"].shape == (128, 128)
    assert sd["qf_embed.0.weight"].shape == (128, 1)
    assert sd["to_gamma_1.0.weight"].shape == (16, 128)
    assert "m_down1.2.weight" in sd and "m_up1.2.res.2.weight" in sd and "m_up1.3.res.0.weight" not in sd


def test_config_round_trip():
    model = FBCNN(in_nc=3, nc=(8, 16, 16, 32), nb=2, act_mode="L")
    clone = FBCNN.from_config(model.config)
    assert clone.config == model.config
    clone.load_state_dict(model.state_dict(), strict=True)
    assert json.loads(json.dumps(model.config)) == model.config


@pytest.mark.parametrize(
    "kwargs",
    [
        {"in_nc": 0},
        {"in_nc": 1, "nc": (8, 16, 32)},
        {"in_nc": 1, "nc": "abcd"},
        {"in_nc": 1, "nb": 0},
        {"in_nc": 1, "nb": 1.5},
        {"in_nc": 1, "act_mode": "gelu"},
    ],
)
def test_invalid_config_raises(kwargs):
    with pytest.raises(ConfigError):
        FBCNN(**kwargs)


def test_from_config_rejects_unknown_keys():
    with pytest.raises(ConfigError, match="unknown keys"):
        FBCNN.from_config({"in_nc": 1, "depth": 3})


@pytest.mark.parametrize(("height", "width"), [(1, 1), (13, 21), (16, 24), (33, 8)])
def test_forward_shapes_any_size(model_factory, height, width):
    model = model_factory()
    x = torch.rand(2, 1, height, width, generator=torch.Generator().manual_seed(0))
    out, qf = model(x)
    assert out.shape == (2, 1, height, width) and out.dtype == torch.float32
    assert qf.shape == (2,) and bool(((qf >= 0) & (qf <= 100)).all())


def test_odd_size_is_replicate_padded_to_multiple_of_8(model_factory):
    model = model_factory()
    x = torch.rand(1, 1, 13, 21, generator=torch.Generator().manual_seed(1))
    padded = F.pad(x, (0, 3, 0, 3), mode="replicate")  # 16 x 24
    with torch.no_grad():
        out, qf = model(x, qf=30)
        out_padded, qf_padded = model(padded, qf=30)
    torch.testing.assert_close(out, out_padded[..., :13, :21])
    torch.testing.assert_close(qf, qf_padded)


def test_manual_qf_changes_output_not_prediction(model_factory):
    model = model_factory()
    x = torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        blind, qf_blind = model(x)
        low, qf_low = model(x, qf=torch.tensor([10.0]))
        high, _ = model(x, qf=torch.tensor([[90.0]]))
        same, _ = model(x, qf=qf_blind)
    assert (low - high).abs().max() > 1e-4
    torch.testing.assert_close(qf_low, qf_blind)
    torch.testing.assert_close(same, blind)


def test_qf_scalar_broadcasts(model_factory):
    model = model_factory()
    x = torch.rand(3, 1, 16, 16, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        a, _ = model(x, qf=40)
        b, _ = model(x, qf=torch.full((3,), 40.0))
    torch.testing.assert_close(a, b)


def test_predict_qf_matches_forward(model_factory):
    model = model_factory()
    x = torch.rand(2, 1, 20, 28, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        _, qf = model(x)
        torch.testing.assert_close(model.predict_qf(x), qf)


@pytest.mark.parametrize(
    ("x", "error"),
    [
        (torch.rand(1, 16, 16), ShapeError),
        (torch.rand(1, 3, 16, 16), ShapeError),
        (torch.zeros(1, 1, 16, 16, dtype=torch.uint8), ShapeError),
        (torch.rand(0, 1, 16, 16), ShapeError),
    ],
)
def test_bad_input_raises(model_factory, x, error):
    with pytest.raises(error):
        model_factory()(x)


@pytest.mark.parametrize(
    ("qf", "error"), [(torch.tensor([10.0, 20.0, 30.0]), ShapeError), (101, QualityError), (-1, QualityError)]
)
def test_bad_qf_raises(model_factory, qf, error):
    with pytest.raises(error):
        model_factory()(torch.rand(2, 1, 16, 16), qf=qf)


def test_backward_reaches_every_parameter(model_factory):
    model = model_factory().train()
    x = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(5))
    out, qf = model(x)
    (out.mean() + (qf / 100).mean()).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_gradcheck_input():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = FBCNN(in_nc=1, nc=(2, 2, 2, 2), nb=1).double()
    x = torch.rand(1, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(6), requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: model(t, qf=50)[0], (x,), eps=1e-6, atol=1e-4)
