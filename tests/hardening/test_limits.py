"""Resource limits: ``--max-pixels`` on every command that decodes images, and the file size limit.

``--max-pixels N`` is a :func:`jpegbench.codec.limits` block around the
command: it overrides ``JPEGBENCH_MAX_PIXELS`` in both directions. Files over
``JPEGBENCH_MAX_FILE_BYTES`` (default 512 MiB) are refused from their size,
before a byte is read; the huge files here are sparse (``truncate``), so
they cost no disk.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from click.testing import CliRunner

from jpegbench.cli import cli
from jpegbench.codec import (
    DEFAULT_MAX_FILE_BYTES,
    DEFAULT_MAX_PIXELS,
    default_max_file_bytes,
    default_max_pixels,
    limits,
    read_header,
    read_image,
)
from jpegbench.errors import ImageTooLargeError, InputError

from .cases import H, W, good_jpeg
from .conftest import part_files
from .test_commands import sparse_file

PIXELS = H * W  # 1920: every test image here is 40x48
LIMIT = 1000

DECODING_COMMANDS = ("synth", "estimate", "restore", "train", "evaluate", "report", "demo")


# -- the flag ------------------------------------------------------------------------------------------------


def _help(name: str) -> str:
    r = CliRunner().invoke(cli, [name, "--help"], prog_name="jpegbench")
    assert r.exit_code == 0, r.output
    return r.stdout


@pytest.mark.parametrize("command", DECODING_COMMANDS)
def test_help_documents_max_pixels(command):
    text = " ".join(_help(command).split())
    assert "--max-pixels N" in text
    assert "overrides $JPEGBENCH_MAX_PIXELS" in text and "$JPEGBENCH_MAX_FILE_BYTES" in text


def test_inspect_has_no_pixel_limit_to_set():
    # inspect decodes no pixels (docs/hardening.md): a --max-pixels there would promise a refusal it never makes.
    assert "--max-pixels" not in _help("inspect")


def _case(command: str, c) -> tuple[list, object]:
    """argv refusing one 40x48 image (``LIMIT`` < 1920 pixels), and what must not exist afterwards."""
    flag = ["--max-pixels", LIMIT]
    if command == "restore":
        (good,) = c.good_files(1)
        out = c.tmp / "out"
        return ["restore", good, "--method", "jpeg", "--out", out, "--quiet", *flag], out / f"{good.stem}.png"
    if command == "estimate":
        path = c.tmp / "in.jpg"
        path.write_bytes(good_jpeg())
        return ["estimate", path, "--out", c.tmp / "qf.csv", "--quiet", *flag], None
    if command == "synth":
        (good,) = c.good_files(1)
        return ["synth", c.recipe(good.parent), "--out", c.tmp / "corpus", "--quiet", *flag], c.tmp / "corpus"
    if command == "train":
        c.good_files(3, "train")
        out = c.tmp / "run"
        return ["train", c.train_config(c.tmp / "train"), "--out", out, "--quiet", "--device", "cpu", *flag], out
    if command == "evaluate":  # the session corpus holds 16x16 crops: 256 pixels
        out = c.tmp / "results.parquet"
        return ["evaluate", c.corpus, "--out", out, "--quiet", "--device", "cpu", "--max-pixels", 100], out
    if command == "demo":
        out = c.tmp / "demo"
        return ["demo", "--out", out, "--quiet", "--device", "cpu", *flag], out / "corpus"
    raise AssertionError(command)


class _Ctx:
    def __init__(self, tmp_path, request):
        self.tmp = tmp_path
        self.request = request

    def __getattr__(self, name):
        return self.request.getfixturevalue(name)


@pytest.mark.parametrize("command", [c for c in DECODING_COMMANDS if c != "report"])
def test_image_over_the_flag_is_refused(command, tmp_path, request, cli, monkeypatch):
    """The flag wins over a permissive environment; the refusal is the command's usual one."""
    monkeypatch.setenv("JPEGBENCH_MAX_PIXELS", str(10**9))
    argv, absent = _case(command, _Ctx(tmp_path, request))
    r = cli(*argv)
    limit = 100 if command == "evaluate" else LIMIT
    if command in ("restore", "estimate"):  # batches: a skip summary, exit 1
        r.assert_skipped({str(argv[1]): f"pixels is over the limit of {limit} " + r"\(raise it with --max-pixels"})
    else:
        line = r.assert_error(f"over the limit of {limit} ")
        if command in ("synth", "demo"):
            assert "recipe key 'source.path'" in line
    if command == "estimate":  # the table is written, without a row for the refused image
        assert str(argv[1]) not in (tmp_path / "qf.csv").read_text()
    if absent is not None:
        assert not absent.exists() or (absent.is_dir() and not any(absent.iterdir())), f"{absent} was written"
    assert not part_files(tmp_path)
    assert default_max_pixels() == 10**9  # the block ended with the command


