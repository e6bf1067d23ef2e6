"""A tiled matrix product for the GPU, the engine of convolution and linear layers.

    C[m, n] = sum_k A[m, k] * B[k, n]          (one product per group g = blockIdx.z)

A, B and C are never stored as matrices: ``load_a(geom, a, g, at_m, k, tile, s, t)``
and ``load_b(geom, b, g, k, at_n, tile, s, t)`` write A[m, k] or B[k, n] (0 outside
the matrix) into ``tile[s, t]`` (the registers that stage a slab), and
``store(geom, out, bias, g, m, n, value)`` writes C[m, n]: device functions that read and write the real tensors (a convolution's B is the
im2col matrix, computed on the fly from the input: "implicit GEMM"). ``geom`` is a
tuple of ints that describes the shapes; geom[GEMM_M], geom[GEMM_N], geom[GEMM_K] are M, N, K.
``at_m = prepare_a(geom, a, g, m)`` and ``at_n = prepare_b(geom, b, g, n)`` are what the loaders
need of row m of A and column n of B, starting with whether it exists (by default a view of the
row, and the column's index; a convolution's prepare looks the column's image coordinates up in a
table): a thread loads the same row of A and the same column of B at every step of the reduction,
so that part of the address is computed once per thread, before the loop, and not at every step.

Threads to work: a block of TPB_M x TPB_N threads computes a TILE_M x TILE_N tile of C
(TILE_M = TPB_M * REG_M, TILE_N = TPB_N * REG_N): each thread accumulates REG_M x REG_N outputs
in registers, in runs of 4 neighbouring rows and columns (``run_length``) spaced a run per thread
apart: rows ty*4 + 0..3, then TPB_M*4 + ty*4 + 0..3, ... So a thread reads each run of a slab
row with one 128-bit shared load (``LDS.128``) where it took four, and the 8 threads that one such
load serves at a time read 128 neighbouring bytes: no bank conflicts. The reduction runs in steps of TK: the block
stages a TK x TILE_M slab of A and a TK x TILE_N slab of B in shared memory (every thread loads
its share into registers, ``fetch``, and stores them, ``put``), synchronises, and multiplies out
of shared memory (``multiply``): each value of B loaded from global memory is used TILE_M times,
each of A TILE_N times. The staged form (``staged=True``) keeps two slabs and fetches the next
while multiplying this one. Each output has exactly one owner, so no atomics: results are the
same run to run.

``tiles`` = (TPB_M, TPB_N, REG_M, REG_N, TK). On a GPU the square SQUARE = (16, 16, 4, 4, 16):
64x64 tiles, 256 threads, 2 x 16 x 64 floats = 8 KB of shared memory; under the simulator
(4, 4, 2, 2, 4). Tiles are chosen by shape: a product of at most THIN's TILE_M rows (conv1's
input gradient has 3, one per colour) takes THIN = (4, 64, 1, 4, 16), tiles of 4 x 256, where
64-row tiles would spend 61 of every 64 rows' work on nothing. ``make_gemm(..., tiles=...)``
builds the kernel with one tile shape only (the GEMM ladder, ``gemm_ladder.py``, measures
them). Kernels are built per dtype (float32, and float64 for gradient checks), since a shared
array's dtype must be known when the kernel compiles.

``row_of_a``, ``column_of_b``, ``load_rows``, ``load_cols`` and ``store_plain`` read and write plain
row-major matrices (A[m, k] = a[m, k], B[k, n] = b[k, n], C[m, n] = value): the linear layer's and the
ladder's.

Unsigned indices: Numba gives every signed index it cannot prove non-negative a wrap-around
(``i < 0 ? i + size : i``, a compare and a select in 64-bit arithmetic, which a GPU does in two
32-bit halves). An index is never negative here, so each one is cast to unsigned where it indexes
an array (``uint32`` for shared memory, ``uint64`` for global) and the thread and block indices
are zero-extended where they are read, which lets the compiler see that sums of them are not
negative either. The multiply's loop over the slab runs on an unsigned counter for the same
reason (at 64 x 64 tiles the compiler then unrolls it). The thread indices are also taken modulo
the block's sides, a no-op that tells the compiler they are small: only then does it see that a
run's four addresses are neighbours and emit one 128-bit load for them. Each of these choices,
the ``prepare`` step, the reduction indices written as a first one plus constants (``fetch``) and
the multiply unrolled by hand at 8 x 8 outputs a thread (``unrolled``) changes the machine code, not
the sums: the same bits. What each did to a thread's instructions per step (885 -> 388 at 64 x 64
tiles, 1785 -> 665 at 128 x 128, for sm_90) is counted without a GPU by ``benchmarks/gpu_sass.py``
and kept, step by step, in docs/gpu.md.
"""
import functools
import math

