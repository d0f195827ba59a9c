"""Degradation chains: JPEG compressions interleaved with grid shifts, crops and resizes.

A chain is a sequence of concrete stages applied left to right::

    JpegStage(30) -> ShiftStage(4, 4) -> JpegStage(10)

is the protocol of the FBCNN paper's Table 3 (first JPEG at QF 30, remove 4
rows and 4 columns from the top left, second JPEG at QF 10). Geometric
stages (shift, crop, resize) are applied to the ground truth too, so the
degraded image and its ground truth always have the same shape and pixel
grid.

Parameters of a chain (:func:`chain_params`)
--------------------------------------------
``qfs``
    The QF of every JPEG stage, in order; ``n_jpeg = len(qfs)``.
``qf1``, ``qf2``
    First QF, and the *last* QF of a chain with two or more JPEG stages;
    ``qf2 = -1`` for a single JPEG (there is no second compression).
``qf_last``
    The QF of the last compression (the label of FBCNN's QF predictor).
``shift_dy``, ``shift_dx``
    Where the *first* compression's 8x8 grid lies in the final image: the
    number of rows / columns removed from the top left after the first JPEG
    stage, modulo 8. For a double chain ending in a JPEG stage this is the
    shift between the two grids; ``(0, 0)`` for a lone JPEG; ``(-1, -1)``
    when a resize follows the first JPEG (the grid is no longer an 8x8 grid).
``aligned``
    Every compression's grid starts at pixel ``(0, 0)`` of the final image
    (modulo 8), i.e. no grid was shifted or resized after it.
``regime``
    ``"single"`` for one JPEG stage; ``"complex"`` when some earlier
    compression is not aligned with the last one and its QF is ``<=`` the
    last QF (for two stages: non-aligned with ``QF1 <= QF2``); else
    ``"simple"`` (aligned, or ``QF1 > QF2``).
``dominant_qf``
    ``min(qfs)``: the strongest compression in the chain, aligned or not.

Classes of a two-compression chain (:func:`chain_kind`, :func:`double_jpeg_class`)
-----------------------------------------------------------------------------------
The estimators' verdict and their accuracy tables label a chain by its
*kind* (``"single"``, ``"aligned-double"``, ``"nonaligned-double"``: what a
pixel estimator can tell apart) and, finer, by alignment and QF order
(``"nonaligned qf1<qf2"``, ...). Both are defined here, once.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Sequence, Union

import numpy as np

from jpegbench.codec import SUBSAMPLINGS, check_pixels, check_qf, check_shift, decode, encode
from jpegbench.errors import InputError, ShapeError

__all__ = [
    "JpegStage",
    "ShiftStage",
    "CropStage",
    "ResizeStage",
    "Stage",
    "ChainResult",
    "RESIZE_METHODS",
    "shift_image",
    "crop_image",
    "resize_image",
    "apply_chain",
    "chain_params",
    "CHAIN_KINDS",
    "chain_kind",
    "qf_order",
    "double_jpeg_class",
    "double_jpeg",
    "stages_to_json",
    "stages_from_json",
]

RESIZE_METHODS: tuple[str, ...] = ("nearest", "bilinear", "bicubic", "lanczos", "area")


@dataclass(frozen=True)
class JpegStage:
    """Compress with IJG tables at quality ``qf`` and decode again."""

    qf: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "qf", check_qf(self.qf))

    def tag(self) -> str:
        return f"j{self.qf}"


@dataclass(frozen=True)
class ShiftStage:
    """Remove ``dy`` rows and ``dx`` columns from the top left (``0 <= dy, dx <= 7``)."""

    dy: int
    dx: int

    def __post_init__(self) -> None:
        dy, dx = check_shift((self.dy, self.dx))
        object.__setattr__(self, "dy", dy)
        object.__setattr__(self, "dx", dx)

    def tag(self) -> str:
        return f"s{self.dy}x{self.dx}"


@dataclass(frozen=True)
class CropStage:
    """Keep the ``height`` x ``width`` window whose top-left corner is ``(top, left)``.

    ``height`` / ``width`` of ``None`` keep everything to the bottom / right.
    """

    top: int = 0
    left: int = 0
    height: int | None = None
    width: int | None = None

    def __post_init__(self) -> None:
        for name in ("top", "left"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise InputError(f"CropStage.{name} must be an integer >= 0, got {v!r}")
            object.__setattr__(self, name, int(v))
        for name in ("height", "width"):
            v = getattr(self, name)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise InputError(f"CropStage.{name} must be an integer >= 1 or None, got {v!r}")
            object.__setattr__(self, name, int(v))

    def tag(self) -> str:
        h = "" if self.height is None else self.height
        w = "" if self.width is None else self.width
        return f"c{h}x{w}+{self.top}+{self.left}"


@dataclass(frozen=True)
class ResizeStage:
    """Resample to ``height`` x ``width`` pixels with Pillow's ``method`` filter."""

    height: int
    width: int
    method: str = "bicubic"

    def __post_init__(self) -> None:
        for name in ("height", "width"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise InputError(f"ResizeStage.{name} must be an integer >= 1, got {v!r}")
            object.__setattr__(self, name, int(v))
        if self.method not in RESIZE_METHODS:
            raise InputError(f"ResizeStage.method must be one of {RESIZE_METHODS}, got {self.method!r}")

    def tag(self) -> str:
        return f"r{self.height}x{self.width}"


Stage = Union[JpegStage, ShiftStage, CropStage, ResizeStage]
_OPS: dict[str, type] = {"jpeg": JpegStage, "shift": ShiftStage, "crop": CropStage, "resize": ResizeStage}
_OP_OF = {cls: op for op, cls in _OPS.items()}


def stages_to_json(stages: Sequence[Stage]) -> str:
    """Canonical compact JSON of a chain: ``[{"op": "jpeg", "qf": 30}, ...]``."""
    return _stages_json(tuple(stages))


@functools.lru_cache(maxsize=4096)
def _stages_json(stages: tuple[Stage, ...]) -> str:
    # Stages are frozen dataclasses: a corpus repeats the same few chains, once per sample.
    return json.dumps([{"op": _OP_OF[type(s)], **asdict(s)} for s in stages], separators=(",", ":"))


def stages_from_json(text: str) -> tuple[Stage, ...]:
    """Inverse of :func:`stages_to_json`."""
    out = []
    for d in json.loads(text):
        d = dict(d)
        out.append(_OPS[d.pop("op")](**d))
    return tuple(out)


@dataclass(frozen=True)
class ChainResult:
    """Output of :func:`apply_chain`.

    Attributes
    ----------
    lq_bytes : bytes or None
        The last JPEG file exactly as the encoder wrote it; ``None`` when a
        geometric stage follows the last JPEG stage (the pixels are then no
        longer that file's).
    lq_pixels : ndarray, uint8, (H, W) or (H, W, 3), or None
        The degraded image (``None`` only with ``apply_chain(..., decode_last=False)``).
    hq_pixels : ndarray, uint8, same shape as ``lq_pixels``
        The clean input with the same geometric stages applied.
    params : dict
        :func:`chain_params` of the chain plus ``height`` and ``width``.
    """

    lq_bytes: bytes | None
    lq_pixels: np.ndarray | None
    hq_pixels: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)


