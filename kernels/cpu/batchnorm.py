"""Batch normalisation on the CPU (Numba), input viewed as (N, C, L) with L = H*W (or 1).

    mean[c] = (1/M) sum x[:, c, :],   var[c] = (1/M) sum (x[:, c, :] - mean[c])^2,   M = N*L
    y       = weight[c] * (x - mean[c]) / sqrt(var[c] + eps) + bias[c]
    dL/dbias[c]   = sum grad_y[:, c, :]
    dL/dweight[c] = sum grad_y * xhat
    dL/dx (training) = weight * invstd / M * (M * grad_y - dL/dbias - xhat * dL/dweight)
    dL/dx (eval)     = weight * invstd * grad_y

(derivation in ``kernels/reference/batchnorm.py``.) The per-channel sums run in
one thread per channel, in a fixed order, so they do not depend on the thread
count. They accumulate in float64 on purpose: a channel of conv1's output at
batch 64 holds ~190,000 values, and a float32 running sum of that many loses
digits the gradient check would see. Outputs keep the input's dtype. Mean and
variance take two passes (not sum of squares minus squared sum), which avoids
cancellation when the mean is large.
"""
import numpy as np
from numba import njit, prange

from ..reference.batchnorm import update_running_stats  # noqa: F401  (the same in-place NumPy update)
from . import workspace


@njit(parallel=True, cache=True)
def _channel_stats(x, mean, var):
    n_batch, channels, length = x.shape
    count = n_batch * length
    for c in prange(channels):
        total = 0.0
        for n in range(n_batch):
            for i in range(length):
                total += x[n, c, i]
        m = total / count
        squares = 0.0
        for n in range(n_batch):
            for i in range(length):
                d = x[n, c, i] - m
                squares += d * d
        mean[c] = m
        var[c] = squares / count


@njit(parallel=True, cache=True)
def _normalise(x, shift, scale, bias, y):
    """y = (x - shift[c]) * scale[c] + bias[c]."""
    n_batch, channels, length = x.shape
    for nc in prange(n_batch * channels):
        n = nc // channels
        c = nc % channels
        s, a, b = shift[c], scale[c], bias[c]
        for i in range(length):
            y[n, c, i] = (x[n, c, i] - s) * a + b


@njit(parallel=True, cache=True)
def _grad_sums(x, mean, invstd, grad_y, grad_weight, grad_bias):
    n_batch, channels, length = x.shape
    for c in prange(channels):
        sum_g = 0.0
        sum_g_xhat = 0.0
        m, s = mean[c], invstd[c]
        for n in range(n_batch):
            for i in range(length):
                g = grad_y[n, c, i]
                sum_g += g
                sum_g_xhat += g * ((x[n, c, i] - m) * s)
        grad_bias[c] = sum_g
        grad_weight[c] = sum_g_xhat


@njit(parallel=True, cache=True)
def _train_grad_x(x, mean, invstd, weight, grad_y, grad_weight, grad_bias, grad_x):
    n_batch, channels, length = x.shape
    count = n_batch * length
    for nc in prange(n_batch * channels):
        n = nc // channels
        c = nc % channels
        m, s = mean[c], invstd[c]
        factor = weight[c] * s / count
        gb, gw = grad_bias[c], grad_weight[c]
        for i in range(length):
            xhat = (x[n, c, i] - m) * s
            grad_x[n, c, i] = factor * (count * grad_y[n, c, i] - gb - xhat * gw)


def _as_ncl(x):
    return x.reshape(x.shape[0], x.shape[1], -1)


def batch_norm_train_forward(x, weight, bias, eps):
    x3 = _as_ncl(x)
    mean = np.empty(x.shape[1], dtype=x.dtype)
    var = np.empty(x.shape[1], dtype=x.dtype)
    _channel_stats(x3, mean, var)
    return batch_norm_eval_forward(x, mean, var, weight, bias, eps), mean, var


def batch_norm_eval_forward(x, mean, var, weight, bias, eps):
    invstd = (1 / np.sqrt(var + x.dtype.type(eps))).astype(x.dtype)
    y = workspace.empty_like(x)
    _normalise(_as_ncl(x), mean, weight * invstd, bias, _as_ncl(y))
    return y


def batch_norm_backward(x, mean, var, weight, grad_y, eps, training):
    x3, g3 = _as_ncl(x), _as_ncl(grad_y)
    invstd = (1 / np.sqrt(var + x.dtype.type(eps))).astype(x.dtype)
    grad_weight = np.empty(x.shape[1], dtype=x.dtype)
    grad_bias = np.empty(x.shape[1], dtype=x.dtype)
    _grad_sums(x3, mean, invstd, g3, grad_weight, grad_bias)
    grad_x = workspace.empty_like(x)
    if training:
        _train_grad_x(x3, mean, invstd, weight, g3, grad_weight, grad_bias, _as_ncl(grad_x))
    else:
        zeros = np.zeros_like(mean)
        _normalise(g3, zeros, weight * invstd, zeros, _as_ncl(grad_x))
    return grad_x, grad_weight, grad_bias
