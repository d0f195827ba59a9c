"""Configuration files: TOML read within a size limit, then checked against a declarative schema.

Synth recipes and training configs are each described by a
schema built from a few specs, and every error has one form::

    recipe key 'stages[1].qf': expected an integer in 1..100, got 101

``WHERE: expected X, got Y``, where ``WHERE`` is the caller's label and the
dotted path of the key (list items as ``[i]``). The specs:

============================ ===================================================
:class:`Int`, :class:`Num`   integers / finite numbers with optional bounds,
                             choices (Int) or a step (``multiple_of``)
:class:`Str`, :class:`Bool`  strings (optionally one of ``choices``), booleans
:class:`Array`               a list of one spec; a fixed ``length`` makes it one
                             value (a pair), ``unique`` and ``order`` constrain it
:class:`Table`               a table of :class:`Key` (spec, required, default);
                             unknown keys are refused; ``exclusive`` / ``one_of``
                             groups of keys
:class:`Tagged`              a table whose ``tag`` key chooses among tables
                             (``op = "jpeg"`` stages)
============================ ===================================================

Grammar the specs do not cover (a recipe's ``qf = {min = 10, max = 90}``) is a
:class:`Spec` subclass whose :meth:`~Spec.check` raises :class:`Invalid`; checks
that need more than one value use :func:`config_error` for the same wording.
"""

from __future__ import annotations

import math
import numbers
import os
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from jpegbench.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "MAX_TOML_BYTES", "read_toml_bytes", "load_toml", "Invalid", "describe", "config_error", "validate",
    "Spec", "Int", "Num", "Str", "Bool", "Array", "Key", "Table", "Tagged",
]  # fmt: skip

#: 1 MiB for a recipe or training config: hundreds of times a real one, and not configurable.
MAX_TOML_BYTES = 2**20


# -- reading --------------------------------------------------------------------------------------------------


