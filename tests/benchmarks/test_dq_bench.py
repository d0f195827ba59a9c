"""Benchmark of the DCT double-quantization detector on LIVE1 (never used by its calibration, which saw BSDS500 only).

Skipped by default (``--benchmark-skip`` in pyproject); run with::

    pytest tests/benchmarks/test_dq_bench.py --benchmark-only -s -p no:cacheprovider

Methodology: fixed seed; per cell, ``JPEGBENCH_DQ_BENCH_N`` (default 20)
LIVE1 images drawn without replacement, alternately the gray set
(``LIVE1_gray``, one-component JPEG) and the colour set (``LIVE1_color``,
RGB 4:2:0, the detector reads the luma), full size (about 768 x 512), Pillow
encoder (libjpeg-turbo, IJG tables).

(a) Aligned doubles ``JPEG(QF1) -> JPEG(QF2)`` with QF1 = QF2 + 10 and
    QF2 + 20 (QF1 <= 100), QF2 in 60..90, and single JPEGs at each QF2 on
    the same images: detection rate, ``qf_first`` within 5, false alarms.
    Targets (issue 19), asserted over the cells with QF1 >= QF2 + 10,
    QF2 in 60..90 pooled: detected >= 90 %, qf_first within 5 >= 75 %;
    false alarms <= 5 % over all singles. The cells with QF1 = 100 ((100,
    80) and (100, 90)) are measured and printed but not in the asserted
    pool: every step of the QF 100 table is 1, so the first compression
    quantized nothing and leaves no lattice to find (the module's stated
    limit; the pool with them is printed too). Per-cell numbers are
    printed as they are.
(b) Non-aligned doubles with QF1 > QF2 (QF1 = QF2 + 10, a random non-zero
    shift): the non-aligned scan's detection and correct-shift rates,
    reported as they are (no target: the second quantization's noise
    covers the first grid's finer lattice).
(c) Combination with the curves (robust estimator, fast backend) on a
    smaller set (``JPEGBENCH_DQ_COMBO_N``, default 8 images per case,
    centre crops 256 x 320): singles and curve-visible doubles (QF1 < QF2,
    aligned and not). Asserted: no file whose curve verdict was right gets
    a wrong combined verdict, beyond the detector's false-alarm budget (5 %).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from jpegbench.codec import decode, encode, read_image
from jpegbench.estimate import detect_double_quantization, estimate_file

pytestmark = [pytest.mark.benchmark(group="dq"), pytest.mark.shared]

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
N = int(os.environ.get("JPEGBENCH_DQ_BENCH_N", "20"))
COMBO_N = int(os.environ.get("JPEGBENCH_DQ_COMBO_N", "8"))
SEED = 1919
QF2S = (60, 65, 70, 75, 80, 85, 90)
GAPS = (10, 20)


@pytest.fixture(scope="module")
def live1() -> list[tuple[str, np.ndarray]]:
    gray, colour = SHARED / "data" / "LIVE1_gray", SHARED / "data" / "LIVE1_color"
    if not gray.is_dir() or not colour.is_dir():
        pytest.skip(f"needs LIVE1 at {gray} and {colour}")
    g = [(f"gray/{p.stem}", read_image(p, color="gray")) for p in sorted(gray.glob("*.png"))]
    c = [(f"color/{p.stem}", read_image(p)) for p in sorted(colour.glob("*.png"))]
    return [x for pair in zip(g, c) for x in pair]  # gray, colour, gray, ...


def _pick(live1, rng, n):
    idx = rng.choice(len(live1), size=min(n, len(live1)), replace=False)
    return [live1[i] for i in idx]


def _out_dir() -> Path:
    d = Path(os.environ.get("JPEGBENCH_BENCH_OUT", ".benchmarks"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def test_dq_grid(benchmark, live1):
    rng = np.random.default_rng(SEED)
    rows = []

    def run():
        for qf2 in QF2S:
            images = _pick(live1, rng, N)
            for name, x in images:
                r = detect_double_quantization(encode(x, qf2), nonaligned=False)
                rows.append(dict(kind="single", qf1=-1, qf2=qf2, image=name, detected=r.detected, qf_first=-1,
                                 shift_ok=True))  # fmt: skip
            for gap in GAPS:
                qf1 = qf2 + gap
                if qf1 > 100:
                    continue
                for name, x in images:
                    r = detect_double_quantization(encode(decode(encode(x, qf1)), qf2), nonaligned=False)
                    rows.append(dict(kind="aligned", qf1=qf1, qf2=qf2, image=name, detected=r.detected,
                                     qf_first=r.qf_first or -1, shift_ok=True))  # fmt: skip
            qf1 = qf2 + 10
            for name, x in images[: max(1, N // 2)]:
                dy, dx = (int(v) for v in rng.integers(1, 8, size=2))
                first = decode(encode(x, qf1))[dy:, dx:]
                r = detect_double_quantization(encode(np.ascontiguousarray(first), qf2))
                rows.append(dict(kind="nonaligned", qf1=qf1, qf2=qf2, image=name,
                                 detected=r.verdict == "nonaligned-double", qf_first=r.qf_first or -1,
                                 shift_ok=r.shift == (dy, dx)))  # fmt: skip

    benchmark.pedantic(run, rounds=1, iterations=1)
    df = pd.DataFrame(rows)
    df["qf1_within_5"] = df["detected"] & ((df["qf_first"] - df["qf1"]).abs() <= 5)
    table = df.groupby(["kind", "qf1", "qf2"]).agg(
        n=("detected", "size"), detected=("detected", "mean"), qf1_within_5=("qf1_within_5", "mean"),
        shift_correct=("shift_ok", "mean"))  # fmt: skip
    table[["detected", "qf1_within_5", "shift_correct"]] *= 100
    out = _out_dir()
    df.to_csv(out / "dq_rows.csv", index=False)
    (out / "dq_table.md").write_text(table.round(1).to_markdown() if _has_tabulate() else table.round(1).to_string())
    print(f"\nDCT double-quantization detector on LIVE1 (gray and colour alternately, {N} images per cell)\n")
    print(table.round(1).to_string())
    singles = df[df.kind == "single"]
    every = df[df.kind == "aligned"]
    aligned = every[every.qf1 < 100]  # QF 100's steps are all 1: nothing was quantized the first time
    summary = {"false_alarms": 100 * singles.detected.mean(), "aligned_detected": 100 * aligned.detected.mean(),
               "aligned_qf1_within_5": 100 * aligned.qf1_within_5.mean(),
               "aligned_detected_incl_qf1_100": 100 * every.detected.mean()}  # fmt: skip
    print("\npooled (%):", {k: round(v, 1) for k, v in summary.items()})
    benchmark.extra_info.update(n=N, seed=SEED, **summary)
    assert summary["false_alarms"] <= 5
    assert summary["aligned_detected"] >= 90
    assert summary["aligned_qf1_within_5"] >= 75


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


def test_combination_keeps_correct_curve_answers(benchmark, live1, tmp_path):
    from jpegbench.synth.degrade import double_jpeg

    rng = np.random.default_rng(SEED + 1)
    cases = [("single", 50, None, (0, 0)), ("single", 75, None, (0, 0)), ("single", 90, None, (0, 0)),
             ("aligned-double", 80, 40, (0, 0)), ("nonaligned-double", 85, 50, (3, 5))]  # fmt: skip
    rows = []

    def run():
        for verdict, qf2, qf1, shift in cases:
            for name, x in _pick(live1, rng, COMBO_N):
                h, w = min(256, x.shape[0]), min(320, x.shape[1])
                x = np.ascontiguousarray(x[:h, :w])
                data = encode(x, qf2) if qf1 is None else double_jpeg(x, qf1, qf2, shift).lq_bytes
                p = tmp_path / "f.jpg"
                p.write_bytes(data)
                fe = estimate_file(p)
                rows.append(dict(truth=verdict, qf2=qf2, curves=fe.pixels.verdict, combined=fe.verdict, evidence=fe.evidence))

    benchmark.pedantic(run, rounds=1, iterations=1)
    df = pd.DataFrame(rows)
    right = df[df.curves == df.truth]
    made_wrong = (right.combined != right.truth).mean() * 100 if len(right) else 0.0
    print(f"\ncombination: {len(df)} files, curves right on {len(right)}; combined wrong on {made_wrong:.1f} % of those")
    print(df.groupby(["truth", "qf2", "curves", "combined", "evidence"]).size().to_string())
    benchmark.extra_info.update(made_wrong=made_wrong)
    # By construction a curve detection is never overridden; a single can only turn into a DCT false alarm.
    assert (right[right.truth != "single"].combined == right[right.truth != "single"].truth).all()
    assert made_wrong <= 5
