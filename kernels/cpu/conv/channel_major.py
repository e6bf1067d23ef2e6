"""Between NCHW and channel-major planes, (N, K, H, W) <-> (K, N, H*W): the layout of the Fourier
path's transforms (spectral.py), which run over one channel's planes of every image.

    y[n, k, i, j]       = y_cm[k, n, i*W + j] + bias[k]          (channel_major_to_nchw)
    g_cm[k, n, i*W + j] = g[n, k, i, j];
    channel_sums[k, n]  = sum_{i, j} g[n, k, i, j] in float64    (nchw_to_channel_major)

Both loops run over 1-D slices indexed by the loop variable, which the compiler vectorises (a
computed index carries a negative-index check that stopped it). The channel sums are dL/db's
terms, taken while g is read anyway, in LANES float64 partial sums (by column modulo LANES, added
up at the end): one running sum is a chain of dependent additions, each waiting for the last, and
on conv1's gradient (74 MB at batch 64, when im2col's backward came through here too) that chain,
not memory, had set the pace: 12 ms of its backward.
"""
import numpy as np
from numba import njit, prange

LANES = 8


@njit(parallel=True, cache=True)
def channel_major_to_nchw(y_cm, bias, y):
    """y[n, k, i, j] = y_cm[k, n, i*W + j] + bias[k]."""
    n_batch, channels, h_out, w_out = y.shape
    for nk in prange(n_batch * channels):
        n = nk // channels
        k = nk % channels
        b = bias[k]
        for i in range(h_out):
            src = y_cm[k, n, i * w_out : (i + 1) * w_out]
            dst = y[n, k, i]
            for j in range(w_out):
                dst[j] = src[j] + b


@njit(parallel=True, cache=True)
def nchw_to_channel_major(g, g_cm, channel_sums):
    """g_cm[k, n, i*W + j] = g[n, k, i, j]; channel_sums[k, n] = the sum of g[n, k] in float64
    (dL/db's terms, taken while g is read)."""
    n_batch, channels, h_out, w_out = g.shape
    full = w_out - w_out % LANES
    for kn in prange(channels * n_batch):
        k = kn // n_batch
        n = kn % n_batch
        lanes = np.zeros(LANES)  # float64 partial sums, one per column j mod LANES
        for i in range(h_out):
            src = g[n, k, i]
            dst = g_cm[k, n, i * w_out : (i + 1) * w_out]
            for j in range(w_out):
                dst[j] = src[j]
            for j0 in range(0, full, LANES):
                chunk = src[j0:j0 + LANES]
                for lane in range(LANES):
                    lanes[lane] += chunk[lane]
            for j in range(full, w_out):
                lanes[j - full] += src[j]
        channel_sums[k, n] = lanes.sum()
