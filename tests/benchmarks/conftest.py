"""Fixtures shared by the benchmarks."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest


@pytest.fixture
def record():
    """``record(key, value)``: add a measured figure to the JSON file ``$JPEGBENCH_BENCH_OUT`` names (if any).

    The acceptance benchmarks (model quality, colour, guided models) write
    what they measured there, so that a model card can be filled from one run.
    """

    def write(key: str, value: object) -> None:
        out = os.environ.get("JPEGBENCH_BENCH_OUT")
        if not out:
            return
        path = Path(out)
        data = json.loads(path.read_text()) if path.is_file() else {}
        data[key] = value
        path.write_text(json.dumps(data, indent=2, sort_keys=True))

    return write
