"""Element-wise activations on the GPU: one grid-stride loop over the flat array.

    relu:    y = max(x, 0)              dL/dx = grad_y * [x > 0] = grad_y * [y > 0]
    sigmoid: y = 1 / (1 + exp(-x))      dL/dx = grad_y * y * (1 - y)
    tanh:    y = tanh(x)                dL/dx = grad_y * (1 - y^2) = grad_y * (1 - y) * (1 + y)

Same formulas and the same overflow-safe sigmoid as ``kernels/cpu/activation.py``.
"""
import math

from numba import cuda

from .launch import empty_like, flat, grid_1d, jit


@cuda.jit(device=True, inline=True)
def relu(v):
    """max(v, 0), a NaN staying NaN (see kernels/reference/activation.py): the one formula of the
    ReLU kernel and of the products' fused epilogues (``conv.py``, ``linear.py``), so that a fused
    and a separate ReLU give the same bits."""
    return 0 if v <= 0 else v


@jit
def _relu_forward(x, y):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        y[i] = relu(x[i])


@jit
def _relu_backward(y, grad_y, grad_x):
    for i in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        if y[i] > 0:  # (two stores, not ``grad_y[i] if ... else 0``: that unifies float32 with an int as float64)
            grad_x[i] = grad_y[i]
        else:
            grad_x[i] = 0


@jit
def _sigmoid_forward(x, one, y):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        v = x[i]
        if v >= 0:
            y[i] = one / (one + math.exp(-v))
        else:
            e = math.exp(v)
            y[i] = e / (one + e)


@jit
def _sigmoid_backward(y, grad_y, one, grad_x):
    for i in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        grad_x[i] = grad_y[i] * y[i] * (one - y[i])


@jit
def _tanh_forward(x, y):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        y[i] = math.tanh(x[i])


@jit
def _tanh_backward(y, grad_y, one, grad_x):
    for i in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        grad_x[i] = grad_y[i] * ((one - y[i]) * (one + y[i]))


def _map(kernel, first, *rest):
    out = empty_like(first)
    blocks, threads = grid_1d(first.size)
    kernel[blocks, threads](flat(first), *[flat(r) if hasattr(r, "copy_to_host") else r for r in rest], flat(out))
    return out


def relu_forward(x):
    return _map(_relu_forward, x)


def relu_backward(y, grad_y):
    return _map(_relu_backward, y, grad_y)


def sigmoid_forward(x):
    return _map(_sigmoid_forward, x, x.dtype.type(1))


def sigmoid_backward(y, grad_y):
    return _map(_sigmoid_backward, y, grad_y, y.dtype.type(1))


def tanh_forward(x):
    return _map(_tanh_forward, x)


def tanh_backward(y, grad_y):
    return _map(_tanh_backward, y, grad_y, y.dtype.type(1))
