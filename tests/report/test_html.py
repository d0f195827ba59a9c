"""The HTML/Markdown report: sections, embedded figures, refusal of foreign files, a headless browser."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from jpegbench.errors import InputError, ResultsError
from jpegbench.evaluate import examples_path, flexibility_path, read_results, software_versions, write_results
from jpegbench.report import SECTIONS, build_report

FIGURES = ("qf-heatmap", "psnr-gain", "mse-curves", "flexibility", "crop-strip")


def _meta(**kw):
    meta = {"corpus": "/data/corpus", "manifest_sha256": "0" * 64, "recipe": 'name = "x"\n', "recipe_sha256": "1" * 64,
            "estimator": "robust", "metric_conventions": "psnr: test", "versions": software_versions(),
            "device": "cpu", "weights": {"fbcnn": {"weights": "fbcnn_small_gray.pt", "weights_sha256": "abcdef012345",
                                                   "weights_shipped": True}}}
    meta.update(kw)
    return meta


def _sidecars(results_path: Path, rng) -> None:
    crop = lambda: rng.integers(0, 256, (32, 32), dtype=np.uint8)  # noqa: E731
    meta = {"sample_id": "s0012", "qf1": 10, "qf2": 30, "shift": [4, 4], "box": [0, 0, 32, 32], "dominant_qf": 10,
            "psnr": {"jpeg": 27.0, "fbcnn": 28.0}, "qf_used": {"jpeg": None, "fbcnn": 29.0}}
    np.savez(examples_path(results_path), meta=np.array(json.dumps(meta)), crop_jpeg_input=crop(), crop_hq=crop(),
             crop_jpeg=crop(), crop_fbcnn=crop(), mse_curves=rng.random((8, 8, 100)), mse_qfs=np.arange(1, 101))
    flex = pd.DataFrame([dict(sample_id="s0012", qf1=10, qf2=30, dominant_qf=10, qf_predicted=29.0, qf=q,
                              psnr=30 - abs(q - 12) / 10, ssim=0.9, psnrb=29.0) for q in range(5, 60, 5)])
    flex.to_csv(flexibility_path(results_path), index=False)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A report built once for the module from a synthetic results file with both sidecars."""
    from .conftest import make_results

    root = tmp_path_factory.mktemp("report")
    res = write_results(make_results(), root / "results.parquet", _meta())
    _sidecars(res, np.random.default_rng(0))
    return build_report(res, root / "out")


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.imgs = [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "img":
            self.imgs.append(a.get("src", ""))


def test_report_files(built):
    out = built.parent
    assert built.name == "report.html"
    assert (out / "report.md").is_file()
    # Tables 3 and 1 come one per metric, always (readable with many methods).
    assert not (out / "tables" / "table3.csv").exists() and not (out / "tables" / "single_jpeg.csv").exists()
    per_metric = [f"{t}_{k}" for t in ("table3", "single_jpeg") for k in ("psnr", "ssim", "psnrb")]
    for name in (*per_metric, "qf_prediction", "estimator_accuracy"):
        for suffix in (".csv", ".md", ".tex"):
            assert (out / "tables" / f"{name}{suffix}").is_file()
    for name in ("qf_heatmap", "psnr_gain", "mse_curves", "flexibility", "crop_strip"):
        assert (out / "figures" / f"{name}.png").is_file() and (out / "figures" / f"{name}.svg").is_file()


def test_html_sections_and_embedded_figures(built):
    text = built.read_text(encoding="utf-8")
    p = _Collect()
    p.feed(text)
    for sid in SECTIONS:
        assert sid in p.ids
    for fid in FIGURES:
        assert f"fig-{fid}" in p.ids
    assert len(p.imgs) == len(FIGURES)
    assert all(src.startswith("data:image/png;base64,") for src in p.imgs)
    # Self-contained: nothing fetched from elsewhere.
    assert not re.search(r'(src|href)="(https?:|//|file:)', text)
    assert "<link" not in text and "<script" not in text


def test_html_states_conventions_weights_and_psnrb_note(built):
    raw = built.read_text(encoding="utf-8")
    text = html.unescape(raw)  # the text a reader sees, whichever entity spells a quote
    assert "NOT the FBCNN authors' released checkpoints" in text
    assert "fbcnn_small_gray.pt" in text and "abcdef012345" in text
    assert "0.2-0.5 dB less than the paper prints" in text
    assert "psnr: test" in text and "libjpeg-turbo" in text
    assert '<pre>name = "x"\n</pre>' in text  # the recipe
    assert 'name = "x"' not in raw  # ... escaped in the file
    for k in ("numpy", "torch", "pillow", "jpeglib"):
        assert f"<dt>{k}</dt>" in text


def test_html_escapes_what_the_results_record_and_markdown_keeps_it(tmp_path, results):
    # Corpus paths and recipes come from files: in the HTML they are text, never markup.
    evil = "/c/<script>alert(1)</script>&x"
    res = write_results(results, tmp_path / "r.parquet", _meta(corpus=evil, recipe="a = '</pre><b>'\n"))
    out = build_report(res, tmp_path / "out")
    raw = out.read_text(encoding="utf-8")
    assert "<script" not in raw and "</pre><b>" not in raw and "<b>" not in raw
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&amp;x" in raw
    md = (out.parent / "report.md").read_text(encoding="utf-8")
    assert evil in md and "a = '</pre><b>'" in md


def test_markdown_mirrors_html(built):
    md = (built.parent / "report.md").read_text(encoding="utf-8")
    for heading in ("## Summary", "## Conventions", "## Table 3", "## QF prediction", "## Estimator accuracy",
                    "## Figures", "## Provenance"):
        assert heading in md
    assert "![Predicted QF over the (QF1, QF2) grid](figures/qf_heatmap.png)" in md
    assert "## Table 3: non-aligned double JPEG, SSIM" in md and "## Single JPEG, gray (Table 1), PSNR-B" in md
    assert "| QF_1 > QF_2 | (30,10) | 2 | 26.00 | 27.49 | −1.49 |" in md  # n, jpeg, jpeg paper, jpeg Δ (PSNR)
    assert "## Real-world JPEGs" in md and "--real DIR" in md


def test_report_without_sidecars_skips_with_a_note(tmp_path, results):
    res = write_results(results[results["method"] == "jpeg"], tmp_path / "r.parquet", _meta(weights={}))
    html = build_report(res, tmp_path / "out").read_text(encoding="utf-8")
    assert html.count("Figure skipped") == 5  # gain, MSE curves, DQ map (both need the corpus), flexibility, crop strip
    dq = html[html.index('<figure id="fig-dq-map">') :]
    assert dq.index("Figure skipped: the splice is made from a clean image of the corpus") < dq.index("</figure>")
    assert "No model was run" in html
    assert "NOT the FBCNN authors" not in html


def test_report_of_two_results_files(tmp_path, results):
    single = results[results["qf2"] < 0]
    double = results[results["qf2"] >= 0]
    a = write_results(single, tmp_path / "single.parquet", _meta(corpus="/c/single"))
    b = write_results(double, tmp_path / "double.parquet", _meta(corpus="/c/double"))
    html = build_report([b, a], tmp_path / "out").read_text(encoding="utf-8")
    assert "/c/single" in html and "/c/double" in html
    assert 'id="tbl-single_jpeg_psnr"' in html and 'id="tbl-table3_ssim"' in html
    with pytest.raises(ResultsError, match="appears twice"):
        build_report([a, a], tmp_path / "out2")


def test_foreign_parquet_is_refused(tmp_path):
    p = tmp_path / "foreign.parquet"
    pd.DataFrame({"a": [1, 2]}).to_parquet(p)
    with pytest.raises(ResultsError, match="not a jpegbench results file") as e:
        build_report(p, tmp_path / "out")
    assert "\n" not in str(e.value)
    assert not (tmp_path / "out").exists()


def test_not_parquet_and_missing_files_are_refused(tmp_path):
    bad = tmp_path / "results.parquet"
    bad.write_text("hello")
    with pytest.raises(ResultsError, match="not a Parquet"):
        read_results(bad)
    with pytest.raises(ResultsError, match="no such"):
        build_report(tmp_path / "missing.parquet", tmp_path / "out")
    with pytest.raises(InputError):
        build_report([], tmp_path / "out")


def test_roundtrip_keeps_metadata(tmp_path, results):
    p = write_results(results, tmp_path / "r.parquet", _meta())
    back = read_results(p)
    assert back.attrs["jpegbench"]["format"] == "jpegbench-results"
    assert back.attrs["jpegbench"]["recipe"] == 'name = "x"\n'
    pd.testing.assert_series_equal(back["psnr"], results["psnr"].reset_index(drop=True), check_names=False)


# -- a real browser ----------------------------------------------------------------

CHROMIUM = next((p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if Path(p).exists()), None)


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (/usr/bin/chromium)")
def test_report_renders_in_headless_chromium(built, tmp_path):
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
           "--dump-dom", built.resolve().as_uri()]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    p = _Collect()
    p.feed(r.stdout)
    for sid in SECTIONS:
        assert sid in p.ids, f"section {sid} missing from the rendered DOM"
    for fid in FIGURES:
        assert f"fig-{fid}" in p.ids
    assert len(p.imgs) == len(FIGURES) and all(s.startswith("data:image/png;base64,") for s in p.imgs)
    shutil.rmtree(tmp_path / "profile", ignore_errors=True)


