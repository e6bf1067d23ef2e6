"""A textbook NumPy AlexNet: the baseline of ``benchmarks/alexnet_cpu.py``.

Written the way DeZero and CS231n teach it, as the fair "plain NumPy" point of comparison:
im2col by strided slices (one loop over the kernel's offsets), one ``@`` per convolution (per
group), col2im by the same slices; max pooling through im2col and ``argmax``; LRN, ReLU and
dropout as whole-array expressions; fully connected layers as ``@``; softmax cross-entropy; SGD
with momentum and weight decay. It takes its layers and weights from a minicnn network, so both
compute the same function; ``tests/apps/test_train.py`` checks its loss and gradients against minicnn's.
"""
from __future__ import annotations

import numpy as np

from minicnn import nn


def im2col(x, kh, kw, stride, pad):
    """(N, C, H, W) -> (N*OH*OW, C*kh*kw), rows ordered (n, i, j), columns (c, p, q)."""
    n, c, h, w = x.shape
    oh, ow = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
    img = np.pad(x, [(0, 0), (0, 0), (pad, pad), (pad, pad)])
    col = np.empty((n, c, kh, kw, oh, ow), dtype=x.dtype)
    for p in range(kh):
        for q in range(kw):
            col[:, :, p, q] = img[:, :, p:p + stride * oh:stride, q:q + stride * ow:stride]
    return col.transpose(0, 4, 5, 1, 2, 3).reshape(n * oh * ow, -1), oh, ow


def col2im(col, shape, kh, kw, stride, pad, oh, ow):
    n, c, h, w = shape
    col = col.reshape(n, oh, ow, c, kh, kw).transpose(0, 3, 4, 5, 1, 2)
    img = np.zeros((n, c, h + 2 * pad + stride - 1, w + 2 * pad + stride - 1), dtype=col.dtype)
    for p in range(kh):
        for q in range(kw):
            img[:, :, p:p + stride * oh:stride, q:q + stride * ow:stride] += col[:, :, p, q]
    return img[:, :, pad:h + pad, pad:w + pad]


