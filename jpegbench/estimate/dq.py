"""Double quantization in a JPEG file's DCT coefficients: the first compression the MSE curves cannot see.

A JPEG compressed at ``QF1`` and recompressed on the same grid at a coarser
``QF2`` (``QF1 > QF2``) leaves almost nothing in the recompression curves,
but its quantized coefficients keep the first quantization: in mode ``i``
the unquantized coefficient was already a multiple of the first step
``q1`` (plus a little rounding noise), so the histogram of the last
quantized values ``k = round(m q1 / q2)`` has periodic peaks and dips
(Lukáš & Fridrich 2003; Popescu & Farid 2004). This module tests for them
(A-DJPG, aligned), estimates ``QF1`` by matching the IJG tables, and maps
where in the image the pattern is (Bianchi & Piva 2012). It also tries the
non-aligned case (NA-DJPG): the first grid's coefficients, recomputed from
the decoded luma at each of the 63 shifts, clustering on multiples of
``q1``.

Model (per AC mode of the luma, zigzag 1..35, with at least 20 non-zero values, in the
orthonormal DCT scale libjpeg quantizes), a generalised likelihood ratio
with the unquantized coefficient's density fitted under each hypothesis: a
scale mixture of generalised Gaussians (the best single one and a family
at every scale, mixed by EM), because a mode of a real photograph mixes
flat and busy blocks, and one generalised Gaussian that cannot follow it
leaves a misfit the double hypothesis reads as a lattice:

* single: ``P0(k) = F(k q2 +- q2/2)``;
* double: ``P1(k) = sum_m F(m q1 +- q1/2) * Pr(m q1 + e in k q2 +- q2/2)``,
  ``e ~ N(0, sigma^2)`` the first decoder's rounding;

both given ``0 < |k| <= 40`` (the zero bin is where a smooth density fits worst).
``P1`` is not mixed with ``P0`` (a share of the blocks double
compressed): such a share gives the double hypothesis shapes of its own that fit a smooth
image's single JPEG better than one generalised Gaussian does (measured
below, where the modes are chosen); a spliced region is what the map shows.
Modes whose first step is 1 or divides the last step carry no evidence
(every bin holds as many first-grid multiples) and count zero. The file's
score for a candidate ``QF1`` (IJG luma table) is the summed log-likelihood
ratio less its two largest mode terms (a first quantization shows in many
modes; a density misfit in one or two busy modes does not count), over
``sqrt`` of the number of coefficients used; ``QF1`` is the candidate that
one generalised Gaussian per hypothesis scores best, and the score tested
is the smaller of that candidate's two (one density, scale mixtures). A block's score is the sum of
its own coefficients' log-ratios (the localisation map). Thresholds come from ``dq_thresholds.json``, written by
``scripts/calibrate_dq.py`` on BSDS500 train/val only, with the false-alarm
rates it measured.

Limits, stated honestly: when ``q1`` is 1 or divides ``q2`` in most modes
(QF1 = 100: every step 1) the two hypotheses coincide and nothing can be
detected; the non-aligned test rarely fires for
``QF1 > QF2`` because the second quantization's noise (of the order of
``q2``) covers the first grid's lattice (``q1 < q2``), and it does not
search grids shifted in rows only or columns only (they keep the last
grid's lattice along the other direction); chroma is not used.

References
----------
.. [1] J. Lukáš, J. Fridrich, "Estimation of primary quantization matrix in
   double compressed JPEG images", DFRWS 2003.
.. [2] A. C. Popescu, H. Farid, "Statistical tools for digital forensics",
   Information Hiding 2004.
.. [3] T. Bianchi, A. Piva, "Image forgery localization via block-grained
   analysis of JPEG artifacts", IEEE TIFS 7(3), 2012.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from jpegbench.codec import JpegCoefficients, block_dct, block_idct, ijg_qtable, qf_from_qtables, read_coefficients
from jpegbench.errors import InputError, ShapeError

__all__ = ["DQResult", "DQ_MODES", "detect_double_quantization", "dq_map", "dq_thresholds", "decoded_luma"]

#: Zigzag positions 0..20 as ``(u, v)``: the low-frequency modes with enough non-zero values at QF2 >= 50.
DQ_MODES: tuple[tuple[int, int], ...] = (
    (0, 0), (0, 1), (1, 0), (2, 0), (1, 1), (0, 2), (0, 3), (1, 2), (2, 1), (3, 0), (4, 0), (3, 1), (2, 2), (1, 3),
    (0, 4), (0, 5), (1, 4), (2, 3), (3, 2), (4, 1), (5, 0),
)  # fmt: skip
#: Every mode in zigzag order: the aligned test uses all that have values (a first step that does not divide the
#: last one is what carries the evidence, and at QF1 >= 90 that is mostly the mid frequencies).
ALL_MODES: tuple[tuple[int, int], ...] = tuple(sorted(((u, v) for u in range(8) for v in range(8)),
                                                      key=lambda t: (t[0] + t[1], t[0] if (t[0] + t[1]) % 2 else t[1])))
_MIN_MODE_NONZERO = 20
_KMAX = 40
_N_MODES = 36  # zigzag 1..35: past them too few non-zero values at QF2 <= 90 to pay for the time
# No mixture of the hypotheses: with shares 0.5 and 0.75 of double-compressed blocks also allowed (one per
# file), a mixture of the two densities fits some single JPEGs of smooth images better than one generalised
# Gaussian and reads them as doubles (LIVE1 ``parrots`` at QF 85: score 0.129 with the share 0.5, -0.44 with 1).
# Measured on 150 BSDS500 train/val images (scripts/calibrate_dq.py's preparation, seed 11; singles and aligned
# doubles QF1 = QF2 + 10..20): at 3 % false alarms on the /2 images, shares (0.5, 0.75, 1) detect 63 % of the
# doubles with 2.7 % false alarms on the /1.25 images; the share 1 alone 67 % with 0 %.
#: Candidate first QFs (IJG tables); coarser first compressions are the curves' to find.
QF1_CANDIDATES = tuple(range(40, 101))
#: Std of the first decoder's rounding noise on a coefficient (orthonormal scale; 1/sqrt(12) for gray, a bit more
#: after the YCbCr -> RGB -> YCbCr round trip of a colour file).
SIGMA = 0.45
_FLOOR = 1e-4  # mixed into every model probability: one odd coefficient must not decide a file
_MIN_NONZERO = 200  # fewer non-zero coefficients than this in the used modes: no decision
_THRESHOLDS_FILE = Path(__file__).with_name("dq_thresholds.json")


@dataclass
class DQResult:
    """What :func:`detect_double_quantization` read off a file's coefficients.

    Attributes
    ----------
    verdict : {"single", "aligned-double", "nonaligned-double"}
        ``"single"``: no double quantization found (not that there was none).
    qf_last : int
        QF of the file's luma table (:func:`jpegbench.codec.qf_from_qtables`).
    qf_first : int or None
        The IJG QF whose luma steps best explain the pattern; None for ``"single"``.
    shift : (int, int)
        First grid shift ``(dy, dx)`` (manifest convention); ``(0, 0)`` unless non-aligned.
    score_aligned : float
        Summed log-likelihood ratio (nats) of the picked ``QF1``, less its two largest mode terms, over the
        square root of the number of coefficients used, aligned: the smaller of the scores with one
        generalised Gaussian per hypothesis and with scale mixtures.
    score_nonaligned : float or None
        Rayleigh statistic of the best shift and ``QF1`` (see :func:`_nonaligned_scan`); None when not run.
    first_steps : ndarray, (8, 8) int
        Per mode, the first step that best explains its histogram alone (-1 where not estimated): the
        first table where it is not IJG-scaled.
    table_kind : {"ijg", "custom", ""}
        Whether the IJG table of ``qf_first`` explains the modes about as well as their free steps.
    evidence_strength : float
        ``score / threshold`` of the deciding test (>= 1 when detected).
    details : dict
        Per-QF1 scores, thresholds used and their provenance, notes.
    """

    verdict: str
    qf_last: int
    qf_first: int | None
    shift: tuple[int, int]
    score_aligned: float
    score_nonaligned: float | None
    first_steps: np.ndarray = field(repr=False)
    table_kind: str = ""
    evidence_strength: float = 0.0
    details: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def detected(self) -> bool:
        return self.verdict != "single"


# ---------------------------------------------------------------- thresholds
@lru_cache(maxsize=1)
def _load_thresholds(path: str) -> dict[str, Any]:
    with open(path) as f:
        return json.load(f)


def dq_thresholds() -> dict[str, Any]:
    """The calibrated thresholds (``aligned``, ``nonaligned``) and how they were measured.

    Read from ``JPEGBENCH_DQ_THRESHOLDS`` when set (a calibration run), else
    from the package's ``dq_thresholds.json``.
    """
    path = os.environ.get("JPEGBENCH_DQ_THRESHOLDS") or str(_THRESHOLDS_FILE)
    return dict(_load_thresholds(path))


# ---------------------------------------------------------------- decoding
def decoded_luma(coefs: JpegCoefficients) -> np.ndarray:
    """The luma plane as a decoder reconstructs it (float, unrounded), ``(rows*8, cols*8)`` incl. padding."""
    k = coefs.coefficients[0].astype(np.float64) * coefs.qtables[0]
    rows, cols = k.shape[:2]
    plane = k.transpose(0, 2, 1, 3).reshape(rows * 8, cols * 8)
    return block_idct(plane) + 128.0


def _grid_coefficients(luma: np.ndarray, oy: int, ox: int) -> np.ndarray:
    """``(n_blocks, 8, 8)`` orthonormal DCT of the level-shifted luma on the grid starting at ``(oy, ox)``."""
    h, w = luma.shape
    h8, w8 = (h - oy) // 8 * 8, (w - ox) // 8 * 8
    if h8 < 8 or w8 < 8:
        raise ShapeError(f"image too small for an 8x8 grid at offset ({oy}, {ox}): {h}x{w}")
    d = block_dct(luma[oy : oy + h8, ox : ox + w8] - 128.0)
    return d.reshape(h8 // 8, 8, w8 // 8, 8).transpose(0, 2, 1, 3).reshape(-1, 8, 8)


# ---------------------------------------------------------------- the aligned model
# Generalised Gaussian densities tried for the unquantized coefficient: shapes x scales (in last steps). A
# Laplacian alone (shape 1) misses the sharper peak and heavier tail of real AC coefficients, and a first step
# of about 0.7 q2 then "explains" the misfit: singles read as doubles with QF1 ~ QF2 + 10.
_SHAPES = np.array([0.3, 0.45, 0.6, 0.8, 1.0, 1.4])
_SCALES = np.logspace(-3.0, 1.7, 28)
_GRID_SHAPE, _GRID_SCALE = (a.ravel() for a in np.meshgrid(_SHAPES, _SCALES, indexing="ij"))


def _gg_cdf(x: np.ndarray, scale: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """Generalised Gaussian CDF at ``x`` for every (scale, shape) pair: ``(len(scale), *x.shape)``."""
    from scipy.special import gammainc  # here, not at the top: the estimate command needs dq only with --dct

    col = (-1,) + (1,) * x.ndim
    z = np.abs(x)[None, ...] / scale.reshape(col)
    half = 0.5 * gammainc(1.0 / shape.reshape(col), z ** shape.reshape(col))
    return 0.5 + np.sign(x)[None, ...] * half


#: Scale mixtures: the fitted density of a hypothesis is a mixture of its best single generalised Gaussian
#: and the family of the lightest-tailed shape at every scale (a scale mixture of light-tailed densities is
#: the natural-image prior: a busy region and a flat one in the same mode give a narrow and a wide component).
#: With one generalised Gaussian per hypothesis, a smooth image's single JPEG whose mode histogram is such a
#: mixture (many +-1 from the flat regions, a long tail from the textured ones) was read as a lattice: LIVE1
#: ``parrots`` (top-left 256 x 320) at QF 90 scored 0.50 for QF1 = 94 (threshold 0.013), -0.40 with mixtures;
#: its double JPEG 95 -> 85 went from -0.04 to 0.04.
_FAMILY = np.flatnonzero(_GRID_SHAPE == _SHAPES[-1])
_EM_ITERATIONS = 100


def _fit_mixtures(comps: np.ndarray, best: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Log-likelihood-maximising mixtures, batched: ``(n, K)`` log-probabilities (floored) per hypothesis.

    ``comps`` is ``(n, G, K)`` (each row a distribution over the bins), ``best`` the index of the best
    single row per hypothesis. EM (the mixing weights of fixed components: a concave problem) from half the
    weight on the best single row and half spread over :data:`_FAMILY`; where the mixture after
    :data:`_EM_ITERATIONS` steps is not better than the best single density, that one is kept, so a
    mixture never explains a histogram worse than the unmixed fit did.

    Returns the mixtures' log-probabilities and the best single rows'.
    """
    n, _, k = comps.shape
    d = np.concatenate([comps[np.arange(n), best][:, None, :], comps[:, _FAMILY]], axis=1)  # (n, 1 + F, K)
    w = np.full(d.shape[:2], 0.5 / _FAMILY.size)
    w[:, 0] = 0.5
    total = max(float(counts.sum()), 1.0)
    for _ in range(_EM_ITERATIONS):
        p = np.einsum("ng,ngk->nk", w, d) + 1e-300
        w *= np.einsum("ngk,nk->ng", d, counts[None, :] / p) / total
    mixed = _floor_log(np.einsum("ng,ngk->nk", w, d), k)
    single = _floor_log(d[:, 0], k)
    keep = (mixed @ counts) >= (single @ counts)
    return np.where(keep[:, None], mixed, single), single