def read_toml_bytes(path: str | os.PathLike[str]) -> bytes:
    """Return the bytes of a TOML file (synth recipe, training config) of at most :data:`MAX_TOML_BYTES`.

    A device or pipe is refused before it is opened (opening a FIFO blocks
    until a writer comes), and a file over the limit from its size, before
    any byte is read.

    Raises
    ------
    OSError
        Missing or unreadable file, or a directory: the caller words it
        (its usual ``cannot read`` message).
    ConfigError
        Not a regular file, or larger than :data:`MAX_TOML_BYTES`; the
        message starts with the path.
    """
    p = Path(path)
    mode = p.stat().st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):  # a directory fails in open() with the usual OSError
        raise ConfigError(f"{p}: not a regular file (a device, pipe or socket)")
    with open(p, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        data = f.read(MAX_TOML_BYTES + 1) if size <= MAX_TOML_BYTES else b""
    if size > MAX_TOML_BYTES or len(data) > MAX_TOML_BYTES:
        size = max(size, len(data))
        raise ConfigError(f"{p}: file of {size} bytes is over the limit of {MAX_TOML_BYTES} bytes for TOML files")
    return data


def load_toml(path: str | os.PathLike[str], *, what: str) -> tuple[dict[str, Any], bytes]:
    """Read and parse a TOML file; return its data and its bytes (callers hash or copy them).

    Parameters
    ----------
    path : the file
    what : str
        Starts every error message, e.g. ``"recipe"``: ``recipe PATH: cannot read (...)``,
        ``recipe PATH: file of N bytes is over the limit ...``, ``recipe PATH: invalid TOML (...)``.

    Raises
    ------
    ConfigError
        Unreadable, not a regular file, over :data:`MAX_TOML_BYTES`, not UTF-8 or not TOML.
    """
    p = Path(path)
    try:
        text = read_toml_bytes(p)
    except OSError as exc:
        raise ConfigError(f"{what} {p}: cannot read ({exc.strerror or exc})") from None
    except ConfigError as exc:
        raise ConfigError(f"{what} {exc}") from None
    try:
        return tomllib.loads(text.decode("utf-8")), text
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{what} {p}: invalid TOML ({exc})") from None


# -- errors ---------------------------------------------------------------------------------------------------


class Invalid(Exception):
    """A value at ``path`` is not what its spec expects; :func:`validate` words it as a ConfigError."""

    def __init__(self, path: str, expected: str, got: str) -> None:
        super().__init__(path, expected, got)
        self.path, self.expected, self.got = path, expected, got

    def error(self, label: str) -> ConfigError:
        return config_error(label, self.path, self.expected, self.got)


def config_error(label: str, path: str, expected: str, got: str) -> ConfigError:
    """The one wording: ``LABEL 'PATH': expected EXPECTED, got GOT`` (``LABEL: ...`` for the whole file)."""
    where = f"{label} '{path}'" if path else label
    return ConfigError(f"{where}: expected {expected}, got {got}")


_TYPE_NAMES = {bool: "boolean", int: "integer", float: "float", str: "string", list: "array", dict: "table"}


def describe(value: object) -> str:
    """A value with its TOML type, for ``got``: ``string 'one'``, ``float 30.5``."""
    return f"{_TYPE_NAMES.get(type(value), type(value).__name__)} {value!r}"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def validate(data: Any, spec: Spec, *, label: str) -> Any:
    """Check ``data`` against ``spec``; return the checked value (tables with their defaults filled in).

    Parameters
    ----------
    data : the parsed file (or a dict built in code)
    spec : the schema, usually a :class:`Table`
    label : str
        Names the file's kind in errors, e.g. ``"recipe key"``.

    Raises
    ------
    ConfigError
        ``LABEL 'PATH': expected X, got Y`` for the first value that does not match.
    """
    try:
        return spec.check(data, "")
    except Invalid as exc:
        raise exc.error(label) from None


# -- specs ----------------------------------------------------------------------------------------------------


class Spec:
    """One kind of value; :meth:`check` returns it (converted) or raises :class:`Invalid`."""

    @property
    def expected(self) -> str:
        raise NotImplementedError

    def check(self, value: Any, path: str) -> Any:
        raise NotImplementedError

    def fail(self, value: Any, path: str, *, typed: bool = False) -> Invalid:
        """``typed``: the type was right, so ``got`` shows the value alone (``101``, not ``integer 101``)."""
        return Invalid(path, self.expected, repr(value) if typed else describe(value))


def _bounds(lo: float | None, hi: float | None, lo_open: bool = False, hi_open: bool = False) -> str:
    if lo is not None and hi is not None:
        if not (lo_open or hi_open):
            return f" in {lo}..{hi}"
        return f" in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    if lo is not None:
        return f" {'>' if lo_open else '>='} {lo}"
    if hi is not None:
        return f" {'<' if hi_open else '<='} {hi}"
    return ""


def _within(v: float, lo: float | None, hi: float | None, lo_open: bool = False, hi_open: bool = False) -> bool:
    if lo is not None and (v <= lo if lo_open else v < lo):
        return False
    return hi is None or (v < hi if hi_open else v <= hi)


@dataclass(frozen=True)
class Int(Spec):
    """An integer (not a boolean), optionally within ``lo..hi``, one of ``choices``, a multiple of ``multiple_of``."""

    lo: int | None = None
    hi: int | None = None
    choices: tuple[int, ...] | None = None
    multiple_of: int | None = None

    @property
    def expected(self) -> str:
        if self.choices is not None:
            return " or ".join(map(str, self.choices))
        step = f" and a multiple of {self.multiple_of}" if self.multiple_of else ""
        return f"an integer{_bounds(self.lo, self.hi)}{step}"

    def check(self, value: Any, path: str) -> int:
        # numbers.Integral: numpy integers too, for configs built in code
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise self.fail(value, path)
        value = int(value)
        ok = _within(value, self.lo, self.hi) and (self.choices is None or value in self.choices)
        if not ok or (self.multiple_of and value % self.multiple_of):
            raise self.fail(value, path, typed=True)
        return value


@dataclass(frozen=True)
class Num(Spec):
    """A finite number (integers too), returned as float, optionally bounded; ``*_open`` excludes a bound."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    @property
    def expected(self) -> str:
        return f"a number{_bounds(self.lo, self.hi, self.lo_open, self.hi_open)}"

    def check(self, value: Any, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise self.fail(value, path)
        if not math.isfinite(value) or not _within(value, self.lo, self.hi, self.lo_open, self.hi_open):
            raise self.fail(value, path, typed=True)
        return float(value)


@dataclass(frozen=True)
class Str(Spec):
    """A string, optionally one of ``choices`` or non-empty."""

    choices: tuple[str, ...] | None = None
    nonempty: bool = False

    @property
    def expected(self) -> str:
        if self.choices is not None:
            return f"one of {', '.join(map(repr, self.choices))}"
        return "a non-empty string" if self.nonempty else "a string"

    def check(self, value: Any, path: str) -> str:
        if not isinstance(value, str):
            raise self.fail(value, path)
        if (self.choices is not None and value not in self.choices) or (self.nonempty and not value):
            raise self.fail(value, path, typed=True)
        return value


@dataclass(frozen=True)
class Bool(Spec):
    """``true`` or ``false``."""

    @property
    def expected(self) -> str:
        return "true or false"

    def check(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(value, path)
        return value


@dataclass(frozen=True)
class Array(Spec):
    """A list of ``item`` values, returned as a tuple.

    With a fixed ``length`` the array is one value (a pair, a size): any
    problem is reported for the whole array. Otherwise a bad item is
    reported at ``PATH[i]``. ``unique`` refuses repeated values; ``order``
    ``"<="`` / ``"<"`` asks for non-decreasing / strictly increasing ones.
    ``what`` replaces the generated description.
    """

    item: Spec
    length: int | None = None
    min_len: int = 0
    unique: bool = False
    order: Literal["<=", "<"] | None = None
    what: str | None = None

    @property
    def expected(self) -> str:
        if self.what is not None:
            return self.what
        if self.length is not None:
            head = f"an array of {self.length} values"
        else:
            head = "a non-empty array of values" if self.min_len else "an array of values"
        order = {"<=": " in non-decreasing order", "<": " in strictly increasing order", None: ""}[self.order]
        return f"{head}{order}, each {self.item.expected}"

    def check(self, value: Any, path: str) -> tuple:
        if not isinstance(value, list):
            raise self.fail(value, path)
        if (self.length is not None and len(value) != self.length) or len(value) < self.min_len:
            raise self.fail(value, path)
        if self.length is not None:
            try:
                out = tuple(self.item.check(v, path) for v in value)
            except Invalid:
                raise self.fail(value, path, typed=True) from None
        else:
            out = tuple(self.item.check(v, f"{path}[{i}]") for i, v in enumerate(value))
        if self.unique:
            seen: set = set()
            for v in out:
                if v in seen:
                    raise Invalid(path, "distinct values", f"{v!r} twice")
                seen.add(v)
        if self.order is not None:
            pairs = list(zip(out, out[1:]))
            if not all(a < b if self.order == "<" else a <= b for a, b in pairs):
                raise self.fail(value, path, typed=True)
        return out


_MISSING: Any = object()


@dataclass(frozen=True)
class Key:
    """A key of a :class:`Table`: its spec, whether it is required, its default (filled in when absent)."""

    spec: Spec
    required: bool = False
    default: Any = _MISSING


@dataclass(frozen=True)
class Table(Spec):
    """A table with known keys only; returns a dict of the checked values and the defaults of absent keys.

    ``exclusive``: groups of keys of which at most one may be given;
    ``one_of``: groups of which exactly one must be given. Both are reported
    at the group's first key.
    """

    keys: Mapping[str, Key | Spec]
    exclusive: tuple[tuple[str, ...], ...] = ()
    one_of: tuple[tuple[str, ...], ...] = ()
    what: str = "a table"

    @property
    def expected(self) -> str:
        return self.what

    def _key(self, name: str) -> Key:
        k = self.keys[name]
        return k if isinstance(k, Key) else Key(k)

    def check(self, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(value, path)
        for name in value:
            if name not in self.keys:
                raise Invalid(_join(path, name), f"one of the keys {', '.join(sorted(self.keys))}", "an unknown key")
        for group in self.exclusive + self.one_of:
            given = [k for k in group if k in value]
            names = " or ".join(map(repr, group))
            if len(given) > 1:
                raise Invalid(_join(path, group[0]), f"only one of {names}", " and ".join(map(repr, given)))
            if not given and group in self.one_of:
                raise Invalid(_join(path, group[0]), f"one of {names}", "neither")
        out: dict[str, Any] = {}
        for name in self.keys:
            key = self._key(name)
            if name in value:
                out[name] = key.spec.check(value[name], _join(path, name))
            elif key.required:
                raise Invalid(_join(path, name), f"{key.spec.expected} (required)", "nothing")
            elif key.default is not _MISSING:
                out[name] = key.default
        return out


@dataclass(frozen=True)
class Tagged(Spec):
    """A table whose ``tag`` key (required) chooses which :class:`Table` checks it, e.g. ``op = "jpeg"``."""

    tag: str
    variants: Mapping[str, Table] = field(default_factory=dict)

    @property
    def expected(self) -> str:
        return f"a table with {self.tag} = {' | '.join(map(repr, self.variants))}"

    def check(self, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(value, path)
        choice = Str(tuple(self.variants))
        if self.tag not in value:
            raise Invalid(_join(path, self.tag), f"{choice.expected} (required)", "nothing")
        return self.variants[choice.check(value[self.tag], _join(path, self.tag))].check(value, path)
