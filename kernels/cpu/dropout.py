"""Inverted dropout on the CPU (Numba) with a counter-based mask.

    keep[i] = hash24(key, offset + i) >= threshold,     y[i] = x[i] * keep[i] / (1 - p)
    dL/dx[i] = grad_y[i] * keep[i] / (1 - p)

``kernels/reference/dropout.py`` defines the hash (lowbias32 applied to the seed
key and the two 32-bit halves of the flat index) and derives key and threshold
on the host. The same integer arithmetic compiled here gives the same mask as
the reference, bit for bit, whatever the thread count, because each element's
decision depends only on (seed, index). The mask is recomputed in backward
rather than stored. All constants are np.uint64: a Python int would turn
Numba's uint64 arithmetic into int64 or float64.
"""
import numpy as np
from numba import njit, prange

from ..reference.dropout import keep_threshold, seed_key
from . import workspace

_MASK32 = np.uint64(0xFFFFFFFF)
_MUL1 = np.uint64(0x7FEB352D)
_MUL2 = np.uint64(0x846CA68B)
_S8 = np.uint64(8)
_S15 = np.uint64(15)
_S16 = np.uint64(16)
_S32 = np.uint64(32)


@njit(cache=True, inline="always")
def _mix32(h):
    h ^= h >> _S16
    h = (h * _MUL1) & _MASK32
    h ^= h >> _S15
    h = (h * _MUL2) & _MASK32
    h ^= h >> _S16
    return h


@njit(cache=True, inline="always")
def _hash24(key, index):
    i = np.uint64(index)
    return _mix32(_mix32(key ^ (i & _MASK32)) ^ (i >> _S32)) >> _S8


@njit(parallel=True, cache=True)
def _dropout_apply(x, key, threshold, scale, offset, y):
    for i in prange(x.size):
        y[i] = x[i] * scale if _hash24(key, offset + np.uint64(i)) >= threshold else 0  # uint64 + int64 would be a float


def dropout_forward(x, p, seed, offset=0):
    y = workspace.empty_like(x)
    _dropout_apply(x.reshape(-1), np.uint64(seed_key(seed)), np.uint64(keep_threshold(p)),
                   x.dtype.type(1 / (1 - p)), np.uint64(offset), y.reshape(-1))
    return y


def dropout_backward(grad_y, p, seed, offset=0):
    return dropout_forward(grad_y, p, seed, offset)
