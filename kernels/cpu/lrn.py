"""Local response normalisation on the CPU (Numba), the 2012 paper's formula.

    scale[c] = k + alpha * sum_{j = max(0, c - n//2)}^{min(C - 1, c + n//2)} x[j]^2
    y[c]     = x[c] * scale[c] ** -beta
    dL/dx[i] = grad_y[i] * scale[i] ** -beta
               - 2 * alpha * beta * x[i] * sum_{|c - i| <= n//2} grad_y[c] * y[c] / scale[c]

(``kernels/reference/lrn.py`` derives the backward.) The forward saves ``scale``
for the backward. Each pass is one sweep over the channels of one image row:
iterations of the parallel loop own an (n, h) row, and the inner loop runs along
w, the contiguous axis. Constants come in the array's dtype, so float32 stays float32.
"""
import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=True)
def _lrn_forward(x, half, alpha, beta, k, y, scale):
    n_batch, channels, height, width = x.shape
    for nh in prange(n_batch * height):
        n = nh // height
        h = nh % height
        for c in range(channels):
            lo = max(0, c - half)
            hi = min(channels - 1, c + half)
            for w in range(width):
                total = x[n, lo, h, w] * x[n, lo, h, w]
                for j in range(lo + 1, hi + 1):
                    total += x[n, j, h, w] * x[n, j, h, w]
                s = k + alpha * total
                scale[n, c, h, w] = s
                y[n, c, h, w] = x[n, c, h, w] * s ** -beta


@njit(parallel=True, cache=True)
def _lrn_backward(x, y, scale, grad_y, half, two_alpha_beta, beta, ratio, grad_x):
    n_batch, channels, height, width = x.shape
    for nh in prange(n_batch * height):
        n = nh // height
        h = nh % height
        for c in range(channels):
            for w in range(width):
                ratio[n, c, h, w] = grad_y[n, c, h, w] * y[n, c, h, w] / scale[n, c, h, w]
        for i in range(channels):
            lo = max(0, i - half)
            hi = min(channels - 1, i + half)
            for w in range(width):
                total = ratio[n, lo, h, w]
                for c in range(lo + 1, hi + 1):
                    total += ratio[n, c, h, w]
                grad_x[n, i, h, w] = (
                    grad_y[n, i, h, w] * scale[n, i, h, w] ** -beta - two_alpha_beta * x[n, i, h, w] * total
                )


def lrn_forward(x, size, alpha, beta, k):
    t = x.dtype.type
    y = np.empty_like(x)
    scale = np.empty_like(x)
    _lrn_forward(x, size // 2, t(alpha), t(beta), t(k), y, scale)
    return y, scale


def lrn_backward(x, y, scale, grad_y, size, alpha, beta, k):
    t = x.dtype.type
    grad_x = np.empty_like(x)
    ratio = np.empty_like(x)
    _lrn_backward(x, y, scale, grad_y, size // 2, t(2 * alpha * beta), t(beta), ratio, grad_x)
    return grad_x
