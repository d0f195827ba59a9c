"""The CLI shell: help, version, typed options, inspect, and the one-line error contract.

Most tests run the click group in-process (``CliRunner``), through the same
error handling as the console script; a few run a real process, for the entry
point, its exit status and the absence of a traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
import typing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import jpegbench.cli as jcli
from jpegbench import __version__
from jpegbench.cli import EXIT_ERROR, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, EXIT_SKIPPED, cli, main
from jpegbench.codec import encode
from jpegbench.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ("inspect", "synth", "estimate", "restore", "train", "evaluate", "report", "demo")


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """A real ``python -m jpegbench.cli`` process."""
    return subprocess.run([sys.executable, "-m", "jpegbench.cli", *args], capture_output=True, text=True)


def invoke(*args: object):
    """In-process: ``result.exit_code``, ``.stdout``, ``.stderr``."""
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="jpegbench")


def one_error_line(r, pattern: str = "") -> str:
    """Exit 2 and exactly one stderr line ``error: ...`` (containing ``pattern``)."""
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == EXIT_ERROR, (r.exit_code, r.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr
    assert pattern in lines[0], (pattern, lines[0])
    return lines[0]


@pytest.fixture
def jpeg_file(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (40, 56), dtype=np.uint8)
    p = tmp_path / "a.jpg"
    p.write_bytes(encode(x, 37))
    return p


# -- help, version, entry point --------------------------------------------------------------------------------


def test_help_lists_the_commands_in_stage_order():
    r = invoke("--help")
    assert r.exit_code == 0
    listed = [line.split()[0] for line in r.stdout.split("Commands:")[1].strip().splitlines()[: len(COMMANDS)]]
    assert listed == list(COMMANDS)
    assert "Exit status" in r.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    r = invoke(command, "--help")
    assert r.exit_code == 0 and r.stdout.startswith(f"Usage: jpegbench {command} ")
    assert "-h, --help" in r.stdout


def test_no_command_prints_help_and_exits_2():
    r = invoke()
    assert r.exit_code == EXIT_ERROR and "Commands:" in r.stdout


def test_version(capsys):
    assert main(["--version"]) == EXIT_OK
    assert capsys.readouterr().out == f"jpegbench {__version__}\n"


def test_real_process_help_and_version():
    r = run_cli("--help")
    assert r.returncode == 0 and "inspect" in r.stdout
    r = run_cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"jpegbench {__version__}"


def test_console_script_is_main():
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"jpegbench": "jpegbench.cli:main"}


def test_help_does_not_import_torch():
    """Heavy modules load inside the commands: ``--help`` (of the group and of a command) stays fast."""
    code = ("import sys; from jpegbench.cli import main; "
            "codes = [main(a) for a in (['--help'], ['restore', '--help'], ['evaluate', '--help'])]; "
            "assert codes == [0, 0, 0], codes; assert 'torch' not in sys.modules, 'torch imported'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_choices_are_the_registries():
    """The CLI repeats the registries' names (importing them would load torch); they must stay equal."""
    from jpegbench.estimate.api import ESTIMATORS
    from jpegbench.estimate.curves import CurveBackend
    from jpegbench.models.methods import METHODS
    from jpegbench.models.weights import COLOR_CHOICES

    assert jcli.METHODS == METHODS
    assert jcli.COLOR_CHOICES == COLOR_CHOICES
    assert jcli.ESTIMATORS == tuple(ESTIMATORS)
    assert set(jcli.BACKENDS) == set(typing.get_args(CurveBackend))


# -- usage errors: one line, exit 2 ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, pattern",
    [
        (["inspect"], "Missing argument 'FILE...'"),
        (["inspect", "x.jpg", "--frobnicate"], "No such option '--frobnicate'"),
        (["frobnicate"], "No such command 'frobnicate'"),
        (["restore", "x.jpg"], "Missing option '--out'"),
        (["synth", "r.toml", "--workers", "two"], "'two' is not a valid integer"),
        (["restore", "x.jpg", "--out", "o", "--qf"], "Option '--qf' requires an argument"),
    ],
)
def test_usage_error_is_one_line(argv, pattern):
    line = one_error_line(invoke(*argv), pattern)
    assert line.endswith("--help')")  # points to the command's help


