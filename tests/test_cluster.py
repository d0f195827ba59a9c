"""synth, estimate and evaluate on a Dask cluster (jpegbench._cluster): the same outputs as local runs, kills, bad input.

A module-scoped LocalCluster of 2 single-threaded worker processes on
127.0.0.1 serves the tests that pass its address (as a user passes
``--scheduler tcp://host:port``); one test starts its own through
``--scheduler local``. The worker-kill test runs last: it leaves the
cluster with a restarted worker.
"""

from __future__ import annotations

import json
import logging
import operator
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from jpegbench.cli import main
from jpegbench.errors import ClusterError, InputError

distributed = pytest.importorskip("distributed")

RECIPE = """
name = "dask"
seed = 7
color = "gray"
[source]
path = "src"
[[stages]]
op = "jpeg"
qf = [20, 50]
[[stages]]
op = "shift"
shift = [[0, 0], [3, 5]]
[[stages]]
op = "jpeg"
qf = 30
"""
CORPUS_FILES = ("manifest.parquet", "manifest.csv", "corpus.json", "recipe.toml")


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=":0", silence_logs=logging.ERROR) as c:  # fmt: skip
        yield c


@pytest.fixture
def client(cluster):
    with distributed.Client(cluster, set_as_default=False) as c:
        c.wait_for_workers(2, timeout=60)
        yield c


def _recipe(root: Path, n: int, size: int = 48) -> Path:
    """``n`` gray sources x 4 chains."""
    from jpegbench.codec import write_png

    (root / "src").mkdir(parents=True)
    for i in range(n):
        write_png(root / "src" / f"img{i:03d}.png", synthetic_image(size + 8 * (i % 2), size, seed=i))
    (root / "recipe.toml").write_text(RECIPE)
    return root / "recipe.toml"


