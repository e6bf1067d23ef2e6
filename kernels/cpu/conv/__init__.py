"""2-D convolution on the CPU: three algorithms and the choice between them.

    y[n, k, i, j] = b[k] + sum_{c', p, q} w[k, c', p, q] * x_pad[n, g*C/G + c', i*sh + p, j*sw + q]

(x (N, C, H, W), w (K, C/G, kh, kw), group g = k // (K/G); ``kernels/reference/conv.py`` has
the same formula, and its gradients, as loops.) Each algorithm computes this same function and
its gradients with fewer or cheaper operations for some shapes:

    ``im2col.py``    any convolution: copy each window into a column, one matrix product per group
    ``winograd.py``  stride-1 3x3 (AlexNet's conv3-5): F(2x2, 3x3), 2.25x fewer multiply-adds
    ``spectral.py``  stride-1 kernels of 5x5 and more, at least MIN_CHANNELS input channels per
                     group and MIN_BATCH images (AlexNet's conv2): products of Fourier transforms

``algorithm`` picks one from the shapes alone: never from the thread count or the machine, so
that a seed gives the same bits on any number of threads (the algorithms round differently).
The environment variable ``MINICNN_CONV_ALGORITHM`` (read at import), or ``use_algorithm`` in
code, overrides the choice for benchmarks and tests: "im2col" sends every convolution to
im2col; "winograd" or "spectral" send the shapes that algorithm can compute to it (whatever
the batch), and the rest to im2col; "auto" is the default rule.
"""
import os

from ....errors import ArgumentError
from .. import activation
from . import im2col, spectral, winograd

ALGORITHMS = ("auto", "im2col", "winograd", "spectral")
ENVIRONMENT_VARIABLE = "MINICNN_CONV_ALGORITHM"


def _checked(name, where):
    if name not in ALGORITHMS:
        raise ArgumentError(f"{where} must be one of {', '.join(ALGORITHMS)}, got {name!r}")
    return name


_forced = _checked(os.environ.get(ENVIRONMENT_VARIABLE, "auto"), ENVIRONMENT_VARIABLE)


def algorithm(w_shape, stride, padding, batch):
    """The algorithm that computes a convolution of these shapes: "im2col", "winograd" or
    "spectral" (``minicnn bench`` labels each layer with it)."""
    if _forced == "im2col":
        return "im2col"
    if _forced in ("auto", "winograd") and winograd.applies(w_shape, stride, padding):
        return "winograd"
    if _forced == "spectral" and spectral.computes(w_shape, stride):
        return "spectral"
    if _forced == "auto" and spectral.applies(w_shape, stride, batch):
        return "spectral"
    return "im2col"


class use_algorithm:
    """Override the choice (``ALGORITHMS``), from now on, or inside a ``with`` block::

        with use_algorithm("im2col"):    # AlexNet's conv2-5 through im2col too
            ...
    """

    def __init__(self, name):
        global _forced
        self.previous = _forced
        _forced = _checked(name, "use_algorithm")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        global _forced
        _forced = self.previous
        return False


_MODULES = {"im2col": im2col, "winograd": winograd, "spectral": spectral}


def conv2d_forward(x, w, b, stride, padding, groups):
    """y (N, K, H_out, W_out) from x (N, C, H, W), w (K, C/G, kh, kw), b (K,) or None;
    stride (sh, sw), padding ((top, bottom), (left, right))."""
    chosen = _MODULES[algorithm(w.shape, stride, padding, x.shape[0])]
    return chosen.conv2d_forward(x, w, b, stride, padding, groups)


def conv2d_relu_forward(x, w, b, stride, padding, groups):
    """relu(conv2d_forward(...)), the ReLU written over the convolution's output in place."""
    return activation.relu_in_place(conv2d_forward(x, w, b, stride, padding, groups))


def conv2d_backward(x, w, grad_y, stride, padding, groups, needs_input_grad=(True, True, True)):
    """(dL/dx, dL/dw, dL/db); an entry is None where ``needs_input_grad`` says it is not needed."""
    chosen = _MODULES[algorithm(w.shape, stride, padding, x.shape[0])]
    return chosen.conv2d_backward(x, w, grad_y, stride, padding, groups, needs_input_grad)