def test_real_process_usage_error():
    r = run_cli("inspect", "--frobnicate")
    assert r.returncode == EXIT_ERROR and "Traceback" not in r.stderr
    assert r.stderr.splitlines() == ["error: No such option '--frobnicate' (see 'jpegbench inspect --help')"]
    assert r.stdout == ""


# -- typed options: refused while parsing, in the library's words ------------------------------------------------

REFUSALS = [
    (["estimate", "x.jpg", "--estimator", "nope"], "estimator must be one of ('robust', 'paper'), got 'nope'"),
    (["estimate", "x.jpg", "--backend", "slow"], "backend must be one of ('fast', 'reference'), got 'slow'"),
    (["estimate", "x.jpg", "--out", "qf.txt"], "--out must end in .parquet or .csv, got qf.txt"),
    (["estimate", "x.jpg", "--device", "gpu"], "device must be like 'cpu', 'cuda' or 'cuda:1', got 'gpu'"),
    (["restore", "x.jpg", "--out", "o", "--method", "fbcnn-x"],
     "unknown method 'fbcnn-x'; valid methods: jpeg, fbcnn, fbcnn-d, fbcnn-a"),
    (["restore", "x.jpg", "--out", "o", "--qf", "0.5"], "--qf must be in 1..100, got 0.5"),
    (["restore", "x.jpg", "--out", "o", "--tile", "8"], "tile must be a multiple of 8 and at least 16 pixels, got 8"),
    (["restore", "x.jpg", "--out", "o", "--tile", "100"], "tile must be a multiple of 8 and at least 16 pixels"),
    (["restore", "x.jpg", "--out", "o", "--max-pixels", "0"], "--max-pixels must be an integer >= 1, got 0"),
    (["synth", "r.toml", "--workers", "0"], "--workers must be >= 1, got 0"),
    (["synth", "r.toml", "--seed", "-1"], "seed override must be an integer >= 0, got -1"),
    (["evaluate", "c", "--methods", "jpeg,nope"], "unknown method 'nope'; valid methods:"),
    (["evaluate", "c", "--methods", " , "], "methods must name at least one method"),
    (["evaluate", "c", "--weights", "fbcnn"], "--weights expects METHOD=PATH, got 'fbcnn'"),
    (["evaluate", "c", "--weights", "=w.pth"], "--weights expects METHOD=PATH"),
    (["evaluate", "c", "--weights", "jpeg=w.pth"], "weights given for 'jpeg', which has none"),
    (["train", "t.toml", "--out", "o", "--device", "cuda:x"], "device must be like"),
]


