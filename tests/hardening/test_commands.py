"""cases.COMMAND_CASES: bad paths, outputs, recipes, configs, arguments and weights, one command each.

Every case must end in one ``error: ...`` line matching its pattern, exit 2,
no traceback, no internal error, and no output left behind.
"""

from __future__ import annotations

import contextlib
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
import torch

from jpegbench.codec import encode

from .cases import COMMAND_CASES, TOML_LIMIT, base_gray
from .conftest import RECIPE, TRAIN_CONFIG, part_files


class TouchOnUnpickle:
    """A pickle payload: unpickling it calls ``open(marker, "w")``, which creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def evil_checkpoint(path: Path, marker: Path) -> Path:
    torch.save({"m_head.weight": TouchOnUnpickle(marker)}, path)
    return path


def non_finite_checkpoint(path: Path, value: float) -> Path:
    from jpegbench.models import FBCNN

    sd = FBCNN(in_nc=1, nc=(8, 16, 16, 16), nb=1).state_dict()
    sd["m_down1.0.res.0.weight"][0, 0, 0, 0] = value
    torch.save(sd, path)
    return path


def sparse_file(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        f.truncate(size)  # no blocks on disk: a "huge" file in no time
    return path


@dataclass
class Setup:
    """What a case needs: argv, folders that must stay empty or absent, a context to run in."""

    argv: list
    untouched: list[Path] = field(default_factory=list)
    unchanged: dict[Path, bytes] = field(default_factory=dict)  # files whose bytes must stay the same
    context: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext


class Ctx:
    def __init__(self, tmp_path: Path, request: pytest.FixtureRequest) -> None:
        self.tmp = tmp_path
        self.request = request
        self.out = tmp_path / "out"
        self.pwned = tmp_path / "pwned"  # what a pickle payload would create

    def fixture(self, name: str):
        return self.request.getfixturevalue(name)

    def good(self) -> Path:
        return self.fixture("good_files")(1)[0]

    def file(self, name: str, data: bytes | str = b"x") -> Path:
        p = self.tmp / name
        p.write_bytes(data.encode() if isinstance(data, str) else data)
        return p

    def empty_dir(self) -> Path:
        d = self.tmp / "empty"
        d.mkdir()
        return d

    def under_file(self, *rest: str) -> Path:
        return Path(self.file("afile", "a regular file"), "sub", *rest)

    def recipe(self, text: str = RECIPE, source: Path | str | None = None) -> Path:
        src = source if source is not None else self.good().parent
        return self.fixture("recipe")(src, text=text)

    def train_config(self, text: str = TRAIN_CONFIG, train_dir: Path | None = None) -> Path:
        if train_dir is None:
            self.fixture("good_files")(3, "train")
            train_dir = self.tmp / "train"
        return self.fixture("train_config")(train_dir, text=text)

    def restore(self, *extra: object, inputs: tuple = ()) -> Setup:
        argv = ["restore", self.good(), *inputs, "--out", self.out, "--quiet", "--device", "cpu", *extra]
        return Setup(argv, [self.out])

    def weights(self, path: Path) -> Setup:
        return self.restore("--method", "fbcnn", "--weights", path)

    def synth(self, recipe: Path, *extra: object) -> Setup:
        return Setup(["synth", recipe, "--out", self.out, "--quiet", *extra], [self.out])

    def train(self, config: Path, *extra: object) -> Setup:
        return Setup(["train", config, "--out", self.out, "--quiet", "--device", "cpu", *extra], [self.out])

    def evaluate(self, corpus: Path, *extra: object, out: Path | None = None) -> Setup:
        out = out or self.tmp / "results.parquet"
        return Setup(["evaluate", corpus, "--out", out, "--quiet", "--device", "cpu", *extra], [out])

    def estimate(self, *inputs: object, out: Path | None = None, extra: tuple = ()) -> Setup:
        out = out or self.tmp / "qf.csv"
        return Setup(["estimate", *(inputs or (self.good(),)), "--out", out, "--quiet", "--device", "cpu", *extra],
                     [out])

    def report(self, results: Path, out: Path | None = None) -> Setup:
        out = out or self.out
        return Setup(["report", results, "--out", out], [out])


def _restore_onto_inputs(c: Ctx) -> Setup:
    good = c.good()
    return Setup(["restore", good.parent, "--method", "jpeg", "--out", good.parent, "--quiet"],
                 unchanged={good: good.read_bytes()})


def _locked_synth(c: Ctx) -> Setup:
    from jpegbench._lock import DirLock

    c.out.mkdir()
    setup = c.synth(c.recipe())
    setup.untouched = []
    setup.context = lambda: DirLock(c.out)  # held by this (live) process
    return setup


def _locked_evaluate(c: Ctx) -> Setup:
    from jpegbench._lock import DirLock

    results = c.fixture("results")
    setup = c.evaluate(c.fixture("corpus"), out=results)
    setup.untouched = []
    setup.unchanged = {results: results.read_bytes()}
    setup.context = lambda: DirLock.for_file(results)  # held by this (live) process, as by a first evaluate
    return setup


def _padded(text: str) -> str:
    """``text``, still valid TOML, padded with a comment to twice MAX_TOML_BYTES."""
    return text + "#" + "x" * (2 * TOML_LIMIT) + "\n"


def _fifo(c: Ctx, name: str) -> Path:
    p = c.tmp / name
    os.mkfifo(p)  # opening it for reading would block until a writer comes
    return p


def _altered_corpus(c: Ctx) -> Path:
    corpus = c.fixture("corpus")
    lq = sorted((corpus / "lq").rglob("*.jpg"))[0]
    lq.write_bytes(lq.read_bytes()[:-40])
    return corpus


def _garbage_manifest(c: Ctx) -> Path:
    corpus = c.fixture("corpus")
    (corpus / "manifest.parquet").write_text("not parquet at all")
    return corpus


def _foreign_parquet(c: Ctx) -> Path:
    import pandas as pd

    p = c.tmp / "plain.parquet"
    pd.DataFrame({"a": [1, 2]}).to_parquet(p)
    return p


def _truncated_weights(c: Ctx) -> Path:
    data = c.fixture("tiny_weights").read_bytes()
    return c.file("half.pt", data[: len(data) // 2])


def _evil_resume_state(c: Ctx) -> Setup:
    setup = c.train(c.train_config())
    c.out.mkdir()
    evil_checkpoint(c.out / "last.pt", c.pwned)
    setup.untouched = []
    return setup


CONFIG_STEPS_TEN = TRAIN_CONFIG.replace("steps = 2", 'steps = "ten"')
CONFIG_MISSPELT = TRAIN_CONFIG.replace("train_dir =", "trian_dir =")
RECIPE_QF = RECIPE.replace("qf = 50", "qf = {qf}")

SETUPS: dict[tuple[str, str], Callable[[Ctx], Setup]] = {
    ("missing-path", "inspect"): lambda c: Setup(["inspect", c.tmp / "nope.jpg"]),
    ("missing-path", "restore"): lambda c: c.restore("--method", "jpeg", inputs=(c.tmp / "nope.jpg",)),
    ("missing-path", "synth"): lambda c: c.synth(c.recipe(source=c.tmp / "nope")),
    ("missing-path", "evaluate"): lambda c: c.evaluate(c.tmp / "nope"),
    ("missing-path", "report"): lambda c: c.report(c.tmp / "nope.parquet"),
    ("missing-path", "train"): lambda c: c.train(c.tmp / "nope.toml"),
    ("missing-path", "estimate"): lambda c: c.estimate(c.good(), c.tmp / "nope.jpg"),
    ("empty-directory", "estimate"): lambda c: c.estimate(c.good(), c.empty_dir()),
    ("output-under-a-file", "estimate"): lambda c: c.estimate(out=c.under_file("qf.csv")),
    ("bad-output-suffix", "estimate"): lambda c: c.estimate(out=c.tmp / "qf.txt"),
    ("unknown-estimator", "estimate"): lambda c: c.estimate(extra=("--estimator", "nope")),
    ("directory-as-file", "inspect"): lambda c: Setup(["inspect", c.empty_dir()]),
    ("directory-as-file", "report"): lambda c: c.report(c.empty_dir()),
    ("empty-directory", "restore"): lambda c: c.restore("--method", "jpeg", inputs=(c.empty_dir(),)),
    ("empty-directory", "synth"): lambda c: c.synth(c.recipe(source=c.empty_dir())),
    ("empty-directory", "evaluate"): lambda c: c.evaluate(c.empty_dir()),
    ("empty-directory", "train"): lambda c: c.train(c.train_config(train_dir=c.empty_dir())),
    ("device-as-file", "inspect"): lambda c: Setup(["inspect", "/dev/zero"]),
    ("output-under-a-file", "restore"): lambda c: Setup(
        ["restore", c.good(), "--method", "jpeg", "--out", c.under_file(), "--quiet"]),
    ("output-overwrites-input", "restore"): _restore_onto_inputs,
    ("output-under-a-file", "synth"): lambda c: Setup(["synth", c.recipe(), "--out", c.under_file(), "--quiet"]),
    ("output-under-a-file", "train"): lambda c: Setup(
        ["train", c.train_config(), "--out", c.under_file(), "--quiet", "--device", "cpu"]),
    ("output-under-a-file", "evaluate"): lambda c: c.evaluate(c.fixture("corpus"),
                                                              out=c.under_file("results.parquet")),
    ("output-under-a-file", "report"): lambda c: c.report(c.fixture("results"), out=c.under_file()),
    ("recipe-wrong-type", "synth"): lambda c: c.synth(c.recipe(RECIPE_QF.replace("{qf}", '"fifty"'))),
    ("recipe-unknown-key", "synth"): lambda c: c.synth(c.recipe(RECIPE.replace('color = "gray"', 'colour = "gray"'))),
    ("recipe-out-of-range", "synth"): lambda c: c.synth(c.recipe(RECIPE_QF.replace("{qf}", "101"))),
    ("recipe-invalid-toml", "synth"): lambda c: c.synth(c.file("bad.toml", "this is [not toml")),
    ("recipe-binary", "synth"): lambda c: c.synth(c.file("photo.toml", encode(base_gray(), 50))),
    ("recipe-empty", "synth"): lambda c: c.synth(c.file("empty.toml", "")),
    ("bad-seed", "synth"): lambda c: c.synth(c.recipe(), "--seed", "-1"),
    ("bad-workers", "synth"): lambda c: c.synth(c.recipe(), "--workers", "0"),
    ("recipe-too-large", "synth"): lambda c: c.synth(c.file("big.toml",
                                                            _padded(RECIPE.format(source=c.good().parent)))),
    ("recipe-fifo", "synth"): lambda c: c.synth(_fifo(c, "recipe.toml")),
    ("locked-output", "synth"): _locked_synth,
    ("locked-output", "evaluate"): _locked_evaluate,
    ("config-wrong-type", "train"): lambda c: c.train(c.train_config(CONFIG_STEPS_TEN)),
    ("config-unknown-key", "train"): lambda c: c.train(c.train_config(CONFIG_MISSPELT)),
    ("config-out-of-range", "train"): lambda c: c.train(c.train_config(TRAIN_CONFIG.replace("patch_size = 16",
                                                                                            "patch_size = 20"))),
    ("config-invalid-toml", "train"): lambda c: c.train(c.file("bad.toml", "[data\ntrain_dir = ")),
    ("config-binary", "train"): lambda c: c.train(c.file("photo.toml", encode(base_gray(), 50))),
    ("config-too-large", "train"): lambda c: c.train(c.file("big.toml", _padded(c.train_config().read_text()))),
    ("config-fifo", "train"): lambda c: c.train(_fifo(c, "train.toml")),
    ("qf-out-of-range", "restore"): lambda c: c.restore("--method", "fbcnn", "--qf", "500"),
    ("bad-tile", "restore"): lambda c: c.restore("--method", "fbcnn", "--tile", "12"),
    ("bad-max-pixels", "restore"): lambda c: c.restore("--method", "jpeg", "--max-pixels", "0"),
    ("unknown-method", "restore"): lambda c: c.restore("--method", "fbcnn-x"),
    ("weights-missing", "restore"): lambda c: c.weights(Path("nowhere", "x.pth")),
    ("weights-directory", "restore"): lambda c: c.weights(c.empty_dir()),
    ("weights-text", "restore"): lambda c: c.weights(c.file("notes.pth", "just some notes\n")),
    ("weights-truncated", "restore"): lambda c: c.weights(_truncated_weights(c)),
    ("weights-pickle-payload", "restore"): lambda c: c.weights(evil_checkpoint(c.tmp / "evil.pth", c.pwned)),
    ("weights-pickle-payload", "evaluate"): lambda c: c.evaluate(
        c.fixture("corpus"), "--methods", "fbcnn", "--weights",
        f"fbcnn={evil_checkpoint(c.tmp / 'evil.pth', c.pwned)}"),
    ("weights-pickle-payload", "train"): lambda c: c.train(c.train_config(TRAIN_CONFIG.replace(
        "nb = 1", f"nb = 1\ninit_from = \"{evil_checkpoint(c.tmp / 'evil.pth', c.pwned)}\""))),
    ("resume-state-pickle-payload", "train"): _evil_resume_state,
    ("weights-nan", "restore"): lambda c: c.weights(non_finite_checkpoint(c.tmp / "nan.pth", float("nan"))),
    ("weights-inf", "restore"): lambda c: c.weights(non_finite_checkpoint(c.tmp / "inf.pth", float("inf"))),
    ("weights-huge-sparse", "restore"): lambda c: c.weights(sparse_file(c.tmp / "huge.pth", 3 * 2**30)),
    ("weights-bogus-sparse", "restore"): lambda c: c.weights(sparse_file(c.tmp / "bogus.pth", 3 * 2**29)),
    ("corpus-manifest-garbage", "evaluate"): lambda c: c.evaluate(_garbage_manifest(c)),
    ("corpus-file-altered", "evaluate"): lambda c: c.evaluate(_altered_corpus(c)),
    ("bad-methods", "evaluate"): lambda c: c.evaluate(c.fixture("corpus"), "--methods", "nope"),
    ("bad-weights-arg", "evaluate"): lambda c: c.evaluate(c.fixture("corpus"), "--methods", "fbcnn",
                                                          "--weights", "fbcnn"),
    ("results-not-parquet", "report"): lambda c: c.report(c.file("results.parquet", "id,psnr\n1,30\n")),
    ("results-foreign-parquet", "report"): lambda c: c.report(_foreign_parquet(c)),
}


@pytest.mark.parametrize("case", [pytest.param(c, id=f"{c.command}-{c.id}") for c in COMMAND_CASES])
def test_command_case(case, tmp_path, request, cli):
    setup = SETUPS[(case.id, case.command)](Ctx(tmp_path, request))
    with setup.context():
        r = cli(*setup.argv)
    r.assert_error(case.error)
    for p, data in setup.unchanged.items():
        assert p.read_bytes() == data, f"{p} was modified"
    for p in setup.untouched:
        assert not p.exists() or (p.is_dir() and not any(p.iterdir())), f"{p} was written"
    assert not part_files(tmp_path)
    assert not (tmp_path / "pwned").exists()


def test_every_command_case_has_a_setup():
    assert set(SETUPS) == {(c.id, c.command) for c in COMMAND_CASES}


def test_toml_limit_of_the_cases_is_the_library_one():
    from jpegbench._config import MAX_TOML_BYTES

    assert TOML_LIMIT == MAX_TOML_BYTES


def test_pickle_payload_is_live(tmp_path):
    """Control for weights-pickle-payload: the same bytes, loaded with weights_only=False, run the payload.

    So the CLI case above would fail (the marker would exist) if the loader ever used weights_only=False.
    A subprocess, so that nothing the payload does touches this process.
    """
    import subprocess
    import sys

    marker = tmp_path / "pwned"
    path = evil_checkpoint(tmp_path / "evil.pth", marker)
    code = f"import torch; torch.load({str(path)!r}, weights_only=False)"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=120)
    assert marker.exists()


def test_pickle_payload_never_runs_in_restore(tmp_path, cli, good_files):
    marker = tmp_path / "pwned"
    path = evil_checkpoint(tmp_path / "evil.pth", marker)
    r = cli("restore", good_files(1)[0], "--method", "fbcnn", "--weights", path, "--out", tmp_path / "out",
            "--quiet", "--device", "cpu")
    r.assert_error(r"refused to unpickle.*evil\.pth.*open")
    assert not marker.exists()
    # Also as a raw pickle (not a torch zip file).
    path.write_bytes(pickle.dumps({"m_head.weight": TouchOnUnpickle(marker)}))
    cli("restore", good_files(1)[0], "--method", "fbcnn", "--weights", path, "--out", tmp_path / "out",
        "--quiet", "--device", "cpu").assert_error("refused to unpickle")
    assert not marker.exists()


@pytest.mark.parametrize("size", [3 * 2**30, 3 * 2**29], ids=["over-limit", "under-limit"])
def test_huge_sparse_weights_fail_fast(tmp_path, cli, good_files, size):
    import time

    path = sparse_file(tmp_path / "big.pth", size)
    start = time.perf_counter()
    r = cli("restore", good_files(1)[0], "--method", "fbcnn", "--weights", path, "--out", tmp_path / "out",
            "--quiet", "--device", "cpu")
    elapsed = time.perf_counter() - start
    r.assert_error("over the limit of" if size > 2**31 else "not a PyTorch checkpoint")
    # Generous bound: refusing must not read (or map and hash) gigabytes; reading 1.5 GiB of zeros takes longer.
    assert elapsed < 10, f"{elapsed:.1f} s to refuse a {size} byte file"


def test_valid_tiny_weights_restore(tmp_path, cli, good_files, tiny_weights):
    """Positive control: the weights cases fail for their content, not because --weights is broken."""
    r = cli("restore", good_files(1)[0], "--method", "fbcnn", "--weights", tiny_weights, "--out", tmp_path / "out",
            "--quiet", "--device", "cpu")
    assert r.code == 0, r.err
    assert (tmp_path / "out" / "good0.png").is_file()
