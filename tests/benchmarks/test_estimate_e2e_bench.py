"""Benchmark of the whole ``jpegbench estimate`` command against a plain Pillow re-encode loop (issue 15).

Run::

    pytest tests/benchmarks/test_estimate_e2e_bench.py --benchmark-only -s -p no:cacheprovider

Corpus: ``N_IMAGES`` LIVE1 gray images of 768 x 512 (``../shared``), each
degraded by a seeded chain (single JPEGs, aligned and non-aligned double
JPEGs; QFs 30..95; a non-aligned first compression is taken on the image
reflected by 8 pixels and cropped back to 768 x 512 at the shift) and written
as a JPEG file into one folder.

(a) ``test_command_vs_plain_loop``: A = the command as a user runs it (a
    fresh process: start-up included; default thread count; ``--save-curves``
    so that the curves can be compared) on the whole folder, per image;
    B = the plain loop on a third of the images, per image: for each of the
    64 shifts crop, Pillow-encode at each QF 1..100, decode, MSE against the
    crop (the same 64 x 100 curves; checked equal to the command's). One
    warm-up run of the command, then ``PAIRS`` interleaved A/B pairs (each
    pair's B on other images); the median of the per-pair ratios B / A is
    asserted against the issue's goal (>= 20x). Start-up is the command on
    one 64 x 64 image, the median over the pairs. CPU time (all threads,
    from ``getrusage``) is printed beside wall time: it does not depend on
    how many cores other jobs leave free, wall time does (the command gets
    its lead from a second core).
(b) ``test_robust_vs_curves``: in one process, per image: the fast curves on
    one thread and the robust reading of them (its model cache emptied
    first, so every image pays for its own models), interleaved, in CPU
    time (both run on one thread; a loaded machine stretches wall time
    unevenly); the median
    of the per-image ratios robust / curves is printed (goal of the issue: a
    quarter) and held to the bound BENCHMARKS.md states.
"""

from __future__ import annotations

import io
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jpegbench.codec import encode, jpeg_roundtrip, read_image

