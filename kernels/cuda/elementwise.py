"""Tensor arithmetic on the GPU, as NumPy does it on the CPU: what ``a + b``, ``a * b``, ``a ** 2``,
``t.sum(dim)`` and ``t.mean()`` of tensors on "cuda" run (a weight penalty, a user's own loss).

    binary(op, a, b)           a + b, a - b, a * b, a / b  (op "add", "sub", "mul", "div"), broadcast
    negative(a)                -a
    power(a, c)                a ** c, for a constant number c
    sum(a, axes, keepdims)     the sum over ``axes`` (a sorted tuple of axis numbers; () sums nothing)
    broadcast_to(a, shape)     a new array of ``shape`` holding ``a`` broadcast

Broadcasting is NumPy's, done with strides: an operand is read through the output's coordinates,
with stride 0 along each axis where it has size 1 or which it lacks. One thread per output element
(a grid-stride loop): it unravels its flat index into the output's coordinates (a division per
axis, once for both operands) and dots them with each operand's strides. Every array here is
C-contiguous.

One operand of ``binary`` may be a *host scalar*, a Python number or a NumPy array of one element
(the constants of ``loss * weight_decay`` or ``x / 2``): its value goes to the kernel as an argument,
so nothing is copied to the device.

Sums: one block per output element, or per piece of it when the sum is long and the outputs few
(``sum_pieces``: a full sum of fc6's weights takes 576 blocks, not one SM); each thread adds a strided
share of the summed elements into a float64 partial, ``reduce.block_sum`` adds the partials in a
fixed tree, and a second kernel adds the pieces' float64 sums in order. The cut is a function of
the shapes, so a sum is the same on every run (it is not bit-identical to NumPy's pairwise float32
sum; it is closer to the exact one).
"""
import math

import numpy as np
from numba import cuda, float64

from ...errors import ArgumentError, ShapeError
from .launch import MAX_BLOCKS, SIMULATED, empty, full, grid_1d, jit
from .reduce import REDUCE_THREADS, block_sum

ADD, SUB, MUL, DIV = 0, 1, 2, 3
# A long sum is cut into pieces of PIECE elements, one block each, whose float64 sums a second kernel
# adds in order (a full sum of fc6's 37.7 million weights in one block would run on one SM).
PIECE = 64 if SIMULATED else 1 << 16
MAX_PIECE_BLOCKS = 8 if SIMULATED else 1024
OPS = {"add": ADD, "sub": SUB, "mul": MUL, "div": DIV}


@cuda.jit(device=True, inline=True)
def _apply(op, x, y):
    if op == ADD:
        return x + y
    if op == SUB:
        return x - y
    if op == MUL:
        return x * y
    return x / y


@cuda.jit(device=True, inline=True)
def _offset(index, shape, strides):
    """The element offset of flat (C-order) ``index`` of ``shape``, in an array with ``strides``."""
    offset = 0
    for d in range(len(shape) - 1, -1, -1):
        offset += (index % shape[d]) * strides[d]
        index //= shape[d]
    return offset


@cuda.jit(device=True, inline=True)
def _offsets(index, shape, a_strides, b_strides):
    """``_offset`` in two arrays at once: the coordinates are divided out once for both."""
    a_offset = b_offset = 0
    for d in range(len(shape) - 1, -1, -1):
        coordinate = index % shape[d]
        a_offset += coordinate * a_strides[d]
        b_offset += coordinate * b_strides[d]
        index //= shape[d]
    return a_offset, b_offset


@jit
def _binary(op, a, b, out, shape, a_strides, b_strides):
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        a_offset, b_offset = _offsets(i, shape, a_strides, b_strides)
        out[i] = _apply(op, a[a_offset], b[b_offset])


@jit
def _binary_same_shape(op, a, b, out):  # the common case (a gradient accumulated), without the index arithmetic
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        out[i] = _apply(op, a[i], b[i])


@jit
def _binary_scalar(op, a, value, out, scalar_first):
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        out[i] = _apply(op, value, a[i]) if scalar_first else _apply(op, a[i], value)


@jit
def _power(a, exponent, out):
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        out[i] = a[i] ** exponent


@jit
def _square(a, out):  # x ** 2 as x * x: exact, as NumPy's square is (a general pow may round)
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        out[i] = a[i] * a[i]


@jit
def _gather(a, out, shape, a_strides):
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        out[i] = a[_offset(i, shape, a_strides)]


@jit
def _sum(a, out, kept_shape, kept_strides, summed_shape, summed_strides, count, pieces):
    """out[o * pieces + s] = the sum of piece s of output o's summed elements (the elements
    r = s*REDUCE_THREADS + t, + pieces*REDUCE_THREADS, ...), one block per (o, s)."""
    partial = cuda.shared.array(REDUCE_THREADS, float64)
    for block in range(cuda.blockIdx.x, out.size, cuda.gridDim.x):
        o, piece = block // pieces, block % pieces
        base = _offset(o, kept_shape, kept_strides)
        acc = 0.0
        for r in range(piece * REDUCE_THREADS + cuda.threadIdx.x, count, pieces * REDUCE_THREADS):
            acc += a[base + _offset(r, summed_shape, summed_strides)]
        total = block_sum(partial, acc)
        if cuda.threadIdx.x == 0:
            out[block] = total


