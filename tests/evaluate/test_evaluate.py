"""The evaluation runner on a tiny synthesized corpus: rows, metrics, resume, crash safety, errors."""

from __future__ import annotations

import importlib

import numpy as np
import pandas as pd
import pytest

from jpegbench.codec import read_image
from jpegbench.errors import CorpusError, InputError, ResultsError, WeightsError
from jpegbench.metrics import METRIC_CONVENTIONS, psnr, psnrb, ssim
from jpegbench.evaluate import RESULT_COLUMNS, evaluate, read_examples, read_results
from jpegbench.synth import read_manifest

runner = importlib.import_module("jpegbench.evaluate.runner")
sample = importlib.import_module("jpegbench.evaluate.sample")
RUNTIME = ["seconds"]


@pytest.fixture(scope="module")
def jpeg_run(tiny_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "results.parquet"
    return evaluate(tiny_corpus, methods=("jpeg",), out=out, progress=False), out


def test_rows_and_columns(jpeg_run, tiny_corpus):
    df, out = jpeg_run
    manifest = read_manifest(tiny_corpus)
    assert list(df.columns) == list(RESULT_COLUMNS)
    assert len(df) == len(manifest)
    assert list(df["sample_id"]) == list(manifest["sample_id"])  # manifest order
    for c in ("qf1", "qf2", "shift_dy", "shift_dx", "regime", "dominant_qf", "n_jpeg", "encoder"):
        assert list(df[c]) == list(manifest[c]), c
    assert (df["method"] == "jpeg").all()
    assert df["qf_predicted"].isna().all() and df["qf_used"].isna().all()
    assert (df["conventions"] == METRIC_CONVENTIONS).all()
    assert (df["weights"] == "").all() and not df["weights_shipped"].any()


def test_metrics_are_those_of_the_decoded_jpeg(jpeg_run, tiny_corpus):
    df, _ = jpeg_run
    manifest = read_manifest(tiny_corpus).set_index("sample_id")
    for row in df.head(3).itertuples():
        lq = read_image(tiny_corpus / manifest.loc[row.sample_id, "lq_path"])
        hq = read_image(tiny_corpus / manifest.loc[row.sample_id, "hq_path"])
        assert row.psnr == psnr(hq, lq) and row.ssim == ssim(hq, lq) and row.psnrb == psnrb(hq, lq)


def test_qf_columns(jpeg_run):
    df, _ = jpeg_run
    # The file's last tables give QF2 exactly (IJG tables, Pillow).
    assert (df["qf_last_tables"] == df["qf2"]).all()
    assert df["qf_estimated"].between(1, 100).all()


def test_metadata(jpeg_run, tiny_corpus):
    _, out = jpeg_run
    meta = read_results(out).attrs["jpegbench"]
    assert meta["format"] == "jpegbench-results"
    assert meta["corpus"] == str(tiny_corpus.resolve())
    assert meta["recipe"] == (tiny_corpus / "recipe.toml").read_text()
    assert len(meta["recipe_sha256"]) == 64
    for k in ("python", "numpy", "torch", "pillow", "libjpeg-turbo", "jpeglib"):
        assert meta["versions"][k]
    assert meta["metric_conventions"] == METRIC_CONVENTIONS and meta["estimator"] == "robust"


def test_examples_sidecar(jpeg_run):
    _, out = jpeg_run
    ex = read_examples(out)
    assert ex is not None
    meta = ex["meta"]
    assert meta["qf1"] < meta["qf2"]  # the example is a non-aligned QF1 < QF2 sample
    assert {"jpeg_input", "hq", "jpeg"} <= set(ex["crops"])
    assert ex["crops"]["jpeg"].dtype == np.uint8
    np.testing.assert_array_equal(ex["crops"]["jpeg"], ex["crops"]["jpeg_input"])
    assert ex["mse_curves"].shape == (8, 8, len(ex["mse_qfs"]))


def test_resume_adds_nothing(jpeg_run, tiny_corpus):
    df, out = jpeg_run
    before = out.stat().st_mtime_ns
    again = evaluate(tiny_corpus, methods=("jpeg",), out=out, progress=False)
    pd.testing.assert_frame_equal(again, df)
    assert len(read_results(out)) == len(df)
    assert out.stat().st_mtime_ns >= before


def test_interrupted_run_resumes_to_the_same_table(tiny_corpus, tmp_path, monkeypatch, jpeg_run):
    reference, _ = jpeg_run
    out = tmp_path / "r.parquet"
    calls = {"n": 0}
    real_row = sample._row

    def dying_row(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 6:
            raise KeyboardInterrupt  # stands in for a kill between two checkpoints
        return real_row(*args, **kwargs)

    monkeypatch.setattr(sample, "_row", dying_row)
    with pytest.raises(KeyboardInterrupt):
        evaluate(tiny_corpus, methods=("jpeg",), out=out, progress=False, save_every=2)
    partial = read_results(out)
    assert 0 < len(partial) < len(reference)
    assert not list(tmp_path.glob(".*.part"))  # no temporary file left behind
    monkeypatch.setattr(sample, "_row", real_row)
    final = evaluate(tiny_corpus, methods=("jpeg",), out=out, progress=False)
    pd.testing.assert_frame_equal(final.drop(columns=RUNTIME), reference.drop(columns=RUNTIME))


def test_no_resume_overwrites(tiny_corpus, tmp_path):
    out = tmp_path / "r.parquet"
    pd.DataFrame({"a": [1]}).to_parquet(out)
    with pytest.raises(ResultsError, match="not a jpegbench results file"):
        evaluate(tiny_corpus, out=out, progress=False)
    df = evaluate(tiny_corpus, out=out, progress=False, resume=False)
    assert len(read_results(out)) == len(df)


def test_results_of_another_corpus_are_not_mixed(tiny_corpus, tmp_path, jpeg_run):
    df, _ = jpeg_run
    out = tmp_path / "r.parquet"
    runner.write_results(df, out, {**df.attrs["jpegbench"], "manifest_sha256": "f" * 64})
    with pytest.raises(ResultsError, match="another corpus"):
        evaluate(tiny_corpus, out=out, progress=False)


def test_without_out_nothing_is_written(tiny_corpus):
    before = sorted(p.name for p in tiny_corpus.iterdir())
    df = evaluate(tiny_corpus, progress=False)
    assert len(df) > 0 and sorted(p.name for p in tiny_corpus.iterdir()) == before


def test_corpus_without_manifest(tmp_path):
    with pytest.raises(CorpusError, match="manifest"):
        evaluate(tmp_path, progress=False)
    with pytest.raises(CorpusError, match="no such"):
        evaluate(tmp_path / "nope", progress=False)


def test_unknown_method_lists_valid_ones(tiny_corpus):
    with pytest.raises(InputError, match="valid methods: jpeg, fbcnn, fbcnn-d, fbcnn-a"):
        evaluate(tiny_corpus, methods=("jpeg", "dncnn"), progress=False)
    with pytest.raises(InputError):
        evaluate(tiny_corpus, methods=(), progress=False)
    with pytest.raises(InputError, match="estimator"):
        evaluate(tiny_corpus, estimator="oracle", progress=False)
    with pytest.raises(InputError, match="jpeg"):
        evaluate(tiny_corpus, weights={"jpeg": "x.pt"}, progress=False)


def test_missing_weights(tiny_corpus, tmp_path):
    with pytest.raises(WeightsError):
        evaluate(tiny_corpus, methods=("fbcnn",), weights={"fbcnn": tmp_path / "nope.pt"}, progress=False)
    with pytest.raises(WeightsError):
        evaluate(tiny_corpus, methods=("fbcnn-a",), weights_dir=tmp_path, progress=False)
    assert not list(tmp_path.iterdir())


def test_network_methods_with_a_tiny_checkpoint(tiny_corpus, tmp_path):
    import torch
    from jpegbench.models import FBCNN
    from jpegbench.models.weights import save_checkpoint

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = FBCNN(in_nc=1, nc=(8, 16, 16, 16), nb=1)
    ckpt = tmp_path / "tiny.pt"
    save_checkpoint(model, ckpt)
    out = tmp_path / "r.parquet"
    df = evaluate(tiny_corpus, methods=("jpeg", "fbcnn", "fbcnn-d"), weights={"fbcnn": ckpt, "fbcnn-d": ckpt},
                  device="cpu", out=out, progress=False)
    assert list(df["method"].unique()) == ["jpeg", "fbcnn", "fbcnn-d"]
    net = df[df["method"] == "fbcnn"]
    assert net["qf_predicted"].notna().all() and (net["qf_used"] == net["qf_predicted"]).all()
    d = df[df["method"] == "fbcnn-d"]
    # fbcnn-d is conditioned on the estimate computed once per sample.
    np.testing.assert_allclose(d["qf_used"].to_numpy(), d["qf_estimated"].to_numpy())
    assert (net["weights"] == "tiny.pt").all() and (net["weights_sha256"].str.len() == 12).all()
    assert not net["weights_shipped"].any() and (net["device"] == "cpu").all()
    assert set(read_examples(out)["crops"]) >= {"jpeg", "fbcnn", "fbcnn-d", "hq"}
    # Adding a method to an existing file evaluates only that method.
    more = evaluate(tiny_corpus, methods=("jpeg", "fbcnn"), weights={"fbcnn": ckpt}, out=out, progress=False)
    pd.testing.assert_frame_equal(more.drop(columns=RUNTIME), df.drop(columns=RUNTIME))
    # Other weights for a method already in the file: refused, not mixed.
    save_checkpoint(FBCNN(in_nc=1, nc=(8, 16, 16, 16), nb=1), tmp_path / "other.pt")
    with pytest.raises(ResultsError, match="other weights"):
        evaluate(tiny_corpus, methods=("fbcnn",), weights={"fbcnn": tmp_path / "other.pt"}, out=out, progress=False)


def test_curves_are_cached_and_reused(tiny_corpus, tmp_path, monkeypatch, jpeg_run):
    first, _ = jpeg_run  # the fixture's run filled CORPUS/.cache/curves
    cache = sorted((tiny_corpus / ".cache" / "curves").glob("*.npz"))
    assert len(cache) == len(read_manifest(tiny_corpus))
    import jpegbench.estimate.api as api

    def no_curves(*a, **k):
        raise AssertionError("curves recomputed although cached")

    monkeypatch.setattr(api, "mse_curves_batch", no_curves)
    again = evaluate(tiny_corpus, methods=("jpeg",), out=tmp_path / "r.parquet", progress=False)
    cols = ["sample_id", "qf_estimated", "qf_estimate_verdict", "qf_estimate_confidence", "psnr"]
    pd.testing.assert_frame_equal(again[cols], first[cols])
    # The paper estimator reads the same cached curves.
    paper = evaluate(tiny_corpus, methods=("jpeg",), out=tmp_path / "p.parquet", progress=False, estimator="paper")
    assert paper["qf_estimated"].between(1, 100).all()
    # A damaged entry is recomputed (here: refused by the patched backend), never trusted.
    cache[0].write_bytes(b"not an npz")
    with pytest.raises(AssertionError, match="recomputed"):
        evaluate(tiny_corpus, methods=("jpeg",), out=tmp_path / "d.parquet", progress=False)
    monkeypatch.undo()
    evaluate(tiny_corpus, methods=("jpeg",), out=tmp_path / "d.parquet", progress=False)
    with pytest.raises(AssertionError, match="recomputed"):
        monkeypatch.setattr(api, "mse_curves_batch", no_curves)
        evaluate(tiny_corpus, methods=("jpeg",), out=tmp_path / "n.parquet", progress=False, cache_curves=False)


def test_curve_cache_is_invalidated_when_the_fast_backend_changes(tiny_corpus, tmp_path, monkeypatch, jpeg_run):
    import jpegbench.estimate.api as api
    import jpegbench.estimate.curves as curves

    def no_curves(*a, **k):
        raise AssertionError("curves recomputed")

    monkeypatch.setattr(api, "mse_curves_batch", no_curves)
    evaluate(tiny_corpus, methods=("jpeg",), out=tmp_path / "same.parquet", progress=False)  # all cached
    monkeypatch.setattr(curves, "FAST_CURVES_REVISION", curves.FAST_CURVES_REVISION + 1)
    with pytest.raises(AssertionError, match="recomputed"):
        evaluate(tiny_corpus, methods=("jpeg",), out=tmp_path / "new.parquet", progress=False)


def test_curve_cache_sweeps_what_killed_runs_left(tiny_corpus, tmp_path, jpeg_run):
    # A run killed while writing a cache entry leaves its temporary file; an old one is
    # swept by the next run, a fresh one (maybe a concurrent run's, live) is left alone.
    import os
    import time

    curves = tiny_corpus / ".cache" / "curves"
    old, fresh = curves / ".abc.npz.k1ll3d00.part", curves / ".def.npz.l1ve0000.part"
    for p in (old, fresh):
        p.write_bytes(b"half")
    stamp = time.time() - 2 * 3600
    os.utime(old, (stamp, stamp))
    evaluate(tiny_corpus, methods=("jpeg",), out=tmp_path / "s.parquet", progress=False)
    assert not old.exists() and fresh.exists()
    assert len(list(curves.glob("*.npz"))) == len(read_manifest(tiny_corpus))
    fresh.unlink()
