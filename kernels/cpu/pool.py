"""2-D max pooling on the CPU (Numba), overlapping windows allowed.

The math (``kernels/reference/pool.py`` has it as NumPy):

    H_out = (H + 2*ph - kh) // sh + 1
    y[n, c, i, j]      = max of x[n, c] over rows i*sh - ph .. +kh-1, columns j*sw - pw .. +kw-1
    argmax[n, c, i, j] = h*W + w of the first maximum in row-major window order
    dL/dx[n, c, h, w]  = sum of grad_y[n, c, i, j] over the windows that (h, w) won

Windows are clipped to the input instead of padding it with -inf (the op layer
requires padding <= kernel // 2, so every window holds at least one real input).
The scan starts at the window's first element and takes a new maximum only when
strictly greater, which is the tie rule.

Threads: both passes run in parallel over (n, c) planes, each plane owned by one
iteration, so the backward's sums never race.
"""
import numpy as np
from numba import njit, prange

from . import workspace


@njit(parallel=True, cache=True)
def _max_pool_forward(x, kh, kw, sh, sw, ph, pw, y, argmax):
    n_batch, channels, height, width = x.shape
    h_out, w_out = y.shape[2], y.shape[3]
    for nc in prange(n_batch * channels):
        n = nc // channels
        c = nc % channels
        for i in range(h_out):
            h_start = max(i * sh - ph, 0)
            h_end = min(i * sh - ph + kh, height)
            for j in range(w_out):
                w_start = max(j * sw - pw, 0)
                w_end = min(j * sw - pw + kw, width)
                best = x[n, c, h_start, w_start]
                best_index = h_start * width + w_start
                for h in range(h_start, h_end):
                    for w in range(w_start, w_end):
                        v = x[n, c, h, w]
                        if v > best:
                            best = v
                            best_index = h * width + w
                y[n, c, i, j] = best
                argmax[n, c, i, j] = best_index


@njit(parallel=True, cache=True)
def _max_pool_backward(grad_y, argmax, grad_x):
    """grad_x: (N*C, H*W); grad_y, argmax: (N*C, H_out*W_out). Each plane is zeroed by the
    iteration that owns it, while it is in cache, instead of in a pass of its own."""
    for plane in prange(grad_y.shape[0]):
        grad_x[plane] = 0
        for m in range(grad_y.shape[1]):
            grad_x[plane, argmax[plane, m]] += grad_y[plane, m]


def max_pool2d_forward(x, kernel_size, stride, padding):
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    n, c, h, w = x.shape
    h_out = (h + 2 * ph - kh) // sh + 1
    w_out = (w + 2 * pw - kw) // sw + 1
    y = workspace.empty((n, c, h_out, w_out), x.dtype)
    index_type = np.int32 if h * w < 2**31 else np.int64  # an index within one plane: int32 halves its memory
    argmax = workspace.empty((n, c, h_out, w_out), index_type)
    _max_pool_forward(x, kh, kw, sh, sw, ph, pw, y, argmax)
    return y, argmax


def max_pool2d_backward(grad_y, argmax, x_shape, kernel_size=None, stride=None, padding=None):
    """Scatters grad_y to the winners; the window arguments are only needed by the GPU's gather form."""
    n, c, h, w = x_shape
    grad_x = workspace.empty((n * c, h * w), grad_y.dtype)
    _max_pool_backward(grad_y.reshape(n * c, -1), argmax.reshape(n * c, -1), grad_x)
    return grad_x.reshape(x_shape)