import numpy as np
from numba import cuda, from_dtype, uint32, uint64

from .launch import SIMULATED, empty, jit

GEMM_M, GEMM_N, GEMM_K = 0, 1, 2  # geom's first three entries: the product's M, N and K
# (TPB_M, TPB_N, REG_M, REG_N, TK)
SQUARE = (4, 4, 2, 2, 4) if SIMULATED else (16, 16, 4, 4, 16)
THIN = (2, 4, 1, 2, 4) if SIMULATED else (4, 64, 1, 4, 16)
# 32 x 128 tiles: not chosen by ``choose_tiles`` yet, a candidate that ``benchmarks/gpu_tiles.py`` times.
# For a product whose rows fill 64-row tiles badly (conv1's 96 kernels: a quarter of a 64 x 64 tile's
# work on nothing) they waste nothing, for more instructions a step than 64 x 64 tiles (docs/gpu.md).
WIDE = (2, 4, 2, 2, 4) if SIMULATED else (8, 32, 4, 4, 16)


@cuda.jit(device=True, inline=True)
def row_of_a(geom, a, g, r):
    """``make_gemm``'s default ``prepare_a``, for a row-major a of shape (M, K): whether row r of A
    exists, and that row of a, a view (so the loop's address is the view's start plus k; a row past
    the end views row 0, never read)."""
    exists = r < geom[GEMM_M]
    return exists, a[uint64(r if exists else 0)]


@cuda.jit(device=True, inline=True)
def load_from_line(geom, at, k, tile, s, t):
    """tile[s, t] = line[k] for the (exists, line) ``at`` that a prepare gave (a view of one row or
    column of the matrix), 0 past the matrix's end."""
    exists, line = at
    if exists and k < geom[GEMM_K]:
        tile[s, t] = line[uint64(k)]
    else:
        tile[s, t] = 0


@cuda.jit(device=True, inline=True)
def load_rows(geom, a, g, row, k, tile, s, t):
    """A[r, k] = a[r, k], for the (exists, row r of a) ``row`` that ``row_of_a`` gave."""
    load_from_line(geom, row, k, tile, s, t)


@cuda.jit(device=True, inline=True)
def column_of_b(geom, b, g, c):
    """``make_gemm``'s default ``prepare_b``, for a row-major b of shape (K, N): whether column c of
    B exists, and c. (Not a view: a strided column view makes the compiler emit generic loads, LD
    instead of LDG, since it no longer sees that they read global memory.)"""
    return c < geom[GEMM_N], uint64(c)


@cuda.jit(device=True, inline=True)
def load_from_column(geom, matrix, at, k, tile, s, t):
    """tile[s, t] = matrix[k, c] for the (exists, c) ``at`` that a prepare gave (column c of a
    row-major matrix of K rows), 0 past the matrix's end."""
    exists, c = at
    if exists and k < geom[GEMM_K]:
        tile[s, t] = matrix[uint64(k), c]
    else:
        tile[s, t] = 0


