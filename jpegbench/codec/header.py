"""Read a JPEG file's header (markers up to the first scan) without decoding pixels.

Gives what forensics needs: frame type (baseline / progressive / extended /
lossless, Huffman or arithmetic), sample precision, components and their
sampling factors, quantization tables (natural order), Adobe colour
transform and EXIF orientation. Malformed input raises
:class:`~jpegbench.errors.ImageReadError` with the offset of the problem.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from jpegbench.codec._validate import read_regular_file
from jpegbench.errors import ImageReadError

__all__ = ["JpegHeader", "read_header", "ZIGZAG"]

# ZIGZAG[k] = natural (row-major) index of the k-th coefficient in zig-zag order.
ZIGZAG = np.array(
    [0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14,
     21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53,
     60, 61, 54, 47, 55, 62, 63]
)  # fmt: skip

_SOF = {
    0xC0: ("baseline", "huffman"), 0xC1: ("extended", "huffman"), 0xC2: ("progressive", "huffman"),
    0xC3: ("lossless", "huffman"), 0xC5: ("differential-sequential", "huffman"),
    0xC6: ("differential-progressive", "huffman"), 0xC7: ("differential-lossless", "huffman"),
    0xC9: ("extended", "arithmetic"), 0xCA: ("progressive", "arithmetic"), 0xCB: ("lossless", "arithmetic"),
    0xCD: ("differential-sequential", "arithmetic"), 0xCE: ("differential-progressive", "arithmetic"),
    0xCF: ("differential-lossless", "arithmetic"),
}  # fmt: skip


@dataclass
class JpegHeader:
    """What the markers before the first scan say about a JPEG file."""

    width: int = 0
    height: int = 0
    precision: int = 8
    mode: str = ""  # baseline | extended | progressive | lossless | differential-*
    coding: str = ""  # huffman | arithmetic
    components: list[dict] = field(default_factory=list)  # {id, h, v, tq}
    qtables: dict[int, np.ndarray] = field(default_factory=dict)  # slot -> (8, 8) natural order
    adobe_transform: int | None = None
    orientation: int | None = None
    scan_offset: int = 0  # byte offset of the first SOS marker
    complete: bool = False  # an EOI marker follows the first scan

    @property
    def progressive(self) -> bool:
        return "progressive" in self.mode

    @property
    def color(self) -> str:
        n = len(self.components)
        if n == 1:
            return "gray"
        if n == 3:
            return "ycbcr" if self.adobe_transform in (None, 1) else "rgb"
        if n == 4:
            return "ycck" if self.adobe_transform == 2 else "cmyk"
        return f"{n}-component"

    @property
    def subsampling(self) -> str | None:
        """``"4:4:4"``, ``"4:2:2"``, ``"4:2:0"``, ``"4:4:0"``, ``"4:1:1"`` or ``"HxV,..."``; None for gray."""
        if len(self.components) < 3:
            return None
        y, cb, cr = self.components[:3]
        if (cb["h"], cb["v"]) != (cr["h"], cr["v"]) or cb["h"] != 1 or cb["v"] != 1:
            return ",".join(f"{c['h']}x{c['v']}" for c in self.components)
        return {(1, 1): "4:4:4", (2, 1): "4:2:2", (2, 2): "4:2:0", (1, 2): "4:4:0", (4, 1): "4:1:1"}.get(
            (y["h"], y["v"]), ",".join(f"{c['h']}x{c['v']}" for c in self.components)
        )

    def component_qtables(self) -> list[np.ndarray]:
        """Quantization tables in component order, duplicates removed (luma first)."""
        out: list[np.ndarray] = []
        seen: set[int] = set()
        for c in self.components:
            if c["tq"] in self.qtables and c["tq"] not in seen:
                seen.add(c["tq"])
                out.append(self.qtables[c["tq"]])
        return out


def _exif_orientation(payload: bytes) -> int | None:
    if not payload.startswith(b"Exif\x00\x00") or len(payload) < 14:
        return None
    tiff = payload[6:]
    endian = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if endian is None:
        return None
    try:
        (ifd,) = struct.unpack(endian + "I", tiff[4:8])
        (n,) = struct.unpack(endian + "H", tiff[ifd : ifd + 2])
        for i in range(n):
            tag, _typ, _cnt, value = struct.unpack(endian + "HHIH", tiff[ifd + 2 + 12 * i : ifd + 12 + 12 * i])
            if tag == 0x0112:
                return int(value)
    except struct.error:
        return None
    return None


def read_header(source: str | Path | bytes) -> JpegHeader:
    """Parse the markers of a JPEG file up to its first scan.

    Parameters
    ----------
    source : path or bytes

    Raises
    ------
    ImageReadError
        Missing file, not a JPEG, or a marker segment that runs past the end.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, name = bytes(source), "<bytes>"
    else:
        name = str(source)
        data = read_regular_file(source, kind="a JPEG file")
    if len(data) == 0:
        raise ImageReadError(f"{name}: empty file")
    if data[:2] != b"\xff\xd8":
        raise ImageReadError(f"{name}: not a JPEG file (no SOI marker)")
    hdr = JpegHeader()
    pos = 2
    while True:
        while pos < len(data) and data[pos] != 0xFF:
            pos += 1  # tolerate garbage between segments, as libjpeg does (with a warning)
        while pos < len(data) and data[pos] == 0xFF:
            pos += 1
        if pos >= len(data):
            raise ImageReadError(f"{name}: truncated JPEG (no scan found)")
        marker = data[pos]
        pos += 1
        if marker == 0xD9:
            raise ImageReadError(f"{name}: JPEG ends before any scan")
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            continue
        if pos + 2 > len(data):
            raise ImageReadError(f"{name}: truncated JPEG (marker 0xFF{marker:02X} at byte {pos - 2})")
        (length,) = struct.unpack(">H", data[pos : pos + 2])
        seg = data[pos + 2 : pos + length]
        if length < 2 or len(seg) != length - 2:
            raise ImageReadError(f"{name}: truncated or corrupt segment 0xFF{marker:02X} at byte {pos - 2}")
        pos += length
        if marker == 0xDB:
            _parse_dqt(seg, hdr, name)
        elif marker == 0xC4:
            _check_dht(seg, name)
        elif marker in _SOF:
            hdr.mode, hdr.coding = _SOF[marker]
            if len(seg) < 6:
                raise ImageReadError(f"{name}: corrupt frame header")
            hdr.precision, hdr.height, hdr.width, n = struct.unpack(">BHHB", seg[:6])
            if len(seg) < 6 + 3 * n:
                raise ImageReadError(f"{name}: corrupt frame header")
            for i in range(n):
                cid, hv, tq = seg[6 + 3 * i : 9 + 3 * i]
                hdr.components.append({"id": cid, "h": hv >> 4, "v": hv & 15, "tq": tq})
        elif marker == 0xEE and seg.startswith(b"Adobe") and len(seg) >= 12:
            hdr.adobe_transform = seg[11]
        elif marker == 0xE1 and hdr.orientation is None:
            hdr.orientation = _exif_orientation(seg)
        elif marker == 0xDA:
            if not hdr.components:
                raise ImageReadError(f"{name}: scan before frame header")
            hdr.scan_offset = pos - length - 2
            # 0xFFD9 cannot occur inside entropy-coded data (0xFF is stuffed), so an
            # EOI after the first scan means the file was not cut short.
            hdr.complete = data.rfind(b"\xff\xd9") > hdr.scan_offset
            return hdr


def _parse_dqt(seg: bytes, hdr: JpegHeader, name: str) -> None:
    i = 0
    while i < len(seg):
        pq, tq = seg[i] >> 4, seg[i] & 15
        size = 128 if pq else 64
        raw = seg[i + 1 : i + 1 + size]
        if len(raw) != size or tq > 3:
            raise ImageReadError(f"{name}: corrupt quantization table segment")
        vals = np.frombuffer(raw, dtype=">u2" if pq else np.uint8).astype(np.int64)
        table = np.empty(64, dtype=np.int64)
        table[ZIGZAG] = vals
        hdr.qtables[tq] = table.reshape(8, 8)
        i += 1 + size


def _check_dht(seg: bytes, name: str) -> None:
    # The structure libjpeg checks ("Bogus Huffman table definition"): class 0/1,
    # slot 0..3, at most 256 codes, and the code values inside the segment.
    i = 0
    while i < len(seg):
        counts = seg[i + 1 : i + 17]
        n = sum(counts)
        if len(counts) != 16 or seg[i] >> 4 > 1 or seg[i] & 15 > 3 or n > 256 or i + 17 + n > len(seg):
            raise ImageReadError(f"{name}: corrupt Huffman table segment")
        i += 17 + n