def shift_image(pixels: np.ndarray, shift: tuple[int, int]) -> np.ndarray:
    """Remove ``dy`` rows and ``dx`` columns from the top left of an image.

    Parameters
    ----------
    pixels : ndarray, uint8, (H, W) or (H, W, 3)
    shift : (dy, dx), 0 <= dy, dx <= 7

    Returns
    -------
    ndarray, uint8, (H - dy, W - dx[, 3])
        A new array (the input is never a view of the output).
    """
    dy, dx = check_shift(shift)
    pixels = check_pixels(pixels)
    if pixels.shape[0] <= dy or pixels.shape[1] <= dx:
        raise ShapeError(f"cannot shift a {pixels.shape[0]}x{pixels.shape[1]} image by ({dy}, {dx})")
    return pixels[dy:, dx:].copy()


def crop_image(pixels: np.ndarray, stage: CropStage) -> np.ndarray:
    """Apply a :class:`CropStage`; the window must lie inside the image."""
    pixels = check_pixels(pixels)
    h, w = pixels.shape[:2]
    ch = h - stage.top if stage.height is None else stage.height
    cw = w - stage.left if stage.width is None else stage.width
    if stage.top + ch > h or stage.left + cw > w or ch < 1 or cw < 1:
        raise ShapeError(
            f"crop {ch}x{cw} at ({stage.top}, {stage.left}) does not fit in a {h}x{w} image"
        )
    return pixels[stage.top : stage.top + ch, stage.left : stage.left + cw].copy()


