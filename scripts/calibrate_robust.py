"""Regenerate the robust QF estimator's thresholds from the BSDS500 train/val images alone.

Usage (from the repository root; curves are cached under ``.cache/calibrate_robust``)::

    python scripts/calibrate_robust.py                 # derive, print, write scripts/robust_calibration.json
    python scripts/calibrate_robust.py --check         # derive and compare with the committed file (exit 1 if not equal)
    python scripts/calibrate_robust.py --quick         # every 7th image: a smoke run, prints only

``--data`` defaults to ``../shared/data/BSDS500_trainval`` (300 JPEGs at quality ~95,
4:2:0). Every image is reduced to its BT.601 studio-swing Y, resampled to 3/4 of its size
(bicubic, which leaves no 8x8 lattice of its own JPEG: the q~95 trace is gone) and cropped;
image ``i`` gets one chain of regime ``i mod 5`` (single, aligned QF1 < QF2, aligned
QF1 > QF2, non-aligned QF1 < QF2, non-aligned QF1 > QF2) with QFs from the grid 5, 10, 20,
..., 90, 95 and a random non-zero shift, drawn with ``SeedSequence([SEED, i])``. The
chain is built with :func:`jpegbench.synth.apply_chain`, the curves with the fast backend.

What each constant of :func:`jpegbench.estimate.robust_estimate` comes from:

* ``last_margin`` (step 1, log units): aligned QF1 < QF2 chains whose deepest aligned notch
  is QF1 need the notch at QF2 to be accepted (its relative depth minus the deepest one's,
  the "need"); chains whose deepest notch is their last QF must not accept any later,
  more exact notch (the same difference, the "spurious" one). The margin separates the
  largest need from the smallest spurious difference (of any later notch, exact or not:
  the exactness test is not relied on to reject them).
* ``shelf_tolerance`` / ``aligned_shelf_tolerance`` (step 4): the candidate in 0.05, 0.10,
  ..., 0.50 that puts most dominant QFs within 2 (then: smallest mean error, then the
  middle of the tied candidates) on non-aligned / aligned QF1 < QF2 chains, with the
  detection forced on (so the location rule is measured alone) and step 3b off.
* ``z_threshold`` (step 2): separates ``-z`` of single and aligned chains from that of
  non-aligned QF1 < QF2 chains (gap >= 10).
* ``prominence_threshold`` (step 3): separates the aligned prominence of single and
  non-aligned chains from that of aligned QF1 < QF2 chains with a gap of 20 or more
  (below 20, step 3b's job), last QF <= 90 in both (above, every shift is near exact).
* ``lattice_fraction`` (step 3b): separates the fitted fraction of single and aligned
  QF1 > QF2 chains from that of aligned QF1 < QF2 chains with a gap >= 10 and QF2 <= 90.

"Separates": the midpoint between the largest score of the negative class and the
smallest of the positive class when they do not overlap, otherwise the midpoint of the
interval that minimises the balanced error (the two classes' error rates summed); written
with the fewest significant digits (at least two) that stay inside that interval. The scores of the last three come from one run of the estimator
with the ``last_margin`` and tolerances derived before (none of them depends on a threshold).

Fixed by design, not by data (printed with the reason): ``floor`` (1/12, the MSE of uniform
rounding), ``min_scale``, ``smooth`` and ``lattice_min_qf`` (see the estimator's docstring).
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from jpegbench._fs import write_atomic

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "scripts" / "robust_calibration.json"
CACHE = ROOT / ".cache" / "calibrate_robust"
DATA = ROOT.parent / "shared" / "data" / "BSDS500_trainval"
SEED = 500
GRID = (5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95)
REGIMES = ("single", "aligned qf1<qf2", "aligned qf1>qf2", "nonaligned qf1<qf2", "nonaligned qf1>qf2")
CROP = 232  # after the 3/4 resampling the short side is 240 or 241
TOLERANCES = tuple(round(0.05 * k, 2) for k in range(1, 11))
DERIVED = ("last_margin", "shelf_tolerance", "aligned_shelf_tolerance", "z_threshold", "prominence_threshold",
           "lattice_fraction")  # fmt: skip
FIXED = {
    "floor": (1.0 / 12.0, "the MSE of uniform rounding (8-bit units squared); below it errors are decoder noise"),
    "min_scale": (0.02, "floor of the per-QF spread of the interaction: QFs where all shifts agree to the last digit"),
    "smooth": (3, "a first compression's trace is several QFs wide, noise is not: the narrowest odd window > 1"),
    "lattice_min_qf": (8, "below it the codec model (no clipping) is too rough for QF1 hypotheses"),
}


def chain_spec(i: int) -> tuple[str, int, int | None, tuple[int, int]]:
    """``(regime, qf1, qf2 or None, shift)`` of image ``i``."""
    rng = np.random.default_rng(np.random.SeedSequence([SEED, i]))
    regime = REGIMES[i % len(REGIMES)]
    if regime == "single":
        return regime, int(rng.choice(GRID)), None, (0, 0)
    a, b = sorted(int(q) for q in rng.choice(GRID, size=2, replace=False))
    qf1, qf2 = (a, b) if regime.endswith("qf1<qf2") else (b, a)
    shift = (0, 0)
    if regime.startswith("nonaligned"):
        k = int(rng.integers(1, 64))
        shift = (k // 8, k % 8)
    return regime, qf1, qf2, shift


def degraded(path: Path, spec) -> np.ndarray:
    from jpegbench.codec import read_image
    from jpegbench.synth import CropStage, JpegStage, ResizeStage, ShiftStage, apply_chain

    gray = read_image(path, color="gray")
    h, w = (3 * gray.shape[0]) // 4, (3 * gray.shape[1]) // 4
    _, qf1, qf2, (dy, dx) = spec
    stages = [ResizeStage(h, w, "bicubic")]
    top, left = (h - CROP - 7) // 2, (w - CROP - 7) // 2
    if qf2 is None:
        stages += [CropStage(top, left, CROP, CROP), JpegStage(qf1)]
    else:
        stages += [CropStage(top, left, CROP + 7, CROP + 7), JpegStage(qf1)]
        if (dy, dx) != (0, 0):
            stages.append(ShiftStage(dy, dx))
        stages += [CropStage(0, 0, CROP, CROP), JpegStage(qf2)]
    return apply_chain(gray, stages).lq_pixels


def _curve_key(path: Path, spec) -> str:
    return hashlib.sha256(json.dumps([path.name, path.stat().st_size, spec[1], spec[2], list(spec[3]), CROP]).encode()).hexdigest()


def load_curves(paths: list[Path], specs: list, cache: Path):
    """Fast-backend curves of every chain, from ``cache`` where present."""
    from jpegbench.estimate import MSECurves, mse_curves_batch

    cache.mkdir(parents=True, exist_ok=True)
    out, todo = [None] * len(paths), []
    keys = []
    for i, (p, s) in enumerate(zip(paths, specs)):
        keys.append(cache / f"{_curve_key(p, s)[:24]}.npz")
        if keys[-1].is_file():
            out[i] = MSECurves.load(keys[-1])
        else:
            todo.append(i)
    for n, start in enumerate(range(0, len(todo), 8)):
        part = todo[start : start + 8]
        curves = mse_curves_batch([degraded(paths[i], specs[i]) for i in part], backend="fast")
        for i, c in zip(part, curves):
            c.save(keys[i])
            out[i] = c
        print(f"  curves {min(start + 8, len(todo))}/{len(todo)}", file=sys.stderr, flush=True)
    return out


def separate(negative, positive) -> tuple[float, dict]:
    """Threshold between two score samples (positives above); see the module docstring."""
    neg, pos = np.sort(np.asarray(negative, float)), np.sort(np.asarray(positive, float))
    if neg.size == 0 or pos.size == 0:  # a --quick run can draw too few chains of a kind
        return float("nan"), {"n_negative": int(neg.size), "n_positive": int(pos.size), "note": "a class is empty"}
    values = np.unique(np.concatenate([neg, pos]))
    # a threshold t calls a score positive when score >= t; between two neighbouring values the error is constant
    cuts = np.concatenate([[values[0] - 1], (values[1:] + values[:-1]) / 2, [values[-1] + 1]])
    err = np.array([(neg >= c).mean() + (pos < c).mean() for c in cuts])
    best = np.flatnonzero(err == err.min())
    ends = np.concatenate([[values[0] - 1], values, [values[-1] + 1]])
    lo, hi = float(ends[best[0]]), float(ends[best[-1] + 1])  # every t in (lo, hi] has the least error
    t = 0.5 * (lo + hi)
    info = {"negative_max": float(neg.max()), "positive_min": float(pos.min()), "n_negative": int(neg.size),
            "n_positive": int(pos.size), "balanced_error": float(err.min()), "interval": [lo, hi], "midpoint": t}  # fmt: skip
    return _short(t, lo, hi), info


def _short(t: float, lo: float, hi: float) -> float:
    """``t`` with the fewest significant digits (at least two) that stay inside ``(lo, hi]``."""
    for digits in range(2, 12):
        r = round(t, digits - 1 - int(math.floor(math.log10(abs(t))))) if t else 0.0
        if lo < r <= hi:
            return r
    return t


def derive_last_margin(curves, specs, floor: float) -> tuple[float, dict]:
    need, spurious = [], []
    for c, (regime, qf1, qf2, _) in zip(curves, specs):
        logs = np.log(c.mse + floor)
        rel = (logs - np.median(logs.reshape(64, -1), axis=0))[0, 0]
        aligned, lg = c.mse[0, 0], logs[0, 0]
        deep = int(np.argmin(rel))
        notch = np.zeros(aligned.size, bool)
        notch[1:-1] = (aligned[1:-1] < aligned[:-2]) & (aligned[1:-1] <= aligned[2:])
        later = notch & (np.arange(aligned.size) > deep)
        exact = later & (lg <= lg[deep] - np.log(2.0))
        last = qf2 if qf2 is not None else qf1
        qfs = c.qfs
        if abs(int(qfs[deep]) - last) <= 2:
            # the margin alone must reject every later notch here, exact or not
            spurious += [float(rel[j] - rel[deep]) for j in np.flatnonzero(later) if abs(int(qfs[j]) - last) > 2]
        elif regime == "aligned qf1<qf2" and abs(int(qfs[deep]) - qf1) <= 2:
            right = [j for j in np.flatnonzero(exact) if abs(int(qfs[j]) - last) <= 2]
            if right:
                need.append(float(min(rel[j] for j in right) - rel[deep]))
    return separate(need, spurious)  # accepted when at most the margin: the needs below, the spurious above


def derive_tolerance(curves, specs, regime: str, name: str) -> tuple[float, dict]:
    from jpegbench.estimate import robust_estimate

    force = ({"z_threshold": 1e-6, "prominence_threshold": 1e9} if name == "shelf_tolerance"
             else {"z_threshold": 1e9, "prominence_threshold": 1e-6})  # fmt: skip
    chosen = [(c, s) for c, s in zip(curves, specs) if s[0] == regime and s[2] - s[1] >= 10]
    scores = {}
    for t in TOLERANCES:
        errors = [abs(robust_estimate(c, lattice_fraction=2.0, **{name: t}, **force, **_derived).qf_dominant - s[1])
                  for c, s in chosen]  # fmt: skip
        scores[t] = (float(np.mean(np.array(errors) <= 2)), float(np.mean(errors)))
    top = max(v[0] for v in scores.values())
    tied = [t for t, v in scores.items() if v[0] == top]
    least = min(scores[t][1] for t in tied)
    tied = [t for t in tied if scores[t][1] == least]
    return tied[len(tied) // 2], {"n": len(chosen), "within_2_and_mean_error": {str(k): v for k, v in scores.items()}}


_derived: dict = {}  # the constants derived so far, passed to later runs of the estimator


def calibrate(data: Path, cache: Path, step: int = 1) -> dict:
    from jpegbench.estimate import robust_estimate

    paths = sorted(data.glob("*.jpg"))[::step]
    if not paths:
        raise SystemExit(f"calibration: no .jpg under {data}")
    specs = [chain_spec(i) for i in range(0, len(paths) * step, step)]
    t0 = time.perf_counter()
    curves = load_curves(paths, specs, cache)
    _derived.clear()
    report = {}
    floor = FIXED["floor"][0]
    _derived["last_margin"], report["last_margin"] = derive_last_margin(curves, specs, floor)
    if not np.isfinite(_derived["last_margin"]):  # (--quick) later runs use the code's value
        _derived["last_margin"] = code_defaults()["last_margin"]
        report["last_margin"]["note"] += "; later runs used the code's value"
    for regime, name in (("nonaligned qf1<qf2", "shelf_tolerance"), ("aligned qf1<qf2", "aligned_shelf_tolerance")):
        _derived[name], report[name] = derive_tolerance(curves, specs, regime, name)
    print(f"  step 1 and 4 constants: {_derived} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    z, prom, frac = [], [], []
    # scores are memoised by the estimator's source, the chain's curves and the constants they depend on
    from jpegbench.estimate import _lattice  # step 3b lives there

    code = inspect.getsource(sys.modules[robust_estimate.__module__]) + inspect.getsource(_lattice)
    source = hashlib.sha256(code.encode()).hexdigest()
    for n, (c, s) in enumerate(zip(curves, specs)):
        key = hashlib.sha256(json.dumps([source, _curve_key(paths[n], s), _derived],
                                        sort_keys=True).encode()).hexdigest()  # fmt: skip
        memo = cache / "scores" / f"{key[:24]}.json"
        if memo.is_file():
            zs, ps, fs = json.loads(memo.read_text())
        else:
            d = robust_estimate(c, **_derived).details
            zs, ps, fs = -d["z"], d["aligned_prominence"], d.get("lattice_fraction_fit", float("nan"))
            write_atomic(memo, json.dumps([zs, ps, fs]))
        z.append(zs)
        prom.append(ps)
        frac.append(fs)
        if (n + 1) % 50 == 0:
            print(f"  scores {n + 1}/{len(specs)} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    regime = np.array([s[0] for s in specs])
    qf1 = np.array([s[1] for s in specs])
    last = np.array([s[2] if s[2] is not None else s[1] for s in specs])
    gap = last - qf1
    z, prom, frac = np.array(z), np.array(prom), np.array(frac)
    single, al_lo, al_hi = regime == "single", regime == "aligned qf1<qf2", regime == "aligned qf1>qf2"
    na_lo, nonaligned = regime == "nonaligned qf1<qf2", np.char.startswith(regime.astype(str), "nonaligned")
    _derived["z_threshold"], report["z_threshold"] = separate(z[single | al_lo | al_hi], z[na_lo & (gap >= 10)])
    neg = (single | nonaligned) & (last <= 90) & np.isfinite(prom)
    pos = al_lo & (gap >= 20) & (last <= 90)
    _derived["prominence_threshold"], report["prominence_threshold"] = separate(prom[neg], prom[pos])
    ok = np.isfinite(frac)
    _derived["lattice_fraction"], report["lattice_fraction"] = separate(
        frac[ok & (single | al_hi)], frac[ok & al_lo & (gap >= 10) & (last <= 90)]
    )
    return {
        "data": f"BSDS500_trainval ({len(paths)} images{'' if step == 1 else f', every {step}th'})",
        "seed": SEED, "grid": list(GRID), "crop": CROP,
        "constants": {**{k: _derived[k] for k in DERIVED}, **{k: v for k, (v, _) in FIXED.items()}},
        "fixed_by_design": {k: why for k, (_, why) in FIXED.items()},
        "evidence": report,
        "seconds": round(time.perf_counter() - t0, 1),
    }  # fmt: skip


def code_defaults() -> dict:
    """The defaults of :func:`jpegbench.estimate.robust_estimate` (what the calibration must equal)."""
    from jpegbench.estimate import robust_estimate

    params = inspect.signature(robust_estimate).parameters
    return {k: params[k].default for k in (*DERIVED, *FIXED)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA, help="BSDS500 train/val folder (default: %(default)s)")
    ap.add_argument("--cache", type=Path, default=CACHE, help="curve cache (default: %(default)s)")
    ap.add_argument("--out", type=Path, default=OUT, help="calibration file (default: %(default)s)")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="compare with --out and the code; write nothing")
    mode.add_argument("--quick", action="store_true", help="every 7th image; print only")
    args = ap.parse_args(argv)
    result = calibrate(args.data, args.cache, step=7 if args.quick else 1)
    consts = result["constants"]
    code = code_defaults()
    print(json.dumps(result["evidence"], indent=1))
    width = max(map(len, consts))
    for k, v in consts.items():
        mark = "" if math.isclose(code[k], v, rel_tol=1e-12) else f"   <- the code has {code[k]}"
        print(f"{k:{width}s} = {v!r}{mark}")
    if args.quick:
        return 0
    if args.check:
        committed = json.loads(args.out.read_text())["constants"]
        same = committed == consts and all(math.isclose(code[k], v, rel_tol=1e-12) for k, v in consts.items())
        print("check:", "the committed calibration and the code equal this run" if same else "MISMATCH")
        return 0 if same else 1
    write_atomic(args.out, json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