pytestmark = [pytest.mark.benchmark(group="estimate-e2e"), pytest.mark.shared]

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
N_IMAGES = 9
PAIRS = 3
SEED = 15
COMMAND = "import sys; from jpegbench.cli import main; sys.argv[0] = 'jpegbench'; sys.exit(main())"
ROBUST_BOUND = 0.25  # robust / curves (one thread): the goal, met since the codec model went to C


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    src = SHARED / "data" / "LIVE1_gray"
    if not src.is_dir():
        pytest.skip(f"needs the LIVE1 gray images at {src}")
    images = [read_image(p, color="gray") for p in sorted(src.glob("*.png"))]
    images = [x for x in images if x.shape == (512, 768)][:N_IMAGES]
    assert len(images) == N_IMAGES
    rng = np.random.default_rng(SEED)
    out = tmp_path_factory.mktemp("estimate_e2e")
    for i, x in enumerate(images):
        qf1, qf2 = (int(q) for q in rng.integers(30, 96, size=2))
        kind = i % 3  # single, aligned double, non-aligned double
        if kind == 1:
            x = jpeg_roundtrip(x, qf1)
        elif kind == 2:
            dy, dx = (int(v) for v in rng.integers(1, 8, size=2))
            first = jpeg_roundtrip(np.pad(x, 8, mode="reflect"), qf1)
            x = np.ascontiguousarray(first[dy : dy + 512, dx : dx + 768])
        (out / f"{i:02d}.jpg").write_bytes(encode(x, qf2))
    return out


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _command(args: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (all threads) of one run of the command in a fresh process."""
    c0, t0 = _children_cpu(), time.perf_counter()
    subprocess.run([sys.executable, "-c", COMMAND, "estimate", *args, "--quiet"], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0, _children_cpu() - c0


def _plain_curves(path: Path) -> np.ndarray:
    """The 64 x 100 curves with nothing but Pillow and numpy: crop, encode, decode, MSE."""
    x = np.asarray(Image.open(path).convert("L"))
    h, w = 8 * ((x.shape[0] - 7) // 8), 8 * ((x.shape[1] - 7) // 8)
    mse = np.empty((8, 8, 100))
    for dy in range(8):
        for dx in range(8):
            cy, cx = (8 - dy) % 8, (8 - dx) % 8
            crop = np.ascontiguousarray(x[cy : cy + h, cx : cx + w])
            ref, im = crop.astype(np.float64), Image.fromarray(crop)
            for qf in range(1, 101):
                buf = io.BytesIO()
                im.save(buf, "JPEG", quality=qf)
                rec = np.asarray(Image.open(io.BytesIO(buf.getvalue())))
                mse[dy, dx, qf - 1] = np.mean((rec - ref) ** 2)
    return mse


def test_command_vs_plain_loop(benchmark, folder, tmp_path):
    files = sorted(folder.glob("*.jpg"))
    table = tmp_path / "table.csv"
    tiny = tmp_path / "tiny.png"
    Image.fromarray(np.zeros((64, 64), dtype=np.uint8)).save(tiny)
    args = [str(folder), "--out", str(table), "--save-curves"]
    _command(args)  # warm-up: file cache, bytecode
    subsets = [files[i::PAIRS] for i in range(PAIRS)]
    a_times, b_times, a_cpu, b_cpu, startup = [], [], [], [], []
    for subset in subsets:
        wall, cpu = _command(args)
        a_times.append(wall / len(files))
        a_cpu.append(cpu / len(files))
        t0, c0 = time.perf_counter(), time.process_time()
        plain = {p.name: _plain_curves(p) for p in subset}
        b_times.append((time.perf_counter() - t0) / len(subset))
        b_cpu.append((time.process_time() - c0) / len(subset))
        startup.append(_command([str(tiny)])[0])
        saved = np.load(table.with_suffix(".curves.npz"))
        got = dict(zip((Path(p).name for p in saved["paths"]), saved["mse"]))
        for name, mse in plain.items():  # the command saves float32 curves
            assert np.array_equal(got[name], mse.astype(np.float32)), name
    ratios = [b / a for a, b in zip(a_times, b_times)]
    ratio = statistics.median(ratios)
    cpu_ratio = statistics.median(b / a for a, b in zip(a_cpu, b_cpu))
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    benchmark.extra_info.update(images=len(files), pairs=PAIRS, command_s_per_image=a_times,
                                plain_s_per_image=b_times, ratios=ratios, ratio=ratio, startup_s=startup,
                                command_cpu_s_per_image=a_cpu, plain_cpu_s_per_image=b_cpu, cpu_ratio=cpu_ratio,
                                cpus=os.cpu_count(), load=os.getloadavg())  # fmt: skip
    print(f"\n`jpegbench estimate` on {len(files)} gray 768x512 JPEGs (default threads, {os.cpu_count()} CPUs), "
          f"per image: {', '.join(f'{a:.2f}' for a in a_times)} s (start-up included: "
          f"{statistics.median(startup):.2f} s on one 64x64 image); plain Pillow loop, same 64 x 100 curves: "
          f"{', '.join(f'{b:.1f}' for b in b_times)} s; ratios {', '.join(f'{r:.1f}' for r in ratios)}x, "
          f"median {ratio:.1f}x (goal >= 20x); curves equal. CPU time per image (all threads): command "
          f"{statistics.median(a_cpu):.2f} s, plain loop {statistics.median(b_cpu):.1f} s, ratio {cpu_ratio:.1f}x; "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    assert ratio >= 20


def test_robust_vs_curves(benchmark, folder):
    from jpegbench.estimate import mse_curves, robust_estimate
    from jpegbench.estimate._lattice import _cached_matrix

    images = [read_image(p) for p in sorted(folder.glob("*.jpg"))]
    mse_curves(images[0][:64, :64], num_threads=1)  # warm-up
    t_curves, t_robust = [], []
    for x in images:
        t0 = time.process_time()
        c = mse_curves(x, num_threads=1)
        t_curves.append(time.process_time() - t0)
        _cached_matrix.cache_clear()
        t0 = time.process_time()
        robust_estimate(c)
        t_robust.append(time.process_time() - t0)
    ratios = [r / c for r, c in zip(t_robust, t_curves)]
    ratio = statistics.median(ratios)
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    benchmark.extra_info.update(curves_s=t_curves, robust_s=t_robust, ratios=ratios, ratio=ratio)
    print(f"\nper 768x512 image, one thread, CPU time: curves median {statistics.median(t_curves):.2f} s, robust reading "
          f"median {statistics.median(t_robust):.3f} s (no cached models); robust / curves median {ratio:.2f} "
          f"(issue's goal 0.25; held to <= {ROBUST_BOUND})")  # fmt: skip
    assert ratio <= ROBUST_BOUND
