"""Fixtures of the hardening suite: an in-process CLI runner with the error contract, tiny corpora and weights.

The CLI runs in-process (``jpegbench.cli.main``) with ``capsys``: an
uncaught exception (a traceback) fails the test by itself, and the
catch-all's ``internal error:`` line (a bug, not bad input) is refused by
:meth:`CliResult.assert_error`.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from jpegbench.cli import main

from .cases import base_gray, base_rgb


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    # 2 shared cores: more torch threads only add contention.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    # No user configuration leaks into the cases; outputs land under tmp_path.
    for var in ("JPEGBENCH_MAX_PIXELS", "JPEGBENCH_MAX_FILE_BYTES", "JPEGBENCH_WEIGHTS_DIR", "JPEGBENCH_DEBUG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def _lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]

    def assert_error(self, pattern: str) -> str:
        """Exit 2 and exactly one stderr line ``error: ...`` matching ``pattern`` (not an internal error)."""
        import re

        lines = self._lines()
        assert self.code == 2, f"exit {self.code}, stderr:\n{self.err}"
        assert len(lines) == 1 and lines[0].startswith("error: "), f"not one error line:\n{self.err}"
        assert not lines[0].startswith("error: internal error"), f"a bug, not a refusal:\n{self.err}"
        assert "Traceback" not in self.err
        assert re.search(pattern, lines[0]), f"{pattern!r} not in {lines[0]!r}"
        return lines[0]

    def assert_skipped(self, skipped: dict[str, str], *, skip_bad: bool = False) -> None:
        """The batch summary lists exactly ``skipped`` (path -> reason regex); exit 1 (0 with --skip-bad)."""
        import re

        lines = self._lines()
        assert self.code == (0 if skip_bad else 1), f"exit {self.code}, stderr:\n{self.err}"
        assert lines[0] == f"skipped {len(skipped)} input(s):", self.err
        listed = dict(line.strip().split(": ", 1) for line in lines[1:])
        assert set(listed) == set(skipped), self.err
        for path, pattern in skipped.items():
            assert re.search(pattern, listed[path]), f"{pattern!r} not in {listed[path]!r}"
        assert all(": " in line and "\n" not in line for line in lines[1:])
        assert "Traceback" not in self.err and "internal error" not in self.err


@pytest.fixture
def cli(capsys):
    """``cli(*argv) -> CliResult``: run ``jpegbench`` in this process."""

    def run(*argv: object) -> CliResult:
        capsys.readouterr()
        code = main([str(a) for a in argv])
        cap = capsys.readouterr()
        return CliResult(code, cap.out, cap.err)

    return run


def part_files(root: Path) -> list[Path]:
    """Temporary files an interrupted atomic write would leave."""
    return sorted(p for p in Path(root).rglob("*") if p.name.endswith(".part") or ".part" in p.suffixes)


@pytest.fixture
def good_files(tmp_path):
    """``good_files(n, folder="good")``: n textured 40x48 PNGs (gray)."""
    from jpegbench.codec import write_png

    def make(n: int = 1, folder: str = "good", *, color: str = "gray") -> list[Path]:
        d = tmp_path / folder
        d.mkdir(exist_ok=True)
        paths = []
        for i in range(n):
            p = d / f"good{i}.png"
            write_png(p, base_gray(seed=i + 1) if color == "gray" else base_rgb(seed=i + 1))
            paths.append(p)
        return paths

    return make


RECIPE = """\
name = "hardening"
color = "gray"
[source]
path = "{source}"
[[stages]]
op = "crop"
size = [8, 8]
[[stages]]
op = "jpeg"
qf = 50
"""


@pytest.fixture
def recipe(tmp_path):
    """``recipe(source, text=RECIPE) -> path``: a tiny synth recipe (crop 8x8, JPEG QF 50)."""

    def write(source: Path | str = "src", text: str = RECIPE, name: str = "recipe.toml") -> Path:
        p = tmp_path / name
        p.write_text(text.format(source=str(source)))
        return p

    return write


TRAIN_CONFIG = """\
name = "hardening"
[model]
nc = [8, 16, 16, 16]
nb = 1
[data]
train_dir = "{train_dir}"
val_count = 1
patch_size = 16
batch_size = 2
[optim]
steps = 2
milestones = []
[train]
log_every = 1
val_every = 2
checkpoint_every = 2
[val]
val_qfs = [20]
val_crop = 0
"""


@pytest.fixture
def train_config(tmp_path):
    """``train_config(train_dir, text=TRAIN_CONFIG) -> path``: a 2-step tiny training config."""

    def write(train_dir: Path | str, text: str = TRAIN_CONFIG, name: str = "train.toml") -> Path:
        p = tmp_path / name
        p.write_text(text.format(train_dir=str(train_dir)))
        return p

    return write


@pytest.fixture(scope="session")
def _corpus_and_results(tmp_path_factory):
    """One tiny corpus (2 images, QF 50) and its ``jpeg`` results, made once per session."""
    from jpegbench.codec import write_png
    from jpegbench.evaluate import evaluate
    from jpegbench.synth import load_recipe, synthesize

    root = tmp_path_factory.mktemp("corpus")
    src = root / "src"
    src.mkdir()
    for i in range(2):
        write_png(src / f"img{i}.png", base_gray(seed=i + 1))
    (root / "r.toml").write_text(RECIPE.format(source=src).replace("size = [8, 8]", "size = [16, 16]"))
    corpus = root / "corpus"
    synthesize(load_recipe(root / "r.toml"), corpus, progress=False)
    results = root / "results.parquet"
    evaluate(corpus, methods=["jpeg"], out=results, progress=False)
    return corpus, results


@pytest.fixture
def corpus(tmp_path, _corpus_and_results):
    """A private copy of the session corpus (tests may damage it)."""
    return Path(shutil.copytree(_corpus_and_results[0], tmp_path / "corpus"))


@pytest.fixture
def results(tmp_path, _corpus_and_results):
    """A private copy of the session results file (and its side files)."""
    src = _corpus_and_results[1]
    for p in src.parent.glob(src.stem + "*"):
        if p.is_file():
            shutil.copy(p, tmp_path / p.name)
    return tmp_path / src.name


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    """A valid jpegbench checkpoint of a tiny gray FBCNN (positive control for the weights cases)."""
    from jpegbench.models import FBCNN, save_checkpoint

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = FBCNN(in_nc=1, nc=(8, 16, 16, 16), nb=1)
    return save_checkpoint(model, tmp_path_factory.mktemp("weights") / "tiny.pt")
