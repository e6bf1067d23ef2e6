"""The CPU kernels' reused memory (kernels/cpu/workspace.py) and the thread settings."""
import os
import subprocess
import sys

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

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
    before = len(workspace._regions)
    small = workspace.empty((10, 10), np.float64)
    assert small.base is None and len(workspace._regions) == before


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(1, 40), st.integers(0, 1000)), min_size=1, max_size=40))
def test_live_arrays_never_overlap_and_keep_their_values(operations):
    """Random requests (1-40 MiB, some over the arena size) and frees: every live array keeps
    what was written into it, no two live arrays share memory, and freed memory is reused."""
    saved = workspace.ARENA_BYTES
    workspace.ARENA_BYTES = 32 << 20
    workspace.release()  # count only this example's arrays
    try:
        live = []
        for allocate, mib, pick in operations:
            if allocate or not live:
                array = workspace.empty((mib << 18,), np.float32)
                array.fill(len(live) + 0.5)
                live.append((array, len(live) + 0.5))
            else:
                live.pop(pick % len(live))
            array = None
            for array, value in live:
                assert array[0] == value and array[-1] == value
            array = None  # the loop variable must not keep a popped array in use
            for i in range(len(live)):
                for j in range(i + 1, len(live)):
                    assert not np.shares_memory(live[i][0], live[j][0])
        used, free = workspace.cached_bytes()
        assert used == sum(-(-a.nbytes // 4096) * 4096 for a, _ in live)
    finally:
        workspace.ARENA_BYTES = saved


def test_arenas_nobody_uses_are_given_back_when_the_cache_grows():
    workspace.release()
    first = workspace.empty((1 << 20,), np.float32)  # 4 MiB, in a fresh arena
    del first
    big = workspace.empty((workspace.ARENA_BYTES // 4 + 1,), np.float32)  # fits no arena: a new one
    assert len(workspace._arenas) == 1 and big.nbytes > workspace.ARENA_BYTES


def test_import_leaves_the_environment_as_it_found_it():
    """minicnn starts Numba's pool with OpenMP's passive wait policy and removes the variable again,
    so libraries loaded later (PyTorch's OpenMP) keep their defaults; a policy the user set stays."""
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_THREAD_TIMEOUT", "OMP_WAIT_POLICY")}
    code = ("import numpy, os; before = dict(os.environ); import minicnn, numba; "
            "print(dict(os.environ) == before, numba.threading_layer())")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, timeout=300)
    assert out.stdout.split()[0] == "True"
    code = "import minicnn, os; print(os.environ['OMP_WAIT_POLICY'])"
    out = subprocess.run([sys.executable, "-c", code], env={**env, "OMP_WAIT_POLICY": "ACTIVE"},
                         capture_output=True, text=True, check=True, timeout=300)
    assert out.stdout.strip() == "ACTIVE"


def test_take_keeps_a_whole_view_that_nothing_else_uses_and_copies_the_rest():
    def kept(store, key):  # whether take hands back the stored array's own memory
        address = store[key].ctypes.data
        taken = workspace.take(store, key)
        assert key not in store
        return taken.ctypes.data == address

    arena_array = workspace.empty((64, 10_000), np.float32)  # 2.5 MB: from the arenas
    assert not kept({"view": arena_array.reshape(8, 8, 10_000)}, "view")  # arena_array still uses the memory
    store = {"view": arena_array.reshape(8, 8, 10_000)}
    del arena_array
    assert kept(store, "view")
    assert kept({"numpy_view": np.empty((64, 10_000), np.float32).reshape(8, 8, 10_000)}, "numpy_view")
    assert not kept({"part": np.empty((64, 10_000), np.float32)[:, :10]}, "part")  # would keep the rest alive
    callers = np.ones((2, 3))
    assert not kept({"view": callers.reshape(3, 2).reshape(2, 3)}, "view")
    store = {"own": np.ones((2, 3))}
    held = store["own"]
    assert not kept(store, "own") and held is not None  # another variable holds it

def test_thread_scratch_is_each_threads_own_and_reused_by_it():
    import threading

    def address(a):
        return a.__array_interface__["data"][0]

    mine = address(workspace.thread_scratch("test.own", (64, 64), np.float32))
    assert address(workspace.thread_scratch("test.own", (32, 16), np.float64)) == mine  # reused, any dtype
    theirs = []
    thread = threading.Thread(target=lambda: theirs.append(address(workspace.thread_scratch("test.own", (64, 64),
                                                                                             np.float32))))
    thread.start()
    thread.join()
    assert theirs and theirs[0] != mine
    assert address(workspace.thread_scratch("test.own", (64, 64), np.float32)) == mine
    assert address(workspace.scratch("test.own", (64, 64), np.float32)) != mine  # the shared buffers are apart
