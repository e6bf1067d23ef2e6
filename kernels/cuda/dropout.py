"""Inverted dropout on the GPU with the counter-based mask of ``kernels/cpu/dropout.py``.

    keep[i] = hash24(key, offset + i) >= threshold,   y[i] = x[i] * keep[i] / (1 - p)

The hash is the very Python code of the CPU kernel's ``_mix32`` and ``_hash24``,
compiled a second time as CUDA device functions (``_hash24``'s code gets the
GPU ``_mix32`` in place of the CPU one), so a seed gives the same mask bit for
bit on both devices, whatever the thread layout: each element's decision depends
only on (seed, index).
"""
import types

import numpy as np
from numba import cuda

from ..cpu import dropout as _cpu
from ..reference.dropout import keep_threshold, seed_key
from .launch import empty_like, flat, grid_1d, jit

_mix32 = cuda.jit(device=True, inline=True)(_cpu._mix32.py_func)
_hash24 = cuda.jit(device=True, inline=True)(
    types.FunctionType(_cpu._hash24.py_func.__code__, {**vars(_cpu), "_mix32": _mix32}, "_hash24")
)


@jit
def _dropout_apply(x, key, threshold, scale, offset, y):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        if _hash24(key, offset + np.uint64(i)) >= threshold:  # (two stores: see activation._relu_backward)
            y[i] = x[i] * scale
        else:
            y[i] = 0


def dropout_forward(x, p, seed, offset=0):
    y = empty_like(x)
    blocks, threads = grid_1d(x.size)
    _dropout_apply[blocks, threads](flat(x), np.uint64(seed_key(seed)), np.uint64(keep_threshold(p)),
                                    x.dtype.type(1 / (1 - p)), np.uint64(offset), flat(y))
    return y


def dropout_backward(grad_y, p, seed, offset=0):
    return dropout_forward(grad_y, p, seed, offset)
