"""Step 3b of the robust estimator: an aligned first compression tested against a model of the codec.

The algorithm is described in :mod:`jpegbench.estimate.robust` (step 3b).
This module holds its numbers and makes them cheap; what each piece costs
and why it is shaped so:

* The model's expected errors depend on the QFs only, never on the image,
  so each chain's matrix is computed once per process
  (:func:`model_matrix`, an LRU cache): a folder whose images share their
  last QF pays for the single-JPEG model once.
* A matrix is computed once per frequency and *distinct* table value (IJG
  tables repeat values across QFs), and where every node of a row rounds to
  zero (``|y / t| <= 0.5``) the error is ``y**2`` with no requantization at
  all: together about half the work of the direct loop over QFs.
  Where the C kernel of the fast backend was built, a matrix is computed
  by it (``jb_model_matrix`` in ``_csse.c``, whatever
  ``$JPEGBENCH_FAST_KERNEL`` says: that choice is the curves'): the same
  IEEE operations and numpy's own summation order, so the same bits as the
  numpy code, which remains the fallback (a test holds them equal), in a
  third of the time.
* The content weights depend on a frequency only through its radial
  frequency: computed once per distinct one (33 instead of 64 rows of
  exponentials per evaluation of a fit), and the matrix rows of the AC
  frequencies that share a radial frequency are summed once when the
  matrix is made, so every evaluation multiplies 33 * 56 + 1 rows instead
  of 64 * 56 (half the matrix-vector product, the bulk of a fit).
* Fits run the Nelder-Mead simplex of :func:`scipy.optimize.minimize`
  (``method="Nelder-Mead"`` with bounds), transcribed in :func:`nelder_mead`
  step for step so that it takes the same steps: importing
  ``scipy.optimize`` costs a command line more than the fits it runs.
* BLAS runs on one thread here (``threadpoolctl``): a matrix-vector product
  of this size gains nothing from a second thread, and on a loaded machine
  OpenBLAS's hand-offs made the fits ten to twenty times slower.

Everything above but the summed rows leaves the arithmetic of each number
as it was. Summing rows before the matrix-vector product adds the same
products in another order, so a model curve can differ from the direct
computation's in the last bit (relative 5e-15); the fits' iterates depend
on their cost only through comparisons, and on 153 chains (the 48 of
``tests/estimate/test_robust_decisions.py``, which holds them to a committed
table, 96 more of 200 x 224 and 9 of 768 x 512) every output of the
estimator, decisions, fractions and fitted content, stayed equal bit for
bit. What this module cannot make exact is
BLAS itself: OpenBLAS's matrix-vector sums differ in the last bit between
one and two threads, and in a degenerate fit that is enough to move a
decision (summing the same products in another order moved a QF1 from 49
to 50 on one 768 x 512 image while this module was written); with one
thread they are at least the same on every machine of a kind.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable, Sequence

import numpy as np

from jpegbench.codec import ijg_qtable
from jpegbench.estimate._ckernel import c_model_matrix

__all__ = ["lattice_test", "model_matrix", "model_mse", "nelder_mead", "one_blas_thread"]

# Content model: per frequency, a log-normal scale mixture of Laplacians (a natural-image prior: block
# activity varies over a decade or more, amplitude falls as a power of the radial frequency). Expectations
# are taken on fixed nodes: stratified |Laplace| quantiles at a log grid of scales, with a fixed draw of
# decoder rounding noise (uniform +-0.5 per pixel is ~N(0, 1/12) per orthonormal DCT coefficient).
_SCALES = np.geomspace(0.2, 3000.0, 56)
_LOG_SCALES = np.log(_SCALES)
_NODES = 32
_UNIT = -np.log1p(-(np.arange(_NODES) + 0.5) / _NODES)
_DC = np.linspace(-1000.0, 1000.0, _NODES)
_NOISE = np.sqrt(1.0 / 12.0) * np.random.default_rng(20210).standard_normal((64, _SCALES.size, _NODES))
_RHO = np.sqrt(np.add.outer(np.arange(8) ** 2, np.arange(8) ** 2)).ravel()
BOUNDS = ((np.log(0.2), np.log(3000.0)), (0.0, 3.5), (0.1, 3.0))
# QF1 candidates stop this many QFs below the last QF: nearer, the last compression's own notch and what the
# model leaves out (clipping, the decoder's integer IDCT) dominate the dips
GAP = 7
# the weights of a frequency depend on it only through its radial frequency: computed once per distinct one
_GROUP_LOG_RHO, _GROUP_OF = np.unique(np.log(np.maximum(_RHO, 1.0)), return_inverse=True)
_CACHE_SIZE = 32  # chains; a 100-QF matrix is 1.5 MB


def _tables(qfs: Sequence[int]) -> np.ndarray:
    return np.array([ijg_qtable(int(q)).astype(np.float64).ravel() for q in qfs])


def _requantization_error(y: np.ndarray, tables: np.ndarray) -> np.ndarray:
    """``E[f, k, j] = mean over nodes of (t round(y / t) - y)**2`` with ``t = tables[j, f]``; ``y`` is (64, 56, 32)."""
    amax = np.abs(y).max(axis=2)
    y2 = np.mean(y * y, axis=2)  # every node rounds to zero: the error is the value itself
    out = np.empty((64, y.shape[1], tables.shape[0]))
    for f in range(64):
        ts, inv = np.unique(tables[:, f], return_inverse=True)
        need = amax[f][None, :] / ts[:, None] > 0.5
        vals = np.repeat(y2[f][None, :], ts.size, axis=0)
        u, k = np.nonzero(need)
        if u.size:
            yy = y[f][k]
            t = ts[u][:, None]
            e = t * np.round(yy / t) - yy
            vals[u, k] = np.mean(e * e, axis=1)
        out[f] = vals[inv.ravel()].T
    return out


def _summed_rows(e: np.ndarray) -> np.ndarray:
    """:func:`model_matrix`'s rows from ``E`` of :func:`_requantization_error`: summed per radial frequency."""
    # Frequencies of one radial frequency share their weights: their rows are summed once here, so that every
    # evaluation of a fit multiplies half as many rows. The DC frequency weighs its first node only.
    m = np.zeros((_GROUP_LOG_RHO.size, _SCALES.size, e.shape[2]))
    for f in range(1, 64):
        m[_GROUP_OF[f]] += e[f]
    return np.concatenate([m.reshape(-1, e.shape[2]), e[0, :1]])


