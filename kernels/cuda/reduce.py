"""Per-channel sums on the GPU: out[c] = sum over n and l of a[n, c, l].

One block per channel; each thread adds a strided subset of the channel's values
into a float64 partial sum, then the block adds the partials in a shared-memory
tree (fixed pairing, so the result is the same on every run; no atomics). Used
for bias gradients and batch norm's statistics.

A thread walks its values e = t, t + T, t + 2T, ... of the channel's N*L (T threads) as the pair
(n, l) = (e // L, e % L), moved on by (T // L, T % L) with one carry, not divided out at every
value: a 64-bit division per value, in software on a GPU, cost more than the value's load and add
(``channel_walk``; docs/gpu.md). The same values in the same order as before.
"""
import numpy as np
from numba import cuda, float64, uint32, uint64

from .launch import SIMULATED, empty, flat, jit

REDUCE_THREADS = 16 if SIMULATED else 256


@cuda.jit(device=True, inline=True)
def block_sum(partial, value):
    """Sum ``value`` over the threads of the block (all threads get the total)."""
    t = cuda.threadIdx.x
    partial[t] = value
    cuda.syncthreads()
    step = REDUCE_THREADS // 2
    while step > 0:
        if t < step:
            partial[t] += partial[t + step]
        cuda.syncthreads()
        step //= 2
    total = partial[0]
    cuda.syncthreads()
    return total


@cuda.jit(device=True, inline=True)
def channel_walk(length):
    """This thread's first value (n, l) in a channel of N x ``length`` values, and the step between its
    values as (images, positions): all uint32, from two divisions."""
    t, threads, length = uint32(cuda.threadIdx.x), uint32(REDUCE_THREADS), uint32(length)
    return uint32(t // length), uint32(t % length), uint32(threads // length), uint32(threads % length)


@cuda.jit(device=True, inline=True)
def walk_on(n, position, n_step, position_step, length):
    """The next (n, l) of a ``channel_walk``."""
    n, position = uint32(n + n_step), uint32(position + position_step)
    if position >= length:
        return uint32(n + 1), uint32(position - length)
    return n, position


@cuda.jit(device=True, inline=True)
def at(n, c, position, channels, length):
    """The flat offset of a[n, c, l] in an (N, C, L) array, in 64 bits (a reduction is not cut into
    launches: its array may pass 2^32 values)."""
    return (uint64(n) * channels + c) * length + position


@jit
def _channel_sums(a, n_batch, channels, length, out):
    """a flat (N*C*L); sizes uint32."""
    c = uint32(cuda.blockIdx.x)
    partial = cuda.shared.array(REDUCE_THREADS, float64)
    acc = 0.0
    n, position, n_step, position_step = channel_walk(length)
    while n < n_batch:
        acc += a[at(n, c, position, channels, length)]
        n, position = walk_on(n, position, n_step, position_step, length)
    total = block_sum(partial, acc)
    if cuda.threadIdx.x == 0:
        out[c] = total


def sizes(a):
    """(N, C, L) of an (N, C, L) array, as the uint32 the reductions take (a ValueError past 2^32)."""
    if max(a.shape) >= 2**32:
        raise ValueError(f"per-channel sums on the GPU: a side of {a.shape} is 2^32 or more")
    return tuple(np.uint32(side) for side in a.shape)


def sum_over_batch_and_space(a):
    """a: (N, C, L) device array -> (C,) sums, in a's dtype."""
    out = empty(a.shape[1], a.dtype)
    _channel_sums[a.shape[1], REDUCE_THREADS](flat(a), *sizes(a), out)
    return out
