"""Benchmarks of synth, estimate and evaluate on Dask (pytest-benchmark; skipped by default).

Run::

    pytest tests/benchmarks/test_cluster_bench.py --benchmark-only -s

Methodology: one run measures every executor on the same inputs: the local
executor (``synthesize(workers=N)``: a process pool; ``estimate_inputs`` and
``evaluate``: this process) and a LocalCluster of 1 and of 2 single-threaded worker processes
on 127.0.0.1 (started, connected and warmed up once, outside the timings, as
a long-lived cluster would be). Sources: LIVE1 gray from ``../shared`` when
present, else synthetic 512x512 images; fixed seeds. One warm-up run of each
executor, then ``ROUNDS`` (``$JPEGBENCH_BENCH_ROUNDS``, default 3) rounds that
run the executors back to back in turn (a fresh output folder every time),
and the median time of each, so that load drifting on a shared machine hits
every side alike. Printed and stored in ``extra_info``:

* throughput (images/s) of each executor and the ratio Dask / local at 1 and
  2 workers (on 2 cores expect about parity, not a speed-up: the cluster
  adds no cores, only scheduling);
* the overhead per task: (Dask 1 worker - local 1 worker) / tasks, and the
  bare round trip of an empty task through :func:`jpegbench._cluster.run_tasks`.

The asserted goal is that parity, loosely: Dask with 2 workers keeps at least
``PARITY`` of the local executor's throughput (a busy machine can fail it:
run it idle).
"""

from __future__ import annotations

import logging
import operator
import os
import shutil
import statistics
import time
from pathlib import Path

import numpy as np
import pytest

from jpegbench.codec import read_image, write_png
from jpegbench.synth import load_recipe, synthesize

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.benchmark(group="cluster")

ROUNDS = int(os.environ.get("JPEGBENCH_BENCH_ROUNDS", "3"))
PARITY = 0.75
SHARED = Path(__file__).resolve().parents[2].parent / "shared"

RECIPE = """
name = "bench-dask"
seed = 0
color = "gray"
[source]
path = "{src}"
limit = {n}
[[stages]]
op = "jpeg"
qf = [10, 30, 50]
[[stages]]
op = "shift"
shift = [4, 4]
[[stages]]
op = "jpeg"
qf = [10, 30, 50]
"""


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> Path:
    live1 = SHARED / "data" / "LIVE1_gray"
    if live1.is_dir():
        return live1
    d = tmp_path_factory.mktemp("bench_src")
    rng = np.random.default_rng(0)
    for i in range(12):
        base = np.cumsum(np.cumsum(rng.normal(0, 1, (512, 512)), 0), 1)
        base = (base - base.min()) / (np.ptp(base) + 1e-9) * 255
        write_png(d / f"s{i:02d}.png", np.clip(base + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8))
    return d


@pytest.fixture(scope="module")
def clients():
    """{1: client of a 1-worker LocalCluster, 2: of a 2-worker one}, warmed up (jpegbench imported on workers)."""
    from jpegbench._cluster import run_tasks

    out = {}
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, host="127.0.0.1", dashboard_address=":0",
                                  silence_logs=logging.ERROR) as c1, \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=":0",
                                     silence_logs=logging.ERROR) as c2, \
            distributed.Client(c1, set_as_default=False) as a, \
            distributed.Client(c2, set_as_default=False) as b:  # fmt: skip
        for n, client in ((1, a), (2, b)):
            client.wait_for_workers(n, timeout=120)
            run_tasks(client, operator.mul, list(range(8)), 1)
            out[n] = client
        yield out


