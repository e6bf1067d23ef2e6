"""2-D convolution on the CPU: Numba im2col/col2im feeding NumPy's SGEMM.

The math (see ``kernels/reference/conv.py`` for the same formulas as loops):

    y[n, k, i, j] = b[k] + sum_{c', p, q} w[k, c', p, q] * x_pad[n, g*C/G + c', i*sh + p, j*sw + q]

im2col turns it into one matrix product per group. Row r = (c*kh + p)*kw + q and
column m = (n*H_out + i)*W_out + j of the matrix ``cols`` (C*kh*kw, N*H_out*W_out) hold

    cols[r, m] = x_pad[n, c, i*sh + p, j*sw + q]

so that, with the rows of group g forming the block cols_g (C/G*kh*kw, N*H_out*W_out)
and w_g = w[group g].reshape(K/G, C/G*kh*kw):

    y_g          = w_g @ cols_g                      (K/G, N*H_out*W_out), then to NCHW
    dL/dw_g      = grad_y_g @ cols_g^T               one large GEMM over the whole batch
    dL/dcols_g   = w_g^T @ grad_y_g                  then col2im adds each entry back to
                                                     the x_pad element it was copied from
    dL/db[k]     = sum over (n, i, j) of grad_y[n, k, i, j]

Why this design: on the development machine (2 Zen 3 cores) NumPy's SGEMM runs at
~150-170 GFLOP/s, while the best direct Numba convolution reached ~30 (NUMBA.md).
One GEMM over the whole batch (instead of one per image) gives BLAS the largest
matrices. The im2col matrix lives in a reused scratch buffer (``workspace.py``).

Threads: im2col and col2im run in parallel over (n, c) planes. In col2im each
plane of grad_x is owned by exactly one iteration, so no two threads ever add into
the same element and the result does not depend on the thread count.
"""
import numpy as np
from numba import njit, prange

from .workspace import scratch


@njit(parallel=True, cache=True)
def _im2col(x_pad, kh, kw, sh, sw, h_out, w_out, cols):
    n_batch, channels = x_pad.shape[0], x_pad.shape[1]
    plane = h_out * w_out
    for nc in prange(n_batch * channels):
        n = nc // channels
        c = nc % channels
        for p in range(kh):
            for q in range(kw):
                row = (c * kh + p) * kw + q
                for i in range(h_out):
                    col = n * plane + i * w_out
                    h = i * sh + p
                    for j in range(w_out):
                        cols[row, col + j] = x_pad[n, c, h, j * sw + q]


@njit(parallel=True, cache=True)
def _col2im(grad_cols, kh, kw, sh, sw, h_out, w_out, grad_x_pad):
    """grad_x_pad (zeroed) += each grad_cols entry at the x_pad position it came from."""
    n_batch, channels = grad_x_pad.shape[0], grad_x_pad.shape[1]
    plane = h_out * w_out
    for nc in prange(n_batch * channels):
        n = nc // channels
        c = nc % channels
        for p in range(kh):
            for q in range(kw):
                row = (c * kh + p) * kw + q
                for i in range(h_out):
                    col = n * plane + i * w_out
                    h = i * sh + p
                    for j in range(w_out):
                        grad_x_pad[n, c, h, j * sw + q] += grad_cols[row, col + j]


@njit(parallel=True, cache=True)
def _channel_major_to_nchw(y_cm, bias, y):
    """y[n, k, :] = y_cm[k, n, :] + bias[k]  (GEMM output order -> NCHW)."""
    channels, n_batch = y_cm.shape[0], y_cm.shape[1]
    for nk in prange(n_batch * channels):
        n = nk // channels
        k = nk % channels
        b = bias[k]
        for m in range(y_cm.shape[2]):
            y[n, k, m] = y_cm[k, n, m] + b


