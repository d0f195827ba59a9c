"""Reports from results files: paper-style tables, figures and the HTML / Markdown report.

* :func:`paper_tables` (Tables 3 and 1/2, one per metric and colour),
  :func:`table3`, :func:`qf_prediction_table`, :func:`qf_source_table`, :func:`estimator_accuracy`,
  :func:`single_jpeg_table`, :func:`write_tables`: pandas tables in the
  layout of the FBCNN paper, with its printed values side by side
  (:mod:`~jpegbench.report.published`).
* :mod:`~jpegbench.report.figures`: QF heatmaps, PSNR gains, MSE curves,
  flexibility, before/after crops.
* :func:`build_report`: one self-contained ``report.html`` (+ Markdown).

This layer only reads results files (:func:`jpegbench.evaluate.read_results`
and the sidecars next to them) and renders them; it imports no model code
and not the evaluation runner. Making results is :mod:`jpegbench.evaluate`'s
job; running every stage is :mod:`jpegbench.pipeline`'s.
"""

from __future__ import annotations

from jpegbench.report.html import SECTIONS, build_report
from jpegbench.report.tables import (
    estimator_accuracy,
    paper_tables,
    qf_prediction_table,
    qf_source_table,
    single_jpeg_table,
    table3,
)
from jpegbench.report.formatting import compact_table, to_latex, to_markdown, write_tables

__all__ = [
    "SECTIONS", "build_report", "compact_table", "estimator_accuracy", "paper_tables", "qf_prediction_table",
    "qf_source_table", "single_jpeg_table", "table3", "to_latex", "to_markdown", "write_tables",
]  # fmt: skip