def _floor_log(p: np.ndarray, k: int) -> np.ndarray:
    return np.log((1 - _FLOOR) * p + _FLOOR / k)


def _conditional(p: np.ndarray) -> np.ndarray:
    """Rows of bin probabilities renormalised to sum 1 (over the non-zero bins they hold)."""
    return p / np.maximum(p.sum(axis=1, keepdims=True), 1e-300)


def _key(q1: int, sigma: float) -> tuple[int, float]:
    """Cache key of a log-ratio table: the first step and the rounding noise."""
    return int(q1), round(sigma, 6)


def _single_components(md: _ModeData) -> np.ndarray:
    """``P0(k | k != 0)`` of every (shape, scale) of the grid, ``(G, K)`` over the non-zero bins."""
    q2, kmax = md.q2, md.kmax
    k = np.arange(-kmax, kmax + 1)
    k = k[k != 0]
    return _conditional(_gg_cdf((k + 0.5) * q2, _GRID_SCALE * q2, _GRID_SHAPE)
                        - _gg_cdf((k - 0.5) * q2, _GRID_SCALE * q2, _GRID_SHAPE))


def _double_components(md: _ModeData, q1: int, sigma: float) -> np.ndarray:
    """``P1(k | k != 0)`` of every (shape, scale) of the grid for the first step ``q1``, ``(G, K)``."""
    from scipy.sparse import csr_matrix
    from scipy.special import ndtr

    q2, kmax = md.q2, md.kmax
    k = np.arange(-kmax, kmax + 1)
    nz = k != 0
    bs = _GRID_SCALE * q2
    mmax = int(np.ceil((kmax + 1) * q2 / q1)) + 1
    m = np.arange(-mmax, mmax + 1)
    g1 = np.diff(_gg_cdf(np.append(m - 0.5, m[-1] + 0.5) * q1, bs, _GRID_SHAPE), axis=1)  # (nb, nm)
    # Each first-grid value m q1 (+ rounding noise, std sigma << q2) lands in its own bin or a neighbour: a
    # sparse transition matrix.
    x = m * q1
    near = np.rint(x / q2).astype(np.int64)
    rows_, cols_, vals = [], [], []
    for o in (-1, 0, 1):
        kk = near + o
        ok = np.abs(kk) <= kmax
        w = ndtr(((kk[ok] + 0.5) * q2 - x[ok]) / sigma) - ndtr(((kk[ok] - 0.5) * q2 - x[ok]) / sigma)
        rows_.append(np.flatnonzero(ok))
        cols_.append(kk[ok] + kmax)
        vals.append(w)
    trans = csr_matrix((np.concatenate(vals), (np.concatenate(rows_), np.concatenate(cols_))), shape=(len(m), len(k)))
    return _conditional(np.asarray((trans.T @ g1.T).T)[:, nz])