@pytest.mark.parametrize("argv, message", REFUSALS, ids=[" ".join(a[:1] + a[-2:]) for a, _ in REFUSALS])
def test_refused_value_is_one_line_before_any_work(argv, message, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    line = one_error_line(invoke(*argv))
    assert line == f"error: {message}" or line.startswith(f"error: {message}")
    assert list(tmp_path.iterdir()) == []  # nothing read or written: the command never ran


@pytest.fixture
def evaluate_calls(monkeypatch):
    """Replace the library's ``evaluate`` with a recorder (the CLI imports it when it runs)."""
    import jpegbench.evaluate

    calls = []

    def fake(corpus, **kw):
        calls.append({"corpus": corpus, **kw})
        return pd.DataFrame({"method": ["jpeg"], "psnr": [30.0], "ssim": [0.9], "psnrb": [29.0]})

    monkeypatch.setattr(jpegbench.evaluate, "evaluate", fake)
    return calls


def test_methods_comma_list_and_repetition(evaluate_calls, tmp_path):
    r = invoke("evaluate", tmp_path, "--methods", "jpeg, fbcnn", "--methods", "fbcnn-d", "--device", "cuda:1",
               "--weights", "fbcnn=a.pth", "--weights", "fbcnn-d = b.pth", "--weights", "fbcnn=c.pth")
    assert r.exit_code == 0, r.stderr
    (call,) = evaluate_calls
    assert call["methods"] == ["jpeg", "fbcnn", "fbcnn-d"]
    assert call["weights"] == {"fbcnn": "c.pth", "fbcnn-d": "b.pth"}  # the last one given wins
    assert call["device"] == "cuda:1" and call["estimator"] == "robust"
    assert call["out"] == tmp_path / "results.parquet"
    assert f"wrote 1 rows to {tmp_path / 'results.parquet'}" in r.stdout


def test_evaluate_defaults(evaluate_calls, tmp_path):
    assert invoke("evaluate", tmp_path, "--out", tmp_path / "r.parquet", "--quiet").exit_code == 0
    (call,) = evaluate_calls
    assert call["methods"] == ["jpeg"] and call["weights"] is None and call["device"] is None
    assert (call["progress"], call["resume"], call["cache_curves"]) == (False, True, True)
    assert call["out"] == tmp_path / "r.parquet"


def test_restore_passes_typed_values(monkeypatch, tmp_path):
    import jpegbench.models

    seen = {}

    def fake(inputs, out, **kw):
        from jpegbench.codec import default_max_pixels

        seen.update(inputs=inputs, out=out, max_pixels=default_max_pixels(), **kw)
        raise ConfigError("stop here")

    monkeypatch.setattr(jpegbench.models, "restore_files", fake)
    r = invoke("restore", "a.jpg", "b", "--out", tmp_path, "--qf", "37.5", "--tile", "64", "--method", "fbcnn-d",
               "--estimator", "paper", "--max-pixels", "5000")
    one_error_line(r, "stop here")
    assert seen["inputs"] == ["a.jpg", "b"] and seen["out"] == str(tmp_path)
    assert (seen["qf"], seen["tile"], seen["method"], seen["estimator"]) == (37.5, 64, "fbcnn-d", "paper")
    assert seen["max_pixels"] == 5000  # the command ran inside the --max-pixels block


def test_synth_starts_the_workers_before_loading_the_recipe(monkeypatch, tmp_path):
    """The fork server boots while the recipe's sources are hashed (a92d003): keep the order."""
    import jpegbench.synth
    import jpegbench.synth.corpus

    order = []
    monkeypatch.setattr(jpegbench.synth.corpus, "start_workers_early", lambda n: order.append(("workers", n)))

    def load(path, **kw):
        order.append(("recipe", path, kw))
        raise ConfigError("stop here")

    monkeypatch.setattr(jpegbench.synth, "load_recipe", load)
    one_error_line(invoke("synth", "r.toml", "--workers", "3", "--seed", "7"), "stop here")
    assert order == [("workers", 3), ("recipe", "r.toml", {"source": None, "seed": 7})]


# -- the error contract --------------------------------------------------------------------------------------


def test_bug_is_one_internal_error_line(monkeypatch, jpeg_file):
    import jpegbench.codec

    def boom(*a, **kw):
        raise RuntimeError("boom")

    monkeypatch.setattr(jpegbench.codec, "inspect_jpeg", boom)
    monkeypatch.delenv("JPEGBENCH_DEBUG", raising=False)
    r = invoke("inspect", jpeg_file)
    assert r.exit_code == EXIT_INTERNAL
    assert r.stderr == "error: internal error: RuntimeError: boom (set JPEGBENCH_DEBUG=1 for the traceback)\n"
    monkeypatch.setenv("JPEGBENCH_DEBUG", "1")
    with pytest.raises(RuntimeError, match="boom"):
        main(["inspect", str(jpeg_file)])


def test_interrupt_exits_130(monkeypatch, jpeg_file, capsys):
    import jpegbench.codec

    def interrupted(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(jpegbench.codec, "inspect_jpeg", interrupted)
    assert main(["inspect", str(jpeg_file)]) == EXIT_INTERRUPTED
    assert capsys.readouterr().err.strip() == "error: interrupted"


# -- inspect -------------------------------------------------------------------------------------------------


def test_inspect_json(jpeg_file):
    r = invoke("inspect", jpeg_file, "--json")
    assert r.exit_code == 0
    rec = json.loads(r.stdout)[0]
    assert (rec["width"], rec["height"], rec["qf"], rec["qf_kind"]) == (56, 40, 37, "exact")
    assert rec["color"] == "gray" and rec["mode"] == "baseline"
    assert len(rec["qtables"]) == 1 and len(rec["qtables"][0]) == 8


def test_inspect_text(jpeg_file):
    r = invoke("inspect", jpeg_file)
    assert r.exit_code == 0
    head, luma = r.stdout.splitlines()[:2]
    assert head.startswith(f"{jpeg_file}: 56x40 gray") and head.endswith("QF 37 (exact)")
    assert luma.startswith("  luma ")


@pytest.mark.parametrize(
    "content",
    [b"", b"hello, not a jpeg", None],
    ids=["empty", "text", "missing"],
)
def test_inspect_bad_input_one_line(tmp_path, content):
    p = tmp_path / "bad.jpg"
    if content is not None:
        p.write_bytes(content)
    one_error_line(invoke("inspect", p), str(p))


def test_real_process_bad_input_one_line(tmp_path):
    p = tmp_path / "bad.jpg"
    p.write_bytes(b"hello, not a jpeg")
    r = run_cli("inspect", str(p))
    assert r.returncode == EXIT_ERROR
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("cut", [2, 100, 0.5])
def test_inspect_truncated(tmp_path, jpeg_file, cut):
    data = jpeg_file.read_bytes()
    n = int(len(data) * cut) if isinstance(cut, float) else cut
    p = tmp_path / "cut.jpg"
    p.write_bytes(data[:n])
    one_error_line(invoke("inspect", p))


def test_inspect_batch_keeps_good_files(tmp_path, jpeg_file):
    bad = tmp_path / "bad.jpg"
    bad.write_text("nope")
    r = invoke("inspect", jpeg_file, bad, "--no-tables")
    assert r.exit_code == EXIT_SKIPPED
    assert "QF 37 (exact)" in r.stdout and "luma" not in r.stdout
    assert r.stderr.splitlines()[0] == "skipped 1 input(s):"
    assert r.stderr.splitlines()[1].startswith(f"  {bad}: ")
    assert invoke("inspect", jpeg_file, bad, "--skip-bad").exit_code == EXIT_OK


def test_real_process_batch_exit_status(tmp_path, jpeg_file):
    bad = tmp_path / "bad.jpg"
    bad.write_text("nope")
    r = run_cli("inspect", str(jpeg_file), str(bad), "--no-tables")
    assert r.returncode == EXIT_SKIPPED and "skipped 1 input" in r.stderr and "Traceback" not in r.stderr
    assert run_cli("inspect", str(jpeg_file), str(bad), "--skip-bad").returncode == EXIT_OK


def test_inspect_real_files(shared_dir):
    files = sorted((shared_dir / "data" / "Real").glob("*.jpg"))
    assert len(files) == 6
    r = invoke("inspect", *files, "--json")
    assert r.exit_code == 0, r.stderr
    recs = json.loads(r.stdout)
    assert [rec["path"] for rec in recs] == list(map(str, files))
    for rec in recs:
        assert rec["width"] > 0 and rec["height"] > 0 and 1 <= rec["qf"] <= 100
        assert rec["qf_kind"] in ("exact", "approximate")
