"""Corpus recipes: a TOML file naming source images, colour mode, a stage chain, encoder and seed.

A recipe is validated completely by :func:`load_recipe` (keys, types,
ranges against one schema, :mod:`jpegbench._config`; every source image read
once, every sample's geometry checked), so a bad recipe fails before any
file is written, with a :class:`~jpegbench.errors.ConfigError` naming the key::

    recipe key 'stages[1].qf': expected an integer in 1..100, got 101

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from jpegbench._config import (
    Array, Int, Invalid, Key, Num, Spec, Str, Table, Tagged, config_error, describe, load_toml, validate,
)  # fmt: skip
from jpegbench._fs import sha256_file
from jpegbench.codec import BACKENDS, SUBSAMPLINGS, encoder_info, list_images, read_image
from jpegbench.errors import ConfigError, ImageReadError, ImageTooLargeError, InputError
from jpegbench.synth.degrade import RESIZE_METHODS, CropStage, JpegStage, ResizeStage, ShiftStage, Stage

__all__ = ["Recipe", "SampleSpec", "load_recipe", "LAYOUTS"]

LAYOUTS: tuple[str, ...] = ("flat", "by-chain")
_ALL_SHIFTS = tuple((dy, dx) for dy in range(8) for dx in range(8))
_NONALIGNED = _ALL_SHIFTS[1:]

_LABEL = "recipe key"


def _err(key: str, expected: str, got: str) -> ConfigError:
    return config_error(_LABEL, key, expected, got)


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


def _min_max(t: dict, path: str) -> tuple[Any, Any]:
    if t["min"] > t["max"]:
        raise Invalid(path, "min <= max", f"min {t['min']} > max {t['max']}")
    return t["min"], t["max"]


@dataclass(frozen=True)
class _Param(Spec):
    """A parameter value (see "Parameter values"): one value, a list, a range table or a random table."""

    one: Spec
    integer: bool

    @property
    def expected(self) -> str:
        ranges = "a range table {min, max, step}, " if self.integer else ""
        return f"{self.one.expected}, a list of them, {ranges}or a table {{random = ...}}"

    def check(self, value: Any, path: str) -> _Values | _Random:
        one, distinct = self.one, Array(self.one, min_len=1, unique=True)
        if isinstance(value, list):
            return _Values(distinct.check(value, path))
        if not isinstance(value, dict):
            return _Values((one.check(value, path),))
        if "random" in value:
            t = Tagged("random", {
                "uniform": Table({"random": Str(), "min": Key(one, required=True), "max": Key(one, required=True)}),
                "choice": Table({"random": Str(), "values": Key(distinct, required=True)}),
            }).check(value, path)  # fmt: skip
            if t["random"] == "choice":
                return _Random("choice", values=t["values"])
            return _Random("int-uniform" if self.integer else "float-uniform", *_min_max(t, path))
        if not self.integer:
            raise Invalid(path, f"{self.expected} (a range table needs integers)", describe(value))
        t = Table({"min": Key(one, required=True), "max": Key(one, required=True),
                   "step": Key(Int(lo=1), default=1)}).check(value, path)  # fmt: skip
        lo, hi = _min_max(t, path)
        return _Values(tuple(range(lo, hi + 1, t["step"])))


_PAIR = Array(Int(0, 7), length=2, what="a pair [dy, dx] of integers in 0..7")
_NAMED_SHIFTS = {
    "grid": _Values(_ALL_SHIFTS),
    "grid-nonaligned": _Values(_NONALIGNED),
    "random": _Random("choice", values=_ALL_SHIFTS),
    "random-nonaligned": _Random("choice", values=_NONALIGNED),
}


@dataclass(frozen=True)
class _Shift(Spec):
    """``[dy, dx]``, a list of pairs, a named set of shifts or a ``{random = "choice", ...}`` table."""

    @property
    def expected(self) -> str:
        return "[dy, dx], a list of pairs, 'grid', 'random' or a table"

    def check(self, value: Any, path: str) -> _Values | _Random:
        if isinstance(value, str):
            return _NAMED_SHIFTS[Str(tuple(_NAMED_SHIFTS)).check(value, path)]
        if isinstance(value, list) and len(value) == 2 and not any(isinstance(v, (list, dict)) for v in value):
            return _Values((_PAIR.check(value, path),))
        if isinstance(value, dict) and value.get("random") == "uniform":
            raise Invalid(f"{path}.random", "'choice' (or shift = \"random\") for shifts", "'uniform'")
        if isinstance(value, (list, dict)):
            return _Param(_PAIR, integer=True).check(value, path)
        raise self.fail(value, path)


# --- the schema ---------------------------------------------------------------------------------------------

_PROB = Key(Num(0, 1), default=1.0)
_SIZE = Array(Int(lo=1), length=2, what="a pair [height, width] of integers >= 1")
_STAGE = Tagged("op", {
    "jpeg": Table({"op": Str(), "prob": _PROB, "qf": Key(_Param(Int(1, 100), integer=True), required=True)}),
    "shift": Table({"op": Str(), "prob": _PROB, "shift": Key(_Shift(), required=True)}),
    "crop": Table({"op": Str(), "prob": _PROB, "size": Key(_SIZE, required=True),
                   "position": Str(("top-left", "center", "random")),
                   "offset": Array(Int(lo=0), length=2, what="a pair [top, left] of integers >= 0")},
                  exclusive=(("offset", "position"),)),
    "resize": Table({"op": Str(), "prob": _PROB, "size": _SIZE,
                     "scale": _Param(Num(0, lo_open=True), integer=False),
                     "method": Key(Str(RESIZE_METHODS), default="bicubic")}, one_of=(("size", "scale"),)),
})  # fmt: skip
_RECIPE = Table({
    "name": Str(),
    "description": Key(Str(), default=""),
    "seed": Key(Int(lo=0), default=0),
    "color": Key(Str(("gray", "rgb")), required=True),
    "repeat": Key(Int(lo=1), default=1),
    "source": Key(Table({"path": Str(), "glob": Str(), "limit": Int(lo=1)}, what="a table with 'path'"),
                  required=True),
    "encoder": Key(Table({"backend": Key(Str(BACKENDS), default="pillow"), "version": Str(),
                          "subsampling": Key(Str(SUBSAMPLINGS), default="4:2:0")}),
                   default={"backend": "pillow", "subsampling": "4:2:0"}),
    "output": Key(Table({"layout": Key(Str(LAYOUTS), default="flat")}), default={"layout": "flat"}),
    "stages": Key(Array(_STAGE, min_len=1, what="a non-empty array of [[stages]] tables"), required=True),
})  # fmt: skip


# --- stage specifications ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _StageSpec:
    op: str
    key: str  # "stages[i]"
    prob: float = 1.0
    params: dict[str, Any] = field(default_factory=dict)  # name -> _Values | _Random | plain value

    def axes(self) -> list[tuple[str, tuple]]:
        return [(n, p.values) for n, p in self.params.items() if isinstance(p, _Values) and len(p.values) > 1]


def _stage_spec(t: dict[str, Any], i: int) -> _StageSpec:
    """A checked ``[[stages]]`` table (defaults filled in) as the parameters :func:`_resolve` needs."""
    params = {k: v for k, v in t.items() if k not in ("op", "prob")}
    if t["op"] == "crop" and "offset" not in params:
        params.setdefault("position", "top-left")
    return _StageSpec(t["op"], f"stages[{i}]", t["prob"], params)


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
            raise _err(f"{spec.key}.shift", f"a shift that leaves something of {image} ({h}x{w} at this stage)",
                       f"({dy}, {dx})")
        return ShiftStage(dy, dx), h - dy, w - dx
    if spec.op == "crop":
        ch, cw = spec.params["size"]
        if ch > h or cw > w:
            raise _err(f"{spec.key}.size", f"a crop that fits {image} ({h}x{w} at this stage)", f"{ch}x{cw}")
        if "offset" in spec.params:
            top, left = spec.params["offset"]
            if top + ch > h or left + cw > w:
                fits = f"a crop that fits {image} ({h}x{w} at this stage)"
                raise _err(f"{spec.key}.offset", fits, f"{ch}x{cw} at ({top}, {left})")
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
                        clash = f"two samples with the id {sample_id!r} (images with the same stem?)"
                        raise _err("source", "one sample per id", clash)
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
        raise _source_error(exc) from None
    return paths[:limit] if limit is not None else paths


def _source_error(exc: Exception) -> ConfigError:
    """A source that cannot be listed or read: the file and its reason, as every image reader words them."""
    return ConfigError(f"{_LABEL} 'source.path': {exc}")


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
        (:data:`jpegbench._config.MAX_TOML_BYTES`), invalid TOML, unknown key,
        wrong type, value out of range, unreadable or too small source image;
        the message names the key.
    """
    p = Path(path)
    data, text = load_toml(p, what="recipe")
    return _build(data, text=text, path=p, source=source, seed=seed)


