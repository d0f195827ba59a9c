"""Evaluation: restore every sample of a corpus with each method, score it, and keep the results file.

* :mod:`~jpegbench.evaluate.results`: the results table's schema
  (:data:`RESULT_COLUMNS`) and its Parquet file (:func:`write_results`,
  :func:`read_results`).
* :mod:`~jpegbench.evaluate.provenance`: what produced a table (software
  versions, recipe and manifest hashes, weights, device).
* :mod:`~jpegbench.evaluate.corpus`: a corpus as evaluation reads it.
* :mod:`~jpegbench.evaluate.runner`: :func:`evaluate`, the resumable
  restore-and-score runner; :mod:`~jpegbench.evaluate.sample`: one sample
  through every method (estimate, restorations, result rows), the unit of
  work of both the local and the Dask paths;
  :mod:`~jpegbench.evaluate.cluster`: batches of samples as Dask tasks.
* :mod:`~jpegbench.evaluate.sidecars`: the example crops and the flexibility
  table next to a results file (:func:`examples_path`, :func:`read_examples`,
  :func:`flexibility_path`).
* :mod:`~jpegbench.evaluate.manual_qf`: :func:`flexibility`, the paper's experiment of restoring with a manual QF.
* :mod:`~jpegbench.evaluate.real_world`: :func:`realworld`, real JPEGs without ground truth restored blind,
  with their dominant QF and with a manual QF (a sidecar of crops and QFs, :func:`read_realworld`).

Layers: this package imports codec, synth, estimate, metrics and models;
:mod:`jpegbench.report` reads its results files (through
:mod:`~jpegbench.evaluate.results` and :mod:`~jpegbench.evaluate.sidecars`
only). The runner and the flexibility experiment, which load models, are
imported on first use, so reading results files never imports them.
"""

from __future__ import annotations

import importlib

from jpegbench.evaluate.provenance import software_versions
from jpegbench.evaluate.results import RESULT_COLUMNS, RESULTS_FORMAT, read_results, write_results
from jpegbench.evaluate.sidecars import examples_path, flexibility_path, read_examples, read_realworld

__all__ = [
    "RESULTS_FORMAT", "RESULT_COLUMNS", "evaluate", "examples_path", "flexibility", "flexibility_path",
    "read_examples", "read_realworld", "read_results", "realworld", "software_versions", "write_results",
]  # fmt: skip

_LAZY = {"evaluate": "jpegbench.evaluate.runner", "flexibility": "jpegbench.evaluate.manual_qf",
         "realworld": "jpegbench.evaluate.real_world"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'jpegbench.evaluate' has no attribute {name!r}")
