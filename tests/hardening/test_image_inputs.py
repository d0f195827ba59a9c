"""Every bad image of cases.IMAGE_CASES through every command that reads image files.

Contract: the documented conversion happens, or a one-line refusal (``error:``
exit 2 for single-input commands; a skip line and exit 1 for batches); never
a traceback, never a ``*.part`` or half-written output.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from jpegbench.codec import read_image, rgb_to_y
from jpegbench.synth import read_manifest

from .cases import IMAGE_CASES, MIN_SIZE_MESSAGES, ImageCase
from .conftest import part_files

CASES = [pytest.param(c, id=c.id) for c in IMAGE_CASES]

# What inspect reports for the inputs it describes rather than refuses.
INSPECT_FIELDS = {
    "progressive": {"mode": "progressive", "progressive": True},
    "cmyk": {"color": "cmyk", "components": 4},
    "ycck": {"color": "ycck", "components": 4},
    "precision-12": {"precision": 12},
    "arithmetic-sof9": {"coding": "arithmetic", "mode": "extended"},
    "lossless-sof3": {"mode": "lossless"},
    "huge-dimensions": {"width": 65535, "height": 65535},
    "exif-rotated": {"orientation": 6, "width": 48, "height": 40},
    "image-7x7": {"width": 7, "height": 7},
}


def _build(case: ImageCase, folder, monkeypatch):
    folder.mkdir(parents=True, exist_ok=True)
    path, expected = case.make(folder)
    for k, v in case.env.items():
        monkeypatch.setenv(k, v)
    return path, expected


@pytest.mark.parametrize("case", CASES)
def test_inspect(case, tmp_path, monkeypatch, cli):
    path, _ = _build(case, tmp_path / "in", monkeypatch)
    r = cli("inspect", path, "--json")
    if case.inspect.ok:
        assert r.code == 0, r.err
        rec = json.loads(r.out)[0]
        for key, value in INSPECT_FIELDS.get(case.id, {}).items():
            assert rec[key] == value, (key, rec[key])
    else:
        r.assert_error(case.inspect.error)
        assert r.out == ""


def _restore_expectation(case: ImageCase) -> str | None:
    if case.min_size_sensitive:
        return MIN_SIZE_MESSAGES["restore"]
    return case.restore_error or case.decode.error


@pytest.mark.parametrize("case", CASES)
def test_restore(case, tmp_path, monkeypatch, cli, good_files):
    (good,) = good_files(1)
    path, expected = _build(case, tmp_path / "in", monkeypatch)
    out = tmp_path / "out"
    r = cli("restore", good, path, "--method", "jpeg", "--out", out, "--quiet")
    error = _restore_expectation(case)
    skipped = {str(path): error} if error else {}
    if case.id == "over-pixel-limit":  # the limit applies to the good image too
        skipped[str(good)] = error
    if skipped:
        r.assert_skipped(skipped)
    else:
        assert r.code == 0, r.err
        np.testing.assert_array_equal(read_image(out / f"{path.stem}.png"), expected)
    # The rest of the batch is processed; nothing of a skipped input is written.
    written = {Path(p).stem + ".png" for p in (str(good), str(path)) if p not in skipped}
    assert {p.name for p in out.iterdir()} == written | {"restore.csv"}
    assert not part_files(tmp_path)


@pytest.mark.parametrize("case", CASES)
def test_synth_source(case, tmp_path, monkeypatch, cli, recipe):
    # synth validates every source before writing anything: a corpus never silently lacks an image.
    path, expected = _build(case, tmp_path / "in", monkeypatch)
    out = tmp_path / "corpus"
    r = cli("synth", recipe(), "--source", path, "--out", out, "--quiet")
    error = MIN_SIZE_MESSAGES["synth"] if case.min_size_sensitive else case.decode.error
    if error is None:
        assert r.code == 0, r.err
        (hq_path,) = read_manifest(out)["hq_path"]
        hq = read_image(out / hq_path)
        gray = rgb_to_y(expected) if expected.ndim == 3 else expected
        np.testing.assert_array_equal(hq, gray[:8, :8])
    else:
        line = r.assert_error(error)
        assert ("recipe key 'stages[0].size'" if case.min_size_sensitive else "recipe key 'source.path'") in line
        assert not out.exists()
    assert not part_files(tmp_path)


TRAIN_CASES = [pytest.param(c, id=c.id) for c in IMAGE_CASES
               if (not c.decode.ok or c.min_size_sensitive) and c.id != "fifo"]  # train_dir skips non-files


@pytest.mark.parametrize("case", TRAIN_CASES)
def test_train_dir(case, tmp_path, monkeypatch, cli, good_files, train_config):
    good_files(3, "train")
    path, _ = _build(case, tmp_path / "train", monkeypatch)
    path.rename(path.with_name("a-" + path.name))  # sorted first: a training (not validation) image
    out = tmp_path / "run"
    r = cli("train", train_config(tmp_path / "train"), "--out", out, "--quiet", "--device", "cpu")
    r.assert_error(MIN_SIZE_MESSAGES["train"] if case.min_size_sensitive else case.decode.error)
    assert not out.exists() or not any(out.iterdir())
    assert not part_files(tmp_path)


def _estimate_file_expectation(case: ImageCase) -> str | None:
    """estimate_file reads JPEG files (its tables are half the answer): the header's refusals, then decoding's."""
    refusals = [o.error for o in (case.inspect, case.decode) if not o.ok]
    if refusals:
        return "|".join(f"({e})" for e in refusals)
    return MIN_SIZE_MESSAGES["estimate"] if case.min_size_sensitive else None


@pytest.mark.parametrize("case", CASES)
def test_estimate_file(case, tmp_path, monkeypatch):
    from jpegbench.errors import JpegbenchError
    from jpegbench.estimate import estimate_file

    path, _ = _build(case, tmp_path / "in", monkeypatch)
    error = _estimate_file_expectation(case)
    if error is None:
        assert 1 <= estimate_file(path).qf_dominant <= 100
    else:
        with pytest.raises(JpegbenchError, match=error):
            estimate_file(path)


@pytest.mark.parametrize("case", CASES)
def test_estimate(case, tmp_path, monkeypatch, cli):
    from jpegbench.codec import encode

    good = tmp_path / "good.jpg"
    good.write_bytes(encode(np.full((32, 32), 128, np.uint8), 75))
    path, _ = _build(case, tmp_path / "in", monkeypatch)
    r = cli("estimate", good, path, "--quiet")
    # The command estimates any image from its pixels (tables QF only for JPEG): decoding's outcomes.
    error = MIN_SIZE_MESSAGES["estimate"] if case.min_size_sensitive else case.decode.error
    if case.id == "over-pixel-limit":
        error = None  # the good 32x32 image is over a 1000-pixel limit too
        r.assert_skipped({str(good): case.decode.error, str(path): case.decode.error})
    elif error is None:
        assert r.code == 0, r.err
    else:
        r.assert_skipped({str(path): error})
        assert str(good) in r.out
    assert not part_files(tmp_path)


def test_every_refused_image_in_one_restore_batch(tmp_path, cli, good_files):
    """One batch of every refused input and two good ones: the good ones are restored, the rest listed."""
    good = good_files(2)
    skipped = {}
    inputs = list(good)
    for case in IMAGE_CASES:
        if case.env:
            continue
        path, _ = case.make(_fresh(tmp_path / "in" / case.id))
        error = _restore_expectation(case)
        if error is not None:
            skipped[str(path)] = error
        inputs.append(path)
    out = tmp_path / "out"
    for skip_bad in (False, True):
        r = cli("restore", *inputs, "--method", "jpeg", "--out", out, "--quiet", *(["--skip-bad"] if skip_bad else []))
        r.assert_skipped(skipped, skip_bad=skip_bad)
        assert (out / "good0.png").is_file() and (out / "good1.png").is_file()
        assert len(r.out.strip().splitlines()) == len(inputs) - len(skipped) + 1  # one line per image + summary
    assert not part_files(tmp_path)


def _fresh(folder):
    folder.mkdir(parents=True)
    return folder


def test_every_refused_image_in_one_inspect_batch(tmp_path, cli, good_files):
    from jpegbench.codec import encode

    good = tmp_path / "good.jpg"
    good.write_bytes(encode(np.full((16, 16), 128, np.uint8), 75))
    inputs, skipped = [good], {}
    for case in IMAGE_CASES:
        path, _ = case.make(_fresh(tmp_path / "in" / case.id))
        inputs.append(path)
        if not case.inspect.ok:
            skipped[str(path)] = case.inspect.error
    r = cli("inspect", *inputs, "--no-tables")
    r.assert_skipped(skipped)
    assert f"{good}: 16x16 gray" in r.out
    assert cli("inspect", *inputs, "--skip-bad").code == 0
