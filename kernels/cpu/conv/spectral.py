"""Stride-1 convolution with large kernels (AlexNet's conv2, 5x5) through the 2-D discrete Fourier transform.

The math. Take the transform over the padded size, S_h = H + top + bottom rows and
S_w = W + left + right columns, and only the frequencies v <= S_w // 2 along the rows (the
others are the complex conjugates of these, the input being real). For each channel plane,

    X[u, v, c, n]  = sum_{h, w} x[n, c, h, w] e^{-2 pi i (u (h + top) / S_h + v (w + left) / S_w)}
    Wc[u, v, k, c] = sum_{p, q} w[k, c, p, q] e^{+2 pi i (u p / S_h + v q / S_w)}    (w's transform, conjugated)
    Y[u, v, k, n]  = sum_c Wc[u, v, k, c] X[u, v, c, n]          one complex matrix product per (u, v, group)
    y[n, k, i, j]  = b[k] + 1 / (S_h S_w) sum_{u, v} Y[u, v, k, n] e^{+2 pi i (u i / S_h + v j / S_w)}

(the last sum over all v, the missing half being the conjugates). This is the correlation
theorem: the transform turns the sum over a window into a product per frequency. The
transform is circular, but output (i, j) reads padded rows i .. i + kh - 1 <= S_h - 1 and
columns likewise, so nothing wraps around. The backward takes the same three steps:

    G[u, v, k, n]   = grad_y's transform, conjugated (offsets 0)
    conj(dX)        = Wc^T G              dL/dx = the inverse of dX at rows top.., columns left..
    dW[u, v, k, c]  = sum_n G[u, v, k, n] X[u, v, c, n]      dL/dw = the inverse at rows 0 .. kh-1
    dL/db[k]        = sum_{n, i, j} grad_y[n, k, i, j]      in float64

Why: the products do 4 real multiply-adds per (frequency, k, c, n), against kh*kw per output
position in a direct convolution. At conv2 (27x27, 5x5, padding 2: 31 x 16 frequencies
against 27 x 27 x 25 taps) that is 8.6x fewer, and the products run as large batched
complex GEMMs in NumPy's BLAS. The float32 error is within 2e-7 of the reference's scale
(Winograd F(2x2, 3x3): 5-7e-7; an im2col sum: 3e-8); docs/benchmarks.md has its speed.

The transforms are matrix products too. The sizes are not powers of two and the planes
are small, so a dense DFT matrix per axis, applied by BLAS to all planes at once, does
what an FFT would without a library: along a row, the real plane times a (W, 2V) matrix
of cosines and sines; along a column, a complex (S_h, H) matrix. Numba kernels move the
data between those products: conv's transpositions (``channel_major.py``) put the planes in
(channel, image) order, the order of the products' columns, and back to NCHW with the bias
at the end (taking dL/db's sums on the way in, as the im2col path does); ``_interleave`` and
``_split`` turn the rows' real and imaginary halves into complex numbers with the plane
index last, and back.
"""
from functools import lru_cache

import numpy as np
from numba import njit, prange

from .. import blas, workspace
from .channel_major import channel_major_to_nchw, nchw_to_channel_major

MIN_KERNEL = 5  # 3x3 kernels go to Winograd (winograd.py); smaller ones are cheaper by im2col
MIN_CHANNELS = 16  # input channels per group: with fewer, the transforms cost more than the products save
# Each frequency's product has one column per image, and small products lose to im2col's large
# ones: at conv2's shape on 2 threads im2col took 0.55-0.85x the Fourier path's time at batches 4-7,
# the same at 8, more from 12 (docs/benchmarks.md). A constant, not images per thread: the choice
# must not depend on the thread count, or the bits would (docs/kernels.md).
MIN_BATCH = 8


def computes(w_shape, stride):
    """Whether this path can compute the convolution: stride 1, kernels of at least 5x5 (it
    computes any stride-1 convolution; smaller kernels are cheaper elsewhere)."""
    return tuple(stride) == (1, 1) and min(w_shape[2:]) >= MIN_KERNEL


def applies(w_shape, stride, batch):
    """Whether the default choice sends the convolution here: ``computes``, at least MIN_CHANNELS
    input channels per group and MIN_BATCH images."""
    return computes(w_shape, stride) and w_shape[1] >= MIN_CHANNELS and batch >= MIN_BATCH


