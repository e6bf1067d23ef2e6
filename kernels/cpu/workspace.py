"""Scratch buffers reused from call to call.

A convolution's im2col matrix is large (conv1 at batch 16: 70 MB). Allocating it
afresh on every call costs more in page faults than the matrix product itself
(measured 20-34 GFLOP/s against 100+ with a reused buffer, see NUMBA.md), so each
named buffer is kept and grown to the largest size asked for. A buffer's
contents are only valid until the next request of the same name: kernels use
them within one call and never return them. Not thread-safe: one op runs at a time.
"""
import numpy as np

_buffers = {}


def scratch(name, shape, dtype):
    """An uninitialised C-contiguous array of ``shape`` and ``dtype``, reused across calls."""
    dtype = np.dtype(dtype)
    size = 1
    for extent in shape:
        size *= extent
    key = (name, dtype)
    buffer = _buffers.get(key)
    if buffer is None or buffer.size < size:
        buffer = np.empty(size, dtype=dtype)
        _buffers[key] = buffer
    return buffer[:size].reshape(shape)

