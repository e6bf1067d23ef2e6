"""Batch normalisation over (N, C) or (N, C, H, W) input, per channel c.

Let M be the number of values per channel (N, or N*H*W) and, in training,

    mean[c] = (1/M) sum x[:, c],   var[c] = (1/M) sum (x[:, c] - mean[c])^2   (biased)
    xhat    = (x - mean[c]) / sqrt(var[c] + eps)
    y       = weight[c] * xhat + bias[c]

In eval mode mean and var are the running statistics instead. Training also
updates them (done by the op, not the kernel), as PyTorch does:

    running_mean = (1 - momentum) * running_mean + momentum * mean
    running_var  = (1 - momentum) * running_var  + momentum * var * M / (M - 1)   (unbiased)

Backward, with invstd = 1 / sqrt(var + eps) and sums over the M values of channel c:

    dL/dbias[c]   = sum grad_y
    dL/dweight[c] = sum grad_y * xhat
    training: dL/dx = weight * invstd / M * (M * grad_y - dL/dbias - xhat * dL/dweight)
    eval:     dL/dx = weight * invstd * grad_y        (mean and var are constants)

The training formula is longer because mean and var depend on every x of the channel.
"""
import numpy as np


def _as_ncl(x):
    return x.reshape(x.shape[0], x.shape[1], -1)


def batch_norm_train_forward(x, weight, bias, eps):
    x3 = _as_ncl(x)
    mean = x3.mean(axis=(0, 2))
    var = x3.var(axis=(0, 2))
    y = batch_norm_eval_forward(x, mean, var, weight, bias, eps)
    return y, mean.astype(x.dtype), var.astype(x.dtype)


def batch_norm_eval_forward(x, mean, var, weight, bias, eps):
    invstd = 1 / np.sqrt(var + eps)
    y = (_as_ncl(x) - mean[None, :, None]) * (weight * invstd)[None, :, None] + bias[None, :, None]
    return y.reshape(x.shape).astype(x.dtype)


def batch_norm_backward(x, mean, var, weight, grad_y, eps, training):
    x3, g3 = _as_ncl(x), _as_ncl(grad_y)
    m = x3.shape[0] * x3.shape[2]
    invstd = 1 / np.sqrt(var + eps)
    xhat = (x3 - mean[None, :, None]) * invstd[None, :, None]
    grad_bias = g3.sum(axis=(0, 2))
    grad_weight = (g3 * xhat).sum(axis=(0, 2))
    if training:
        grad_x = (weight * invstd / m)[None, :, None] * (
            m * g3 - grad_bias[None, :, None] - xhat * grad_weight[None, :, None]
        )
    else:
        grad_x = (weight * invstd)[None, :, None] * g3
    return grad_x.reshape(x.shape).astype(x.dtype), grad_weight.astype(x.dtype), grad_bias.astype(x.dtype)


def update_running_stats(running_mean, running_var, mean, var, momentum, count):
    """running = (1 - momentum) * running + momentum * batch (the variance unbiased: * M / (M - 1))."""
    running_mean *= 1 - momentum
    running_mean += momentum * mean
    running_var *= 1 - momentum
    running_var += (momentum * count / (count - 1)) * var