@lru_cache(maxsize=64)
def _rows_matrix(size, offset, length, sign, dtype):
    """(length, 2V) real: column v of the first half is cos, of the second sign*sin, of
    2 pi v (l + offset) / size for l < length, v <= size // 2: a row's transform."""
    v = np.arange(size // 2 + 1)
    angle = 2 * np.pi * np.outer(np.arange(length) + offset, v) / size
    return np.ascontiguousarray(np.concatenate([np.cos(angle), sign * np.sin(angle)], axis=1), dtype=dtype)


@lru_cache(maxsize=64)
def _columns_matrix(size, offset, length, sign, dtype):
    """(size, length) complex: e^{sign 2 pi i u (l + offset) / size}, the columns' transform."""
    angle = 2 * np.pi * np.outer(np.arange(size), np.arange(length) + offset) / size
    return np.ascontiguousarray(np.exp(sign * 1j * angle), dtype=dtype)


@lru_cache(maxsize=64)
def _inverse_rows_matrix(size, offset, length, sign, scale, dtype):
    """(2V, length) real: y[l] = sum_v m_v (Re z_v cos - sign Im z_v sin)(2 pi v (l + offset) / size),
    times ``scale``, with m_v = 2 for the frequencies whose conjugate is not kept (1 for v = 0 and
    v = size / 2): the real inverse along a row of its half spectrum."""
    v = np.arange(size // 2 + 1)
    weight = np.where((v == 0) | (2 * v == size), 1.0, 2.0)[:, None] * scale
    angle = 2 * np.pi * np.outer(v, np.arange(length) + offset) / size
    return np.ascontiguousarray(np.concatenate([weight * np.cos(angle), -sign * weight * np.sin(angle)]), dtype=dtype)


@njit(parallel=True, cache=True)
def _interleave(rows, out):
    """out[h, v, a*B + b] = rows[a, b, h, v] + i rows[a, b, h, V + v]: the row transforms' real and
    imaginary halves as complex numbers, plane index last for the columns' product. Each task
    writes B consecutive values per v; the B rows it reads stay in cache from one v to the next."""
    n_a, n_b, height, two_v = rows.shape
    half = two_v // 2
    for ha in prange(height * n_a):
        h = ha // n_a
        a = ha % n_a
        for v in range(half):
            dst = out[h, v, a * n_b : (a + 1) * n_b]
            for b in range(n_b):
                dst[b] = complex(rows[a, b, h, v], rows[a, b, h, half + v])


PLANES_PER_LINE = 8  # complex64 values per 64-byte cache line


@njit(parallel=True, cache=True)
def _split(z, out):
    """out[a, b, r, v] = Re z[r, v, a*B + b], out[a, b, r, V + v] = Im: back from the columns'
    inverse to planes, real and imaginary halves side by side for the rows' inverse. A task
    takes 8 planes, whose values sit in one cache line of z for each (r, v), so each line is
    read once (one task per (r, a), as in ``_interleave``, was slower here)."""
    height, half, planes = z.shape
    n_a, n_b = out.shape[0], out.shape[1]
    blocks = (n_b + PLANES_PER_LINE - 1) // PLANES_PER_LINE
    for task in prange(n_a * blocks):
        a = task // blocks
        b0 = (task % blocks) * PLANES_PER_LINE
        count = min(n_b, b0 + PLANES_PER_LINE) - b0
        for r in range(height):
            for v in range(half):
                src = z[r, v, a * n_b + b0 : a * n_b + b0 + count]
                for j in range(count):
                    out[a, b0 + j, r, v] = src[j].real
                    out[a, b0 + j, r, half + v] = src[j].imag


def _complex(dtype):
    return np.complex64 if dtype == np.float32 else np.complex128


# Scratch buffers (workspace.scratch), shared by the stages of one call in turns that never
# overlap: about 250 MB at conv2's size (batch 64), where one buffer per stage held 500 MB and
# pushed the training step's peak memory past PyTorch's. X: the input's spectrum; W_OR_DW: the
# weights' (conjugated) or dL/dw's; Y_OR_G: the output's or grad_y's; FIRST and SECOND: the stages
# between (planes in channel-major order, row transforms, their interleaving, the inverse's steps),
# SECOND also dL/dx's spectrum, which the inverse reads before it writes SECOND.
X, W_OR_DW, Y_OR_G, FIRST, SECOND = "spectral.a", "spectral.b", "spectral.c", "spectral.first", "spectral.second"


class _KeptSpectrum:
    """A spectrum a forward leaves in its scratch buffer for the backward, which needs it again.

    The weights' spectrum (in W_OR_DW, for dL/dx) costs 6-7 ms to compute at conv2's shape, the
    input's (in X, for dL/dw) 14 ms at batch 64. The backward takes the one in the buffer when it
    was made from an array equal to the one it is given (compared against a copy of it, kept in
    scratch too: 1.2 MB of weights, 18 MB of input at batch 64, ~2 ms), in the same frame, and the
    scratch buffers were not forgotten since (``workspace.generation``): so the result is the same
    bits as computing it again. Else it computes it. Only this module writes these buffers."""

    def __init__(self, buffer):
        self.buffer = buffer
        self.made_for = None  # (frame, shape, dtype, generation) of the spectrum in the buffer; None: nothing valid

    def forget(self):
        """The buffer is about to take something else."""
        self.made_for = None

    def spectrum(self, planes, frame, compute):
        """The spectrum of ``planes`` (A, B, H, W) in ``frame`` (size_h, size_w, top, left, sign):
        the buffer's when it is theirs, else ``compute()``'s, which writes it into the buffer."""
        made_for = (frame, planes.shape, planes.dtype, workspace.generation())
        source = workspace.scratch(self.buffer + ".source", planes.shape, planes.dtype)
        if self.made_for == made_for and np.array_equal(source, planes):
            size_h, size_w = frame[:2]
            shape = (size_h, size_w // 2 + 1, planes.shape[0] * planes.shape[1])
            return workspace.scratch(self.buffer, shape, _complex(planes.dtype.type))
        self.made_for = None  # (until the new spectrum is whole)
        spectrum = compute()
        np.copyto(source, planes)
        self.made_for = made_for
        return spectrum


_kept_weights = _KeptSpectrum(W_OR_DW)
_kept_input = _KeptSpectrum(X)


def _weights_spectrum(w, size_h, size_w):
    """The conjugated spectrum of w's planes (k, c) at size_h x size_w, in W_OR_DW."""
    frame = (size_h, size_w, 0, 0, +1)
    return _kept_weights.spectrum(w, frame, lambda: _transform(w, *frame, W_OR_DW))


def _input_spectrum(x, size_h, size_w, top, left):
    """The spectrum of x's planes, channel-major (c, n), placed at (top, left), in X."""
    frame = (size_h, size_w, top, left, -1)

    def compute():
        sums = workspace.scratch("spectral.channel_sums", x.shape[1::-1], np.float64)  # unused here
        return _transform(_channel_major(x, sums), *frame, X)

    return _kept_input.spectrum(x, frame, compute)


def _channel_major(planes, channel_sums):
    """planes (N, C, H, W) as (C, N, H, W), in FIRST; channel_sums[c, n] = each plane's sum in float64."""
    n, c, height, width = planes.shape
    out = workspace.scratch(FIRST, (c, n, height, width), planes.dtype)
    nchw_to_channel_major(planes, out.reshape(c, n, height * width), channel_sums)
    return out


def _to_nchw(planes, bias, out):
    """out[n, k] = planes[k, n] + bias[k]."""
    k, n = planes.shape[:2]
    channel_major_to_nchw(planes.reshape(k, n, -1), bias, out)
    return out


def _transform(planes, size_h, size_w, top, left, sign, into):
    """The transform of each plane of ``planes`` (A, B, H, W), C-contiguous, placed at (top, left)
    in a size_h x size_w frame (sign -1; +1 gives the conjugate), in buffer ``into``:
    (size_h, V, A*B) complex, plane a*B + b last. Uses FIRST and SECOND (``planes`` may be
    FIRST: it is read before FIRST is written)."""
    n_a, n_b, height, width = planes.shape
    dtype = planes.dtype.type
    half = size_w // 2 + 1
    rows = workspace.scratch(SECOND, (n_a * n_b * height, 2 * half), dtype)
    blas.matmul(planes.reshape(-1, width), _rows_matrix(size_w, left, width, sign, dtype), rows)
    mixed = workspace.scratch(FIRST, (height, half, n_a * n_b), _complex(dtype))
    _interleave(rows.reshape(n_a, n_b, height, 2 * half), mixed)
    spectrum = workspace.scratch(into, (size_h, half, n_a * n_b), _complex(dtype))
    blas.matmul(_columns_matrix(size_h, top, height, sign, _complex(dtype)), mixed.reshape(height, -1),
                spectrum.reshape(size_h, -1))
    return spectrum


def _inverse(spectrum, size_h, size_w, top, left, sign, out):
    """The real inverse of each plane of ``spectrum`` (size_h, V, A*B) at rows top .., columns
    left .. (sign +1; sign -1 inverts the conjugate spectrum), into out[a, b], out (A, B, R, T)
    (``spectrum`` may be SECOND: read before SECOND is written; ``out`` may be FIRST: written
    after FIRST is read)."""
    size_u, half, planes = spectrum.shape
    height, width = out.shape[2:]
    dtype = out.dtype.type
    columns = workspace.scratch(FIRST, (height, half, planes), spectrum.dtype)
    blas.matmul(_columns_matrix(size_h, top, height, sign, spectrum.dtype.type).T, spectrum.reshape(size_u, -1),
                columns.reshape(height, -1))
    split = workspace.scratch(SECOND, out.shape[:3] + (2 * half,), dtype)
    _split(columns, split)
    scale = 1.0 / (size_h * size_w)
    blas.matmul(split.reshape(-1, 2 * half), _inverse_rows_matrix(size_w, left, width, sign, scale, dtype),
                out.reshape(-1, width))
    return out


def _sizes(x_shape, padding):
    (top, bottom), (left, right) = padding
    return x_shape[2] + top + bottom, x_shape[3] + left + right


def conv2d_forward(x, w, b, stride, padding, groups):
    """y = conv(x, w) + b; stride must be (1, 1), padding ((top, bottom), (left, right))."""
    n, c, height, width = x.shape
    k, c_g, kh, kw = w.shape
    (top, _), (left, _) = padding
    size_h, size_w = _sizes(x.shape, padding)
    u, half = size_h, size_w // 2 + 1
    x_spectrum = _input_spectrum(x, size_h, size_w, top, left)  # planes (c, n)
    w_spectrum = _weights_spectrum(w, size_h, size_w)  # planes (k, c), conjugated
    y_spectrum = workspace.scratch(Y_OR_G, (u, half, k * n), x_spectrum.dtype)
    blas.matmul(w_spectrum.reshape(u, half, groups, k // groups, c_g),
                x_spectrum.reshape(u, half, groups, c_g, n), y_spectrum.reshape(u, half, groups, k // groups, n))
    h_out, w_out = size_h - kh + 1, size_w - kw + 1
    y_kn = _inverse(y_spectrum, size_h, size_w, 0, 0, +1, workspace.scratch(FIRST, (k, n, h_out, w_out), x.dtype))
    bias = b if b is not None else np.zeros(k, dtype=x.dtype)
    return _to_nchw(y_kn, bias, workspace.empty((n, k, h_out, w_out), x.dtype))


def conv2d_backward(x, w, grad_y, stride, padding, groups, needs_input_grad=(True, True, True)):
    """(dL/dx, dL/dw, dL/db), None where ``needs_input_grad`` says so."""
    n, c, height, width = x.shape
    k, c_g, kh, kw = w.shape
    (top, _), (left, _) = padding
    size_h, size_w = _sizes(x.shape, padding)
    u, half = size_h, size_w // 2 + 1
    channel_sums = workspace.scratch("spectral.channel_sums", (k, n), np.float64)  # dL/db's terms
    g_spectrum = _transform(_channel_major(grad_y, channel_sums), size_h, size_w, 0, 0, +1, Y_OR_G)  # conjugated
    g_groups = g_spectrum.reshape(u, half, groups, k // groups, n)
    grad_x = grad_w = None
    grad_b = channel_sums.sum(axis=1).astype(x.dtype) if needs_input_grad[2] else None
    if needs_input_grad[0]:  # first: it reads the weights' spectrum the forward left in W_OR_DW
        w_spectrum = _weights_spectrum(w, size_h, size_w)
        x_grad_spectrum = workspace.scratch(SECOND, (u, half, c * n), g_spectrum.dtype)  # X keeps x's
        blas.matmul(w_spectrum.reshape(u, half, groups, k // groups, c_g).swapaxes(-1, -2), g_groups,
                    x_grad_spectrum.reshape(u, half, groups, c_g, n))
        grad_x_cn = _inverse(x_grad_spectrum, size_h, size_w, top, left, -1,
                             workspace.scratch(FIRST, (c, n, height, width), x.dtype))
        grad_x = _to_nchw(grad_x_cn, np.zeros(c, dtype=x.dtype), workspace.empty(x.shape, x.dtype))
    if needs_input_grad[1]:
        x_spectrum = _input_spectrum(x, size_h, size_w, top, left)  # the forward's, where it is x's
        _kept_weights.forget()  # W_OR_DW now takes dL/dw's spectrum
        w_grad_spectrum = workspace.scratch(W_OR_DW, (u, half, k * c_g), g_spectrum.dtype)
        blas.matmul(g_groups, x_spectrum.reshape(u, half, groups, c_g, n).swapaxes(-1, -2),
                    w_grad_spectrum.reshape(u, half, groups, k // groups, c_g))
        grad_w = _inverse(w_grad_spectrum, size_h, size_w, 0, 0, +1, workspace.empty(w.shape, w.dtype))
    return grad_x, grad_w, grad_b
