"""Batch normalisation on the GPU, input viewed as (N, C, L) with L = H*W (or 1).

Same formulas as ``kernels/cpu/batchnorm.py``:

    mean[c], var[c] over the M = N*L values of channel c (two passes, float64 partial sums)
    y = weight[c] * (x - mean[c]) / sqrt(var[c] + eps) + bias[c]
    dL/dbias[c] = sum grad_y,   dL/dweight[c] = sum grad_y * xhat
    dL/dx = weight * invstd / M * (M * grad_y - dL/dbias - xhat * dL/dweight)   (training)
    dL/dx = weight * invstd * grad_y                                           (eval)

The per-channel sums take one block per channel and a shared-memory tree
(``reduce.block_sum``), in a fixed order; the element-wise passes one thread per
element. The running statistics are updated on the device too.
"""
import math

from numba import cuda, float64

from .launch import empty, empty_like, grid_1d, jit
from .reduce import REDUCE_THREADS, block_sum


@jit
def _stats(x, mean, var):
    c = cuda.blockIdx.x
    n_batch, length = x.shape[0], x.shape[2]
    count = n_batch * length
    partial = cuda.shared.array(REDUCE_THREADS, float64)
    acc = 0.0
    for e in range(cuda.threadIdx.x, count, REDUCE_THREADS):
        acc += x[e // length, c, e % length]
    m = block_sum(partial, acc) / count
    acc = 0.0
    for e in range(cuda.threadIdx.x, count, REDUCE_THREADS):
        d = x[e // length, c, e % length] - m
        acc += d * d
    v = block_sum(partial, acc) / count
    if cuda.threadIdx.x == 0:
        mean[c] = m
        var[c] = v


@jit
def _grad_sums(x, mean, invstd, grad_y, grad_weight, grad_bias):
    c = cuda.blockIdx.x
    n_batch, length = x.shape[0], x.shape[2]
    partial = cuda.shared.array(REDUCE_THREADS, float64)
    sum_g = 0.0
    sum_g_xhat = 0.0
    for e in range(cuda.threadIdx.x, n_batch * length, REDUCE_THREADS):
        g = grad_y[e // length, c, e % length]
        sum_g += g
        sum_g_xhat += g * ((x[e // length, c, e % length] - mean[c]) * invstd[c])
    total_g = block_sum(partial, sum_g)
    total_g_xhat = block_sum(partial, sum_g_xhat)
    if cuda.threadIdx.x == 0:
        grad_bias[c] = total_g
        grad_weight[c] = total_g_xhat


@jit
def _invstd(var, eps, out):
    for c in range(cuda.grid(1), var.size, cuda.gridsize(1)):
        out[c] = 1 / math.sqrt(var[c] + eps)


@jit
def _normalise(x, mean, invstd, weight, bias, y):
    channels, length = x.shape[1], x.shape[2]
    for e in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        c = (e // length) % channels
        n, i = e // (length * channels), e % length
        y[n, c, i] = (x[n, c, i] - mean[c]) * (weight[c] * invstd[c]) + bias[c]


@jit
def _train_grad_x(x, mean, invstd, weight, grad_y, grad_weight, grad_bias, grad_x):
    n_batch, channels, length = x.shape
    count = n_batch * length
    for e in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        c = (e // length) % channels
        n, i = e // (length * channels), e % length
        xhat = (x[n, c, i] - mean[c]) * invstd[c]
        grad_x[n, c, i] = weight[c] * invstd[c] / count * (count * grad_y[n, c, i] - grad_bias[c] - xhat * grad_weight[c])


@jit
def _eval_grad_x(grad_y, invstd, weight, grad_x):
    channels, length = grad_y.shape[1], grad_y.shape[2]
    for e in range(cuda.grid(1), grad_y.size, cuda.gridsize(1)):
        c = (e // length) % channels
        n, i = e // (length * channels), e % length
        grad_x[n, c, i] = grad_y[n, c, i] * weight[c] * invstd[c]


@jit
def _update_running(running_mean, running_var, mean, var, keep, momentum, momentum_unbiased):
    """The reference's float32 update (its Python-number factors rounded to the dtype, as NumPy does):
    the factors come in the data's dtype, since ``1 - momentum`` in the kernel would be float64."""
    for c in range(cuda.grid(1), mean.size, cuda.gridsize(1)):
        running_mean[c] = keep * running_mean[c] + momentum * mean[c]
        running_var[c] = keep * running_var[c] + momentum_unbiased * var[c]


def _ncl(a):
    return a.reshape(a.shape[0], a.shape[1], a.size // (a.shape[0] * a.shape[1]))


def _invstd_of(var, eps):
    out = empty_like(var)
    blocks, threads = grid_1d(var.size)
    _invstd[blocks, threads](var, var.dtype.type(eps), out)
    return out


def batch_norm_train_forward(x, weight, bias, eps):
    c = x.shape[1]
    mean, var = empty(c, x.dtype), empty(c, x.dtype)
    _stats[c, REDUCE_THREADS](_ncl(x), mean, var)
    return batch_norm_eval_forward(x, mean, var, weight, bias, eps), mean, var


def batch_norm_eval_forward(x, mean, var, weight, bias, eps):
    y = empty_like(x)
    blocks, threads = grid_1d(x.size)
    _normalise[blocks, threads](_ncl(x), mean, _invstd_of(var, eps), weight, bias, _ncl(y))
    return y


def batch_norm_backward(x, mean, var, weight, grad_y, eps, training):
    c = x.shape[1]
    invstd = _invstd_of(var, eps)
    grad_weight, grad_bias = empty(c, x.dtype), empty(c, x.dtype)
    _grad_sums[c, REDUCE_THREADS](_ncl(x), mean, invstd, _ncl(grad_y), grad_weight, grad_bias)
    grad_x = empty_like(x)
    blocks, threads = grid_1d(x.size)
    if training:
        _train_grad_x[blocks, threads](_ncl(x), mean, invstd, weight, _ncl(grad_y), grad_weight, grad_bias, _ncl(grad_x))
    else:
        _eval_grad_x[blocks, threads](_ncl(grad_y), invstd, weight, _ncl(grad_x))
    return grad_x, grad_weight, grad_bias


def update_running_stats(running_mean, running_var, mean, var, momentum, count):
    """running = (1 - momentum) * running + momentum * batch (the variance unbiased: * M / (M - 1))."""
    t = mean.dtype.type
    blocks, threads = grid_1d(mean.size)
    _update_running[blocks, threads](running_mean, running_var, mean, var, t(1 - momentum), t(momentum),
                                     t(momentum * count / (count - 1)))
