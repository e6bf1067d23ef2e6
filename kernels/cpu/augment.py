"""The paper's training-time augmentation of a batch in one pass (Numba): gather, colour shift,
mean subtraction, crop and mirror together.

The math, per output pixel (``minicnn/data/transforms.py`` has the same steps one at a time, in
NumPy, and is the reference the tests compare with, bit for bit):

    v = images[index[n], c, tops[n] + i, lefts[n] + j']      j' = size - 1 - j where mirrored[n], else j
    v = float64(v) + shifts[n, c], rounded to out's dtype      the PCA colour shift (when asked for)
    out[n, c, i, j] = v - mean[c]                              mean in out's dtype

Why one pass: the steps one at a time read and write the whole 256-px batch four or five times
(the loader's gather, the shift, the mean, the crop, the mirror: 50 MB each at batch 64), about
0.5 s per batch on the training thread, 30% of a step. This reads each kept pixel once, from the
dataset itself, and writes the crop once. It releases the GIL (``nogil``), so the training loop
runs it on a background thread for the next batch while the current one trains; it runs on one
thread (no ``prange``) so as not to contend with the step's own parallel kernels.
"""
import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def augment_batch(images, index, tops, lefts, mirrored, shifts, has_shift, mean, out):
    size = out.shape[2]
    for n in range(out.shape[0]):
        source = images[index[n]]
        for c in range(out.shape[1]):
            shift = shifts[n, c]
            centre = mean[c]
            for i in range(size):
                row = source[c, tops[n] + i, lefts[n]:lefts[n] + size]
                target = out[n, c, i]
                if mirrored[n]:
                    row = row[::-1]
                if has_shift:
                    for j in range(size):
                        # stored first, so that the shifted value is rounded to out's dtype (float32)
                        # before the mean is subtracted, as the steps one at a time round it
                        target[j] = np.float64(row[j]) + shift
                        target[j] = target[j] - centre
                else:
                    for j in range(size):
                        target[j] = row[j] - centre
