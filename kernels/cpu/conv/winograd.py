"""Winograd F(2x2, 3x3): stride-1 3x3 convolution with 2.25x fewer multiply-adds (AlexNet's conv3-5).

The math (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", 2015). The
2x2 outputs y[2a:2a+2, 2b:2b+2] of one channel's 3x3 correlation need only the 4x4 input
tile d = x_pad[2a:2a+4, 2b:2b+4], and with

    B^T = [[1, 0, -1,  0],      G = [[1,    0,   0],      A^T = [[1, 1,  1,  0],
           [0, 1,  1,  0],           [1/2,  1/2, 1/2],            [0, 1, -1, -1]]
           [0, -1, 1,  0],           [1/2, -1/2, 1/2],
           [0, 1,  0, -1]]           [0,    0,   1]]

    y[2a:2a+2, 2b:2b+2] = A^T [ (G w G^T) * (B^T d B) ] A      (* element by element, 4x4)

The sum over input channels commutes with A^T . A, so for each of the 16 entries e of a
transformed 4x4 tile the channel sum is one matrix product, per group:

    U[e, k, c] = (G w[k, c] G^T)[e]                 the kernels, (16, K, C/G)
    V[e, c, t] = (B^T d[c, t] B)[e]                 tile t of every image in the block, (16, C, T)
    M[e, k, t] = sum over c of U[e, k, c] V[e, c, t]   16 GEMMs (K/G, C/G) @ (C/G, T) per group
    y[k, tile t] = A^T M[:, k, t] A  (+ b[k]),      the part of the 2x2 block inside the output

A direct 3x3 convolution costs 9 multiply-adds per output and input channel; this costs 16
per 2x2 outputs: 2.25x fewer, less the tiles that hang over the edge (13x13 outputs take
7x7 tiles: 1.94x fewer). The transforms only add and halve: at AlexNet's sizes the float32
results differ from the im2col path's by about 1e-6 of the output's scale
(tests/kernels/test_conv.py compares both with the reference).

dL/dx of a stride-1 convolution is the stride-1 convolution of grad_y with each kernel
flipped and its two channel axes swapped (within each group), padded by 2 - pad on each
side: ``conv2d_input_grad`` sends it through the same forward.

dL/dw is the adjoint of the forward above with respect to U = G w G^T, summed over tiles:

    Z[e, k, t]   = (A g[k, t] A^T)[e]               g = the 2x2 tile of grad_y (0 past its edge)
    S[e, k, c]   = sum over t of Z[e, k, t] V[e, c, t]   16 GEMMs per group, the long sum inside
    dL/dw[k, c]  = G^T S[:, k, c] G                 (3x3)

with A = (A^T)^T (Lavin and Gray's F(3x3, 2x2) form: 2.25x fewer multiply-adds than im2col's
product). The transform of grad_y also sums it, in float64, for dL/db.

Layout and threads: the block's images are cut into tiles t = (n*tiles_h + a)*tiles_w + b.
The transforms run in parallel over planes, channel-major ((c, n) for the input, (k, n) for
the output and grad_y), so each iteration writes its own elements and consecutive ones fill
the same rows of V, M or Z left to right. The 16 matrices of each of U, V, M, Z and S sit a
cache line further apart than packed (``_entries`` says why). The products run in NumPy's SGEMM.
"""
import numpy as np
from numba import njit, prange

from .. import blas, workspace

BLOCK_BYTES = 64 << 20  # target size of one block's V and M (AlexNet batch 64: 27-33 images per block)
ENTRY_PAD = 16  # elements between one tile entry's matrix and the next in U, V, M, Z and S (see _entries)


def applies(w_shape, stride, padding):
    """Whether this path computes the convolution: 3x3 kernels, stride 1, each pad 0..2."""
    (top, bottom), (left, right) = padding
    return (tuple(w_shape[2:]) == (3, 3) and tuple(stride) == (1, 1)
            and all(0 <= pad <= 2 for pad in (top, bottom, left, right)))


@njit(cache=True, inline="always")
def _g(a, b, c, half):
    """G @ (a, b, c)."""
    return a, (a + b + c) * half, (a - b + c) * half, c


@njit(parallel=True, cache=True)
def _transform_kernels(w, u):
    """u[4*r + s, k, c] = (G w[k, c] G^T)[r, s]."""
    n_out, n_in = w.shape[0], w.shape[1]
    half = w.dtype.type(0.5)
    for kc in prange(n_out * n_in):
        k = kc // n_in
        c = kc % n_in
        g = w[k, c]
        col0 = _g(g[0, 0], g[1, 0], g[2, 0], half)  # the columns of G w
        col1 = _g(g[0, 1], g[1, 1], g[2, 1], half)
        col2 = _g(g[0, 2], g[1, 2], g[2, 2], half)
        for r in range(4):
            row = _g(col0[r], col1[r], col2[r], half)  # row r of (G w) G^T
            for s in range(4):
                u[4 * r + s, k, c] = row[s]


