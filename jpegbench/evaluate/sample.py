"""One corpus sample through every method: its dominant-QF estimate, each restoration, and its result rows.

The evaluation runner calls :func:`score_sample` for every pending sample,
in this process (:func:`jpegbench.evaluate.evaluate`) or in a Dask task
(:mod:`jpegbench.evaluate.cluster`), so a row does not depend on where it
was computed (its ``seconds`` aside).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from jpegbench import __version__
from jpegbench.codec import to_gray
from jpegbench.errors import JpegbenchError
from jpegbench.estimate.cache import CurveCache
from jpegbench.evaluate.corpus import load_sample, n_jpeg
from jpegbench.metrics import METRIC_CONVENTIONS, psnr, psnrb, ssim

__all__ = ["Runner", "SampleResult", "build_runner", "estimate_sample", "score_sample"]


class _CachedEstimate:
    """Hands a ``-d`` method the estimate already computed for the current sample (its ``estimate_fn``)."""

    def __init__(self) -> None:
        self.value: Any = None

    def __call__(self, gray: np.ndarray, *, estimator: str, backend: str) -> Any:
        return self.value


@dataclass
class Runner:
    """A restoration method ready to run, with the per-sample estimate its ``-d`` variant reads."""

    method: Any  # jpegbench.models.methods.Method or GuidedMethod
    estimate: _CachedEstimate = field(default_factory=_CachedEstimate)

    @property
    def reads_file(self) -> bool:
        return bool(getattr(self.method, "reads_file", False))


def build_runner(name: str, *, weights: Any, weights_dir: Any, device: Any, estimator: str,
                 color_policy: str = "auto") -> Runner:
    """:func:`jpegbench.models.get_method` of ``name``, its QF estimate taken from the sample's shared one."""
    from jpegbench.models.methods import get_method

    holder = _CachedEstimate()
    method = get_method(name, weights=weights, weights_dir=weights_dir, device=device, estimator=estimator,
                        estimate_fn=holder, color_policy=color_policy)  # fmt: skip
    return Runner(method, holder)


def estimate_sample(lq: np.ndarray, estimator: str, cache: CurveCache | None = None,
                    lq_sha256: str = "") -> tuple[Any, float]:
    """The estimate for a sample; an image the estimator refuses gets a verdict ``"error: ..."``.

    The seconds returned are those of computing the curves and the estimate,
    also when the curves came from ``cache`` (they took that long once).
    The cache writes atomically, so runs and Dask workers may share it.
    """
    from jpegbench.estimate import estimate_qf

    start = time.perf_counter()
    try:
        hit = cache.get(lq_sha256) if cache is not None else None
        if hit is not None:
            curves, curve_seconds = hit
            start -= curve_seconds
            est = estimate_qf(None, curves=curves, estimator=estimator)
        else:
            est = estimate_qf(to_gray(lq), estimator=estimator, backend="fast")
            if cache is not None and est.curves is not None:
                cache.put(lq_sha256, est.curves, time.perf_counter() - start)
    except JpegbenchError as exc:
        est = f"error: {exc}"
    return est, time.perf_counter() - start


@dataclass
class SampleResult:
    """The new result rows of one sample and, for the example sample, what its sidecar stores."""

    rows: list[dict[str, Any]]
    example: dict[str, Any] | None = None  # lq, hq, crops (method -> restored image), est


def score_sample(
    corpus: Path,
    row: Mapping[str, Any],
    runners: Mapping[str, Runner],
    methods: Sequence[str],
    *,
    estimator: str,
    curve_cache: CurveCache | None,
    device: str,
    weights_info: Mapping[str, Mapping[str, Any]],
    keep_images: bool = False,
) -> SampleResult:
    """Estimate the dominant QF of one sample once, restore it with each of ``methods`` and score each result.

    Parameters
    ----------
    corpus : Path
    row : mapping
        The sample's manifest row.
    runners : mapping of str to Runner
    methods : sequence of str
        The methods still to run on this sample.
    estimator : str
    curve_cache : CurveCache, optional
    device : str
        The torch device of the network methods (recorded in the rows).
    weights_info : mapping
        Per method, the ``weights``, ``weights_sha256``, ``weights_shipped`` columns.
    keep_images : bool
        Return the images the examples sidecar needs (the example sample).

    Raises
    ------
    CorpusError
        A file of the sample is missing or modified.
    """
    lq, hq, qf_tables = load_sample(corpus, row)
    est, est_seconds = estimate_sample(lq, estimator, curve_cache, str(row.get("lq_sha256", "")))
    value = None if isinstance(est, str) else est
    rows, crops = [], {}
    for m in methods:
        runner = runners[m]
        runner.estimate.value = value
        # The table-guided methods read the file (tables, coefficients), the others its pixels.
        res = runner.method(corpus / str(row["lq_path"])) if runner.reads_file else runner.method(lq)
        rows.append(_row(row, m, res, hq, lq, est, qf_tables, est_seconds, device, weights_info[m]))
        if keep_images:
            crops[m] = res.image
    example = {"lq": lq, "hq": hq, "crops": crops, "est": value} if keep_images else None
    return SampleResult(rows, example)


def _float(v: Any) -> float:
    return math.nan if v is None else float(v)


def _row(row, method, res, hq, lq, est, qf_tables, est_seconds, dev, winfo) -> dict[str, Any]:
    img = res.image
    est_verdict = est if isinstance(est, str) else str(getattr(est, "verdict", "") or "")
    # A -d method's time includes the estimate it waited for (computed once per sample, shared).
    seconds = float(res.seconds) + (est_seconds if method.endswith("-d") else 0.0)
    out = {k: row.get(k) for k in ("sample_id", "source", "color", "qf1", "qf2", "shift_dy", "shift_dx", "aligned",
                                   "regime", "dominant_qf", "encoder", "encoder_version")}
    out.update(
        method=method, n_jpeg=n_jpeg(row), width=int(lq.shape[1]), height=int(lq.shape[0]),
        psnr=psnr(hq, img), ssim=ssim(hq, img), psnrb=psnrb(hq, img),
        qf_predicted=_float(res.qf_predicted), qf_used=_float(res.qf_used), qf_source=res.qf_source or "",
        color_path=getattr(res, "color_path", None) or "",
        qf_estimated=_float(getattr(est, "qf_dominant", None)), qf_estimate_verdict=est_verdict,
        qf_estimate_confidence=_float(getattr(est, "confidence", None)),
        qf_last_tables=int(qf_tables), seconds=seconds, device=dev if method != "jpeg" else "cpu",
        conventions=METRIC_CONVENTIONS, jpegbench_version=__version__, **winfo,
    )  # fmt: skip
    return out