def test_report_notes_the_figure_it_cannot_draw(tmp_path, cli, corpus, results):
    """report decodes one corpus image only when the results lack the MSE curves: that figure is skipped."""
    from jpegbench.evaluate import examples_path

    examples_path(results).unlink()
    r = cli("report", results, "--corpus", corpus, "--out", tmp_path / "report", "--max-pixels", 100)
    assert r.code == 0, r.err
    md = (tmp_path / "report" / "report.md").read_text()
    assert "cannot compute the MSE curves from the corpus" in md and "over the limit of 100 " in md


def test_flag_raises_a_strict_environment(tmp_path, cli, good_files, monkeypatch):
    monkeypatch.setenv("JPEGBENCH_MAX_PIXELS", "10")
    (good,) = good_files(1)
    r = cli("restore", good, "--method", "jpeg", "--out", tmp_path / "a", "--quiet")
    r.assert_skipped({str(good): "over the limit of 10 "})
    r = cli("restore", good, "--method", "jpeg", "--out", tmp_path / "b", "--quiet", "--max-pixels", PIXELS)
    assert r.code == 0, r.err
    assert (tmp_path / "b" / "good0.png").is_file()
    monkeypatch.setenv("JPEGBENCH_MAX_PIXELS", "lots")  # not even read when the flag is given
    r = cli("restore", good, "--method", "jpeg", "--out", tmp_path / "c", "--quiet", "--max-pixels", PIXELS)
    assert r.code == 0, r.err


def test_flag_reaches_synth_worker_processes(tmp_path, cli, good_files, recipe, monkeypatch):
    """Workers do not inherit a limits() block: synth hands them the parent's limits."""
    monkeypatch.setenv("JPEGBENCH_MAX_PIXELS", str(LIMIT))  # what a worker would read on its own
    good = good_files(2)
    out = tmp_path / "corpus"
    r = cli("synth", recipe(good[0].parent), "--out", out, "--quiet", "--workers", "2", "--max-pixels", PIXELS)
    assert r.code == 0, r.err
    assert (out / "manifest.parquet").is_file()


@pytest.mark.parametrize("value", ["0", "-5"])
def test_non_positive_flag_is_one_line(value, tmp_path, cli, good_files):
    r = cli("restore", good_files(1)[0], "--method", "jpeg", "--out", tmp_path / "out", "--quiet",
            "--max-pixels", value)
    r.assert_error("--max-pixels must be an integer >= 1")
    assert not (tmp_path / "out").exists()


# -- the library block ---------------------------------------------------------------------------------------


def test_limits_block_nests_and_restores(monkeypatch):
    monkeypatch.setenv("JPEGBENCH_MAX_FILE_BYTES", "5000")
    assert (default_max_pixels(), default_max_file_bytes()) == (DEFAULT_MAX_PIXELS, 5000)
    with limits(max_pixels=7):
        with limits(max_file_bytes=9):
            assert (default_max_pixels(), default_max_file_bytes()) == (7, 9)
        assert (default_max_pixels(), default_max_file_bytes()) == (7, 5000)
        with pytest.raises(RuntimeError), limits(max_pixels=3):
            raise RuntimeError("left by an exception")
        assert default_max_pixels() == 7
    assert (default_max_pixels(), default_max_file_bytes()) == (DEFAULT_MAX_PIXELS, 5000)
    monkeypatch.delenv("JPEGBENCH_MAX_FILE_BYTES")
    assert default_max_file_bytes() == DEFAULT_MAX_FILE_BYTES == 512 * 2**20


@pytest.mark.parametrize("kw", [{"max_pixels": 0}, {"max_file_bytes": -1}, {"max_pixels": 2.5}, {"max_pixels": True}])
def test_limits_block_validates(kw):
    with pytest.raises(InputError, match="must be an integer >= 1"), limits(**kw):
        pass


