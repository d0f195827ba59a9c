"""``evaluate`` and ``train`` killed with SIGKILL, then run again: the same outputs as an uninterrupted run.

The pattern of tests/synth/test_corpus.py: the command runs as a real
subprocess in its own session, is killed (SIGKILL, no cleanup handler runs)
once it has written a partial output, and the same command line is run again.

What "the same" means is each command's resume contract:

* ``evaluate`` (:mod:`jpegbench.evaluate.runner`, "Resuming"): the results
  table equals an uninterrupted run's except the runtime column
  (``seconds``); the run metadata and the example-crops sidecar are equal.
* ``train`` (:mod:`jpegbench.models.training`, "Determinism"), gray and colour FBCNN and a gray
  QGCN (the table-guided networks' data path, :mod:`jpegbench.models.training.guided`): on the CPU the
  resumed weights equal an uninterrupted run's, bit for bit, and so does the
  log (``seconds`` aside). The periodic checkpoints here fall in the middle
  of log windows (``checkpoint_every`` 3, ``log_every`` 2): ``last.pt``
  keeps the running sums of its window, so the first row after the resume
  is the mean over the whole window, as in the uninterrupted run.

A kill during an atomic write leaves a temporary ``.NAME.XXXXXXXX.part``
file; the last tests check that the next ``evaluate`` or ``train`` on the
same output deletes those of its own files (and only those).
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from .cases import base_gray

RUNTIME_COLUMNS = ["seconds"]


def _env() -> dict[str, str]:
    # One thread, as in this process (conftest): the same float results, and light on a shared box.
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _cli(*args: object) -> list[str]:
    return [sys.executable, "-m", "jpegbench.cli", *map(str, args)]


def _run(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run(_cli(*args), capture_output=True, text=True, timeout=300, env=_env())


def _start_then_kill(argv: list, cond, what: str, log: Path, timeout: float = 120.0) -> None:
    """Start the CLI in its own session and SIGKILL its process group as soon as ``cond()`` holds."""
    with log.open("w") as err:  # a file, not a pipe: a full pipe nobody reads would stall the run
        proc = subprocess.Popen(_cli(*argv), stdout=subprocess.DEVNULL, stderr=err, start_new_session=True,
                                env=_env())
        t0 = time.monotonic()
        while not cond():
            if proc.poll() is not None:
                pytest.fail(f"the subprocess ended (rc={proc.returncode}) before {what}; stderr:\n{log.read_text()}")
            if time.monotonic() - t0 > timeout:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                pytest.fail(f"no {what} within {timeout:.0f} s")
            time.sleep(0.005)
        os.killpg(proc.pid, signal.SIGKILL)  # the run and anything it started, like a killed job
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, f"the subprocess ended by itself (rc={proc.returncode})"


# -- evaluate ------------------------------------------------------------------------------------------------

KILL_RECIPE = """\
name = "kill-resume"
seed = 1
color = "gray"
[source]
path = "{source}"
[[stages]]
op = "crop"
size = [32, 32]
[[stages]]
op = "jpeg"
qf = [10, 20, 30, 40, 50, 60, 70, 80]
"""


@pytest.fixture(scope="module")
def kill_corpus(tmp_path_factory) -> Path:
    """8 sources x 8 QFs = 64 samples of 32x32: several of evaluate's 16-sample saves."""
    from jpegbench.codec import write_png
    from jpegbench.synth import load_recipe, synthesize

    root = tmp_path_factory.mktemp("kill-corpus")
    src = root / "src"
    src.mkdir()
    for i in range(8):
        write_png(src / f"img{i}.png", base_gray(seed=i + 1))
    (root / "recipe.toml").write_text(KILL_RECIPE.format(source=src))
    corpus = root / "corpus"
    synthesize(load_recipe(root / "recipe.toml"), corpus, progress=False)
    return corpus