@njit(parallel=True, cache=True)
def _nchw_to_channel_major(g, g_cm):
    """g_cm[k, n, :] = g[n, k, :]  (NCHW -> the GEMM's order)."""
    n_batch, channels = g.shape[0], g.shape[1]
    for kn in prange(channels * n_batch):
        k = kn // n_batch
        n = kn % n_batch
        for m in range(g.shape[2]):
            g_cm[k, n, m] = g[n, k, m]


def _pad(x, padding):
    (top, bottom), (left, right) = padding
    if top == bottom == left == right == 0:
        return x
    n, c, h, w = x.shape
    x_pad = np.zeros((n, c, h + top + bottom, w + left + right), dtype=x.dtype)
    x_pad[:, :, top : top + h, left : left + w] = x
    return x_pad


def _im2col_of(x, kh, kw, stride, padding):
    x_pad = _pad(x, padding)
    n, c, hp, wp = x_pad.shape
    h_out = (hp - kh) // stride[0] + 1
    w_out = (wp - kw) // stride[1] + 1
    cols = scratch("conv.cols", (c * kh * kw, n * h_out * w_out), x.dtype)
    _im2col(x_pad, kh, kw, stride[0], stride[1], h_out, w_out, cols)
    return cols, h_out, w_out


def conv2d_forward(x, w, b, stride, padding, groups):
    n = x.shape[0]
    k, c_per_group, kh, kw = w.shape
    cols, h_out, w_out = _im2col_of(x, kh, kw, stride, padding)
    y_cm = np.empty((groups, k // groups, n * h_out * w_out), dtype=x.dtype)
    np.matmul(w.reshape(groups, k // groups, c_per_group * kh * kw), cols.reshape(groups, -1, cols.shape[1]), out=y_cm)
    y = np.empty((n, k, h_out, w_out), dtype=x.dtype)
    bias = b if b is not None else np.zeros(k, dtype=x.dtype)
    _channel_major_to_nchw(y_cm.reshape(k, n, h_out * w_out), bias, y.reshape(n, k, h_out * w_out))
    return y


def conv2d_backward(x, w, grad_y, stride, padding, groups, needs_input_grad=(True, True, True)):
    """Returns (grad_x, grad_w, grad_b); an entry is None where ``needs_input_grad`` says so."""
    n, c, h, wd = x.shape
    k, c_per_group, kh, kw = w.shape
    h_out, w_out = grad_y.shape[2:]
    m = n * h_out * w_out
    grad_y_cm = scratch("conv.grad_y", (k, n, h_out * w_out), x.dtype)
    _nchw_to_channel_major(grad_y.reshape(n, k, h_out * w_out), grad_y_cm)
    grad_y_g = grad_y_cm.reshape(groups, k // groups, m)
    grad_x = grad_w = grad_b = None
    if needs_input_grad[2]:
        grad_b = grad_y_cm.reshape(k, m).sum(axis=1)
    if needs_input_grad[1]:
        cols, _, _ = _im2col_of(x, kh, kw, stride, padding)
        grad_w = np.matmul(grad_y_g, cols.reshape(groups, -1, m).transpose(0, 2, 1)).reshape(w.shape)
    if needs_input_grad[0]:
        grad_cols = scratch("conv.grad_cols", (groups, c_per_group * kh * kw, m), x.dtype)
        np.matmul(w.reshape(groups, k // groups, -1).transpose(0, 2, 1), grad_y_g, out=grad_cols)
        (top, bottom), (left, right) = padding
        grad_x_pad = np.zeros((n, c, h + top + bottom, wd + left + right), dtype=x.dtype)
        _col2im(grad_cols.reshape(c * kh * kw, m), kh, kw, stride[0], stride[1], h_out, w_out, grad_x_pad)
        grad_x = grad_x_pad if grad_x_pad.shape == x.shape else np.ascontiguousarray(
            grad_x_pad[:, :, top : top + h, left : left + wd]
        )
    return grad_x, grad_w, grad_b