def test_summary_does_not_read_the_finding_into_a_constant_predictor(tmp_path, results):
    informative = write_results(results, tmp_path / "a.parquet", _meta())
    md = (build_report(informative, tmp_path / "a").parent / "report.md").read_text(encoding="utf-8")
    assert "fbcnn's predicted QF is nearer QF2" in md
    flat = results.copy()
    flat.loc[flat["method"] != "jpeg", "qf_predicted"] = 49.9  # a collapsed QF head
    constant = write_results(flat, tmp_path / "b.parquet", _meta())
    md = (build_report(constant, tmp_path / "b").parent / "report.md").read_text(encoding="utf-8")
    assert "nearer QF2" not in md
    assert "fbcnn's QF prediction does not follow the compression: it stays within 49.9-49.9" in md


def test_corpus_paths_are_shown_relative_to_the_report(tmp_path):
    # A committed report must not show the machine it was made on (e.g. /work/main/...).
    from .conftest import make_results

    corpus = tmp_path / "project" / "corpus"
    res = write_results(make_results(), tmp_path / "project" / "results.parquet", _meta(corpus=str(corpus)))
    html = build_report(res, tmp_path / "project" / "report").read_text()
    summary = html[html.index('id="summary"') : html.index("</section>", html.index('id="summary"'))]
    assert "from corpus ../corpus," in summary and str(tmp_path) not in summary
    assert "<p>Corpus ../corpus:</p>" in html
    assert str(corpus) in html  # the provenance table keeps the recorded absolute path
