"""Memory the CPU kernels reuse from call to call, so a training step does not page-fault.

Why: memory the process gets fresh from the operating system is zeroed page by page on
first touch. Here a fresh 74 MB array (AlexNet's conv1 output at batch 64) took 18-27 ms to
fill, a reused one 9 ms. glibc hands every block over 32 MB straight back to the system
when NumPy frees it, so without reuse each training step pays those page faults again for
every activation and gradient; the im2col matrix, allocated per call, ran the convolution at
20-34 GFLOP/s instead of 100+ (NUMBA.md).

Two kinds of reused memory:

- ``scratch(name, shape, dtype)``: a named buffer, grown to the largest size asked for. Its
  contents are valid only until the next request of the same name: a kernel uses it within
  one call and never returns it (the im2col matrix).
- ``empty``, ``empty_like``, ``zeros``: arrays a kernel returns (outputs, gradients), taken
  from a cache of blocks that are no longer used. Every NumPy view of a block keeps a
  reference to the block (``view.base``), so a block is free exactly when the cache holds
  the only reference to it. A request takes a free block of the same size, or allocates a
  new one. Blocks under ``MIN_BYTES`` come from ``np.empty``: glibc already reuses those.
  Before it allocates a new block, the cache drops the free blocks used longest ago until
  at most ``MAX_FREE_BYTES`` of free blocks remain. Free blocks of the wrong size at the
  peak are memory the process holds for nothing: AlexNet's training step at batch 64
  peaked at 2266 MB with no cap, 2048 MB with 512 MiB and 1803 MB with 128 MiB. The speed
  did not change measurably: the small cap costs ~15,000 page faults per step (0 with no
  cap), a few tens of ms. A change of shapes (another batch size) does not pile up memory.
- ``unshared(array)``: whether nothing but the caller uses an array's memory, so autograd
  can keep a fresh gradient as a leaf's ``.grad`` instead of copying it.

Not thread-safe: one op runs at a time.
"""
import sys

import numpy as np

MIN_BYTES = 1 << 20
MAX_FREE_BYTES = 128 << 20
_ALIGN = 1 << 12

_buffers = {}
_blocks = []  # 1-D uint8 arrays, in order of last use, oldest first


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


def _is_free(i):
    # The references to a free block: the list's slot and getrefcount's own argument.
    # Every array made from the block adds one.
    return sys.getrefcount(_blocks[i]) == 2


def _trim(keep_bytes):
    """Drop the free blocks used longest ago until at most ``keep_bytes`` of free blocks remain."""
    free = [i for i in range(len(_blocks)) if _is_free(i)]
    free_bytes = sum(_blocks[i].size for i in free)
    drop = []
    for i in free:
        if free_bytes <= keep_bytes:
            break
        free_bytes -= _blocks[i].size
        drop.append(i)
    for i in reversed(drop):
        del _blocks[i]


def empty(shape, dtype):
    """An uninitialised C-contiguous array, in a reused block when it is large."""
    dtype = np.dtype(dtype)
    count = 1
    for extent in shape:
        count *= extent
    nbytes = count * dtype.itemsize
    if nbytes < MIN_BYTES:
        return np.empty(shape, dtype=dtype)
    size = -(-nbytes // _ALIGN) * _ALIGN
    for i in range(len(_blocks)):
        if _blocks[i].size == size and _is_free(i):
            block = _blocks.pop(i)
            break
    else:
        _trim(MAX_FREE_BYTES - size)
        block = np.empty(size, dtype=np.uint8)
    _blocks.append(block)
    return block.view(dtype)[:count].reshape(shape)


def empty_like(a):
    return empty(a.shape, a.dtype)


def zeros(shape, dtype):
    out = empty(shape, dtype)
    out.fill(0)
    return out


def _references(array):
    """sys.getrefcount seen one call down, as in ``unshared``."""
    return sys.getrefcount(array)


def _references_when_alone():
    alone = np.empty(1)
    return _references(alone)


# What ``unshared`` counts for an array held by its caller's variable alone (3 on CPython
# 3.11 and 3.12: the variable, the parameter, getrefcount's argument), measured rather than assumed.
_ALONE = _references_when_alone()


def unshared(array):
    """True when the caller's one variable is the only thing that uses ``array`` or its memory.

    The autograd engine then stores a gradient as a leaf's ``.grad`` as it is instead of
    copying it (PyTorch steals a gradient the same way when its use count is 1): for
    AlexNet that is 244 MB not copied, and fc6's 151 MB gradient not held twice, each step.
    The array must own its memory, or be the only array on a block of this cache.
    """
    if sys.getrefcount(array) != _ALONE:
        return False
    base = array.base
    if base is None:
        return True
    if not any(block is base for block in _blocks):
        return False
    # References to a block only this array uses: the cache's list, array.base, ``base``
    # here and getrefcount's argument.
    return sys.getrefcount(base) == 4


def cached_bytes():
    """(bytes in use, bytes free) of the blocks the cache holds."""
    used = free = 0
    for i in range(len(_blocks)):
        if _is_free(i):
            free += _blocks[i].size
        else:
            used += _blocks[i].size
    return used, free


def release():
    """Forget every cached block and scratch buffer (arrays still in use stay valid)."""
    _blocks.clear()
    _buffers.clear()
