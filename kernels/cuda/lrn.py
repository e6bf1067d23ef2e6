"""Local response normalisation on the GPU, one thread per element.

    scale[c] = k + alpha * sum_{j = max(0, c - n//2)}^{min(C - 1, c + n//2)} x[j]^2
    y[c]     = x[c] * scale[c] ** -beta
    dL/dx[i] = grad_y[i] * scale[i] ** -beta
               - 2 * alpha * beta * x[i] * sum_{|c - i| <= n//2} grad_y[c] * y[c] / scale[c]

Each thread sums its n-channel window directly (n reads, stride H*W, which
neighbouring threads read at neighbouring addresses: coalesced). The backward
first writes ratio = grad_y * y / scale, then each thread sums the ratio over its
window. beta = 0.75 uses two square roots, as on the CPU.
"""
import math

from numba import cuda

from .launch import empty_like, grid_1d, jit


@cuda.jit(device=True, inline=True)
def _times_power(v, s, beta, three_quarters):
    if three_quarters:
        root = math.sqrt(s)
        return v / (root * math.sqrt(root))
    return v * s ** -beta


@jit
def _forward(x, half, alpha, beta, k, three_quarters, y, scale):
    channels, plane = x.shape[1], x.shape[2]
    for e in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        p = e % plane
        c = (e // plane) % channels
        n = e // (plane * channels)
        lo = max(0, c - half)
        hi = min(channels - 1, c + half)
        total = x[n, lo, p] * x[n, lo, p]
        for j in range(lo + 1, hi + 1):
            total += x[n, j, p] * x[n, j, p]
        s = k + alpha * total
        scale[n, c, p] = s
        y[n, c, p] = _times_power(x[n, c, p], s, beta, three_quarters)


@jit
def _ratio(grad_y, y, scale, ratio):
    for i in range(cuda.grid(1), ratio.size, cuda.gridsize(1)):
        ratio[i] = grad_y[i] * y[i] / scale[i]


@jit
def _backward(x, scale, grad_y, ratio, half, two_alpha_beta, beta, three_quarters, grad_x):
    channels, plane = x.shape[1], x.shape[2]
    for e in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        p = e % plane
        i = (e // plane) % channels
        n = e // (plane * channels)
        lo = max(0, i - half)
        hi = min(channels - 1, i + half)
        total = ratio[n, lo, p]
        for c in range(lo + 1, hi + 1):
            total += ratio[n, c, p]
        grad_x[n, i, p] = (_times_power(grad_y[n, i, p], scale[n, i, p], beta, three_quarters)
                           - two_alpha_beta * x[n, i, p] * total)


def _planes(a):
    return a.reshape(a.shape[0], a.shape[1], a.size // (a.shape[0] * a.shape[1]))


def lrn_forward(x, size, alpha, beta, k):
    t = x.dtype.type
    y, scale = empty_like(x), empty_like(x)
    blocks, threads = grid_1d(x.size)
    _forward[blocks, threads](_planes(x), size // 2, t(alpha), t(beta), t(k), beta == 0.75, _planes(y), _planes(scale))
    return y, (y, scale)


def lrn_backward(x, saved, grad_y, size, alpha, beta, k):
    y, scale = saved
    t = x.dtype.type
    ratio, grad_x = empty_like(x), empty_like(x)
    blocks, threads = grid_1d(x.size)
    _ratio[blocks, threads](grad_y.reshape(x.size), y.reshape(x.size), scale.reshape(x.size), ratio.reshape(x.size))
    _backward[blocks, threads](_planes(x), _planes(scale), _planes(grad_y), _planes(ratio), size // 2,
                               t(2 * alpha * beta), t(beta), beta == 0.75, _planes(grad_x))
    return grad_x