def _content_nodes(chain: Sequence[int]) -> np.ndarray:
    """The content nodes ``(64, 56, 32)`` after the compressions of ``chain``, decoder rounding added after each."""
    y = _SCALES[None, :, None] * _UNIT[None, None, :] * np.ones((64, 1, 1))
    y[0] = _DC
    for t in _tables(chain):
        t = t[:, None, None]
        y = t * np.round(y / t) + _NOISE
    return y


@lru_cache(maxsize=_CACHE_SIZE)
def _cached_matrix(qfs: tuple[int, ...], chain: tuple[int, ...], kernel: bool = True) -> np.ndarray:
    y, tables = _content_nodes(chain), _tables(qfs)
    m = None
    if kernel:  # the C kernel: the same numbers, bit for bit, in a third of the time
        m = c_model_matrix(y, np.mean(y * y, axis=2), np.abs(y).max(axis=2), tables, _GROUP_OF, _GROUP_LOG_RHO.size)
    if m is None:
        m = _summed_rows(_requantization_error(y, tables))
    m.setflags(write=False)
    return m


def model_matrix(qfs: Sequence[int], chain: Sequence[int]) -> np.ndarray:
    """Expected squared requantization errors of the content nodes, ``(33 * 56 + 1, len(qfs))``.

    Content quantized with the IJG tables of ``chain`` (first to last), decoder
    rounding added after each, requantized with the table of each of ``qfs``;
    rows are (radial frequency, scale) pairs, each the sum over the AC
    frequencies of that radial frequency (they share their weights), and
    last the DC frequency's. Read-only and cached: :func:`model_mse` turns it
    into a curve.
    """
    return _cached_matrix(tuple(int(q) for q in qfs), tuple(int(q) for q in chain))


def model_weights(theta: np.ndarray) -> np.ndarray:
    """Row weights of :func:`model_matrix` for ``theta = (log scale, spectral slope, activity spread)``."""
    log_scale, slope, spread = theta
    mu = log_scale - slope * _GROUP_LOG_RHO
    w = np.exp(-0.5 * ((_LOG_SCALES[None, :] - mu[:, None]) / spread) ** 2)
    w /= np.maximum(np.add.reduce(w, axis=1, keepdims=True), 1e-300)
    out = np.empty(w.size + 1)
    np.divide(w.ravel(), 64.0, out=out[:-1])
    out[-1] = 1.0 / 64.0  # the DC nodes do not depend on the scale
    return out


