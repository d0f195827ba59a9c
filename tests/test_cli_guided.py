"""``jpegbench restore`` with the table-guided methods (qcn, qgcn, ijcn and their -d twins), in-process (CliRunner).

Bad input of every kind gets one ``error:`` line, exit status 2, and no
output folder.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import jpegbench.models.weights as weights_mod
from jpegbench.cli import EXIT_ERROR, cli
from jpegbench.codec import read_image
from jpegbench.models import IJCN, QCN, QGCN


def invoke(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="jpegbench")


def one_error_line(r, pattern: str = "") -> str:
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == EXIT_ERROR, (r.exit_code, r.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr
    assert pattern in lines[0], (pattern, lines[0])
    return lines[0]


def _image(height, width, color):
    yy, xx = np.mgrid[0:height, 0:width].astype(float)
    base = 128 + 60 * np.sin(xx / 7.0) * np.cos(yy / 11.0)
    chans = [base + 20 * c for c in range(3 if color == "rgb" else 1)]
    x = np.clip(np.round(np.stack(chans, axis=-1)), 0, 255).astype(np.uint8)
    return x[..., 0] if color == "gray" else x


def _jpeg(path, color="rgb", qf=40, **kwargs):
    buf = io.BytesIO()
    Image.fromarray(_image(40, 56, color)).save(buf, format="JPEG", quality=qf, **kwargs)
    path.write_bytes(buf.getvalue())
    return path


def _weights(path, arch, color="gray"):
    torch.manual_seed(0)
    if arch == "qcn":
        model = QCN(in_channel=2 if color == "gray" else 5, out_channel=1 if color == "gray" else 3, n_feats=8,
                    n_resblocks=2)
    elif arch == "qgcn":
        c = 1 if color == "gray" else 3
        model = QGCN(in_channel=2 if c == 1 else 5, in_glo_channel=c, out_channel=c, n_feats=64, n_resblocks=2)
    else:
        model = IJCN(nc=[4, 8, 8, 16])
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(autouse=True)
def _cpu_by_default(monkeypatch):
    # Comparisons are float32 on the CPU: CUDA's TF32 convolutions would need looser tolerances.
    import jpegbench.models.guided_inference as guided

    real = guided.pick_device
    monkeypatch.setattr(guided, "pick_device", lambda device=None: real("cpu" if device is None else device))


@pytest.fixture(autouse=True)
def _no_weights_env(monkeypatch):
    monkeypatch.delenv(weights_mod.WEIGHTS_DIR_ENV, raising=False)


@pytest.mark.parametrize("method, arch, color", [("qcn", "qcn", "gray"), ("qgcn", "qgcn", "rgb"),
                                                 ("ijcn", "ijcn", "rgb")])  # fmt: skip
def test_restore_with_a_guided_method(method, arch, color, tmp_path):
    src = _jpeg(tmp_path / "a.jpg", color, qf=40)
    weights = _weights(tmp_path / "w.pth", arch, "gray" if color == "gray" else "color")
    out = tmp_path / "out"
    r = invoke("restore", src, "--method", method, "--weights", weights, "--out", out, "--device", "cpu", "--quiet")
    assert r.exit_code == 0, r.stderr
    assert f"{src} -> {out / 'a.png'} (QF used 40.0 from tables)" in r.stdout
    assert read_image(out / "a.png").shape == read_image(src).shape
    row = pd.read_csv(out / "restore.csv").iloc[0]
    assert (row["method"], row["qf_used"], row["qf_source"], row["weights"]) == (method, 40.0, "tables", str(weights))


def test_restore_d_twin_with_manual_qf(tmp_path):
    src = _jpeg(tmp_path / "a.jpg", "gray", qf=70)
    weights = _weights(tmp_path / "w.pth", "qgcn")
    r = invoke("restore", src, "--method", "qgcn-d", "--qf", "25", "--weights", weights, "--out", tmp_path / "o",
               "--quiet")
    assert r.exit_code == 0, r.stderr
    row = pd.read_csv(tmp_path / "o" / "restore.csv").iloc[0]
    assert (row["qf_used"], row["qf_source"]) == (25.0, "manual")


BAD = [
    ("qcn", "png", None, "not a JPEG file; method 'qcn' reads the file's quantization tables"),
    ("ijcn", "gray", None, "IJCN restores colour JPEGs only; this file is gray"),
    ("ijcn-d", "444", None, "IJCN needs 4:2:0 chroma subsampling"),
    ("qgcn", "gray", "qgcn-color", "a colour QGCN needs a colour JPEG"),
    ("qcn", "rgb", "pickle", "refused to unpickle"),
    ("qcn", "rgb", "ijcn", "expected a QCN state dict, found an IJCN layout"),
    ("ijcn", "rgb", "fbcnn-like", "expected an IJCN state dict"),
    ("qgcn", "rgb", "none", "no QGCN weights are shipped yet"),
    ("ijcn", "rgb", "tile96", "IJCN tiles must be a multiple of 64 pixels"),
]


@pytest.mark.parametrize("method, source, weights, message", BAD, ids=[f"{m}-{s}-{w}" for m, s, w, _ in BAD])
def test_bad_input_is_one_line_and_writes_nothing(method, source, weights, message, tmp_path, monkeypatch):
    if source == "png":
        src = tmp_path / "a.png"
        Image.fromarray(_image(40, 56, "rgb")).save(src)
    elif source == "444":
        src = _jpeg(tmp_path / "a.jpg", "rgb", subsampling=0)
    else:
        src = _jpeg(tmp_path / "a.jpg", source)
    arch = method.removesuffix("-d")
    extra = []
    if weights in (None, "tile96"):
        extra = ["--weights", _weights(tmp_path / "w.pth", arch, "color")]
        if weights == "tile96":
            extra += ["--tile", "96"]
    elif weights == "qgcn-color":
        extra = ["--weights", _weights(tmp_path / "w.pth", "qgcn", "color")]
    elif weights == "pickle":
        torch.save({"epoch": 1, "model": QCN(in_channel=2, out_channel=1, n_feats=8, n_resblocks=1)},
                   tmp_path / "w.pth")
        extra = ["--weights", tmp_path / "w.pth"]
    elif weights == "ijcn":
        extra = ["--weights", _weights(tmp_path / "w.pth", "ijcn")]
    elif weights == "fbcnn-like":
        torch.save({"m_head.weight": torch.zeros(4, 3, 3, 3), "m_down1.0.res.0.weight": torch.zeros(4, 4, 3, 3)},
                   tmp_path / "w.pth")
        extra = ["--weights", tmp_path / "w.pth"]
    elif weights == "none":
        # nothing anywhere: an empty weights folder, and the shipped folder emptied too (QGCN weights ship)
        empty = tmp_path / "empty"
        empty.mkdir()
        monkeypatch.setattr(weights_mod, "shipped_weights_dir", lambda: empty)
        monkeypatch.delenv(weights_mod.WEIGHTS_DIR_ENV, raising=False)
        extra = ["--weights-dir", tmp_path]
    out = tmp_path / "out"
    r = invoke("restore", src, "--method", method, "--out", out, "--quiet", *extra)
    one_error_line(r, message)
    assert not out.exists()
