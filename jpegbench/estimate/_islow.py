"""libjpeg's integer forward DCT (``jfdctint.c``, ``JDCT_ISLOW``) emulated in torch, bit for bit.

The encoder behind the reference curves (libjpeg-turbo via Pillow, and every
jpeglib version for ``dct_method="islow"``) computes this transform and then
quantizes with ``k = sign(t) * ((|t| + 4 q) // (8 q))`` (``jcdctmgr.c``: the
divisors are ``q << 3`` because the output is scaled up by 8). Emulating both
makes the fast backend's quantized coefficients identical to those the
encoder writes into the file (checked against ``jpeglib.read_dct`` in the
tests), so the fast and reference curves differ only by the decoder's IDCT.

References
----------
Independent JPEG Group, libjpeg 6b, ``jfdctint.c`` (C. Loeffler, A. Ligtenberg,
G. Moschytz, "Practical fast 1-D DCT algorithms with 11 multiplications",
ICASSP 1989), ``jcdctmgr.c``.
"""

from __future__ import annotations

import torch

__all__ = ["fdct_islow"]

_CONST_BITS = 13
_PASS1_BITS = 2
# FIX(x) = round(x * 2**13), as jfdctint.c spells them.
_F0298, _F0390, _F0541, _F0765 = 2446, 3196, 4433, 6270
_F0899, _F1175, _F1501, _F1847 = 7373, 9633, 12299, 15137
_F1961, _F2053, _F2562, _F3072 = 16069, 16819, 20995, 25172


def _descale(x: torch.Tensor, n: int) -> torch.Tensor:
    # libjpeg's DESCALE: round half up, arithmetic right shift.
    return (x + (1 << (n - 1))) >> n


def _pass(d: torch.Tensor, first: bool) -> torch.Tensor:
    """One 1-D pass of jfdctint along the last axis of an int32/int64 tensor."""
    d0, d1, d2, d3, d4, d5, d6, d7 = d.unbind(-1)
    tmp0, tmp7 = d0 + d7, d0 - d7
    tmp1, tmp6 = d1 + d6, d1 - d6
    tmp2, tmp5 = d2 + d5, d2 - d5
    tmp3, tmp4 = d3 + d4, d3 - d4
    tmp10, tmp13 = tmp0 + tmp3, tmp0 - tmp3
    tmp11, tmp12 = tmp1 + tmp2, tmp1 - tmp2
    if first:
        o0 = (tmp10 + tmp11) << _PASS1_BITS
        o4 = (tmp10 - tmp11) << _PASS1_BITS
        n = _CONST_BITS - _PASS1_BITS
    else:
        o0 = _descale(tmp10 + tmp11, _PASS1_BITS)
        o4 = _descale(tmp10 - tmp11, _PASS1_BITS)
        n = _CONST_BITS + _PASS1_BITS
    z1 = (tmp12 + tmp13) * _F0541
    o2 = _descale(z1 + tmp13 * _F0765, n)
    o6 = _descale(z1 - tmp12 * _F1847, n)
    z1, z2, z3, z4 = tmp4 + tmp7, tmp5 + tmp6, tmp4 + tmp6, tmp5 + tmp7
    z5 = (z3 + z4) * _F1175
    tmp4, tmp5, tmp6, tmp7 = tmp4 * _F0298, tmp5 * _F2053, tmp6 * _F3072, tmp7 * _F1501
    z1, z2 = z1 * -_F0899, z2 * -_F2562
    z3, z4 = z3 * -_F1961 + z5, z4 * -_F0390 + z5
    o7 = _descale(tmp4 + z1 + z3, n)
    o5 = _descale(tmp5 + z2 + z4, n)
    o3 = _descale(tmp6 + z2 + z3, n)
    o1 = _descale(tmp7 + z1 + z4, n)
    return torch.stack([o0, o1, o2, o3, o4, o5, o6, o7], dim=-1)


def fdct_islow(samples: torch.Tensor) -> torch.Tensor:
    """libjpeg's ``jpeg_fdct_islow`` on level-shifted 8x8 blocks.

    Parameters
    ----------
    samples : Tensor, integer, shape (..., 8, 8)
        Pixel values minus 128 (``-128..127``), rows then columns.

    Returns
    -------
    Tensor, int32, shape (..., 8, 8)
        DCT coefficients scaled up by 8 (``t[0, 0] == samples.sum()``), in
        natural order, exactly as the encoder computes them before quantizing.
    """
    x = samples.to(torch.int32)
    rows = _pass(x, first=True)
    return _pass(rows.transpose(-1, -2), first=False).transpose(-1, -2).contiguous()