@jit
def _add_pieces(pieces_sums, out):
    """out[o] = the sum of row o of pieces_sums, in order (one thread per output)."""
    for o in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        total = pieces_sums[o, 0]
        for piece in range(1, pieces_sums.shape[1]):
            total += pieces_sums[o, piece]
        out[o] = total


def _flat(a):
    if not a.is_c_contiguous():
        raise ArgumentError("cuda arithmetic: the array is not C-contiguous")
    return a.reshape(a.size)


def _broadcast_strides(shape, out_shape):
    """Element strides that read a C-contiguous array of ``shape`` through ``out_shape``'s coordinates
    (0 along broadcast axes); an empty output shape counts as (1,) (a kernel needs one axis)."""
    strides = np.broadcast_to(np.empty(shape, dtype=np.int8), out_shape).strides  # int8: bytes = elements
    return tuple(int(s) for s in strides) or (0,)


def _is_host_scalar(x):
    return not hasattr(x, "copy_to_host") and np.size(x) == 1


def binary(op, a, b):
    """``a <op> b`` with NumPy's broadcasting; a and b device arrays, or one of them a host scalar."""
    code = OPS[op]
    if _is_host_scalar(a) or _is_host_scalar(b):
        array, value = (b, a) if _is_host_scalar(a) else (a, b)
        out = empty(array.shape, array.dtype)
        if out.size:
            _binary_scalar[grid_1d(out.size)](code, _flat(array), array.dtype.type(np.asarray(value).item()),
                                              _flat(out), _is_host_scalar(a))
        shape = np.broadcast_shapes(array.shape, np.shape(value))  # a (1, 1) scalar adds axes, as in NumPy
        return out if shape == array.shape else out.reshape(shape)
    if a.dtype != b.dtype:
        raise ArgumentError(f"cuda {op}: dtypes differ, {a.dtype} and {b.dtype}")
    try:
        shape = np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ShapeError(f"cuda {op}: shapes {a.shape} and {b.shape} do not broadcast") from None
    out = empty(shape, a.dtype)
    if out.size and a.shape == b.shape:
        _binary_same_shape[grid_1d(out.size)](code, _flat(a), _flat(b), _flat(out))
    elif out.size:
        _binary[grid_1d(out.size)](code, _flat(a), _flat(b), _flat(out), tuple(shape) or (1,),
                                   _broadcast_strides(a.shape, shape), _broadcast_strides(b.shape, shape))
    return out


def add(a, b):
    """a + b (gradient accumulation: two arrays of one shape)."""
    return binary("add", a, b)


def negative(a):
    return binary("mul", a, -1)  # exact, as negation is


def power(a, exponent):
    out = empty(a.shape, a.dtype)
    if out.size:
        if exponent == 2:
            _square[grid_1d(out.size)](_flat(a), _flat(out))
        else:
            _power[grid_1d(out.size)](_flat(a), a.dtype.type(exponent), _flat(out))
    return out


def broadcast_to(a, shape):
    shape = tuple(shape)
    out = empty(shape, a.dtype)
    if out.size:
        _gather[grid_1d(out.size)](_flat(a), _flat(out), shape or (1,), _broadcast_strides(a.shape, shape))
    return out


def sum(a, axes, keepdims):  # noqa: A001  (NumPy's name, as the host side calls it)
    """The sum of device array ``a`` over ``axes``, in a's dtype."""
    axes = tuple(sorted(axes))
    element_strides = [int(math.prod(a.shape[d + 1:])) for d in range(a.ndim)]
    kept = [d for d in range(a.ndim) if d not in axes]
    out_shape = tuple(1 if d in axes else a.shape[d] for d in range(a.ndim)) if keepdims else \
        tuple(a.shape[d] for d in kept)
    out = empty(out_shape, a.dtype)
    count = int(math.prod(a.shape[d] for d in axes))
    if out.size == 0:
        return out
    if a.size == 0:  # a sum of nothing is 0
        return full(out_shape, 0, a.dtype)
    pieces = sum_pieces(out.size, count)
    target = _flat(out) if pieces == 1 else empty((out.size, pieces), np.float64)
    _sum[min(target.size, MAX_BLOCKS), REDUCE_THREADS](
        _flat(a), _flat(target),
        tuple(a.shape[d] for d in kept) or (1,), tuple(element_strides[d] for d in kept) or (0,),
        tuple(a.shape[d] for d in axes) or (1,), tuple(element_strides[d] for d in axes) or (0,), count, pieces)
    if pieces > 1:
        _add_pieces[grid_1d(out.size)](target, _flat(out))
    return out


def sum_pieces(outputs, count):
    """How many blocks share each output's sum: one per PIECE summed elements, at most what keeps
    the blocks under MAX_PIECE_BLOCKS (enough to fill a GPU), and 1 when the outputs alone are that
    many. A function of the shapes only, so a sum is the same on every run and every GPU."""
    return max(1, min(math.ceil(count / PIECE), MAX_PIECE_BLOCKS // outputs))
