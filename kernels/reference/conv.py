"""2-D convolution (cross-correlation, as in every deep-learning library), NCHW.

Shapes: x (N, C, H, W), w (K, C/G, kh, kw), b (K,) or None, G = groups.
padding = ((top, bottom), (left, right)), stride = (sh, sw).

    H_out = (H + top + bottom - kh) // sh + 1        W_out likewise

Forward, for output channel k in group g = k // (K/G), its input channels
c = g*C/G ... (g+1)*C/G - 1 (c' = c - g*C/G counts within the group):

    y[n, k, i, j] = b[k] + sum_{c', p, q} w[k, c', p, q] * x_pad[n, g*C/G + c', i*sh + p, j*sw + q]

Backward, given grad_y = dL/dy:

    dL/db[k]          = sum_{n, i, j} grad_y[n, k, i, j]
    dL/dw[k, c', p, q] = sum_{n, i, j} grad_y[n, k, i, j] * x_pad[n, g*C/G + c', i*sh + p, j*sw + q]
    dL/dx_pad[n, c, h, w] = sum over every (k in c's group, i, j, p, q) with
                            i*sh + p = h and j*sw + q = w of grad_y[n, k, i, j] * w[k, c', p, q]

and dL/dx is dL/dx_pad with the padding cut off. This file loops over the
kernel offsets (p, q) and lets einsum do the sum over channels: each line below
is one term of the formulas above.
"""
import numpy as np

from . import activation


def output_size(size, kernel, stride, pad_before, pad_after):
    return (size + pad_before + pad_after - kernel) // stride + 1


def _window(xp, p, q, stride, h_out, w_out):
    """x_pad[:, :, i*sh + p, j*sw + q] for every output position (i, j)."""
    sh, sw = stride
    return xp[:, :, p : p + sh * (h_out - 1) + 1 : sh, q : q + sw * (w_out - 1) + 1 : sw]


def conv2d_forward(x, w, b, stride, padding, groups):
    (top, bottom), (left, right) = padding
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    n, c, h, wd = x.shape
    k, c_per_group, kh, kw = w.shape
    k_per_group = k // groups
    h_out = output_size(h, kh, stride[0], top, bottom)
    w_out = output_size(wd, kw, stride[1], left, right)
    y = np.zeros((n, k, h_out, w_out), dtype=x.dtype)
    for g in range(groups):
        xg = xp[:, g * c_per_group : (g + 1) * c_per_group]
        ks = slice(g * k_per_group, (g + 1) * k_per_group)
        for p in range(kh):
            for q in range(kw):
                y[:, ks] += np.einsum("nchw,kc->nkhw", _window(xg, p, q, stride, h_out, w_out), w[ks, :, p, q])
    if b is not None:
        y += b[None, :, None, None]
    return y


def conv2d_relu_forward(x, w, b, stride, padding, groups):
    """A convolution followed by a ReLU, as one op (the fast backends fuse the two)."""
    return activation.relu_forward(conv2d_forward(x, w, b, stride, padding, groups))


def conv2d_backward(x, w, grad_y, stride, padding, groups, needs_input_grad=(True, True, True)):
    """(dL/dx, dL/dw, dL/db); an entry is None where ``needs_input_grad`` says it is not needed."""
    (top, bottom), (left, right) = padding
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    k, c_per_group, kh, kw = w.shape
    k_per_group = k // groups
    h_out, w_out = grad_y.shape[2:]
    grad_xp = np.zeros_like(xp)
    grad_w = np.zeros_like(w)
    for g in range(groups):
        cs = slice(g * c_per_group, (g + 1) * c_per_group)
        ks = slice(g * k_per_group, (g + 1) * k_per_group)
        for p in range(kh):
            for q in range(kw):
                if needs_input_grad[1]:
                    patch = _window(xp[:, cs], p, q, stride, h_out, w_out)
                    grad_w[ks, :, p, q] += np.einsum("nkhw,nchw->kc", grad_y[:, ks], patch)
                if needs_input_grad[0]:
                    _window(grad_xp[:, cs], p, q, stride, h_out, w_out)[...] += np.einsum(
                        "nkhw,kc->nchw", grad_y[:, ks], w[ks, :, p, q]
                    )
    h, wd = x.shape[2:]
    grad_x = np.ascontiguousarray(grad_xp[:, :, top : top + h, left : left + wd])
    grad_b = grad_y.sum(axis=(0, 2, 3))
    return tuple(g if needed else None for g, needed in zip((grad_x, grad_w, grad_b), needs_input_grad))
