"""Batch normalisation on the GPU, input viewed as (N, C, L) with L = H*W (or 1).

Same formulas as ``kernels/cpu/batchnorm.py``:

    mean[c], var[c] over the M = N*L values of channel c (two passes, float64 partial sums)
    y = weight[c] * (x - mean[c]) / sqrt(var[c] + eps) + bias[c]
    dL/dbias[c] = sum grad_y,   dL/dweight[c] = sum grad_y * xhat
    dL/dx = weight * invstd / M * (M * grad_y - dL/dbias - xhat * dL/dweight)   (training)
    dL/dx = weight * invstd * grad_y                                           (eval)

The per-channel sums take one block per channel and a shared-memory tree
(``reduce.block_sum``), in a fixed order, each thread walking its values as
``reduce.channel_walk`` does; the element-wise passes one thread per element, on
flat arrays with 32-bit unsigned indices (``pool.py``'s docstring says why). The
running statistics are updated on the device too.
"""
import math

from numba import cuda, float64, uint32

from .launch import empty, empty_like, flat, grid_1d, image_launches, jit, split_index
from .reduce import REDUCE_THREADS, at, block_sum, channel_walk, sizes, walk_on


@jit
def _stats(x, n_batch, channels, length, mean, var):
    """x flat (N*C*L), sizes uint32; one block per channel."""
    c = uint32(cuda.blockIdx.x)
    count = n_batch * length
    partial = cuda.shared.array(REDUCE_THREADS, float64)
    acc = 0.0
    n, position, n_step, position_step = channel_walk(length)
    while n < n_batch:
        acc += x[at(n, c, position, channels, length)]
        n, position = walk_on(n, position, n_step, position_step, length)
    m = block_sum(partial, acc) / count
    acc = 0.0
    n, position, n_step, position_step = channel_walk(length)
    while n < n_batch:
        d = x[at(n, c, position, channels, length)] - m
        acc += d * d
        n, position = walk_on(n, position, n_step, position_step, length)
    v = block_sum(partial, acc) / count
    if cuda.threadIdx.x == 0:
        mean[c] = m
        var[c] = v


@jit
def _grad_sums(x, mean, invstd, grad_y, n_batch, channels, length, grad_weight, grad_bias):
    """x and grad_y flat (N*C*L), sizes uint32; one block per channel."""
    c = uint32(cuda.blockIdx.x)
    partial = cuda.shared.array(REDUCE_THREADS, float64)
    sum_g = 0.0
    sum_g_xhat = 0.0
    n, position, n_step, position_step = channel_walk(length)
    while n < n_batch:
        e = at(n, c, position, channels, length)
        g = grad_y[e]
        sum_g += g
        sum_g_xhat += g * ((x[e] - mean[c]) * invstd[c])
        n, position = walk_on(n, position, n_step, position_step, length)
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
def _normalise(x, mean, invstd, weight, bias, channels, length, y):
    """x and y flat (images*C*L); channels, length uint32."""
    e, stride = uint32(cuda.grid(1)), uint32(cuda.gridsize(1))
    while e < x.size:
        c = split_index(e, channels, length)[1]
        y[e] = (x[e] - mean[c]) * (weight[c] * invstd[c]) + bias[c]
        e = uint32(e + stride)


@jit
def _train_grad_x(x, mean, invstd, weight, grad_y, grad_weight, grad_bias, channels, length, count, grad_x):
    """Flat arrays (images*C*L); channels, length uint32; count = N*L of the whole batch (an int64, as
    the CPU twin's formula has it)."""
    e, stride = uint32(cuda.grid(1)), uint32(cuda.gridsize(1))
    while e < x.size:
        c = split_index(e, channels, length)[1]
        xhat = (x[e] - mean[c]) * invstd[c]
        grad_x[e] = weight[c] * invstd[c] / count * (count * grad_y[e] - grad_bias[c] - xhat * grad_weight[c])
        e = uint32(e + stride)


@jit
def _eval_grad_x(grad_y, invstd, weight, channels, length, grad_x):
    """Flat arrays (images*C*L); channels, length uint32."""
    e, stride = uint32(cuda.grid(1)), uint32(cuda.gridsize(1))
    while e < grad_y.size:
        c = split_index(e, channels, length)[1]
        grad_x[e] = grad_y[e] * weight[c] * invstd[c]
        e = uint32(e + stride)


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
    _stats[c, REDUCE_THREADS](flat(x), *sizes(_ncl(x)), mean, var)
    return batch_norm_eval_forward(x, mean, var, weight, bias, eps), mean, var


def batch_norm_eval_forward(x, mean, var, weight, bias, eps):
    y = empty_like(x)
    invstd = _invstd_of(var, eps)
    for lo, hi, blocks, threads, channels, length in image_launches(x, "batch_norm"):
        _normalise[blocks, threads](flat(x[lo:hi]), mean, invstd, weight, bias, channels, length, flat(y[lo:hi]))
    return y


def batch_norm_backward(x, mean, var, weight, grad_y, eps, training):
    c = x.shape[1]
    invstd = _invstd_of(var, eps)
    grad_weight, grad_bias = empty(c, x.dtype), empty(c, x.dtype)
    _grad_sums[c, REDUCE_THREADS](flat(x), mean, invstd, flat(grad_y), *sizes(_ncl(x)), grad_weight, grad_bias)
    grad_x = empty_like(x)
    count = x.size // c  # N*L, as the CPU twin counts
    for lo, hi, blocks, threads, channels, length in image_launches(x, "batch_norm"):
        if training:
            _train_grad_x[blocks, threads](flat(x[lo:hi]), mean, invstd, weight, flat(grad_y[lo:hi]), grad_weight,
                                           grad_bias, channels, length, count, flat(grad_x[lo:hi]))
        else:
            _eval_grad_x[blocks, threads](flat(grad_y[lo:hi]), invstd, weight, channels, length, flat(grad_x[lo:hi]))
    return grad_x, grad_weight, grad_bias


def update_running_stats(running_mean, running_var, mean, var, momentum, count):
    """running = (1 - momentum) * running + momentum * batch (the variance unbiased: * M / (M - 1))."""
    t = mean.dtype.type
    blocks, threads = grid_1d(mean.size)
    _update_running[blocks, threads](running_mean, running_var, mean, var, t(1 - momentum), t(momentum),
                                     t(momentum * count / (count - 1)))
