"""Pooling on the GPU: max pooling, with the CPU's tie rule, and average pooling.

    y[n, c, i, j] = max of x[n, c] over the window; argmax = h*W + w of the first maximum
                    in row-major window order (a new maximum only when strictly greater,
                    or NaN where the maximum so far is not: the first NaN wins)
    dL/dx[n, c, h, w] = sum of grad_y[n, c, i, j] over the windows (i, j) that (h, w) won

Forward: one thread per output. Backward: one thread per *input* element, which
visits the few windows that can contain it (i from ceil((h + ph - kh + 1) / sh) to
floor((h + ph) / sh), likewise j) and adds the gradients of those it won, in the same
(i, j) order as the CPU kernel: no atomics, and the same sums.

Indexing: the kernels see each array as one flat axis of planes (n, c) one after the other
and take a thread's (plane, row, column) from its flat index with two divisions, all in
32-bit unsigned integers (``launch.MAX_INDEXED``; a larger batch goes in several launches,
``launch.chunked_launches``).
With Numba's default int64 each thread's index took 64-bit divisions and modulos (the GPU has
no divide instruction) and every array index the fix-up Numba adds to an index it cannot
prove non-negative: 72 registers and 29 instructions per window element in the forward, where
now 32 and 8 (docs/gpu.md, ``benchmarks/gpu_sass.py``). Window bounds that could fall below
zero are clamped before they are subtracted, so no value is ever negative.
"""
import numpy as np
from numba import cuda, int32, uint32

from .launch import chunked_launches, clamped_difference, empty, flat, jit, kept, split_index, upload


@jit
def _forward(x, height, width, kh, kw, sh, sw, ph, pw, h_out, w_out, y, argmax):
    """Flat x (planes*H*W), y and argmax (int32; planes*H_out*W_out); every size a uint32."""
    e, stride = uint32(cuda.grid(1)), uint32(cuda.gridsize(1))
    while e < y.size:
        plane, i, j = split_index(e, h_out, w_out)
        h_start, w_start = clamped_difference(i * sh, ph), clamped_difference(j * sw, pw)
        h_end, w_end = uint32(min(i * sh + kh - ph, height)), uint32(min(j * sw + kw - pw, width))  # kh > ph
        base = uint32(plane * height * width)
        best_index = uint32(h_start * width + w_start)
        best = x[uint32(base + best_index)]
        h = h_start
        while h < h_end:
            w = w_start
            while w < w_end:
                at = uint32(h * width + w)
                v = x[uint32(base + at)]
                if v > best or (v != v and best == best):
                    best = v
                    best_index = at
                w = uint32(w + 1)
            h = uint32(h + 1)
        y[e] = best
        argmax[e] = int32(best_index)
        e = uint32(e + stride)