@cuda.jit(device=True, inline=True)
def load_cols(geom, b, g, k, column, tile, s, t):
    """B[k, c] = b[k, c], for the (exists, c) ``column`` that ``column_of_b`` gave."""
    load_from_column(geom, b, column, k, tile, s, t)


@cuda.jit(device=True, inline=True)
def store_plain(geom, out, bias, g, r, c, value):
    out[uint64(r), uint64(c)] = value


def choose_tiles(m_size, n_size, k_size):
    """The tiles a product of M x K by K x N gets when ``make_gemm`` was given none: THIN for a product
    of few rows, else SQUARE. (``benchmarks/gpu_tiles.py`` replaces it to time other tiles on the
    real layers.)"""
    return THIN if m_size <= THIN[0] * THIN[2] else SQUARE


def run_length(reg):
    """How many neighbouring rows (or columns) a thread owns in a run: 4 (one 128-bit load), else 2
    or 1, the largest that divides its REG_M (REG_N) outputs."""
    return 4 if reg % 4 == 0 else 2 if reg % 2 == 0 else 1


def unrolled(tiles):
    """How many rows of the slab one trip of the multiply's loop takes (unrolled by hand): 4 where a
    thread has 64 outputs or more, else 1. The compiler unrolls the loop whole where a thread's
    outputs are 4 x 4, but not at 8 x 8, where each of the slab's rows then costs its own loop
    control; unrolled by hand at 4 x 4, the compiler's own unrolling stopped (docs/gpu.md has the
    counts)."""
    _, _, reg_m, reg_n, tk = tiles
    return 4 if reg_m * reg_n >= 64 and tk % 4 == 0 else 1


def _target_blocks():
    """Enough blocks to fill the GPU twice over (the simulator: a handful, to test the split)."""
    if SIMULATED:
        return 8
    return 2 * cuda.get_current_device().MULTIPROCESSOR_COUNT


