"""The table-guided restoration methods (qcn, qgcn, ijcn and their ``-d`` twins): JPEG file in, Restoration out.

What each method reads and which tables it gives its network is written in
:mod:`jpegbench.models.methods` (the registry); the tiling in
:mod:`jpegbench.models.guided_inference`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from jpegbench.codec import (
    JpegCoefficients,
    JpegHeader,
    check_pixels,
    decode,
    ijg_qtable,
    image_from_bytes,
    qf_from_qtables,
    read_coefficients,
    read_header,
    read_regular_file,
)
from jpegbench.errors import ImageReadError, InputError, QualityError, UnsupportedImageError
from jpegbench.models._method import BaseMethod
from jpegbench.models._restoration import Restoration, dominant_qf
from jpegbench.models.guided_inference import restore_ijcn, restore_qcn
from jpegbench.models.guided_weights import find_guided_weights, load_guided_model
from jpegbench.models.ijcn import IJCN

__all__ = ["GUIDED_METHODS", "GuidedMethod"]

#: Table-guided method -> architecture.
GUIDED_METHODS: dict[str, str] = {
    "qcn": "qcn", "qcn-d": "qcn", "qgcn": "qgcn", "qgcn-d": "qgcn", "ijcn": "ijcn", "ijcn-d": "ijcn",
}  # fmt: skip

_SOI = b"\xff\xd8"


@dataclass
class _Source:
    """One input of a table-guided method: what it holds of the JPEG file."""

    name: str
    data: bytes | None = None  # the file's bytes (None for pixels given in memory)
    pixels: np.ndarray | None = None  # decoded, when needed
    tables: list[np.ndarray] | None = None  # per component (Y, Cb, Cr), natural order; None without a JPEG
    coefficients: JpegCoefficients | None = None  # IJCN only
    color: bool = False


def _source_bytes(source: object) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), "<bytes>"
    if isinstance(source, (str, os.PathLike)):
        return read_regular_file(source, kind="an image"), str(source)
    raise InputError(f"a table-guided method takes a JPEG file's path or bytes, got {type(source).__name__}")


def _table_qf(qf: object) -> int:
    if isinstance(qf, bool) or not isinstance(qf, (int, float, np.integer, np.floating)) or not 1 <= qf <= 100:
        raise QualityError(f"qf must be a number in 1..100, got {qf!r}")
    return int(min(100, max(1, round(float(qf)))))


def _ijg_tables(qf: int) -> list[np.ndarray]:
    return [ijg_qtable(qf), ijg_qtable(qf, chroma=True)]


class GuidedMethod(BaseMethod):
    """A table-guided restoration method (QCN, QGCN, IJCN or a ``-d`` twin); call it on a JPEG file.

    Build with :func:`jpegbench.models.get_method`. Models are loaded on
    first use and kept; which tables each method gives its network, the QF
    it records and the inputs it accepts are written in
    :mod:`jpegbench.models.methods`.
    """

    #: Called on a file's path or bytes, not on decoded pixels.
    reads_file = True

    def __init__(self, name: str, **settings: Any) -> None:
        # settings: those of BaseMethod (weights, weights_dir, device, tile, overlap, estimator, estimate_fn).
        super().__init__(name, **settings)
        self.architecture = GUIDED_METHODS[name]
        self.dominant = name.endswith("-d")

    def _find_weights(self, channels: int) -> Path:
        return find_guided_weights(self.architecture, channels=channels, weights_dir=self._weights_dir)

    def _load(self, path: Path) -> nn.Module:
        return load_guided_model(path, architecture=self.architecture, device=self._device,
                                 weights_dir=self._weights_dir)  # fmt: skip

    # -- what an input may be ---------------------------------------------------------

    def _takes_pixels(self, qf: object) -> bool:
        # Tables not read from the file: the -d twins of QCN/QGCN, or a manual QF.
        return self.architecture != "ijcn" and (self.dominant or qf is not None)

    def _no_tables(self, name: str) -> str:
        what = "DCT coefficients and quantization tables" if self.architecture == "ijcn" else "quantization tables"
        also = "" if self.architecture == "ijcn" else f" ({self.architecture}-d accepts images without tables)"
        return f"{name}: not a JPEG file; method {self.name!r} reads the file's {what}, which it lacks{also}"

    def _refuse_header(self, hdr: JpegHeader, name: str, model_channels: int | None) -> None:
        arch = self.architecture.upper()
        if self.architecture == "ijcn":
            if hdr.color == "gray":
                raise UnsupportedImageError(f"{name}: IJCN restores colour JPEGs only; this file is gray")
            if hdr.color == "ycbcr" and hdr.subsampling != "4:2:0":
                raise UnsupportedImageError(
                    f"{name}: IJCN needs 4:2:0 chroma subsampling (its layout pairs 2x2 luma blocks with one "
                    f"chroma block); this file is {hdr.subsampling}"
                )
        elif hdr.color == "gray" and model_channels == 3:
            raise UnsupportedImageError(f"{name}: a colour {arch} needs a colour JPEG (luma and chroma tables); "
                                        "this file is gray")  # fmt: skip

    def check(self, source: object, *, qf: float | None = None) -> tuple[int, int] | None:
        """Refuse, before any work, an input this method cannot take; return its ``(height, width)`` if known.

        Reads the JPEG header only, and loads the model the image needs, so
        that a missing or wrong weight file fails here too. A file whose
        header cannot be read returns None: the restoration then skips it,
        as for FBCNN.

        Raises
        ------
        ImageReadError
            Not a JPEG, for a method that reads the file's tables.
        UnsupportedImageError
            A gray JPEG for IJCN or for a colour model; IJCN and not 4:2:0.
        WeightsError
            No weights for the image, or a bad weight file.
        """
        if isinstance(source, np.ndarray):
            pixels = check_pixels(source)
            if not self._takes_pixels(qf):
                raise InputError(self._no_tables("<pixels>").replace("not a JPEG file", "decoded pixels"))
            self.model(1 if pixels.ndim == 2 else 3)
            return pixels.shape[0], pixels.shape[1]
        try:
            data, name = _source_bytes(source)
        except ImageReadError:
            return None  # unreadable: skipped by the restoration, as for FBCNN
        if data[:2] != _SOI:
            if not self._takes_pixels(qf):
                raise ImageReadError(self._no_tables(name))
            return None
        try:
            hdr = read_header(data)
        except ImageReadError:
            return None
        self._refuse_header(hdr, name, None)
        model, _ = self.model(1 if hdr.color == "gray" else 3)
        self._refuse_header(hdr, name, _image_channels(model))
        return hdr.height, hdr.width

    def _read(self, source: object, qf: int | None, max_pixels: int | None) -> _Source:
        if isinstance(source, np.ndarray):
            if not self._takes_pixels(qf):
                raise InputError(self._no_tables("<pixels>").replace("not a JPEG file", "decoded pixels"))
            pixels = check_pixels(source)
            return _Source("<pixels>", pixels=pixels, color=pixels.ndim == 3)
        data, name = _source_bytes(source)
        if data[:2] != _SOI:
            if not self._takes_pixels(qf):
                raise ImageReadError(self._no_tables(name))
            pixels = image_from_bytes(data, name=name, max_pixels=max_pixels)
            return _Source(name, data=data, pixels=pixels, color=pixels.ndim == 3)
        if self.architecture == "ijcn":
            coefs = read_coefficients(data, max_pixels=max_pixels, name=name)
            return _Source(name, data=data, tables=list(coefs.qtables), coefficients=coefs,
                           color=coefs.color != "gray")  # fmt: skip
        hdr = read_header(data)
        pixels = decode(data, max_pixels=max_pixels)
        missing = [c["id"] for c in hdr.components if c["tq"] not in hdr.qtables]
        if missing:
            raise ImageReadError(f"{name}: no quantization table defined for component(s) {missing}")
        tables = [hdr.qtables[c["tq"]] for c in hdr.components]
        return _Source(name, data=data, pixels=pixels, tables=tables, color=pixels.ndim == 3)

    # -- which tables -------------------------------------------------------------------

    def _tables(self, src: _Source, qf: int | None, n_tables: int) -> tuple[list[np.ndarray], float, str]:
        """The (luma, chroma) tables to give the network, the QF they stand for, and where it came from."""
        if qf is not None:
            return _ijg_tables(qf), float(qf), "manual"
        if self.dominant:
            if src.pixels is None:  # ijcn-d: the estimator reads pixels, as fbcnn-d's does
                src.pixels = decode(src.data)  # type: ignore[arg-type]
            dominant = dominant_qf(self._estimate_fn, self._estimator, src.pixels)
            if dominant is not None:
                q = _table_qf(dominant)
                return _ijg_tables(q), float(q), "dominant"
            if src.tables is None:
                raise ImageReadError(f"{src.name}: the estimator found no dominant QF and the image has no "
                                     f"quantization tables to fall back on; pass a manual QF to {self.name}")
        assert src.tables is not None
        found = qf_from_qtables(src.tables[:n_tables])
        return src.tables, float(found.qf), "tables" if found.ijg else "tables-approx"

    def __call__(self, source: object, *, qf: float | None = None, max_pixels: int | None = None) -> Restoration:
        """Restore one JPEG file.

        Parameters
        ----------
        source : str, PathLike or bytes
            The JPEG file (its path or bytes). ``qcn-d``, ``qgcn-d`` (and
            ``qcn``, ``qgcn`` with a manual ``qf``) also take another image
            file or decoded uint8 pixels.
        qf : float, optional
            Manual QF (1..100, rounded): the network gets the IJG tables of it.
        max_pixels : int, optional
            Decompression-bomb limit (default :func:`jpegbench.codec.default_max_pixels`).

        Returns
        -------
        Restoration
            ``qf_predicted`` is None; ``qf_used`` and ``qf_source`` say which tables were given.
        """
        qf_int = None if qf is None else _table_qf(qf)
        src = self._read(source, qf_int, max_pixels)
        model, path = self.model(3 if src.color else 1)
        start = time.perf_counter()
        if self.architecture == "ijcn":
            tables, qf_used, qf_source = self._tables(src, qf_int, 2)
            given = None if qf_source.startswith("tables") else tables
            image, _ = restore_ijcn(model, src.coefficients, tables=given, tile=self._tile,  # type: ignore[arg-type]
                                    overlap=self._overlap, device=self._device, name=src.name)  # fmt: skip
        else:
            n_maps = model.config["in_channel"] - model.config["out_channel"]
            tables, qf_used, qf_source = self._tables(src, qf_int, n_maps)
            image, _ = restore_qcn(model, src.pixels, tables[:n_maps], tile=self._tile,  # type: ignore[arg-type]
                                   overlap=self._overlap, device=self._device)  # fmt: skip
        return Restoration(image, None, qf_used, method=self.name, weights=path, seconds=time.perf_counter() - start,
                           qf_source=qf_source, color_path="color" if src.color else "gray")


def _image_channels(model: nn.Module) -> int:
    return 3 if isinstance(model, IJCN) else int(model.config["out_channel"])
