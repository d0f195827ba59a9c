"""Describe JPEG files: geometry, colour, sampling, tables and the QF they imply."""

from __future__ import annotations

from pathlib import Path

from jpegbench.codec.header import read_header
from jpegbench.codec.qtables import qf_from_qtables
from jpegbench.errors import ImageReadError

__all__ = ["inspect_jpeg"]


def inspect_jpeg(path: str | Path, *, with_tables: bool = True) -> dict:
    """Return a JSON-ready description of a JPEG file (no pixel decoding).

    Keys: ``path, bytes, width, height, color, components, subsampling, mode,
    progressive, coding, precision, orientation, qf, qf_kind, qf_confidence,
    ijg_tables`` and, with ``with_tables``, ``qtables`` (lists of 8 rows,
    natural order, luma first).
    """
    p = Path(path)
    hdr = read_header(p)
    if hdr.width == 0 or hdr.height == 0:
        raise ImageReadError(f"{p}: JPEG frame has zero size ({hdr.width}x{hdr.height})")
    if not hdr.complete:
        raise ImageReadError(f"{p}: truncated JPEG (no end-of-image marker after the scan data)")
    tables = hdr.component_qtables()
    if not tables:
        raise ImageReadError(f"{p}: JPEG has no quantization table for its components")
    est = qf_from_qtables(tables[:2])
    info = {
        "path": str(p),
        "bytes": p.stat().st_size,
        "width": hdr.width,
        "height": hdr.height,
        "color": hdr.color,
        "components": len(hdr.components),
        "subsampling": hdr.subsampling,
        "mode": hdr.mode,
        "progressive": hdr.progressive,
        "coding": hdr.coding,
        "precision": hdr.precision,
        "orientation": hdr.orientation,
        "qf": est.qf,
        "qf_kind": est.kind,
        "qf_confidence": round(est.confidence, 4),
        "ijg_tables": est.ijg,
    }
    if with_tables:
        info["qtables"] = [t.tolist() for t in tables]
    return info
