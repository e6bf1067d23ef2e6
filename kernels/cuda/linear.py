"""Fully connected layer on the GPU: three products through the tiled GEMM (``gemm.py``).

    y = x @ w^T + b     M = N rows, N = O columns, reduction over I
    dx = grad_y @ w     M = N, N = I, reduction over O
    dw = grad_y^T @ x   M = O, N = I, reduction over N
    db = sum_n grad_y   (``reduce.py``)

Shapes: x (N, I), w (O, I), b (O,). The transposes are index arithmetic in the
loaders; nothing is copied. geom = (M, N, K). The forward's store adds the bias, and in
``linear_relu_forward`` also applies a following ReLU (one launch, one store).
"""
from numba import cuda, uint64

from .activation import relu
from .gemm import GEMM_M, GEMM_N, load_cols, load_from_column, load_from_line, load_rows, make_gemm, store_plain
from .launch import empty, full
from .reduce import sum_over_batch_and_space


@cuda.jit(device=True, inline=True)
def _rows_transposed(geom, a, g, row, k, tile, s, t):
    """A[r, k] = a[k, r] (a of shape (K, M)), for the (exists, r) ``row`` that ``_row_index`` gave."""
    load_from_column(geom, a, row, k, tile, s, t)


@cuda.jit(device=True, inline=True)
def _row_index(geom, a, g, r):
    return r < geom[GEMM_M], uint64(r)


@cuda.jit(device=True, inline=True)
def _row_of_b(geom, b, g, c):
    """B = b^T (b of shape (N, K)): column c of B is row c of b, a view (``gemm.row_of_a``)."""
    exists = c < geom[GEMM_N]
    return exists, b[uint64(c if exists else 0)]


@cuda.jit(device=True, inline=True)
def _cols_transposed(geom, b, g, k, column, tile, s, t):
    """B[k, c] = b[c, k], for the (exists, row c of b) ``column`` that ``_row_of_b`` gave."""
    load_from_line(geom, column, k, tile, s, t)


@cuda.jit(device=True, inline=True)
def _store_bias(geom, out, bias, g, r, c, value):
    out[r, c] = value + bias[c]


@cuda.jit(device=True, inline=True)
def _store_bias_relu(geom, out, bias, g, r, c, value):
    """A linear layer followed by a ReLU: the ReLU in the epilogue, one launch and one store."""
    out[r, c] = relu(value + bias[c])


_forward = make_gemm(load_rows, _cols_transposed, _store_bias, prepare_b=_row_of_b)
_forward_relu = make_gemm(load_rows, _cols_transposed, _store_bias_relu, prepare_b=_row_of_b)
_input_grad = make_gemm(load_rows, load_cols, store_plain)
_weight_grad = make_gemm(_rows_transposed, load_cols, store_plain, prepare_a=_row_index)


def _run_forward(product, x, w, b):
    n, o = x.shape[0], w.shape[0]
    y = empty((n, o), x.dtype)
    product((n, o, x.shape[1]), 1, x, w, y, b if b is not None else full(o, 0, x.dtype))
    return y


def linear_forward(x, w, b):
    return _run_forward(_forward, x, w, b)


def linear_relu_forward(x, w, b):
    """relu(linear_forward(...)) in one launch: the ReLU in the product's epilogue."""
    return _run_forward(_forward_relu, x, w, b)


def linear_backward(x, w, grad_y, needs_input_grad=(True, True, True)):
    n, i = x.shape
    o = w.shape[0]
    grad_x = grad_w = grad_b = None
    if needs_input_grad[0]:
        grad_x = empty((n, i), x.dtype)
        _input_grad((n, i, o), 1, grad_y, w, grad_x, grad_x)
    if needs_input_grad[1]:
        grad_w = empty((o, i), x.dtype)
        _weight_grad((o, i, n), 1, grad_y, x, grad_w, grad_w)
    if needs_input_grad[2]:
        grad_b = sum_over_batch_and_space(grad_y.reshape(n, o, 1))
    return grad_x, grad_w, grad_b