def make_gemm(load_a, load_b, store, tiles=None, staged=False, runs=True, prepare_a=row_of_a, prepare_b=column_of_b,
              max_registers=None):
    """A function ``run(geom, groups, a, b, out, bias)`` that launches the product; ``tiles``
    (TPB_M, TPB_N, REG_M, REG_N, TK), or None: SQUARE, or THIN for a product of few rows.
    ``staged``: two shared slabs, the next slab's loads into registers issued before this slab is
    multiplied, one barrier per step instead of two (the ladder's ``engine_staged``; not the
    default until a GPU measures it). ``runs=False``: each thread's outputs interleaved one by
    one (rows ty + i*TPB_M), read with 32-bit shared loads, the layout before the runs of 4 (the
    ladder's ``engine_interleaved``, to measure what the 128-bit loads buy).

    ``prepare_a``, ``prepare_b``: the loaders' per-row and per-column part (the module's docstring).

    ``max_registers``: {tiles: a cap on the registers per thread} for the tiles where the cap gives as
    many resident blocks or more at as few instructions per step or fewer (the convolutions at 64 x 64
    tiles: the forward 72 -> 64 registers, 3 -> 4 blocks of 256 threads per SM). Not a general rule:
    capped at 64, the plain product takes 64 registers where it chose 48, and 128 x 128 tiles spill
    (docs/gpu.md).

    Split-K: when the output has too few tiles to fill the GPU but the reduction is
    long (conv1's weight gradient: 96 x 363 outputs, each a sum of 48,400 products),
    the reduction is cut into ``splits`` slices, one block per tile and slice, each
    writing a partial sum; a second kernel adds the slices in a fixed order and
    stores. No atomics, so the result is the same on every run.
    """
    kernels = {}

    def build(dtype, tiles):
        nbtype = from_dtype(np.dtype(dtype))
        TPB_M, TPB_N, REG_M, REG_N, TK = tiles  # noqa: N806  (the kernels' compile-time constants)
        TILE_M, TILE_N, THREADS = TPB_M * REG_M, TPB_N * REG_N, TPB_M * TPB_N  # noqa: N806
        A_SHARE, B_SHARE = -(-TK * TILE_M // THREADS), -(-TK * TILE_N // THREADS)  # noqa: N806  (a slab per thread)
        RUN_M, RUN_N = (run_length(REG_M), run_length(REG_N)) if runs else (1, 1)  # noqa: N806
        UNROLL = unrolled(tiles)  # noqa: N806
        if THREADS % TILE_M or THREADS % TILE_N:
            raise ValueError(f"make_gemm: tiles {tiles} give {THREADS} threads, which must be a multiple of the "
                             f"tile's {TILE_M} rows and {TILE_N} columns (each thread loads one row of A and "
                             f"one column of B)")

        @cuda.jit(device=True, inline=True)
        def place(geom, splits, k_chunk):
            """This block's group g and reduction slice [k_begin, k_end) (blockIdx.z = g*splits +
            slice), this thread's indices, and the tile's first row and column."""
            z = cuda.blockIdx.z
            g, k_begin = z // splits, (z % splits) * k_chunk
            k_end = min(geom[GEMM_K], k_begin + k_chunk)
            tx, ty = uint32(cuda.threadIdx.x) % TPB_N, uint32(cuda.threadIdx.y) % TPB_M  # (% : see the docstring)
            row0, col0 = uint32(cuda.blockIdx.y) * TILE_M, uint32(cuda.blockIdx.x) * TILE_N
            return z, g, k_begin, k_end, tx, ty, ty * TPB_N + tx, row0, col0

        @cuda.jit(device=True, inline=True)
        def tile_row(i, ty):
            """The tile row of this thread's i-th row of outputs: runs of RUN_M rows, TPB_M runs apart."""
            return uint32((i // RUN_M) * (TPB_M * RUN_M) + ty * RUN_M + i % RUN_M)

        @cuda.jit(device=True, inline=True)
        def tile_col(j, tx):
            return uint32((j // RUN_N) * (TPB_N * RUN_N) + tx * RUN_N + j % RUN_N)

        @cuda.jit(device=True, inline=True)
        def zero(acc):
            for i in range(REG_M):
                for j in range(REG_N):
                    acc[i, j] = 0

        @cuda.jit(device=True, inline=True)
        def fetch(geom, a, b, g, k0, tid, a_at, b_at, a_share, b_share):
            """This thread's share of the slab at reduction step k0, into registers: the elements
            tid, tid + THREADS, ... of A's TK x TILE_M slab and of B's TK x TILE_N slab. THREADS is a
            multiple of TILE_M and TILE_N, so they all lie in one row of A (column of B), the one
            ``a_at`` (``b_at``) prepared, and in rows tid // TILE_M, + THREADS // TILE_M, ... of the slab.
            Their reduction indices are written as this thread's first one plus a constant, which is what
            they are: then the compiler computes one address per operand and step and reaches the
            others by constant offsets, where from ``k0 + e // TILE_M`` it worked each one out whole."""
            ka = k0 + tid // TILE_M  # = k0 + e // TILE_M at s = 0; each s adds THREADS // TILE_M
            kb = k0 + tid // TILE_N
            for s in range(A_SHARE):
                e = uint32(tid + s * THREADS)
                if e < TK * TILE_M:
                    load_a(geom, a, g, a_at, ka + s * (THREADS // TILE_M), a_share, 0, s)
            for s in range(B_SHARE):
                e = uint32(tid + s * THREADS)
                if e < TK * TILE_N:
                    load_b(geom, b, g, kb + s * (THREADS // TILE_N), b_at, b_share, 0, s)

        @cuda.jit(device=True, inline=True)
        def put(tid, a_share, b_share, a_slab, b_slab):
            """The registers ``fetch`` filled, into the shared slabs."""
            for s in range(A_SHARE):
                e = uint32(tid + s * THREADS)
                if e < TK * TILE_M:
                    a_slab[uint32(e // TILE_M), uint32(e % TILE_M)] = a_share[0, s]
            for s in range(B_SHARE):
                e = uint32(tid + s * THREADS)
                if e < TK * TILE_N:
                    b_slab[uint32(e // TILE_N), uint32(e % TILE_N)] = b_share[0, s]

        @cuda.jit(device=True, inline=True)
        def multiply_row(a_slab, b_slab, acc, ty, tx, kk):
            """acc += the outer product of the slabs' row kk: this thread's values of A and of B."""
            for i in range(REG_M):
                av = a_slab[kk, tile_row(i, ty)]
                for j in range(REG_N):
                    acc[i, j] += av * b_slab[kk, tile_col(j, tx)]

        @cuda.jit(device=True, inline=True)
        def multiply(a_slab, b_slab, acc, ty, tx):
            kk = uint32(0)
            while kk < TK:  # (not range(TK): its signed counter kept the wrap-around and the loop rolled)
                multiply_row(a_slab, b_slab, acc, ty, tx, kk)
                if UNROLL == 4:  # a compile-time constant: the branch is folded away
                    multiply_row(a_slab, b_slab, acc, ty, tx, kk + uint32(1))
                    multiply_row(a_slab, b_slab, acc, ty, tx, kk + uint32(2))
                    multiply_row(a_slab, b_slab, acc, ty, tx, kk + uint32(3))
                kk += uint32(UNROLL)

        @cuda.jit(device=True, inline=True)
        def write(geom, out, bias, partial, g, z, splits, acc, row0, col0, ty, tx):
            for i in range(REG_M):
                r = row0 + tile_row(i, ty)
                for j in range(REG_N):
                    c = col0 + tile_col(j, tx)
                    if r < geom[GEMM_M] and c < geom[GEMM_N]:
                        if splits == 1:
                            store(geom, out, bias, g, r, c, acc[i, j])
                        else:
                            partial[z, r, c] = acc[i, j]

        kernel = functools.partial(jit, max_registers=(max_registers or {}).get(tiles))  # @jit, with the cap
        if not staged:
            @kernel
            def gemm(geom, a, b, out, bias, partial, splits, k_chunk):
                z, g, k_begin, k_end, tx, ty, tid, row0, col0 = place(geom, splits, k_chunk)
                a_at = prepare_a(geom, a, g, row0 + tid % TILE_M)  # once: the loop's loads share them
                b_at = prepare_b(geom, b, g, col0 + tid % TILE_N)
                a_slab = cuda.shared.array((TK, TILE_M), nbtype)
                b_slab = cuda.shared.array((TK, TILE_N), nbtype)
                a_share = cuda.local.array((1, A_SHARE), nbtype)
                b_share = cuda.local.array((1, B_SHARE), nbtype)
                acc = cuda.local.array((REG_M, REG_N), nbtype)
                zero(acc)
                for k0 in range(k_begin, k_end, TK):  # k_chunk is a multiple of TK: slices never overlap
                    fetch(geom, a, b, g, k0, tid, a_at, b_at, a_share, b_share)
                    put(tid, a_share, b_share, a_slab, b_slab)
                    cuda.syncthreads()
                    multiply(a_slab, b_slab, acc, ty, tx)
                    cuda.syncthreads()
                write(geom, out, bias, partial, g, z, splits, acc, row0, col0, ty, tx)
        else:
            @kernel
            def gemm(geom, a, b, out, bias, partial, splits, k_chunk):
                z, g, k_begin, k_end, tx, ty, tid, row0, col0 = place(geom, splits, k_chunk)
                a_at = prepare_a(geom, a, g, row0 + tid % TILE_M)  # once: the loop's loads share them
                b_at = prepare_b(geom, b, g, col0 + tid % TILE_N)
                a_slabs = cuda.shared.array((2, TK, TILE_M), nbtype)  # two of each: multiply one, fill the other
                b_slabs = cuda.shared.array((2, TK, TILE_N), nbtype)
                a_share = cuda.local.array((1, A_SHARE), nbtype)
                b_share = cuda.local.array((1, B_SHARE), nbtype)
                acc = cuda.local.array((REG_M, REG_N), nbtype)
                zero(acc)
                steps = (k_end - k_begin + TK - 1) // TK
                if steps > 0:
                    fetch(geom, a, b, g, k_begin, tid, a_at, b_at, a_share, b_share)
                    put(tid, a_share, b_share, a_slabs[0], b_slabs[0])
                cuda.syncthreads()
                for step in range(steps):
                    this = step % 2
                    if step + 1 < steps:  # the next slab's global loads are in flight during the multiply
                        fetch(geom, a, b, g, k_begin + (step + 1) * TK, tid, a_at, b_at, a_share, b_share)
                    multiply(a_slabs[this], b_slabs[this], acc, ty, tx)
                    if step + 1 < steps:  # the other slab: every thread finished with it at the last barrier
                        put(tid, a_share, b_share, a_slabs[1 - this], b_slabs[1 - this])
                    cuda.syncthreads()
                write(geom, out, bias, partial, g, z, splits, acc, row0, col0, ty, tx)

        @jit
        def add_slices(geom, partial, splits, groups, out, bias):
            m_size, n_size = geom[GEMM_M], geom[GEMM_N]
            for e in range(cuda.grid(1), groups * m_size * n_size, cuda.gridsize(1)):
                g = e // (m_size * n_size)
                r = (e // n_size) % m_size
                c = e % n_size
                total = partial[g * splits, r, c]
                for s in range(1, splits):
                    total += partial[g * splits + s, r, c]
                store(geom, out, bias, g, r, c, total)

        return gemm, add_slices

    def compiled(dtype, tiles):
        """(the product's kernel, the kernel that adds split-K slices) for a dtype and tiles, built at
        the first use (``benchmarks/gpu_sass.py`` also reads them, to show what the compiler made)."""
        dtype = np.dtype(dtype)
        if (dtype, tiles) not in kernels:
            kernels[dtype, tiles] = build(dtype, tiles)
        return kernels[dtype, tiles]

    def run(geom, groups, a, b, out, bias):
        m_size, n_size, k_size = geom[GEMM_M], geom[GEMM_N], geom[GEMM_K]
        chosen = tiles or choose_tiles(m_size, n_size, k_size)
        tpb_m, tpb_n, reg_m, reg_n, tk = chosen
        tile_m, tile_n = tpb_m * reg_m, tpb_n * reg_n
        gemm, add_slices = compiled(out.dtype, chosen)
        tile_count = math.ceil(n_size / tile_n) * math.ceil(m_size / tile_m) * groups
        splits = 1
        if tile_count < _target_blocks():
            # at least 8 steps of TK per slice, so each block still has real work
            splits = max(1, min(math.ceil(_target_blocks() / tile_count), k_size // (8 * tk)))
        k_chunk = math.ceil(math.ceil(k_size / splits) / tk) * tk
        splits = math.ceil(k_size / k_chunk) if k_size else 1
        partial = empty((groups * splits, m_size, n_size) if splits > 1 else (1, 1, 1), out.dtype)
        grid = (math.ceil(n_size / tile_n), math.ceil(m_size / tile_m), groups * splits)
        gemm[grid, (tpb_n, tpb_m)](geom, a, b, out, bias, partial, splits, k_chunk)
        if splits > 1:
            total = groups * m_size * n_size
            threads = 8 if SIMULATED else 256
            blocks = max(1, min(4 if SIMULATED else 65535, math.ceil(total / threads)))
            add_slices[blocks, threads](geom, partial, splits, groups, out, bias)

    run.compiled = compiled
    return run
