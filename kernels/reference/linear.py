"""Fully connected layer.

Shapes: x (N, I), w (O, I) as in PyTorch, b (O,) or None.

    y = x @ w^T + b
    dL/dx = grad_y @ w          (N, I)
    dL/dw = grad_y^T @ x        (O, I)
    dL/db = sum_n grad_y[n]     (O,)
"""
import numpy as np

from . import activation


def linear_forward(x, w, b):
    y = np.einsum("ni,oi->no", x, w)
    return y if b is None else y + b


def linear_relu_forward(x, w, b):
    """A linear layer followed by a ReLU, as one op (the fast backends fuse the two)."""
    return activation.relu_forward(linear_forward(x, w, b))


def linear_backward(x, w, grad_y, needs_input_grad=(True, True, True)):
    """(dL/dx, dL/dw, dL/db); an entry is None where ``needs_input_grad`` says it is not needed."""
    grad_x = np.einsum("no,oi->ni", grad_y, w) if needs_input_grad[0] else None
    grad_w = np.einsum("no,ni->oi", grad_y, x) if needs_input_grad[1] else None
    grad_b = grad_y.sum(axis=0) if needs_input_grad[2] else None
    return grad_x, grad_w, grad_b