def _rounds(fns: dict[str, callable], root: Path) -> dict[str, float]:
    """Median seconds of each ``fn(out_dir)`` over ROUNDS rounds that run them in turn, after one warm-up each."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for r in range(ROUNDS + 1):
        for name, fn in fns.items():
            out = root / f"{name}-{r}"
            t0 = time.perf_counter()
            fn(out)
            elapsed = time.perf_counter() - t0
            shutil.rmtree(out, ignore_errors=True)
            if r:  # round 0 warms up
                times[name].append(elapsed)
    return {k: statistics.median(v) for k, v in times.items()}


def _task_round_trip(client, n: int = 200) -> float:
    """Seconds per empty task through run_tasks (submit, schedule, run, gather), on a warm cluster."""
    from jpegbench._cluster import run_tasks

    run_tasks(client, operator.mul, list(range(20)), 1)
    t0 = time.perf_counter()
    run_tasks(client, operator.mul, list(range(n)), 1)
    return (time.perf_counter() - t0) / n


def test_synth_on_dask_against_local(benchmark, sources, clients, tmp_path):
    from jpegbench.synth.corpus import _chunks

    p = tmp_path / "bench.toml"
    p.write_text(RECIPE.format(src=sources.as_posix(), n=8))
    recipe = load_recipe(p)
    n = len(recipe.samples())
    t = _rounds({
        "local1": lambda out: synthesize(recipe, out, workers=1, progress=False),
        "dask1": lambda out: synthesize(recipe, out, progress=False, scheduler=clients[1]),
        "local2": lambda out: synthesize(recipe, out, workers=2, progress=False),
        "dask2": lambda out: synthesize(recipe, out, progress=False, scheduler=clients[2]),
    }, tmp_path)  # fmt: skip
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)  # the timings above are the result
    tasks1 = len(_chunks(recipe.samples(), 1))
    per_task = (t["dask1"] - t["local1"]) / tasks1
    trip = _task_round_trip(clients[2])
    ratio1, ratio2 = t["local1"] / t["dask1"], t["local2"] / t["dask2"]
    benchmark.extra_info.update(samples=n, rounds=ROUNDS, seconds=t, dask_over_local_1=ratio1,
                                dask_over_local_2=ratio2, tasks_1_worker=tasks1, overhead_per_task_s=per_task,
                                empty_task_round_trip_s=trip)  # fmt: skip
    print(
        f"\nsynth on Dask: {n} samples; img/s local 1 worker {n / t['local1']:.1f}, Dask 1 worker "
        f"{n / t['dask1']:.1f} (x{ratio1:.2f}); local 2 workers {n / t['local2']:.1f}, Dask 2 workers "
        f"{n / t['dask2']:.1f} (x{ratio2:.2f}); overhead per task {1e3 * per_task:+.1f} ms over {tasks1} tasks, "
        f"empty-task round trip {1e3 * trip:.2f} ms (median of {ROUNDS} rounds)"
    )
    assert ratio2 >= PARITY, f"Dask with 2 workers: x{ratio2:.2f} of the local pool's throughput (goal >= {PARITY})"


def test_estimate_on_dask_against_local(benchmark, sources, clients, tmp_path):
    from jpegbench.estimate.batch import estimate_inputs

    # 8 images of 256x256 (centre crops): the curves, not the reading, are the work.
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for p in sorted(sources.glob("*.png"))[:8]:
        x = read_image(p, color="gray")
        h, w = x.shape
        write_png(imgs / p.name, x[(h - 256) // 2 : (h + 256) // 2, (w - 256) // 2 : (w + 256) // 2])
    n = 8
    t = _rounds({
        "local": lambda out: estimate_inputs([imgs], progress=False),
        "dask1": lambda out: estimate_inputs([imgs], progress=False, scheduler=clients[1]),
        "dask2": lambda out: estimate_inputs([imgs], progress=False, scheduler=clients[2]),
    }, tmp_path)  # fmt: skip
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    import torch

    threads = torch.get_num_threads()
    ratio1, ratio2 = t["local"] / t["dask1"], t["local"] / t["dask2"]
    benchmark.extra_info.update(images=n, rounds=ROUNDS, seconds=t, local_threads=threads,
                                dask1_over_local=ratio1, dask2_over_local=ratio2)  # fmt: skip
    print(
        f"\nestimate on Dask: {n} images of 256x256; img/s local (one process, {threads} kernel threads) "
        f"{n / t['local']:.2f}, Dask 1 worker (1 thread) {n / t['dask1']:.2f} (x{ratio1:.2f}), Dask 2 workers "
        f"{n / t['dask2']:.2f} (x{ratio2:.2f}) (median of {ROUNDS} rounds)"
    )
    assert ratio2 >= PARITY, f"Dask with 2 workers gives x{ratio2:.2f} of the local run's throughput (goal >= {PARITY})"


def test_evaluate_on_dask_against_local(benchmark, sources, clients, tmp_path):
    from jpegbench.evaluate import evaluate

    # 3 sources cropped to 256x256 x 9 double-JPEG chains; jpeg, fbcnn, fbcnn-d with the shipped small model;
    # no curve cache, so that every run computes the curves (the bulk of the work) as a first evaluation does.
    src = tmp_path / "src"
    src.mkdir()
    for p in sorted(sources.glob("*.png"))[:3]:
        x = read_image(p, color="gray")
        h, w = x.shape
        write_png(src / p.name, x[(h - 256) // 2 : (h + 256) // 2, (w - 256) // 2 : (w + 256) // 2])
    recipe = tmp_path / "bench.toml"
    recipe.write_text(RECIPE.format(src=src.as_posix(), n=3))
    corpus = tmp_path / "corpus"
    synthesize(load_recipe(recipe), corpus, progress=False)
    n = len(list((corpus / "lq").glob("*.jpg")))
    kw = {"methods": ("jpeg", "fbcnn", "fbcnn-d"), "device": "cpu", "progress": False, "cache_curves": False}

    def run(out, scheduler=None):
        return evaluate(corpus, out=out / "results.parquet", scheduler=scheduler, **kw)

    t = _rounds({
        "local": run,
        "dask1": lambda out: run(out, clients[1]),
        "dask2": lambda out: run(out, clients[2]),
    }, tmp_path)  # fmt: skip
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    ratio1, ratio2 = t["local"] / t["dask1"], t["local"] / t["dask2"]
    benchmark.extra_info.update(samples=n, rounds=ROUNDS, seconds=t, dask1_over_local=ratio1,
                                dask2_over_local=ratio2)  # fmt: skip
    print(
        f"\nevaluate on Dask: {n} samples of 256x256, jpeg + fbcnn + fbcnn-d; samples/s local (one process) "
        f"{n / t['local']:.2f}, Dask 1 worker {n / t['dask1']:.2f} (x{ratio1:.2f}), Dask 2 workers "
        f"{n / t['dask2']:.2f} (x{ratio2:.2f}) (median of {ROUNDS} rounds)"
    )
    assert ratio2 >= PARITY, f"Dask with 2 workers gives x{ratio2:.2f} of the local run's throughput (goal >= {PARITY})"
