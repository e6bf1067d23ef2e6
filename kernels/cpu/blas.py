"""Matrix products for the CPU kernels: NumPy's BLAS, one thread per call, on minicnn's threads.

    matmul(a, b, out)      out = a @ b, for (M, K) @ (K, N) or stacks of them (..., M, K) @ (..., K, N)
    product(a, b, out)     the same in one call on the calling thread, for kernels that hand out
                           tasks of their own (``run_tasks``: im2col's images, each thread copying
                           one image while another multiplies)

Why not just ``np.matmul``: NumPy's OpenBLAS runs a product on its own pool of threads, and after
each product those threads spin, waiting for more work, for up to 2^28 cycles. The Numba kernel
that runs next (im2col, pooling, LRN) then shares the two cores with them: AlexNet's conv2 im2col
took 105 ms right after a product against 70 ms alone. OpenBLAS's spin time can only be set by an
environment variable read when NumPy first loads it, so an earlier minicnn set it on import and
asked users to import minicnn before NumPy; in the usual order (NumPy first) the training step was
1.55x slower (issue 19). Here, instead:

- every product a kernel asks for runs with NumPy's BLAS set to **one thread** (through
  ``threadpoolctl``, at run time, whatever the import order), so OpenBLAS's own threads are never
  woken by minicnn and have nothing to spin after; the setting is restored when the product ends,
  so the user's own NumPy code keeps its BLAS threads;
- the parallelism comes from cutting the product into **pieces**, one per core, that minicnn's
  threads (as many as Numba's: ``numba.set_num_threads``) take in turn, each an ordinary single-threaded BLAS call
  on a slice: rows of the output, columns of the output, or a stretch of the shared dimension K
  whose partial products are added up in order afterwards. NumPy releases the GIL inside BLAS, so
  Python threads run the pieces truly in parallel, and an idle thread sleeps, it does not spin.

The cut is chosen from the shapes and the machine's core count (``plan``), never from the number
of threads in use, so on one machine a result has the same bits on 1 thread as on all of them,
and no longer depends on the BLAS's own thread count either (OpenBLAS's multi-threaded products
differ in their last bits between 1 and 2 threads).
"""
from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

# A piece is at least MIN_PIECE_FLOP of work (a call into BLAS and a hand-over between threads cost
# tens of microseconds) and MIN_PIECE_SIZE rows or columns (BLAS runs narrow slices slowly). Beyond
# that a product is cut into one piece per core of the machine (CORES, not the threads in use: see
# ``plan``): more pieces cost BLAS speed, each packing the operand it shares with the others once
# more (2048^3 on 2 threads: 2 pieces 320 GFLOP/s, 8 pieces 291, 32 pieces 212; NumPy's own two
# threads 329).
MIN_PIECE_FLOP = 32e6
MIN_PIECE_SIZE = 64
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
# A product of at most THIN_N columns cut by rows (the fc layers' forward, (O, I) @ (I, batch)) gets
# THIN_PIECES_PER_CORE pieces per core: each packs only the small (I, batch) operand again, and the
# smaller pieces ran faster (fc6's forward at batch 16: 11.3-12.7 ms in 8 pieces against 14.9-15.4
# in 2; at 64, 29.1 against 31.0; the whole step 0.98x the time at batches 16 and 64, about the
# 2-vCPU VM's noise).
THIN_N = 64
THIN_PIECES_PER_CORE = 4
# K is cut only when it is this many times larger than the output's larger side (dL/dw of a
# convolution: (C*kh*kw, K) outputs summed over tens of thousands of positions): cutting the
# output there would make every piece read the whole of the long operand again.
LONG_K = 8


def flop(m, k, n, complex_values=False):
    """The real floating-point operations of a (m, k) @ (k, n) product: a complex multiply-add is
    4 real multiplies and 4 adds (the Fourier path's products are complex; counted as real ones,
    its weight transform at conv2's shape stayed on one thread and took 10 ms, 5 in two pieces)."""
    return (8.0 if complex_values else 2.0) * m * k * n


