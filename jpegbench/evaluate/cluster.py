"""Evaluation's tasks on a Dask cluster: batches of samples scored on workers, rows gathered by the client.

A task is a batch of pending manifest rows. :func:`_evaluate_batch` runs on
a worker: it builds the methods' runners once per worker process
(:func:`jpegbench._cluster.worker_cache`, keyed by the methods, their
weights' sha256, the device and the estimator), scores every sample with
:func:`jpegbench.evaluate.sample.score_sample` (the local path's function)
and returns the rows, plus the images of the example sample. Workers write
nothing but the curve cache (``CORPUS/.cache/curves``, atomic writes keyed
by file hash, so concurrent writers agree); the client alone writes the
results file and its sidecar, as rows arrive, and sorts them, so the table
does not depend on the number of workers or the order tasks finish in.

The corpus and the weight files are read by the workers at the paths the
client sees (absolute): on a real cluster they must be on a shared
filesystem.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from jpegbench.errors import InputError

__all__ = ["evaluate_on_cluster", "worker_devices"]


def worker_devices(client: Any, device: str | None) -> str:
    """The torch device(s) the workers will use for ``device``, checked there before any work (``"cuda"``, ...)."""
    from jpegbench.evaluate.provenance import device_name

    return ", ".join(sorted(set(client.run(device_name, device).values())))


def _runners(opts: Mapping[str, Any]) -> dict[str, Any]:
    from jpegbench._cluster import worker_cache
    from jpegbench.evaluate.sample import build_runner

    def build() -> dict[str, Any]:
        return {m: build_runner(m, weights=opts["weights"][m], weights_dir=opts["weights_dir"], device=opts["device"],
                                estimator=opts["estimator"], color_policy=opts.get("color_policy", "auto"))
                for m in opts["methods"]}  # fmt: skip

    # One entry for the run's methods (not one per method): the cache keeps only a few objects.
    key = ("runner", tuple((m, opts["weights_sha256"][m]) for m in opts["methods"]), opts["device"],
           opts["estimator"], opts.get("color_policy", "auto"))  # fmt: skip
    return worker_cache(key, build)


def _evaluate_batch(batch: Sequence[tuple[dict[str, Any], tuple[str, ...]]], opts: Mapping[str, Any]) -> list[Any]:
    """One Dask task: :func:`~jpegbench.evaluate.sample.score_sample` of each ``(manifest row, methods)``."""
    from jpegbench.codec.limits import limits
    from jpegbench.estimate.cache import CurveCache
    from jpegbench.evaluate.provenance import device_name
    from jpegbench.evaluate.sample import score_sample

    corpus = Path(opts["corpus"])
    with limits(**opts["limits"]):  # a worker does not inherit the client's limits() block
        runners = _runners(opts)
        dev = device_name(opts["device"]) if any(m != "jpeg" for m in opts["methods"]) else "cpu"
        cache = CurveCache(corpus / ".cache" / "curves") if opts["cache_curves"] else None
        return [score_sample(corpus, row, runners, todo, estimator=opts["estimator"], curve_cache=cache, device=dev,
                             weights_info=opts["winfo"], keep_images=str(row["sample_id"]) == opts["example"])
                for row, todo in batch]  # fmt: skip


def evaluate_on_cluster(
    client: Any,
    pending: Sequence[tuple[dict[str, Any], tuple[str, ...]]],
    opts: dict[str, Any],
    bar: Any,
    on_sample: Callable[[Mapping[str, Any], Any], None],
) -> None:
    """Score ``pending`` samples on the cluster; ``on_sample(row, result)`` on the client as each batch arrives.

    ``opts["weights"]`` holds each method's weight file as the client
    resolved it (None for ``jpeg``); a model given in memory cannot be sent.
    """
    from jpegbench._cluster import n_threads, run_tasks
    from jpegbench.codec import default_max_file_bytes, default_max_pixels
    from jpegbench.evaluate.provenance import weights_sha256

    sha, files = {}, {}
    for m, path in opts["weights"].items():
        if path is not None and not Path(path).is_file():
            raise InputError(f"method {m!r}: weights given as an in-memory model cannot be sent to Dask workers; "
                             "pass a weight file")  # fmt: skip
        # weights_info hashed the file already (evaluate's _prepare): its cache, not a second pass over it
        sha[m] = "" if path is None else weights_sha256(path)
        files[m] = None if path is None else str(Path(path).resolve())
    opts = {**opts, "weights": files, "weights_sha256": sha,
            "limits": {"max_pixels": default_max_pixels(), "max_file_bytes": default_max_file_bytes()}}
    # A few batches per worker thread: a killed worker or client loses little, and the last ones finish together.
    size = max(1, min(8, math.ceil(len(pending) / (4 * n_threads(client)))))
    batches = [list(pending[i : i + size]) for i in range(0, len(pending), size)]

    def arrived(i: int, results: list[Any]) -> None:
        for (row, _), result in zip(batches[i], results):
            on_sample(row, result)
        arrived.n += 1
        bar.set_postfix_str(f"{arrived.n}/{len(batches)} tasks", refresh=False)
        bar.update(len(results))

    arrived.n = 0
    run_tasks(client, _evaluate_batch, batches, opts, on_result=arrived)