@njit(cache=True, inline="always")
def _bt(d0, d1, d2, d3):
    """B^T @ (d0, d1, d2, d3)."""
    return d0 - d2, d1 + d2, d2 - d1, d1 - d3


@njit(cache=True, inline="always")
def _store4(v, e, c, t, row):
    v[e, c, t] = row[0]
    v[e + 1, c, t] = row[1]
    v[e + 2, c, t] = row[2]
    v[e + 3, c, t] = row[3]


@njit(parallel=True, cache=True)
def _transform_input(x, top, left, tiles_h, tiles_w, v):
    """v[4*r + s, c, t] = (B^T d B)[r, s] for tile t = (n*tiles_h + a)*tiles_w + b of plane (n, c),
    d = x_pad[n, c, 2a:2a+4, 2b:2b+4] (zero outside x)."""
    n_block, channels, height, width = x.shape
    pad_h, pad_w = 2 * tiles_h + 2, 2 * tiles_w + 2
    for cn in prange(channels * n_block):
        c = cn // n_block  # channel-major, so that consecutive planes fill v[e, c] from left to right
        n = cn % n_block
        # The padded plane (1 KB at 13x13) per iteration, where it stays in L1 (one array for all
        # planes, zeroed on every call, was slower: docs/benchmarks.md).
        plane = np.zeros((pad_h, pad_w), dtype=x.dtype)  # the border stays zero: only the inside is written
        for h in range(height):
            for w in range(width):
                plane[h + top, w + left] = x[n, c, h, w]
        for a in range(tiles_h):
            base = (n * tiles_h + a) * tiles_w
            for b in range(tiles_w):
                i, j = 2 * a, 2 * b
                col0 = _bt(plane[i, j], plane[i + 1, j], plane[i + 2, j], plane[i + 3, j])  # columns of B^T d
                col1 = _bt(plane[i, j + 1], plane[i + 1, j + 1], plane[i + 2, j + 1], plane[i + 3, j + 1])
                col2 = _bt(plane[i, j + 2], plane[i + 1, j + 2], plane[i + 2, j + 2], plane[i + 3, j + 2])
                col3 = _bt(plane[i, j + 3], plane[i + 1, j + 3], plane[i + 2, j + 3], plane[i + 3, j + 3])
                t = base + b
                _store4(v, 0, c, t, _bt(col0[0], col1[0], col2[0], col3[0]))
                _store4(v, 4, c, t, _bt(col0[1], col1[1], col2[1], col3[1]))
                _store4(v, 8, c, t, _bt(col0[2], col1[2], col2[2], col3[2]))
                _store4(v, 12, c, t, _bt(col0[3], col1[3], col2[3], col3[3]))


@njit(cache=True, inline="always")
def _at(m0, m1, m2, m3):
    """A^T @ (m0, m1, m2, m3)."""
    return m0 + m1 + m2, m1 - m2 - m3


@njit(parallel=True, cache=True)
def _transform_output(m, bias, tiles_h, tiles_w, y):
    """y[n, k, 2a + r, 2b + s] = (A^T M[:, k, t] A)[r, s] + bias[k] where inside y."""
    n_block, channels, h_out, w_out = y.shape
    for kn in prange(channels * n_block):
        k = kn // n_block  # channel-major: consecutive planes read m[e, k] from left to right
        n = kn % n_block
        bk = bias[k]
        for a in range(tiles_h):
            base = (n * tiles_h + a) * tiles_w
            for b in range(tiles_w):
                t = base + b
                col0 = _at(m[0, k, t], m[4, k, t], m[8, k, t], m[12, k, t])  # columns of A^T M
                col1 = _at(m[1, k, t], m[5, k, t], m[9, k, t], m[13, k, t])
                col2 = _at(m[2, k, t], m[6, k, t], m[10, k, t], m[14, k, t])
                col3 = _at(m[3, k, t], m[7, k, t], m[11, k, t], m[15, k, t])
                top_row = _at(col0[0], col1[0], col2[0], col3[0])  # rows of (A^T M) A
                y[n, k, 2 * a, 2 * b] = top_row[0] + bk
                if 2 * b + 1 < w_out:
                    y[n, k, 2 * a, 2 * b + 1] = top_row[1] + bk
                if 2 * a + 1 < h_out:
                    bottom_row = _at(col0[1], col1[1], col2[1], col3[1])
                    y[n, k, 2 * a + 1, 2 * b] = bottom_row[0] + bk
                    if 2 * b + 1 < w_out:
                        y[n, k, 2 * a + 1, 2 * b + 1] = bottom_row[1] + bk


