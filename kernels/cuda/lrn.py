"""Local response normalisation on the GPU, one thread per element.

    scale[c] = k + alpha * sum_{j = max(0, c - n//2)}^{min(C - 1, c + n//2)} x[j]^2
    y[c]     = x[c] * scale[c] ** -beta
    dL/dx[i] = grad_y[i] * scale[i] ** -beta
               - 2 * alpha * beta * x[i] * sum_{|c - i| <= n//2} grad_y[c] * y[c] / scale[c]

Each thread sums its n-channel window directly (n reads, stride H*W, which
neighbouring threads read at neighbouring addresses: coalesced). The forward saves
y and scale; in the backward each thread sums ratio = grad_y * y / scale over its
window, computing each term from the three saved arrays as it goes (the window's
other channels are its neighbours' own elements, so mostly cache hits): one pass
that reads four arrays and writes one, where a separate pass writing the ratio
array and a second reading it moved nine. The same terms in the same order as
the CPU's sum. beta = 0.75 uses two square roots, as on the CPU.

The arrays are flat and every index a 32-bit unsigned integer, as in ``pool.py`` (whose
docstring says why): a thread's (image, channel, position) comes from its flat index in two
divisions, and a window's first channel is clamped at 0 before anything is subtracted.
"""
import math

import numpy as np
from numba import cuda, uint32

from .launch import clamped_difference, empty_like, flat, image_launches, jit, split_index


@cuda.jit(device=True, inline=True)
def _times_power(v, s, beta, three_quarters):
    if three_quarters:
        root = math.sqrt(s)
        return v / (root * math.sqrt(root))
    return v * s ** -beta


@jit
def _forward(x, channels, plane, half, alpha, beta, k, three_quarters, y, scale):
    """Flat x, y and scale (N*C*H*W); channels, plane (H*W) and half (n//2) uint32."""
    e, stride = uint32(cuda.grid(1)), uint32(cuda.gridsize(1))
    while e < x.size:
        n, c, p = split_index(e, channels, plane)
        first = clamped_difference(c, half)
        last = uint32(min(channels - uint32(1), c + half))  # (a plain 1: int64, which min() with a uint64 makes float64)
        image_p = uint32(n * channels * plane + p)  # x[n, j, p] is x[image_p + j*plane]
        v = x[uint32(image_p + first * plane)]
        total = v * v
        j = uint32(first + 1)
        while j <= last:
            v = x[uint32(image_p + j * plane)]
            total += v * v
            j = uint32(j + 1)
        s = k + alpha * total
        scale[e] = s
        y[e] = _times_power(x[e], s, beta, three_quarters)
        e = uint32(e + stride)


@jit
def _backward(x, scale, grad_y, y, channels, plane, half, two_alpha_beta, beta, three_quarters, grad_x):
    """Flat arrays (N*C*H*W); channels, plane and half uint32."""
    e, stride = uint32(cuda.grid(1)), uint32(cuda.gridsize(1))
    while e < x.size:
        n, i, p = split_index(e, channels, plane)
        first = clamped_difference(i, half)
        last = uint32(min(channels - uint32(1), i + half))
        image_p = uint32(n * channels * plane + p)
        at = uint32(image_p + first * plane)
        total = grad_y[at] * y[at] / scale[at]
        c = uint32(first + 1)
        while c <= last:
            at = uint32(image_p + c * plane)
            total += grad_y[at] * y[at] / scale[at]
            c = uint32(c + 1)
        grad_x[e] = _times_power(grad_y[e], scale[e], beta, three_quarters) - two_alpha_beta * x[e] * total
        e = uint32(e + stride)


def lrn_forward(x, size, alpha, beta, k):
    t = x.dtype.type
    y, scale = empty_like(x), empty_like(x)
    for lo, hi, blocks, threads, channels, plane in image_launches(x, "local_response_norm"):
        _forward[blocks, threads](flat(x[lo:hi]), channels, plane, np.uint32(size // 2), t(alpha), t(beta), t(k),
                                  beta == 0.75, flat(y[lo:hi]), flat(scale[lo:hi]))
    return y, (y, scale)


def lrn_backward(x, saved, grad_y, size, alpha, beta, k):
    y, scale = saved
    t = x.dtype.type
    grad_x = empty_like(x)
    for lo, hi, blocks, threads, channels, plane in image_launches(x, "local_response_norm"):
        _backward[blocks, threads](flat(x[lo:hi]), flat(scale[lo:hi]), flat(grad_y[lo:hi]), flat(y[lo:hi]),
                                   channels, plane, np.uint32(size // 2), t(2 * alpha * beta), t(beta), beta == 0.75,
                                   flat(grad_x[lo:hi]))
    return grad_x
