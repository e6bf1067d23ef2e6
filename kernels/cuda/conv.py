"""2-D convolution on the GPU as three implicit GEMMs (``gemm.py``), one per pass.

Same math as ``kernels/cpu/conv/im2col.py`` (x (N, C, H, W), w (K, C/G, kh, kw), group g,
c' and k' counting within the group, x_pad read as 0 outside the image):

    forward:  y[n, g*K/G + k', i, j] = b + sum_{c', p, q} w[g*K/G + k', c', p, q] * x_pad[n, g*C/G + c', i*sh + p, j*sw + q]
              M = K/G rows (k'), N = batch*H_out*W_out columns (n, i, j), reduction over (c', p, q)
    grad_w:   dw[g*K/G + k', c', p, q] = sum_{n, i, j} grad_y[n, g*K/G + k', i, j] * x_pad[n, g*C/G + c', i*sh + p, j*sw + q]
              M = K/G (k'), N = C/G*kh*kw (c', p, q), reduction over (n, i, j)
    grad_x:   dx[n, g*C/G + c', h, w] = sum_{k', p, q} w[g*K/G + k', c', p, q] * grad_y[n, g*K/G + k', i, j]
              with i = (h + pad_top - p) / sh and j = (w + pad_left - q) / sw where those divide
              exactly and land inside the output; M = C/G (c'), N = batch*H*W (n, h, w),
              reduction over (k', p, q)
    grad_b:   db[k] = sum_{n, i, j} grad_y[n, k, i, j]     (``reduce.py``)

The input gradient is computed by gathering (each dx element sums what it
contributed to) instead of scattering col2im with atomics: each output has one
owner, and results are the same on every run. The groups are the grid's z axis.
geom = (M, N, Kred, batch, C, H, W, K, kh, kw, sh, sw, pad_top, pad_left, H_out, W_out, C/G, K/G),
read through the named indices below (GEMM_M ... K_PER_GROUP).
"""
from numba import cuda

from .gemm import GEMM_K, GEMM_M, GEMM_N, make_gemm
from .launch import empty, full
from .reduce import sum_over_batch_and_space


# The entries of ``geom``. Module-level ints are compile-time constants to Numba, so a name
# costs nothing against a bare index.
(BATCH, CHANNELS, HEIGHT, WIDTH, KERNELS, KH, KW, STRIDE_H, STRIDE_W, PAD_TOP, PAD_LEFT, H_OUT, W_OUT, C_PER_GROUP,
 K_PER_GROUP) = range(3, 18)


@cuda.jit(device=True, inline=True)
def _weight_row_major(geom, w, g, r, kk, tile, slot_k, slot_mn):
    """A[k', (c', p, q)] = w[g*K/G + k', c', p, q]; w flattened."""
    if r >= geom[GEMM_M] or kk >= geom[GEMM_K]:
        tile[slot_k, slot_mn] = 0
        return
    tile[slot_k, slot_mn] = w[(g * geom[K_PER_GROUP] + r) * geom[GEMM_K] + kk]


