"""Softmax, log-softmax and softmax cross-entropy on the GPU, one thread per row.

Same formulas as ``kernels/cpu/softmax.py`` (the row maximum subtracted before
exp, log1p of the other entries' sum, expm1 for the label's gradient). A row of
AlexNet's logits is 1000 numbers and a batch has tens of rows, so one thread per
row is a few microseconds; the loss's mean over the batch is one thread adding N
numbers in order (the same order as the CPU).
"""
import math

from numba import cuda

from .launch import empty, empty_like, flat, grid_1d, jit


@jit
def _log_softmax_rows(x, log_y):
    for n in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        top = 0
        for j in range(1, x.shape[1]):
            if x[n, j] > x[n, top]:
                top = j
        m = x[n, top]
        rest = x[n, top] - m  # 0 in x's dtype; NaN where m is +inf
        for j in range(top):
            rest += math.exp(x[n, j] - m)
        for j in range(top + 1, x.shape[1]):
            rest += math.exp(x[n, j] - m)
        log_total = math.log1p(rest)
        for j in range(x.shape[1]):
            log_y[n, j] = (x[n, j] - m) - log_total


@jit
def _exp(a, out):
    for i in range(cuda.grid(1), a.size, cuda.gridsize(1)):
        out[i] = math.exp(a[i])


@jit
def _log_softmax_backward_rows(log_y, grad_y, grad_x):
    for n in range(cuda.grid(1), log_y.shape[0], cuda.gridsize(1)):
        total = grad_y[n, 0]
        for j in range(1, log_y.shape[1]):
            total += grad_y[n, j]
        for j in range(log_y.shape[1]):
            grad_x[n, j] = grad_y[n, j] - math.exp(log_y[n, j]) * total


@jit
def _softmax_backward_rows(y, grad_y, grad_x):
    for n in range(cuda.grid(1), y.shape[0], cuda.gridsize(1)):
        total = grad_y[n, 0] * y[n, 0]
        for j in range(1, y.shape[1]):
            total += grad_y[n, j] * y[n, j]
        for j in range(y.shape[1]):
            grad_x[n, j] = y[n, j] * (grad_y[n, j] - total)


@jit
def _mean_negative_picked(log_y, labels, rows, loss):
    """rows: N in log_y's dtype (an int would make the division float64, as Numba types int / float32)."""
    if cuda.grid(1) == 0:
        total = log_y[0, labels[0]]
        for n in range(1, log_y.shape[0]):
            total += log_y[n, labels[n]]
        loss[0] = -total / rows


@jit
def _cross_entropy_backward_rows(log_y, labels, grad_loss, rows, grad_x):
    for n in range(cuda.grid(1), log_y.shape[0], cuda.gridsize(1)):
        scale = grad_loss[0] / rows  # (the CPU's scale: a float32 division, then a float32 exp below)
        for j in range(log_y.shape[1]):
            grad_x[n, j] = math.exp(log_y[n, j]) * scale
        grad_x[n, labels[n]] = math.expm1(log_y[n, labels[n]]) * scale


def _rows(kernel, *arrays):
    blocks, threads = grid_1d(arrays[0].shape[0])
    kernel[blocks, threads](*arrays)


def log_softmax_forward(x):
    log_y = empty_like(x)
    _rows(_log_softmax_rows, x, log_y)
    return log_y


def log_softmax_backward(log_y, grad_y):
    grad_x = empty_like(log_y)
    _rows(_log_softmax_backward_rows, log_y, grad_y, grad_x)
    return grad_x


def softmax_forward(x):
    y = log_softmax_forward(x)
    blocks, threads = grid_1d(y.size)
    _exp[blocks, threads](flat(y), flat(y))
    return y


def softmax_backward(y, grad_y):
    grad_x = empty_like(y)
    _rows(_softmax_backward_rows, y, grad_y, grad_x)
    return grad_x


def cross_entropy_forward(x, labels):
    """labels: (N,) int64 device array. Returns the loss as a 0-d device array, and log_y."""
    log_y = log_softmax_forward(x)
    loss = empty(1, x.dtype)
    _mean_negative_picked[1, 1](log_y, labels, x.dtype.type(x.shape[0]), loss)
    return loss.reshape(()), log_y


def cross_entropy_backward(log_y, labels, grad_loss):
    """grad_loss: a 0-d device array (d L_total / d loss)."""
    grad_x = empty_like(log_y)
    _rows(_cross_entropy_backward_rows, log_y, labels, grad_loss.reshape(1), log_y.dtype.type(log_y.shape[0]), grad_x)
    return grad_x