def test_evaluate_sigkill_then_rerun_equals_uninterrupted(kill_corpus, tiny_weights, tmp_path):
    from jpegbench.evaluate import evaluate, read_examples, read_results

    args = ["--methods", "jpeg,fbcnn", "--weights", f"fbcnn={tiny_weights}", "--device", "cpu", "--quiet"]
    ref_path = tmp_path / "ref" / "results.parquet"
    ref_path.parent.mkdir()
    evaluate(kill_corpus, methods=["jpeg", "fbcnn"], weights={"fbcnn": tiny_weights}, device="cpu",
             out=ref_path, progress=False)
    ref = read_results(ref_path)
    assert len(ref) == 2 * 64

    out = tmp_path / "killed" / "results.parquet"
    out.parent.mkdir()
    cmd = ["evaluate", kill_corpus, "--out", out, *args]
    _start_then_kill(cmd, lambda: out.is_file(), "the first save of the results file", tmp_path / "killed.log")
    partial = read_results(out)
    assert 0 < len(partial) < len(ref), "the kill did not interrupt the run"
    pd.testing.assert_frame_equal(partial.drop(columns=RUNTIME_COLUMNS),
                                  ref.iloc[: len(partial)].drop(columns=RUNTIME_COLUMNS))

    r = _run(*cmd)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert f"wrote {len(ref)} rows to {out}" in r.stdout
    final = read_results(out)
    pd.testing.assert_frame_equal(final.drop(columns=RUNTIME_COLUMNS), ref.drop(columns=RUNTIME_COLUMNS))
    # Resumed, not redone: the rows saved before the kill are kept as they were (their timings too).
    pd.testing.assert_frame_equal(final.iloc[: len(partial)], partial)
    assert final.attrs["jpegbench"] == ref.attrs["jpegbench"]
    a, b = read_examples(out), read_examples(ref_path)
    assert a["meta"] == b["meta"] and a["crops"].keys() == b["crops"].keys()
    for k in a["crops"]:
        np.testing.assert_array_equal(a["crops"][k], b["crops"][k])
    np.testing.assert_array_equal(a["mse_curves"], b["mse_curves"])


# -- train ---------------------------------------------------------------------------------------------------

KILL_TRAIN_CONFIG = """\
name = "kill-resume"
[model]
nc = [8, 16, 16, 16]
nb = 1
[data]
train_dir = "{train_dir}"
val_count = 1
patch_size = 16
batch_size = 2
[optim]
steps = 24
lr = 1e-3
milestones = [16]
qf_teacher_prob = 0.5
[train]
log_every = 2
val_every = 12
checkpoint_every = 3
num_threads = 1
[val]
val_qfs = [20]
val_crop = 0
"""


# Colour: an FBCNN-A-like recipe (RGB, 4:2:0 JPEGs in YCbCr, half double JPEGs with random shifts,
# a double-JPEG validation cell), so the resume contract covers every colour code path.
KILL_TRAIN_CONFIG_RGB = (
    KILL_TRAIN_CONFIG.replace("[model]\n", "[model]\nchannels = 3\n")
    .replace("batch_size = 2\n", 'batch_size = 2\ndegradation = "mixed"\nshift = "random"\nsubsampling = "4:2:0"\n')
    .replace("val_qfs = [20]\n", "val_qfs = [20]\nval_double = [[10, 30]]\n")
)


# QGCN (n_feats is fixed at 64 by its global branch; two residual blocks): single JPEGs whose
# network inputs are read from each patch's JPEG bytes, no QF head, so no teacher forcing.
KILL_TRAIN_CONFIG_QGCN = (
    KILL_TRAIN_CONFIG.replace("nc = [8, 16, 16, 16]\nnb = 1\n", 'arch = "qgcn"\nn_resblocks = 2\n')
    .replace("qf_teacher_prob = 0.5\n", "")
)


