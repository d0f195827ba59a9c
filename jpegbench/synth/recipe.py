"""Corpus recipes: a TOML file naming source images, colour mode, a stage chain, encoder and seed.

A recipe is validated completely by :func:`load_recipe` (keys, types,
ranges, every source image read once, every sample's geometry checked), so a
bad recipe fails before any file is written, with a
:class:`~jpegbench.errors.ConfigError` naming the key::

    recipe key 'stages[1].qf': 101 is outside 1..100

Stage indices in key names count from 0 (``stages[0]`` is the first
``[[stages]]`` table).

Format
------
.. code-block:: toml

    name = "fbcnn-table3"            # optional, default: the file's stem
    description = "..."              # optional
    seed = 0                         # optional, default 0; integer >= 0
    color = "gray"                   # required: "gray" | "rgb"
    repeat = 1                       # optional: samples per image and parameter combination

    [source]
    path = "../../shared/data/LIVE1_gray"  # folder or file; relative to this file
    glob = "*.png"                   # optional, default: every image in the folder
    limit = 10                       # optional: the first N images (sorted by name)

    [encoder]                        # optional table
    backend = "pillow"               # "pillow" (libjpeg-turbo) | "jpeglib"
    version = "6b"                   # jpeglib only: libjpeg version
    subsampling = "4:2:0"            # "4:4:4" | "4:2:2" | "4:2:0" (RGB only)

    [output]                         # optional table
    layout = "flat"                  # "flat": lq/<sample_id>.jpg | "by-chain": lq/<chain>/<image>.jpg

    [[stages]]                       # applied in order; the last one must be a JPEG stage
    op = "jpeg"
    qf = [10, 30, 50]                # see "Parameter values"
    prob = 1.0                       # optional: the stage is applied with this probability

    [[stages]]
    op = "shift"                     # remove dy rows and dx columns from the top left
    shift = [4, 4]

    [[stages]]
    op = "crop"
    size = [256, 256]                # [height, width]
    position = "random"              # "top-left" (default) | "center" | "random"; or offset = [top, left]

    [[stages]]
    op = "resize"
    scale = 0.5                      # or size = [height, width]
    method = "bicubic"               # nearest | bilinear | bicubic | lanczos | area

Parameter values
----------------
``qf`` (integers 1..100) and ``scale`` (floats > 0) accept a single value,
a list ``[10, 30, 50]``, an inclusive range ``{min = 10, max = 90, step = 10}``,
or a random draw ``{random = "uniform", min = 5, max = 95}`` /
``{random = "choice", values = [...]}``. ``shift`` accepts ``[dy, dx]``, a
list of pairs ``[[0, 0], [4, 4]]``, ``"grid"`` (all 64 shifts),
``"grid-nonaligned"`` (the 63 non-zero ones), ``"random"``,
``"random-nonaligned"`` or ``{random = "choice", values = [[dy, dx], ...]}``.

Samples
-------
Lists, ranges and grids are enumerated; their cartesian product (in stage
order) is taken for every source image (sorted by name), each combination
``repeat`` times. Random values, ``prob`` and random crop positions are drawn
per sample from ``numpy.random.default_rng(SeedSequence(seed,
spawn_key=(index,)))``, so a sample depends only on the recipe, its sources
and its index, never on worker count or order.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from jpegbench.codec import BACKENDS, SUBSAMPLINGS, encoder_info, list_images, read_image, sha256_file
from jpegbench.codec._validate import read_toml_bytes
from jpegbench.errors import ConfigError, ImageReadError, ImageTooLargeError, InputError
from jpegbench.synth.degrade import RESIZE_METHODS, CropStage, JpegStage, ResizeStage, ShiftStage, Stage

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["Recipe", "SampleSpec", "load_recipe", "LAYOUTS"]

LAYOUTS: tuple[str, ...] = ("flat", "by-chain")
_ALL_SHIFTS = tuple((dy, dx) for dy in range(8) for dx in range(8))
_NONALIGNED = _ALL_SHIFTS[1:]

_TOP_KEYS = ("name", "description", "seed", "color", "repeat", "source", "encoder", "output", "stages")
_STAGE_KEYS = {
    "jpeg": ("op", "prob", "qf"),
    "shift": ("op", "prob", "shift"),
    "crop": ("op", "prob", "size", "position", "offset"),
    "resize": ("op", "prob", "size", "scale", "method"),
}


def _err(key: str, msg: str) -> ConfigError:
    return ConfigError(f"recipe key '{key}': {msg}")


def _tname(v: object) -> str:
    return {bool: "boolean", int: "integer", float: "float", str: "string", list: "array", dict: "table"}.get(
        type(v), type(v).__name__
    )


def _show(v: object) -> str:
    return f"{_tname(v)} {v!r}"


def _check_keys(table: dict, allowed: Iterable[str], where: str) -> None:
    allowed = tuple(allowed)
    for k in table:
        if k not in allowed:
            key = f"{where}.{k}" if where else k
            raise _err(key, f"unknown key (expected one of: {', '.join(sorted(allowed))})")


def _table(v: object, key: str) -> dict:
    if not isinstance(v, dict):
        raise _err(key, f"expected a table, got {_show(v)}")
    return v


def _str(v: object, key: str, choices: tuple[str, ...] | None = None) -> str:
    if not isinstance(v, str):
        raise _err(key, f"expected a string, got {_show(v)}")
    if choices is not None and v not in choices:
        raise _err(key, f"{v!r} is not one of {', '.join(repr(c) for c in choices)}")
    return v


def _int(v: object, key: str, lo: int | None = None, hi: int | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise _err(key, f"expected an integer, got {_show(v)}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        rng = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise _err(key, f"{v} is outside {rng}" if hi is not None else f"{v} must be {rng}")
    return v


def _num(v: object, key: str, *, positive: bool = True) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _err(key, f"expected a number, got {_show(v)}")
    if positive and not v > 0:
        raise _err(key, f"{v} must be > 0")
    return float(v)


def _pair(v: object, key: str, lo: int, hi: int | None = None) -> tuple[int, int]:
    if not isinstance(v, list) or len(v) != 2:
        raise _err(key, f"expected a pair [a, b] of integers, got {_show(v)}")
    a, b = (_int(x, key) for x in v)
    bad = [x for x in (a, b) if x < lo or (hi is not None and x > hi)]
    if bad:
        what = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise _err(key, f"({a}, {b}) is outside {what}")
    return a, b


# --- parameter values -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Values:
    """Enumerated values (a product axis)."""

    values: tuple


@dataclass(frozen=True)
class _Random:
    """A per-sample random draw: integer/float uniform in [low, high], or a choice among values."""

    kind: str  # "int-uniform" | "float-uniform" | "choice"
    low: float = 0
    high: float = 0
    values: tuple = ()

    def draw(self, rng: np.random.Generator) -> Any:
        if self.kind == "int-uniform":
            return int(rng.integers(int(self.low), int(self.high) + 1))
        if self.kind == "float-uniform":
            return float(rng.uniform(self.low, self.high))
        return self.values[int(rng.integers(len(self.values)))]


def _unique(values: list, key: str) -> tuple:
    seen = set()
    for v in values:
        if v in seen:
            raise _err(key, f"value {v!r} is listed twice")
        seen.add(v)
    return tuple(values)


def _param_spec(v: object, key: str, one, *, integer: bool) -> _Values | _Random:
    """Parse a scalar / list / range table / random table with ``one`` checking each value."""
    if isinstance(v, list):
        if not v:
            raise _err(key, "empty list")
        return _Values(_unique([one(x, key) for x in v], key))
    if isinstance(v, dict):
        if "random" in v:
            kind = _str(v["random"], f"{key}.random", ("uniform", "choice"))
            if kind == "choice":
                _check_keys(v, ("random", "values"), key)
                vals = v.get("values")
                if not isinstance(vals, list) or not vals:
                    raise _err(f"{key}.values", f"expected a non-empty array, got {_show(vals)}")
                return _Random("choice", values=_unique([one(x, f"{key}.values") for x in vals], f"{key}.values"))
            _check_keys(v, ("random", "min", "max"), key)
            for k in ("min", "max"):
                if k not in v:
                    raise _err(f"{key}.{k}", "missing (required)")
            lo, hi = one(v["min"], f"{key}.min"), one(v["max"], f"{key}.max")
            if lo > hi:
                raise _err(key, f"min {lo} is greater than max {hi}")
            return _Random("int-uniform" if integer else "float-uniform", lo, hi)
        _check_keys(v, ("min", "max", "step"), key)
        if not integer:
            raise _err(key, "a range table needs integers; use a list or {random = ...}")
        for k in ("min", "max"):
            if k not in v:
                raise _err(f"{key}.{k}", "missing (required)")
        lo, hi = one(v["min"], f"{key}.min"), one(v["max"], f"{key}.max")
        step = _int(v.get("step", 1), f"{key}.step", 1)
        if lo > hi:
            raise _err(key, f"min {lo} is greater than max {hi}")
        return _Values(tuple(range(lo, hi + 1, step)))
    return _Values((one(v, key),))


def _qf(v: object, key: str) -> int:
    return _int(v, key, 1, 100)


def _shift_spec(v: object, key: str) -> _Values | _Random:
    named = {
        "grid": _Values(_ALL_SHIFTS),
        "grid-nonaligned": _Values(_NONALIGNED),
        "random": _Random("choice", values=_ALL_SHIFTS),
        "random-nonaligned": _Random("choice", values=_NONALIGNED),
    }
    if isinstance(v, str):
        return named[_str(v, key, tuple(named))]
    if isinstance(v, list) and len(v) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in v):
        return _Values((_pair(v, key, 0, 7),))
    if isinstance(v, dict) and v.get("random") == "uniform":
        raise _err(f"{key}.random", "use \"random\" or {random = \"choice\", values = [...]} for shifts")
    if isinstance(v, (list, dict)):
        return _param_spec(v, key, lambda x, k: _pair(x, k, 0, 7), integer=True)
    raise _err(key, f"expected [dy, dx], a list of pairs, 'grid', 'random' or a table, got {_show(v)}")


# --- stage specifications ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _StageSpec:
    op: str
    key: str  # "stages[i]"
    prob: float = 1.0
    params: dict[str, Any] = field(default_factory=dict)  # name -> _Values | _Random | plain value

    def axes(self) -> list[tuple[str, tuple]]:
        return [(n, p.values) for n, p in self.params.items() if isinstance(p, _Values) and len(p.values) > 1]


def _parse_stage(t: object, i: int) -> _StageSpec:
    key = f"stages[{i}]"
    t = _table(t, key)
    if "op" not in t:
        raise _err(f"{key}.op", f"missing (required; one of {', '.join(_STAGE_KEYS)})")
    op = _str(t["op"], f"{key}.op", tuple(_STAGE_KEYS))
    _check_keys(t, _STAGE_KEYS[op], key)
    prob = 1.0
    if "prob" in t:
        prob = _num(t["prob"], f"{key}.prob", positive=False)
        if not 0 <= prob <= 1:
            raise _err(f"{key}.prob", f"{prob} is outside 0..1")
    params: dict[str, Any] = {}

    def need(name: str) -> object:
        if name not in t:
            raise _err(f"{key}.{name}", "missing (required)")
        return t[name]

    if op == "jpeg":
        params["qf"] = _param_spec(need("qf"), f"{key}.qf", _qf, integer=True)
    elif op == "shift":
        params["shift"] = _shift_spec(need("shift"), f"{key}.shift")
    elif op == "crop":
        params["size"] = _pair(need("size"), f"{key}.size", 1)
        if "offset" in t and "position" in t:
            raise _err(f"{key}.offset", "give either 'offset' or 'position', not both")
        if "offset" in t:
            params["offset"] = _pair(t["offset"], f"{key}.offset", 0)
        else:
            positions = ("top-left", "center", "random")
            params["position"] = _str(t.get("position", "top-left"), f"{key}.position", positions)
    else:
        if ("size" in t) == ("scale" in t):
            raise _err(f"{key}.size", "give exactly one of 'size' or 'scale'")
        if "size" in t:
            params["size"] = _pair(t["size"], f"{key}.size", 1)
        else:
            params["scale"] = _param_spec(t["scale"], f"{key}.scale", lambda x, k: _num(x, k), integer=False)
        params["method"] = _str(t.get("method", "bicubic"), f"{key}.method", RESIZE_METHODS)
    return _StageSpec(op, key, prob, params)


# --- samples ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SampleSpec:
    """One sample of a corpus: which source, which concrete chain, where its files go.

    ``lq_path`` and ``hq_path`` are relative to the corpus directory.
    """

    index: int
    sample_id: str
    source: Path
    source_name: str
    source_sha256: str
    stages: tuple[Stage, ...]
    lq_path: str
    hq_path: str


def _resolve(spec: _StageSpec, choice: dict[str, Any], rng: np.random.Generator, h: int, w: int, image: str):
    """Concrete stage for one sample, and the image size after it (or raise ConfigError)."""

    def value(name: str) -> Any:
        p = spec.params[name]
        if isinstance(p, _Random):
            return p.draw(rng)
        if isinstance(p, _Values):
            return choice.get(name, p.values[0])
        return p

    if spec.op == "jpeg":
        return JpegStage(value("qf")), h, w
    if spec.op == "shift":
        dy, dx = value("shift")
        if dy >= h or dx >= w:
            raise _err(f"{spec.key}.shift", f"shift ({dy}, {dx}) leaves nothing of {image} ({h}x{w} at this stage)")
        return ShiftStage(dy, dx), h - dy, w - dx
    if spec.op == "crop":
        ch, cw = spec.params["size"]
        if ch > h or cw > w:
            raise _err(f"{spec.key}.size", f"crop {ch}x{cw} does not fit {image} ({h}x{w} at this stage)")
        if "offset" in spec.params:
            top, left = spec.params["offset"]
            if top + ch > h or left + cw > w:
                msg = f"crop {ch}x{cw} at ({top}, {left}) does not fit {image} ({h}x{w} at this stage)"
                raise _err(f"{spec.key}.offset", msg)
        elif spec.params["position"] == "center":
            top, left = (h - ch) // 2, (w - cw) // 2
        elif spec.params["position"] == "random":
            top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        else:
            top, left = 0, 0
        return CropStage(top, left, ch, cw), ch, cw
    if "size" in spec.params:
        rh, rw = spec.params["size"]
    else:
        s = value("scale")
        rh, rw = max(1, round(h * s)), max(1, round(w * s))
    return ResizeStage(rh, rw, spec.params["method"]), rh, rw


class Recipe:
    """A validated recipe; build it with :func:`load_recipe`.

    Attributes
    ----------
    path : Path or None
        The recipe file.
    text : bytes
        The recipe file's bytes (copied into the corpus as ``recipe.toml``).
    sha256 : str
        SHA-256 of ``text``.
    name, description : str
    seed : int
        After any override.
    color : {"gray", "rgb"}
    source_dir : Path
        Resolved source folder (or file), after any override.
    sources : tuple of Path
        The source images, sorted.
    backend, version, subsampling : str, str or None, str
        Encoder options.
    repeat : int
    layout : {"flat", "by-chain"}
    """

    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)
        self._samples: list[SampleSpec] | None = None

    def __repr__(self) -> str:
        return (
            f"Recipe(name={self.name!r}, color={self.color!r}, sources={len(self.sources)}, "
            f"stages={len(self.stage_specs)}, seed={self.seed}, samples={len(self.samples())})"
        )

    @property
    def encoder_info(self) -> dict[str, str]:
        """Backend, library and version of the encoder (:func:`jpegbench.codec.encoder_info`)."""
        return encoder_info(self.backend, self.version).as_dict()

    def to_dict(self) -> dict[str, Any]:
        """The effective recipe (after overrides) as plain data, for ``corpus.json``."""
        return {
            "name": self.name,
            "description": self.description,
            "seed": self.seed,
            "color": self.color,
            "repeat": self.repeat,
            "source": {"path": str(self.source_dir), "glob": self.source_glob, "limit": self.source_limit},
            "encoder": {"backend": self.backend, "version": self.version, "subsampling": self.subsampling},
            "output": {"layout": self.layout},
            "stages": self.raw_stages,
        }

    def samples(self) -> list[SampleSpec]:
        """The corpus's samples, in a deterministic order (see the module docstring)."""
        if self._samples is None:
            self._samples = self._expand()
        return list(self._samples)

    def _expand(self) -> list[SampleSpec]:
        axes = [(si, name, vals) for si, spec in enumerate(self.stage_specs) for name, vals in spec.axes()]
        combos = list(itertools.product(*(vals for _, _, vals in axes))) or [()]
        out: list[SampleSpec] = []
        ids: set[str] = set()
        index = 0
        for src, sha, (h0, w0) in zip(self.sources, self.source_sha256, self.source_shapes):
            name = src.name if self.source_dir.is_file() else str(src.relative_to(self.source_dir))
            for combo in combos:
                choice: dict[int, dict[str, Any]] = {}
                for (si, pname, _), v in zip(axes, combo):
                    choice.setdefault(si, {})[pname] = v
                for r in range(self.repeat):
                    rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(index,)))
                    stages: list[Stage] = []
                    h, w = h0, w0
                    for si, spec in enumerate(self.stage_specs):
                        if spec.prob < 1 and not rng.random() < spec.prob:
                            continue
                        stage, h, w = _resolve(spec, choice.get(si, {}), rng, h, w, name)
                        stages.append(stage)
                    chain = "-".join(s.tag() for s in stages)
                    stem = Path(name).with_suffix("").as_posix().replace("/", "__")
                    rep = f"__r{r}" if self.repeat > 1 else ""
                    sample_id = f"{stem}{rep}__{chain}"
                    if sample_id in ids:
                        msg = f"two samples would share the id {sample_id!r} (images with the same stem?)"
                        raise _err("source", msg)
                    ids.add(sample_id)
                    if self.layout == "flat":
                        lq, hq = f"lq/{sample_id}.jpg", f"hq/{sample_id}.png"
                    else:
                        lq, hq = f"lq/{chain}/{stem}{rep}.jpg", f"hq/{chain}/{stem}{rep}.png"
                    out.append(SampleSpec(index, sample_id, src, name, sha, tuple(stages), lq, hq))
                    index += 1
        return out


