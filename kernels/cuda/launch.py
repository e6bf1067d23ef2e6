"""Launch configuration shared by the CUDA kernels, the counted ``jit`` every kernel is compiled
with, small array helpers, and the helpers of the kernels that index in 32 bits.

``SIMULATED`` is true under Numba's CUDA simulator, where every GPU thread is a
Python thread: there the GEMM tiles shrink from 64x64 to 8x8 so tests on small
shapes finish in seconds. The kernels' code is the same either way.
"""
import math

import numpy as np
from numba import config, cuda, uint32

from . import memory

SIMULATED = bool(config.ENABLE_CUDASIM)

# Kernel launches since the process started, counted by ``jit`` (``minicnn bench`` reports the
# launches of a training step: each costs the host tens of microseconds, whatever the kernel does).
launches = 0
# When set, called as recorder(kernel, args) at every launch (``minicnn.apps.sass`` records which
# kernels a workload launches, with what argument types, to compile each one for a real GPU).
recorder = None


class jit:  # noqa: N801  (used as a decorator, in cuda.jit's place)
    """``cuda.jit`` for a kernel (not a device function), with each launch counted in ``launches``.
    ``max_registers``: a cap on the registers per thread, handed to the assembler (``gemm.make_gemm``
    says where one pays); the simulator has no registers and takes no cap."""

    def __init__(self, function, max_registers=None):
        options = {} if SIMULATED or max_registers is None else {"max_registers": max_registers}
        self.dispatcher = cuda.jit(function, **options)
        self.max_registers = max_registers
        self.__doc__ = function.__doc__
        self.name = f"{function.__module__}:{function.__qualname__}"

    def __getitem__(self, launch_config):
        configured = self.dispatcher[launch_config]

        def launch(*args):
            global launches
            launches += 1
            if recorder is not None:
                recorder(self, args)
            configured(*args)

        return launch

THREADS = 8 if SIMULATED else 256  # threads per block of the 1-D element-wise kernels
MAX_BLOCKS = 4 if SIMULATED else 65535  # the simulator runs each thread as a Python thread


def grid_1d(n):
    """(blocks, threads) for a grid-stride loop over n elements."""
    return max(1, min(MAX_BLOCKS, math.ceil(n / THREADS))), THREADS


WARPS_PER_MULTIPROCESSOR = 64  # resident warps per SM on the GPUs minicnn measures (compute capability 8.0-9.0)


def resident_blocks(threads):
    """How many blocks of ``threads`` threads the GPU keeps resident at once (all its SMs full; under
    the simulator, MAX_BLOCKS): a grid-stride loop gains nothing from more."""
    if SIMULATED:
        return MAX_BLOCKS
    return cuda.get_current_device().MULTIPROCESSOR_COUNT * max(1, WARPS_PER_MULTIPROCESSOR * 32 // threads)


# The window kernels (pooling, LRN) and batch norm's element-wise passes index with 32-bit unsigned
# integers (``split_index``, ``clamped_difference``): with Numba's int64, every index takes a fix-up
# for negative values and every division by a runtime size a 64-bit division, which the GPU does in
# software (docs/gpu.md counts both). One launch covers at most MAX_INDEXED elements, which leaves
# room below 2^32 for the grid stride; larger arrays go in several launches, cut along their first
# axis (``chunked_launches``).
MAX_INDEXED = 2**31


def chunked_launches(length, per_item, threads_per_item, op):
    """(lo, hi, blocks, threads) of each launch over items [lo, hi) of a first axis of ``length`` items:
    as few ranges as keep each range's elements (``per_item`` an item, the larger of what a kernel
    reads and writes) under MAX_INDEXED, one but for arrays of billions of elements; and the 1-D grid
    for ``threads_per_item`` threads an item."""
    if per_item > MAX_INDEXED:
        raise ValueError(f"{op}: one item of {per_item} elements is more than the {MAX_INDEXED} a GPU launch indexes")
    step = MAX_INDEXED // max(per_item, 1)
    return [(lo, min(length, lo + step), *grid_1d((min(length, lo + step) - lo) * threads_per_item))
            for lo in range(0, length, step)]


def image_launches(x, op):
    """``chunked_launches`` for an element-wise pass over x (N, C, ...), a thread an element: (lo, hi,
    blocks, threads, C, L) of each launch over images [lo, hi), C and L (the elements of one channel
    of one image) as the uint32 the kernels split their index with (LRN, batch norm)."""
    n, c = x.shape[0], x.shape[1]
    per_image = x.size // n
    return [(lo, hi, blocks, threads, np.uint32(c), np.uint32(per_image // c))
            for lo, hi, blocks, threads in chunked_launches(n, per_image, per_image, op)]


def flat(a):
    """The C-contiguous device array ``a`` as one axis (a view)."""
    return a.reshape(a.size)


@cuda.jit(device=True, inline=True)
def split_index(e, rows, cols):
    """(plane, row, column) of flat index e in planes of rows x cols, all uint32: two inline 32-bit
    divisions."""
    rest = uint32(e // cols)
    plane = uint32(rest // rows)
    return plane, uint32(rest - plane * rows), uint32(e - rest * cols)


@cuda.jit(device=True, inline=True)
def clamped_difference(a, b):
    """max(a - b, 0) for unsigned a and b, never negative on the way."""
    return uint32(a - b) if a > b else uint32(0)


def empty(shape, dtype):
    """A new device array, on a block of the memory pool (``memory.py``) on a GPU."""
    if SIMULATED:
        return cuda.device_array(shape, dtype=dtype)
    return memory.pool.device_array(shape, dtype)


def empty_like(a):
    return empty(a.shape, a.dtype)


def upload(host):
    """A new device array holding the C-contiguous host array ``host``, on a block of the pool."""
    out = empty(host.shape, host.dtype)
    out.copy_to_device(host)
    return out


_KEPT = {}  # key -> what ``build()`` made: index tables on the device, per shape; a network has a handful
_MAX_KEPT = 64


def kept(key, build):
    """What ``build()`` returns for ``key`` (a hashable description of a shape), built at the first use
    and kept, so that tables derived from a shape reach the device once, not at every pass (the oldest
    goes when more than _MAX_KEPT are kept)."""
    if key not in _KEPT:
        if len(_KEPT) >= _MAX_KEPT:
            _KEPT.pop(next(iter(_KEPT)))
        _KEPT[key] = build()
    return _KEPT[key]


@jit
def _fill(a, value):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, a.size, stride):
        a[i] = value


def full(shape, value, dtype):
    a = empty(shape, dtype)
    if a.size:
        blocks, threads = grid_1d(a.size)
        _fill[blocks, threads](flat(a), np.dtype(dtype).type(value))
    return a
