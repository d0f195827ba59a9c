"""Corpus writer: manifest content, determinism across workers, resume after SIGKILL, locking."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from jpegbench._fs import sha256_file
from jpegbench.codec import decode, read_image
from jpegbench.errors import CorpusError, LockError
from jpegbench.synth import (
    MANIFEST_COLUMNS,
    apply_chain,
    chain_params,
    load_recipe,
    read_manifest,
    stages_from_json,
    synthesize,
)
from jpegbench._lock import DirLock

RECIPE = """
name = "tiny"
seed = 3
color = "{color}"
[source]
path = "src"
[[stages]]
op = "jpeg"
qf = [20, 50]
[[stages]]
op = "shift"
shift = [[0, 0], [3, 5]]
[[stages]]
op = "jpeg"
qf = 30
"""


@pytest.fixture
def tiny(image_folder, write_recipe):
    """3 images x 4 chains = 12 samples."""
    image_folder(3, color="rgb")
    return write_recipe(RECIPE.format(color="gray"))


def test_manifest_and_files(tiny, tmp_path):
    out = tmp_path / "corpus"
    df = synthesize(tiny, out, progress=False)
    assert tuple(df.columns) == MANIFEST_COLUMNS
    assert len(df) == 12 and list(df["index"]) == list(range(12))
    assert sorted(os.listdir(out)) == ["corpus.json", "hq", "lq", "manifest.csv", "manifest.parquet", "recipe.toml"]
    assert (out / "recipe.toml").read_bytes() == tiny.read_bytes()
    info = json.loads((out / "corpus.json").read_text())
    assert info["seed"] == 3 and info["n_samples"] == 12 and "gray" in info["conventions"]
    back = read_manifest(out, verify=True)
    assert back.equals(df)
    for r in df.itertuples():
        lq = (out / r.lq_path).read_bytes()
        assert sha256_file(out / r.lq_path) == r.lq_sha256 and len(lq) == r.lq_bytes
        src = read_image(tiny.parent / "src" / r.source, color="gray")
        stages = stages_from_json(r.stages)
        ref = apply_chain(src, stages)
        assert lq == ref.lq_bytes  # the file is the encoder's output, byte for byte
        hq = read_image(out / r.hq_path)
        np.testing.assert_array_equal(hq, src[r.shift_dy :, r.shift_dx :])
        assert decode(lq).shape == hq.shape == (r.height, r.width)
        p = chain_params(stages)
        assert (r.regime, r.dominant_qf, r.aligned, r.qf1, r.qf2) == (
            p["regime"], p["dominant_qf"], p["aligned"], p["qf1"], p["qf2"]
        )
        assert r.aligned == ((r.shift_dy, r.shift_dx) == (0, 0))
    assert set(df["regime"]) == {"simple", "complex"}
    assert set(df["y_definition"]) == {"bt601-studio"} and set(df["subsampling"]) == {"none"}


def test_workers_do_not_change_the_corpus(image_folder, write_recipe, tmp_path):
    from multiprocessing import forkserver

    from jpegbench.synth.corpus import start_workers_early

    start_workers_early(2)  # what `jpegbench synth --workers 2` does before loading the recipe
    assert forkserver._forkserver._forkserver_pid is not None  # started (a real process) before any pool
    image_folder(4, color="rgb")
    recipe = load_recipe(write_recipe(RECIPE.format(color="rgb")))
    a = synthesize(recipe, tmp_path / "a", workers=1, progress=False)
    b = synthesize(recipe, tmp_path / "b", workers=2, progress=False)
    assert list(a["lq_sha256"]) == list(b["lq_sha256"]) and list(a["hq_sha256"]) == list(b["hq_sha256"])
    for name in ("manifest.parquet", "manifest.csv", "corpus.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert set(a["subsampling"]) == {"4:2:0"}


def test_resume_reuses_verified_files_and_redoes_the_rest(tiny, tmp_path):
    out = tmp_path / "corpus"
    ref = synthesize(tiny, out, progress=False)
    manifest = (out / "manifest.parquet").read_bytes()
    # A damaged file and a stale temp file: the run again repairs exactly that sample.
    damaged = out / ref["lq_path"][5]
    damaged.write_bytes(b"garbage")
    (out / "lq" / ".x.jpg.abc.part").write_bytes(b"half")
    def ident(p):  # a rewrite changes the inode (temp + rename) or the mtime (in place)
        st = os.stat(out / p)
        return st.st_ino, st.st_mtime_ns

    before = {p: ident(p) for p in ref["lq_path"]}
    time.sleep(0.01)  # a rewrite must be able to show a new mtime
    df = synthesize(tiny, out, progress=False)
    assert df.equals(ref) and (out / "manifest.parquet").read_bytes() == manifest
    changed = [p for p in ref["lq_path"] if ident(p) != before[p]]
    assert changed == [ref["lq_path"][5]]
    assert not list(out.rglob("*.part")) and not (out / ".rows").exists()


def _synth_cmd(recipe, out, workers=1):
    code = (
        "import sys; from jpegbench.synth import synthesize; "
        f"synthesize({str(recipe)!r}, {str(out)!r}, workers={workers}, progress=False)"
    )
    return [sys.executable, "-c", code]


def _kill_when(proc, cond, timeout=60.0):
    t0 = time.monotonic()
    while not cond():
        if proc.poll() is not None or time.monotonic() - t0 > timeout:
            pytest.fail(f"the synth subprocess ended (rc={proc.returncode}) before it could be killed")
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)  # the run and its workers, like a killed job
    proc.wait()


@pytest.mark.parametrize("workers", [1, 2])
def test_sigkill_then_resume_equals_uninterrupted(image_folder, write_recipe, tmp_path, workers):
    image_folder(40, height=96, width=96)
    recipe = write_recipe(RECIPE.format(color="gray"))  # 40 x 4 = 160 samples
    ref = synthesize(recipe, tmp_path / "ref", progress=False)
    out = tmp_path / "killed"
    proc = subprocess.Popen(_synth_cmd(recipe, out, workers), start_new_session=True)
    _kill_when(proc, lambda: (out / "lq").is_dir() and len(os.listdir(out / "lq")) >= 8)
    assert not (out / "manifest.parquet").exists()
    with pytest.raises(CorpusError, match="did not finish"):
        read_manifest(out)
    journal = []
    for p in (out / ".rows").glob("*.jsonl"):
        for line in p.read_bytes().splitlines():
            try:  # rows are appended in place: the kill may have cut the last one short (it is redone)
                journal.append(json.loads(line)["row"])
            except ValueError:
                pass
    assert journal
    kept = {r["lq_path"]: os.stat(out / r["lq_path"]).st_mtime_ns for r in journal}
    df = synthesize(recipe, out, progress=False)  # the kernel released the dead run's lock
    assert df.equals(ref)
    assert all(os.stat(out / p).st_mtime_ns == t for p, t in kept.items())  # finished samples are reused
    assert (out / "manifest.parquet").read_bytes() == (tmp_path / "ref" / "manifest.parquet").read_bytes()
    assert not list(out.rglob("*.part")) and not (out / ".lock").exists()
    read_manifest(out, verify=True)


def test_second_concurrent_run_gets_lock_error(tiny, tmp_path):
    out = tmp_path / "corpus"
    out.mkdir()
    with DirLock(out):
        with pytest.raises(LockError, match="in use by another jpegbench run"):
            synthesize(tiny, out, progress=False)
    assert synthesize(tiny, out, progress=False).shape[0] == 12


def test_lock_of_a_live_process_and_of_a_dead_one(tiny, tmp_path):
    """A run holding the lock keeps synth out; once it is killed (SIGKILL) the kernel has released it."""
    out = tmp_path / "corpus"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from jpegbench._lock import DirLock; DirLock(sys.argv[1]).acquire(); "
         "print('locked', flush=True); time.sleep(300)", str(out)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(LockError, match=f"pid/host {holder.pid} "):
            synthesize(tiny, out, progress=False)
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    assert (out / ".lock").exists()  # the dead holder's file stays, its lock does not
    synthesize(tiny, out, progress=False)
    assert not (out / ".lock").exists()


def test_directory_checks(tiny, image_folder, write_recipe, tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(CorpusError, match="not a jpegbench corpus"):
        synthesize(tiny, foreign, progress=False)
    out = tmp_path / "corpus"
    synthesize(tiny, out, progress=False)
    other = load_recipe(tiny, seed=4)
    with pytest.raises(CorpusError, match="another recipe"):
        synthesize(other, out, progress=False)
    assert len(synthesize(other, out, progress=False, overwrite=True)) == 12
    assert json.loads((out / "corpus.json").read_text())["seed"] == 4
    # What evaluate and users keep in a corpus survives a resume; the stale curve cache goes with an overwrite.
    (out / "results.parquet").write_bytes(b"results")
    (out / ".cache" / "curves").mkdir(parents=True)
    synthesize(other, out, progress=False)
    assert (out / "results.parquet").read_bytes() == b"results" and (out / ".cache").is_dir()
    synthesize(tiny, out, progress=False, overwrite=True)
    assert (out / "results.parquet").exists() and not (out / ".cache").exists()


def test_read_manifest_errors(tmp_path, tiny):
    with pytest.raises(CorpusError, match="no such corpus directory"):
        read_manifest(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="no manifest.parquet"):
        read_manifest(tmp_path / "empty")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "manifest.parquet").write_bytes(b"not parquet\nat all")
    with pytest.raises(CorpusError, match="cannot read the manifest") as info:
        read_manifest(bad)
    assert "\n" not in str(info.value)
    out = tmp_path / "corpus"
    df = synthesize(tiny, out, progress=False)
    df.drop(columns=["regime"]).to_parquet(bad / "manifest.parquet")
    with pytest.raises(CorpusError, match="missing column 'regime'"):
        read_manifest(bad)
    (out / df["hq_path"][0]).write_bytes(b"x")
    with pytest.raises(CorpusError, match="sha256 differs"):
        read_manifest(out, verify=True)


def test_invalid_recipe_fails_before_any_work(image_folder, write_recipe, tmp_path):
    from jpegbench.errors import ConfigError

    image_folder(2)
    bad = write_recipe(RECIPE.format(color="gray").replace("qf = 30", "qf = 101"))
    with pytest.raises(ConfigError, match=r"'stages\[2\].qf': expected an integer in 1\.\.100, got 101"):
        synthesize(bad, tmp_path / "never", progress=False)
    assert not (tmp_path / "never").exists()


def test_progress_bar_is_optional(tiny, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("JPEGBENCH_PROGRESS", raising=False)
    synthesize(tiny, tmp_path / "a", progress=True)  # stderr is not a terminal here: no bar
    assert "synth tiny" not in capsys.readouterr().err
    monkeypatch.setenv("JPEGBENCH_PROGRESS", "1")  # asked for: a bar in redirected output too
    synthesize(tiny, tmp_path / "b", progress=True)
    assert "synth tiny" in capsys.readouterr().err
    synthesize(tiny, tmp_path / "c", progress=False)  # --quiet wins
    assert "synth tiny" not in capsys.readouterr().err


def test_chunks_keep_each_source_in_one_chunk(image_folder, write_recipe):
    from jpegbench.synth.corpus import _chunks

    image_folder(7)
    specs = load_recipe(write_recipe(RECIPE.format(color="gray"))).samples()  # 7 x 4
    chunks = _chunks(specs, 2)
    assert [s for c in chunks for s in c] == specs
    owner = {}
    for k, c in enumerate(chunks):
        for s in c:
            assert owner.setdefault(s.source, k) == k
    assert len(chunks) > 2


def test_a_failed_sample_write_leaves_no_cut_short_file(tmp_path, monkeypatch):
    # Sample files are written in place (the journal row marks them done); a write that fails
    # half-way (a full disk) must not leave the half it wrote.
    import errno

    import jpegbench.synth._samples as corpus
    from jpegbench.errors import InputError

    real_open = open

    def full_disk_open(path, mode="r", *a, **k):
        f = real_open(path, mode, *a, **k)
        real_write = f.write

        def write(data):
            real_write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")

        f.write = write
        return f

    monkeypatch.setattr(corpus, "open", full_disk_open, raising=False)
    target = tmp_path / "lq" / "x.jpg"
    with pytest.raises(InputError, match="No space left"):
        corpus._write_sample_file(target, b"0123456789")
    assert not target.exists()


def test_chunks_shrink_towards_the_end(image_folder, write_recipe):
    # Guided scheduling: big chunks first, one source per chunk at the end, so two
    # workers finish together (a big last chunk left one worker idle for its length).
    from jpegbench.synth.corpus import _chunks

    image_folder(16)
    specs = load_recipe(write_recipe(RECIPE.format(color="gray"))).samples()  # 16 x 4
    sizes = [len(c) for c in _chunks(specs, 2)]
    assert sum(sizes) == len(specs)
    assert sizes == sorted(sizes, reverse=True)
    assert sizes[0] >= 3 * 4 and sizes[-4:] == [4, 4, 4, 4]


def _interrupt_after(monkeypatch, n):
    """Make `synthesize` (workers=1) fail after writing ``n`` samples, like a run that died."""
    import jpegbench.synth.corpus as corpus

    real, count = corpus._make_sample, [0]

    def make(spec, cfg):
        if count[0] == n:
            raise KeyboardInterrupt
        count[0] += 1
        return real(spec, cfg)

    monkeypatch.setattr(corpus, "_make_sample", make)


def test_a_journal_row_cut_short_is_redone_and_the_others_reused(tiny, tmp_path, monkeypatch):
    ref = synthesize(tiny, tmp_path / "ref", progress=False)
    out = tmp_path / "corpus"
    with monkeypatch.context() as m:
        _interrupt_after(m, 5)
        with pytest.raises(KeyboardInterrupt):
            synthesize(tiny, out, progress=False)
    (journal,) = (out / ".rows").glob("*.jsonl")
    lines = journal.read_bytes().splitlines(keepends=True)
    assert len(lines) == 5 and all(json.loads(x)["row"]["index"] == k for k, x in enumerate(lines))
    journal.write_bytes(b"".join(lines[:4]) + lines[4][:-20])  # the last row cut short by a kill
    stamps = {p: os.stat(out / p).st_mtime_ns for p in ref["lq_path"][:5]}
    time.sleep(0.01)
    df = synthesize(tiny, out, progress=False)
    assert df.equals(ref)
    assert (out / "manifest.parquet").read_bytes() == (tmp_path / "ref" / "manifest.parquet").read_bytes()
    kept = [p for p in ref["lq_path"][:5] if os.stat(out / p).st_mtime_ns == stamps[p]]
    assert kept == list(ref["lq_path"][:4])  # rows 0-3 reused, sample 4 redone
    assert not (out / ".rows").exists()


def test_a_source_changed_after_loading_the_recipe_is_refused(tiny, tmp_path):
    recipe = load_recipe(tiny)
    src = recipe.samples()[0].source
    src.write_bytes(src.read_bytes() + b"\0")  # the file checked is the file decoded, in one read
    with pytest.raises(CorpusError, match="changed since the recipe was loaded"):
        synthesize(recipe, tmp_path / "c", progress=False)
