"""Fixtures for the report tests: a synthetic results table shaped like evaluate's output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SHARED = Path(__file__).resolve().parents[2].parent / "shared"

PAIRS = [(30, 10), (50, 10), (50, 30), (10, 10), (30, 30), (50, 50), (10, 30), (10, 50), (30, 50)]
METHODS = ("jpeg", "fbcnn", "fbcnn-d", "fbcnn-a")
# Offsets in dB added to the JPEG PSNR per method, so that means are known exactly.
GAIN = {"jpeg": 0.0, "fbcnn": 1.0, "fbcnn-d": 1.5, "fbcnn-a": 2.0, "qcn": 0.5, "qcn-d": 0.75, "qgcn": 0.6,
        "qgcn-d": 0.85, "ijcn": 0.7, "ijcn-d": 1.25}
ALL_METHODS = tuple(GAIN)


def _qf_source(method: str) -> str:
    """Where each method's QF comes from in evaluate's rows (the table-guided ones read the file's tables)."""
    if method == "jpeg":
        return ""
    if method.endswith("-d"):
        return "dominant"
    return "predicted" if method.startswith("fbcnn") else "tables"


def make_results(n_per_pair: int = 2, *, methods=METHODS, singles=(10, 30, 50), seed: int = 0) -> pd.DataFrame:
    """Rows like evaluate()'s: PSNR = 25 + qf2/10 + gain + noise with zero mean per pair."""
    rng = np.random.default_rng(seed)
    rows = []
    k = 0
    specs = [(q1, q2, False, (4, 4)) for q1, q2 in PAIRS] + [(30, 50, True, (0, 0))] + [(q, -1, True, (0, 0)) for q in singles]
    for q1, q2, aligned, shift in specs:
        noise = rng.normal(size=n_per_pair)
        noise -= noise.mean()
        for i in range(n_per_pair):
            sid = f"s{k:04d}"
            k += 1
            n_jpeg = 1 if q2 < 0 else 2
            regime = "single" if n_jpeg == 1 else ("complex" if (not aligned and q1 <= q2) else "simple")
            dominant = q1 if q2 < 0 else min(q1, q2)
            last = q1 if q2 < 0 else q2
            for m in methods:
                base = 25 + last / 10 + noise[i]
                rows.append(dict(
                    sample_id=sid, method=m, source="synthetic", color="gray", qf1=q1, qf2=q2,
                    shift_dy=shift[0], shift_dx=shift[1], aligned=aligned, regime=regime,
                    dominant_qf=dominant, n_jpeg=n_jpeg, encoder="libjpeg-turbo", encoder_version="3.0", width=252, height=252,
                    psnr=base + GAIN[m], ssim=0.8 + GAIN[m] / 100, psnrb=base - 1 + GAIN[m],
                    qf_predicted=float(last) if m.startswith("fbcnn") else np.nan,
                    qf_used=np.nan if m == "jpeg" else float(last if not m.endswith("-d") else dominant),
                    qf_source=_qf_source(m),
                    qf_estimated=float(dominant), qf_estimate_verdict="double", qf_estimate_confidence=0.9, qf_last_tables=last, seconds=0.01, device="cpu",
                    weights="" if m == "jpeg" else f"{m}.pt", weights_sha256="" if m == "jpeg" else "abcdef012345",
                    weights_shipped=m != "jpeg", conventions="test", jpegbench_version="0.1.0",
                ))
    return pd.DataFrame(rows)


def make_image(height: int, width: int, *, seed: int = 0) -> np.ndarray:
    """A textured uint8 gray image: smooth gradients, an edge and mild noise (JPEG-like content)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    base = 128 + 60 * np.sin(xx / 7.0 + seed) * np.cos(yy / 11.0) + 30 * (xx > width / 2)
    return np.clip(np.round(base + rng.normal(0, 8, base.shape)), 0, 255).astype(np.uint8)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture
def image_factory():
    return make_image


@pytest.fixture
def results_factory():
    return make_results


@pytest.fixture
def results() -> pd.DataFrame:
    return make_results()
