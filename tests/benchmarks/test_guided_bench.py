"""Acceptance measurements of the shipped small table-guided models (QCN, QGCN, IJCN; slow; needs ../shared).

Run (about 25 minutes on two idle cores; the corpora go to a temporary folder)::

    JPEGBENCH_BENCH_OUT=runs/guided_eval.json \\
        python -m pytest tests/benchmarks/test_guided_bench.py -m slow -s -p no:cacheprovider

Conventions of ``../shared/README.md``: Pillow / libjpeg-turbo with the IJG
tables, PSNR on the 8-bit image (gray: BT.601 studio-swing Y; colour: RGB),
border 0, the mean over the 29 LIVE1 images. Every restoration goes through
the same code as ``jpegbench restore`` / ``jpegbench evaluate`` with no
``--weights``: the shipped ``qcn_small_gray.pt``, ``qgcn_small_gray.pt`` and
``ijcn_small_color.pt``, whole image (untiled), CPU, float32.

* single JPEG at QF 10 (gray for QCN / QGCN, colour 4:2:0 for IJCN): each
  shipped model gains at least 0.5 dB over JPEG (issue 16);
* the paper's Table 3 protocol (``datasets/fbcnn-table3.toml``: LIVE1 gray,
  JPEG(QF1) -> remove 4 rows and columns -> JPEG(QF2), QF1, QF2 in
  {10, 30, 50}), through :func:`jpegbench.evaluate.evaluate`: every cell is
  printed for jpeg, qcn, qcn-d, qgcn, qgcn-d; on each non-aligned QF1 < QF2
  cell the ``-d`` twin (the IJG tables of the estimated dominant QF instead of
  the file's last tables) beats its plain method;
* IJCN's own double protocol (``datasets/ijcn-double-color.toml``: LIVE1
  colour, QF1, QF2 in {30, 50}, shifts (0, 0) and (4, 4)): every cell printed
  for jpeg, ijcn, ijcn-d; on the non-aligned QF1 < QF2 cell ((30, 50), shift
  (4, 4)) ``ijcn-d`` beats ``ijcn``.

Each test skips, saying so, while its weights are not shipped. The numbers go
to BENCHMARKS.md and the model card (``jpegbench/models/weights/MODEL_CARD.md``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from jpegbench.codec import decode, encode, read_image
from jpegbench.metrics import psnr
from jpegbench.models import get_method
from jpegbench.models.guided_weights import guided_weight_names
from jpegbench.models.weights import shipped_weights_dir

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
LIVE1_GRAY = SHARED / "data" / "LIVE1_gray"
LIVE1_COLOR = SHARED / "data" / "LIVE1_color"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.shared,
    pytest.mark.skipif(not LIVE1_GRAY.is_dir() or not LIVE1_COLOR.is_dir(), reason="needs LIVE1 in ../shared"),
]

GAIN_QF10 = 0.5  # dB over JPEG, issue 16
# What MODEL_CARD.md and BENCHMARKS.md state (measured 2026-12-02, torch 2.13 CPU); a run that moves a figure by
# more than STATED_TOL fails, so the documents are updated with the weights.
STATED_TOL = 0.05
STATED_QF10 = {"qcn": (27.77, 28.86), "qgcn": (27.77, 28.94), "ijcn": (25.69, 26.72)}
STATED_TABLE3 = {  # (QF1, QF2): jpeg, qcn, qcn-d, qgcn, qgcn-d
    (10, 10): (26.48, 27.49, 27.49, 27.56, 27.56), (10, 30): (27.55, 28.25, 28.51, 28.31, 28.58),
    (10, 50): (27.69, 28.28, 28.65, 28.30, 28.71), (30, 10): (27.49, 28.62, 28.62, 28.69, 28.69),
    (30, 30): (29.98, 31.09, 31.09, 31.17, 31.17), (30, 50): (30.61, 31.65, 31.78, 31.70, 31.86),
    (50, 10): (27.65, 28.79, 28.79, 28.87, 28.87), (50, 30): (30.62, 31.84, 31.84, 31.92, 31.92),
    (50, 50): (31.58, 32.80, 32.80, 32.85, 32.85),
}
STATED_IJCN = {  # (QF1, QF2, dy, dx): jpeg, ijcn, ijcn-d
    (30, 30, 0, 0): (29.33, 30.39, 30.38), (30, 30, 4, 4): (28.00, 29.00, 28.93),
    (30, 50, 0, 0): (28.68, 29.72, 29.89), (30, 50, 4, 4): (28.61, 29.50, 29.62),
    (50, 30, 0, 0): (27.94, 30.09, 29.86), (50, 30, 4, 4): (28.59, 29.67, 29.61),
    (50, 50, 0, 0): (30.98, 32.02, 32.01), (50, 50, 4, 4): (29.55, 30.58, 30.51),
}
TABLE3_UP = ((10, 30), (10, 50), (30, 50))  # the non-aligned QF1 < QF2 cells of Table 3
IJCN_UP = (30, 50, 4, 4)  # the non-aligned QF1 < QF2 cell of IJCN's protocol


@pytest.fixture(scope="module", autouse=True)
def _threads():
    # evaluate's curves use the C kernel's own threads; the networks run on torch's.
    before = torch.get_num_threads()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    yield
    torch.set_num_threads(before)


def _require(arch: str, channels: int) -> None:
    name = guided_weight_names(arch, channels)[1]
    if not (shipped_weights_dir() / name).is_file():
        kind = "gray" if channels == 1 else "color"
        pytest.skip(f"{name} is not shipped yet (train it with configs/{arch}-small-{kind}.toml)")


@pytest.mark.parametrize(("arch", "color"), [("qcn", "gray"), ("qgcn", "gray"), ("ijcn", "rgb")])
def test_single_jpeg_qf10_gain(arch, color, record):
    _require(arch, 1 if color == "gray" else 3)
    folder = LIVE1_GRAY if color == "gray" else LIVE1_COLOR
    method = get_method(arch, device="cpu")
    jpeg, restored = [], []
    for p in sorted(folder.glob("*.png")):
        x = read_image(p, color=color)
        data = encode(x, 10, subsampling="4:2:0")
        jpeg.append(psnr(x, decode(data)))
        r = method(data)
        assert r.qf_source == "tables" and r.qf_used == 10
        restored.append(psnr(x, r.image))
    assert len(jpeg) == 29
    j, m = float(np.mean(jpeg)), float(np.mean(restored))
    print(f"\nLIVE1 {color} QF 10: JPEG {j:.2f} dB, small {arch.upper()} {m:.2f} dB ({m - j:+.2f})")
    record(f"{arch}_single_jpeg_psnr_qf10", {"jpeg": j, arch: m})
    assert m - j >= GAIN_QF10
    assert np.allclose((j, m), STATED_QF10[arch], atol=STATED_TOL), ((j, m), STATED_QF10[arch])


def _cells(results, methods, keys):
    means = results.groupby(["method", *keys])["psnr"].mean()
    return {m: {k: float(means[(m, *k)]) for k in sorted({tuple(v) for v in results[keys].to_numpy()})}
            for m in methods}  # fmt: skip


def _assert_stated(cells, methods, stated) -> None:
    """Every cell within STATED_TOL of what the model card states."""
    off = [f"{m} {k}: {cells[m][k]:.2f} (stated {v[i]:.2f})" for k, v in stated.items()
           for i, m in enumerate(methods) if abs(cells[m][k] - v[i]) > STATED_TOL]  # fmt: skip
    assert set(cells["jpeg"]) == set(stated) and not off, "; ".join(off)


def _evaluate(recipe: str, methods: tuple[str, ...], tmp_path: Path):
    from jpegbench.evaluate import evaluate
    from jpegbench.synth import load_recipe, synthesize

    corpus = tmp_path / "corpus"
    synthesize(load_recipe(REPO / "datasets" / recipe), corpus, progress=False)
    return evaluate(corpus, methods=methods, device="cpu", out=tmp_path / "results.parquet", progress=False,
                    examples=False)  # fmt: skip


def test_table3_d_twins_beat_plain_on_qf1_below_qf2(tmp_path, record):
    _require("qcn", 1)
    _require("qgcn", 1)
    methods = ("jpeg", "qcn", "qcn-d", "qgcn", "qgcn-d")
    results = _evaluate("fbcnn-table3.toml", methods, tmp_path)
    assert len(results) == 29 * 9 * len(methods)
    cells = _cells(results, methods, ["qf1", "qf2"])
    print("\nTable 3 protocol (LIVE1 gray, shift (4, 4)), PSNR dB:")
    print("QF1,QF2  " + "  ".join(f"{m:>7}" for m in methods))
    for k in cells["jpeg"]:
        print(f"{k[0]:>3},{k[1]:<3}  " + "  ".join(f"{cells[m][k]:7.2f}" for m in methods))
    record("table3_guided_psnr", {m: {f"{a}_{b}": v for (a, b), v in c.items()} for m, c in cells.items()})
    losses = [f"{arch}-d {cells[arch + '-d'][c]:.2f} <= {arch} {cells[arch][c]:.2f} at {c}"
              for arch in ("qcn", "qgcn") for c in TABLE3_UP if cells[arch + "-d"][c] <= cells[arch][c]]  # fmt: skip
    assert not losses, "; ".join(losses)
    _assert_stated(cells, methods, STATED_TABLE3)


def test_ijcn_protocol_d_twin_beats_plain_on_qf1_below_qf2(tmp_path, record):
    _require("ijcn", 3)
    methods = ("jpeg", "ijcn", "ijcn-d")
    results = _evaluate("ijcn-double-color.toml", methods, tmp_path)
    assert len(results) == 29 * 8 * len(methods)
    cells = _cells(results, methods, ["qf1", "qf2", "shift_dy", "shift_dx"])
    print("\nIJCN protocol (LIVE1 colour, 4:2:0), PSNR dB:")
    print("QF1,QF2 shift  " + "  ".join(f"{m:>7}" for m in methods))
    for k in cells["jpeg"]:
        print(f"{k[0]:>3},{k[1]:<3} ({k[2]},{k[3]})  " + "  ".join(f"{cells[m][k]:7.2f}" for m in methods))
    record("ijcn_protocol_psnr", {m: {"_".join(map(str, k)): v for k, v in c.items()} for m, c in cells.items()})
    assert cells["ijcn-d"][IJCN_UP] > cells["ijcn"][IJCN_UP], (cells["ijcn-d"][IJCN_UP], cells["ijcn"][IJCN_UP])
    _assert_stated(cells, methods, STATED_IJCN)