def resize_image(pixels: np.ndarray, height: int, width: int, *, method: str = "bicubic") -> np.ndarray:
    """Resample uint8 pixels to ``height`` x ``width`` with Pillow (``area`` = Pillow's BOX)."""
    from PIL import Image

    pixels = check_pixels(pixels)
    if method not in RESIZE_METHODS:
        raise InputError(f"method must be one of {RESIZE_METHODS}, got {method!r}")
    filt = {
        "nearest": Image.Resampling.NEAREST,
        "bilinear": Image.Resampling.BILINEAR,
        "bicubic": Image.Resampling.BICUBIC,
        "lanczos": Image.Resampling.LANCZOS,
        "area": Image.Resampling.BOX,
    }[method]
    return np.asarray(Image.fromarray(np.ascontiguousarray(pixels)).resize((width, height), filt)).copy()


def _check_stages(stages: Sequence[Stage]) -> tuple[Stage, ...]:
    if isinstance(stages, (str, bytes)) or not isinstance(stages, Sequence):
        raise InputError(f"stages must be a sequence of Stage objects, got {type(stages).__name__}")
    for i, s in enumerate(stages):
        if type(s) not in _OP_OF:
            raise InputError(f"stages[{i}] must be a JpegStage, ShiftStage, CropStage or ResizeStage, got {s!r}")
    if not any(isinstance(s, JpegStage) for s in stages):
        raise InputError("a degradation chain needs at least one JpegStage")
    return tuple(stages)


def chain_params(stages: Sequence[Stage]) -> dict[str, Any]:
    """Describe a chain without running it (see the module docstring for each key).

    Returns
    -------
    dict
        ``qfs, n_jpeg, is_double, qf1, qf2, qf_last, shift_dy, shift_dx,
        aligned, regime, dominant_qf`` (``qfs`` is a list of ints).
    """
    stages = _check_stages(stages)
    # offsets[k]: (rows, cols) removed after the k-th JPEG, or None once resized.
    offsets: list[tuple[int, int] | None] = []
    qfs: list[int] = []
    for s in stages:
        if isinstance(s, JpegStage):
            qfs.append(s.qf)
            offsets.append((0, 0))
            continue
        for k, off in enumerate(offsets):
            if off is None:
                continue
            if isinstance(s, ShiftStage):
                offsets[k] = (off[0] + s.dy, off[1] + s.dx)
            elif isinstance(s, CropStage):
                offsets[k] = (off[0] + s.top, off[1] + s.left)
            else:
                offsets[k] = None
    mod = [None if o is None else (o[0] % 8, o[1] % 8) for o in offsets]
    n = len(qfs)
    aligned = all(m == (0, 0) for m in mod)
    last = len(qfs) - 1

    def rel(k: int) -> tuple[int, int] | None:
        # Offset of the k-th grid relative to the last grid.
        if offsets[k] is None or offsets[last] is None:
            return None
        return ((offsets[k][0] - offsets[last][0]) % 8, (offsets[k][1] - offsets[last][1]) % 8)

    if n == 1:
        regime = "single"
    else:
        complex_ = any(rel(k) != (0, 0) and qfs[k] <= qfs[last] for k in range(last))
        regime = "complex" if complex_ else "simple"
    first = mod[0] if mod[0] is not None else (-1, -1)
    return {
        "qfs": qfs,
        "n_jpeg": n,
        "is_double": n >= 2,
        "qf1": qfs[0],
        "qf2": qfs[-1] if n >= 2 else -1,
        "qf_last": qfs[-1],
        "shift_dy": first[0],
        "shift_dx": first[1],
        "aligned": aligned,
        "regime": regime,
        "dominant_qf": min(qfs),
    }


#: The kinds of chain a pixel estimator can tell apart; the truth its verdict is scored against.
CHAIN_KINDS: tuple[str, ...] = ("single", "aligned-double", "nonaligned-double")


def chain_kind(qf2: int, aligned: bool) -> str:
    """``"single"`` (``qf2 < 0``: one compression), ``"aligned-double"`` or ``"nonaligned-double"``."""
    if int(qf2) < 0:
        return "single"
    return "aligned-double" if aligned else "nonaligned-double"


def qf_order(qf1: int, qf2: int) -> str:
    """``"qf1<qf2"``, ``"qf1>qf2"`` or ``"qf1=qf2"``: the order of a double chain's two QFs."""
    qf1, qf2 = int(qf1), int(qf2)
    return "qf1=qf2" if qf1 == qf2 else "qf1>qf2" if qf1 > qf2 else "qf1<qf2"


