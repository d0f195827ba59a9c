"""Where a real process matters: two concurrent runs, and the console script's exit status and stderr."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from jpegbench.codec import read_image
from jpegbench.errors import LockError
from jpegbench.models import AUTO_TILE_PIXELS, restore_files
from jpegbench._lock import DirLock

from .cases import SMALL_LIMIT
from .conftest import part_files


def run_cli(*args: object, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jpegbench.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=env)


def test_second_synth_process_on_a_locked_corpus_fails_clearly(tmp_path, good_files, recipe):
    """tests/synth checks the library (LockError); here a second *process* gets one line and exit 2."""
    src = good_files(2)[0].parent
    out = tmp_path / "corpus"
    out.mkdir()
    with DirLock(out):  # held by this live process, as by a first `jpegbench synth`
        r = run_cli("synth", recipe(src), "--out", out, "--quiet")
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "in use by another jpegbench run" in lines[0]
    assert sorted(p.name for p in out.iterdir()) == []  # nothing written, the lock released by its owner
    assert not part_files(tmp_path)


def test_second_evaluate_process_on_a_locked_results_file_fails_clearly(tmp_path, corpus, results):
    """Two evaluate runs on one --out: the second gets one line and exit 2; the first one's files are untouched."""
    from jpegbench.evaluate import evaluate, examples_path

    before = {p: p.read_bytes() for p in (results, examples_path(results))}
    lock = DirLock.for_file(results)
    with lock:  # held by this live process, as by a first `jpegbench evaluate` on the same file
        assert lock.path == tmp_path / ".results.parquet.lock"
        # --no-resume would delete the sidecar and overwrite the table: refused before it does either.
        r = run_cli("evaluate", corpus, "--out", results, "--quiet", "--device", "cpu", "--no-resume")
        assert r.returncode == 2, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
        assert f"{results} is in use by another jpegbench run (pid/host {os.getpid()} " in lines[0]
        with pytest.raises(LockError, match="in use by another jpegbench run"):  # the library alike
            evaluate(corpus, out=results, progress=False, resume=False)
    assert {p: p.read_bytes() for p in before} == before
    assert not lock.path.exists() and not part_files(tmp_path)
    assert len(evaluate(corpus, out=results, progress=False)) == 2  # free again: it runs
    assert not lock.path.exists()


def test_console_batch_exit_status_and_no_traceback(tmp_path, good_files):
    (good,) = good_files(1)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xdb\x00")  # SOI, then a DQT cut short
    out = tmp_path / "out"
    r = run_cli("restore", good, bad, "--method", "jpeg", "--out", out, "--quiet")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.splitlines() == ["skipped 1 input(s):", f"  {bad}: truncated JPEG (marker 0xFFDB at byte 2)"]
    assert (out / "good0.png").is_file() and not (out / "bad.png").exists()


# -- resource limits ---------------------------------------------------------------------------------------


def test_restore_honours_the_pixel_limit_with_a_model(tmp_path, cli, good_files, tiny_weights, monkeypatch):
    """The limit is checked before the model sees the image (JPEGBENCH_MAX_PIXELS, every command)."""
    monkeypatch.setenv("JPEGBENCH_MAX_PIXELS", str(SMALL_LIMIT))
    (good,) = good_files(1)
    r = cli("restore", good, "--method", "fbcnn", "--weights", tiny_weights, "--out", tmp_path / "out",
            "--quiet", "--device", "cpu")
    r.assert_skipped({str(good): f"1920 pixels is over the limit of {SMALL_LIMIT}"})
    assert not (tmp_path / "out" / "good0.png").exists()


def test_restore_files_max_pixels_argument_overrides_the_environment(tmp_path, good_files, monkeypatch):
    monkeypatch.setenv("JPEGBENCH_MAX_PIXELS", "10")
    (good,) = good_files(1)
    run = restore_files([good], tmp_path / "out", method="jpeg", max_pixels=2000, progress=False)
    assert run.skipped == [] and len(run.table) == 1
    run = restore_files([good], tmp_path / "out2", method="jpeg", max_pixels=1000, progress=False)
    assert len(run.skipped) == 1 and "over the limit of 1000" in run.skipped[0][1]


def test_invalid_pixel_limit_is_one_line(tmp_path, cli, good_files, monkeypatch):
    monkeypatch.setenv("JPEGBENCH_MAX_PIXELS", "lots")
    r = cli("restore", good_files(1)[0], "--method", "jpeg", "--out", tmp_path / "out", "--quiet")
    r.assert_error("JPEGBENCH_MAX_PIXELS must be an integer")


def test_restore_tiles_large_images(tmp_path, good_files, tiny_weights, monkeypatch):
    """Above AUTO_TILE_PIXELS restore switches to 512-pixel tiles (lowered here so the image stays tiny)."""
    import jpegbench.models.files as files

    used = []  # the tile setting of each runner restore_files calls
    real = files.get_method

    def spy(name, **kw):
        method = real(name, **kw)
        return lambda pixels, qf=None: (used.append(kw.get("tile")), method(pixels, qf=qf))[1]

    monkeypatch.setattr(files, "AUTO_TILE_PIXELS", 1000)
    monkeypatch.setattr(files, "get_method", spy)
    (good,) = good_files(1)
    run = restore_files([good], tmp_path / "out", method="fbcnn", weights=tiny_weights, device="cpu",
                        progress=False)
    assert used == [512] and len(run.table) == 1
    assert AUTO_TILE_PIXELS == 2048 * 2048
    assert read_image(tmp_path / "out" / "good0.png").shape == (40, 48)
    assert np.isfinite(run.table["qf_used"]).all()
