"""The table-guided methods (qcn, qgcn, ijcn and their -d twins) in evaluate, and the qf_source column.

Models are small seeded random networks saved to tmp files as plain state
dicts (the authors' layout), as in tests/models/test_guided_methods.py.
"""

from __future__ import annotations

import importlib
import json

import numpy as np
import pandas as pd
import pytest

from jpegbench.cli import main
from jpegbench.codec import read_image
from jpegbench.errors import UnsupportedImageError
from jpegbench.evaluate import RESULT_COLUMNS, evaluate, read_examples, read_results, write_results
from jpegbench.metrics import psnr
from jpegbench.synth import read_manifest

from .conftest import TINY_RECIPE, make_image

torch = pytest.importorskip("torch")
sample = importlib.import_module("jpegbench.evaluate.sample")


def _seeded(cls, seed=0, **kwargs):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return cls(**kwargs).eval()


def _weights(tmp, arch, seed=0):
    from jpegbench.models import IJCN, QCN, QGCN

    if arch == "qcn":
        model = _seeded(QCN, seed, in_channel=2, out_channel=1, n_feats=8, n_resblocks=2)
    elif arch == "qgcn":
        model = _seeded(QGCN, seed, in_channel=2, in_glo_channel=1, out_channel=1, n_feats=64, n_resblocks=2)
    else:
        model = _seeded(IJCN, seed, nc=[4, 8, 8, 16])
    path = tmp / f"{arch}-{seed}.pth"
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def guided_weights(tmp_path_factory):
    d = tmp_path_factory.mktemp("guided_weights")
    return {a: _weights(d, a) for a in ("qcn", "qgcn", "ijcn")}


@pytest.fixture(scope="module")
def color_corpus(tmp_path_factory):
    """2 colour sources x 4 non-aligned double JPEGs (4:2:0, Pillow's default)."""
    from jpegbench.codec import write_png
    from jpegbench.synth import load_recipe, synthesize

    root = tmp_path_factory.mktemp("color")
    (root / "sources").mkdir()
    for i in range(2):
        g = make_image(72, 72, seed=i).astype(np.int16)
        write_png(root / "sources" / f"img{i}.png", np.clip(np.stack([g, g + 25, 255 - g], -1), 0, 255).astype(np.uint8))
    (root / "tiny.toml").write_text(TINY_RECIPE.replace('color = "gray"', 'color = "rgb"'))
    synthesize(load_recipe(root / "tiny.toml"), root / "corpus", progress=False)
    return root / "corpus"


GRAY_METHODS = ("jpeg", "qcn", "qcn-d", "qgcn", "qgcn-d")


@pytest.fixture(scope="module")
def gray_run(tiny_corpus, guided_weights, tmp_path_factory):
    out = tmp_path_factory.mktemp("guided_eval") / "r.parquet"
    df = evaluate(tiny_corpus, methods=GRAY_METHODS, weights={"qcn": guided_weights["qcn"], "qgcn": guided_weights["qgcn"]},
                  device="cpu", out=out, progress=False)  # fmt: skip
    return df, out


def test_guided_methods_read_the_file(gray_run, tiny_corpus, guided_weights):
    from jpegbench.models import get_method

    df, _ = gray_run
    manifest = read_manifest(tiny_corpus).set_index("sample_id")
    assert list(df.columns) == list(RESULT_COLUMNS)
    assert list(dict.fromkeys(df["method"])) == list(GRAY_METHODS) and len(df) == 5 * len(manifest)
    for m in ("qcn", "qgcn"):
        rows = df[df["method"] == m]
        # The plain methods are given the file's last tables: IJG tables of QF2 (Pillow).
        assert (rows["qf_source"] == "tables").all() and (rows["qf_used"] == rows["qf2"]).all()
        assert rows["qf_predicted"].isna().all()
        row = rows.iloc[0]
        lq = tiny_corpus / manifest.loc[row["sample_id"], "lq_path"]
        hq = read_image(tiny_corpus / manifest.loc[row["sample_id"], "hq_path"])
        direct = get_method(m, weights=guided_weights[m], device="cpu")(lq)
        assert row["psnr"] == psnr(hq, direct.image)
    assert (df.loc[df["method"] == "jpeg", "qf_source"] == "").all()


def test_d_twins_take_the_dominant_qf_and_their_plain_methods_weights(gray_run):
    df, out = gray_run
    for m in ("qcn-d", "qgcn-d"):
        d, plain = df[df["method"] == m], df[df["method"] == m[:-2]]
        assert set(d["qf_source"]) <= {"dominant", "tables"}
        dom = d[d["qf_source"] == "dominant"]
        assert len(dom) > 0
        # The dominant QF estimated once per sample (qf_estimated), rounded to IJG tables.
        np.testing.assert_array_equal(dom["qf_used"], np.round(dom["qf_estimated"]))
        assert set(d["weights_sha256"]) == set(plain["weights_sha256"]) and len(set(d["weights_sha256"])) == 1
    meta = read_results(out).attrs["jpegbench"]["weights"]
    assert meta["qcn-d"] == meta["qcn"] and meta["qgcn-d"] == meta["qgcn"]
    assert {"jpeg", "qcn", "qcn-d", "qgcn", "qgcn-d", "hq"} <= set(read_examples(out)["crops"])


