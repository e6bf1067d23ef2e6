"""Element-wise activations on the CPU (Numba, one parallel loop over the flat array).

    relu:    y = max(x, 0)              dL/dx = grad_y * [x > 0] = grad_y * [y > 0]
    sigmoid: y = 1 / (1 + exp(-x))      dL/dx = grad_y * y * (1 - y)
    tanh:    y = tanh(x)                dL/dx = grad_y * (1 - y^2) = grad_y * (1 - y) * (1 + y)

Sigmoid is evaluated as exp(x) / (1 + exp(x)) for x < 0 so exp never overflows.
The constant 1 is passed in the array's dtype: a literal 1 would make Numba
compute float32 inputs in float64.
"""
import numpy as np
from numba import njit, prange

from . import workspace


@njit(parallel=True, cache=True)
def _relu_forward(x, y):
    for i in prange(x.size):
        v = x[i]
        y[i] = 0 if v <= 0 else v  # NaN stays NaN (see kernels/reference/activation.py)


@njit(parallel=True, cache=True)
def _relu_backward(y, grad_y, grad_x):
    for i in prange(y.size):
        grad_x[i] = grad_y[i] if y[i] > 0 else 0


@njit(parallel=True, cache=True)
def _sigmoid_forward(x, one, y):
    for i in prange(x.size):
        v = x[i]
        if v >= 0:
            y[i] = one / (one + np.exp(-v))
        else:
            e = np.exp(v)
            y[i] = e / (one + e)


@njit(parallel=True, cache=True)
def _sigmoid_backward(y, grad_y, one, grad_x):
    for i in prange(y.size):
        grad_x[i] = grad_y[i] * y[i] * (one - y[i])


@njit(parallel=True, cache=True)
def _tanh_forward(x, y):
    for i in prange(x.size):
        y[i] = np.tanh(x[i])


@njit(parallel=True, cache=True)
def _tanh_backward(y, grad_y, one, grad_x):
    for i in prange(y.size):
        grad_x[i] = grad_y[i] * ((one - y[i]) * (one + y[i]))


def _flat_map(kernel, first, *rest):
    out = workspace.empty_like(first)
    kernel(first.reshape(-1), *[r.reshape(-1) if isinstance(r, np.ndarray) else r for r in rest], out.reshape(-1))
    return out


def relu_forward(x):
    return _flat_map(_relu_forward, x)


def relu_in_place(y):
    """y = relu(y), writing over y: the fused forwards of conv2d and linear with a ReLU
    (``conv2d_relu_forward``, ``linear_relu_forward``) need no second array. y must be
    C-contiguous (the layers' fresh outputs are): a flat view of anything else would be a copy,
    and the ReLU would be lost."""
    if not y.flags.c_contiguous:
        raise ValueError(f"relu_in_place: expected a C-contiguous array, got strides {y.strides}")
    flat = y.reshape(-1)
    _relu_forward(flat, flat)
    return y


def relu_backward(y, grad_y):
    return _flat_map(_relu_backward, y, grad_y)


def sigmoid_forward(x):
    return _flat_map(_sigmoid_forward, x, x.dtype.type(1))


def sigmoid_backward(y, grad_y):
    return _flat_map(_sigmoid_backward, y, grad_y, y.dtype.type(1))


def tanh_forward(x):
    return _flat_map(_tanh_forward, x)


def tanh_backward(y, grad_y):
    return _flat_map(_tanh_backward, y, grad_y, y.dtype.type(1))
