"""Mutated JPEGs never raise anything but a JpegbenchError (and never hang or crash the process).

Bounded and derandomized (the same 200 examples on every run). Mutations:
bit flips, byte overwrites, truncation, insertion of random bytes and
duplication of a whole marker segment, up to four of them stacked. libjpeg
may print warnings to stderr; that is fine.
"""

from __future__ import annotations

import struct
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jpegbench.codec import decode, encode, inspect_jpeg, read_header, read_image, to_gray
from jpegbench.errors import JpegbenchError
from jpegbench.estimate import estimate_qf

from .cases import base_rgb

SETTINGS = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


@lru_cache(maxsize=1)
def seeds() -> tuple[bytes, ...]:
    rgb = np.ascontiguousarray(base_rgb()[:24, :32])
    return (
        encode(to_gray(rgb), 50),
        encode(rgb, 75, subsampling="4:2:0"),
        encode(rgb, 30, progressive=True),
    )


def _segments(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each marker segment before the first scan."""
    out, pos = [], 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        (n,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        out.append((pos, pos + 2 + n))
        if data[pos + 1] == 0xDA:
            break
        pos += 2 + n
    return out


mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 2**16), st.integers(0, 7)),
    st.tuples(st.just("set"), st.integers(0, 2**16), st.integers(0, 255)),
    st.tuples(st.just("truncate"), st.integers(0, 2**16)),
    st.tuples(st.just("insert"), st.integers(0, 2**16), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("duplicate-segment"), st.integers(0, 64)),
)


def mutate(data: bytes, ops: list[tuple]) -> bytes:
    d = bytearray(data)
    for op in ops:
        if not d:
            break
        kind, pos = op[0], op[1] % len(d)
        if kind == "flip":
            d[pos] ^= 1 << op[2]
        elif kind == "set":
            d[pos] = op[2]
        elif kind == "truncate":
            del d[pos:]
        elif kind == "insert":
            d[pos:pos] = op[2]
        else:
            segs = _segments(bytes(d))
            if segs:
                a, b = segs[op[1] % len(segs)]
                d[b:b] = d[a:b]
    return bytes(d)


def _only_ours(fn, *args):
    """Call ``fn``; return its result, or None if it refused with a JpegbenchError."""
    try:
        return fn(*args)
    except JpegbenchError:
        return None


@SETTINGS
@given(seed=st.integers(0, 2), ops=st.lists(mutation, min_size=1, max_size=4))
def test_codec_survives_mutated_jpegs(seed, ops):
    data = mutate(seeds()[seed], ops)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "fuzz.jpg"
        path.write_bytes(data)
        _only_ours(read_header, data)
        _only_ours(inspect_jpeg, path)
        pixels = _only_ours(decode, data)
        image = _only_ours(read_image, path)
    if pixels is not None:
        assert pixels.dtype == np.uint8 and pixels.ndim in (2, 3)
        assert image is not None and np.array_equal(image, pixels)


@settings(SETTINGS, max_examples=60)
@given(seed=st.integers(0, 2), ops=st.lists(mutation, min_size=1, max_size=4))
def test_estimate_survives_whatever_decodes(seed, ops):
    pixels = _only_ours(decode, mutate(seeds()[seed], ops))
    if pixels is not None:
        _only_ours(estimate_qf, to_gray(pixels))
