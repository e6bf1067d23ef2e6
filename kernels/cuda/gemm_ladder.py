"""The GEMM ladder: one matrix product as a sequence of CUDA kernels, each one step better than the last.

    C[m, n] = sum_k A[m, k] * B[k, n]      A: M x K, B: K x N, C: M x N, float32, row-major

Every rung computes the same C (each is checked against NumPy under the simulator); what changes is
how threads share the work and where the operands wait between uses. An H100/H200 does ~60 FP32
TFLOP/s and moves ~3-5 TB/s: a multiply-add needs 8 bytes of A and B, so a kernel that reads its
operands from global memory once per multiply-add is bound to ~1-2% of peak; every rung after the
second is about reusing each loaded value more times.

1. ``naive``: one thread per output, threadIdx.x walking *down* a column of C. The 32 threads of a
   warp read 32 rows of A, K floats apart: 32 memory transactions per load where one would do.
2. ``coalesced``: threadIdx.x walks *along* a row of C instead. A warp now reads 32 neighbouring
   floats of B in one transaction and one float of A that all share (a broadcast), and writes 32
   neighbouring outputs. Still one global load per multiply-add: bound by L1/L2 bandwidth.
3. ``shared``: the block (32 x 32 threads) stages a 32 x 32 tile of A and of B in shared memory, then
   each thread does 32 multiply-adds out of it: each global load is used 32 times. Now shared memory
   is the limit: two shared loads per multiply-add.
4. ``blocked_1d``: each thread computes TM = 8 outputs of one column; a value of B read from shared
   memory is kept in a register and used 8 times (64 x 64 tiles, 8-deep slabs, 512 threads).
   One shared load per 8/9 multiply-adds of B, but still one of A per multiply-add.
5. ``blocked_2d``: each thread computes an 8 x 8 block of outputs from 8 values of A and 8 of B held
   in registers: 64 multiply-adds per 16 shared loads (128 x 128 tiles, 256 threads; the compiler
   reads B's 8 neighbours with two 128-bit loads). What limits it next: A's slab is stored row by
   row, so a thread's 8 values of A are a slab row apart (8 separate loads), and B's runs of 8 words
   put a quarter-warp's 128-bit loads 32 bytes apart (bank conflicts).
6. ``engine_interleaved``: the engine's own kernel (``gemm.py``, the product behind every
   convolution and linear layer on the GPU) with plain-matrix loaders, as it was before its last
   step: the A slab stored k-major as B's is, and each thread's outputs interleaved one by one (rows
   ty + i*16, columns tx + j*16): neighbouring threads read neighbouring shared words (no bank
   conflicts) and write neighbouring outputs; split-K fills the GPU when the output has few tiles.
   What limits it: one 32-bit shared load per value, 2 multiply-adds per load at 4 x 4 a thread.
7. ``engine``: each thread owns runs of 4 neighbouring rows and columns instead, a run per thread
   apart (rows ty*4 + 0..3, TPB_M*4 + ty*4 + 0..3, ...): one 128-bit shared load per run of A and
   of B, and the 8 threads a 128-bit load serves at a time read 128 neighbouring bytes (no bank
   conflicts). Built at its default tiles (64 x 64, 4 x 4 per thread) and, as ``engine_128``, at
   128 x 128 with 8 x 8 per thread: the measurement picks the engine's default.
8. ``engine_staged`` (and ``engine_128_staged``): two shared slabs; each thread issues the global
   loads of slab k+1 into registers before multiplying slab k, and stores them into the other slab
   after, so the loads' latency hides behind the arithmetic and each step needs one barrier, not two.

Every rung indexes with unsigned integers where Numba would otherwise add a negative-index
wrap-around to each access (gemm.py says why), so that each rung's step is its own idea and not
Numba's index arithmetic. ``benchmarks/gpu_sass.py`` shows, without a GPU, what the compiler makes
of each rung: registers, resident warps, and the instructions per step of its main loop.

Beyond (to be measured before it is built): 128-bit global loads into the slabs, warp tiling,
tiles chosen per shape by measurement (``benchmarks/gpu_tiles.py`` times the candidate tile shapes on
every AlexNet product). docs/gpu.md gives each rung's measured GFLOP/s and share of peak beside cuBLAS,
once a GPU has run it.

Under the simulator (every GPU thread a Python thread) each rung runs at small tiles, the same code.
"""
import math