def _build(data: dict, *, text: bytes, path: Path, source: str | Path | None, seed: int | None) -> Recipe:
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ConfigError(f"seed override must be an integer >= 0, got {seed!r}")
    r = validate(data, _RECIPE, label=_LABEL)
    name, description, color, repeat = r.get("name", path.stem), r["description"], r["color"], r["repeat"]
    seed = int(seed) if seed is not None else r["seed"]
    src = r["source"]
    glob, limit = src.get("glob"), src.get("limit")
    if source is not None:
        source_dir = Path(source).resolve()
    else:
        if "path" not in src:
            raise _err("source.path", "a string (required)", "nothing")
        sp = Path(src["path"]).expanduser()
        source_dir = (sp if sp.is_absolute() else path.resolve().parent / sp).resolve()

    backend, version, subsampling = r["encoder"]["backend"], r["encoder"].get("version"), r["encoder"]["subsampling"]
    try:
        encoder_info(backend, version)
    except InputError as exc:
        raise ConfigError(f"{_LABEL} 'encoder.version': {exc}") from None
    layout = r["output"]["layout"]

    raw = data["stages"]
    specs = [_stage_spec(t, i) for i, t in enumerate(r["stages"])]
    last = specs[-1]
    if last.op != "jpeg" or last.prob < 1:
        raise _err(f"{last.key}.op", 'op = "jpeg" applied always (prob = 1) as the last stage',
                   f"op = {last.op!r}, prob = {last.prob:g}")

    paths = _list_sources(source_dir, glob, limit)
    shas, shapes = [], []
    for q in paths:
        try:
            x = read_image(q)  # full decode: truncated files fail here, before any work
        except (ImageReadError, ImageTooLargeError) as exc:
            raise _source_error(exc) from None
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