def _fill_logratios(md: _ModeData, q1s, sigma: float) -> None:
    """Compute :func:`_mode_logratio` for every step of ``q1s`` not yet cached, the mixture fits batched."""
    todo = sorted({int(q) for q in q1s if _key(q, sigma) not in md.cache})
    if not todo:
        return
    kmax = md.kmax
    nz = np.arange(-kmax, kmax + 1) != 0
    counts = md.counts[nz].astype(np.float64)
    if md.null is None:  # the single hypothesis does not depend on q1: fitted once per mode
        c0 = _single_components(md)
        mix, one = _fit_mixtures(c0[None], np.array([int(np.argmax(_floor_log(c0, c0.shape[1]) @ counts))]), counts)
        md.null, md.null_one = mix[0], one[0]
    evidence = [q for q in todo if not (q <= 1 or (q < md.q2 and md.q2 % q == 0))]
    for q in set(todo) - set(evidence):
        # Every bin holds the same number of first-grid multiples: the two hypotheses coincide, no evidence.
        md.cache[_key(q, sigma)] = md.cache_one[_key(q, sigma)] = np.zeros(2 * kmax + 1)
    if not evidence:
        return
    comps = np.stack([_double_components(md, q, sigma) for q in evidence])
    best = np.argmax(_floor_log(comps, comps.shape[2]) @ counts, axis=1)
    lp1, lp1_one = _fit_mixtures(comps, best, counts)
    for q, row, row_one in zip(evidence, lp1, lp1_one):
        out, out_one = np.zeros(2 * kmax + 1), np.zeros(2 * kmax + 1)
        out[nz], out_one[nz] = row - md.null, row_one - md.null_one
        md.cache[_key(q, sigma)], md.cache_one[_key(q, sigma)] = out, out_one