@cuda.jit(device=True, inline=True)
def _x_pad_into(geom, x, g, kk, m, tile, slot_k, slot_mn):
    """tile[...] = x_pad[n, g*C/G + c', i*sh + p, j*sw + q] for im2col row kk = (c', p, q) and
    column m = (n, i, j): 0 in the padding."""
    kh, kw = geom[KH], geom[KW]
    c = kk // (kh * kw)
    p = (kk // kw) % kh
    q = kk % kw
    plane = geom[H_OUT] * geom[W_OUT]
    n = m // plane
    i = (m % plane) // geom[W_OUT]
    j = m % geom[W_OUT]
    h = i * geom[STRIDE_H] + p - geom[PAD_TOP]
    w = j * geom[STRIDE_W] + q - geom[PAD_LEFT]
    if h < 0 or h >= geom[HEIGHT] or w < 0 or w >= geom[WIDTH]:
        tile[slot_k, slot_mn] = 0
    else:
        tile[slot_k, slot_mn] = x[n, g * geom[C_PER_GROUP] + c, h, w]


@cuda.jit(device=True, inline=True)
def _im2col(geom, x, g, kk, col, tile, slot_k, slot_mn):
    """B[(c', p, q), (n, i, j)] of the forward: the im2col matrix."""
    if kk >= geom[GEMM_K] or col >= geom[GEMM_N]:
        tile[slot_k, slot_mn] = 0
    else:
        _x_pad_into(geom, x, g, kk, col, tile, slot_k, slot_mn)


@cuda.jit(device=True, inline=True)
def _store_output(geom, y, bias, g, r, col, value):
    plane = geom[H_OUT] * geom[W_OUT]
    k = g * geom[K_PER_GROUP] + r
    y[col // plane, k, (col % plane) // geom[W_OUT], col % geom[W_OUT]] = value + bias[k]


@cuda.jit(device=True, inline=True)
def _grad_y_rows(geom, grad_y, g, r, m, tile, slot_k, slot_mn):
    """A[k', (n, i, j)] = grad_y[n, g*K/G + k', i, j]."""
    if r >= geom[GEMM_M] or m >= geom[GEMM_K]:
        tile[slot_k, slot_mn] = 0
        return
    plane = geom[H_OUT] * geom[W_OUT]
    tile[slot_k, slot_mn] = grad_y[m // plane, g * geom[K_PER_GROUP] + r, (m % plane) // geom[W_OUT], m % geom[W_OUT]]


@cuda.jit(device=True, inline=True)
def _im2col_transposed(geom, x, g, m, kk, tile, slot_k, slot_mn):
    """B[(n, i, j), (c', p, q)] of the weight gradient: the im2col matrix read the other way round."""
    if m >= geom[GEMM_K] or kk >= geom[GEMM_N]:
        tile[slot_k, slot_mn] = 0
    else:
        _x_pad_into(geom, x, g, kk, m, tile, slot_k, slot_mn)


@cuda.jit(device=True, inline=True)
def _store_weight_grad(geom, grad_w, unused, g, r, kk, value):
    grad_w[(g * geom[K_PER_GROUP] + r) * geom[GEMM_N] + kk] = value


@cuda.jit(device=True, inline=True)
def _weight_transposed(geom, w, g, c, kk, tile, slot_k, slot_mn):
    """A[c', (k', p, q)] = w[g*K/G + k', c', p, q]."""
    if c >= geom[GEMM_M] or kk >= geom[GEMM_K]:
        tile[slot_k, slot_mn] = 0
        return
    kh, kw = geom[KH], geom[KW]
    r = kk // (kh * kw)
    pq = kk % (kh * kw)
    tile[slot_k, slot_mn] = w[((g * geom[K_PER_GROUP] + r) * geom[C_PER_GROUP] + c) * kh * kw + pq]


@cuda.jit(device=True, inline=True)
def _grad_y_gathered(geom, grad_y, g, kk, col, tile, slot_k, slot_mn):
    """B[(k', p, q), (n, h, w)] = grad_y[n, g*K/G + k', i, j] for the (i, j) whose window put
    x_pad[h + pad_top, w + pad_left] at offset (p, q), or 0 if there is none."""
    if kk >= geom[GEMM_K] or col >= geom[GEMM_N]:
        tile[slot_k, slot_mn] = 0
        return
    kh, kw = geom[KH], geom[KW]
    r = kk // (kh * kw)
    p = (kk // kw) % kh
    q = kk % kw
    plane = geom[HEIGHT] * geom[WIDTH]
    n = col // plane
    h = (col % plane) // geom[WIDTH]
    w = col % geom[WIDTH]
    hi = h + geom[PAD_TOP] - p
    wi = w + geom[PAD_LEFT] - q
    if hi < 0 or wi < 0 or hi % geom[STRIDE_H] != 0 or wi % geom[STRIDE_W] != 0:
        tile[slot_k, slot_mn] = 0
        return
    i = hi // geom[STRIDE_H]
    j = wi // geom[STRIDE_W]
    if i >= geom[H_OUT] or j >= geom[W_OUT]:
        tile[slot_k, slot_mn] = 0
        return
    tile[slot_k, slot_mn] = grad_y[n, g * geom[K_PER_GROUP] + r, i, j]


@cuda.jit(device=True, inline=True)
def _store_input_grad(geom, grad_x, unused, g, c, col, value):
    plane = geom[HEIGHT] * geom[WIDTH]
    grad_x[col // plane, g * geom[C_PER_GROUP] + c, (col % plane) // geom[WIDTH], col % geom[WIDTH]] = value


_forward = make_gemm(_weight_row_major, _im2col, _store_output)
_weight_grad = make_gemm(_grad_y_rows, _im2col_transposed, _store_weight_grad)
_input_grad = make_gemm(_weight_transposed, _grad_y_gathered, _store_input_grad)


def _geometry(x_shape, w_shape, stride, padding, groups):
    n, c, h, w = x_shape
    k, c_per_group, kh, kw = w_shape
    (top, bottom), (left, right) = padding
    h_out = (h + top + bottom - kh) // stride[0] + 1
    w_out = (w + left + right - kw) // stride[1] + 1
    shape = (n, c, h, w, k, kh, kw, stride[0], stride[1], top, left, h_out, w_out, c_per_group, k // groups)
    return shape, h_out, w_out


def conv2d_forward(x, w, b, stride, padding, groups):
    shape, h_out, w_out = _geometry(x.shape, w.shape, stride, padding, groups)
    n, k, c_per_group, kh, kw = x.shape[0], w.shape[0], w.shape[1], w.shape[2], w.shape[3]
    y = empty((n, k, h_out, w_out), x.dtype)
    bias = b if b is not None else full(k, 0, x.dtype)
    geom = (k // groups, n * h_out * w_out, c_per_group * kh * kw) + shape
    _forward(geom, groups, w.reshape(w.size), x, y, bias)
    return y


def conv2d_backward(x, w, grad_y, stride, padding, groups, needs_input_grad=(True, True, True)):
    shape, h_out, w_out = _geometry(x.shape, w.shape, stride, padding, groups)
    n, c, h, wd = x.shape
    k, c_per_group, kh, kw = w.shape
    grad_x = grad_w = grad_b = None
    if needs_input_grad[0]:
        grad_x = empty(x.shape, x.dtype)
        geom = (c_per_group, n * h * wd, (k // groups) * kh * kw) + shape
        _input_grad(geom, groups, w.reshape(w.size), grad_y, grad_x, grad_x)
    if needs_input_grad[1]:
        grad_w = empty(w.shape, w.dtype)
        geom = (k // groups, c_per_group * kh * kw, n * h_out * w_out) + shape
        _weight_grad(geom, groups, grad_y, x, grad_w.reshape(grad_w.size), grad_w)
    if needs_input_grad[2]:
        grad_b = sum_over_batch_and_space(grad_y.reshape(n, k, h_out * w_out))
    return grad_x, grad_w, grad_b
