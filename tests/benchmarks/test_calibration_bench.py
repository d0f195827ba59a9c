"""Benchmark: the open-world verdicts and the calibrated confidence on held-out photographs.

Run with::

    pytest tests/benchmarks/test_calibration_bench.py --benchmark-only -s

Held-out sources (never used to set a threshold or fit a map; those come
from BSDS500 train/val, ``scripts/calibrate_confidence.py``): the LIVE1 gray
and colour references and Classic5 from ``../shared``, and scikit-image's
photographs ``camera``, ``astronaut``, ``coffee``, ``brick``, ``gravel``,
``moon``, ``motorcycle`` (left image), ``coins``. (``chelsea``, ``rocket`` and ``grass``
are left out: their own pixels carry an 8x8 grid: on their top-left 256 x 256
luma, grid depth 1.4-3.4 and outlier score 65-385, against at most 0.19 and
4.8 for the never-compressed BSDS500 renders of the calibration; the robust
estimator reads them as single JPEGs at QF 98, 96 and 90, consistent with
the JPEG photographs they were made from.)

Per source, one seeded random crop of ``CROP`` (the sources are never
flipped or resized) gives one sample of each kind:

* ``never``: the crop itself (PNG-like, never compressed);
* ``single``: one JPEG at a QF drawn from 5..95 (colour 4:2:0 for colour sources, luma curves);
* ``aligned``, ``nonaligned``: gray double JPEGs, QFs 5..95 at least 10 apart in a random
  order, non-aligned with a random non-zero shift;
* ``moved``: one gray JPEG at 5..95 cropped at an offset that is not a multiple of 8;
* ``near-lossless``: one JPEG at 96..100.

Right answers are defined by :func:`jpegbench.estimate.confidence.answer_is_right`
(dominant QF within 2; ``uncompressed`` right on images without a compression at
QF <= 95); ``undetermined`` answers claim nothing and are counted apart.

Asserted: expected calibration error <= 0.05 (10 equal bins); >= 95 % of the
never-compressed crops read ``uncompressed``; >= 99 % of the single JPEGs at QF
5..95 do not. Printed: the reliability table, verdicts per kind, and the grid
detection rate per QF of the near-lossless samples.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from jpegbench.codec import jpeg_roundtrip, read_image, rgb_to_y
from jpegbench.estimate import estimate_from_curves, mse_curves
from jpegbench.estimate.confidence import answer_is_right, expected_calibration_error, reliability_table
from jpegbench.synth import double_jpeg

pytestmark = [pytest.mark.benchmark(group="estimate"), pytest.mark.shared, pytest.mark.usefixtures("one_torch_thread")]

SEED = 1515
CROP = (192, 192)
SHARED = Path(__file__).resolve().parents[2].parent / "shared"
SKIMAGE = ("camera", "astronaut", "coffee", "brick", "gravel", "moon", "motorcycle", "coins")
KINDS = ("never", "single", "aligned", "nonaligned", "moved", "near-lossless")


def _sources() -> list[tuple[str, np.ndarray]]:
    from skimage import data

    out = []
    for group in ("LIVE1_gray", "LIVE1_color", "Classic5"):
        folder = SHARED / "data" / group
        if not folder.is_dir():
            pytest.skip(f"needs {folder}")
        out += [(f"{group}/{p.stem}", read_image(p)) for p in sorted(folder.glob("*.png"))]
    for name in SKIMAGE:
        x = np.asarray(data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(data, name)())
        out.append((f"skimage/{name}", x[..., :3] if x.ndim == 3 else x))
    return out


def _gray(x: np.ndarray) -> np.ndarray:
    return rgb_to_y(x) if x.ndim == 3 else x


def _samples(rng: np.random.Generator):
    """``(source, kind, true dominant QF or None, QF list, pixels)`` for every source and kind."""
    h, w = CROP
    for name, x in _sources():
        top = int(rng.integers(0, x.shape[0] - h - 8))
        left = int(rng.integers(0, x.shape[1] - w - 8))
        big = np.ascontiguousarray(x[top : top + h + 8, left : left + w + 8])
        crop = np.ascontiguousarray(big[:h, :w])
        gray_big = np.ascontiguousarray(_gray(big))
        for kind in KINDS:
            if kind == "never":
                yield name, kind, None, [], crop
            elif kind in ("single", "near-lossless"):
                qf = int(rng.integers(5, 96) if kind == "single" else rng.integers(96, 101))
                yield name, kind, qf, [qf], jpeg_roundtrip(crop, qf)
            elif kind == "moved":
                qf = int(rng.integers(5, 96))
                oy, ox = (int(v) for v in rng.integers(1, 8, size=2))
                yield name, kind, qf, [qf], np.ascontiguousarray(jpeg_roundtrip(gray_big, qf)[oy : oy + h, ox : ox + w])
            else:
                while True:
                    a, b = (int(v) for v in rng.integers(5, 96, size=2))
                    if abs(a - b) >= 10:
                        break
                shift = (0, 0)
                if kind == "nonaligned":
                    k = int(rng.integers(1, 64))
                    shift = (k // 8, k % 8)
                lq = double_jpeg(gray_big, a, b, shift).lq_pixels[:h, :w]
                yield name, kind, min(a, b), [a, b], np.ascontiguousarray(lq)


def test_calibration_and_open_world_verdicts(benchmark):
    rows: list[dict] = []

    def run():
        rows.clear()
        for name, kind, dominant, qfs, pixels in _samples(np.random.default_rng(SEED)):
            t0 = time.perf_counter()
            c = mse_curves(pixels, backend="fast", **({"luma": "bt601-full"} if pixels.ndim == 3 else {}))
            r = estimate_from_curves(c, estimator="robust")
            rows.append({"source": name, "kind": kind, "qfs": qfs, "dominant": dominant, "verdict": r.verdict,
                         "qf_dominant": r.qf_dominant, "confidence": r.confidence,
                         "right": answer_is_right(r.verdict, r.qf_dominant, dominant),
                         "seconds": time.perf_counter() - t0})  # fmt: skip

    benchmark.pedantic(run, rounds=1, iterations=1)
    answered = [r for r in rows if r["right"] is not None]
    conf = [r["confidence"] for r in answered]
    right = [bool(r["right"]) for r in answered]
    ece = expected_calibration_error(conf, right)
    table = reliability_table(conf, right)
    lines = [f"held-out samples: {len(rows)}, answered {len(answered)}, undetermined {len(rows) - len(answered)}",
             "| confidence bin | n | mean confidence | accuracy |", "|---|---|---|---|"]
    lines += [f"| {t['lo']:.1f}-{t['hi']:.1f} | {t['n']} | {t['confidence']:.3f} | {t['accuracy']:.3f} |" for t in table]
    lines.append(f"ECE = {ece:.4f}; accuracy {np.mean(right):.3f}, mean confidence {np.mean(conf):.3f}")
    lines.append("\n| kind | n | " + " | ".join(("single", "aligned-double", "nonaligned-double", "uncompressed",
                                                  "undetermined")) + " | right |")  # fmt: skip
    lines.append("|---" * 8 + "|")
    for kind in KINDS:
        g = [r for r in rows if r["kind"] == kind]
        counts = [sum(r["verdict"] == v for r in g) for v in ("single", "aligned-double", "nonaligned-double",
                                                                  "uncompressed", "undetermined")]  # fmt: skip
        ok = [r["right"] for r in g if r["right"] is not None]
        lines.append(f"| {kind} | {len(g)} | " + " | ".join(map(str, counts)) + f" | {100 * np.mean(ok):.1f} % |")
    near = sorted({r["qfs"][0] for r in rows if r["kind"] == "near-lossless"})
    lines.append("\nnear-lossless, share read as a JPEG (not uncompressed) per QF: " + ", ".join(
        f"{q}: {np.mean([r['verdict'] != 'uncompressed' for r in rows if r['kind'] == 'near-lossless' and r['qfs'][0] == q]):.2f}"
        f" (n={sum(r['kind'] == 'near-lossless' and r['qfs'][0] == q for r in rows)})" for q in near))  # fmt: skip
    never = [r for r in rows if r["kind"] == "never"]
    singles = [r for r in rows if r["kind"] == "single"]
    share_unc = float(np.mean([r["verdict"] == "uncompressed" for r in never]))
    share_jpeg = float(np.mean([r["verdict"] != "uncompressed" for r in singles]))
    lines.append(f"never-compressed read uncompressed: {100 * share_unc:.1f} % of {len(never)}; "
                 f"single JPEGs QF 5..95 not uncompressed: {100 * share_jpeg:.1f} % of {len(singles)}; "
                 f"median seconds per image {np.median([r['seconds'] for r in rows]):.2f}")  # fmt: skip
    misses = [f"  {r['source']} {r['kind']} qfs={r['qfs']} -> {r['verdict']} {r['qf_dominant']} ({r['confidence']:.2f})"
              for r in rows if r["right"] is False and r["kind"] in ("never", "single")]  # fmt: skip
    shown = "\n".join(lines + (["misses (never / single):"] + misses if misses else []))
    print("\n" + shown)
    out = Path(os.environ.get("JPEGBENCH_BENCH_OUT", ".benchmarks"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "calibration_bench.md").write_text(shown + "\n")
    benchmark.extra_info.update(ece=ece, samples=len(rows), never_uncompressed=share_unc, single_detected=share_jpeg,
                                seed=SEED, crop=CROP)  # fmt: skip
    assert ece <= 0.05, shown
    assert share_unc >= 0.95, shown
    assert share_jpeg >= 0.99, shown
