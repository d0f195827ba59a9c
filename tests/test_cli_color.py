"""``jpegbench restore`` on colour and gray JPEGs: which model ran (restore.csv ``color_path``), ``--color-policy``,
and the inputs restoration refuses (CMYK, 16-bit)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from jpegbench.cli import EXIT_ERROR, EXIT_SKIPPED, cli
from jpegbench.codec import encode
from jpegbench.models import FBCNN, save_checkpoint
from jpegbench.models.weights import WEIGHTS_DIR_ENV

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def invoke(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="jpegbench")


def tiny(in_nc: int, seed: int) -> FBCNN:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return FBCNN(in_nc=in_nc, nc=(8, 16, 16, 16), nb=1).eval()


@pytest.fixture
def weights(tmp_path, monkeypatch):
    """``$JPEGBENCH_WEIGHTS_DIR`` with a tiny random gray and colour fbcnn."""
    folder = tmp_path / "weights"
    folder.mkdir()
    save_checkpoint(tiny(1, 0), folder / "fbcnn_small_gray.pt")
    save_checkpoint(tiny(3, 1), folder / "fbcnn_small_color.pt")
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(folder))
    return folder


@pytest.fixture
def jpegs(tmp_path, make_image):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "rgb.jpg").write_bytes(encode(make_image(32, 40, color="rgb"), 20))
    (folder / "gray.jpg").write_bytes(encode(make_image(32, 40), 20))
    return folder


def _table(out) -> pd.DataFrame:
    t = pd.read_csv(out / "restore.csv")
    return t.set_index(t["input"].map(lambda p: p.rsplit("/", 1)[-1]))


def test_colour_jpeg_gets_the_colour_model_and_gray_the_gray_one(weights, jpegs, tmp_path):
    out = tmp_path / "out"
    r = invoke("restore", jpegs, "--out", out, "--device", "cpu", "--quiet")
    assert r.exit_code == 0, r.stderr
    t = _table(out)
    assert t.loc["rgb.jpg", "color_path"] == "color" and t.loc["rgb.jpg", "weights"].endswith("fbcnn_small_color.pt")
    assert t.loc["gray.jpg", "color_path"] == "gray" and t.loc["gray.jpg", "weights"].endswith("fbcnn_small_gray.pt")
    assert "colour model" in r.stdout and "gray model" not in r.stdout  # gray images need no note
    assert np.asarray(Image.open(out / "rgb.png")).shape == (32, 40, 3)


def test_luma_policy_and_auto_without_a_colour_model(weights, jpegs, tmp_path):
    r = invoke("restore", jpegs / "rgb.jpg", "--out", tmp_path / "luma", "--device", "cpu", "--quiet",
               "--color-policy", "luma")
    assert r.exit_code == 0, r.stderr
    assert _table(tmp_path / "luma").loc["rgb.jpg", "color_path"] == "luma"
    (weights / "fbcnn_small_color.pt").unlink()
    r = invoke("restore", jpegs / "rgb.jpg", "--out", tmp_path / "auto", "--device", "cpu", "--quiet")
    assert r.exit_code == 0, r.stderr
    t = _table(tmp_path / "auto")
    assert t.loc["rgb.jpg", "color_path"] == "luma" and t.loc["rgb.jpg", "weights"].endswith("fbcnn_small_gray.pt")
    assert "gray model on the luma" in r.stdout


def test_color_policy_without_a_colour_model_is_one_error_before_any_work(weights, jpegs, tmp_path):
    (weights / "fbcnn_small_color.pt").unlink()
    r = invoke("restore", jpegs, "--out", tmp_path / "out", "--device", "cpu", "--quiet", "--color-policy", "color")
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == EXIT_ERROR and len(lines) == 1, r.stderr
    assert lines[0].startswith("error: no fbcnn_color.pth or fbcnn_small_color.pt") and "--color-policy luma" in lines[0]
    assert not (tmp_path / "out").exists()


def test_bad_color_policy_is_refused(jpegs, tmp_path):
    r = invoke("restore", jpegs, "--out", tmp_path / "out", "--color-policy", "rgb")
    assert r.exit_code == EXIT_ERROR
    assert r.stderr.strip() == "error: color_policy must be one of ('auto', 'color', 'luma'), got 'rgb'"


def _cmyk_jpeg(path, make_image):
    buf = io.BytesIO()
    Image.fromarray(make_image(32, 40, color="rgb")).convert("CMYK").save(buf, "JPEG", quality=50)
    path.write_bytes(buf.getvalue())


def _png16(path, make_image):
    Image.fromarray(make_image(32, 40).astype(np.uint16) * 257).save(path)
    with Image.open(path) as img:
        assert img.mode.startswith("I;16")


@pytest.mark.parametrize(("make", "message"), [
    (_cmyk_jpeg, "CMYK JPEG is not supported (convert it to RGB first)"),
    (_png16, "image with more than 8 bits per sample is not supported here"),
])
@pytest.mark.parametrize("method", ["jpeg", "fbcnn"])
def test_cmyk_and_16_bit_inputs_get_one_clear_refusal(weights, tmp_path, make_image, make, message, method):
    src = tmp_path / ("bad.jpg" if make is _cmyk_jpeg else "bad.png")
    make(src, make_image)
    r = invoke("restore", src, "--method", method, "--out", tmp_path / "out", "--device", "cpu", "--quiet")
    assert r.exit_code == EXIT_SKIPPED and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines == ["skipped 1 input(s):", lines[1]] and lines[1].startswith(f"  {src}: ") and message in lines[1]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["restore.csv"]