def synthetic_image(height: int, width: int, *, color: str = "gray", seed: int = 0) -> np.ndarray:
    """Smooth content with mild noise (module-scoped fixtures cannot take the ``image_factory`` fixture)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    base = 128 + 60 * np.sin(xx / 7.0 + seed) * np.cos(yy / 11.0)
    x = np.stack([base + rng.normal(0, 8, base.shape) + 20 * c for c in range(3 if color == "rgb" else 1)], -1)
    x = np.clip(np.round(x), 0, 255).astype(np.uint8)
    return x[..., 0] if color == "gray" else x


def _tree(d: Path) -> dict[str, bytes]:
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def _assert_same_corpus(a: Path, b: Path) -> None:
    ta, tb = _tree(a), _tree(b)
    assert sorted(ta) == sorted(tb)  # no journal, no temporary file, no lock left on either side
    assert all(ta[k] == tb[k] for k in ta), [k for k in ta if ta[k] != tb[k]][:5]
    assert set(CORPUS_FILES) <= set(ta)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the executor ---------------------------------------------------------------------------------------------


def test_run_tasks_returns_results_in_task_order(client):
    from jpegbench._cluster import run_tasks

    seen = []
    out = run_tasks(client, operator.mul, list(range(40)), 3, on_result=lambda i, r: seen.append(i))
    assert out == [3 * i for i in range(40)]
    assert sorted(seen) == list(range(40))
    assert run_tasks(client, operator.mul, [], 3) == []


def test_run_tasks_raises_the_task_error_as_raised(client):
    from jpegbench._cluster import run_tasks

    with pytest.raises(ZeroDivisionError):
        run_tasks(client, operator.truediv, [1, 2, 3], 0)


def test_worker_cache_builds_once_per_worker_process(client):
    from jpegbench._cluster import run_tasks, worker_cache

    key = ("test", os.getpid(), time.time_ns())
    # Every call of the clock gives a new value: one value per worker process means one build per worker.
    values = run_tasks(client, worker_cache, [key] * 24, time.perf_counter_ns)
    assert 1 <= len(set(values)) <= 2
    built = []
    assert worker_cache(key, lambda: built.append(1) or "x") == worker_cache(key, lambda: "y") == "x"
    assert built == [1]


def test_worker_cache_keeps_the_last_few():
    from jpegbench._cluster import _CACHE_SIZE, worker_cache

    keys = [("evict", i, time.time_ns()) for i in range(_CACHE_SIZE + 1)]
    for k in keys:
        worker_cache(k, lambda k=k: k)
    assert worker_cache(keys[0], lambda: "rebuilt") == "rebuilt"
    assert worker_cache(keys[-1], lambda: "rebuilt") == keys[-1]


# -- synth ------------------------------------------------------------------------------------------------------


def test_synth_on_a_cluster_is_byte_identical_to_one_worker(cluster, tmp_path, capsys):
    recipe = _recipe(tmp_path, 6)
    assert main(["synth", str(recipe), "--out", str(tmp_path / "local"), "--workers", "1", "--quiet"]) == 0
    assert main(["synth", str(recipe), "--out", str(tmp_path / "dask"), "--quiet",
                 "--scheduler", cluster.scheduler_address]) == 0  # fmt: skip
    out = capsys.readouterr().out.splitlines()
    assert out[0].replace("local", "dask") == out[1] and "wrote 24 samples" in out[1]
    _assert_same_corpus(tmp_path / "local", tmp_path / "dask")


def test_synth_on_a_cluster_repairs_a_local_corpus(cluster, tmp_path):
    from jpegbench.synth import synthesize

    recipe = _recipe(tmp_path, 4)
    ref = synthesize(recipe, tmp_path / "ref", progress=False)
    out = tmp_path / "out"
    synthesize(recipe, out, progress=False)
    (out / ref["lq_path"][5]).write_bytes(b"damaged")
    keep = {p: os.stat(out / p).st_mtime_ns for p in ref["lq_path"] if p != ref["lq_path"][5]}
    df = synthesize(recipe, out, progress=False, scheduler=cluster.scheduler_address)
    assert df.equals(ref)
    assert {p: os.stat(out / p).st_mtime_ns for p in keep} == keep  # verified samples are not redone
    _assert_same_corpus(tmp_path / "ref", out)


def test_a_task_error_reaches_the_caller_as_raised(client, tmp_path):
    from jpegbench.errors import CorpusError
    from jpegbench.synth import load_recipe, synthesize

    recipe = load_recipe(_recipe(tmp_path, 2))
    (tmp_path / "src" / "img001.png").write_bytes((tmp_path / "src" / "img000.png").read_bytes())
    with pytest.raises(CorpusError, match="changed since the recipe was loaded"):
        synthesize(recipe, tmp_path / "out", progress=False, scheduler=client)
    assert not (tmp_path / "out" / "manifest.parquet").exists()


def test_a_worker_with_another_encoder_refuses_to_write(tmp_path):
    from jpegbench.errors import CorpusError
    from jpegbench.synth import load_recipe
    from jpegbench.synth._samples import _check_cluster_worker

    recipe = load_recipe(_recipe(tmp_path, 1))
    cfg = {"encoder": {"backend": recipe.backend, "version": recipe.version},
           "encoder_info": dict(recipe.encoder_info), "jpegbench_version": __import__("jpegbench").__version__}
    _check_cluster_worker(cfg)  # same versions: fine
    with pytest.raises(CorpusError, match="same versions on every worker"):
        _check_cluster_worker({**cfg, "encoder_info": {**cfg["encoder_info"], "encoder_version": "0.0-other"}})
    with pytest.raises(CorpusError, match="same versions on every worker"):
        _check_cluster_worker({**cfg, "jpegbench_version": "0.0"})


def _synth_code(recipe: Path, out: Path, scheduler: str) -> list[str]:
    code = ("from jpegbench.synth import synthesize; "
            f"synthesize({str(recipe)!r}, {str(out)!r}, progress=False, scheduler={scheduler!r})")  # fmt: skip
    return [sys.executable, "-c", code]


def _journal_rows(out: Path) -> list[dict]:
    rows = []
    for p in (out / ".rows").glob("*.jsonl"):
        for line in p.read_bytes().splitlines():
            try:  # the kill may cut the last row short: it is redone
                rows.append(json.loads(line)["row"])
            except ValueError:
                pass
    return rows


@pytest.mark.parametrize("resume_on", ["local", "dask"])
def test_client_killed_mid_run_then_next_run_resumes(cluster, client, tmp_path, resume_on):
    from jpegbench.synth import read_manifest, synthesize

    recipe = _recipe(tmp_path, 40, size=64)  # 160 samples: many chunks
    ref = tmp_path / "ref"
    synthesize(recipe, ref, progress=False)
    out = tmp_path / "killed"
    proc = subprocess.Popen(_synth_code(recipe, out, cluster.scheduler_address), start_new_session=True)
    t0 = time.monotonic()
    while not ((out / ".rows").is_dir() and _journal_rows(out)):  # the client journalled a chunk's rows
        if proc.poll() is not None or time.monotonic() - t0 > 120:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"the client ended (rc={proc.returncode}) before its first journal row")
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)  # the client only: the cluster lives on in this process
    proc.wait()
    assert not (out / "manifest.parquet").exists()
    journal = _journal_rows(out)
    assert 0 < len(journal) < 160
    # The dead client's running tasks end on the workers; let them, so that the mtimes below are stable.
    t0 = time.monotonic()
    while any(client.processing().values()) and time.monotonic() - t0 < 60:
        time.sleep(0.05)
    kept = {r["lq_path"]: os.stat(out / r["lq_path"]).st_mtime_ns for r in journal}
    df = synthesize(recipe, out, progress=False, scheduler=None if resume_on == "local" else client)
    assert len(df) == 160
    assert all(os.stat(out / p).st_mtime_ns == t for p, t in kept.items())  # journalled samples are reused
    _assert_same_corpus(ref, out)
    read_manifest(out, verify=True)


# -- estimate ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def estimate_inputs_dir(tmp_path_factory):
    """A small corpus (ground truth joined in) and a folder with two images and an unreadable file."""
    from jpegbench.codec import encode, write_png
    from jpegbench.synth import synthesize

    root = tmp_path_factory.mktemp("estimate")
    recipe = _recipe(root, 1, size=64)
    synthesize(recipe, root / "corpus", progress=False)
    loose = root / "loose"
    loose.mkdir()
    (loose / "a.jpg").write_bytes(encode(synthetic_image(64, 72, color="rgb", seed=3), 40))
    write_png(loose / "b.png", synthetic_image(64, 64, seed=4))
    (loose / "c.png").write_bytes(b"not an image")
    return root


def test_estimate_on_a_cluster_gives_the_local_table(client, estimate_inputs_dir):
    from jpegbench.estimate.batch import estimate_inputs

    inputs = [estimate_inputs_dir / "corpus", estimate_inputs_dir / "loose"]
    local = estimate_inputs(inputs, progress=False, save_curves=True)
    dask = estimate_inputs(inputs, progress=False, save_curves=True, scheduler=client)
    assert len(local.table) == 4 + 2 and len(local.skipped) == 1
    pd.testing.assert_frame_equal(dask.table.drop(columns="seconds"), local.table.drop(columns="seconds"))
    assert dask.skipped == local.skipped
    pd.testing.assert_frame_equal(dask.accuracy, local.accuracy)
    assert list(dask.curves) == list(local.curves)
    for k in local.curves:
        np.testing.assert_array_equal(dask.curves[k], local.curves[k])


def test_estimate_cli_with_a_local_cluster(estimate_inputs_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(estimate_inputs_dir)  # relative inputs: workers read them from the client's folder
    a, b = tmp_path / "local.parquet", tmp_path / "dask.parquet"
    assert main(["estimate", "loose", "--out", str(a), "--quiet"]) == 1  # c.png skipped
    assert main(["estimate", "loose", "--out", str(b), "--quiet", "--scheduler", "local", "--workers", "2"]) == 1
    ta, tb = pd.read_parquet(a), pd.read_parquet(b)
    assert list(ta["path"]) == ["loose/a.jpg", "loose/b.png"]
    pd.testing.assert_frame_equal(tb.drop(columns="seconds"), ta.drop(columns="seconds"))
    err = capsys.readouterr().err
    assert err.count("loose/c.png: not an image file") == 2 and "Traceback" not in err


# -- evaluate ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def eval_setup(tmp_path_factory):
    """A gray corpus (5 sources x 4 chains, 64x64) and tiny random FBCNN and QCN weight files."""
    import torch

    from jpegbench.models import FBCNN, QCN
    from jpegbench.models.weights import save_checkpoint
    from jpegbench.synth import synthesize

    root = tmp_path_factory.mktemp("evaluate")
    synthesize(_recipe(root, 5, size=64), root / "corpus", progress=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        save_checkpoint(FBCNN(in_nc=1, nc=(8, 16, 16, 16), nb=1), root / "fbcnn.pt")
        torch.save(QCN(in_channel=2, out_channel=1, n_feats=8, n_resblocks=2).state_dict(), root / "qcn.pth")
    return root


EVAL_METHODS = ("jpeg", "fbcnn", "fbcnn-d", "qcn", "qcn-d")
TIMING = ["seconds"]


def _evaluate(root: Path, out: Path, **kwargs):
    from jpegbench.evaluate import evaluate

    return evaluate(root / "corpus", methods=EVAL_METHODS, weights={"fbcnn": root / "fbcnn.pt", "qcn": root / "qcn.pth"},
                    device="cpu", out=out, progress=False, **kwargs)  # fmt: skip


def test_evaluate_on_a_cluster_gives_the_local_table(client, eval_setup, tmp_path):
    from jpegbench.evaluate import read_examples, read_results

    cache = eval_setup / "corpus" / ".cache" / "curves"
    dask = _evaluate(eval_setup, tmp_path / "dask.parquet", scheduler=client, save_every=3)
    assert len(list(cache.glob("*.npz"))) == 20  # the workers filled the curve cache, atomically
    assert not list(cache.glob(".*.part"))
    local = _evaluate(eval_setup, tmp_path / "local.parquet", cache_curves=False)  # curves computed afresh here
    assert len(local) == 20 * len(EVAL_METHODS)
    pd.testing.assert_frame_equal(dask.drop(columns=TIMING), local.drop(columns=TIMING))
    pd.testing.assert_frame_equal(read_results(tmp_path / "dask.parquet").drop(columns=TIMING),
                                  local.drop(columns=TIMING))  # fmt: skip
    ex_dask, ex_local = read_examples(tmp_path / "dask.parquet"), read_examples(tmp_path / "local.parquet")
    assert ex_dask["meta"] == ex_local["meta"] and sorted(ex_dask["crops"]) == sorted(ex_local["crops"])
    for k in ex_local["crops"]:
        np.testing.assert_array_equal(ex_dask["crops"][k], ex_local["crops"][k])
    np.testing.assert_array_equal(ex_dask["mse_curves"], ex_local["mse_curves"])
    # Resuming on the cluster adds nothing.
    again = _evaluate(eval_setup, tmp_path / "dask.parquet", scheduler=client)
    pd.testing.assert_frame_equal(again, dask)


def test_evaluate_cli_with_a_local_cluster(eval_setup, tmp_path, capsys):
    out = tmp_path / "r.parquet"
    args = ["evaluate", str(eval_setup / "corpus"), "--methods", "jpeg,fbcnn", "--weights",
            f"fbcnn={eval_setup / 'fbcnn.pt'}", "--device", "cpu", "--quiet", "--no-curve-cache"]  # fmt: skip
    assert main([*args, "--out", str(tmp_path / "local.parquet")]) == 0
    assert main([*args, "--out", str(out), "--scheduler", "local", "--workers", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    half = len(lines) // 2
    assert lines[:half - 1] == lines[half:-1] and lines[-1] == f"wrote 40 rows to {out}"


def _evaluate_code(root: Path, out: Path, scheduler: str) -> list[str]:
    code = ("from jpegbench.evaluate import evaluate; "
            f"evaluate({str(root / 'corpus')!r}, methods=('jpeg', 'fbcnn'), weights={{'fbcnn': {str(root / 'fbcnn.pt')!r}}}, "
            f"device='cpu', out={str(out)!r}, progress=False, save_every=1, cache_curves=False, "
            f"scheduler={scheduler!r})")  # fmt: skip
    return [sys.executable, "-c", code]


def test_evaluate_client_killed_mid_run_then_next_run_resumes(cluster, client, eval_setup, tmp_path):
    from jpegbench.evaluate import evaluate, read_results

    kwargs = {"methods": ("jpeg", "fbcnn"), "weights": {"fbcnn": eval_setup / "fbcnn.pt"}, "device": "cpu",
              "progress": False, "cache_curves": False}  # fmt: skip
    reference = evaluate(eval_setup / "corpus", out=tmp_path / "ref.parquet", **kwargs)
    out = tmp_path / "killed.parquet"
    proc = subprocess.Popen(_evaluate_code(eval_setup, out, cluster.scheduler_address), start_new_session=True)
    t0 = time.monotonic()
    while not out.exists():  # the client saved its first rows
        if proc.poll() is not None or time.monotonic() - t0 > 120:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"the client ended (rc={proc.returncode}) before its first save")
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = read_results(out)
    assert 0 < len(partial) < len(reference)
    final = evaluate(eval_setup / "corpus", out=out, scheduler=client, **kwargs)
    pd.testing.assert_frame_equal(final.drop(columns=TIMING), reference.drop(columns=TIMING))
    kept = final.merge(partial[["sample_id", "method", "seconds"]], on=["sample_id", "method"], suffixes=("", "_old"))
    assert len(kept) == len(partial) and (kept["seconds"] == kept["seconds_old"]).all()  # kept rows are not redone
    assert not list(tmp_path.glob(".*.part"))


def test_evaluate_workers_without_local_scheduler_is_refused(eval_setup):
    from jpegbench.evaluate import evaluate

    with pytest.raises(InputError, match="workers"):
        evaluate(eval_setup / "corpus", workers=2, progress=False)


# -- bad input --------------------------------------------------------------------------------------------------


def _one_error_line(err: str) -> str:
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "internal error" not in lines[0] and "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("command", ["synth", "estimate", "evaluate"])
def test_unreachable_scheduler_fails_within_the_timeout_and_writes_nothing(tmp_path, monkeypatch, capsys, command):
    recipe = _recipe(tmp_path, 2)
    if command == "evaluate":
        from jpegbench.synth import synthesize

        synthesize(recipe, tmp_path / "corpus", progress=False)
    monkeypatch.setenv("JPEGBENCH_SCHEDULER_TIMEOUT", "1.5")
    address = f"tcp://127.0.0.1:{_free_port()}"  # nobody listens there
    out = tmp_path / ("corpus" if command == "synth" else "table.parquet")
    args = {"synth": [str(recipe)], "estimate": [str(tmp_path / "src")], "evaluate": [str(tmp_path / "corpus")]}[command]
    before = _tree(tmp_path)
    t0 = time.monotonic()
    code = main([command, *args, "--out", str(out), "--quiet", "--scheduler", address])
    elapsed = time.monotonic() - t0
    assert code == 2
    line = _one_error_line(capsys.readouterr().err)
    assert f"cannot reach the Dask scheduler at {address} within 1.5 s" in line
    assert elapsed < 1.5 + 5  # the timeout, plus the recipe's hashing and imports on a busy machine
    assert _tree(tmp_path) == before and not out.exists()


def test_a_scheduler_without_workers_is_refused(tmp_path, monkeypatch):
    from jpegbench.synth import synthesize

    recipe = _recipe(tmp_path, 1)
    monkeypatch.setenv("JPEGBENCH_SCHEDULER_TIMEOUT", "1")
    with distributed.LocalCluster(n_workers=0, processes=False, protocol="tcp", host="127.0.0.1",
                                  dashboard_address=":0", silence_logs=logging.ERROR) as empty:  # fmt: skip
        with pytest.raises(ClusterError, match="has no worker .* start some with `dask worker"):
            synthesize(recipe, tmp_path / "out", progress=False, scheduler=empty.scheduler_address)
    assert not (tmp_path / "out").exists()


def test_connecting_from_a_running_event_loop(client, cluster):
    import asyncio

    from jpegbench._cluster import cluster_client

    async def inside() -> int:  # as in a notebook, whose cells run inside an event loop
        with cluster_client(cluster.scheduler_address) as c:
            return len(c.nthreads())

    assert asyncio.run(inside()) == 2


@pytest.mark.parametrize("command", ["synth", "estimate", "evaluate"])
def test_local_scheduler_with_zero_workers_is_refused(tmp_path, capsys, command):
    recipe = _recipe(tmp_path, 2)
    args = {"synth": [str(recipe), "--out", str(tmp_path / "c")], "estimate": [str(tmp_path / "src")],
            "evaluate": [str(tmp_path / "src"), "--out", str(tmp_path / "c" / "r.parquet")]}[command]
    assert main([command, *args, "--scheduler", "local", "--workers", "0"]) == 2
    assert "--workers" in _one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "c").exists()


def test_scheduler_argument_checks(monkeypatch):
    from jpegbench._cluster import check_scheduler, connect_timeout

    with pytest.raises(InputError, match="--workers >= 1"):
        check_scheduler("local", 0)
    for bad in ("", 8786, None):
        with pytest.raises(InputError, match="scheduler must be"):
            check_scheduler(bad, 1)
    with pytest.raises(InputError, match="not a Dask scheduler address"):
        from jpegbench._cluster import cluster_client

        with cluster_client("http://127.0.0.1:80"):
            pass
    monkeypatch.setenv("JPEGBENCH_SCHEDULER_TIMEOUT", "soon")
    with pytest.raises(InputError, match="JPEGBENCH_SCHEDULER_TIMEOUT"):
        connect_timeout()
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if the extra were not installed
    with pytest.raises(ClusterError, match=r"jpegbench\[dask\]"):
        check_scheduler("tcp://127.0.0.1:8786", 1)


def test_estimate_workers_without_local_scheduler_is_refused(tmp_path):
    from jpegbench.estimate.batch import estimate_inputs

    with pytest.raises(InputError, match="workers"):
        estimate_inputs([tmp_path], workers=2)


# -- a worker killed mid-run (last: it leaves the module's cluster with a restarted worker) ------------------------


def test_worker_killed_mid_synth_run_completes_identical(cluster, client, tmp_path):
    from jpegbench.synth import synthesize

    recipe = _recipe(tmp_path, 40, size=64)
    synthesize(recipe, tmp_path / "ref", progress=False)
    out = tmp_path / "dask"
    result: dict = {}

    def run() -> None:
        try:
            result["df"] = synthesize(recipe, out, progress=False, scheduler=cluster.scheduler_address)
        except BaseException as exc:  # reported by the assertion below
            result["error"] = exc

    pids = client.run(os.getpid)
    thread = threading.Thread(target=run)
    thread.start()
    victim = None
    t0 = time.monotonic()
    while victim is None:  # a worker in the middle of a chunk: files written, its task not finished
        busy = [w for w, keys in client.processing().items() if keys and w in pids]
        if busy and (out / "lq").is_dir() and len(os.listdir(out / "lq")) >= 8:
            victim = busy[0]
        elif not thread.is_alive() or time.monotonic() - t0 > 120:
            pytest.fail(f"the run ended before a worker could be killed: {result}")
        else:
            time.sleep(0.005)
    lost = len(client.processing()[victim])
    os.kill(pids[victim], signal.SIGKILL)
    thread.join(timeout=300)
    assert not thread.is_alive() and "error" not in result, result
    assert lost >= 1 and len(result["df"]) == 160
    _assert_same_corpus(tmp_path / "ref", out)
    client.wait_for_workers(2, timeout=60)  # the nanny restarted it
    assert pids[victim] not in client.run(os.getpid).values()