def _mode_logratio(md: _ModeData, q1: int, sigma: float) -> np.ndarray:
    """``log P1(k | k != 0) - log P0(k | k != 0)``, per ``k`` in ``-kmax..kmax`` (0 at ``k = 0``).

    A generalised likelihood ratio: under each hypothesis separately the
    unquantized coefficient's density is fitted to the mode's histogram, a
    scale mixture of generalised Gaussians (:func:`_fit_mixtures`), so the
    density's own shape is not read as a lattice pattern.
    """
    if _key(q1, sigma) not in md.cache:
        _fill_logratios(md, [q1], sigma)
    return md.cache[_key(q1, sigma)]


@dataclass
class _ModeData:
    u: int
    v: int
    q2: int
    k: np.ndarray  # (n_blocks,) quantized values of this mode
    kmax: int
    counts: np.ndarray  # histogram over -kmax..kmax
    cache: dict = field(default_factory=dict)  # log-ratio tables by (q1, sigma), scale mixtures
    cache_one: dict = field(default_factory=dict)  # the same with one generalised Gaussian per hypothesis
    null: np.ndarray | None = None  # log P0(k | k != 0) of the fitted single hypothesis, over the non-zero bins
    null_one: np.ndarray | None = None  # the same, one generalised Gaussian


def _mode_data(coefs: JpegCoefficients) -> list[_ModeData]:
    blocks = coefs.coefficients[0].reshape(-1, 8, 8)
    out = []
    for u, v in ALL_MODES[1:_N_MODES]:  # DC's density is the image's brightness histogram, not a GG
        kv = blocks[:, u, v].astype(np.int64)
        kmax = int(min(np.abs(kv).max(initial=0), _KMAX))
        if np.count_nonzero(kv) < _MIN_MODE_NONZERO:
            continue
        # Values past kmax are left out (the models are normalised over 0 < |k| <= kmax, so this is exact);
        # the few large ones carry little of the pattern and would cost most of the time.
        kc = np.where(np.abs(kv) <= kmax, kv, 0)
        counts = np.bincount(kc + kmax, minlength=2 * kmax + 1)
        out.append(_ModeData(u, v, int(coefs.qtables[0][u, v]), kc, kmax, counts))
    return out