import numpy as np
from numba import cuda, float32, uint32, uint64

from .gemm import SQUARE, load_cols, load_rows, make_gemm, store_plain
from .launch import SIMULATED, jit

# Tile sizes, real GPU / simulator.
WARP_SIDE = 4 if SIMULATED else 32  # rungs 1-3: blocks of WARP_SIDE x WARP_SIDE threads
ONE_D = (8, 8, 4, 2) if SIMULATED else (64, 64, 8, 8)  # BM, BN, BK, TM
TWO_D = (8, 8, 4, 2, 2) if SIMULATED else (128, 128, 8, 8, 8)  # BM, BN, BK, TM, TN
ENGINE_128 = (4, 4, 4, 4, 4) if SIMULATED else (16, 16, 8, 8, 8)  # TPB_M, TPB_N, REG_M, REG_N, TK


_MATRIX = np.zeros((2, 2), np.float32)


def _inspectable(run, kernel, fmas_per_step, threads, example_arguments=(_MATRIX,) * 3):
    """``run`` with what ``benchmarks/gpu_sass.py`` needs to show what the compiler made of the rung:
    its kernel, arguments of the kernel's types, the multiply-adds one thread does per step of the
    kernel's main (reduction) loop, and the threads per block."""
    run.kernel, run.example_arguments, run.fmas_per_step, run.threads = kernel, example_arguments, fmas_per_step, threads
    return run


def _one_thread_per_output(coalesced):
    """Rungs 1 and 2: the same loop; only which thread index walks along C's rows differs."""
    side = WARP_SIDE

    @jit
    def kernel(a, b, c):
        # (indices zero-extended, compared as int64, cast to unsigned where they index: see gemm.py)
        if coalesced:  # x walks along a row of C: a warp reads one line of B, writes one line of C
            row = uint32(cuda.blockIdx.y) * side + uint32(cuda.threadIdx.y)
            col = uint32(cuda.blockIdx.x) * side + uint32(cuda.threadIdx.x)
        else:  # x walks down a column: a warp reads 32 rows of A, K floats apart
            row = uint32(cuda.blockIdx.x) * side + uint32(cuda.threadIdx.x)
            col = uint32(cuda.blockIdx.y) * side + uint32(cuda.threadIdx.y)
        if row < c.shape[0] and col < c.shape[1]:
            acc = float32(0)
            for k in range(a.shape[1]):
                acc += a[uint64(row), uint64(k)] * b[uint64(k), uint64(col)]
            c[uint64(row), uint64(col)] = acc

    def run(a, b, c):
        rows, cols = math.ceil(c.shape[0] / side), math.ceil(c.shape[1] / side)
        kernel[(cols, rows) if coalesced else (rows, cols), (side, side)](a, b, c)

    return _inspectable(run, kernel, fmas_per_step=1, threads=side * side)


def naive():
    return _one_thread_per_output(coalesced=False)


def coalesced():
    return _one_thread_per_output(coalesced=True)


