"""Local response normalisation on the CPU (Numba), the 2012 paper's formula.

    scale[c] = k + alpha * sum_{j = max(0, c - n//2)}^{min(C - 1, c + n//2)} x[j]^2
    y[c]     = x[c] * scale[c] ** -beta
    dL/dx[i] = grad_y[i] * scale[i] ** -beta
               - 2 * alpha * beta * x[i] * sum_{|c - i| <= n//2} grad_y[c] * y[c] / scale[c]

(``kernels/reference/lrn.py`` derives the backward.) The forward saves ``scale``
for the backward.

Layout: arrays are viewed as (N, C, H*W). Each iteration of the parallel loop
owns one output plane (n, c) and adds the n neighbouring input planes into it,
so the inner loops run over H*W contiguous values, which the compiler vectorises,
and no two threads write the same element.

``scale ** -beta`` is the costly part (a ``powf`` call per element). For the
paper's beta = 0.75 it equals 1 / (sqrt(s) * sqrt(sqrt(s))), which compiles to
vector square roots: about 4x faster here, and as accurate as powf to within a
few ulp. Other betas take the general ``**`` path. Constants come in the array's
dtype, so float32 stays float32.
"""
import numpy as np
from numba import njit, prange

from . import workspace


@njit(cache=True, inline="always")
def _times_power(v, s, beta, three_quarters):
    """v * s ** -beta (a division, not 1 / ...: a literal 1 would compute in float64)."""
    if three_quarters:
        root = np.sqrt(s)
        return v / (root * np.sqrt(root))
    return v * s ** -beta


@njit(parallel=True, cache=True)
def _lrn_forward(x, half, alpha, beta, k, three_quarters, y, scale):
    n_batch, channels, plane = x.shape
    for nc in prange(n_batch * channels):
        n = nc // channels
        c = nc % channels
        lo = max(0, c - half)
        hi = min(channels - 1, c + half)
        s = scale[n, c]
        for p in range(plane):
            s[p] = x[n, lo, p] * x[n, lo, p]
        for j in range(lo + 1, hi + 1):
            for p in range(plane):
                s[p] += x[n, j, p] * x[n, j, p]
        for p in range(plane):
            s[p] = k + alpha * s[p]
            y[n, c, p] = _times_power(x[n, c, p], s[p], beta, three_quarters)


@njit(parallel=True, cache=True)
def _ratio(grad_y, y, scale, ratio):
    """ratio = grad_y * y / scale, element-wise over flat arrays."""
    for i in prange(ratio.size):
        ratio[i] = grad_y[i] * y[i] / scale[i]


@njit(parallel=True, cache=True)
def _lrn_backward(x, scale, grad_y, ratio, half, two_alpha_beta, beta, three_quarters, grad_x):
    n_batch, channels, plane = x.shape
    for ni in prange(n_batch * channels):
        n = ni // channels
        i = ni % channels
        lo = max(0, i - half)
        hi = min(channels - 1, i + half)
        g = grad_x[n, i]
        for p in range(plane):
            g[p] = ratio[n, lo, p]
        for c in range(lo + 1, hi + 1):
            for p in range(plane):
                g[p] += ratio[n, c, p]
        for p in range(plane):
            g[p] = (_times_power(grad_y[n, i, p], scale[n, i, p], beta, three_quarters)
                    - two_alpha_beta * x[n, i, p] * g[p])


def _planes(a):
    return a.reshape(a.shape[0], a.shape[1], -1)


def lrn_forward(x, size, alpha, beta, k):
    t = x.dtype.type
    y = workspace.empty_like(x)
    scale = workspace.empty_like(x)
    _lrn_forward(_planes(x), size // 2, t(alpha), t(beta), t(k), beta == 0.75, _planes(y), _planes(scale))
    return y, scale


def lrn_backward(x, y, scale, grad_y, size, alpha, beta, k):
    t = x.dtype.type
    ratio = workspace.empty_like(x)
    _ratio(grad_y.reshape(-1), y.reshape(-1), scale.reshape(-1), ratio.reshape(-1))
    grad_x = workspace.empty_like(x)
    _lrn_backward(_planes(x), _planes(scale), _planes(grad_y), _planes(ratio), size // 2,
                  t(2 * alpha * beta), t(beta), beta == 0.75, _planes(grad_x))
    return grad_x
