"""jpegbench._config: TOML within its size limit, and the one schema validator with its one error form."""

from __future__ import annotations

import os

import pytest

from jpegbench._config import (
    MAX_TOML_BYTES,
    Array,
    Bool,
    Int,
    Invalid,
    Key,
    Num,
    Spec,
    Str,
    Table,
    Tagged,
    load_toml,
    validate,
)
from jpegbench.errors import ConfigError

SCHEMA = Table({
    "name": Key(Str(nonempty=True), required=True),
    "seed": Key(Int(lo=0), default=0),
    "channels": Int(choices=(1, 3)),
    "patch": Int(lo=8, multiple_of=8),
    "gamma": Num(0, 1, lo_open=True),
    "augment": Bool(),
    "qf_range": Array(Int(1, 100), length=2, order="<="),
    "milestones": Array(Int(lo=1), order="<"),
    "model": Key(Table({"nb": Key(Int(lo=1), default=2), "act": Str(("R", "L"))}), default={"nb": 2}),
    "stages": Array(Tagged("op", {"jpeg": Table({"op": Str(), "qf": Key(Int(1, 100), required=True)}),
                                  "crop": Table({"op": Str(), "size": Int(lo=1), "scale": Num(lo=0, lo_open=True)},
                                                one_of=(("size", "scale"),))})),
})  # fmt: skip


def check(data):
    return validate(data, SCHEMA, label="test key")


def test_valid_data_comes_back_checked_with_defaults():
    out = check({"name": "x", "gamma": 1, "qf_range": [5, 5], "model": {"act": "L"},
                 "stages": [{"op": "jpeg", "qf": 10}, {"op": "crop", "scale": 0.5}]})  # fmt: skip
    assert out == {"name": "x", "seed": 0, "gamma": 1.0, "qf_range": (5, 5), "model": {"nb": 2, "act": "L"},
                   "stages": ({"op": "jpeg", "qf": 10}, {"op": "crop", "scale": 0.5})}  # fmt: skip
    assert isinstance(out["gamma"], float)


@pytest.mark.parametrize(
    "data,message",
    [
        ({}, "test key 'name': expected a non-empty string (required), got nothing"),
        ({"name": ""}, "test key 'name': expected a non-empty string, got ''"),
        ({"name": "x", "nmae": 1}, "test key 'nmae': expected one of the keys augment, channels, gamma, milestones, "
                                   "model, name, patch, qf_range, seed, stages, got an unknown key"),
        ({"name": "x", "seed": -1}, "test key 'seed': expected an integer >= 0, got -1"),
        ({"name": "x", "seed": True}, "test key 'seed': expected an integer >= 0, got boolean True"),
        ({"name": "x", "channels": 2}, "test key 'channels': expected 1 or 3, got 2"),
        ({"name": "x", "patch": 12}, "test key 'patch': expected an integer >= 8 and a multiple of 8, got 12"),
        ({"name": "x", "gamma": 0}, "test key 'gamma': expected a number in (0, 1], got 0"),
        ({"name": "x", "gamma": float("nan")}, "test key 'gamma': expected a number in (0, 1], got nan"),
        ({"name": "x", "gamma": "big"}, "test key 'gamma': expected a number in (0, 1], got string 'big'"),
        ({"name": "x", "augment": 1}, "test key 'augment': expected true or false, got integer 1"),
        ({"name": "x", "qf_range": [50, 10]}, "test key 'qf_range': expected an array of 2 values in non-decreasing"
                                              " order, each an integer in 1..100, got [50, 10]"),
        ({"name": "x", "qf_range": [5, 500]}, "test key 'qf_range': expected an array of 2 values in "
                                              "non-decreasing order, each an integer in 1..100, got [5, 500]"),
        ({"name": "x", "qf_range": [5]}, "test key 'qf_range': expected an array of 2 values"),
        ({"name": "x", "milestones": [1, "2"]}, "test key 'milestones[1]': expected an integer >= 1, got string '2'"),
        ({"name": "x", "milestones": [3, 3]}, "test key 'milestones': expected an array of values in strictly "
                                              "increasing order, each an integer >= 1, got [3, 3]"),
        ({"name": "x", "model": {"act": "X"}}, "test key 'model.act': expected one of 'R', 'L', got 'X'"),
        ({"name": "x", "model": 3}, "test key 'model': expected a table, got integer 3"),
        ({"name": "x", "stages": [{"qf": 1}]}, "test key 'stages[0].op': expected one of 'jpeg', 'crop' (required), "
                                               "got nothing"),
        ({"name": "x", "stages": [{"op": "blur"}]}, "test key 'stages[0].op': expected one of 'jpeg', 'crop', "
                                                    "got 'blur'"),
        ({"name": "x", "stages": [{"op": "jpeg", "qf": 1, "size": 2}]}, "test key 'stages[0].size': expected one of"
                                                                        " the keys op, qf, got an unknown key"),
        ({"name": "x", "stages": [{"op": "crop"}]}, "test key 'stages[0].size': expected one of 'size' or 'scale', "
                                                    "got neither"),
        ({"name": "x", "stages": [{"op": "crop", "size": 1, "scale": 2}]}, "test key 'stages[0].size': expected "
                                                                           "only one of 'size' or 'scale', got "
                                                                           "'size' and 'scale'"),
    ],
)
def test_errors_have_one_form(data, message):
    with pytest.raises(ConfigError) as info:
        check(data)
    assert str(info.value).startswith(message), str(info.value)


