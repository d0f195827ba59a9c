"""The report's figure list: the DCT double-quantization map of a splice, drawn from the corpus or kept with a note."""

from __future__ import annotations

import numpy as np
import pytest
from evaluate.conftest import write_corpus  # the evaluation tests' tiny-corpus builder (tests/ is on sys.path)

from jpegbench.evaluate import software_versions, write_results
from jpegbench.report import build_report
from jpegbench.report.figure_set import _dq_tile, _splice_example, make_figures

from .conftest import make_image, make_results


@pytest.fixture(scope="module")
def corpus_results(tmp_path_factory):
    """A one-image corpus (136x136 source: hq images 132x132 after the shift) and results naming its samples."""
    from jpegbench.synth import read_manifest

    corpus = write_corpus(tmp_path_factory.mktemp("dqcorpus"), n_images=1, size=136)
    ids = list(read_manifest(corpus)["sample_id"])
    df = make_results()
    # The results' first double samples become the corpus's, so that the figures find them there.
    firsts = [s for s in df.loc[df["qf2"] >= 0, "sample_id"].unique()][: len(ids)]
    df["sample_id"] = df["sample_id"].replace(dict(zip(firsts, ids)))
    return corpus, df


def _by_name(figures):
    return {f.name: f for f in figures}


def test_dq_map_is_drawn_after_the_mse_curves_from_the_corpus(corpus_results, tmp_path):
    corpus, df = corpus_results
    figures = make_figures(df, [tmp_path / "results.parquet"], corpus, tmp_path / "figures")
    names = [f.name for f in figures]
    assert names.index("dq_map") == names.index("mse_curves") + 1
    dq = _by_name(figures)["dq_map"]
    assert dq.note == "" and dq.png is not None and dq.png.startswith(b"\x89PNG")
    assert (tmp_path / "figures" / "dq_map.png").is_file() and (tmp_path / "figures" / "dq_map.svg").is_file()
    assert "QF1 90" in dq.caption and "QF2 75" in dq.caption and "jpegbench estimate --dct" in dq.caption
    assert "notebooks/03_dq_localisation.ipynb" in dq.caption


def test_dq_map_without_a_corpus_is_kept_with_a_note(corpus_results, tmp_path):
    _, df = corpus_results
    for corpus in (None, tmp_path / "no-corpus"):
        dq = _by_name(make_figures(df, [tmp_path / "results.parquet"], corpus, tmp_path / "figures"))["dq_map"]
        assert dq.png is None and "corpus" in dq.note and "not available" in dq.note
    assert not (tmp_path / "figures" / "dq_map.png").exists()


def test_dq_map_of_a_too_small_image_is_kept_with_a_note(tmp_path):
    # The tiny corpus's 72x72 images give fewer than 4x4 tiles: skipped, saying why.
    from jpegbench.synth import read_manifest

    corpus = write_corpus(tmp_path, n_images=1, size=72)
    df = make_results()
    df.loc[df["sample_id"] == "s0000", "sample_id"] = read_manifest(corpus)["sample_id"].iloc[0]
    dq = _by_name(make_figures(df, [tmp_path / "r.parquet"], corpus, tmp_path / "figures"))["dq_map"]
    assert dq.png is None and "at least 128x128" in dq.note and "68x68" in dq.note


def test_report_shows_the_dq_map(corpus_results, tmp_path):
    corpus, df = corpus_results
    meta = {"corpus": str(corpus), "manifest_sha256": "0" * 64, "recipe": "", "recipe_sha256": "",
            "estimator": "robust", "metric_conventions": "psnr: test", "versions": software_versions(),
            "device": "cpu", "weights": {}}
    res = write_results(df, tmp_path / "results.parquet", meta)
    html = build_report(res, tmp_path / "out").read_text(encoding="utf-8")
    start = html.index('<figure id="fig-dq-map">')
    assert 'src="data:image/png;base64,' in html[start : html.index("</figure>", start)]
    md = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert "![Localising a splice: the DCT double-quantization map](figures/dq_map.png)" in md


def test_splice_is_deterministic_and_aligned_to_the_tiles():
    from jpegbench.codec import decode, encode

    x = make_image(136, 200)
    tile = _dq_tile(x.shape)
    assert tile == 4 and _dq_tile((256, 512)) == 8
    data, rect = _splice_example(x, tile)
    assert _splice_example(x, tile) == (data, rect)
    y0, x0, h, w = rect
    assert (y0, x0, h, w) == (32, 64, 64, 96)  # about a third of each side, centred on 32-pixel tiles
    # Gray JPEG blocks are coded independently: inside the (8-aligned) rectangle the file is x saved once at
    # QF 75, outside it went through QF 90 first.
    out, once = decode(data), decode(encode(x, 75))
    inside = (slice(y0, y0 + h), slice(x0, x0 + w))
    assert np.array_equal(out[inside], once[inside])
    assert not np.array_equal(out[:y0], once[:y0])


def test_dq_map_is_lower_inside_the_pasted_rectangle():
    # The fixture images are too small and flat for a per-tile reading at QF1 90 > QF2 75 (inside and outside
    # both near 0.5); scikit-image's camera at 512x512 is not. Measured with Pillow's libjpeg-turbo: mean 0.13
    # over the 3x3 pasted tiles, 0.71 over the 55 others (qf_first given, as in the report).
    from skimage import data as skdata

    from jpegbench.estimate import dq_map
    from jpegbench.report.figure_set import _SPLICE_QF1

    x = skdata.camera()[:512, :512]
    tile = _dq_tile(x.shape)
    data, (y0, x0, h, w) = _splice_example(x, tile)
    m = dq_map(data, tile=tile, qf_first=_SPLICE_QF1)
    step = 8 * tile
    inside = np.zeros(m.shape, bool)
    inside[y0 // step : (y0 + h) // step, x0 // step : (x0 + w) // step] = True
    assert inside.sum() == 9
    assert m[inside].mean() + 0.15 < m[~inside].mean()