def test_every_d_method_is_timed_with_its_estimate(tiny_corpus, guided_weights, tmp_path, monkeypatch):
    real = sample.estimate_sample

    def slow_estimate(*args, **kwargs):
        est, _ = real(*args, **kwargs)
        return est, 1000.0  # as if the curves had taken that long

    monkeypatch.setattr(sample, "estimate_sample", slow_estimate)
    df = evaluate(tiny_corpus, methods=("jpeg", "qcn", "qcn-d"), weights={"qcn": guided_weights["qcn"]},
                  device="cpu", progress=False)  # fmt: skip
    by = df.groupby("method")["seconds"]
    assert (by.min()["qcn-d"] >= 1000) and by.max()["qcn"] < 1000 and by.max()["jpeg"] < 1000


def test_ijcn_on_a_colour_corpus(color_corpus, guided_weights, tmp_path):
    df = evaluate(color_corpus, methods=("jpeg", "ijcn", "ijcn-d"), weights={"ijcn": guided_weights["ijcn"]},
                  device="cpu", out=tmp_path / "c.parquet", progress=False)  # fmt: skip
    ij, d = df[df["method"] == "ijcn"], df[df["method"] == "ijcn-d"]
    assert len(ij) == len(d) == len(read_manifest(color_corpus))
    assert (ij["qf_source"] == "tables").all() and (ij["qf_used"] == ij["qf2"]).all()
    assert set(d["qf_source"]) <= {"dominant", "tables"} and (d["weights_sha256"] == ij["weights_sha256"].iloc[0]).all()
    assert np.isfinite(df["psnr"]).all() and (df["color"] == "rgb").all()


def test_ijcn_refuses_a_gray_corpus_before_any_work(tiny_corpus, guided_weights, tmp_path, monkeypatch):
    def no_work(*a, **k):
        raise AssertionError("a sample was scored")

    monkeypatch.setattr(sample, "score_sample", no_work)
    out = tmp_path / "r.parquet"
    with pytest.raises(UnsupportedImageError, match="IJCN restores colour JPEGs only"):
        evaluate(tiny_corpus, methods=("jpeg", "ijcn"), weights={"ijcn": guided_weights["ijcn"]}, out=out,
                 progress=False)  # fmt: skip
    assert not list(tmp_path.iterdir())


def test_cli_ijcn_on_a_gray_corpus_is_one_error_line(tiny_corpus, guided_weights, tmp_path, capsys):
    out = tmp_path / "r.parquet"
    code = main(["evaluate", str(tiny_corpus), "--methods", "ijcn-d", "--weights", f"ijcn={guided_weights['ijcn']}",
                 "--out", str(out), "--quiet"])  # fmt: skip
    assert code != 0
    err = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert len(err) == 1 and err[0].startswith("error: ") and "gray" in err[0]
    assert not list(tmp_path.iterdir())


def test_results_without_qf_source_are_still_read(tmp_path, gray_run, tiny_corpus, guided_weights):
    import pyarrow.parquet as pq

    from jpegbench.models import FBCNN
    from jpegbench.models.weights import save_checkpoint

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        save_checkpoint(FBCNN(in_nc=1, nc=(8, 16, 16, 16), nb=1), tmp_path / "f.pt")
    df = evaluate(tiny_corpus, methods=("jpeg", "fbcnn", "fbcnn-d"), weights={"fbcnn": tmp_path / "f.pt"},
                  device="cpu", progress=False)  # fmt: skip
    new = tmp_path / "new.parquet"
    write_results(df, new, df.attrs["jpegbench"])
    # A file as written before the column existed: same metadata, no qf_source.
    table = pq.read_table(new)
    old = tmp_path / "old.parquet"
    pq.write_table(table.drop(["qf_source"]).replace_schema_metadata(table.schema.metadata), old)
    assert "qf_source" not in pq.read_schema(old).names
    back = read_results(old)
    assert list(back.columns) == list(RESULT_COLUMNS)
    pd.testing.assert_series_equal(back["qf_source"], df["qf_source"], check_names=False)
    assert set(df.loc[df["method"] == "fbcnn", "qf_source"]) == {"predicted"}
    assert json.loads(table.schema.metadata[b"jpegbench"])["format_version"] == 1
    # A table without the column is written with it.
    write_results(df.drop(columns="qf_source"), tmp_path / "again.parquet", df.attrs["jpegbench"])
    assert list(read_results(tmp_path / "again.parquet")["qf_source"]) == list(df["qf_source"])
