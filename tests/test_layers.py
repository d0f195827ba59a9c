"""The package's layers: no module imports a higher layer, and report/ only reads results files.

Layers, lowest first: codec <- synth/estimate/metrics <- models <- evaluate <-
report <- pipeline/cli (errors and the private infrastructure modules at the
top level sit below codec).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "jpegbench"
LEVEL = {
    "errors": 0, "codec": 0,
    "synth": 1, "estimate": 1, "metrics": 1,
    "models": 2, "evaluate": 3, "report": 4, "pipeline": 5, "cli": 5,
}  # fmt: skip


def _imports(path: Path) -> list[str]:
    """Every absolute ``jpegbench.*`` module a file imports, at top level or inside functions."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    return [n for n in out if n.startswith("jpegbench.")]


def _level(name: str) -> int:
    # Private top-level modules (_io, _lock, _fs, ...) are infrastructure below every stage.
    return 0 if name.startswith("_") else LEVEL[name]


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p != PACKAGE / "__init__.py")


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_import_points_up_the_layers(path):
    me = path.relative_to(PACKAGE).with_suffix("").parts[0]
    assert me in LEVEL or me.startswith("_"), f"{me}: a new top-level module or package needs its place in LEVEL"
    up = [n for n in _imports(path) if n.split(".")[1] in LEVEL and _level(n.split(".")[1]) > _level(me)]
    assert not up, f"{path.name} ({me}) imports a higher layer: {up}"


def test_the_checker_sees_an_upward_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from jpegbench.models.methods import METHODS\n")
    assert "jpegbench.models.methods" in _imports(bad)


@pytest.mark.parametrize("path", sorted((PACKAGE / "report").rglob("*.py")), ids=lambda p: p.name)
def test_report_imports_no_model_code_and_not_the_runner(path):
    forbidden = ("jpegbench.models", "jpegbench.evaluate.runner", "jpegbench.evaluate.manual_qf",
                 "jpegbench.evaluate.evaluate", "jpegbench.evaluate.flexibility")  # fmt: skip
    bad = [n for n in _imports(path) if n.startswith(forbidden)]
    assert not bad, f"report/{path.name} imports {bad}"


def test_reading_and_rendering_results_loads_no_model_code():
    code = (
        "import sys, jpegbench.report, jpegbench.report.figures, jpegbench.evaluate as e\n"
        "e.read_results, e.read_examples, e.flexibility_path\n"
        "print(sorted(m for m in sys.modules if m.startswith(('jpegbench.models', 'jpegbench.evaluate.runner',"
        " 'jpegbench.evaluate.manual_qf', 'jpegbench.pipeline', 'torch'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


MAX_LINES = 700  # issue 14: a module past ~500 lines is usually two; none may pass 700


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_longer_than_700_lines(path):
    n = len(path.read_text(encoding="utf-8").splitlines())
    assert n <= MAX_LINES, f"{path.relative_to(PACKAGE)} has {n} lines (> {MAX_LINES}): split it"
