"""Softmax, log-softmax and softmax cross-entropy on the CPU (Numba, one row per iteration).

    log_softmax(x)[n, j] = (x[n, j] - m[n]) - log1p(r[n]),   m[n] = x[n, a[n]] = max_k x[n, k],
                           r[n] = sum_{k != a[n]} exp(x[n, k] - m[n])
    softmax(x)           = exp(log_softmax(x))
    cross_entropy(x, t)  = -(1/N) * sum_n log_softmax(x)[n, t[n]]

    softmax backward:       dL/dx = y * (g - sum_k g[k] y[k])
    log_softmax backward:   dL/dx = g - softmax * sum_k g[k]
    cross_entropy backward: dL/dx[n, j] = g * (softmax[n, j] - [j == t[n]]) / N,
                            at j = t[n] as expm1(log_softmax[n, j])

(derivations, and why log1p and expm1, in ``kernels/reference/softmax.py``). Each
row is reduced by one thread in a fixed order, so results do not depend on the
thread count. The cross-entropy's mean over the batch is a NumPy sum of N numbers.
"""
import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=True)
def _log_softmax_rows(x, log_y):
    for n in prange(x.shape[0]):
        top = 0  # the first largest entry (NaN if x[n, 0] is; a NaN anywhere makes the row NaN below)
        for j in range(1, x.shape[1]):
            if x[n, j] > x[n, top]:
                top = j
        m = x[n, top]
        rest = x[n, top] - m  # 0 in x's dtype; NaN where m is +inf, which makes the row NaN, as PyTorch's
        for j in range(top):
            rest += np.exp(x[n, j] - m)
        for j in range(top + 1, x.shape[1]):
            rest += np.exp(x[n, j] - m)
        log_total = np.log1p(rest)
        for j in range(x.shape[1]):
            log_y[n, j] = (x[n, j] - m) - log_total


@njit(parallel=True, cache=True)
def _log_softmax_backward_rows(log_y, grad_y, grad_x):
    for n in prange(log_y.shape[0]):
        total = grad_y[n, 0]
        for j in range(1, log_y.shape[1]):
            total += grad_y[n, j]
        for j in range(log_y.shape[1]):
            grad_x[n, j] = grad_y[n, j] - np.exp(log_y[n, j]) * total


@njit(parallel=True, cache=True)
def _softmax_backward_rows(y, grad_y, grad_x):
    for n in prange(y.shape[0]):
        total = grad_y[n, 0] * y[n, 0]
        for j in range(1, y.shape[1]):
            total += grad_y[n, j] * y[n, j]
        for j in range(y.shape[1]):
            grad_x[n, j] = y[n, j] * (grad_y[n, j] - total)


@njit(parallel=True, cache=True)
def _cross_entropy_backward_rows(log_y, labels, scale, grad_x):
    for n in prange(log_y.shape[0]):
        for j in range(log_y.shape[1]):
            grad_x[n, j] = np.exp(log_y[n, j]) * scale
        grad_x[n, labels[n]] = np.expm1(log_y[n, labels[n]]) * scale


def log_softmax_forward(x):
    log_y = np.empty_like(x)
    _log_softmax_rows(x, log_y)
    return log_y


def log_softmax_backward(log_y, grad_y):
    grad_x = np.empty_like(log_y)
    _log_softmax_backward_rows(log_y, grad_y, grad_x)
    return grad_x


def softmax_forward(x):
    return np.exp(log_softmax_forward(x))


def softmax_backward(y, grad_y):
    grad_x = np.empty_like(y)
    _softmax_backward_rows(y, grad_y, grad_x)
    return grad_x


def cross_entropy_forward(x, labels):
    log_y = log_softmax_forward(x)
    picked = log_y[np.arange(len(labels)), labels]
    return np.asarray(-picked.sum() / x.dtype.type(len(labels)), dtype=x.dtype), log_y


def cross_entropy_backward(log_y, labels, grad_loss):
    grad_x = np.empty_like(log_y)
    scale = log_y.dtype.type(float(grad_loss) / len(labels))
    _cross_entropy_backward_rows(log_y, labels, scale, grad_x)
    return grad_x