def _read_log(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _state(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def _assert_same_tensors(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("color", ["gray", "rgb", "qgcn-gray"])
def test_train_sigkill_then_rerun_equals_uninterrupted(good_files, tmp_path, color):
    from jpegbench.models.training import train

    good_files(5, "train", color="rgb" if color == "rgb" else "gray")
    config = tmp_path / "train.toml"
    text = {"gray": KILL_TRAIN_CONFIG, "rgb": KILL_TRAIN_CONFIG_RGB, "qgcn-gray": KILL_TRAIN_CONFIG_QGCN}[color]
    config.write_text(text.format(train_dir=tmp_path / "train"))
    ref_dir = tmp_path / "ref"
    summary = train(config, ref_dir, progress=False, device="cpu")
    assert summary["step"] == 24
    ref_state = _state(ref_dir / "last.pt")
    if color == "qgcn-gray":
        assert ref_state["format"] == "jpegbench-guided" and ref_state["config"]["in_glo_channel"] == 1
    else:
        assert ref_state["config"]["in_nc"] == (1 if color == "gray" else 3)

    out = tmp_path / "killed"
    cmd = ["train", config, "--out", out, "--device", "cpu", "--quiet"]
    _start_then_kill(cmd, lambda: (out / "last.pt").is_file(), "the first checkpoint", tmp_path / "killed.log")
    killed_at = _state(out / "last.pt")["training"]["step"]
    assert 3 <= killed_at < 24, "the kill did not interrupt the run"
    assert (out / ".lock").is_file()  # left by the killed run, whose lock the kernel released: the rerun locks it again
    kept = [row for row in _read_log(out / "log.csv") if int(row["step"]) <= killed_at]

    r = _run(*cmd)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert not (out / ".lock").exists()

    last, ref_last = _state(out / "last.pt"), _state(ref_dir / "last.pt")
    assert last["training"]["step"] == ref_last["training"]["step"] == 24
    _assert_same_tensors(last["state_dict"], ref_last["state_dict"])
    _assert_same_tensors(_state(out / "best.pt")["state_dict"], _state(ref_dir / "best.pt")["state_dict"])
    # Adam's moments too: a further resume (more steps) would continue identically.
    opt, ref_opt = last["training"]["optimizer"]["state"], ref_last["training"]["optimizer"]["state"]
    assert opt.keys() == ref_opt.keys()
    for k in opt:
        _assert_same_tensors(opt[k], ref_opt[k])
    assert last["training"]["best_val_psnr"] == ref_last["training"]["best_val_psnr"]

    strip = lambda rows: [{k: v for k, v in row.items() if k != "seconds"} for row in rows]  # noqa: E731
    log, ref_log = _read_log(out / "log.csv"), _read_log(ref_dir / "log.csv")
    assert [int(row["step"]) for row in log] == list(range(2, 25, 2))
    assert strip(log) == strip(ref_log)
    assert log[: len(kept)] == kept  # resumed from the checkpoint, not started over: the old rows, timings too


# -- temporary files a kill leaves -----------------------------------------------------------------------------

# What ``tempfile.mkstemp(prefix=".NAME.", suffix=".part")`` makes, as a SIGKILL during an atomic write leaves it.
STALE = "{}.k1ll3d_x.part"


def test_evaluate_deletes_the_temporary_files_of_a_killed_run(corpus, results):
    from jpegbench.evaluate import evaluate, examples_path

    stale = [results.parent / STALE.format("." + p.name) for p in (results, examples_path(results))]
    other = results.parent / STALE.format(".other.parquet")  # not this results file's: kept
    for p in [*stale, other]:
        p.write_bytes(b"half a file")
    evaluate(corpus, out=results, progress=False)
    assert not any(p.exists() for p in stale)
    assert other.exists()


def test_train_deletes_the_temporary_files_of_a_killed_run(good_files, train_config, tmp_path):
    from jpegbench.models.training import train

    good_files(3, "train")
    out = tmp_path / "run"
    out.mkdir()
    stale = [out / STALE.format("." + name) for name in ("last.pt", "best.pt", "log.csv", "curves.png")]
    other = out / STALE.format(".notes.txt")  # not a file train writes: kept
    for p in [*stale, other]:
        p.write_bytes(b"half a file")
    train(train_config(tmp_path / "train"), out, progress=False, device="cpu")
    assert not any(p.exists() for p in stale)
    assert other.exists()
