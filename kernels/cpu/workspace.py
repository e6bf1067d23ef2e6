"""Memory the CPU kernels reuse from call to call, so a training step does not page-fault.

Why: memory the process gets fresh from the operating system is zeroed page by page on
first touch, and on these VMs a page fault is dear. A fresh 74 MB array (AlexNet's conv1
output at batch 64) took 18-27 ms to fill, a reused one 9 ms. glibc hands every block over
32 MB straight back to the system when NumPy frees it, so without reuse each training step
pays those faults again for every activation and gradient. In a whole AlexNet step a fault
cost about 75 us: 2,570 faults turned lrn1's 51 ms backward into 243 ms.

The kinds of reused memory:

- ``scratch(name, shape, dtype)``: a named buffer of bytes, grown to the largest size asked
  for, viewed as the dtype asked for. Its contents are valid only until the next request of
  the same name: a kernel uses it within one call and never returns it (Winograd's matrices).
  A kernel may read what it left there in an earlier call if it alone uses the name and
  ``generation()`` has not changed since (``release`` forgets every buffer): the Fourier path
  keeps its weights' spectrum from a forward to the backward that way.
- ``thread_scratch(name, shape, dtype)``: the same, a buffer per thread, for the kernels whose
  tasks run on several threads at once (im2col's images); freed with its thread.
- ``empty``, ``empty_like``, ``zeros``: arrays a kernel returns (outputs, gradients), carved
  from arenas of ``ARENA_BYTES`` that are kept for the life of the process (a request
  larger than that gets an arena of its own). A request takes the smallest gap between the
  pieces still in use that fits it (best fit), so neighbouring freed pieces merge into
  one gap by themselves, and only when no gap fits is a new arena allocated (arenas that
  nothing uses are given back first). Each piece is handed out through an owner object
  that becomes the NumPy base of the array, and every view of the array keeps the array,
  so a piece is free exactly when only the cache refers to its owner. Arrays under
  ``MIN_BYTES`` come from ``np.empty``: glibc already reuses those.
  An earlier design kept whole blocks per exact size: with a cap of 128 MiB on the free
  blocks it cost ~15,000 page faults per step (the blocks of one size were free while
  another size was needed) and peaked at 1803 MB; with no cap, no faults and 2266 MB.
  The arenas give both: no faults after the first step and a peak of 1722 MB.
- ``take(store, key)``: pops an array from a dict, itself where nothing else uses it or its
  memory, else a copy: so autograd can keep a fresh gradient as a leaf's ``.grad`` instead of
  copying it (``arrays.py`` is the interface the engine sees).

Not thread-safe, but for ``thread_scratch``: one op runs at a time, and hands its threads buffers
of their own.
"""
import sys
import threading

import numpy as np

MIN_BYTES = 1 << 20
ARENA_BYTES = 256 << 20
_ALIGN = 1 << 12

_buffers = {}
_arenas = []   # 1-D uint8 arrays, ARENA_BYTES or one request's size
_regions = []  # the _Region of every array handed out and maybe still in use


def scratch(name, shape, dtype, buffers=None):
    """An uninitialised C-contiguous array of ``shape`` and ``dtype``, reused across calls: a view
    of the bytes of the buffer ``name``, whatever dtype asked for it before (so stages of one
    kernel can take turns in one buffer, complex numbers after floats)."""
    buffers = _buffers if buffers is None else buffers
    dtype = np.dtype(dtype)
    size = dtype.itemsize
    for extent in shape:
        size *= extent
    buffer = buffers.get(name)
    if buffer is None or buffer.size < size:
        buffer = np.empty(size, dtype=np.uint8)
        buffers[name] = buffer
    return buffer[:size].view(dtype).reshape(shape)


_per_thread = threading.local()


def thread_scratch(name, shape, dtype):
    """``scratch`` of the calling thread's own, for kernels whose tasks run on several threads at
    once (im2col's images); freed with the thread."""
    if not hasattr(_per_thread, "buffers"):
        _per_thread.buffers = {}
    return scratch(name, shape, dtype, _per_thread.buffers)


class _Region:
    """A piece of an arena handed out as one array. ``owner`` exports the piece through
    ``__array_interface__`` and becomes the base of the array (NumPy keeps a non-array base
    as it is), and every view of the array keeps the array, so the owner's reference count
    says whether anything still uses the piece."""

    __slots__ = ("offset", "size", "owner")

    def __init__(self, arena, offset, size, shape, dtype):
        self.offset, self.size = offset, size
        self.owner = _Owner()
        self.owner.arena = arena  # keeps the arena alive while the array lives
        self.owner.__array_interface__ = {
            "data": (arena.ctypes.data + offset, False),
            "shape": tuple(shape),
            "typestr": dtype.str,
            "version": 3,
        }

    @property
    def arena(self):
        return self.owner.arena

    def free(self):
        # References to a free region's owner: this slot and getrefcount's argument.
        return sys.getrefcount(self.owner) == 2


