"""Calibrate the double-quantization detector's thresholds on BSDS500 train/val only; write dq_thresholds.json.

Every BSDS500 train/val photograph (JPEG at quality ~95, 4:2:0) is
downscaled with an antialiasing (Lanczos) filter, which removes the traces
of its own compression, by 2 or by 1.25 (half the images each: the score's
spread grows with image size and detail, and users bring all sizes), and
then compressed once at a QF2 drawn from ``--qf2-range`` (default 60..90; seeded), as gray or as
RGB 4:2:0 (Pillow, IJG tables), each size getting both.
These single JPEGs are the null hypothesis: the aligned threshold is the
``1 - FA_ALIGNED`` quantile of their aligned scores, the non-aligned one the
``1 - FA_NONALIGNED`` quantile of the non-aligned statistic of a subset
(the 63-shift scan is the slow part). The false-alarm rates measured on
them are written next to the thresholds, and, for information, the share of
aligned doubles (QF1 = QF2 + 10..20) of a subset that the threshold detects. No LIVE1 or skimage image is used
here: the benchmark (tests/benchmarks/test_dq_bench.py) checks on those.

Run from the repository root::

    python scripts/calibrate_dq.py [--data ../shared/data/BSDS500_trainval] [--nonaligned-n 60] [--doubles-n 100]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image

from jpegbench._fs import atomic_write_bytes
from jpegbench.codec import decode, encode, read_coefficients
from jpegbench.estimate import dq

FA_ALIGNED = 0.03
FA_NONALIGNED = 0.01
SEED = 19


FACTORS = (2.0, 1.25)  # downscaling: image i gets FACTORS[(i // 2) % 2], gray when i is even


def prepare(path: Path, gray: bool, factor: float) -> np.ndarray:
    im = Image.open(path).convert("L" if gray else "RGB")
    w, h = im.size
    return np.asarray(im.resize((round(w / factor), round(h / factor)), Image.LANCZOS))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/BSDS500_trainval")
    ap.add_argument("--nonaligned-n", type=int, default=60)
    ap.add_argument("--doubles-n", type=int, default=100)
    ap.add_argument("--qf2-range", type=int, nargs=2, default=(60, 90), metavar=("LO", "HI"),
                    help="last QFs of the singles, drawn uniformly (default: 60 90)")
    ap.add_argument("--out", default=str(Path(dq.__file__).with_name("dq_thresholds.json")))
    args = ap.parse_args()
    if not 1 <= args.qf2_range[0] <= args.qf2_range[1] <= 100:
        ap.error(f"--qf2-range must be LO <= HI within 1..100, got {args.qf2_range[0]} {args.qf2_range[1]}")
    files = sorted(Path(args.data).glob("*.jpg"))
    if not files:
        raise SystemExit(f"error: no .jpg files in {args.data}")
    rng = np.random.default_rng(SEED)
    qf2s = rng.integers(args.qf2_range[0], args.qf2_range[1] + 1, size=len(files))
    na_idx = set(rng.choice(len(files), size=min(args.nonaligned_n, len(files)), replace=False).tolist())
    aligned, nonaligned, doubles = [], [], []
    dbl_idx = set(rng.choice(len(files), size=min(args.doubles_n, len(files)), replace=False).tolist())
    qf1_gap = rng.integers(10, 21, size=len(files))
    t0 = time.time()
    for i, (f, qf2) in enumerate(zip(files, qf2s.tolist())):
        px = prepare(f, gray=i % 2 == 0, factor=FACTORS[(i // 2) % 2])  # once: the double below starts from them
        coefs = read_coefficients(encode(px, qf2))
        aligned.append(dq._aligned_reading(dq._mode_data(coefs), dq.SIGMA, qf2).score)
        if i in dbl_idx:  # for information only: the thresholds come from the singles
            q1 = min(qf2 + int(qf1_gap[i]), 98)
            c2 = read_coefficients(encode(decode(encode(px, q1)), qf2))
            r = dq._aligned_reading(dq._mode_data(c2), dq.SIGMA, qf2)
            doubles.append((q1, qf2, r.score, r.qf1))
        if i in na_idx:
            luma = np.clip(np.round(dq.decoded_luma(coefs)), 0, 255)
            nonaligned.append(dq._nonaligned_scan(luma, qf2, coefs.qtables[0])[0])
        if i % 50 == 0:
            print(f"{i}/{len(files)} {time.time() - t0:.0f}s", flush=True)
    aligned, nonaligned = np.array(aligned), np.array(nonaligned)
    th_a = float(np.quantile(aligned, 1 - FA_ALIGNED))
    th_na = float(np.quantile(nonaligned, 1 - FA_NONALIGNED))
    out = {
        "aligned": round(th_a, 4),
        "nonaligned": round(th_na, 4),
        "false_alarm_aligned": float(np.mean(aligned >= th_a)),
        "false_alarm_nonaligned": float(np.mean(nonaligned >= th_na)),
        "n_single": len(aligned),
        "bsds_aligned_double_detected": float(np.mean([d[2] >= th_a for d in doubles])) if doubles else None,
        "bsds_aligned_double_qf1_within_5": float(np.mean([abs(d[3] - d[0]) <= 5 for d in doubles]))
        if doubles else None,
        "n_double": len(doubles),
        "n_single_nonaligned": len(nonaligned),
        "data": "BSDS500 train+val (300), downscaled x1/2 or x1/1.25 (Lanczos; half each), single JPEG at "
                f"QF2 ~ U{{{args.qf2_range[0]}..{args.qf2_range[1]}}}, gray and RGB 4:2:0 alternately, Pillow encoder",
        "qf2_range": list(args.qf2_range),
        "score": ("summed log-ratio less the two largest mode terms, over sqrt(n), at the QF1 that one generalised "
                  "Gaussian per hypothesis picks (QF1 = QF2 not a candidate): the smaller of its scores with one "
                  "density and with scale mixtures"),
        "seed": SEED,
        "sigma": dq.SIGMA,
        "script": "scripts/calibrate_dq.py",
    }
    atomic_write_bytes(Path(args.out), (json.dumps(out, indent=1) + "\n").encode())
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
