"""2-D pooling, NCHW: max pooling (windows may overlap, AlexNet: 3x3 windows, stride 2) and average pooling.

Shapes: x (N, C, H, W) -> y (N, C, H_out, W_out), argmax (N, C, H_out, W_out), with

    H_out = (H + 2*ph - kh) // sh + 1            W_out likewise

Forward: y[n, c, i, j] = max over the window rows i*sh - ph ... i*sh - ph + kh - 1 and
columns j*sw - pw ... j*sw - pw + kw - 1 of x[n, c] (padding is -inf, and never wins,
not even a tie with an input that is -inf; a NaN in the window makes y NaN).
``argmax`` holds the winner's flat index h*W + w into x[n, c].

Ties go to the first element in row-major window order, and the first NaN wins,
identically in every backend.

Backward: each output gradient goes to the one input that won its window; an
input that wins several overlapping windows receives the sum:

    dL/dx[n, c, h, w] = sum over (i, j) with argmax[n, c, i, j] == h*W + w of grad_y[n, c, i, j]
"""
import numpy as np


def output_size(size, kernel, stride, pad):
    return (size + 2 * pad - kernel) // stride + 1


def max_pool2d_forward(x, kernel_size, stride, padding):
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    n, c, h, w = x.shape
    h_out, w_out = output_size(h, kh, sh, ph), output_size(w, kw, sw, pw)
    x_pad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
    real = np.pad(np.ones((h, w), dtype=bool), ((ph, ph), (pw, pw)))  # False in the padding

    def window_stack(a):
        """a's windows along a new last axis, a[..., p*kw + q] = a[..., i*sh + p, j*sw + q]: row-major order."""
        return np.stack(
            [a[..., p : p + sh * (h_out - 1) + 1 : sh, q : q + sw * (w_out - 1) + 1 : sw]
             for p in range(kh) for q in range(kw)],
            axis=-1,
        )

    windows = window_stack(x_pad)
    top = windows.max(axis=-1)  # NaN if the window holds one
    # The winner: the first real element equal to the maximum (or NaN where the maximum
    # is). "Real" matters only where the window's real elements are all -inf, as its padding is.
    is_max = (windows == top[..., None]) | (np.isnan(windows) & np.isnan(top)[..., None])
    winner = (is_max & window_stack(real)).argmax(axis=-1)
    y = np.take_along_axis(windows, winner[..., None], axis=-1)[..., 0]
    row = np.arange(h_out)[:, None] * sh - ph + winner // kw
    col = np.arange(w_out)[None, :] * sw - pw + winner % kw
    return y.astype(x.dtype), (row * w + col).astype(np.int64)


def max_pool2d_backward(grad_y, argmax, x_shape, kernel_size, stride, padding):
    """Scatters grad_y to the winners; the window arguments are only used by the GPU's gather form."""
    n, c, h, w = x_shape
    grad_x = np.zeros((n * c, h * w), dtype=grad_y.dtype)
    planes = np.repeat(np.arange(n * c), argmax[0, 0].size)
    np.add.at(grad_x, (planes, argmax.reshape(-1)), grad_y.reshape(-1))
    return grad_x.reshape(x_shape)


# ---- average pooling --------------------------------------------------------------------
# Average pooling (nn.AvgPool2d, nn.AdaptiveAvgPool2d) in one form: output row i averages the
# input rows start[i] <= h < stop[i] (already clipped to the input), output column j the columns
# likewise, and divides the window's sum by count_rows[i] * count_cols[j]. Padding is zeros, so
# it adds nothing to the sum; whether it counts in the divisor is in the counts
# (minicnn.functional.avg_pool2d and adaptive_avg_pool2d work out the windows):
#
#     y[n, c, i, j] = sum over rows [row_start[i], row_stop[i]) and columns [col_start[j], col_stop[j])
#                     of x[n, c, h, w]  /  (row_count[i] * col_count[j])
#
# That is a separable linear map, y[n, c] = R @ x[n, c] @ C.T with R[i, h] = 1/row_count[i]
# where h is in row i's window (0 elsewhere), C likewise; its backward is the transpose:
#
#     dL/dx[n, c] = R.T @ grad_y[n, c] @ C
#
# ``rows`` and ``cols`` are (start, stop, count) triples of int64 arrays, one entry per output.

def _averaging_matrix(windows, size):
    """R: R[i, h] = 1 / count[i] for start[i] <= h < stop[i], else 0."""
    start, stop, count = windows
    positions = np.arange(size)
    inside = (start[:, None] <= positions) & (positions < stop[:, None])
    return inside / count[:, None]


def avg_pool2d_forward(x, rows, cols):
    r = _averaging_matrix(rows, x.shape[2])
    c = _averaging_matrix(cols, x.shape[3])
    return np.einsum("ih,nchw,jw->ncij", r, x, c).astype(x.dtype)


def avg_pool2d_backward(grad_y, x_shape, rows, cols):
    r = _averaging_matrix(rows, x_shape[2])
    c = _averaging_matrix(cols, x_shape[3])
    return np.einsum("ih,ncij,jw->nchw", r, grad_y, c).astype(grad_y.dtype)
