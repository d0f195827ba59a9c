"""Recompression MSE curves over the 64 grid shifts and a range of QFs (the FBCNN-D measurement).

For every grid shift ``(dy, dx)`` and every quality ``qf`` the image is
re-aligned to the 8x8 grid a first compression would have had if the image
had been shifted by ``(dy, dx)`` after it, recompressed at ``qf``, decoded,
and compared with itself. A JPEG grid the image really went through shows up
as a curve that drops towards zero at that grid's QF.

Geometry (one convention, used by every backend)
------------------------------------------------
A double JPEG in a jpegbench corpus is ``y = JPEG(shift(JPEG(x, qf1), (dy, dx)), qf2)``
where ``shift`` removes the first ``dy`` rows and ``dx`` columns. The first
compression's grid then starts at row ``(8 - dy) % 8`` and column
``(8 - dx) % 8`` of ``y``. So the curve for shift ``(dy, dx)`` is computed on
the **crop** ``y[cy : cy + h, cx : cx + w]`` with ``(cy, cx) =
crop_for_shift((dy, dx)) = ((8 - dy) % 8, (8 - dx) % 8)`` (the map is its own
inverse). Every crop has the same size ``h = 8 * ((H - 7) // 8)``, ``w = 8 *
((W - 7) // 8)``, so every shift is measured on the same number of whole
blocks (for ``H`` a multiple of 8 the last block row is left out of every
shift, the aligned one included). ``MSECurves.mse[dy, dx]`` is the curve of
shift ``(dy, dx)``; ``mse[0, 0]`` is the grid of the last compression.

Backends
--------
``"reference"`` (the definition)
    Encode the crop with :func:`jpegbench.codec.encode` at each QF (IJG
    tables, gray, ``islow`` DCT), decode with :func:`jpegbench.codec.decode`,
    and take the pixel-domain MSE between the crop and its recompression.
``"fast"``
    The same computation without entropy coding: libjpeg's integer forward
    DCT, its quantizer, and its integer inverse DCT with the decoder's
    range-limit table, emulated bit for bit (see :mod:`._fast`), so the curves
    are **identical** to the reference ones (exact integer sums; tested).
    On CPU it runs a small C kernel built at install time (on a 768 x 512
    image 23-28x faster than the reference with both cores of a 2-core
    machine, 14-19x on one thread; BENCHMARKS.md),
    elsewhere (CUDA, or an install without a C compiler) the same arithmetic
    in torch, batched over images.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal, Sequence

import numpy as np

from jpegbench.codec import check_pixels, check_qf, check_shift, decode, encode, encoder_info, rgb_to_y
from jpegbench.errors import ImageReadError, InputError, ShapeError

__all__ = [
    "MSECurves",
    "mse_curves",
    "mse_curves_batch",
    "crop_for_shift",
    "shift_for_crop",
    "crop_geometry",
    "MIN_SIZE",
]

MIN_SIZE = 16
# Bumped whenever the fast backend's numbers change (caches of curves key on it).
# 1: orthonormal float IDCT; 2: libjpeg's integer IDCT emulated exactly (curves equal the reference).
FAST_CURVES_REVISION = 2
CurveBackend = Literal["fast", "reference"]
ALL_SHIFTS: tuple[tuple[int, int], ...] = tuple((dy, dx) for dy in range(8) for dx in range(8))


def crop_for_shift(shift: Sequence[int]) -> tuple[int, int]:
    """The crop ``(cy, cx)`` that re-aligns an image to a first grid shifted by ``(dy, dx)``.

    ``(cy, cx) = ((8 - dy) % 8, (8 - dx) % 8)``; the map is an involution, so
    :func:`shift_for_crop` is the same formula.
    """
    dy, dx = check_shift(shift)
    return (8 - dy) % 8, (8 - dx) % 8


def shift_for_crop(crop: Sequence[int]) -> tuple[int, int]:
    """Inverse of :func:`crop_for_shift` (the same formula)."""
    cy, cx = check_shift(crop)
    return (8 - cy) % 8, (8 - cx) % 8


def crop_geometry(height: int, width: int) -> tuple[int, int]:
    """Size ``(h, w)`` of every shift's crop: the largest multiples of 8 that fit after removing 7."""
    return 8 * ((height - 7) // 8), 8 * ((width - 7) // 8)


@dataclass
class MSECurves:
    """Recompression MSE of one image for every grid shift and QF.

    Attributes
    ----------
    mse : ndarray, float64, shape (8, 8, n_qf)
        ``mse[dy, dx, i]``: mean squared error (pixel domain, 8-bit units)
        between the crop for shift ``(dy, dx)`` and its recompression at
        ``qfs[i]``. Shifts that were not computed are NaN.
    qfs : ndarray, int64, shape (n_qf,)
        Ascending qualities.
    backend : {"fast", "reference"}
    image_shape : (H, W) of the gray image.
    crop_shape : (h, w) of every crop (see the module docstring).
    conventions : dict
        Encoder (for ``"reference"``) or emulated DCT/IDCT, and the geometry, for the record.
    """

    mse: np.ndarray
    qfs: np.ndarray
    backend: str
    image_shape: tuple[int, int]
    crop_shape: tuple[int, int]
    conventions: dict = field(default_factory=dict)

    def curve(self, shift: Sequence[int]) -> np.ndarray:
        """The curve for first-grid shift ``(dy, dx)``, shape ``(n_qf,)``."""
        dy, dx = check_shift(shift)
        return self.mse[dy, dx]

    @property
    def aligned(self) -> np.ndarray:
        """The curve on the last compression's grid (shift ``(0, 0)``)."""
        return self.mse[0, 0]

    @property
    def computed_shifts(self) -> list[tuple[int, int]]:
        """Shifts whose curve was computed (not NaN)."""
        ok = ~np.isnan(self.mse).any(axis=2)
        return [(int(a), int(b)) for a, b in zip(*np.nonzero(ok))]

    def qf_index(self, qf: int) -> int:
        """Position of ``qf`` in :attr:`qfs`."""
        hits = np.flatnonzero(self.qfs == int(qf))
        if hits.size == 0:
            raise InputError(f"qf {qf} is not among the curves' qfs ({self.qfs.min()}..{self.qfs.max()})")
        return int(hits[0])

    # -- serialisation: the one owner of the curves' file layout ---------------

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The curves as named numpy arrays (the layout of :meth:`save`; ``np.savez`` takes it as is).

        Keys, in order: ``mse`` (float64, ``(8, 8, n_qf)``), ``qfs`` (int64),
        ``backend`` (str), ``image_shape`` and ``crop_shape`` (int, ``(2,)``),
        ``conventions`` (str, JSON).
        """
        return {
            "mse": np.asarray(self.mse, dtype=np.float64),
            "qfs": np.asarray(self.qfs, dtype=np.int64),
            "backend": np.str_(self.backend),
            "image_shape": np.asarray(self.image_shape),
            "crop_shape": np.asarray(self.crop_shape),
            "conventions": np.str_(json.dumps(self.conventions, default=str)),
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, Any]) -> MSECurves:
        """Rebuild curves from :meth:`to_arrays`'s layout (e.g. an open ``.npz``).

        ``mse`` and ``qfs`` are required; ``backend`` (default ``"fast"``),
        ``image_shape``, ``crop_shape`` (default ``(0, 0)``: unknown) and
        ``conventions`` (default empty) may be missing.

        Raises
        ------
        ShapeError
            ``mse`` is not ``(8, 8, len(qfs))``.
        """
        mse = np.asarray(arrays["mse"], dtype=np.float64)
        qfs = np.asarray(arrays["qfs"], dtype=np.int64)
        if mse.ndim != 3 or mse.shape[:2] != (8, 8) or qfs.ndim != 1 or mse.shape[2] != qfs.size:
            raise ShapeError(f"mse must have shape (8, 8, {qfs.size}), got {mse.shape}")

        def get(key: str, default: Any) -> Any:
            return arrays[key] if key in arrays else default

        conventions = get("conventions", None)
        return cls(
            mse=mse,
            qfs=qfs,
            backend=str(get("backend", "fast")),
            image_shape=tuple(int(v) for v in get("image_shape", (0, 0))),
            crop_shape=tuple(int(v) for v in get("crop_shape", (0, 0))),
            conventions={} if conventions is None else json.loads(str(conventions)),
        )

    def save(self, path: str | os.PathLike[str], **extra: Any) -> Path:
        """Write the curves to an ``.npz`` file atomically (temporary file, then rename).

        ``extra`` arrays (e.g. a cache's ``seconds``) are stored after the
        curves' own keys; :meth:`load` ignores them.
        """
        from jpegbench._fs import atomic_write_bytes

        buf = io.BytesIO()
        np.savez(buf, **self.to_arrays(), **extra)
        atomic_write_bytes(path, buf.getvalue())
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> MSECurves:
        """Read curves written by :meth:`save`.

        Raises
        ------
        ImageReadError
            The file is missing or not an ``.npz`` of curves.
        """
        try:
            # Our own handle: np.load leaks the one it opens when the file is not a zip archive.
            with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
                return cls.from_arrays(z)
        except (OSError, ValueError, KeyError) as exc:
            raise ImageReadError(f"{path}: not a file of MSE curves ({exc})") from None


def _as_gray(pixels: object, luma: str, name: str = "pixels") -> np.ndarray:
    if isinstance(pixels, np.ndarray) and pixels.dtype != np.uint8:
        raise ShapeError(
            f"{name} must be 8-bit (dtype uint8), got {pixels.dtype}; convert 16-bit or float images to uint8 first"
        )
    x = check_pixels(pixels, name=name, min_size=MIN_SIZE)
    return rgb_to_y(x, definition=luma) if x.ndim == 3 else x


def _check_qfs(qfs: Iterable[int]) -> np.ndarray:
    if isinstance(qfs, (str, bytes)):
        raise InputError(f"qfs must be an iterable of integers in 1..100, got {qfs!r}")
    try:
        values = [check_qf(q, name="qfs entry") for q in qfs]
    except TypeError:
        raise InputError(f"qfs must be an iterable of integers in 1..100, got {qfs!r}") from None
    if not values:
        raise InputError("qfs must contain at least one quality factor")
    arr = np.array(sorted(values), dtype=np.int64)
    if np.any(np.diff(arr) == 0):
        raise InputError("qfs must not contain duplicates")
    return arr


def _check_shifts(shifts: object) -> list[tuple[int, int]]:
    if isinstance(shifts, str):
        if shifts == "all":
            return list(ALL_SHIFTS)
        if shifts == "aligned":
            return [(0, 0)]
        raise InputError(f"shifts must be 'all', 'aligned' or a list of (dy, dx) pairs, got {shifts!r}")
    try:
        out = sorted({check_shift(s) for s in shifts})  # type: ignore[union-attr]
    except TypeError:
        raise InputError(f"shifts must be 'all', 'aligned' or a list of (dy, dx) pairs, got {shifts!r}") from None
    if not out:
        raise InputError("shifts must contain at least one (dy, dx) pair")
    return out


def mse_curves(
    pixels: np.ndarray,
    *,
    qfs: Iterable[int] = range(1, 101),
    backend: CurveBackend = "fast",
    device: object = None,
    shifts: str | Iterable[Sequence[int]] = "all",
    codec: str = "pillow",
    codec_version: str | None = None,
    chunk_blocks: int | None = None,
    num_threads: int | None = None,
    luma: str = "bt601-full",
) -> MSECurves:
    """Recompression MSE curves of one image over grid shifts and QFs.

    Parameters
    ----------
    pixels : ndarray, uint8, shape (H, W) or (H, W, 3)
        At least 16x16. RGB is reduced to one plane with
        :func:`jpegbench.codec.rgb_to_y` using ``luma``.
    qfs : iterable of int in 1..100
        Qualities to recompress at (sorted; duplicates are an error).
    backend : {"fast", "reference"}
        See the module docstring. ``"reference"`` is slow (one encode and one
        decode per shift and QF) and is the definition ``"fast"`` is tested against.
    device : str or torch.device, optional
        Fast backend only: ``"cpu"`` (default) or ``"cuda"``.
    shifts : "all", "aligned" or iterable of (dy, dx)
        Which first-grid shifts to compute (manifest convention); the others are NaN.
    codec, codec_version : str
        Reference backend only: the :func:`jpegbench.codec.encode` backend
        (``"pillow"`` or ``"jpeglib"``) and its libjpeg version.
    chunk_blocks : int, optional
        Fast backend, torch implementation only (CUDA, or CPU without the C
        kernel): blocks processed together; working memory is a few tens of
        kB per block of ``chunk_blocks`` (default 2048 on CPU, 65536 on
        CUDA) whatever the image size. The C kernel needs no working memory
        to speak of and ignores it.
    num_threads : int, optional
        Fast backend on CPU only. With the C kernel: threads that share the
        shifts of each image (the kernel releases the GIL); default
        ``torch.get_num_threads()`` when torch is loaded (all cores unless
        ``OMP_NUM_THREADS`` or ``torch.set_num_threads`` says otherwise),
        else the same rule without importing torch (``OMP_NUM_THREADS``,
        else the CPUs this process may use). With the torch
        implementation: torch intra-op threads for this call, default 1
        (its many small ops lose more to thread hand-offs than they gain;
        the previous setting is restored afterwards).
    luma : {"bt601-full", "bt601-studio"}
        How RGB input becomes one plane. The default is the full-range luma
        a JFIF encoder quantizes: on a decoded colour JPEG it keeps the
        recompression at the file's QF near-exact (MSE ~0.03), while the
        package's studio-swing gray rescales the quantization lattice by
        219/255 and hides it (MSE ~2 at QF 30, measured on LIVE1 parrots).
        Gray input is used as it is.

    Returns
    -------
    MSECurves

    Raises
    ------
    ShapeError
        Not a uint8 (H, W) / (H, W, 3) array, or smaller than 16x16.
    InputError
        Bad ``qfs``, ``shifts``, ``backend`` or ``device``.

    References
    ----------
    J. Jiang, K. Zhang, R. Timofte, "Towards Flexible Blind JPEG Artifacts
    Removal", ICCV 2021 (FBCNN-D: recompression MSE over the 64 shifts).
    """
    return mse_curves_batch(
        [pixels], qfs=qfs, backend=backend, device=device, shifts=shifts, codec=codec,
        codec_version=codec_version, chunk_blocks=chunk_blocks, num_threads=num_threads, luma=luma,
    )[0]  # fmt: skip


def mse_curves_batch(
    images: Sequence[np.ndarray],
    *,
    qfs: Iterable[int] = range(1, 101),
    backend: CurveBackend = "fast",
    device: object = None,
    shifts: str | Iterable[Sequence[int]] = "all",
    codec: str = "pillow",
    codec_version: str | None = None,
    chunk_blocks: int | None = None,
    num_threads: int | None = None,
    luma: str = "bt601-full",
) -> list[MSECurves]:
    """:func:`mse_curves` for several images (of any sizes); the fast backend batches their blocks."""
    if isinstance(images, np.ndarray):
        raise InputError("mse_curves_batch expects a list of images; use mse_curves for one array")
    grays = [_as_gray(im, luma, name=f"images[{i}]") for i, im in enumerate(images)]
    qf_arr = _check_qfs(qfs)
    shift_list = _check_shifts(shifts)
    if backend == "reference":
        if device is not None or chunk_blocks is not None or num_threads is not None:
            raise InputError("device, chunk_blocks and num_threads apply to backend='fast' only")
        info = encoder_info(codec, codec_version)  # validates codec/version
        out = []
        for g in grays:
            mse = _reference(g, qf_arr, shift_list, codec, codec_version)
            conv = {"encoder": info.as_dict(), "luma": luma, "dct_method": "islow"}
            out.append(_wrap(mse, qf_arr, "reference", g.shape, conv))
        return out
    if backend != "fast":
        raise InputError(f"backend must be 'fast' or 'reference', got {backend!r}")
    if codec != "pillow" or codec_version is not None:
        raise InputError("codec and codec_version apply to backend='reference' only")
    from jpegbench.estimate._fast import fast_sse, implementation

    impl = implementation(device)
    crops = [crop_for_shift(s) for s in shift_list]
    sse = fast_sse(grays, qf_arr, crops, device=device, chunk_blocks=chunk_blocks, num_threads=num_threads)
    out = []
    for g, s in zip(grays, sse):
        h, w = crop_geometry(*g.shape)
        mse = np.full((8, 8, qf_arr.size), np.nan)
        for (dy, dx), row in zip(shift_list, s):
            mse[dy, dx] = row / (h * w)
        conv = {"dct": "libjpeg islow (emulated exactly)", "quantizer": "libjpeg (emulated exactly)",
                "idct": "libjpeg islow + range limit (emulated exactly)", "implementation": impl,
                "luma": luma}  # fmt: skip
        out.append(_wrap(mse, qf_arr, "fast", g.shape, conv))
    return out


def _wrap(mse: np.ndarray, qfs: np.ndarray, backend: str, shape: tuple[int, int], conv: dict) -> MSECurves:
    h, w = crop_geometry(*shape)
    conv = dict(conv, geometry="mse[dy, dx] on crop ((8-dy)%8, (8-dx)%8) of size (8*((H-7)//8), 8*((W-7)//8))")
    return MSECurves(mse=mse, qfs=qfs.copy(), backend=backend, image_shape=tuple(shape), crop_shape=(h, w),
                     conventions=conv)  # fmt: skip


def _reference(
    gray: np.ndarray, qfs: np.ndarray, shifts: list[tuple[int, int]], codec: str, version: str | None
) -> np.ndarray:
    h, w = crop_geometry(*gray.shape)
    mse = np.full((8, 8, qfs.size), np.nan)
    for dy, dx in shifts:
        cy, cx = crop_for_shift((dy, dx))
        crop = np.ascontiguousarray(gray[cy : cy + h, cx : cx + w])
        ref = crop.astype(np.float64)
        for i, qf in enumerate(qfs):
            rec = decode(encode(crop, int(qf), backend=codec, version=version), backend=codec, version=version)
            mse[dy, dx, i] = np.mean((rec.astype(np.float64) - ref) ** 2)
    return mse
