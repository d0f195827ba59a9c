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


def _ipass(d: torch.Tensor, shift: int, center: int = 0) -> torch.Tensor:
    """One 1-D pass of jidctint along the last axis; outputs descaled by ``shift`` bits (0: not descaled)."""
    d0, d1, d2, d3, d4, d5, d6, d7 = d.unbind(-1)
    # even part
    z1 = (d2 + d6) * _F0541
    tmp2 = z1 - d6 * _F1847
    tmp3 = z1 + d2 * _F0765
    tmp0 = (d0 + d4) << _CONST_BITS
    tmp1 = (d0 - d4) << _CONST_BITS
    if center:
        # the decoder's level shift, added before the final descale (exact: a multiple of 2**shift)
        tmp0 = tmp0 + (center << shift)
        tmp1 = tmp1 + (center << shift)
    tmp10, tmp13 = tmp0 + tmp3, tmp0 - tmp3
    tmp11, tmp12 = tmp1 + tmp2, tmp1 - tmp2
    # odd part
    t0, t1, t2, t3 = d7, d5, d3, d1
    z1, z2, z3, z4 = t0 + t3, t1 + t2, t0 + t2, t1 + t3
    z5 = (z3 + z4) * _F1175
    t0, t1, t2, t3 = t0 * _F0298, t1 * _F2053, t2 * _F3072, t3 * _F1501
    z1, z2 = z1 * -_F0899, z2 * -_F2562
    z3, z4 = z3 * -_F1961 + z5, z4 * -_F0390 + z5
    t0 = t0 + z1 + z3
    t1 = t1 + z2 + z4
    t2 = t2 + z2 + z3
    t3 = t3 + z1 + z4
    out = (tmp10 + t3, tmp11 + t2, tmp12 + t1, tmp13 + t0, tmp13 - t0, tmp12 - t1, tmp11 - t2, tmp10 - t3)
    if shift == 0:
        return torch.stack(out, dim=-1)
    return torch.stack([_descale(o, shift) for o in out], dim=-1)


def idct_islow(coef: torch.Tensor) -> torch.Tensor:
    """libjpeg's ``jpeg_idct_islow`` (``jidctint.c``) on dequantized 8x8 blocks, bit for bit.

    Parameters
    ----------
    coef : Tensor, integer, shape (..., 8, 8)
        Dequantized coefficients (quantized value times table entry), natural order.

    Returns
    -------
    Tensor, int32, shape (..., 8, 8)
        The decoded samples 0..255, as libjpeg's C decoder writes them: columns
        first, descaled by ``CONST_BITS - PASS1_BITS`` bits, then rows,
        descaled by ``CONST_BITS + PASS1_BITS + 3``, level-shifted by 128 and
        passed through libjpeg's range-limit table (index masked with
        ``RANGE_MASK`` = 1023, so values far out of range wrap exactly as the
        decoder's table makes them).

    Notes
    -----
    Equal to Pillow's decoder (libjpeg-turbo, SIMD) on every block quantized
    from 8-bit samples (tested on LIVE1 and scikit-image photographs at QF
    1..100). On coefficients no 8-bit image quantizes to (decoded samples
    hundreds of levels out of range) it follows libjpeg's C code (tested
    against jpeglib's 6b and turbo 2.1 decoders), where libjpeg-turbo's SIMD
    code saturates 16-bit intermediates instead.
    """
    x = coef.to(torch.int32)
    cols = _ipass(x.transpose(-1, -2), _CONST_BITS - _PASS1_BITS).transpose(-1, -2)
    v = _ipass(cols, _CONST_BITS + _PASS1_BITS + 3)
    return range_limit(v)


def _pass_matrix() -> torch.Tensor:
    """jidctint's 1-D pass before its descale, as the integer matrix it is: ``raw = A @ d``.

    Every operation before the DESCALE is an integer addition or a
    multiplication by a constant, so the pass is linear in its 8 inputs.
    """
    eye = torch.eye(8, dtype=torch.int64)
    return _ipass(eye, 0).T.contiguous()  # row i of the raw output for unit input j -> A[i, j]


_PASS_A = _pass_matrix().to(torch.float64)


def idct_islow_unlimited(coef: torch.Tensor) -> torch.Tensor:
    """jidctint up to its range limit: the level-shifted samples (0..255 for real images), float64.

    Parameters
    ----------
    coef : Tensor, float64, shape (..., 8, 8)
        Dequantized coefficients, natural order (integer values).

    Returns
    -------
    Tensor, float64, shape (..., 8, 8)
        ``v + 128`` for libjpeg's descaled output ``v``; :func:`range_limit`
        (of ``v``) or, while every value is within -384..639, a plain clip to
        0..255 finishes the decode.

    Notes
    -----
    The entries of the pass matrix are below 2**16 and a dequantized
    coefficient of baseline JPEG below 2**19, so every partial sum is an
    integer below 2**53: float64 products and sums are exact in any order,
    and ``floor((raw + 2**(n-1)) * 2**-n)`` is libjpeg's DESCALE. This is the
    torch implementation's fast path (BLAS on CPU, cuBLAS on CUDA); the
    element-wise :func:`idct_islow` is its specification.
    """
    a = _PASS_A.to(coef.device)
    n1 = _CONST_BITS - _PASS1_BITS
    cols = torch.matmul(a, coef).add_(2.0 ** (n1 - 1)).mul_(2.0**-n1).floor_()  # columns: A @ block
    n2 = _CONST_BITS + _PASS1_BITS + 3
    return torch.matmul(cols, a.T).add_(2.0 ** (n2 - 1) + 128 * 2.0**n2).mul_(2.0**-n2).floor_()  # rows


def range_limit(v: torch.Tensor) -> torch.Tensor:
    """libjpeg's IDCT output stage: ``sample_range_limit[CENTERJSAMPLE + (v & RANGE_MASK)]``.

    For ``-512 <= v < 512`` (every block decoded from a real image) this is
    ``clip(v + 128, 0, 255)``; beyond, the mask wraps as libjpeg's table does.
    """
    i = v & 1023
    return torch.where(i < 128, i + 128, torch.where(i < 512, 255, torch.where(i < 896, 0, i - 896))).to(torch.int32)
