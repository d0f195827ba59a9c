"""The end-to-end pipeline (the embedded demo): its sources, its refusal without shipped weights, and (slow) a whole run."""

from __future__ import annotations

import numpy as np
import pytest

from jpegbench.codec import read_image
from jpegbench.errors import WeightsError
from jpegbench.evaluate import read_results
from jpegbench.pipeline import DEMO_IMAGES, DEMO_SIZE, demo_sources, run_demo


def test_demo_sources(tmp_path):
    paths = demo_sources(tmp_path)
    assert [p.stem for p in paths] == list(DEMO_IMAGES)
    first = [p.read_bytes() for p in paths]
    for p in paths:
        img = read_image(p)
        assert img.dtype == np.uint8 and img.shape == (DEMO_SIZE, DEMO_SIZE)
        assert img.std() > 20  # a photograph, not a flat crop
    assert [p.read_bytes() for p in demo_sources(tmp_path)] == first  # deterministic


def test_demo_without_shipped_weights_fails_before_any_work(tmp_path, monkeypatch):
    import jpegbench.models.weights as w

    monkeypatch.setattr(w, "shipped_weights_dir", lambda: tmp_path / "no-weights")
    with pytest.raises(WeightsError, match="shipped"):
        run_demo(tmp_path / "demo", progress=False)
    assert not (tmp_path / "demo").exists()


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    report = run_demo(tmp_path / "demo", device="cpu", progress=False)
    assert report == tmp_path / "demo" / "report" / "report.html"
    html = report.read_text(encoding="utf-8")
    assert html.count('src="data:image/png;base64,') == 6  # every figure, none skipped (the DQ map: 128x128)
    double = read_results(tmp_path / "demo" / "results" / "double.parquet")
    assert set(double["method"]) == {"jpeg", "fbcnn", "fbcnn-d", "fbcnn-a"}
    assert double["weights_shipped"][double["method"] != "jpeg"].all()
    # Resuming: a second run recomputes nothing and gives the same tables.
    before = (tmp_path / "demo" / "report" / "tables" / "table3_psnr.csv").read_text()
    run_demo(tmp_path / "demo", device="cpu", progress=False)
    assert (tmp_path / "demo" / "report" / "tables" / "table3_psnr.csv").read_text() == before


def test_demo_starts_an_evaluation_over_when_its_results_are_of_other_weights(tmp_path, monkeypatch):
    """After an upgrade of the shipped weights, `jpegbench demo` into the same folder must not stop."""
    import importlib

    from jpegbench.errors import ResultsError
    from jpegbench.evaluate import flexibility_path

    ev = importlib.import_module("jpegbench.evaluate.runner")

    calls = []

    def fake_evaluate(corpus, *, out, resume=True, **kw):
        calls.append((out.name, resume))
        if resume:
            raise ResultsError(f"{out}: method 'fbcnn' was run with other weights")
        raise RuntimeError("stop here")  # the restart happened; the rest of the demo is not under test

    monkeypatch.setattr(ev, "evaluate", fake_evaluate)
    stale = flexibility_path(tmp_path / "demo" / "results" / "double.parquet")
    stale.parent.mkdir(parents=True)
    stale.write_text("old weights")
    with pytest.raises(RuntimeError, match="stop here"):
        run_demo(tmp_path / "demo", progress=False)
    assert calls == [("double.parquet", True), ("double.parquet", False)]
    assert not stale.exists()  # the flexibility sidecar of the old weights went with them
