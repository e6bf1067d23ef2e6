"""Inverted dropout with a counter-based random mask.

Forward in training, with q = 1 - p:

    keep[i] = u(seed, i) >= p             u uniform in [0, 1), i the flat element index
    y[i]    = x[i] * keep[i] / q          (so E[y] = x; in eval mode y = x)

Backward: dL/dx[i] = grad_y[i] * keep[i] / q (the mask is recomputed, not stored).

``offset`` is added to every index: a process that holds images first .. of a larger batch (data
parallelism, minicnn/distributed.py) passes first * (elements per image), so that each image gets
the mask it would get in the whole batch.

The random number u(seed, i) is a pure function of the seed and the index, not a
stateful generator: every backend and every thread layout computes the same
mask. It is built from a 32-bit integer hash ("lowbias32": xor-shift 16,
multiply 0x7FEB352D, xor-shift 15, multiply 0x846CA68B, xor-shift 16):

    key  = mix32(mix32(seed_lo) ^ seed_hi)               (once per call, on the host)
    h    = mix32(mix32(key ^ index_lo) ^ index_hi)
    u24  = h >> 8                                         (24 uniform bits)
    keep = u24 >= threshold,  threshold = ceil(p * 2**24)

Comparing integers (not floats) keeps the CPU and GPU decisions bit-identical;
P(keep) = 1 - threshold / 2**24, equal to 1 - p to within 2**-24.
"""
import math

import numpy as np

MASK32 = 0xFFFFFFFF


def mix32(h):
    """lowbias32 on uint64 values (NumPy arrays or Python ints), kept to 32 bits."""
    h = np.uint64(h) if isinstance(h, int) else h
    h = h ^ (h >> np.uint64(16))
    h = (h * np.uint64(0x7FEB352D)) & np.uint64(MASK32)
    h = h ^ (h >> np.uint64(15))
    h = (h * np.uint64(0x846CA68B)) & np.uint64(MASK32)
    h = h ^ (h >> np.uint64(16))
    return h


def seed_key(seed):
    """The 32-bit key of a seed in [0, 2**64)."""
    return int(mix32(mix32(seed & MASK32) ^ np.uint64(seed >> 32)))


def keep_threshold(p):
    """Keep an element when its 24-bit hash is >= this."""
    return math.ceil(p * (1 << 24))


def keep_mask(seed, p, shape, offset=0):
    index = np.uint64(offset) + np.arange(int(np.prod(shape)), dtype=np.uint64)
    h = mix32(mix32(np.uint64(seed_key(seed)) ^ (index & np.uint64(MASK32))) ^ (index >> np.uint64(32)))
    return ((h >> np.uint64(8)) >= keep_threshold(p)).reshape(shape)


def dropout_forward(x, p, seed, offset=0):
    scale = x.dtype.type(1 / (1 - p))
    return np.where(keep_mask(seed, p, x.shape, offset), x * scale, 0).astype(x.dtype)


def dropout_backward(grad_y, p, seed, offset=0):
    return dropout_forward(grad_y, p, seed, offset)
