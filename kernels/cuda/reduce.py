"""Per-channel sums on the GPU: out[c] = sum over n and l of a[n, c, l].

One block per channel; each thread adds a strided subset of the channel's values
into a float64 partial sum, then the block adds the partials in a shared-memory
tree (fixed pairing, so the result is the same on every run; no atomics). Used
for bias gradients and batch norm's statistics.
"""
from numba import cuda, float64

from .launch import SIMULATED, empty, jit

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


@jit
def _channel_sums(a, out):
    c = cuda.blockIdx.x
    n_batch, length = a.shape[0], a.shape[2]
    partial = cuda.shared.array(REDUCE_THREADS, float64)
    acc = 0.0
    for e in range(cuda.threadIdx.x, n_batch * length, REDUCE_THREADS):
        acc += a[e // length, c, e % length]
    total = block_sum(partial, acc)
    if cuda.threadIdx.x == 0:
        out[c] = total


def sum_over_batch_and_space(a):
    """a: (N, C, L) device array -> (C,) sums, in a's dtype."""
    out = empty(a.shape[1], a.dtype)
    _channel_sums[a.shape[1], REDUCE_THREADS](a, out)
    return out