def model_mse(matrix: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Recompression MSE per QF of the content ``theta`` (``matrix`` from :func:`model_matrix`)."""
    return model_weights(theta) @ matrix


def _model_log(matrix: np.ndarray, theta: np.ndarray, floor: float) -> np.ndarray:
    return np.log(model_mse(matrix, theta) + floor)


def _clip(x: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    # np.clip's values (no NaN here) without its Python wrappers: a fit calls it a thousand times.
    return np.minimum(np.maximum(x, lower), upper)


_max = np.maximum.reduce  # np.max without its Python wrapper


def nelder_mead(
    fun: Callable[[np.ndarray], float], x0: Sequence[float], bounds: Sequence[tuple[float, float]], *,
    xatol: float, fatol: float, maxiter: int,
) -> tuple[np.ndarray, float]:  # fmt: skip
    """``(x, f(x))``: :func:`scipy.optimize.minimize` with ``method="Nelder-Mead"``, bounds and these options.

    The same simplex, steps, clipping to the bounds and stopping rule as
    SciPy's ``_minimize_neldermead`` (non-adaptive; ``maxfev`` unset), so
    the same iterates; a test holds the two equal.
    """
    lower = np.array([b[0] for b in bounds], dtype=np.float64)
    upper = np.array([b[1] for b in bounds], dtype=np.float64)
    x0 = _clip(np.asarray(x0, dtype=np.float64).ravel(), lower, upper)
    n = x0.size
    sim = np.empty((n + 1, n))
    sim[0] = x0
    for k in range(n):
        y = np.array(x0, copy=True)
        y[k] = 1.05 * y[k] if y[k] != 0 else 0.00025
        sim[k + 1] = y
    sim = _clip(np.where(sim > upper, 2 * upper - sim, sim), lower, upper)
    fsim = np.array([fun(s) for s in sim])
    ind = fsim.argsort()
    sim, fsim = sim[ind], fsim[ind]
    iterations = 1
    while iterations < maxiter:
        if _max(np.abs(sim[1:] - sim[0]), axis=None) <= xatol and _max(np.abs(fsim[0] - fsim[1:])) <= fatol:
            break
        xbar = np.add.reduce(sim[:-1], 0) / n
        xr = _clip(2 * xbar - sim[-1], lower, upper)
        fxr = fun(xr)
        shrink = False
        if fxr < fsim[0]:
            xe = _clip(3 * xbar - 2 * sim[-1], lower, upper)
            fxe = fun(xe)
            sim[-1], fsim[-1] = (xe, fxe) if fxe < fxr else (xr, fxr)
        elif fxr < fsim[-2]:
            sim[-1], fsim[-1] = xr, fxr
        elif fxr < fsim[-1]:
            xc = _clip(1.5 * xbar - 0.5 * sim[-1], lower, upper)
            fxc = fun(xc)
            if fxc <= fxr:
                sim[-1], fsim[-1] = xc, fxc
            else:
                shrink = True
        else:
            xcc = _clip(0.5 * xbar + 0.5 * sim[-1], lower, upper)
            fxcc = fun(xcc)
            if fxcc < fsim[-1]:
                sim[-1], fsim[-1] = xcc, fxcc
            else:
                shrink = True
        if shrink:
            for j in range(1, n + 1):
                sim[j] = _clip(sim[0] + 0.5 * (sim[j] - sim[0]), lower, upper)
                fsim[j] = fun(sim[j])
        iterations += 1
        ind = fsim.argsort()
        sim, fsim = sim[ind], fsim[ind]
    return sim[0], float(np.min(fsim))


def _fit_content(logs: np.ndarray, matrix: np.ndarray, fit: slice, floor: float) -> np.ndarray:
    """Least-squares content parameters ``(log scale, spectral slope, activity spread)`` on ``logs[fit]``."""
    target = logs[fit]

    def cost(theta):
        return float(np.add.reduce((_model_log(matrix, theta, floor)[fit] - target) ** 2))

    grid = [(a, b, c) for a in np.log([2.0, 8.0, 30.0, 120.0, 500.0]) for b in (1.0, 1.5, 2.0) for c in (0.5, 1.0)]
    start = min(grid, key=cost)
    return nelder_mead(cost, start, BOUNDS, xatol=1e-3, fatol=1e-6, maxiter=300)[0]


def _fit_mixture(logs, single, double, fit, floor, theta) -> tuple[np.ndarray, float, float]:
    """Least-squares ``(theta, a, cost)`` of ``log((1 - a) mse_single + a mse_double + floor)`` on ``logs[fit]``.

    ``a`` is the fraction of the content whose coefficients a first compression left on its lattice.
    """
    both = np.concatenate([single[:, fit], double[:, fit]], axis=1)
    target = logs[fit]
    m = target.size

    def cost(p):
        sd = model_weights(p[:3]) @ both
        return float(np.add.reduce((np.log((1 - p[3]) * sd[:m] + p[3] * sd[m:] + floor) - target) ** 2))

    fits = [nelder_mead(cost, np.r_[theta, a0], BOUNDS + ((0.0, 1.0),), xatol=1e-3, fatol=1e-7, maxiter=600)
            for a0 in (0.2, 0.8)]  # fmt: skip
    x, fun = min(fits, key=lambda r: r[1])
    return x[:3], float(x[3]), float(fun)


def _second_difference(x: np.ndarray, width: int = 2) -> np.ndarray:
    """``(x[i + w] - 2 x[i] + x[i - w]) / w``: a dip relative to the line through its neighbours; NaN at the ends."""
    out = np.full(x.shape, np.nan)
    out[width:-width] = (x[2 * width :] - 2 * x[width:-width] + x[: -2 * width]) / width
    return out


@lru_cache(maxsize=1)
def _controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def one_blas_thread():
    """A context in which BLAS (numpy's OpenBLAS or MKL) runs on one thread."""
    return _controller().limit(limits=1, user_api="blas")


def lattice_test(logs: np.ndarray, qfs: np.ndarray, i_last: int, floor: float, min_qf: int, extra: tuple = ()):
    """Share of the content an aligned first compression explains, against a codec model (step 3b); None if untestable.

    Returns ``(i_first, fraction, theta)``: the index of the QF1 hypothesis that best explains the
    aligned curve's dips, the fraction of the content (0: single, 1: all of it) that the MSE-domain
    mixture of the single and double models fitted to the aligned curve gives to the double one,
    and the content parameters of that fit.
    """
    q_last = int(qfs[i_last])
    n = i_last + 1
    win = np.flatnonzero((qfs[:n] >= min_qf) & (qfs[:n] <= q_last - GAP))
    win = win[(win >= 2) & (win <= n - 3)]  # where the second difference exists
    if win.size < 3 or n < 10:
        return None
    with one_blas_thread():
        return _lattice_test(logs[:n], [int(q) for q in qfs[:n]], q_last, floor, win, extra)


def _lattice_test(obs, qfs, q_last, floor, win, extra):
    n = len(qfs)
    fit = slice(2, n - 3)
    single = model_matrix(qfs, (q_last,))
    theta = _fit_content(obs, single, fit, floor)
    single_dips = _second_difference(_model_log(single, theta, floor))
    resid = _second_difference(obs) - single_dips
    doubles: dict = {}

    def score(i):
        # dips the last compression leaves unexplained, projected on those a first compression at i adds
        if i not in doubles:
            doubles[i] = model_matrix(qfs, (qfs[i], q_last))
        d = _second_difference(_model_log(doubles[i], theta, floor)) - single_dips
        d, r = np.nan_to_num(d[win]), np.nan_to_num(resid[win])
        return float(r @ d) / max(float(np.sqrt(d @ d)), 1e-12)

    peaks = [i for i in win if resid[i] >= resid[i - 1] and resid[i] >= resid[i + 1]]
    peaks = sorted(peaks, key=lambda i: -resid[i])[:3] + [i for i in extra if i in win]
    if not peaks:
        return None
    scores = {i: score(i) for i in peaks}
    best = max(scores, key=scores.get)
    for i in (best - 1, best + 1):  # the unexplained dip can sit one QF off the hypothesis that explains it
        if i in win and i not in scores:
            scores[i] = score(i)
    best = max(scores, key=scores.get)
    # a dip the prominence rule found is a rival hypothesis: the double model that fits the curve better wins
    rivals = {best} | {i for i in extra if i in win}
    fits = {i: _fit_mixture(obs, single, doubles[i], fit, floor, theta) for i in rivals}
    best = min(fits, key=lambda i: fits[i][2])
    theta_mix, fraction, _ = fits[best]
    return best, fraction, theta_mix