def shared():
    side = WARP_SIDE

    @jit
    def kernel(a, b, c):
        m_size, k_size, n_size = a.shape[0], a.shape[1], b.shape[1]
        tx, ty = uint32(cuda.threadIdx.x), uint32(cuda.threadIdx.y)
        row = uint32(cuda.blockIdx.y) * side + ty
        col = uint32(cuda.blockIdx.x) * side + tx
        a_tile = cuda.shared.array((side, side), float32)
        b_tile = cuda.shared.array((side, side), float32)
        acc = float32(0)
        for k0 in range(0, k_size, side):
            a_tile[ty, tx] = a[uint64(row), uint64(k0 + tx)] if row < m_size and k0 + tx < k_size else float32(0)
            b_tile[ty, tx] = b[uint64(k0 + ty), uint64(col)] if k0 + ty < k_size and col < n_size else float32(0)
            cuda.syncthreads()
            for kk in range(side):
                acc += a_tile[ty, uint32(kk)] * b_tile[uint32(kk), tx]
            cuda.syncthreads()
        if row < m_size and col < n_size:
            c[row, col] = acc

    def run(a, b, c):
        kernel[(math.ceil(c.shape[1] / side), math.ceil(c.shape[0] / side)), (side, side)](a, b, c)

    return _inspectable(run, kernel, fmas_per_step=side, threads=side * side)


