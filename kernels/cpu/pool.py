"""2-D pooling on the CPU (Numba): max pooling (overlapping windows allowed) and average pooling.

The math (``kernels/reference/pool.py`` has it as NumPy):

    H_out = (H + 2*ph - kh) // sh + 1
    y[n, c, i, j]      = max of x[n, c] over rows i*sh - ph .. +kh-1, columns j*sw - pw .. +kw-1
    argmax[n, c, i, j] = h*W + w of the first maximum in row-major window order
    dL/dx[n, c, h, w]  = sum of grad_y[n, c, i, j] over the windows that (h, w) won

The tie rule: the scan goes through the window in row-major order and takes a new
maximum only when it ``_wins``: strictly greater, or NaN where the maximum so far is not
(so a NaN propagates, and the first one wins, as ``np.argmax`` has it in the reference).
Windows are clipped to the input instead of padding it with -inf (the op layer requires
padding <= kernel // 2, so every window holds at least one real input).

``_scan_window`` is that scan for one output, as written: it serves the border outputs,
whose windows are clipped. The interior outputs go through a vectorised form of the same
scan, because one output at a time was slow: the compare-and-keep of the index is a
branch that random data mispredicts, and the window's columns are sw apart, a gather the
compiler does not vectorise. Per (n, c) plane:

1. split the plane into its sh*sw phases, phase (rh, rw)[a, b] = x[a*sh + rh, b*sw + rw],
   each stored flat with rows of length PW = ceil(W / sw) (each row's column phases by
   ``phases.py``, as conv's im2col does);
2. then, for output (i, j) at m = i*PW + j, window element (p, q) is phase
   ((p - ph) mod sh, (q - pw) mod sw) at flat position m + a constant: one contiguous run
   of all the plane's outputs per window element. The scan becomes kh*kw passes over those
   runs, each a vector compare and blend of the value and of the element's offset
   p*W + q in the window (PW - W_out of each row's entries are not outputs and are dropped);
3. argmax = the window's corner (i*sh - ph)*W + j*sw - pw + that offset.

Each task of the parallel loop lays ``PLANES_PER_TASK`` planes side by side, so that one
pass covers them all (a 13x13 plane alone has only 42 interior outputs).

Threads: the forward runs in parallel over those tasks, the backward over (n, c) planes,
each plane owned by one iteration, so the backward's sums never race.
"""
import numpy as np
from numba import njit, prange

from . import workspace
from .phases import gather_phase, phase_length

PLANES_PER_TASK = 8


@njit(cache=True, inline="always")
def _wins(v, best):
    """The tie rule: strictly greater, or the first NaN."""
    return v > best or (v != v and best == best)


@njit(cache=True)
def _scan_window(plane, i, j, kh, kw, sh, sw, ph, pw):
    """(max, flat index of the first maximum) of output (i, j)'s window, clipped to the plane."""
    height, width = plane.shape
    h_start = max(i * sh - ph, 0)
    h_end = min(i * sh - ph + kh, height)
    w_start = max(j * sw - pw, 0)
    w_end = min(j * sw - pw + kw, width)
    best = plane[h_start, w_start]
    best_index = h_start * width + w_start
    for h in range(h_start, h_end):
        for w in range(w_start, w_end):
            if _wins(plane[h, w], best):
                best = plane[h, w]
                best_index = h * width + w
    return best, best_index


