"""Local response normalisation across channels, as the 2012 AlexNet paper writes it.

Shapes: x, y, scale all (N, C, H, W); size n is odd, half = n // 2.

    scale[c] = k + alpha * sum_{j = max(0, c - half)}^{min(C - 1, c + half)} x[j]^2
    y[c]     = x[c] * scale[c] ** -beta

(every (n, h, w) position on its own; the paper's k = 2, n = 5, alpha = 1e-4,
beta = 0.75). PyTorch's ``local_response_norm`` divides alpha by n: pass
``alpha * n`` to PyTorch to get this formula.

Backward. y[c] depends on x[i] directly (i == c) and through scale[c] for every c
whose window holds i, that is every c with |c - i| <= half (the window is symmetric):

    dL/dx[i] = grad_y[i] * scale[i] ** -beta
               - 2 * alpha * beta * x[i] * sum_{c: |c - i| <= half} grad_y[c] * y[c] / scale[c]

using d scale[c] / d x[i] = 2 * alpha * x[i] and y[c] / scale[c] = x[c] * scale[c] ** (-beta - 1).
"""
import numpy as np


def _window_sum(a, size):
    """out[:, c] = sum of a[:, j] for j in c's window (clipped at the channel ends)."""
    half = size // 2
    channels = a.shape[1]
    out = np.zeros_like(a)
    for c in range(channels):
        out[:, c] = a[:, max(0, c - half) : min(channels, c + half + 1)].sum(axis=1)
    return out


def lrn_forward(x, size, alpha, beta, k):
    """Returns (y, saved), saved = (y, scale) for the backward (every backend returns what
    its own backward takes: the CPU kernel saves nothing)."""
    scale = k + alpha * _window_sum(x * x, size)
    y = (x * scale ** -beta).astype(x.dtype)
    return y, (y, scale.astype(x.dtype))


def lrn_backward(x, saved, grad_y, size, alpha, beta, k):
    y, scale = saved
    ratio_sum = _window_sum(grad_y * y / scale, size)
    grad_x = grad_y * scale ** -beta - 2 * alpha * beta * x * ratio_sum
    return grad_x.astype(x.dtype)
