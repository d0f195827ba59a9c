"""docs/hardening.md carries the generated table of cases.py verbatim, and the suite is big enough."""

from __future__ import annotations

import os
from pathlib import Path

from .cases import COMMAND_CASES, DOC_BEGIN, DOC_END, IMAGE_CASES, n_distinct_inputs, render_table

DOC = Path(__file__).resolve().parents[2] / "docs" / "hardening.md"


def test_docs_table_is_in_sync():
    text = DOC.read_text()
    head, rest = text.split(DOC_BEGIN + "\n", 1)
    table, tail = rest.split(DOC_END, 1)
    expected = render_table()
    if table != expected and os.environ.get("JPEGBENCH_REGEN_DOCS") == "1":
        DOC.write_text(head + DOC_BEGIN + "\n" + expected + DOC_END + tail)
        table = expected
    assert table == expected, "docs/hardening.md is stale: run the tests with JPEGBENCH_REGEN_DOCS=1"


def test_every_case_id_is_documented():
    text = DOC.read_text()
    for case_id in {c.id for c in IMAGE_CASES} | {c.id for c in COMMAND_CASES}:
        assert f"`{case_id}`" in text, case_id


def test_case_ids_are_unique_per_command():
    assert len({c.id for c in IMAGE_CASES}) == len(IMAGE_CASES)
    assert len({(c.id, c.command) for c in COMMAND_CASES}) == len(COMMAND_CASES)


def test_at_least_30_distinct_bad_inputs():
    assert n_distinct_inputs() >= 30