#: The aligned score leaves out the modes with the largest ratios: evidence must not rest on one or two
#: DCT modes. A smooth misfit of the generalised Gaussian in one busy mode can look like a lattice; a real
#: first quantization shows in many modes at once. Measured on BSDS500 train/val (singles and aligned doubles
#: downscaled by 2 and by 1.25, thresholds at 3 % false alarms on the /2 images): false alarms on the
#: /1.25 images 10 % with the plain sum, 6 % leaving out the top mode, 5 % leaving out two, detection of
#: the doubles 85 / 82 / 82 %.
_TOP_MODES_LEFT_OUT = 2


@dataclass
class _AlignedReading:
    qf1: int  # the first QF the lattice points to (one generalised Gaussian per hypothesis)
    score: float  # the weaker of that QF1's two scores: what the threshold is applied to
    scores: dict[int, float]  # per candidate QF1, scale mixtures
    scores_one: dict[int, float]  # per candidate QF1, one generalised Gaussian per hypothesis
    n_nonzero: int


def _aligned_reading(modes: list[_ModeData], sigma: float, qf_last: int) -> _AlignedReading:
    """The aligned test: which first QF, and how strong the evidence for it.

    Per candidate QF1 (other than ``qf_last``: that is no double compression)
    the score is the summed log-ratio over the modes less its
    :data:`_TOP_MODES_LEFT_OUT` largest terms, over the square root of the
    count of non-zero coefficients used; computed twice, with one generalised
    Gaussian per hypothesis and with scale mixtures. The first names the
    lattice (its sharper densities leave a wrong step less room: on the 100
    BSDS500 aligned doubles of ``scripts/calibrate_dq.py``, ``qf_first`` is within 5
    on 97 % of them, on 76 % when the mixtures chose). The evidence must hold
    under both: the score tested is the smaller of that QF1's two. One
    density's misfit of a scale mixture is no lattice (LIVE1 ``parrots``,
    256 x 320, QF 90: 0.50 with one density, -0.40 with mixtures), and where
    ``q1`` is much finer than ``q2`` the double mixture's components, pushed
    through the lattice, fit a little better than the single's by their shapes
    alone (scikit-image ``astronaut``, 256 x 320, single JPEG at QF 60: 0.027
    with mixtures for QF1 = 95, 0.0005 with one density).
    """
    n_nonzero = int(sum(md.counts.sum() - md.counts[md.kmax] for md in modes))
    candidates = [q for q in QF1_CANDIDATES if q != qf_last]
    tables = {qf1: ijg_qtable(qf1) for qf1 in candidates}
    for md in modes:
        _fill_logratios(md, [t[md.u, md.v] for t in tables.values()], sigma)

    def score(cache: str, qf1: int) -> float:
        t1 = tables[qf1]
        per = np.array([getattr(md, cache)[_key(t1[md.u, md.v], sigma)] @ md.counts for md in modes])
        top = np.sort(per)[::-1][:_TOP_MODES_LEFT_OUT].clip(min=0).sum()
        return float(per.sum() - top) / np.sqrt(max(n_nonzero, 1))

    scores = {qf1: score("cache", qf1) for qf1 in candidates}
    scores_one = {qf1: score("cache_one", qf1) for qf1 in candidates}
    qf1 = _pick_qf1(scores_one)
    return _AlignedReading(qf1, min(scores[qf1], scores_one[qf1]), scores, scores_one, n_nonzero)


