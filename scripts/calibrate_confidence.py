"""Derive the grid thresholds and fit the confidence maps of the open-world verdicts from BSDS500 train/val alone.

Usage (from the repository root; curves are cached under ``.cache/calibrate_confidence``)::

    python scripts/calibrate_confidence.py            # derive, print, write jpegbench/estimate/confidence.json
    python scripts/calibrate_confidence.py --check    # derive and compare with the committed file (exit 1 if not equal)
    python scripts/calibrate_confidence.py --quick    # every 21st image: a smoke run, prints only

``--data`` defaults to ``../shared/data/BSDS500_trainval`` (300 JPEGs at quality ~95, 4:2:0);
every ``--step``-th image is used (default 3: 100 images, 450 samples, about 15 min on two
shared cores, most of it the robust reading of the JPEG samples; ``--step 1`` uses all 300).
Each image ``i`` gives, with ``SeedSequence([SEED, i])``:

* ``never-small``: the whole image downscaled by 4 (bicubic; its own q~95 grid is gone),
  colour for odd ``i`` (luma curves, full-range BT.601), gray for even ``i``;
* ``never-large``: the gray image resampled to 3/4, a random 232 x 232 crop;
* ``chain``: the robust calibration's chain of that image (``scripts/calibrate_robust.py``:
  five regimes in turn, QFs on the grid 5, 10, 20, ..., 90, 95);
* ``single``: one JPEG of the 3/4 crop at a QF drawn from 5..100, colour 4:2:0 for odd ``i``;
* ``moved`` (even ``i``): one gray JPEG at a QF from 5..95, then cropped at an offset that is
  not a multiple of 8 in both directions.

Then:

1. ``depth_threshold`` and ``outlier_threshold`` (:mod:`jpegbench.estimate.grid`) separate the
   never-compressed samples from the JPEG ones whose QFs are all <= 95 (too small or too flat
   samples aside), each at the geometric midpoint of the interval ``calibrate_robust.separate``
   finds (the best-separating one), written short;
2. every sample is read with those thresholds and raw confidences
   (``open_world_estimate(..., calibrated=False)``); an answer is *right* when it is a JPEG
   verdict with the dominant QF within 2 of the truth, or ``uncompressed`` on an image without
   a compression at QF <= 95; ``undetermined`` claims nothing and is left out;
3. per verdict, an isotonic map from the raw score (the robust confidence; for
   ``uncompressed`` the grid depth, decreasing) to the rate of right answers
   (:func:`jpegbench.estimate.confidence.fit_isotonic`).

The output records the scores behind each threshold, the maps, the detection rate of a
grid per QF band and the training reliability table.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np

from jpegbench._fs import write_atomic

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "jpegbench" / "estimate" / "confidence.json"
CACHE = ROOT / ".cache" / "calibrate_confidence"
DATA = ROOT.parent / "shared" / "data" / "BSDS500_trainval"
SEED = 1503
STEP = 3  # 3 is prime to the 5 chain regimes: every regime gets its share
CROP = 232
KINDS = ("never-small", "never-large", "chain", "single", "moved")
JPEG_VERDICTS = ("single", "aligned-double", "nonaligned-double")


def _robust_script():
    spec = importlib.util.spec_from_file_location("calibrate_robust", ROOT / "scripts" / "calibrate_robust.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sample_spec(i: int, kind: str) -> dict:
    """What sample ``kind`` of image ``i`` is: its truth (``qf1``, ``qf2``, ``dominant``) and how it is made."""
    rng = np.random.default_rng(np.random.SeedSequence([SEED, i, KINDS.index(kind)]))
    color = bool(i % 2)
    if kind == "never-small":
        return {"kind": kind, "color": color, "qfs": []}
    top, left = (int(v) for v in rng.integers(0, 8, size=2))
    if kind == "never-large":
        return {"kind": kind, "color": False, "qfs": [], "top": top, "left": left}
    if kind == "chain":
        regime, qf1, qf2, shift = _robust_script().chain_spec(i)
        return {"kind": kind, "color": False, "qfs": [qf1] + ([qf2] if qf2 is not None else []),
                "regime": regime, "shift": list(shift)}  # fmt: skip
    if kind == "single":
        return {"kind": kind, "color": color, "qfs": [int(rng.integers(5, 101))], "top": top, "left": left}
    oy, ox = (int(v) for v in rng.integers(1, 8, size=2))
    return {"kind": kind, "color": False, "qfs": [int(rng.integers(5, 96))], "top": top, "left": left,
            "offset": [oy, ox]}  # fmt: skip


def truth(spec: dict) -> tuple[int | None, int | None]:
    """``(dominant QF, largest QF)`` of a sample; ``(None, None)`` when never compressed."""
    if not spec["qfs"]:
        return None, None
    return min(spec["qfs"]), max(spec["qfs"])


def render(path: Path, spec: dict) -> np.ndarray:
    """The sample's pixels (uint8, gray or RGB)."""
    from jpegbench.codec import jpeg_roundtrip, read_image
    from jpegbench.synth.degrade import resize_image

    kind = spec["kind"]
    if kind == "chain":
        rs = _robust_script()
        return rs.degraded(path, (spec["regime"], spec["qfs"][0], spec["qfs"][1] if len(spec["qfs"]) > 1 else None,
                                  tuple(spec["shift"])))  # fmt: skip
    x = read_image(path, color="rgb" if spec["color"] else "gray")
    if kind == "never-small":
        return resize_image(x, x.shape[0] // 4, x.shape[1] // 4, method="bicubic")
    x = resize_image(x, (3 * x.shape[0]) // 4, (3 * x.shape[1]) // 4, method="bicubic")
    t, l = spec["top"], spec["left"]
    extra = 8 if kind == "moved" else 0
    crop = np.ascontiguousarray(x[t : t + CROP + extra, l : l + CROP + extra])
    if kind == "never-large":
        return crop
    y = jpeg_roundtrip(crop, spec["qfs"][0])
    if kind == "moved":
        oy, ox = spec["offset"]
        y = np.ascontiguousarray(y[oy : oy + CROP, ox : ox + CROP])
    return y


def load_curves(paths: list[Path], specs: list[dict], cache: Path):
    """Fast-backend curves (luma for colour) of every sample, from ``cache`` where present."""
    from jpegbench.estimate import MSECurves, mse_curves

    cache.mkdir(parents=True, exist_ok=True)
    out = []
    t0 = time.perf_counter()
    for n, (p, s) in enumerate(zip(paths, specs)):
        key = hashlib.sha256(json.dumps([p.name, p.stat().st_size, s, CROP], sort_keys=True).encode()).hexdigest()
        f = cache / f"{key[:24]}.npz"
        if f.is_file():
            out.append(MSECurves.load(f))
            continue
        pixels = render(p, s)
        c = mse_curves(pixels, backend="fast", **({"luma": "bt601-full"} if pixels.ndim == 3 else {}))
        c.save(f)
        out.append(c)
        if (n + 1) % 50 == 0:
            print(f"  curves {n + 1}/{len(specs)} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    return out


def is_right(verdict: str, qf_dominant, spec: dict) -> bool | None:
    """Whether an answer is right (None for ``undetermined``, which claims nothing)."""
    from jpegbench.estimate.confidence import answer_is_right

    return answer_is_right(verdict, qf_dominant, truth(spec)[0])


def _geometric_separate(negative, positive) -> tuple[float, dict]:
    """``calibrate_robust.separate``'s interval, cut at its geometric midpoint (both grid scores are positive ratios).

    The arithmetic midpoint of the wide gap between never-compressed images (depth ~0.1) and
    JPEGs at QF <= 95 (~3) would sit ten times above the first and give up near-lossless
    JPEGs for nothing; on a log scale the cut is as far (as a factor) from either class.
    """
    rs = _robust_script()
    _, info = rs.separate(negative, positive)
    if "interval" not in info:
        return float("nan"), info
    lo, hi = info["interval"]
    lo = max(lo, 1e-6)
    t = float(np.sqrt(lo * hi))
    info["geometric_midpoint"] = t
    return rs._short(t, lo, hi), info


def calibrate(data: Path, cache: Path, step: int = 1) -> dict:
    from jpegbench.estimate import robust_estimate
    from jpegbench.estimate.confidence import expected_calibration_error, fit_isotonic, reliability_table
    from jpegbench.estimate.grid import FIXED, grid_evidence
    from jpegbench.estimate.verdict import open_world_estimate

    separate = _geometric_separate
    images = sorted(data.glob("*.jpg"))
    if not images:
        raise SystemExit(f"calibration: no .jpg under {data}")
    t0 = time.perf_counter()
    paths, specs = [], []
    for i in range(0, len(images), step):
        for kind in KINDS:
            if kind == "moved" and i % 2:
                continue
            paths.append(images[i])
            specs.append(sample_spec(i, kind))
    curves = load_curves(paths, specs, cache)
    ev = [grid_evidence(c) for c in curves]
    never = np.array([not s["qfs"] for s in specs])
    low = np.array([bool(s["qfs"]) and max(s["qfs"]) <= 95 for s in specs])
    usable = np.array([not e.reason for e in ev])
    depth = np.array([e.depth for e in ev])
    outlier = np.array([e.outlier for e in ev])
    evidence = {}
    thresholds = {}
    thresholds["depth_threshold"], evidence["depth_threshold"] = separate(depth[never & usable], depth[low & usable])
    thresholds["outlier_threshold"], evidence["outlier_threshold"] = separate(outlier[never & usable],
                                                                              outlier[low & usable])  # fmt: skip
    print(f"  thresholds {thresholds} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    rows = []
    # readings are memoised by the estimator's and the verdict's source, the sample and the thresholds
    import inspect

    from jpegbench.estimate import grid, robust, verdict

    source = hashlib.sha256("".join(inspect.getsource(m) for m in (robust, grid, verdict)).encode()).hexdigest()
    for n, (c, s) in enumerate(zip(curves, specs)):
        key = hashlib.sha256(json.dumps([source, paths[n].name, s, CROP, thresholds], sort_keys=True).encode())
        memo = cache / "reads" / f"{key.hexdigest()[:24]}.json"
        if memo.is_file():
            verdict_, raw, qf_dom, moved = json.loads(memo.read_text())
        else:
            r = open_world_estimate(c, robust_estimate, calibrated=False, **thresholds)
            verdict_, raw, qf_dom, moved = (r.verdict, float(r.details["raw_confidence"]), r.qf_dominant,
                                            bool(r.details.get("grid_moved")))  # fmt: skip
            write_atomic(memo, json.dumps([verdict_, raw, qf_dom, moved]))
        rows.append({"verdict": verdict_, "raw": raw, "qf_dominant": qf_dom,
                     "right": is_right(verdict_, qf_dom, s), "moved": moved})
        if (n + 1) % 100 == 0:
            print(f"  read {n + 1}/{len(specs)} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    maps = {}
    for verdict in (*JPEG_VERDICTS, "uncompressed"):
        g = [r for r in rows if r["verdict"] == verdict]
        if g:
            maps[verdict] = fit_isotonic([r["raw"] for r in g], [r["right"] for r in g],
                                         increasing=verdict != "uncompressed")  # fmt: skip
    # the training reliability, with the maps applied
    from jpegbench.estimate.confidence import apply_map

    answered = [r for r in rows if r["right"] is not None]
    conf = [apply_map(maps[r["verdict"]], r["raw"]) for r in answered]
    right = [bool(r["right"]) for r in answered]
    detection = {}
    for lo, hi in ((5, 50), (51, 90), (91, 95), (96, 96), (97, 97), (98, 98), (99, 99), (100, 100)):
        sel = [r for r, s in zip(rows, specs) if s["kind"] in ("single", "moved") and lo <= s["qfs"][0] <= hi]
        if sel:
            detection[f"{lo}-{hi}" if lo != hi else str(lo)] = {
                "n": len(sel), "not_uncompressed": float(np.mean([r["verdict"] != "uncompressed" for r in sel]))}
    per_kind = {}
    for kind in KINDS:
        g = [r for r, s in zip(rows, specs) if s["kind"] == kind]
        per_kind[kind] = {v: sum(r["verdict"] == v for r in g) for v in sorted({r["verdict"] for r in g})}
    return {
        "data": f"BSDS500_trainval ({len(range(0, len(images), step))} of {len(images)} images, every {step}th)",
        "seed": SEED, "crop": CROP, "samples": len(specs),
        "thresholds": thresholds,
        "fixed_by_design": {k: {"value": v, "why": why} for k, (v, why) in FIXED.items()},
        "maps": maps,
        "evidence": evidence,
        "verdicts_per_kind": per_kind,
        "grid_detection_by_qf": detection,
        "training_ece": expected_calibration_error(conf, right),
        "training_reliability": reliability_table(conf, right),
        "seconds": round(time.perf_counter() - t0, 1),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA, help="BSDS500 train/val folder (default: %(default)s)")
    ap.add_argument("--cache", type=Path, default=CACHE, help="curve cache (default: %(default)s)")
    ap.add_argument("--out", type=Path, default=OUT, help="calibration file (default: %(default)s)")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="compare with --out; write nothing")
    mode.add_argument("--quick", action="store_true", help="every 21st image; print only")
    ap.add_argument("--step", type=int, default=STEP, help="use every STEP-th image (default: %(default)s)")
    args = ap.parse_args(argv)
    result = calibrate(args.data, args.cache, step=21 if args.quick else args.step)
    shown = {k: v for k, v in result.items() if k not in ("maps",)}
    print(json.dumps(shown, indent=1))
    if args.quick:
        return 0
    if args.check:
        committed = json.loads(args.out.read_text())
        same = all(committed[k] == result[k] for k in ("thresholds", "maps"))
        print("check:", "the committed calibration equals this run" if same else "MISMATCH")
        return 0 if same else 1
    write_atomic(args.out, json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
