"""The CPU kernels' reused memory (kernels/cpu/workspace.py) and the thread settings."""
import os
import subprocess
import sys

import numpy as np

from minicnn.kernels.cpu import workspace

BIG = (512, 1024)  # 2 MiB of float32, over MIN_BYTES


def test_a_freed_block_is_handed_out_again():
    a = workspace.empty(BIG, np.float32)
    address = a.__array_interface__["data"][0]
    del a
    b = workspace.empty(BIG, np.float32)
    assert b.__array_interface__["data"][0] == address
    assert b.shape == BIG and b.dtype == np.float32 and b.flags.c_contiguous


def test_a_block_with_a_live_view_is_never_reused():
    a = workspace.empty(BIG, np.float32)
    a.fill(1)
    view = a[3:5].reshape(-1)  # a view keeps the block in use after ``a`` is gone
    del a
    b = workspace.empty(BIG, np.float32)
    b.fill(7)
    assert np.all(view == 1)
    assert not np.shares_memory(view, b)


def test_zeros_are_zero_after_reuse():
    a = workspace.empty(BIG, np.float32)
    a.fill(5)
    del a
    assert not workspace.zeros(BIG, np.float32).any()


def test_small_arrays_come_from_numpy():
    before = len(workspace._blocks)
    small = workspace.empty((10, 10), np.float64)
    assert small.base is None and len(workspace._blocks) == before


def test_free_blocks_are_capped(monkeypatch):
    """A request that allocates first drops the free blocks used longest ago, down to the cap."""
    monkeypatch.setattr(workspace, "MAX_FREE_BYTES", 3 << 20)
    for rows in range(256, 2048, 128):  # a new size every time, each freed before the next request
        array = workspace.empty((rows, 1024), np.float32)
        used, free = workspace.cached_bytes()
        assert free <= 3 << 20 and used >= array.nbytes
        del array


def test_import_sets_the_blas_thread_settings():
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_THREAD_TIMEOUT", "OMP_WAIT_POLICY")}
    code = "import minicnn, os; print(os.environ['OPENBLAS_THREAD_TIMEOUT'], os.environ['OMP_WAIT_POLICY'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["4", "PASSIVE"]