def test_max_file_bytes_from_argument_block_and_environment(tmp_path, monkeypatch):
    data = good_jpeg()
    path = tmp_path / "small.jpg"
    path.write_bytes(data)
    n = len(data)
    assert read_image(path).shape == (H, W, 3)
    with pytest.raises(ImageTooLargeError, match=f"file of {n} bytes is over the limit of {n - 1} bytes"):
        read_image(path, max_file_bytes=n - 1)
    assert read_image(path, max_file_bytes=n).shape == (H, W, 3)  # the limit itself is allowed
    with limits(max_file_bytes=n - 1), pytest.raises(ImageTooLargeError, match="JPEGBENCH_MAX_FILE_BYTES"):
        read_header(path)
    monkeypatch.setenv("JPEGBENCH_MAX_FILE_BYTES", str(n - 1))
    with pytest.raises(ImageTooLargeError):
        read_image(path)
    monkeypatch.setenv("JPEGBENCH_MAX_FILE_BYTES", "lots")
    with pytest.raises(InputError, match="JPEGBENCH_MAX_FILE_BYTES must be an integer"):
        read_image(path)


def test_file_size_limit_in_the_environment_is_one_line(tmp_path, cli, good_files, monkeypatch):
    monkeypatch.setenv("JPEGBENCH_MAX_FILE_BYTES", "100")
    (good,) = good_files(1)
    r = cli("restore", good, "--method", "jpeg", "--out", tmp_path / "out", "--quiet")
    r.assert_skipped({str(good): r"file of \d+ bytes is over the limit of 100 bytes"})
    r = cli("inspect", good)
    r.assert_error("over the limit of 100 bytes")


# -- huge files are refused from their size, not read ---------------------------------------------------------

# VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over fork + exec, so the child would
# report the pytest process's own peak (over 1 GiB once earlier tests have loaded models).
_PEAK = """\
import json, re, sys
from jpegbench.cli import main
codes = [main(argv) for argv in json.loads(sys.argv[1])]
hwm = int(re.search(r"VmHWM:\\s*(\\d+) kB", open("/proc/self/status").read()).group(1)) * 1024
print(json.dumps({"codes": codes, "peak_rss_bytes": hwm}))
"""


def test_huge_files_are_refused_without_being_read(tmp_path, good_files, recipe, train_config):
    """A 2 GiB file named .jpg through every kind of reader, in one subprocess whose peak memory is measured.

    Reading the file whole would take the peak resident set over 2 GiB; the
    commands (torch imported, a tiny training set) stay far below.
    """
    size = 2 * 2**30
    huge = sparse_file(tmp_path / "huge.jpg", size)
    good_files(3, "train")
    sparse_file(tmp_path / "train" / "z-huge.jpg", size)  # sorted last: the validation image
    argvs = [
        ["inspect", huge],
        ["estimate", huge, "--quiet"],
        ["restore", huge, "--method", "jpeg", "--out", tmp_path / "out", "--quiet"],
        ["synth", recipe(huge), "--out", tmp_path / "corpus", "--quiet"],
        ["train", train_config(tmp_path / "train"), "--out", tmp_path / "run", "--quiet", "--device", "cpu"],
    ]
    argvs = [[str(a) for a in argv] for argv in argvs]
    done = subprocess.run([sys.executable, "-c", _PEAK, json.dumps(argvs)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["codes"] == [2, 1, 1, 2, 2], done.stderr
    message = f"file of {size} bytes is over the limit of {DEFAULT_MAX_FILE_BYTES} bytes"
    assert done.stderr.count(message) == 5, done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    assert report["peak_rss_bytes"] < size // 2, f"peak RSS {report['peak_rss_bytes'] / 2**20:.0f} MiB"
    assert not (tmp_path / "out" / "huge.png").exists() and not (tmp_path / "corpus").exists()
    assert not part_files(tmp_path)


@pytest.mark.parametrize("kind", ["recipe", "config"])
def test_huge_toml_files_are_refused_from_their_size(tmp_path, kind):
    """A 2 GiB (sparse) recipe or training config: refused on its size; at most MAX_TOML_BYTES + 1 is ever read."""
    from jpegbench._config import MAX_TOML_BYTES
    from jpegbench.errors import ConfigError
    from jpegbench.models.training import load_config
    from jpegbench.synth import load_recipe

    size = 2 * 2**30
    path = sparse_file(tmp_path / f"{kind}.toml", size)
    with pytest.raises(ConfigError, match=f"file of {size} bytes is over the limit of {MAX_TOML_BYTES} bytes"):
        (load_recipe if kind == "recipe" else load_config)(path)
