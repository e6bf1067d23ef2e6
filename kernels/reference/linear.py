"""Fully connected layer.

Shapes: x (N, I), w (O, I) as in PyTorch, b (O,) or None.

    y = x @ w^T + b
    dL/dx = grad_y @ w          (N, I)
    dL/dw = grad_y^T @ x        (O, I)
    dL/db = sum_n grad_y[n]     (O,)
"""
import numpy as np


def linear_forward(x, w, b):
    y = np.einsum("ni,oi->no", x, w)
    return y if b is None else y + b


def linear_backward(x, w, grad_y):
    return np.einsum("no,oi->ni", grad_y, w), np.einsum("no,ni->oi", grad_y, x), grad_y.sum(axis=0)
