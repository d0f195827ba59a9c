"""The robust estimator's thresholds are the output of ``scripts/calibrate_robust.py``, not numbers set by hand.

The calibration itself (300 BSDS500 chains, minutes of CPU) is not run here:
``python scripts/calibrate_robust.py --check`` re-derives everything and
compares. These tests hold the code's defaults equal to the committed output
and check the separation rule the script uses.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import math
from pathlib import Path

import pytest

from jpegbench.estimate import robust_estimate

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "calibrate_robust.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("calibrate_robust", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_code_defaults_equal_the_committed_calibration(script):
    committed = json.loads(script.OUT.read_text())["constants"]
    params = inspect.signature(robust_estimate).parameters
    assert set(committed) == set(script.DERIVED) | set(script.FIXED)
    # every numeric parameter of the estimator is calibrated or fixed by design, none forgotten
    assert set(committed) == {k for k, p in params.items() if p.default is not inspect.Parameter.empty}
    for name, value in committed.items():
        assert math.isclose(params[name].default, value, rel_tol=1e-12), (
            f"robust_estimate's {name} = {params[name].default!r}, the calibration says {value!r}; "
            "rerun scripts/calibrate_robust.py (README) and use its numbers"
        )
    assert script.code_defaults() == {k: params[k].default for k in committed}


def test_evidence_is_consistent_with_the_thresholds(script):
    """Each derived threshold lies in the interval its recorded scores allow."""
    result = json.loads(script.OUT.read_text())
    for name in ("last_margin", "z_threshold", "prominence_threshold", "lattice_fraction"):
        lo, hi = result["evidence"][name]["interval"]
        assert lo < result["constants"][name] <= hi, name


def test_separation_rule(script):
    # separable: the midpoint of the gap, short but still inside it
    assert script.separate([1.0, 2.0, 6.4], [7.9, 9.0])[0] == 7.2
    assert script.separate([0.2, 0.47], [0.84, 0.9])[0] == 0.66
    assert script.separate([2.0433], [2.0447])[0] == 2.044  # more digits where the gap is narrow
    # overlapping: the least balanced error (here one positive below every negative is given up)
    t, info = script.separate([0.1, 0.2], [0.0, 0.9, 1.0])
    assert info["balanced_error"] == pytest.approx(1 / 3) and 0.2 < t <= 0.9
    # an empty class (a --quick run) gives NaN, never a number
    assert math.isnan(script.separate([], [1.0])[0])