def double_jpeg_class(qf1: int, qf2: int, aligned: bool, *, split_gap: int | None = None) -> str:
    """A chain's class by alignment and QF order: ``"single"``, ``"aligned qf1>qf2"``, ``"nonaligned qf1<qf2"``, ...

    Parameters
    ----------
    qf1, qf2 : int
        First and last QF; ``qf2 < 0`` for a single compression.
    aligned : bool
        Whether both grids coincide (shift ``(0, 0)``).
    split_gap : int, optional
        Label ``qf1<qf2`` pairs closer than this ``"... qf1<qf2 (gap<N)"``:
        near-equal QFs are the hard case of the estimators.
    """
    if int(qf2) < 0:
        return "single"
    order = qf_order(qf1, qf2)
    label = f"{'aligned' if aligned else 'nonaligned'} {order}"
    if split_gap is not None and order == "qf1<qf2" and int(qf2) - int(qf1) < split_gap:
        label += f" (gap<{split_gap})"
    return label


def apply_chain(
    pixels: np.ndarray,
    stages: Sequence[Stage],
    *,
    backend: Literal["pillow", "jpeglib"] = "pillow",
    version: str | None = None,
    subsampling: str = "4:2:0",
    decode_last: bool = True,
) -> ChainResult:
    """Run a degradation chain on clean pixels.

    Parameters
    ----------
    pixels : ndarray, uint8, (H, W) gray or (H, W, 3) RGB
        The clean image; never modified.
    stages : sequence of JpegStage, ShiftStage, CropStage, ResizeStage
        Applied left to right; at least one JpegStage.
    backend, version, subsampling
        Passed to :func:`jpegbench.codec.encode`; decoding uses the same
        backend and version.
    decode_last : bool
        ``False`` skips decoding a final JPEG stage (``lq_pixels`` is then
        ``None``): for callers that only keep ``lq_bytes``.

    Returns
    -------
    ChainResult
        ``hq_pixels`` is ``pixels`` with the same shift/crop/resize stages, so
        ``lq_pixels.shape == hq_pixels.shape``.

    Raises
    ------
    ShapeError
        A stage does not fit the image at that point of the chain.
    InputError, QualityError
        Invalid stages or encoder options.
    """
    pixels = check_pixels(pixels)
    stages = _check_stages(stages)
    if subsampling not in SUBSAMPLINGS:
        raise InputError(f"subsampling must be one of {SUBSAMPLINGS}, got {subsampling!r}")
    params = chain_params(stages)
    lq, hq = pixels, pixels
    lq_bytes: bytes | None = None
    for i, s in enumerate(stages):
        if isinstance(s, JpegStage):
            lq_bytes = encode(lq, s.qf, backend=backend, version=version, subsampling=subsampling)
            last = i == len(stages) - 1
            lq = None if last and not decode_last else decode(lq_bytes, backend=backend, version=version)
            continue
        lq_bytes = None
        if isinstance(s, ShiftStage):
            lq, hq = shift_image(lq, (s.dy, s.dx)), shift_image(hq, (s.dy, s.dx))
        elif isinstance(s, CropStage):
            lq, hq = crop_image(lq, s), crop_image(hq, s)
        else:
            lq = resize_image(lq, s.height, s.width, method=s.method)
            hq = resize_image(hq, s.height, s.width, method=s.method)
    if hq is pixels:
        hq = pixels.copy()
    params.update(height=int(hq.shape[0]), width=int(hq.shape[1]))
    return ChainResult(lq_bytes, lq, hq, params)


def double_jpeg(
    pixels: np.ndarray,
    qf1: int,
    qf2: int,
    shift: tuple[int, int] = (4, 4),
    **encoder: Any,
) -> ChainResult:
    """``JPEG(qf1) -> shift -> JPEG(qf2)``; ``shift=(0, 0)`` is aligned double JPEG.

    ``encoder`` takes the keyword options of :func:`apply_chain`
    (``backend``, ``version``, ``subsampling``).
    """
    dy, dx = check_shift(shift)
    stages: list[Stage] = [JpegStage(qf1)]
    if (dy, dx) != (0, 0):
        stages.append(ShiftStage(dy, dx))
    stages.append(JpegStage(qf2))
    return apply_chain(pixels, stages, **encoder)