def _list_sources(source_dir: Path, glob: str | None, limit: int | None) -> list[Path]:
    try:
        if glob is None or source_dir.is_file():
            paths = list_images(source_dir)
        else:
            if not source_dir.is_dir():
                raise ImageReadError(f"{source_dir}: no such directory")
            paths = sorted(p for p in source_dir.glob(glob) if p.is_file())
            if not paths:
                raise ImageReadError(f"{source_dir}: no file matches {glob!r}")
    except ImageReadError as exc:
        raise _err("source.path", str(exc)) from None
    return paths[:limit] if limit is not None else paths


def load_recipe(path: str | Path, *, source: str | Path | None = None, seed: int | None = None) -> Recipe:
    """Read and fully validate a TOML recipe.

    Parameters
    ----------
    path : path to a ``.toml`` recipe (format in the module docstring)
    source : folder or file, optional
        Replaces the recipe's ``source.path`` (relative to the current
        directory, not to the recipe); ``source.glob`` still applies.
    seed : int, optional
        Replaces the recipe's ``seed``.

    Returns
    -------
    Recipe
        With its samples expanded and checked.

    Raises
    ------
    ConfigError
        Unreadable file, not a regular file, larger than 1 MiB
        (:data:`jpegbench.codec.MAX_TOML_BYTES`), invalid TOML, unknown key,
        wrong type, value out of range, unreadable or too small source image;
        the message names the key.
    """
    p = Path(path)
    try:
        text = read_toml_bytes(p)
    except OSError as exc:
        raise ConfigError(f"recipe {p}: cannot read ({exc.strerror or exc})") from None
    except ConfigError as exc:
        raise ConfigError(f"recipe {exc}") from None
    try:
        data = tomllib.loads(text.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"recipe {p}: invalid TOML ({exc})") from None
    return _build(data, text=text, path=p, source=source, seed=seed)


