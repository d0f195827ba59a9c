"""jpegbench._fs: atomic writes, the sweep of killed writes' temporary files, file hashes."""

from __future__ import annotations

import hashlib
import os
import stat
import time

import pytest

from jpegbench._fs import (
    atomic_write,
    atomic_write_bytes,
    remove_stale_parts,
    remove_stale_parts_in,
    sha256_bytes,
    sha256_file,
)
from jpegbench.errors import InputError


def test_atomic_write_gives_ordinary_permissions_and_no_temporary_file(tmp_path):
    atomic_write_bytes(tmp_path / "a.bin", b"data")
    assert (tmp_path / "a.bin").read_bytes() == b"data"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE((tmp_path / "a.bin").stat().st_mode) == 0o666 & ~mask  # not mkstemp's 0600
    assert os.listdir(tmp_path) == ["a.bin"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"old")

    def fail(f):
        f.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "a.bin", fail)
    assert (tmp_path / "a.bin").read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["a.bin"]


def test_an_unwritable_place_is_an_input_error(tmp_path):
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(InputError, match="cannot write here"):
        atomic_write_bytes(tmp_path / "file" / "sub.bin", b"x")


def test_remove_stale_parts_takes_only_the_temporary_files_of_that_output(tmp_path):
    mine = tmp_path / ".r.parquet.k1ll3d_x.part"
    others = [tmp_path / ".r.parquet.x.k1ll3d_x.part", tmp_path / ".s.parquet.k1ll3d_x.part", tmp_path / "r.parquet"]
    for p in [mine, *others]:
        p.write_bytes(b"")
    assert remove_stale_parts(tmp_path / "r.parquet") == [mine]
    assert all(p.exists() for p in others)


def test_remove_stale_parts_in_spares_recent_files_when_asked(tmp_path):
    old, new = tmp_path / ".a.k1ll3d_x.part", tmp_path / ".b.k1ll3d_x.part"
    deep = tmp_path / "sub" / ".c.k1ll3d_x.part"
    deep.parent.mkdir()
    for p in (old, new, deep):
        p.write_bytes(b"")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    remove_stale_parts_in(tmp_path, older_than_s=3600)
    assert not old.exists() and new.exists() and deep.exists()
    remove_stale_parts_in(tmp_path, recursive=True)
    assert not new.exists() and not deep.exists()
    remove_stale_parts_in(tmp_path / "absent")  # a missing folder is nothing to sweep


def test_hashes_agree_with_hashlib(tmp_path):
    data = os.urandom(3 * 2**20 + 5)  # several read chunks
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f") == sha256_bytes(data) == hashlib.sha256(data).hexdigest()


def test_codec_no_longer_exports_file_system_helpers():
    import jpegbench.codec as codec

    assert not {"atomic_write_bytes", "sha256_bytes", "sha256_file", "MAX_TOML_BYTES"} & set(codec.__all__)
