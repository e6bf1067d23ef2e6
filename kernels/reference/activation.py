"""Element-wise activations and their derivatives.

    relu:    y = max(x, 0)              dL/dx = grad_y * [x > 0] = grad_y * [y > 0]     (0 at the kink x == 0)
    sigmoid: y = 1 / (1 + exp(-x))      dL/dx = grad_y * y * (1 - y)
    tanh:    y = tanh(x)                dL/dx = grad_y * (1 - y^2) = grad_y * (1 - y) * (1 + y)

ReLU's derivative at exactly 0 is taken to be 0, as in PyTorch, and relu(NaN) is NaN (written as
"0 where x <= 0, else x", which a NaN fails), so NaN weights cannot hide behind a ReLU. All three
backwards take the saved output y, not x: y > 0 exactly where x > 0, so ReLU's input (a convolution's
output, 74 MB at AlexNet's conv1, batch 64) need not be kept until the backward. Tanh's is computed
as (1 - y)(1 + y): where |y| is near 1, 1 - y*y rounds y*y first and loses up to 1e-4 of the small
result in float32, while 1 - y and 1 + y are exact there.
"""
import numpy as np


def relu_forward(x):
    return np.where(x <= 0, 0, x).astype(x.dtype)  # NaN stays NaN, as in PyTorch (a NaN must not hide)


def relu_backward(y, grad_y):
    return np.where(y > 0, grad_y, 0).astype(grad_y.dtype)


def sigmoid_forward(x):
    return (1 / (1 + np.exp(-x))).astype(x.dtype)


def sigmoid_backward(y, grad_y):
    return grad_y * y * (1 - y)


def tanh_forward(x):
    return np.tanh(x)


def tanh_backward(y, grad_y):
    return grad_y * ((1 - y) * (1 + y))
