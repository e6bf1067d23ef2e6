"""Pooling on the GPU: max pooling, with the CPU's tie rule, and average pooling.

    y[n, c, i, j] = max of x[n, c] over the window; argmax = h*W + w of the first maximum
                    in row-major window order (a new maximum only when strictly greater,
                    or NaN where the maximum so far is not: the first NaN wins)
    dL/dx[n, c, h, w] = sum of grad_y[n, c, i, j] over the windows (i, j) that (h, w) won

Forward: one thread per output. Backward: one thread per *input* element, which
visits the few windows that can contain it (i from ceil((h + ph - kh + 1) / sh)
to floor((h + ph) / sh), likewise j) and adds the gradients of those it won, in
the same (i, j) order as the CPU kernel: no atomics, and the same sums.
"""
import numpy as np
from numba import cuda

from .launch import empty, grid_1d, jit, kept, upload


@jit
def _forward(x, kh, kw, sh, sw, ph, pw, y, argmax):
    n_batch, channels, height, width = x.shape
    h_out, w_out = y.shape[2], y.shape[3]
    for e in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        j = e % w_out
        i = (e // w_out) % h_out
        c = (e // (w_out * h_out)) % channels
        n = e // (w_out * h_out * channels)
        h_start = max(i * sh - ph, 0)
        h_end = min(i * sh - ph + kh, height)
        w_start = max(j * sw - pw, 0)
        w_end = min(j * sw - pw + kw, width)
        best = x[n, c, h_start, w_start]
        best_index = h_start * width + w_start
        for h in range(h_start, h_end):
            for w in range(w_start, w_end):
                v = x[n, c, h, w]
                if v > best or (v != v and best == best):
                    best = v
                    best_index = h * width + w
        y[n, c, i, j] = best
        argmax[n, c, i, j] = best_index


@jit
def _backward(grad_y, argmax, kh, kw, sh, sw, ph, pw, zero, grad_x):
    n_batch, channels, height, width = grad_x.shape
    h_out, w_out = grad_y.shape[2], grad_y.shape[3]
    for e in range(cuda.grid(1), grad_x.size, cuda.gridsize(1)):
        w = e % width
        h = (e // width) % height
        c = (e // (width * height)) % channels
        n = e // (width * height * channels)
        i_lo = max(0, (h + ph - kh + sh) // sh)
        i_hi = min(h_out - 1, (h + ph) // sh)
        j_lo = max(0, (w + pw - kw + sw) // sw)
        j_hi = min(w_out - 1, (w + pw) // sw)
        me = h * width + w
        total = zero
        for i in range(i_lo, i_hi + 1):
            for j in range(j_lo, j_hi + 1):
                if argmax[n, c, i, j] == me:
                    total += grad_y[n, c, i, j]
        grad_x[n, c, h, w] = total


def max_pool2d_forward(x, kernel_size, stride, padding):
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    n, c, h, w = x.shape
    h_out = (h + 2 * ph - kh) // sh + 1
    w_out = (w + 2 * pw - kw) // sw + 1
    y = empty((n, c, h_out, w_out), x.dtype)
    argmax = empty((n, c, h_out, w_out), np.int64)
    blocks, threads = grid_1d(y.size)
    _forward[blocks, threads](x, kh, kw, sh, sw, ph, pw, y, argmax)
    return y, argmax


def max_pool2d_backward(grad_y, argmax, x_shape, kernel_size, stride, padding):
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    grad_x = empty(x_shape, grad_y.dtype)
    blocks, threads = grid_1d(grad_x.size)
    _backward[blocks, threads](grad_y, argmax, kh, kw, sh, sw, ph, pw, grad_y.dtype.type(0), grad_x)
    return grad_x


# ---- average pooling --------------------------------------------------------------------
# y[n, c, i, j] = sum of x[n, c] over rows [row_start[i], row_stop[i]) and columns
# [col_start[j], col_stop[j]) / (row_count[i] * col_count[j])   (kernels/reference/pool.py)
#
# Forward: one thread per output. Backward: one thread per input element, gathering the shares
# of the outputs whose windows hold it. The windows' starts and stops never decrease with i, so
# the rows covering input row h are one run, i in [row_first[h], row_end[h]): the first window
# that stops after h up to the first that starts after it (found on the host, once per call).

@jit
def _avg_forward(x, row_start, row_stop, row_count, col_start, col_stop, col_count, zero, y):
    channels, h_out, w_out = y.shape[1], y.shape[2], y.shape[3]
    for e in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        j = e % w_out
        i = (e // w_out) % h_out
        c = (e // (w_out * h_out)) % channels
        n = e // (w_out * h_out * channels)
        total = zero
        for h in range(row_start[i], row_stop[i]):
            for w in range(col_start[j], col_stop[j]):
                total += x[n, c, h, w]
        y[n, c, i, j] = total / (row_count[i] * col_count[j])


@jit
def _avg_backward(grad_y, row_first, row_end, row_count, col_first, col_end, col_count, zero, grad_x):
    channels, height, width = grad_x.shape[1], grad_x.shape[2], grad_x.shape[3]
    for e in range(cuda.grid(1), grad_x.size, cuda.gridsize(1)):
        w = e % width
        h = (e // width) % height
        c = (e // (width * height)) % channels
        n = e // (width * height * channels)
        total = zero
        for i in range(row_first[h], row_end[h]):
            for j in range(col_first[w], col_end[w]):
                total += grad_y[n, c, i, j] / (row_count[i] * col_count[j])
        grad_x[n, c, h, w] = total


def avg_pool2d_forward(x, rows, cols):
    y = empty((*x.shape[:2], len(rows[0]), len(cols[0])), x.dtype)
    blocks, threads = grid_1d(y.size)
    _avg_forward[blocks, threads](x, *_on_device(rows, x.dtype), *_on_device(cols, x.dtype), x.dtype.type(0), y)
    return y


def _on_device(windows, dtype):
    """(start, stop, count) on the device, the counts in the data's dtype: a float32 sum divided by
    an int64 count would be a float64 division in Numba (the same quotient, correctly rounded, at
    twice the cost and two conversions). Uploaded once per set of windows and dtype (``launch.kept``),
    not at every pass."""
    key = ("avg pool windows", np.dtype(dtype).str) + tuple((a.dtype.str, a.tobytes()) for a in windows)
    start, stop, count = windows
    return kept(key, lambda: (upload(start), upload(stop), upload(count.astype(dtype))))


def _covering(windows, size, dtype):
    """For each input position, the run [first, end) of the outputs whose windows hold it, and the
    counts (in ``dtype``), on the device."""
    start, stop, count = windows
    positions = np.arange(size)
    first = np.searchsorted(stop, positions, side="right")
    end = np.searchsorted(start, positions, side="right")
    return _on_device((first, end, count), dtype)


def avg_pool2d_backward(grad_y, x_shape, rows, cols):
    grad_x = empty(x_shape, grad_y.dtype)
    blocks, threads = grid_1d(grad_x.size)
    _avg_backward[blocks, threads](grad_y, *_covering(rows, x_shape[2], grad_y.dtype), *_covering(cols, x_shape[3], grad_y.dtype),
                                   grad_y.dtype.type(0), grad_x)
    return grad_x
