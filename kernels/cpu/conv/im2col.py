"""2-D convolution by im2col: Numba im2col/col2im feeding NumPy's SGEMM, a block of images at a time.

Any stride, padding and groups (``__init__.py`` sends stride-1 3x3 and large-kernel
convolutions to Winograd and the Fourier path by default).

The math (see ``kernels/reference/conv.py`` for the same formulas as loops):

    y[n, k, i, j] = b[k] + sum_{c', p, q} w[k, c', p, q] * x_pad[n, g*C/G + c', i*sh + p, j*sw + q]

im2col turns it into one matrix product per group. For a block of images n0 .. n0+B-1,
row r = (c*kh + p)*kw + q and column m = (n'*H_out + i)*W_out + j (n' = n - n0) of the
matrix ``cols`` (C*kh*kw, B*H_out*W_out) hold (the wide form below lays out columns otherwise)

    cols[r, m] = x_pad[n, c, i*sh + p, j*sw + q]      (0 where that falls in the padding)

so that, with the rows of group g forming the block cols_g (C/G*kh*kw, B*H_out*W_out)
and w_g = w[group g].reshape(K/G, C/G*kh*kw):

    y_g          = w_g @ cols_g                      (K/G, B*H_out*W_out), then to NCHW
    dL/dw_g^T   += cols_g @ grad_y_g^T               summed over the blocks in order
    dL/dcols_g   = w_g^T @ grad_y_g                  then col2im adds each entry back to
                                                     the x element it was copied from
    dL/db[k]     = sum over (n, i, j) of grad_y[n, k, i, j]

Why this design: on the development machines NumPy's SGEMM runs at 150-210 GFLOP/s,
while the best direct Numba convolution reached ~30 (docs/numba.md). Why blocks of images:
the whole batch's im2col matrix is large (conv2 at batch 64: 448 MB, and as much again
for its gradient), so it went out to memory and back, and it was most of the extra peak
memory. A block's matrix (about ``BLOCK_BYTES``) is still a large GEMM for BLAS, and
the loop over blocks runs a handful of times per call (batch 64: 7 to 16). The block size
depends only on the shapes, so the sums, and the result, do not depend on the thread count.
The matrices live in reused scratch buffers (``workspace.py``).

Two forms of im2col:

- Stride 1 (AlexNet's conv2 at batches under ``spectral.MIN_BATCH``, and conv2-5 when
  ``use_algorithm("im2col")`` forces it) takes the *wide* form.
  The padded input is laid out flat with a row pitch L = W + max(left, right): each row is
  x's row followed by max(left, right) zeros, and those zeros serve as the right padding of
  one row and the left padding of the next (a window reading past a row's end reads the
  next row's first entries, which are zeros). L is at least W_out, which only padding
  wider than the kernel on both sides changes. Each image's columns are laid out as rows of
  that pitch: column n*R + i*L + j with R = H_out*L. Then the row (c, p, q) of one image is
  the flat plane read from offset p*L + q, one contiguous run of R values, copied in one
  loop. The GEMM also computes L - W_out = kw - 1 - min(left, right) columns per output
  row that are not outputs (conv2: 2 per 27, 7% more work; a pitch of the padded width,
  W + left + right, had cost 4 per 27); the transposition to NCHW skips them, and the
  backward puts zeros there, so they add nothing to dL/dw or dL/dx. This made im2col 3-5x
  faster than the per-output-row copies of the general form (runs of 13 values each),
  which cost more than the GEMM at the 13x13 layers (measured before those layers moved
  to Winograd).
- Any other stride takes the general form: runs of W_out values per output row. Padding
  is not materialised: im2col writes zeros where a window hangs over the edge and col2im
  skips those entries; the columns j that fall inside the image are one range per
  (q, row), so the inner loops have no branches.

Every copy loop runs over 1-D slices with the loop variable as the index. Numba checks a
computed index such as ``dst[col + j]`` for a negative value (Python's wraparound) on every
access, and that check kept the compiler from vectorising the copies; slices are free of it
and give the same bits (docs/benchmarks.md, "Measurements behind the CPU kernels").

Threads: im2col and col2im run in parallel over the block's (c, n) planes, channel-major,
so consecutive iterations write (col2im: read) neighbouring columns of the same rows of
cols, which measured faster than image-major. In col2im each plane of grad_x is owned by
exactly one iteration, so no two threads ever add into the same element.
"""
import numpy as np
from numba import njit, prange