def _free_steps(modes: list[_ModeData], sigma: float) -> tuple[np.ndarray, float]:
    """Per low mode the step 2..2*q2 that best explains its histogram alone (-1: none better than single); the sum.

    Returns the ``(8, 8)`` steps and the summed log-likelihood ratio of those
    free steps over the modes of :data:`DQ_MODES`.
    """
    steps = np.full((8, 8), -1, dtype=np.int64)
    total = 0.0
    low = set(DQ_MODES)
    for md in modes:
        if (md.u, md.v) not in low:  # the first modes only: the ones with values enough to tell steps apart
            continue
        best_q, best = -1, 0.0
        _fill_logratios(md, range(2, 2 * md.q2 + 1), sigma)
        for q1 in range(2, 2 * md.q2 + 1):
            s = float(_mode_logratio(md, q1, sigma) @ md.counts)
            if s > best:
                best_q, best = q1, s
        steps[md.u, md.v] = best_q
        total += best
    return steps, total


def _low_total(modes: list[_ModeData], qf1: int, sigma: float) -> float:
    """Summed log-likelihood ratio of the IJG table of ``qf1`` over the modes of :data:`DQ_MODES`."""
    t1, low = ijg_qtable(qf1), set(DQ_MODES)
    total = 0.0
    for md in modes:
        if (md.u, md.v) in low:
            total += float(_mode_logratio(md, int(t1[md.u, md.v]), sigma) @ md.counts)
    return total