@njit(cache=True, inline="always")
def _a(g0, g1):
    """A @ (g0, g1), A = (A^T)^T."""
    return g0, g0 + g1, g0 - g1, -g1


@njit(parallel=True, cache=True)
def _transform_output_grad(grad_y, tiles_h, tiles_w, z, channel_sums):
    """z[4*r + s, k, t] = (A g A^T)[r, s] for g = grad_y[n, k, 2a:2a+2, 2b:2b+2] (0 past the edge);
    channel_sums[k, n] = the sum of grad_y[n, k] in float64 (dL/db's terms)."""
    n_block, channels, h_out, w_out = grad_y.shape
    zero = grad_y.dtype.type(0)
    for kn in prange(channels * n_block):
        k = kn // n_block
        n = kn % n_block
        total = 0.0
        for a in range(tiles_h):
            base = (n * tiles_h + a) * tiles_w
            i = 2 * a
            for b in range(tiles_w):
                j = 2 * b
                g00 = grad_y[n, k, i, j]
                g01 = grad_y[n, k, i, j + 1] if j + 1 < w_out else zero
                g10 = grad_y[n, k, i + 1, j] if i + 1 < h_out else zero
                g11 = grad_y[n, k, i + 1, j + 1] if i + 1 < h_out and j + 1 < w_out else zero
                total += g00 + g01 + g10 + g11
                col0 = _a(g00, g10)  # the columns of A g
                col1 = _a(g01, g11)
                t = base + b
                _store4(z, 0, k, t, _a(col0[0], col1[0]))  # the rows of (A g) A^T
                _store4(z, 4, k, t, _a(col0[1], col1[1]))
                _store4(z, 8, k, t, _a(col0[2], col1[2]))
                _store4(z, 12, k, t, _a(col0[3], col1[3]))
        channel_sums[k, n] = total


@njit(cache=True, inline="always")
def _gt(s0, s1, s2, s3, half):
    """G^T @ (s0, s1, s2, s3)."""
    return s0 + (s1 + s2) * half, (s1 - s2) * half, (s1 + s2) * half + s3


@njit(parallel=True, cache=True)
def _kernel_grad(s, grad_w):
    """grad_w[k, c] = G^T S[:, k, c] G, S[4*r + q] its 4x4 entries."""
    n_out, n_in = grad_w.shape[0], grad_w.shape[1]
    half = grad_w.dtype.type(0.5)
    for kc in prange(n_out * n_in):
        k = kc // n_in
        c = kc % n_in
        col0 = _gt(s[0, k, c], s[4, k, c], s[8, k, c], s[12, k, c], half)  # the columns of G^T S
        col1 = _gt(s[1, k, c], s[5, k, c], s[9, k, c], s[13, k, c], half)
        col2 = _gt(s[2, k, c], s[6, k, c], s[10, k, c], s[14, k, c], half)
        col3 = _gt(s[3, k, c], s[7, k, c], s[11, k, c], s[15, k, c], half)
        for r in range(3):
            row = _gt(col0[r], col1[r], col2[r], col3[r], half)  # row r of (G^T S) G
            grad_w[k, c, r, 0] = row[0]
            grad_w[k, c, r, 1] = row[1]
            grad_w[k, c, r, 2] = row[2]


def _tiles(x_shape, padding):
    (top, bottom), (left, right) = padding
    h_out, w_out = x_shape[2] + top + bottom - 2, x_shape[3] + left + right - 2
    return h_out, w_out, (h_out + 1) // 2, (w_out + 1) // 2