def test_a_spec_subclass_reports_in_the_same_form():
    class Even(Spec):
        expected = "an even integer"

        def check(self, value, path):
            if not isinstance(value, int) or value % 2:
                raise Invalid(path, self.expected, repr(value))
            return value

    assert validate({"n": [2, 4]}, Table({"n": Array(Even())}), label="k") == {"n": (2, 4)}
    with pytest.raises(ConfigError, match=r"^k 'n\[1\]': expected an even integer, got 3$"):
        validate({"n": [2, 3]}, Table({"n": Array(Even())}), label="k")
    with pytest.raises(ConfigError, match=r"^k: expected a table, got array \[\]$"):
        validate([], Table({}), label="k")


def test_load_toml_reads_parses_and_refuses_in_one_wording(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('a = 1\n[b]\nc = "d"\n')
    assert load_toml(p, what="config") == ({"a": 1, "b": {"c": "d"}}, p.read_bytes())
    p.write_text("a = \n")
    with pytest.raises(ConfigError, match=rf"^config {p}: invalid TOML \("):
        load_toml(p, what="config")
    p.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match=rf"^config {p}: invalid TOML \("):
        load_toml(p, what="config")
    with pytest.raises(ConfigError, match=rf"^config {tmp_path / 'absent.toml'}: cannot read \("):
        load_toml(tmp_path / "absent.toml", what="config")
    with open(p, "wb") as f:
        f.truncate(MAX_TOML_BYTES + 1)
    with pytest.raises(ConfigError, match=rf"^config {p}: file of {MAX_TOML_BYTES + 1} bytes is over the limit"):
        load_toml(p, what="config")
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match=rf"^config {fifo}: not a regular file"):
        load_toml(fifo, what="config")  # refused before open(), which would block


def test_numpy_numbers_count_as_numbers_for_configs_built_in_code():
    import numpy as np

    out = validate({"n": np.int64(3), "x": np.float32(0.5)}, Table({"n": Int(1, 5), "x": Num(0, 1)}), label="k")
    assert out == {"n": 3, "x": 0.5} and type(out["n"]) is int and type(out["x"]) is float
    with pytest.raises(ConfigError, match=r"^k 'n': expected an integer in 1\.\.5, got 7$"):
        validate({"n": np.int64(7)}, Table({"n": Int(1, 5)}), label="k")
