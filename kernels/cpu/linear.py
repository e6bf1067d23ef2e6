"""Fully connected layer on the CPU: three matrix products handed to NumPy's BLAS.

    y = x @ w^T + b,   dL/dx = grad_y @ w,   dL/dw = grad_y^T @ x,   dL/db = sum_n grad_y[n]

Shapes: x (N, I), w (O, I), b (O,). A matrix product is the one thing a Numba
loop should not do here: NumPy's SGEMM runs at ~150 GFLOP/s on the development
machine, a hand-written Numba GEMM at 35-50 (docs/numba.md), and ``np.dot`` inside
``@njit`` would start a second BLAS thread pool. The transposes are views: BLAS
reads them with its transpose flags, nothing is copied.
"""
import numpy as np

from . import activation, blas, workspace


def linear_forward(x, w, b):
    """y = x @ w^T + b, computed as (w @ x^T)^T: OpenBLAS ran that orientation faster at
    AlexNet's fc6 and fc7, and the transposition back, with the bias added on the way, moves
    only the small output."""
    y_t = blas.matmul(w, x.T, workspace.scratch("linear.y_t", (w.shape[0], x.shape[0]), x.dtype))
    y = workspace.empty((x.shape[0], w.shape[0]), x.dtype)
    if b is None:
        np.copyto(y, y_t.T)
    else:
        np.add(y_t.T, b, out=y)
    return y


def linear_relu_forward(x, w, b):
    """relu(linear_forward(...)), the ReLU written over the output in place."""
    return activation.relu_in_place(linear_forward(x, w, b))


def linear_backward(x, w, grad_y, needs_input_grad=(True, True, True)):
    grad_x = blas.matmul(grad_y, w, workspace.empty(x.shape, x.dtype)) if needs_input_grad[0] else None
    grad_w = blas.matmul(grad_y.T, x, workspace.empty(w.shape, w.dtype)) if needs_input_grad[1] else None
    grad_b = grad_y.sum(axis=0) if needs_input_grad[2] else None
    return grad_x, grad_w, grad_b