@njit(parallel=True, cache=True)
def _max_pool_forward(x, kh, kw, sh, sw, ph, pw, y, argmax):
    n_batch, channels, height, width = x.shape
    h_out, w_out = y.shape[2], y.shape[3]
    # The interior outputs, whose windows lie wholly inside the plane: rows [i_lo, i_hi), columns [j_lo, j_hi).
    i_lo = min(h_out, (ph + sh - 1) // sh)
    i_hi = max(i_lo, min(h_out, (height + ph - kh) // sh + 1))
    j_lo = min(w_out, (pw + sw - 1) // sw)
    j_hi = max(j_lo, min(w_out, (width + pw - kw) // sw + 1))
    has_interior = i_hi > i_lo and j_hi > j_lo
    # Each task takes PLANES_PER_TASK planes, side by side in its scratch, so that the scan
    # of step 2 runs once over all of them (at 13x13 one plane has only 42 interior outputs).
    # Plane k's phase (rh, rw) starts at (rh*sw + rw)*phase_size + kw + k*plane_stride, with
    # kw entries between planes and around the whole: the scan's runs start up to kw - 1
    # entries before a plane's phase or end as far after it (only for outputs that are
    # dropped, which may read another plane's entries or uninitialised ones).
    phase_w = (width + sw - 1) // sw
    plane_stride = ((height + sh - 1) // sh) * phase_w + kw
    phase_size = PLANES_PER_TASK * plane_stride + 2 * kw
    planes = n_batch * channels
    for task in prange((planes + PLANES_PER_TASK - 1) // PLANES_PER_TASK):
        first = task * PLANES_PER_TASK
        count = min(planes, first + PLANES_PER_TASK) - first
        phases = np.empty(sh * sw * phase_size, dtype=x.dtype)
        run = (count - 1) * plane_stride + (i_hi - i_lo) * phase_w
        # The running maximum and its offset, in two buffers that the passes alternate between
        # (step 2 says why).
        best_then, best_now = np.empty(run, dtype=x.dtype), np.empty(run, dtype=x.dtype)
        offset_then, offset_now = np.empty(run, dtype=np.int32), np.empty(run, dtype=np.int32)
        for k in range(count):
            n, c = (first + k) // channels, (first + k) % channels
            plane, out, out_index = x[n, c], y[n, c], argmax[n, c]
            for i in range(h_out):  # the border outputs, one window at a time
                interior_row = i_lo <= i < i_hi
                for j in range(w_out):
                    if interior_row and j_lo <= j < j_hi:
                        continue
                    out[i, j], out_index[i, j] = _scan_window(plane, i, j, kh, kw, sh, sw, ph, pw)
            if not has_interior:
                continue
            # 1. the plane's phases
            for h in range(height):
                for rw in range(sw):
                    start = (((h % sh) * sw + rw) * phase_size + kw + k * plane_stride
                             + (h // sh) * phase_w)
                    gather_phase(plane[h, rw:], sw, phases[start:start + phase_length(width, sw, rw)])
        if not has_interior:
            continue
        # 2. the scan, one window element (p, q) at a time, over the interior outputs of all
        #    the task's planes: m = k*plane_stride + (i - i_lo)*PW + j. Each pass loads the
        #    running maximum from one buffer and stores all of it to the other: kept in one
        #    buffer, or with the loads inside the conditional expressions, the compiler makes
        #    the keep-or-replace a masked store, microcoded on AMD's AVX2 cores (VMASKMOVPS;
        #    docs/benchmarks.md has the numbers).
        for p in range(kh):
            for q in range(kw):
                best_then, best_now = best_now, best_then
                offset_then, offset_now = offset_now, offset_then
                dh, dw = p - ph, q - pw
                start = (((dh % sh) * sw + dw % sw) * phase_size + kw
                         + (i_lo + dh // sh) * phase_w + dw // sw)
                element = phases[start:start + run]
                offset = np.int32(p * width + q)
                if p == 0 and q == 0:
                    for m in range(run):
                        best_now[m] = element[m]
                        offset_now[m] = offset
                    continue
                for m in range(run):
                    value, best, best_offset = element[m], best_then[m], offset_then[m]
                    wins = _wins(value, best)
                    best_now[m] = value if wins else best
                    offset_now[m] = offset if wins else best_offset
        # 3. the interior outputs and their flat indices
        for k in range(count):
            n, c = (first + k) // channels, (first + k) % channels
            for i in range(i_lo, i_hi):
                row = k * plane_stride + (i - i_lo) * phase_w
                corner = (i * sh - ph) * width - pw
                out_row = y[n, c, i, j_lo:j_hi]
                index_row = argmax[n, c, i, j_lo:j_hi]
                best_row = best_now[row + j_lo:row + j_hi]
                offset_row = offset_now[row + j_lo:row + j_hi]
                for j in range(j_hi - j_lo):
                    out_row[j] = best_row[j]
                    index_row[j] = corner + (j_lo + j) * sw + offset_row[j]


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


def max_pool2d_backward(grad_y, argmax, x_shape, kernel_size, stride, padding):
    """Scatters grad_y to the winners; the window arguments are only used by the GPU's gather form."""
    n, c, h, w = x_shape
    grad_x = workspace.empty((n * c, h * w), grad_y.dtype)
    _max_pool_backward(grad_y.reshape(n * c, -1), argmax.reshape(n * c, -1), grad_x)
    return grad_x.reshape(x_shape)


# ---- average pooling --------------------------------------------------------------------
# y[n, c, i, j] = sum of x[n, c] over rows [row_start[i], row_stop[i]) and columns
# [col_start[j], col_stop[j]), divided by row_count[i] * col_count[j] (the windows are worked out
# in minicnn.functional; kernels/reference/pool.py has the math as NumPy). One window at a time,
# in parallel over (n, c) planes; the backward spreads each output's share grad_y / count over its
# window, each plane owned by one iteration, so overlapping windows' sums never race. (Average
# pooling is not on AlexNet's path: these loops are written to be read, not tuned.)

@njit(parallel=True, cache=True)
def _avg_pool_forward(x, row_start, row_stop, row_count, col_start, col_stop, col_count, y):
    n_batch, channels = x.shape[0], x.shape[1]
    for plane in prange(n_batch * channels):
        n, c = plane // channels, plane % channels
        for i in range(y.shape[2]):
            for j in range(y.shape[3]):
                total = x.dtype.type(0)
                for h in range(row_start[i], row_stop[i]):
                    for w in range(col_start[j], col_stop[j]):
                        total += x[n, c, h, w]
                y[n, c, i, j] = total / (row_count[i] * col_count[j])


@njit(parallel=True, cache=True)
def _avg_pool_backward(grad_y, row_start, row_stop, row_count, col_start, col_stop, col_count, grad_x):
    n_batch, channels = grad_y.shape[0], grad_y.shape[1]
    for plane in prange(n_batch * channels):
        n, c = plane // channels, plane % channels
        grad_x[n, c] = 0
        for i in range(grad_y.shape[2]):
            for j in range(grad_y.shape[3]):
                share = grad_y[n, c, i, j] / (row_count[i] * col_count[j])
                for h in range(row_start[i], row_stop[i]):
                    for w in range(col_start[j], col_stop[j]):
                        grad_x[n, c, h, w] += share


def avg_pool2d_forward(x, rows, cols):
    y = workspace.empty((*x.shape[:2], len(rows[0]), len(cols[0])), x.dtype)
    _avg_pool_forward(x, *rows, *cols, y)
    return y


def avg_pool2d_backward(grad_y, x_shape, rows, cols):
    grad_x = workspace.empty(x_shape, grad_y.dtype)
    _avg_pool_backward(grad_y, *rows, *cols, grad_x)
    return grad_x