def _block(n, channels, tiles, itemsize):
    return max(1, min(n, BLOCK_BYTES // (16 * channels * tiles * itemsize)))


def _entries(name, rows, columns, dtype):
    """A scratch array (16, rows, columns) for U, V, M, Z or S, its 16 matrices ENTRY_PAD elements apart.

    Why the gap: a transform writes (or reads) one element of each of the 16 matrices per
    tile (or kernel), so 16 streams run side by side, one per matrix. Packed, the matrices are
    rows*columns elements apart, at AlexNet's sizes a multiple of 4 KB (e.g. 384*1568*4
    bytes), so the 16 streams fall in the same set of the L1 cache, which holds 12 lines per
    set, and evict each other. With a cache line between them they fall in 16 sets.
    """
    stride = rows * columns + ENTRY_PAD
    buffer = workspace.scratch(name, (16, stride), dtype)
    return buffer[:, :rows * columns].reshape(16, rows, columns)


def conv2d_forward(x, w, b, stride, padding, groups):
    """y = conv(x, w) + b; stride must be (1, 1), 3x3 kernels, padding ((top, bottom), (left, right))
    each 0..2."""
    n, c = x.shape[:2]
    k = w.shape[0]
    (top, _), (left, _) = padding
    h_out, w_out, tiles_h, tiles_w = _tiles(x.shape, padding)
    tiles = tiles_h * tiles_w
    u = _entries("winograd.u", k, c // groups, x.dtype)
    _transform_kernels(w, u)
    u_g = u.reshape(16, groups, k // groups, c // groups)
    bias = b if b is not None else np.zeros(k, dtype=x.dtype)
    y = workspace.empty((n, k, h_out, w_out), x.dtype)
    block = _block(n, c + k, tiles, x.dtype.itemsize)
    for n0 in range(0, n, block):
        n1 = min(n, n0 + block)
        columns = (n1 - n0) * tiles
        v = _entries("winograd.v", c, columns, x.dtype)
        _transform_input(x[n0:n1], top, left, tiles_h, tiles_w, v)
        m = _entries("winograd.m", k, columns, x.dtype)
        blas.matmul(u_g, v.reshape(16, groups, c // groups, columns), m.reshape(16, groups, k // groups, columns))
        _transform_output(m, bias, tiles_h, tiles_w, y[n0:n1])
    return y


def conv2d_input_grad(w, grad_y, padding, groups):
    """dL/dx of a stride-1 3x3 convolution: grad_y convolved with the flipped kernels, each
    group's channel axes swapped, padded by 2 - pad."""
    k, c_g = w.shape[0], w.shape[1]
    flipped = w.reshape(groups, k // groups, c_g, 3, 3)[:, :, :, ::-1, ::-1]
    w_t = np.ascontiguousarray(flipped.transpose(0, 2, 1, 3, 4)).reshape(groups * c_g, k // groups, 3, 3)
    (top, bottom), (left, right) = padding
    return conv2d_forward(grad_y, w_t, None, (1, 1), ((2 - top, 2 - bottom), (2 - left, 2 - right)), groups)


def conv2d_weight_grad(x, grad_y, w_shape, padding, groups):
    """(dL/dw, dL/db in float64) of a stride-1 3x3 convolution."""
    n, c = x.shape[:2]
    k = w_shape[0]
    (top, _), (left, _) = padding
    _, _, tiles_h, tiles_w = _tiles(x.shape, padding)
    tiles = tiles_h * tiles_w
    s = _entries("winograd.s", k, c // groups, x.dtype)
    bias_sums = np.zeros(k)
    block = _block(n, c + k, tiles, x.dtype.itemsize)
    for n0 in range(0, n, block):
        n1 = min(n, n0 + block)
        columns = (n1 - n0) * tiles
        v = _entries("winograd.v", c, columns, x.dtype)
        _transform_input(x[n0:n1], top, left, tiles_h, tiles_w, v)
        z = _entries("winograd.m", k, columns, x.dtype)
        channel_sums = workspace.scratch("winograd.channel_sums", (k, n1 - n0), np.float64)
        _transform_output_grad(grad_y[n0:n1], tiles_h, tiles_w, z, channel_sums)
        bias_sums += channel_sums.sum(axis=1)
        z_g = z.reshape(16, groups, k // groups, columns)
        v_t = v.reshape(16, groups, c // groups, columns).transpose(0, 1, 3, 2)
        s_g = s.reshape(16, groups, k // groups, c // groups)
        if n0 == 0:
            blas.matmul(z_g, v_t, s_g)
        else:
            s_g += blas.matmul(z_g, v_t, workspace.scratch("winograd.s_block", s_g.shape, x.dtype))
    grad_w = workspace.empty(w_shape, x.dtype)
    _kernel_grad(s, grad_w)
    return grad_w, bias_sums


def conv2d_backward(x, w, grad_y, stride, padding, groups, needs_input_grad=(True, True, True)):
    """(dL/dx, dL/dw, dL/db), None where ``needs_input_grad`` says so; stride must be (1, 1)."""
    grad_x = conv2d_input_grad(w, grad_y, padding, groups) if needs_input_grad[0] else None
    grad_w = grad_b = None
    if needs_input_grad[1] or needs_input_grad[2]:
        grad_w, bias_sums = conv2d_weight_grad(x, grad_y, w.shape, padding, groups)
        grad_w = grad_w if needs_input_grad[1] else None
        grad_b = bias_sums.astype(x.dtype) if needs_input_grad[2] else None
    return grad_x, grad_w, grad_b
