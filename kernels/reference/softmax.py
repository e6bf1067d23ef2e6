"""Softmax, log-softmax and softmax cross-entropy over the last axis of (N, K) logits.

    log_softmax(x)[n, j] = x[n, j] - m[n] - log(sum_k exp(x[n, k] - m[n])),   m[n] = max_k x[n, k]
    softmax(x)           = exp(log_softmax(x))
    cross_entropy(x, t)  = -(1/N) * sum_n log_softmax(x)[n, t[n]]

Subtracting the row maximum m changes nothing mathematically and keeps exp from
overflowing. Then one term of the sum is exp(0) = 1, and the sum is 1 + r, r the
other terms' sum: log1p(r) keeps r's digits where 1 + r would round them away (a
confident prediction: with r = 1e-4, float32's 1 + r is off by up to 6e-8, that is
6e-4 of r, and so would be the loss, about r). For the same reason the
cross-entropy's gradient at the label, y - 1, is computed as expm1(log y).

Backward, with y = softmax(x) and g = grad of the output:

    softmax:       dL/dx[n, j] = y[n, j] * (g[n, j] - sum_k g[n, k] * y[n, k])
    log_softmax:   dL/dx[n, j] = g[n, j] - y[n, j] * sum_k g[n, k]
    cross_entropy: dL/dx[n, j] = g * (y[n, j] - [j == t[n]]) / N         (g a scalar)
"""
import numpy as np


def log_softmax_forward(x):
    shifted = x - x.max(axis=1, keepdims=True)
    rows, top = np.arange(len(x)), shifted.argmax(axis=1)  # the first largest entry: shifted there is 0
    terms = np.exp(shifted)
    terms[rows, top] = shifted[rows, top]  # its exp(0) = 1 goes into log1p (0 here; NaN where the row has +inf)
    return shifted - np.log1p(terms.sum(axis=1, keepdims=True))


def log_softmax_backward(log_y, grad_y):
    return grad_y - np.exp(log_y) * grad_y.sum(axis=1, keepdims=True)


def softmax_forward(x):
    return np.exp(log_softmax_forward(x))


def softmax_backward(y, grad_y):
    return y * (grad_y - (grad_y * y).sum(axis=1, keepdims=True))


def cross_entropy_forward(x, labels):
    log_y = log_softmax_forward(x)
    loss = -log_y[np.arange(len(labels)), labels].mean()
    return np.asarray(loss, dtype=x.dtype), log_y


def cross_entropy_backward(log_y, labels, grad_loss):
    rows = np.arange(len(labels))
    grad_x = np.exp(log_y)
    grad_x[rows, labels] = np.expm1(log_y[rows, labels])  # y - 1, without cancelling where y is near 1
    return (grad_x * (grad_loss / len(labels))).astype(log_y.dtype)
