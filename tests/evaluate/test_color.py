"""Colour corpora in evaluate: which model each row used (``color_path``), ``color_policy``, old files;
and the real-world experiment (:func:`jpegbench.evaluate.realworld`) with the report section it feeds."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from click.testing import CliRunner

from PIL import Image

from jpegbench.codec import encode, ijg_qtable, inspect_jpeg, write_png
from jpegbench.errors import InputError, ResultsError, WeightsError
from jpegbench.evaluate import (
    RESULT_COLUMNS,
    evaluate,
    read_realworld,
    read_results,
    realworld,
)
from jpegbench.models import FBCNN, save_checkpoint
from jpegbench.models.weights import WEIGHTS_DIR_ENV

pytestmark = pytest.mark.usefixtures("one_torch_thread")

COLOR_RECIPE = """name = "tiny-color"
seed = 0
color = "rgb"

[source]
path = "sources"
glob = "*.png"

[encoder]
backend = "pillow"
subsampling = "4:2:0"

[[stages]]
op = "jpeg"
qf = [10, 30]
"""


def _tiny(in_nc: int, seed: int) -> FBCNN:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return FBCNN(in_nc=in_nc, nc=(8, 16, 16, 16), nb=1)


def _rgb(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    base = 128 + 60 * np.sin(xx / 7.0 + seed) * np.cos(yy / 11.0)
    return np.clip(np.stack([base + 20 * c + rng.normal(0, 8, base.shape) for c in range(3)], -1), 0, 255).astype(
        np.uint8)


@pytest.fixture(scope="module")
def color_corpus(tmp_path_factory) -> Path:
    from jpegbench.synth import load_recipe, synthesize

    root = tmp_path_factory.mktemp("color")
    (root / "sources").mkdir()
    for i in range(2):
        write_png(root / "sources" / f"img{i}.png", _rgb(48, 56, i))
    (root / "r.toml").write_text(COLOR_RECIPE)
    synthesize(load_recipe(root / "r.toml"), root / "corpus", progress=False)
    return root / "corpus"


@pytest.fixture
def weights_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.delenv(WEIGHTS_DIR_ENV, raising=False)
    folder = tmp_path / "weights"
    folder.mkdir()
    save_checkpoint(_tiny(1, 0), folder / "fbcnn_small_gray.pt")
    save_checkpoint(_tiny(3, 1), folder / "fbcnn_small_color.pt")
    return folder


def test_colour_corpus_rows_say_which_model_ran(color_corpus, weights_dir, tmp_path):
    out = tmp_path / "r.parquet"
    df = evaluate(color_corpus, methods=("jpeg", "fbcnn"), weights_dir=weights_dir, device="cpu", out=out,
                  progress=False)
    assert list(df.columns) == list(RESULT_COLUMNS)
    net = df[df["method"] == "fbcnn"]
    assert (net["color_path"] == "color").all() and (net["weights"] == "fbcnn_small_color.pt").all()
    assert (df.loc[df["method"] == "jpeg", "color_path"] == "").all()
    assert read_results(out).attrs["jpegbench"]["color_policy"] == "auto"
    luma = evaluate(color_corpus, methods=("fbcnn",), weights_dir=weights_dir, device="cpu", color_policy="luma",
                    progress=False)
    assert (luma["color_path"] == "luma").all() and (luma["weights"] == "fbcnn_small_gray.pt").all()
    # The same results file with the other model is refused, not mixed.
    with pytest.raises(ResultsError, match="other weights"):
        evaluate(color_corpus, methods=("fbcnn",), weights_dir=weights_dir, device="cpu", color_policy="luma",
                 out=out, progress=False)


def test_color_policy_color_without_a_colour_model_fails_before_any_work(color_corpus, weights_dir, tmp_path):
    (weights_dir / "fbcnn_small_color.pt").unlink()
    out = tmp_path / "r.parquet"
    with pytest.raises(WeightsError, match="fbcnn_small_color.pt"):
        evaluate(color_corpus, methods=("jpeg", "fbcnn"), weights_dir=weights_dir, device="cpu", out=out,
                 color_policy="color", progress=False)
    assert not out.exists()
    with pytest.raises(InputError, match="color_policy"):
        evaluate(color_corpus, methods=("fbcnn",), weights_dir=weights_dir, color_policy="rgb", progress=False)


def test_a_file_written_before_color_path_reads_with_it(color_corpus, weights_dir, tmp_path):
    new = tmp_path / "new.parquet"
    evaluate(color_corpus, methods=("jpeg", "fbcnn"), weights_dir=weights_dir, device="cpu", color_policy="luma",
             out=new, progress=False)
    table = pq.read_table(new)
    old = tmp_path / "old.parquet"
    pq.write_table(table.drop(["color_path"]).replace_schema_metadata(table.schema.metadata), old)
    back = read_results(old)
    assert list(back.columns) == list(RESULT_COLUMNS)
    # FBCNN restored colour on the luma only before the column existed.
    assert list(back["color_path"]) == list(read_results(new)["color_path"])


# -- real-world JPEGs ----------------------------------------------------------------


@pytest.fixture
def real_jpegs(tmp_path) -> Path:
    folder = tmp_path / "real"
    folder.mkdir()
    (folder / "colour.jpg").write_bytes(encode(_rgb(40, 48, 3), 25))
    (folder / "gray.jpg").write_bytes(encode(_rgb(40, 48, 4)[..., 1], 60))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    # one table for all three components (as some cameras and editors write): its QF is the luma table's
    shared = io.BytesIO()
    Image.fromarray(_rgb(40, 48, 5)).save(shared, format="JPEG", qtables=[ijg_qtable(50).ravel().tolist()])
    (folder / "shared_table.jpg").write_bytes(shared.getvalue())
    return folder


def test_realworld_sidecar(real_jpegs, weights_dir, tmp_path):
    side = realworld(real_jpegs, tmp_path / "rw.npz", manual_qf=7, weights_dir=weights_dir, device="cpu",
                     estimator="robust", crop=32, progress=False)
    rw = read_realworld(side)
    meta = rw["meta"]
    assert [im["name"] for im in meta["images"]] == ["colour.jpg", "gray.jpg", "shared_table.jpg"]
    assert [s[0].endswith("broken.jpg") for s in meta["skipped"]] == [True]
    colour, gray, shared = meta["images"]
    assert (colour["color_path"], gray["color_path"]) == ("color", "gray")
    assert (colour["qf_tables"], gray["qf_tables"]) == (25, 60)
    # the same reading of the tables as `jpegbench inspect` and `estimate`
    assert (shared["qf_tables"], shared["qf_tables_kind"]) == (50, "exact")
    assert shared["qf_tables_kind"] == inspect_jpeg(real_jpegs / "shared_table.jpg")["qf_kind"]
    for im, crops in zip(meta["images"], rw["crops"]):
        assert im["paths"]["manual"] == {"qf_used": 7.0, "qf_source": "manual", "weights": im["paths"]["blind"]["weights"]}
        assert im["paths"]["blind"]["qf_source"] == "predicted"
        assert im["paths"]["blind"]["qf_used"] == pytest.approx(im["qf_predicted"])
        assert im["paths"]["dominant"]["qf_source"] in ("dominant", "predicted")  # predicted: the estimator found none
        assert set(crops) == {"jpeg", "blind", "dominant", "manual"}
        assert crops["jpeg"].shape[:2] == (32, 32) and crops["jpeg"].dtype == np.uint8
    assert rw["crops"][1]["jpeg"].ndim == 2 and rw["crops"][0]["manual"].shape == (32, 32, 3)
    with pytest.raises(InputError, match="manual_qf"):
        realworld(real_jpegs, tmp_path / "x.npz", manual_qf=0, weights_dir=weights_dir)
    with pytest.raises(InputError, match=".npz"):
        realworld(real_jpegs, tmp_path / "x.csv", weights_dir=weights_dir)
    with pytest.raises(ResultsError, match="real-world"):
        read_realworld(tmp_path / "nope.npz")


def test_report_real_renders_the_section_without_psnr(real_jpegs, weights_dir, color_corpus, tmp_path, monkeypatch):
    from jpegbench.cli import cli

    res = tmp_path / "r.parquet"
    evaluate(color_corpus, methods=("jpeg",), out=res, progress=False)
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(weights_dir))
    r = CliRunner().invoke(cli, ["report", str(res), "--out", str(tmp_path / "rep"), "--real", str(real_jpegs),
                                 "--real-qf", "12", "--device", "cpu"], prog_name="jpegbench")
    assert r.exit_code == 0, r.stderr
    html = (tmp_path / "rep" / "report.html").read_text()
    md = (tmp_path / "rep" / "report.md").read_text()
    section = html.split('<section id="real-world">')[1].split("</section>")[0]
    text = re.sub(r'src="[^"]*"', "", section)
    assert "no PSNR here" in text and "Manual QF: 12." in text and " dB" not in text
    assert section.count("<img") == 3 and 'id="fig-realworld-0"' in section and "broken.jpg" in section
    assert "12.0 (manual)" in section and "25 (exact)" in section
    assert "![colour.jpg](figures/realworld_0.png)" in md and (tmp_path / "rep" / "figures" / "realworld_1.svg").is_file()
    # Colour corpus: its single JPEG tables are Table 2's (colour), beside the paper's.
    assert (tmp_path / "rep" / "tables" / "table2_psnr.csv").is_file()
    assert not (tmp_path / "rep" / "tables" / "single_jpeg_psnr.csv").exists()