def plan(m, k, n, cores=CORES, complex_values=False):
    """How a (m, k) @ (k, n) product is cut: (axis, pieces), axis "m", "n" or "k".

    From the shapes, the dtype's kind and the machine's core count only, never from the number of
    threads running (``numba.set_num_threads``), so that a result has the same bits at 1 thread as
    at 2."""
    work = flop(m, k, n, complex_values)
    wanted = min(cores, work // MIN_PIECE_FLOP)
    if k >= LONG_K * max(m, n):
        axis = "k"
    else:  # rows of the output where there are enough: each piece writes one contiguous block
        axis = "m" if m >= n or m // MIN_PIECE_SIZE >= wanted else "n"
    size = {"m": m, "n": n, "k": k}[axis]
    if axis == "m" and n <= THIN_N:  # a thin product: its shared operand is small to pack again
        wanted = min(cores * THIN_PIECES_PER_CORE, work // MIN_PIECE_FLOP)
    return axis, max(1, int(min(wanted, size // MIN_PIECE_SIZE)))


def ranges(size, pieces, align=16):
    """``pieces`` near-equal ranges covering [0, size), the inner edges rounded up to multiples of
    ``align`` (aligned slices for BLAS); a range that the rounding leaves empty is dropped."""
    inner = [min(size, -(-(size * i // pieces) // align) * align) for i in range(1, pieces)]
    edges = [0, *inner, size]
    return [(lo, hi) for lo, hi in zip(edges, edges[1:]) if hi > lo]


# ---- NumPy's BLAS, one thread while minicnn's products run --------------------------------------
class _BlasThreads:
    """Sets NumPy's BLAS libraries to one thread while any minicnn product runs, and back after.

    Nested and concurrent users are counted: the first to enter sets one thread, the last to leave
    restores the counts it found."""

    def __init__(self):
        self.lock = threading.Lock()
        self.users = 0
        self.saved = []
        self.libraries = None

    def _find(self):
        from threadpoolctl import ThreadpoolController

        blas = ThreadpoolController().select(user_api="blas").lib_controllers
        # NumPy's own BLAS where it can be told apart (wheels bundle it in numpy.libs); else every BLAS.
        own = [lib for lib in blas if "numpy" in lib.filepath]
        return own or blas

    def __enter__(self):
        with self.lock:
            if self.libraries is None:
                self.libraries = self._find()
            if self.users == 0:
                self.saved = [lib.get_num_threads() for lib in self.libraries]
                for lib in self.libraries:
                    lib.set_num_threads(1)
            self.users += 1
        return self

    def __exit__(self, *exc):
        with self.lock:
            self.users -= 1
            if self.users == 0:
                for lib, count in zip(self.libraries, self.saved):
                    lib.set_num_threads(count)
        return False


single_threaded_blas = _BlasThreads()
_pool = None
_pool_lock = threading.Lock()


def _workers():
    """The thread pool that runs pieces beside the calling thread (created on first use)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=max(1, numba.config.NUMBA_NUM_THREADS - 1),
                                       thread_name_prefix="minicnn-blas")
        return _pool


def run_tasks(tasks):
    """Run the callables ``tasks`` on up to ``numba.get_num_threads()`` threads (the caller's among
    them), each thread taking the next task when it is free; errors are raised here."""
    threads = min(len(tasks), numba.get_num_threads())
    if threads <= 1:
        for task in tasks:
            task()
        return
    queue = iter(tasks)  # next() on a list iterator is atomic under the GIL

    def runner():
        for task in queue:
            task()

    helpers = [_workers().submit(runner) for _ in range(threads - 1)]
    try:
        runner()
    finally:
        for helper in helpers:
            helper.result()


# ---- the product --------------------------------------------------------------------------
def matmul(a, b, out):
    """out[...] = a @ b for a (..., M, K), b (..., K, N), out (..., M, N) with the same leading axes
    (views with any strides NumPy's matmul takes); returns out.

    A stack of products (Winograd's 16 entries, the frequencies of the Fourier path) is cut along
    the stack where its members are each too small to cut, or where its first axis shares out
    evenly among the cores: each piece one batched ``np.matmul`` over a run of members, each
    member whole on one thread. (Cutting each member instead packs its shared operand once per piece: Winograd's
    products at conv3-5, batch 64, took 1.07-1.24x the time that way; 2-vCPU AMD EPYC.)"""
    if not a.shape[:-2] == b.shape[:-2] == out.shape[:-2]:
        raise ValueError(f"blas.matmul: leading axes differ: {a.shape} @ {b.shape} -> {out.shape}")
    m, k = a.shape[-2:]
    n = b.shape[-1]
    complex_values = np.iscomplexobj(out)
    axis, pieces = plan(m, k, n, complex_values=complex_values)
    tasks, partials = [], []
    if out.ndim > 2 and (pieces == 1 or out.shape[0] % CORES == 0):  # runs of the first leading axis
        first = out.shape[0]
        runs = int(min(CORES, first, math.prod(out.shape[:-2]) * flop(m, k, n, complex_values) // MIN_PIECE_FLOP))
        tasks = [_product(a[lo:hi], b[lo:hi], out[lo:hi]) for lo, hi in ranges(first, max(1, runs), 1)]
        members = []
    else:
        members = list(np.ndindex(out.shape[:-2]))  # [()] for one product
    for s in members:
        a_s, b_s, out_s = a[s], b[s], out[s]
        if axis == "k" and pieces > 1:
            # each piece's partial product in a slice of its own, added up in piece order afterwards
            k_ranges = ranges(k, pieces)
            parts = np.empty((len(k_ranges), m, n), dtype=out.dtype)
            partials.append((out_s, parts))
            tasks += [_product(a_s[:, lo:hi], b_s[lo:hi], parts[i]) for i, (lo, hi) in enumerate(k_ranges)]
        elif axis == "m":
            tasks += [_product(a_s[lo:hi], b_s, out_s[lo:hi]) for lo, hi in ranges(m, pieces)]
        else:
            tasks += [_product(a_s, b_s[:, lo:hi], out_s[:, lo:hi]) for lo, hi in ranges(n, pieces)]
    with single_threaded_blas:
        run_tasks(tasks)
    for total, parts in partials:
        np.copyto(total, parts[0])
        for part in parts[1:]:
            total += part
    return out


def product(a, b, out):
    """out[...] = a @ b in one BLAS call on the calling thread: for kernels that hand out tasks of
    their own through ``run_tasks`` (im2col's images), inside ``single_threaded_blas``."""
    return np.matmul(a, b, out=out)


def _product(a, b, out):
    return lambda: np.matmul(a, b, out=out)
