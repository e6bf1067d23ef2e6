"""Column phases of an image row, for kernels that read a row at a stride.

    phase r of a row, for stride s:   phase_r[t] = row[t*s + r],   t = 0 .. ceil((W - r) / s) - 1

A window that moves by s columns reads, for each of its own columns q, one element of
phase (q mod s) per step, at consecutive t. Split once, those reads are contiguous, which
the compiler vectorises; read at the stride, each is a gather it does not. conv.py's
im2col (conv1, stride 4) and pool.py's scan (stride 2) split their planes this way.
"""
import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def gather_phase(src, stride, phase):
    """phase[t] = src[t*stride] for t < len(phase); called with src = row[r:] and len(phase) =
    ``phase_length(len(row), stride, r)`` it fills phase r. Unsigned indices: a signed computed
    index costs a negative-index check on every access, which kept this loop scalar."""
    for t in range(phase.size):
        phase[t] = src[np.uint64(t) * np.uint64(stride)]


@njit(cache=True, inline="always")
def phase_length(width, stride, r):
    """ceil((width - r) / stride): the length of phase r of a row of ``width``."""
    return (width - r + stride - 1) // stride