class Conv:
    def __init__(self, layer):
        self.w, self.b = layer.weight.numpy(), layer.bias.numpy()
        self.stride, self.pad, self.groups = layer.stride[0], layer.padding[0], layer.groups  # square in AlexNet

    def params(self):
        return [self.w, self.b]

    def forward(self, x):
        k, _, kh, kw = self.w.shape
        self.x_shape, outs, self.cols = x.shape, [], []
        for g, xg in enumerate(np.split(x, self.groups, axis=1)):
            col, oh, ow = im2col(xg, kh, kw, self.stride, self.pad)
            wg = self.w[g * k // self.groups:(g + 1) * k // self.groups].reshape(k // self.groups, -1)
            outs.append(col @ wg.T)
            self.cols.append(col)
        self.oh, self.ow = oh, ow
        y = np.concatenate(outs, axis=1) + self.b
        return y.reshape(x.shape[0], oh, ow, k).transpose(0, 3, 1, 2)

    def backward(self, gy):
        k, _, kh, kw = self.w.shape
        gy = gy.transpose(0, 2, 3, 1).reshape(-1, k)
        self.gb = gy.sum(axis=0)
        gws, gxs, kg = [], [], k // self.groups
        n, c, h, w = self.x_shape
        for g, col in enumerate(self.cols):
            gyg, wg = gy[:, g * kg:(g + 1) * kg], self.w[g * kg:(g + 1) * kg].reshape(kg, -1)
            gws.append((gyg.T @ col).reshape(kg, *self.w.shape[1:]))
            gxs.append(col2im(gyg @ wg, (n, c // self.groups, h, w), kh, kw, self.stride, self.pad, self.oh, self.ow))
        self.gw = np.concatenate(gws)
        return np.concatenate(gxs, axis=1)

    def grads(self):
        return [self.gw, self.gb]


class MaxPool:
    def __init__(self, layer):
        self.k, self.s = layer.kernel_size[0], layer.stride[0]  # square windows in AlexNet

    def forward(self, x):
        n, c, h, w = x.shape
        col, self.oh, self.ow = im2col(x.reshape(n * c, 1, h, w), self.k, self.k, self.s, 0)
        self.shape, self.arg = x.shape, col.argmax(axis=1)
        return col[np.arange(len(col)), self.arg].reshape(n, c, self.oh, self.ow)

    def backward(self, gy):
        n, c, h, w = self.shape
        gcol = np.zeros((gy.size, self.k * self.k), dtype=gy.dtype)
        gcol[np.arange(gy.size), self.arg] = gy.ravel()
        return col2im(gcol, (n * c, 1, h, w), self.k, self.k, self.s, 0, self.oh, self.ow).reshape(self.shape)


class LRN:
    """b = a / (k + alpha * window sum of a^2)^beta, the window over 5 neighbouring channels."""

    def __init__(self, layer):
        self.n, self.alpha, self.beta, self.k = layer.size, layer.alpha, layer.beta, layer.k

    def window_sum(self, a):
        half = self.n // 2
        padded = np.pad(a, [(0, 0), (half, half), (0, 0), (0, 0)])
        return sum(padded[:, d:d + a.shape[1]] for d in range(self.n))

    def forward(self, x):
        self.x = x
        self.scale = self.k + self.alpha * self.window_sum(x * x)
        return x * self.scale ** -self.beta

    def backward(self, gy):
        t = gy * self.x * self.scale ** (-self.beta - 1)
        return gy * self.scale ** -self.beta - 2 * self.alpha * self.beta * self.x * self.window_sum(t)


class ReLU:
    def forward(self, x):
        self.mask = x > 0
        return x * self.mask

    def backward(self, gy):
        return gy * self.mask


class Dropout:
    def __init__(self, layer, rng):
        self.p, self.rng = layer.p, rng

    def forward(self, x):
        self.mask = (self.rng.random(x.shape, dtype=np.float32) >= self.p) / np.float32(1 - self.p)
        return x * self.mask

    def backward(self, gy):
        return gy * self.mask


class Flatten:
    def forward(self, x):
        self.shape = x.shape
        return x.reshape(len(x), -1)

    def backward(self, gy):
        return gy.reshape(self.shape)


class Linear:
    def __init__(self, layer):
        self.w, self.b = layer.weight.numpy(), layer.bias.numpy()

    def params(self):
        return [self.w, self.b]

    def forward(self, x):
        self.x = x
        return x @ self.w.T + self.b

    def backward(self, gy):
        self.gw, self.gb = gy.T @ self.x, gy.sum(axis=0)
        return gy @ self.w

    def grads(self):
        return [self.gw, self.gb]


class TextbookNet:
    """The layers of a minicnn network, with copies of its weights, in textbook NumPy."""

    def __init__(self, net, seed=0):
        rng = np.random.default_rng(seed)
        table = {nn.Conv2d: Conv, nn.MaxPool2d: MaxPool, nn.LocalResponseNorm: LRN, nn.Linear: Linear}
        self.layers = []
        for layer in net.children():
            if type(layer) in table:
                self.layers.append(table[type(layer)](layer))
            elif isinstance(layer, nn.Dropout):
                self.layers.append(Dropout(layer, rng))
            else:
                self.layers.append({nn.ReLU: ReLU, nn.Flatten: Flatten}[type(layer)]())
        for layer in self.layers:  # own copies: the minicnn network is left alone
            if hasattr(layer, "w"):
                layer.w, layer.b = layer.w.copy(), layer.b.copy()
        self.velocity = [np.zeros_like(p) for p in self.params()]

    def params(self):
        return [p for layer in self.layers if hasattr(layer, "params") for p in layer.params()]

    def grads(self):
        return [g for layer in self.layers if hasattr(layer, "grads") for g in layer.grads()]

    def loss_and_backward(self, x, labels):
        for layer in self.layers:
            x = layer.forward(x)
        shifted = x - x.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        n = len(labels)
        loss = -log_probs[np.arange(n), labels].mean()
        grad = np.exp(log_probs)
        grad[np.arange(n), labels] -= 1
        grad /= n
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
        return loss

    def sgd_step(self, lr=0.01, momentum=0.9, weight_decay=5e-4):
        for p, g, v in zip(self.params(), self.grads(), self.velocity):
            v *= momentum
            v += g + weight_decay * p
            p -= lr * v

    def train_step(self, x, labels):
        loss = self.loss_and_backward(x, labels)
        self.sgd_step()
        return loss
