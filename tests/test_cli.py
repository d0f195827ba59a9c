"""The CLI shell: help, version, inspect, and the one-line error contract."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from jpegbench import __version__
from jpegbench.cli import main
from jpegbench.codec import encode


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jpegbench.cli", *args], capture_output=True, text=True)


def test_help_lists_commands():
    r = run_cli("--help")
    assert r.returncode == 0
    assert "inspect" in r.stdout


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert __version__ in capsys.readouterr().out


@pytest.fixture
def jpeg_file(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (40, 56), dtype=np.uint8)
    p = tmp_path / "a.jpg"
    p.write_bytes(encode(x, 37))
    return p


def test_inspect_json(jpeg_file, capsys):
    assert main(["inspect", str(jpeg_file), "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)[0]
    assert (rec["width"], rec["height"], rec["qf"], rec["qf_kind"]) == (56, 40, 37, "exact")
    assert rec["color"] == "gray" and rec["mode"] == "baseline"
    assert len(rec["qtables"]) == 1 and len(rec["qtables"][0]) == 8


@pytest.mark.parametrize(
    "content",
    [b"", b"hello, not a jpeg", None],
    ids=["empty", "text", "missing"],
)
def test_inspect_bad_input_one_line(tmp_path, content, jpeg_file):
    p = tmp_path / "bad.jpg"
    if content is not None:
        p.write_bytes(content)
    r = run_cli("inspect", str(p))
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("cut", [2, 100, 0.5])
def test_inspect_truncated(tmp_path, jpeg_file, cut):
    data = jpeg_file.read_bytes()
    n = int(len(data) * cut) if isinstance(cut, float) else cut
    p = tmp_path / "cut.jpg"
    p.write_bytes(data[:n])
    r = run_cli("inspect", str(p))
    assert r.returncode != 0 and r.stderr.startswith("error: ") and "Traceback" not in r.stderr


def test_inspect_batch_keeps_good_files(tmp_path, jpeg_file):
    bad = tmp_path / "bad.jpg"
    bad.write_text("nope")
    r = run_cli("inspect", str(jpeg_file), str(bad), "--no-tables")
    assert r.returncode == 1
    assert "QF 37 (exact)" in r.stdout
    assert "skipped 1 input" in r.stderr
    assert run_cli("inspect", str(jpeg_file), str(bad), "--skip-bad").returncode == 0


def test_inspect_real_files(shared_dir):
    files = sorted((shared_dir / "data" / "Real").glob("*.jpg"))
    assert len(files) == 6
    r = run_cli("inspect", *map(str, files), "--json")
    assert r.returncode == 0, r.stderr
    recs = json.loads(r.stdout)
    assert [rec["path"] for rec in recs] == list(map(str, files))
    for rec in recs:
        assert rec["width"] > 0 and rec["height"] > 0 and 1 <= rec["qf"] <= 100
        assert rec["qf_kind"] in ("exact", "approximate")
