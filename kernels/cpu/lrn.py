"""Local response normalisation on the CPU (Numba), the 2012 paper's formula.

    scale[c] = k + alpha * sum_{j = max(0, c - n//2)}^{min(C - 1, c + n//2)} x[j]^2
    y[c]     = x[c] * scale[c] ** -beta
    dL/dx[i] = grad_y[i] * scale[i] ** -beta
               - 2 * alpha * beta * x[i] * sum_{|c - i| <= n//2} grad_y[c] * y[c] / scale[c]

(``kernels/reference/lrn.py`` derives the backward.)

Nothing is saved for the backward but x: it computes scale and y again from x. Reading
two saved arrays (scale and y) cost more than the arithmetic they save, and the forward no
longer writes scale at all: at
AlexNet's lrn1 (batch 64) that is 74 MB less written forward, 74 MB less held until the
backward, and a backward that reads x and grad_y and writes grad_x (3 arrays) instead of
9 array passes (a ratio pass, then the sum).

Layout: arrays are viewed as (N, C, H*W), and every loop over one plane's H*W values is
a plain loop over 1-D views, which the compiler vectorises (see ``_plane_scale`` below
on what stopped it).

Forward: each iteration of the parallel loop owns one output plane (n, c) and adds the
n neighbouring input planes into it.

Backward: each task takes ``CHANNELS_PER_TASK`` channels c0 .. c1-1 of one image. It
first computes, for the channels r from c0 - n//2 to c1 - 1 + n//2, the plane
ratio[r] = grad_y[r] * y[r] / scale[r] into its scratch (and, for r in its own range,
grad_x[r] = grad_y[r] * scale[r] ** -beta), then subtracts 2*alpha*beta*x[c] times each
window's sum of ratio planes. The n//2 planes at each end are computed by both
neighbouring tasks (12% more at n = 5), so no two tasks write the same memory.

``scale ** -beta`` is the costly part. For the paper's beta = 0.75 it is
1 / (sqrt(s) * sqrt(sqrt(s))): vector square roots, as accurate as powf to within a few
ulp. Other betas take the general ``**`` (a powf call per element).

``error_model="numpy"``: with Numba's default ("python") every division checks for
zero to raise ZeroDivisionError, and that check kept these loops from vectorising (a
division-and-square-root loop ran 4.3x slower). Division by zero cannot happen here
(scale >= k > 0), and where it would, NumPy semantics (inf) are what we want.
"""
import numpy as np
from numba import get_num_threads, njit, prange

from . import workspace

CHANNELS_PER_TASK = 32


@njit(cache=True, inline="always", error_model="numpy")
def _power(s, beta, three_quarters, one):
    """s ** -beta (``one`` is 1 in the array's dtype: a literal 1 would compute in float64)."""
    if three_quarters:
        root = np.sqrt(s)
        return one / (root * np.sqrt(root))
    return s ** -beta


@njit(cache=True, inline="always")
def _sum_of_squares(x_image, c, half, s):
    """s = the sum of x_image[j]^2 over the channels j within half of c."""
    channels = x_image.shape[0]
    lo = max(0, c - half)
    hi = min(channels - 1, c + half)
    first = x_image[lo]
    for p in range(s.size):
        s[p] = first[p] * first[p]
    for j in range(lo + 1, hi + 1):
        plane = x_image[j]
        for p in range(s.size):
            s[p] += plane[p] * plane[p]


# _plane_scale and _plane_ratio are functions of their own, not code inside the parallel
# loops, because there the compiler left the branch on three_quarters inside the
# vectorised loop, computing powf for every element too: 4x slower.
@njit(cache=True, error_model="numpy")
def _plane_scale(x_c, k, alpha, beta, three_quarters, one, out):
    """out holds the sum of squares; on return out = y[c] = x[c] * scale[c] ** -beta."""
    for p in range(out.size):
        out[p] = x_c[p] * _power(k + alpha * out[p], beta, three_quarters, one)