def _build(data: dict, *, text: bytes, path: Path, source: str | Path | None, seed: int | None) -> Recipe:
    _check_keys(data, _TOP_KEYS, "")
    name = _str(data.get("name", path.stem), "name")
    description = _str(data.get("description", ""), "description")
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ConfigError(f"seed override must be an integer >= 0, got {seed!r}")
        seed = int(seed)
    else:
        seed = _int(data.get("seed", 0), "seed", 0)
    if "color" not in data:
        raise _err("color", "missing (required; 'gray' or 'rgb')")
    color = _str(data["color"], "color", ("gray", "rgb"))
    repeat = _int(data.get("repeat", 1), "repeat", 1)

    if "source" not in data:
        raise _err("source", "missing (required table with 'path')")
    src = _table(data["source"], "source")
    _check_keys(src, ("path", "glob", "limit"), "source")
    glob = _str(src["glob"], "source.glob") if "glob" in src else None
    limit = _int(src["limit"], "source.limit", 1) if "limit" in src else None
    if source is not None:
        source_dir = Path(source).resolve()
    else:
        if "path" not in src:
            raise _err("source.path", "missing (required)")
        sp = Path(_str(src["path"], "source.path")).expanduser()
        source_dir = (sp if sp.is_absolute() else path.resolve().parent / sp).resolve()

    enc = _table(data.get("encoder", {}), "encoder")
    _check_keys(enc, ("backend", "version", "subsampling"), "encoder")
    backend = _str(enc.get("backend", "pillow"), "encoder.backend", BACKENDS)
    version = _str(enc["version"], "encoder.version") if "version" in enc else None
    subsampling = _str(enc.get("subsampling", "4:2:0"), "encoder.subsampling", SUBSAMPLINGS)
    try:
        encoder_info(backend, version)
    except InputError as exc:
        raise _err("encoder.version", str(exc)) from None

    out = _table(data.get("output", {}), "output")
    _check_keys(out, ("layout",), "output")
    layout = _str(out.get("layout", "flat"), "output.layout", LAYOUTS)

    if "stages" not in data:
        raise _err("stages", "missing (required array of [[stages]] tables)")
    raw = data["stages"]
    if not isinstance(raw, list) or not raw:
        raise _err("stages", f"expected a non-empty array of tables, got {_show(raw)}")
    specs = [_parse_stage(t, i) for i, t in enumerate(raw)]
    last = specs[-1]
    if last.op != "jpeg" or last.prob < 1:
        raise _err(f"{last.key}.op", "the last stage must be an op = \"jpeg\" stage applied always (prob = 1)")

    paths = _list_sources(source_dir, glob, limit)
    shas, shapes = [], []
    for q in paths:
        try:
            x = read_image(q)  # full decode: truncated files fail here, before any work
        except (ImageReadError, ImageTooLargeError) as exc:
            raise _err("source.path", str(exc)) from None
        shas.append(sha256_file(q))
        shapes.append(x.shape[:2])
    recipe = Recipe(
        path=path,
        text=text,
        sha256=hashlib.sha256(text).hexdigest(),
        name=name,
        description=description,
        seed=seed,
        color=color,
        repeat=repeat,
        source_dir=source_dir,
        source_glob=glob,
        source_limit=limit,
        sources=tuple(paths),
        source_sha256=tuple(shas),
        source_shapes=tuple(shapes),
        backend=backend,
        version=version,
        subsampling=subsampling,
        layout=layout,
        stage_specs=tuple(specs),
        raw_stages=json.loads(json.dumps(raw)),
    )
    recipe.samples()  # expand now: geometry errors surface before any work
    return recipe
