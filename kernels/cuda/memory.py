"""Device memory for the GPU kernels: blocks kept and handed out again, as PyTorch's caching allocator does.

Why: every op's result is a new device array, and Numba's own allocator asks the driver for each
one (``cuMemAlloc``, tens to hundreds of microseconds for the tens of megabytes AlexNet's layers
produce) and gives it back in batches of ten (``cuMemFree``, which waits for the whole GPU to finish
its queued work). A training step allocates the same sizes every time, so after the first step
every request finds a block of its size that an earlier array no longer needs, and the driver is
never called.

How: ``DevicePool.allocate(nbytes)`` rounds the size up to GRANULE bytes and takes a free block of
that size, or asks Numba's allocator for a new one. It returns a pointer whose lifetime Numba
counts the way it counts its own allocations: every array and every view (a reshape, a slice)
holds a reference, and when the last one is gone the block goes back on the free list of its size
(not to the driver). ``empty_cache()`` gives the free blocks back to the driver; a request the GPU
has no memory left for empties the cache and tries once more.

Reuse is safe in stream order: minicnn launches every kernel and copy on the default stream, so a
block handed out again is written by work queued after everything that used it before. (Code that
queues work on other streams must not use these arrays there.) One GPU per process: the blocks are
the current device's, as minicnn's "cuda" is one device.

``memory_stats()``: bytes in use (handed out and not yet returned), their peak since the last
``reset_peak()``, and bytes reserved (in use plus free in the cache): PyTorch's
``memory_allocated``, ``max_memory_allocated`` and ``memory_reserved``. Under the CUDA simulator
(``launch.SIMULATED``) device arrays are NumPy arrays in disguise and the pool is not used.
"""
from __future__ import annotations

import functools
import itertools
import threading

import numpy as np

GRANULE = 512  # bytes: sizes are rounded up to this (the driver's own alignment is 256)


class DevicePool:
    """Free device blocks by size, and the ones handed out; ``allocate`` and ``empty_cache`` (the module's
    docstring). ``new_block(size)`` makes a block when none is free: by default Numba's allocation in
    the current context (tests pass their own). ``enabled = False`` sends every request to Numba's
    allocator, as before the pool (the GPU benchmark's comparison)."""

    def __init__(self, new_block=None):
        self._new_block = new_block or _numba_block
        self._free = {}  # size -> [blocks]
        self._handed_out = {}  # key -> (the pointer handed out, its block)
        self._keys = itertools.count()
        self._lock = threading.RLock()  # re-entrant: a garbage collection inside a locked section may return a block
        self.enabled = True
        self.in_use = self.peak = self.reserved = 0
        self.blocks_made = 0  # requests that reached the driver (through Numba), since the start

    def allocate(self, nbytes):
        """A device pointer to at least ``nbytes`` bytes (``nbytes`` > 0), Numba's kind of owned
        pointer: give it to a ``DeviceNDArray`` as its ``gpu_data``."""
        from numba.cuda.cudadrv.driver import AutoFreePointer

        size = -(-nbytes // GRANULE) * GRANULE
        with self._lock:
            blocks = self._free.get(size)
            block = blocks.pop() if blocks else None
        if block is None:
            block = self._fresh(size)
        key = next(self._keys)
        # Numba's own pattern (NumbaCUDAMemoryManager.memalloc): a pointer freed when its reference count,
        # one per array and view holding it, drops to 0, kept alive here until then
        pointer = AutoFreePointer(block.context, block.device_pointer, size, finalizer=functools.partial(self._return, key))
        with self._lock:
            self._handed_out[key] = (pointer, block)
            self.in_use += size
            self.peak = max(self.peak, self.in_use)
        return pointer.own()

    def _fresh(self, size):
        """A new block from the driver; when that fails (no memory left) and the cache holds free
        blocks, the cache is emptied and the request made once more (Numba's allocator then frees
        what it had deferred, the emptied blocks among it, before it retries)."""
        try:
            block = self._new_block(size)
        except Exception:
            if not self.empty_cache():
                raise
            block = self._new_block(size)
        with self._lock:
            self.reserved += size
            self.blocks_made += 1
        return block

    def _return(self, key):
        with self._lock:
            _, block = self._handed_out.pop(key)
            self._free.setdefault(block.size, []).append(block)
            self.in_use -= block.size

    def empty_cache(self):
        """Gives the free blocks back to the driver (through Numba); returns how many bytes."""
        with self._lock:
            freed = sum(size * len(blocks) for size, blocks in self._free.items())
            self._free.clear()
            self.reserved -= freed
        return freed

    def reset_peak(self):
        with self._lock:
            self.peak = self.in_use

    def stats(self):
        with self._lock:
            return {"in_use_bytes": self.in_use, "peak_bytes": self.peak, "reserved_bytes": self.reserved}

    def device_array(self, shape, dtype):
        """A new C-contiguous device array of ``shape`` and ``dtype`` on a pooled block."""
        from numba import cuda
        from numba.cuda.cudadrv.devicearray import DeviceNDArray

        dtype = np.dtype(dtype)
        shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(map(int, shape))
        strides, nbytes = [], dtype.itemsize  # C order, in plain Python: np.prod here cost 20 us a call
        for extent in reversed(shape):
            strides.append(nbytes)
            nbytes *= extent
        if not self.enabled or nbytes == 0:
            return cuda.device_array(shape, dtype=dtype)
        return DeviceNDArray(shape, tuple(reversed(strides)), dtype, gpu_data=self.allocate(nbytes))


def _numba_block(size):
    from numba import cuda

    return cuda.current_context().memalloc(size)


pool = DevicePool()