@njit(cache=True, error_model="numpy")
def _plane_ratio(x_r, grad_y_r, k, alpha, beta, three_quarters, one, s, ratio_r, first_term_r):
    """s holds the sum of squares; ratio_r = grad_y * y / scale and first_term_r = grad_y * scale ** -beta."""
    for p in range(s.size):
        scale = k + alpha * s[p]
        power = _power(scale, beta, three_quarters, one)
        ratio_r[p] = grad_y_r[p] * (x_r[p] * power) / scale
        first_term_r[p] = grad_y_r[p] * power


@njit(parallel=True, cache=True)
def _lrn_forward(x, half, alpha, beta, k, three_quarters, one, y):
    n_batch, channels, plane = x.shape
    for nc in prange(n_batch * channels):
        n = nc // channels
        c = nc % channels
        out = y[n, c]  # first the sum of squares, then y
        _sum_of_squares(x[n], c, half, out)
        _plane_scale(x[n, c], k, alpha, beta, three_quarters, one, out)


@njit(parallel=True, cache=True)
def _lrn_backward(x, grad_y, half, alpha, two_alpha_beta, beta, k, three_quarters, one, workers, grad_x):
    n_batch, channels, plane = x.shape
    chunks = (channels + CHANNELS_PER_TASK - 1) // CHANNELS_PER_TASK
    tasks = n_batch * chunks
    # One iteration per thread, so each allocates its scratch once (in cache: 36 planes,
    # 435 KB at lrn1) and then takes every workers-th task.
    for worker in prange(workers):
        s = np.empty(plane, dtype=x.dtype)
        ratio = np.empty((CHANNELS_PER_TASK + 2 * half, plane), dtype=x.dtype)
        halo_first_term = np.empty(plane, dtype=x.dtype)  # the first term of another task's plane: dropped
        for task in range(worker, tasks, workers):
            n = task // chunks
            c0 = (task % chunks) * CHANNELS_PER_TASK
            c1 = min(channels, c0 + CHANNELS_PER_TASK)
            r0 = max(0, c0 - half)
            r1 = min(channels, c1 + half)
            x_image, grad_y_image, grad_x_image = x[n], grad_y[n], grad_x[n]
            for r in range(r0, r1):
                _sum_of_squares(x_image, r, half, s)
                first_term = grad_x_image[r] if c0 <= r < c1 else halo_first_term
                _plane_ratio(x_image[r], grad_y_image[r], k, alpha, beta, three_quarters, one, s,
                             ratio[r - r0], first_term)
            for c in range(c0, c1):
                lo = max(0, c - half)
                hi = min(channels - 1, c + half)
                window = s  # the sum of ratio over c's window
                first = ratio[lo - r0]
                for p in range(plane):
                    window[p] = first[p]
                for j in range(lo + 1, hi + 1):
                    ratio_j = ratio[j - r0]
                    for p in range(plane):
                        window[p] += ratio_j[p]
                x_c, grad_x_c = x_image[c], grad_x_image[c]
                for p in range(plane):
                    grad_x_c[p] -= two_alpha_beta * x_c[p] * window[p]


def _planes(a):
    return a.reshape(a.shape[0], a.shape[1], -1)


def lrn_forward(x, size, alpha, beta, k):
    """Returns (y, saved): nothing is saved (None); the backward recomputes from x."""
    t = x.dtype.type
    y = workspace.empty_like(x)
    _lrn_forward(_planes(x), size // 2, t(alpha), t(beta), t(k), beta == 0.75, t(1), _planes(y))
    return y, None


def lrn_backward(x, saved, grad_y, size, alpha, beta, k):
    t = x.dtype.type
    grad_x = workspace.empty_like(x)
    _lrn_backward(_planes(x), _planes(grad_y), size // 2, t(alpha), t(2 * alpha * beta), t(beta), t(k),
                  beta == 0.75, t(1), get_num_threads(), _planes(grad_x))
    return grad_x