from .. import blas, workspace
from ..phases import gather_phase, phase_length
from .channel_major import channel_major_to_nchw, nchw_to_channel_major

BLOCK_BYTES = 32 << 20  # target size of one block's im2col matrix


@njit(cache=True, inline="always")
def _inside(offset, stride, size, count):
    """The range [lo, hi) of j in [0, count) with 0 <= j*stride + offset < size."""
    lo = max(0, (stride - 1 - offset) // stride)
    hi = min(count, (size - 1 - offset) // stride + 1)
    return lo, max(lo, hi)


@njit(parallel=True, cache=True)
def _im2col(x, kh, kw, sh, sw, top, left, h_out, w_out, cols):
    """cols[(c*kh + p)*kw + q, n*H_out*W_out + i*W_out + j] = x[n, c, i*sh + p - top, j*sw + q - left],
    0 where that is outside x.

    Reading x at stride sw is a gather that the compiler does not vectorise, so each plane is
    first split into its sw column phases (``phases.py``; phase r holds columns r, r + sw, ...):
    then the run for kernel column q reads phase (q - left) mod sw contiguously from column
    j + (q - left) // sw, which the compiler vectorises.
    Runs are W_out long (conv1: 55), so the zero fills are plain loops: slice assignments
    cost Numba a view per run."""
    n_block, channels, height, width = x.shape
    plane = h_out * w_out
    phase_len = (width + sw - 1) // sw
    zero = cols.dtype.type(0)
    for cn in prange(channels * n_block):
        c = cn // n_block  # channel-major: consecutive iterations write neighbouring columns
        n = cn % n_block
        src = x[n, c]
        phases = np.empty((sw, height, phase_len), dtype=x.dtype)  # only in-image entries are read
        for h in range(height):
            for r in range(sw):
                gather_phase(src[h, r:], sw, phases[r, h, : phase_length(width, sw, r)])
        for p in range(kh):
            for q in range(kw):
                dst = cols[(c * kh + p) * kw + q]
                j_lo, j_hi = _inside(q - left, sw, width, w_out)
                phase = phases[(q - left) % sw]
                shift = (q - left) // sw  # floor division: negative where the window starts in the padding
                for i in range(h_out):
                    out = dst[n * plane + i * w_out : n * plane + (i + 1) * w_out]
                    h = i * sh + p - top
                    if h < 0 or h >= height:
                        for j in range(w_out):
                            out[j] = zero
                        continue
                    for j in range(j_lo):
                        out[j] = zero
                    inside = out[j_lo:j_hi]
                    src = phase[h, j_lo + shift : j_hi + shift]
                    for j in range(j_hi - j_lo):
                        inside[j] = src[j]
                    tail = out[j_hi:]
                    for j in range(w_out - j_hi):
                        tail[j] = zero


@njit(parallel=True, cache=True)
def _col2im(grad_cols, kh, kw, sh, sw, top, left, h_out, w_out, grad_x):
    """grad_x = the sum of each grad_cols entry at the x position it was copied from."""
    n_block, channels, height, width = grad_x.shape
    plane = h_out * w_out
    for cn in prange(channels * n_block):
        c = cn // n_block  # channel-major: consecutive iterations write (read) neighbouring columns
        n = cn % n_block
        grad_x[n, c] = 0
        for p in range(kh):
            for q in range(kw):
                row = (c * kh + p) * kw + q
                j_lo, j_hi = _inside(q - left, sw, width, w_out)
                first = j_lo * sw + q - left  # the x column of output column j_lo (>= 0)
                for i in range(h_out):
                    h = i * sh + p - top
                    if h < 0 or h >= height:
                        continue
                    col = n * plane + i * w_out
                    src = grad_cols[row, col + j_lo : col + j_hi]
                    if sw == 1:  # contiguous: a loop the compiler vectorises
                        dst = grad_x[n, c, h, first : first + j_hi - j_lo]
                        for j in range(j_hi - j_lo):
                            dst[j] += src[j]
                    else:
                        dst = grad_x[n, c, h, first:]
                        for j in range(j_hi - j_lo):
                            dst[np.uint64(j * sw)] += src[j]  # unsigned: no negative-index check


@njit(parallel=True, cache=True)
def _im2col_wide(x, kh, kw, top, left, h_pad, pitch, h_out, cols):
    """Stride 1 only: cols[(c*kh + p)*kw + q, n*R + m] = x_flat[n, c, p*pitch + q + m] for m in
    [0, R), R = h_out*pitch, where x_flat holds x[n, c, h, w] at (h + top)*pitch + left + w and
    zeros elsewhere (the module docstring says why that pitch works): one contiguous copy per
    (row, image)."""
    n_block, channels, height, width = x.shape
    run = h_out * pitch
    padded = np.zeros((channels * n_block, h_pad * pitch + kw - 1), dtype=x.dtype)
    for cn in prange(channels * n_block):
        c = cn // n_block  # channel-major: consecutive iterations write (read) neighbouring columns
        n = cn % n_block
        plane = padded[cn]  # the zeros stay zero: only x's entries are written
        for h in range(height):
            row = plane[(h + top) * pitch + left : (h + top) * pitch + left + width]
            src = x[n, c, h]
            for w in range(width):
                row[w] = src[w]
        for p in range(kh):
            for q in range(kw):
                # slices, so the loop's indices are the loop variable itself: an index like
                # offset + m costs a negative-index check that stops the compiler vectorising
                dst = cols[(c * kh + p) * kw + q, n * run : (n + 1) * run]
                src = plane[p * pitch + q : p * pitch + q + run]
                for m in range(run):
                    dst[m] = src[m]


@njit(parallel=True, cache=True)
def _col2im_wide(grad_cols, kh, kw, top, left, h_pad, pitch, h_out, grad_x):
    """The adjoint of ``_im2col_wide``: each plane sums its rows' runs in a flat accumulator
    of the same layout, then keeps x's entries."""
    n_block, channels, height, width = grad_x.shape
    run = h_out * pitch
    padded = np.empty((channels * n_block, h_pad * pitch + kw - 1), dtype=grad_x.dtype)
    for cn in prange(channels * n_block):
        c = cn // n_block  # channel-major: consecutive iterations write (read) neighbouring columns
        n = cn % n_block
        plane = padded[cn]
        plane[:] = 0
        for p in range(kh):
            for q in range(kw):
                src = grad_cols[(c * kh + p) * kw + q, n * run : (n + 1) * run]
                dst = plane[p * pitch + q : p * pitch + q + run]  # a slice: see _im2col_wide
                for m in range(run):
                    dst[m] += src[m]
        for h in range(height):
            row = plane[(h + top) * pitch + left : (h + top) * pitch + left + width]
            dst = grad_x[n, c, h]
            for w in range(width):
                dst[w] = row[w]


class _Geometry:
    """The sizes one convolution call needs, its blocks of images, and its im2col/col2im."""

    def __init__(self, x_shape, w_shape, stride, padding, groups, itemsize):
        self.n, self.c, self.h, self.w = x_shape
        self.k, _, self.kh, self.kw = w_shape
        (self.top, bottom), (self.left, right) = padding
        self.sh, self.sw = stride
        self.groups = groups
        self.h_pad, self.w_pad = self.h + self.top + bottom, self.w + self.left + right
        self.h_out = (self.h_pad - self.kh) // self.sh + 1
        self.w_out = (self.w_pad - self.kw) // self.sw + 1
        # Stride 1 takes the wide form: GEMM rows of the flat padded input's pitch, x's row and
        # the zeros shared by its right and the next row's left padding.
        self.wide = self.sh == 1 and self.sw == 1
        self.pitch = max(self.w + max(self.left, right), self.w_out)  # W_out: padding wider than the kernel
        self.run = self.h_out * (self.pitch if self.wide else self.w_out)  # GEMM columns per image
        self.rows = self.c * self.kh * self.kw
        per_image = self.rows * self.run * itemsize
        self.block = max(1, min(self.n, BLOCK_BYTES // max(per_image, 1)))

    def blocks(self):
        return [(n0, min(self.n, n0 + self.block)) for n0 in range(0, self.n, self.block)]

    def im2col(self, x_block):
        """The block's im2col matrix, viewed per group: (G, C/G*kh*kw, images*run)."""
        cols = workspace.scratch("conv.cols", (self.rows, x_block.shape[0] * self.run), x_block.dtype)
        if self.wide:
            _im2col_wide(x_block, self.kh, self.kw, self.top, self.left, self.h_pad, self.pitch, self.h_out, cols)
        else:
            _im2col(x_block, self.kh, self.kw, self.sh, self.sw, self.top, self.left, self.h_out, self.w_out, cols)
        return cols.reshape(self.groups, self.rows // self.groups, -1)

    def col2im(self, grad_cols, grad_x_block):
        if self.wide:
            _col2im_wide(grad_cols, self.kh, self.kw, self.top, self.left, self.h_pad, self.pitch, self.h_out,
                         grad_x_block)
        else:
            _col2im(grad_cols, self.kh, self.kw, self.sh, self.sw, self.top, self.left, self.h_out, self.w_out,
                    grad_x_block)


def conv2d_forward(x, w, b, stride, padding, groups):
    geo = _Geometry(x.shape, w.shape, stride, padding, groups, x.dtype.itemsize)
    k = geo.k
    w_g = w.reshape(groups, k // groups, -1)
    bias = b if b is not None else np.zeros(k, dtype=x.dtype)
    y = workspace.empty((geo.n, k, geo.h_out, geo.w_out), x.dtype)
    for n0, n1 in geo.blocks():
        cols_g = geo.im2col(x[n0:n1])
        y_cm = workspace.scratch("conv.y", (groups, k // groups, cols_g.shape[2]), x.dtype)
        blas.matmul(w_g, cols_g, y_cm)
        channel_major_to_nchw(y_cm.reshape(k, n1 - n0, geo.run), bias, y[n0:n1])
    return y


def conv2d_backward(x, w, grad_y, stride, padding, groups, needs_input_grad=(True, True, True)):
    """Returns (grad_x, grad_w, grad_b); an entry is None where ``needs_input_grad`` says so.

    dL/dw is accumulated transposed, as cols_g @ grad_y_g^T (C/G*kh*kw, K/G): OpenBLAS ran
    that orientation faster at AlexNet's grouped sizes, and the transposition back is one
    small copy at the end."""
    geo = _Geometry(x.shape, w.shape, stride, padding, groups, x.dtype.itemsize)
    k, rows_g = geo.k, geo.rows // groups
    w_g = w.reshape(groups, k // groups, rows_g)
    grad_x = workspace.empty(x.shape, x.dtype) if needs_input_grad[0] else None
    grad_w_t = None
    bias_sums = np.zeros(k)  # float64 over the whole batch
    for n0, n1 in geo.blocks():
        grad_y_cm = workspace.scratch("conv.grad_y", (k, n1 - n0, geo.run), x.dtype)
        channel_sums = workspace.scratch("conv.channel_sums", (k, n1 - n0), np.float64)
        nchw_to_channel_major(grad_y[n0:n1], grad_y_cm, channel_sums)
        bias_sums += channel_sums.sum(axis=1)
        grad_y_g = grad_y_cm.reshape(groups, k // groups, -1)
        if needs_input_grad[1]:
            cols_g = geo.im2col(x[n0:n1])
            if grad_w_t is None:
                grad_w_t = workspace.scratch("conv.grad_w_t", (groups, rows_g, k // groups), x.dtype)
                blas.matmul(cols_g, grad_y_g.transpose(0, 2, 1), grad_w_t)
            else:
                block = workspace.scratch("conv.grad_w_t_block", grad_w_t.shape, x.dtype)
                grad_w_t += blas.matmul(cols_g, grad_y_g.transpose(0, 2, 1), block)
        if grad_x is not None:
            grad_cols = workspace.scratch("conv.grad_cols", (groups, rows_g, grad_y_g.shape[2]), x.dtype)
            blas.matmul(w_g.transpose(0, 2, 1), grad_y_g, grad_cols)
            geo.col2im(grad_cols.reshape(geo.rows, -1), grad_x[n0:n1])
    grad_w = None
    if grad_w_t is not None:
        grad_w = workspace.empty(w.shape, w.dtype)
        np.copyto(grad_w.reshape(w_g.shape), grad_w_t.transpose(0, 2, 1))
    grad_b = bias_sums.astype(x.dtype) if needs_input_grad[2] else None
    return grad_x, grad_w, grad_b