def _pick_qf1(scores: dict[int, float]) -> int:
    """The best QF1; among near-ties (QFs sharing the same low-frequency steps) the middle of the plateau."""
    best = max(scores.values())
    tol = 0.02 * abs(best) + 1e-6
    tied = [qf for qf, s in scores.items() if s >= best - tol]
    top = max(scores, key=scores.get)
    # Contiguous plateau around the argmax only: a distant QF with the same score is a different hypothesis.
    plateau = [top]
    for step in (-1, 1):
        q = top + step
        while q in tied:
            plateau.append(q)
            q += step
    return int(np.median(sorted(plateau)) // 1)


# ---------------------------------------------------------------- the non-aligned scan
def _nonaligned_scan(luma: np.ndarray, qf_last: int, q2: np.ndarray, *, max_blocks: int = 1024) -> tuple[float, tuple[int, int], int]:
    """Best outlier score over the 63 shifts and the IJG first QFs 50..99: ``(z, shift, qf1)``.

    For the grid of shift ``(dy, dx)`` the luma is cropped by
    ``((8 - dy) % 8, (8 - dx) % 8)`` and its block DCT taken; in mode ``i``
    with candidate step ``q1`` the Rayleigh power ``n |mean exp(2 pi j c / q1)|^2``
    measures how much the coefficients sit on multiples of ``q1``, summed over
    the modes with ``q1 >= 2``. Content alone gives power too (coefficients
    concentrated near 0), but the same at every shift, so the score is the
    robust z-score of a shift's power among the 63 (median and MAD): the first
    grid, if any, is the outlier. A shift's power leaves out its two largest
    mode terms, as the aligned score does.
    """
    rng = np.random.default_rng(0)
    qf1s = [q for q in range(50, 100) if q != qf_last]
    tables = np.stack([ijg_qtable(q) for q in qf1s]).astype(np.float64)
    uv = np.array(DQ_MODES)
    # QFs sharing the same steps in the used modes are one hypothesis: test each step vector once.
    steps, first = np.unique(tables[:, uv[:, 0], uv[:, 1]], axis=0, return_index=True)  # (nq, n_modes)
    qf1s = [qf1s[i] for i in first]
    # A step dividing the last one also fits the last grid's lattice, which survives at shifts aligned in one
    # direction: such modes are left out.
    q2m = np.asarray(q2)[uv[:, 0], uv[:, 1]]
    use = (steps >= 2) & (q2m[None, :] % steps != 0)
    shifts = [(dy, dx) for dy in range(8) for dx in range(8) if (dy, dx) != (0, 0)]
    power = np.empty((len(shifts), len(steps)))
    sel = None
    for j, (dy, dx) in enumerate(shifts):
        c = _grid_coefficients(luma, (8 - dy) % 8, (8 - dx) % 8)[:, uv[:, 0], uv[:, 1]]  # (n, n_modes)
        if sel is None:
            n_min = len(_grid_coefficients(luma, 7, 7))  # every crop has at least this many blocks
            sel = np.sort(rng.choice(n_min, min(max_blocks, n_min), replace=False))
        c = c[sel]
        ph = np.exp(2j * np.pi * c[None, :, :] / steps[:, None, :])  # (nq, n, n_modes)
        per_mode = (np.abs(ph.mean(axis=1)) ** 2 * len(c)) * use
        # As in the aligned test, the two largest mode terms are left out: a first grid shows in many modes,
        # one busy mode lined up by chance does not (LIVE1 ``cemetry``, top-left 256 x 320, single JPEG at
        # QF 90: the QF1 = 97 hypothesis, one usable mode, scored 12.7 at shift (2, 2), threshold 9.85).
        power[j] = np.sort(per_mode, axis=1)[:, :-_TOP_MODES_LEFT_OUT].sum(axis=1)
    med = np.median(power, axis=0)
    mad = 1.4826 * np.median(np.abs(power - med), axis=0) + 1e-9
    z = (power - med) / mad
    # Grids aligned with the last one in one direction keep its lattice along that direction whatever q1:
    # they are not searched (a limit: a first grid shifted in rows only or columns only is not found).
    z[[dy == 0 or dx == 0 for dy, dx in shifts]] = -np.inf
    j, i = np.unravel_index(int(np.argmax(z)), z.shape)
    return float(z[j, i]), shifts[j], qf1s[i]


# ---------------------------------------------------------------- public API
def _as_coefficients(source: Any) -> JpegCoefficients:
    if isinstance(source, JpegCoefficients):
        return source
    return read_coefficients(source)


def detect_double_quantization(
    source: str | os.PathLike[str] | bytes | JpegCoefficients,
    *,
    nonaligned: bool = True,
    sigma: float = SIGMA,
    thresholds: dict[str, Any] | None = None,
) -> DQResult:
    """Detect a first JPEG compression in a JPEG file's luma DCT coefficients and estimate its QF.

    Parameters
    ----------
    source : path, JPEG bytes or JpegCoefficients
        Baseline, extended or progressive JPEG, gray or YCbCr (read with
        :func:`jpegbench.codec.read_coefficients`, which refuses CMYK,
        12-bit, arithmetic-coded and lossless files with one clear message).
    nonaligned : bool
        Also scan the 63 non-aligned grids when the aligned test finds nothing.
    sigma : float
        Std of the first decoder's rounding noise on a coefficient.
    thresholds : dict, optional
        ``{"aligned": float, "nonaligned": float}``; default :func:`dq_thresholds`.

    Returns
    -------
    DQResult

    Raises
    ------
    ImageReadError, UnsupportedImageError, ImageTooLargeError
        From :func:`jpegbench.codec.read_coefficients`.
    """
    coefs = _as_coefficients(source)
    if sigma <= 0:
        raise InputError(f"sigma must be positive, got {sigma!r}")
    th = dq_thresholds() if thresholds is None else thresholds
    qf_last = int(qf_from_qtables([coefs.qtables[0]]).qf)
    modes = _mode_data(coefs)
    reading = _aligned_reading(modes, sigma, qf_last)
    qf1, score, n_nonzero = reading.qf1, reading.score, reading.n_nonzero
    details: dict[str, Any] = {"aligned_scores": reading.scores, "aligned_scores_one_density": reading.scores_one,
                               "n_nonzero": n_nonzero, "thresholds": th, "sigma": sigma}  # fmt: skip
    steps = np.full((8, 8), -1, dtype=np.int64)
    if n_nonzero < _MIN_NONZERO:
        details["note"] = f"only {n_nonzero} non-zero low-frequency coefficients: too few to decide"
        return DQResult("single", qf_last, None, (0, 0), score, None, steps, details=details)
    if score >= th["aligned"]:
        # Where the first table is not IJG-scaled, free per-mode steps explain the first modes much better.
        steps, free = _free_steps(modes, sigma)
        ijg = _low_total(modes, qf1, sigma)
        kind = "ijg" if ijg >= 0.8 * free else "custom"
        details.update(free_llr_low=free, ijg_llr_low=ijg)
        return DQResult("aligned-double", qf_last, qf1, (0, 0), score, None, steps, kind,
                        score / th["aligned"], details)  # fmt: skip
    if not nonaligned:
        return DQResult("single", qf_last, None, (0, 0), score, None, steps, details=details)
    # the pixels are decoded for the non-aligned scan only: the aligned test reads the coefficients themselves
    luma = np.clip(np.round(decoded_luma(coefs)), 0, 255)
    stat, shift, na_qf1 = _nonaligned_scan(luma, qf_last, coefs.qtables[0])
    details["nonaligned_qf1"] = na_qf1
    if stat >= th["nonaligned"]:
        return DQResult("nonaligned-double", qf_last, na_qf1, shift, score, stat, steps, "ijg",
                        stat / th["nonaligned"], details)  # fmt: skip
    return DQResult("single", qf_last, None, (0, 0), score, stat, steps, details=details)


def dq_map(
    source: str | os.PathLike[str] | bytes | JpegCoefficients,
    *,
    qf_first: int | None = None,
    tile: int = 8,
    sigma: float = SIGMA,
) -> np.ndarray:
    """Per tile of ``tile x tile`` blocks, the probability that it was double compressed (aligned).

    Bianchi & Piva's block-grained map: every block's log-likelihood ratio
    (the sum over the low-frequency modes of ``log P1(k) / P0(k)`` for its
    non-zero values, the first step from ``qf_first``) summed over the tile,
    and turned into a posterior with equal priors. A spliced region pasted
    from a single-compressed image shows as tiles near 0 inside a double
    compressed image.

    Parameters
    ----------
    source : path, JPEG bytes or JpegCoefficients
    qf_first : int, optional
        First QF; default: the file's best aligned estimate (even when below
        the detection threshold).
    tile : int
        Tile size in blocks (1: per 8x8 block; 8: 64x64 pixel tiles).
    sigma : float

    Returns
    -------
    ndarray, float64, ``(ceil(rows / tile), ceil(cols / tile))`` in [0, 1]
        Tiles without any non-zero low-frequency coefficient are 0.5.
    """
    if int(tile) < 1:
        raise InputError(f"tile must be >= 1 block, got {tile!r}")
    coefs = _as_coefficients(source)
    modes = _mode_data(coefs)
    if qf_first is None:
        qf_first = _aligned_reading(modes, sigma, int(qf_from_qtables([coefs.qtables[0]]).qf)).qf1
    t1 = ijg_qtable(int(qf_first))
    rows, cols = coefs.coefficients[0].shape[:2]
    # Bianchi & Piva's block-grained ratio: each block's values under the image-wide fits (a fit per tile would
    # have too few values), summed over the tile.
    llr = np.zeros(rows * cols)
    for md in modes:
        llr += _mode_logratio(md, int(t1[md.u, md.v]), sigma)[md.k + md.kmax]
    t = int(tile)
    pr, pc = -rows % t, -cols % t
    tiles = np.pad(llr.reshape(rows, cols), ((0, pr), (0, pc))).reshape((rows + pr) // t, t, (cols + pc) // t, t)
    tiles = tiles.sum(axis=(1, 3))
    return 1.0 / (1.0 + np.exp(-np.clip(tiles, -50, 50)))