@cuda.jit(device=True, inline=True)
def _load_slabs(a, b, a_tile, b_tile, row0, col0, k0, t, threads, bm, bn, bk):
    """Rungs 4 and 5: the block's threads copy A[row0:+bm, k0:+bk] and B[k0:+bk, col0:+bn] into
    shared memory, each taking every threads-th element (0 outside the matrices)."""
    m_size, k_size, n_size = a.shape[0], a.shape[1], b.shape[1]
    for s in range(-(-bm * bk // threads)):  # a fixed count, so the compiler unrolls it
        e = uint32(t + s * threads)
        r, q = uint32(e // bk), uint32(e % bk)
        inside = row0 + r < m_size and k0 + q < k_size
        if e < bm * bk:
            a_tile[r, q] = a[uint64(row0 + r), uint64(k0 + q)] if inside else float32(0)
    for s in range(-(-bk * bn // threads)):
        e = uint32(t + s * threads)
        q, col = uint32(e // bn), uint32(e % bn)
        inside = k0 + q < k_size and col0 + col < n_size
        if e < bk * bn:
            b_tile[q, col] = b[uint64(k0 + q), uint64(col0 + col)] if inside else float32(0)


def blocked_1d():
    BM, BN, BK, TM = ONE_D  # noqa: N806  (the kernel's compile-time constants)
    threads = BM * BN // TM

    @jit
    def kernel(a, b, c):
        m_size, k_size, n_size = a.shape[0], a.shape[1], b.shape[1]
        t = uint32(cuda.threadIdx.x)
        row0, col0 = uint32(cuda.blockIdx.y) * BM, uint32(cuda.blockIdx.x) * BN
        thread_row, thread_col = uint32(t // BN), uint32(t % BN)  # rows thread_row*TM .. +TM of column thread_col
        a_tile = cuda.shared.array((BM, BK), float32)
        b_tile = cuda.shared.array((BK, BN), float32)
        acc = cuda.local.array(TM, float32)
        for i in range(TM):
            acc[i] = 0
        for k0 in range(0, k_size, BK):
            _load_slabs(a, b, a_tile, b_tile, row0, col0, k0, t, threads, BM, BN, BK)
            cuda.syncthreads()
            for q in range(BK):
                b_value = b_tile[uint32(q), thread_col]  # in a register, used TM times
                for i in range(TM):
                    acc[i] += a_tile[uint32(thread_row * TM + i), uint32(q)] * b_value
            cuda.syncthreads()
        col = col0 + thread_col
        for i in range(TM):
            row = row0 + thread_row * TM + i
            if row < m_size and col < n_size:
                c[row, col] = acc[i]

    def run(a, b, c):
        kernel[(math.ceil(c.shape[1] / BN), math.ceil(c.shape[0] / BM)), threads](a, b, c)

    return _inspectable(run, kernel, fmas_per_step=BK * TM, threads=threads)


def blocked_2d():
    BM, BN, BK, TM, TN = TWO_D  # noqa: N806
    threads = (BM // TM) * (BN // TN)

    @jit
    def kernel(a, b, c):
        m_size, k_size, n_size = a.shape[0], a.shape[1], b.shape[1]
        t = uint32(cuda.threadIdx.x)
        row0, col0 = uint32(cuda.blockIdx.y) * BM, uint32(cuda.blockIdx.x) * BN
        thread_row, thread_col = uint32(t // (BN // TN)), uint32(t % (BN // TN))  # a TM x TN block of C
        a_tile = cuda.shared.array((BM, BK), float32)
        b_tile = cuda.shared.array((BK, BN), float32)
        a_regs = cuda.local.array(TM, float32)
        b_regs = cuda.local.array(TN, float32)
        acc = cuda.local.array((TM, TN), float32)
        for i in range(TM):
            for j in range(TN):
                acc[i, j] = 0
        for k0 in range(0, k_size, BK):
            _load_slabs(a, b, a_tile, b_tile, row0, col0, k0, t, threads, BM, BN, BK)
            cuda.syncthreads()
            for q in range(BK):
                for i in range(TM):
                    a_regs[i] = a_tile[uint32(thread_row * TM + i), uint32(q)]
                for j in range(TN):
                    b_regs[j] = b_tile[uint32(q), uint32(thread_col * TN + j)]
                for i in range(TM):  # TM x TN multiply-adds from TM + TN shared loads
                    for j in range(TN):
                        acc[i, j] += a_regs[i] * b_regs[j]
            cuda.syncthreads()
        for i in range(TM):
            row = row0 + thread_row * TM + i
            for j in range(TN):
                col = col0 + thread_col * TN + j
                if row < m_size and col < n_size:
                    c[row, col] = acc[i, j]

    def run(a, b, c):
        kernel[(math.ceil(c.shape[1] / BN), math.ceil(c.shape[0] / BM)), threads](a, b, c)

    return _inspectable(run, kernel, fmas_per_step=BK * TM * TN, threads=threads)


def engine(tiles=SQUARE, staged=False, runs=True):
    product = make_gemm(load_rows, load_cols, store_plain, tiles, staged, runs)

    def run(a, b, c):
        product((a.shape[0], b.shape[1], a.shape[1]), 1, a, b, c, c)

    tpb_m, tpb_n, reg_m, reg_n, tk = tiles
    partial = np.zeros((1, 1, 1), np.float32)  # the kernel's own arguments: geom, a, b, out, bias, split-K's
    return _inspectable(run, product.compiled(np.float32, tiles)[0], fmas_per_step=reg_m * reg_n * tk,
                        threads=tpb_m * tpb_n, example_arguments=((0, 0, 0),) + (_MATRIX,) * 4 + (partial, 1, 1))


# name -> (one line on what the rung changes, a function returning its launcher run(a, b, c))
RUNGS = {
    "naive": ("one thread per output; a warp reads 32 rows of A (uncoalesced)", naive),
    "coalesced": ("a warp reads one line of B and writes one line of C", coalesced),
    "shared": ("32 x 32 tiles of A and B staged in shared memory: each load used 32 times", shared),
    "blocked_1d": ("8 outputs per thread down a column: a B value in a register used 8 times", blocked_1d),
    "blocked_2d": ("8 x 8 outputs per thread from 8 + 8 register values", blocked_2d),
    "engine_interleaved": ("gemm.py, 64 x 64, its outputs interleaved one by one (rows ty + i*16): conflict-free "
                           "32-bit shared loads, k-major slabs, split-K", lambda: engine(runs=False)),
    "engine": ("gemm.py, the engine's kernel: each thread's outputs in runs of 4, read by 128-bit shared loads; "
               "64 x 64 tiles", engine),
    "engine_128": ("gemm.py at 128 x 128 tiles, 8 x 8 outputs per thread, 8-deep slabs",
                   lambda: engine(ENGINE_128)),
    "engine_staged": ("gemm.py, 64 x 64, two shared slabs: the next slab's loads in flight while this one is "
                      "multiplied, one barrier per step", lambda: engine(staged=True)),
    "engine_128_staged": ("the same at 128 x 128 tiles", lambda: engine(ENGINE_128, staged=True)),
}
