"""The device memory pool (kernels/cuda/memory.py), on blocks of make-believe device memory: what it hands
out again and when, its figures, and what it does when the device is full. Runs without a GPU: Numba's
device arrays and pointers are built around fake addresses, and nothing reaches the driver. (On a GPU,
every test in tests/cuda allocates through the pool; under the simulator the pool is not used.)"""
import gc
import weakref

import numpy as np
import pytest

pytest.importorskip("numba.cuda.cudadrv.driver")

from minicnn.kernels.cuda.memory import GRANULE, DevicePool  # noqa: E402


class FakeBlock:
    """What the pool needs of a Numba allocation: its context, address and size."""

    def __init__(self, address, size):
        self.context, self.device_pointer, self.size = object(), address, size


class FakeDevice:
    """Hands out blocks at increasing addresses until ``capacity`` bytes are out, then raises as a
    full device does; counts the requests, and holds only weak references (a block the pool drops
    is given back)."""

    def __init__(self, capacity=1 << 20):
        self.capacity, self.requests, self.blocks, self.next_address = capacity, 0, [], 1 << 32

    def outstanding(self):
        gc.collect()
        return sum(block().size for block in self.blocks if block() is not None)

    def __call__(self, size):
        self.requests += 1
        if self.outstanding() + size > self.capacity:
            raise MemoryError(f"fake device: out of memory asking for {size} bytes")
        block = FakeBlock(self.next_address, size)
        self.next_address += size
        self.blocks.append(weakref.ref(block))
        return block


def address(array):
    return array.gpu_data.device_pointer


def test_a_block_is_handed_out_again_once_its_array_is_gone():
    device = FakeDevice()
    pool = DevicePool(device)
    a = pool.device_array((1000,), np.float32)  # 4000 bytes -> one granule-rounded block of 4096
    first = address(a)
    assert pool.stats() == {"in_use_bytes": 4096, "peak_bytes": 4096, "reserved_bytes": 4096}
    b = pool.device_array((10, 100), np.float32)  # the same size while a lives: a second block
    assert address(b) != first and device.requests == 2
    del a
    assert pool.stats()["in_use_bytes"] == 4096
    c = pool.device_array((20, 50), np.float32)
    assert address(c) == first and device.requests == 2  # a's block, no new request
    assert c.shape == (20, 50) and c.strides == (200, 4) and c.dtype == np.float32
    d = pool.device_array((3,), np.float64)  # another size: a new block
    assert device.requests == 3 and pool.stats()["reserved_bytes"] == 2 * 4096 + GRANULE
    del b, c, d
    assert pool.stats() == {"in_use_bytes": 0, "peak_bytes": 2 * 4096 + GRANULE, "reserved_bytes": 2 * 4096 + GRANULE}


def test_a_view_or_a_reshape_keeps_the_block_from_being_handed_out():
    pool = DevicePool(FakeDevice())
    a = pool.device_array((4, 256), np.float32)
    flat, rows = a.reshape(1024), a.gpu_data.view(1024, 2048)  # what reshape and slicing hold on to
    first = address(a)
    del a
    b = pool.device_array((1024,), np.float32)
    assert address(b) != first  # the reshape and the view still read the first block
    del flat
    assert address(pool.device_array((1024,), np.float32)) != first  # the view alone still does
    del rows
    assert address(pool.device_array((1024,), np.float32)) == first
    assert address(pool.device_array((2, 2), np.float32)) != first  # (another size, another block)


def test_peak_and_its_reset():
    pool = DevicePool(FakeDevice())
    a = pool.device_array((GRANULE,), np.uint8)
    b = pool.device_array((3 * GRANULE,), np.uint8)
    del b
    assert pool.stats()["peak_bytes"] == 4 * GRANULE
    pool.reset_peak()
    assert pool.stats()["peak_bytes"] == GRANULE
    del a
    assert pool.stats() == {"in_use_bytes": 0, "peak_bytes": GRANULE, "reserved_bytes": 4 * GRANULE}


def test_empty_cache_gives_the_free_blocks_back_and_keeps_the_ones_in_use():
    device = FakeDevice()
    pool = DevicePool(device)
    kept = pool.device_array((GRANULE,), np.uint8)
    freed = pool.device_array((2 * GRANULE,), np.uint8)
    del freed
    assert device.outstanding() == 3 * GRANULE  # the pool keeps the free block
    assert pool.empty_cache() == 2 * GRANULE
    assert device.outstanding() == GRANULE and pool.stats()["reserved_bytes"] == GRANULE
    assert pool.empty_cache() == 0
    del kept


def test_a_full_device_empties_the_cache_and_tries_once_more():
    device = FakeDevice(capacity=4 * GRANULE)
    pool = DevicePool(device)
    big = pool.device_array((3 * GRANULE,), np.uint8)
    del big  # 3 granules free in the cache, of a size nobody asks for next
    small = pool.device_array((2 * GRANULE,), np.uint8)  # does not fit beside the cached block
    assert pool.stats() == {"in_use_bytes": 2 * GRANULE, "peak_bytes": 3 * GRANULE, "reserved_bytes": 2 * GRANULE}
    with pytest.raises(MemoryError, match="fake device: out of memory"):  # nothing left to free: the error stands
        pool.device_array((3 * GRANULE,), np.uint8)
    assert pool.stats()["in_use_bytes"] == 2 * GRANULE
    del small


def test_shapes_of_every_rank_and_the_disabled_pool():
    device = FakeDevice()
    pool = DevicePool(device)
    scalar = pool.device_array((), np.float32)
    assert scalar.shape == () and scalar.size == 1 and pool.stats()["in_use_bytes"] == GRANULE
    cube = pool.device_array((2, 3, 4), np.float64)
    assert cube.strides == (96, 32, 8) and cube.nbytes == 192
    del scalar, cube
    pool.enabled = False  # every request goes to Numba's own allocator (without a GPU: its error)
    from numba import cuda

    if cuda.is_available():
        assert pool.device_array((4,), np.float32).shape == (4,)
    else:
        with pytest.raises(cuda.CudaSupportError):
            pool.device_array((4,), np.float32)
    assert device.requests == 2 and pool.stats()["in_use_bytes"] == 0