class _Owner:
    __slots__ = ("__array_interface__", "arena")


def _best_gap(size):
    """(arena, offset) of the smallest free gap of at least ``size`` bytes, or None.
    Forgets the regions no longer in use first: their bytes are gaps again."""
    _regions[:] = [r for r in _regions if not r.free()]
    best = None
    for arena in _arenas:
        start = 0
        pieces = sorted((r.offset, r.size) for r in _regions if r.arena is arena)
        for offset, length in pieces + [(arena.size, 0)]:
            gap = offset - start
            if gap >= size and (best is None or gap < best[0]):
                best = (gap, arena, start)
            start = max(start, offset + length)
    return None if best is None else best[1:]


def _grow(size):
    """A new arena for ``size`` bytes; arenas nothing uses are given back first."""
    _arenas[:] = [a for a in _arenas if any(r.arena is a for r in _regions)]
    _arenas.append(np.empty(max(ARENA_BYTES, size), dtype=np.uint8))
    return _arenas[-1], 0


def empty(shape, dtype):
    """An uninitialised C-contiguous array, in reused memory when it is large."""
    dtype = np.dtype(dtype)
    count = 1
    for extent in shape:
        count *= extent
    nbytes = count * dtype.itemsize
    if nbytes < MIN_BYTES:
        return np.empty(shape, dtype=dtype)
    size = -(-nbytes // _ALIGN) * _ALIGN
    arena, offset = _best_gap(size) or _grow(size)
    region = _Region(arena, offset, size, shape, dtype)
    _regions.append(region)
    return np.asarray(region.owner)


def empty_like(a):
    return empty(a.shape, a.dtype)


def zeros(shape, dtype):
    out = empty(shape, dtype)
    out.fill(0)
    return out


def _take_alone(store, key):
    """What ``take`` counts for an array that only its local variable holds, measured rather
    than assumed (2 on CPython 3.11 and 3.12: the variable and getrefcount's argument)."""
    array = store.pop(key)
    return sys.getrefcount(array)


_ALONE = _take_alone({0: np.empty(1)}, 0)


def take(store, key):
    """``store.pop(key)``: the array itself when nothing else uses it or its memory, else a copy.

    The autograd engine keeps a leaf's gradient this way (PyTorch steals a gradient the same
    way when its use count is 1): for AlexNet that is 244 MB not copied, and fc6's 151 MB
    gradient not held twice, each step. Nothing else uses the array when, once popped, only
    this function's variable refers to it, and it owns its memory, or is the only array on a
    region of the arenas, or is a whole view (a reshape, say) of such an array that nothing
    else refers to: a kernel may hand back its output reshaped.
    """
    array = store.pop(key)
    if sys.getrefcount(array) == _ALONE and _memory_unshared(array):
        return array
    out = empty(array.shape, array.dtype)
    np.copyto(out, array)
    return out


def _memory_unshared(array):
    """Whether nothing but ``array`` uses its memory (its own references counted by the caller)."""
    base = array.base
    while isinstance(base, np.ndarray):
        # The array a view was made from: the view's .base, ``base`` here and getrefcount's
        # argument refer to it when nothing else does. A part of it would keep the rest alive.
        if sys.getrefcount(base) != 3 or base.nbytes != array.nbytes:
            return False
        base = base.base
    if base is None:
        return True
    if not any(region.owner is base for region in _regions):
        return False
    # References to the owner of a region only this array uses: the region, array.base,
    # ``base`` here and getrefcount's argument.
    return sys.getrefcount(base) == 4


def cached_bytes():
    """(bytes in use, bytes free) of the arenas."""
    used = sum(r.size for r in _regions if not r.free())
    return used, sum(a.size for a in _arenas) - used


_generation = 0  # how many times ``release`` ran


def generation():
    """A number that changes whenever the scratch buffers are forgotten (``release``)."""
    return _generation


def release():
    """Forget every arena and scratch buffer, and the calling thread's own (arrays still in use stay
    valid; other threads' ``thread_scratch`` stays theirs)."""
    global _generation
    _generation += 1
    _arenas.clear()
    _regions.clear()
    _buffers.clear()
    _per_thread.__dict__.clear()