@jit
def _backward(grad_y, argmax, height, width, kh, kw, sh, sw, ph, pw, h_out, w_out, zero, grad_x):
    """Flat grad_y and argmax (planes*H_out*W_out), grad_x (planes*H*W); every size a uint32."""
    e, stride = uint32(cuda.grid(1)), uint32(cuda.gridsize(1))
    while e < grad_x.size:
        plane, h, w = split_index(e, height, width)
        # (each sum cast back to 32 bits before a division, or the division is a 64-bit one)
        i = uint32(clamped_difference(uint32(h + ph + sh), kh) // sh)  # (h + ph - kh + 1) / sh rounded up, or 0
        i_end = uint32(min(h_out, uint32(h + ph) // sh + 1))
        j_first = uint32(clamped_difference(uint32(w + pw + sw), kw) // sw)
        j_end = uint32(min(w_out, uint32(w + pw) // sw + 1))
        me = int32(h * width + w)
        base = uint32(plane * h_out * w_out)
        total = zero
        while i < i_end:
            j = j_first
            while j < j_end:
                at = uint32(base + i * w_out + j)
                if argmax[at] == me:
                    total += grad_y[at]
                j = uint32(j + 1)
            i = uint32(i + 1)
        grad_x[e] = total
        e = uint32(e + stride)


def _window_args(kernel_size, stride, padding):
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    return tuple(np.uint32(v) for v in (kh, kw, sh, sw, ph, pw))


def max_pool2d_forward(x, kernel_size, stride, padding):
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    n, c, h, w = x.shape
    h_out = (h + 2 * ph - kh) // sh + 1
    w_out = (w + 2 * pw - kw) // sw + 1
    y = empty((n, c, h_out, w_out), x.dtype)
    argmax = empty((n, c, h_out, w_out), np.int32)  # an index within one plane (< MAX_INDEXED), as on the CPU
    sizes = np.uint32(h), np.uint32(w)
    for lo, hi, blocks, threads in chunked_launches(n, c * max(h * w, h_out * w_out), c * h_out * w_out, "max_pool2d"):
        _forward[blocks, threads](flat(x[lo:hi]), *sizes, *_window_args(kernel_size, stride, padding),
                                  np.uint32(h_out), np.uint32(w_out), flat(y[lo:hi]), flat(argmax[lo:hi]))
    return y, argmax


def max_pool2d_backward(grad_y, argmax, x_shape, kernel_size, stride, padding):
    n, c, h, w = x_shape
    h_out, w_out = grad_y.shape[2], grad_y.shape[3]
    grad_x = empty(x_shape, grad_y.dtype)
    for lo, hi, blocks, threads in chunked_launches(n, c * max(h * w, h_out * w_out), c * h * w, "max_pool2d"):
        _backward[blocks, threads](flat(grad_y[lo:hi]), flat(argmax[lo:hi]), np.uint32(h), np.uint32(w),
                                   *_window_args(kernel_size, stride, padding), np.uint32(h_out), np.uint32(w_out),
                                   grad_y.dtype.type(0), flat(grad_x[lo:hi]))
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
def _avg_forward(x, height, width, row_start, row_stop, row_count, col_start, col_stop, col_count, zero, y):
    """Flat x (planes*H*W) and y (planes*H_out*W_out); sizes and window tables uint32."""
    h_out, w_out = uint32(row_start.size), uint32(col_start.size)
    e, stride = uint32(cuda.grid(1)), uint32(cuda.gridsize(1))
    while e < y.size:
        plane, i, j = split_index(e, h_out, w_out)
        base = uint32(plane * height * width)
        total = zero
        h = row_start[i]
        while h < row_stop[i]:
            w = col_start[j]
            while w < col_stop[j]:
                total += x[uint32(base + h * width + w)]
                w = uint32(w + 1)
            h = uint32(h + 1)
        y[e] = total / (row_count[i] * col_count[j])
        e = uint32(e + stride)


@jit
def _avg_backward(grad_y, height, width, row_first, row_end, row_count, col_first, col_end, col_count, zero, grad_x):
    """Flat grad_y (planes*H_out*W_out) and grad_x (planes*H*W); sizes and window tables uint32."""
    h_out, w_out = uint32(row_count.size), uint32(col_count.size)
    e, stride = uint32(cuda.grid(1)), uint32(cuda.gridsize(1))
    while e < grad_x.size:
        plane, h, w = split_index(e, height, width)
        base = uint32(plane * h_out * w_out)
        total = zero
        i = row_first[h]
        while i < row_end[h]:
            j = col_first[w]
            while j < col_end[w]:
                total += grad_y[uint32(base + i * w_out + j)] / (row_count[i] * col_count[j])
                j = uint32(j + 1)
            i = uint32(i + 1)
        grad_x[e] = total
        e = uint32(e + stride)


def avg_pool2d_forward(x, rows, cols):
    n, c, h, w = x.shape
    y = empty((n, c, len(rows[0]), len(cols[0])), x.dtype)
    tables = *_on_device(rows, x.dtype), *_on_device(cols, x.dtype)
    outputs = c * y.shape[2] * y.shape[3]
    for lo, hi, blocks, threads in chunked_launches(n, max(c * h * w, outputs), outputs, "avg_pool2d"):
        _avg_forward[blocks, threads](flat(x[lo:hi]), np.uint32(h), np.uint32(w), *tables, x.dtype.type(0), flat(y[lo:hi]))
    return y


def _on_device(windows, dtype):
    """(start, stop, count) on the device, the bounds as uint32 (see the module docstring), the counts
    in the data's dtype: a float32 sum divided by
    an int64 count would be a float64 division in Numba (the same quotient, correctly rounded, at
    twice the cost and two conversions). Uploaded once per set of windows and dtype (``launch.kept``),
    not at every pass."""
    key = ("avg pool windows", np.dtype(dtype).str) + tuple((a.dtype.str, a.tobytes()) for a in windows)
    start, stop, count = windows
    return kept(key, lambda: (upload(start.astype(np.uint32)), upload(stop.astype(np.uint32)), upload(count.astype(dtype))))


def _covering(windows, size, dtype):
    """For each input position, the run [first, end) of the outputs whose windows hold it, and the
    counts (in ``dtype``), on the device."""
    start, stop, count = windows
    positions = np.arange(size)
    first = np.searchsorted(stop, positions, side="right")
    end = np.searchsorted(start, positions, side="right")
    return _on_device((first, end, count), dtype)


def avg_pool2d_backward(grad_y, x_shape, rows, cols):
    n, c, h, w = x_shape
    grad_x = empty(x_shape, grad_y.dtype)
    tables = *_covering(rows, h, grad_y.dtype), *_covering(cols, w, grad_y.dtype)
    for lo, hi, blocks, threads in chunked_launches(n, c * max(h * w, grad_y.shape[2] * grad_y.shape[3]), c * h * w,
                                                    "avg_pool2d"):
        _avg_backward[blocks, threads](flat(grad_y[lo:hi]), np.uint32(h), np.uint32(w), *tables, grad_y.dtype.type(0),
                                       flat(grad_x[lo:hi]))
    return grad_x
