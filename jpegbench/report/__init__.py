"""Evaluation runner, paper-style tables, figures, the HTML report and the embedded demo.

* :func:`evaluate`: restore every sample of a corpus with each method and
  measure it -> a results table (Parquet, resumable).
* :func:`table3`, :func:`qf_prediction_table`, :func:`estimator_accuracy`,
  :func:`single_jpeg_table`, :func:`write_tables`: pandas tables in the
  layout of the FBCNN paper, with its printed values side by side.
* :mod:`~jpegbench.report.figures`: QF heatmaps, PSNR gains, MSE curves,
  flexibility, before/after crops.
* :func:`build_report`: one self-contained ``report.html`` (+ Markdown).
* :func:`run_demo`: all stages on public-domain images bundled with scikit-image.

This is the top library layer: it imports codec, synth, estimate, metrics and
models; nothing below imports it.
"""

from __future__ import annotations

from jpegbench.report.demo import run_demo
from jpegbench.report.evaluate import (
    RESULT_COLUMNS,
    evaluate,
    examples_path,
    flexibility,
    flexibility_path,
    read_examples,
    read_results,
)
from jpegbench.report.html import SECTIONS, build_report
from jpegbench.report.tables import (
    compact_table,
    estimator_accuracy,
    qf_prediction_table,
    single_jpeg_table,
    table3,
    to_latex,
    to_markdown,
    write_tables,
)

__all__ = [
    "RESULT_COLUMNS", "SECTIONS", "build_report", "compact_table", "estimator_accuracy", "evaluate",
    "examples_path", "flexibility", "flexibility_path", "qf_prediction_table", "read_examples", "read_results",
    "run_demo", "single_jpeg_table", "table3", "to_latex", "to_markdown", "write_tables",
]  # fmt: skip
