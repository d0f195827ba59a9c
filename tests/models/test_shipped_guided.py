"""The shipped small QCN / QGCN / IJCN weights load, restore without ``--weights`` and beat JPEG.

Images: centre crops (128 x 128) of scikit-image's bundled public-domain
photographs (gray: the BT.601 studio-swing Y of ``camera``, ``astronaut``,
``coffee``, ``chelsea``; colour: ``astronaut``, ``coffee``, ``chelsea``,
``rocket``); nothing from ``../shared``. JPEG files by Pillow (libjpeg-turbo,
IJG tables, colour 4:2:0), restored as ``jpegbench restore`` does it:
``get_method(name)`` with no weights, so the shipped file is what is found.

Measured (torch 2.13 CPU, 2026-12-02), PSNR gain over JPEG at QF 10, and on
``coffee`` double JPEG with shift (4, 4) (gray (10, 30), colour (30, 50)), the
``-d`` twin (tables of the estimated dominant QF) over its plain method: see
``MEASURED``. The floors leave margin below those numbers and break when the
weights do (a model at its identity initialisation gains about 0 dB).
"""

from __future__ import annotations

import numpy as np
import pytest

from jpegbench.codec import decode, encode, rgb_to_y
from jpegbench.metrics import psnr
from jpegbench.models import get_method
from jpegbench.models.guided_weights import guided_weight_names, load_guided_model
from jpegbench.models.weights import shipped_weights_dir
from jpegbench.synth import double_jpeg

CROP = 128
PHOTOS = {"gray": ("camera", "astronaut", "coffee", "chelsea"), "rgb": ("astronaut", "coffee", "chelsea", "rocket")}
SHIPPED = (("qcn", "gray"), ("qgcn", "gray"), ("ijcn", "rgb"))
# (mean QF-10 gain, worst crop's gain, -d over plain on coffee), dB, as measured with the shipped files.
MEASURED = {"qcn": (1.41, 0.77, 0.49), "qgcn": (1.48, 0.84, 0.49), "ijcn": (1.07, 0.73, 0.09)}
# Floors: a share of what was measured, so that a broken or untrained file fails and a retrained one passes.
MEAN_FLOOR = {"qcn": 0.8, "qgcn": 0.8, "ijcn": 0.6}
CROP_FLOOR = {"qcn": 0.4, "qgcn": 0.4, "ijcn": 0.3}
D_OVER_PLAIN = {"qcn": 0.2, "qgcn": 0.2, "ijcn": 0.03}
MAX_BYTES = 20 * 1024**2  # QGCN's 112x112 global branch and IJCN's offset transformer have fixed sizes


def _photo(name: str, color: str) -> np.ndarray:
    from skimage import data

    x = np.asarray(getattr(data, name)())
    if color == "gray":
        x = rgb_to_y(x[..., :3]) if x.ndim == 3 else x
    else:
        x = np.repeat(x[..., None], 3, axis=2) if x.ndim == 2 else x[..., :3]
    top, left = (x.shape[0] - CROP) // 2, (x.shape[1] - CROP) // 2
    return np.ascontiguousarray(x[top : top + CROP, left : left + CROP])


def _shipped(arch: str, color: str):
    path = shipped_weights_dir() / guided_weight_names(arch, 1 if color == "gray" else 3)[1]
    assert path.is_file(), f"{path.name} is not shipped (configs/{arch}-small-*.toml trains it)"
    return path


@pytest.mark.parametrize(("arch", "color"), SHIPPED)
def test_shipped_file_is_a_plain_small_checkpoint(arch, color):
    path = _shipped(arch, color)
    assert path.stat().st_size <= MAX_BYTES
    model = load_guided_model(path, device="cpu", architecture=arch)
    meta = model.checkpoint_meta
    assert meta["steps"] > 0 and meta["storage"] == "float16" and "BSDS500" in meta["data"]["train_dir"]
    assert "/" not in meta["data"]["train_dir"]  # no absolute path of the training machine


@pytest.mark.parametrize(("arch", "color"), SHIPPED)
def test_shipped_model_beats_jpeg_at_qf10(arch, color):
    path = _shipped(arch, color)
    method = get_method(arch, device="cpu")
    gains = {}
    for name in PHOTOS[color]:
        x = _photo(name, color)
        data = encode(x, 10)
        r = method(data)
        assert r.weights == str(path) and (r.qf_used, r.qf_source) == (10, "tables")
        gains[name] = psnr(x, r.image) - psnr(x, decode(data))
    shown = ", ".join(f"{k} {v:+.2f}" for k, v in gains.items())
    assert np.mean(list(gains.values())) >= MEAN_FLOOR[arch], f"{arch} gain over JPEG at QF 10 (dB): {shown}"
    assert min(gains.values()) >= CROP_FLOOR[arch], f"{arch} gain over JPEG at QF 10 (dB): {shown}"


@pytest.mark.parametrize(("arch", "color"), SHIPPED)
def test_d_twin_beats_plain_on_nonaligned_double_jpeg_with_qf1_below_qf2(arch, color):
    _shipped(arch, color)
    q1, q2 = (10, 30) if color == "gray" else (30, 50)
    chain = double_jpeg(_photo("coffee", color), q1, q2, (4, 4))
    plain = get_method(arch, device="cpu")(chain.lq_bytes)
    twin = get_method(f"{arch}-d", device="cpu")(chain.lq_bytes)
    assert plain.qf_used == q2 and twin.qf_source == "dominant" and twin.qf_used < q2
    gain = psnr(chain.hq_pixels, twin.image) - psnr(chain.hq_pixels, plain.image)
    assert gain >= D_OVER_PLAIN[arch], f"{arch}-d over {arch}: {gain:+.2f} dB (QF {twin.qf_used} vs {q2})"


# What jpegbench/models/weights/MODEL_CARD.md states of each file: parameters (millions, 2 decimals), size (MB,
# 1 decimal), training steps and mean validation PSNR (dB, 2 decimals) recorded in the file's meta.
CARD = {"qcn": (0.55, 1.1, 5750, 30.34), "qgcn": (7.88, 15.8, 10000, 30.40), "ijcn": (8.67, 17.4, 12000, 28.74)}


@pytest.mark.parametrize(("arch", "color"), SHIPPED)
def test_model_card_states_what_the_shipped_file_holds(arch, color):
    path = _shipped(arch, color)
    model = load_guided_model(path, device="cpu", architecture=arch)
    params, size_mb, steps, val = CARD[arch]
    assert round(sum(p.numel() for p in model.state_dict().values()) / 1e6, 2) == params
    assert round(path.stat().st_size / 1e6, 1) == size_mb
    meta = model.checkpoint_meta
    assert meta["steps"] == steps and round(meta["val_psnr"]["mean"], 2) == val
    assert 56 <= meta["wall_seconds"] / 60 <= 95  # "wall 56-95 min each"


@pytest.mark.parametrize(("arch", "color"), SHIPPED)
def test_restore_command_works_without_weights(arch, color, tmp_path):
    from click.testing import CliRunner

    from jpegbench.cli import cli

    _shipped(arch, color)
    src = tmp_path / "in.jpg"
    src.write_bytes(encode(_photo("coffee", color)[:64, :64], 30))
    r = CliRunner().invoke(cli, ["restore", str(src), "--method", arch, "--out", str(tmp_path / "out"), "--quiet"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "out" / "in.png").is_file() and (tmp_path / "out" / "restore.csv").is_file()
