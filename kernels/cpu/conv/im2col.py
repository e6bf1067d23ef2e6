"""2-D convolution by im2col: a Numba im2col feeding NumPy's SGEMM, one image at a time on each thread.

Any stride, padding and groups (``__init__.py`` sends stride-1 3x3 and large-kernel
convolutions to Winograd and the Fourier path by default; AlexNet's conv1 always comes here).

The math (see ``kernels/reference/conv.py`` for the same formulas as loops):

    y[n, k, i, j] = b[k] + sum_{c', p, q} w[k, c', p, q] * x_pad[n, g*C/G + c', i*sh + p, j*sw + q]

im2col turns it into one matrix product per image and group. Row r = (c'*kh + p)*kw + q and
column m = i*W_out + j of image n's matrix ``cols`` (C/G*kh*kw + 1, H_out*W_out) for group g hold

    cols[r, m] = x_pad[n, g*C/G + c', i*sh + p, j*sw + q]   (0 where that falls in the padding)

and its last row is all ones, so that the bias is the weight of a constant input: with
w_g = [w[group g].reshape(K/G, C/G*kh*kw) | b[group g]] (the bias as a last column),

    y[n, group g]      = w_g @ cols                 (K/G, H_out*W_out): y's own layout, written in place
    dL/dw_g^T, dL/db_g += cols @ grad_y[n, group g]^T    (the last row of the product is dL/db)
    dL/dcols           = w_g[:, :-1]^T @ grad_y[n, group g]
                         then col2im adds each entry back to the x element it was copied from

Why one image at a time, each thread doing its own images from im2col to the product: the
product of an image (conv1: 96 x 364 x 3025) is still a large GEMM, and while one thread
copies (im2col is bound by memory) the other multiplies (bound by arithmetic), and the copy
is read back from the cache it was just written to (conv1: 4.4 MB per image). No
transposition is needed either way: the product writes y's rows in place, and reads
grad_y's as they are (the wide form below through a copy padded to its pitch). The previous
design (im2col of a block of 7 images on both threads, then a product on both, then a
transposition of the result to NCHW) took 1.2-1.4x the time
at conv1 (docs/benchmarks.md). Each task is a kernel call and a BLAS call of about a
millisecond or more, handed out from Python: the loop over images is a queue, not a hot loop
(handing out costs 7-17 us per image, measured on images of 4x4 pixels: 1% of conv1's time).

Which thread runs which image does not change a result: each image's products are the same
calls whatever the thread, and dL/dw's sums over images run in fixed runs of tasks (RUNS_PER_CORE
per core), each summed in order by one thread and the runs added up in order after, so that the bits
do not depend on the number of threads. Where there are fewer images (times groups) than
cores, or an image's matrix would be over MAX_COLS_BYTES, the forward and dL/dw cut each
image into bands of output rows (``_Geometry.bands``, from the shapes and the machine's core
count only, as ``blas.plan``); dL/dx does not (two bands' windows overlap in x).

Two forms of im2col:

- Stride 1 (AlexNet's conv2 at batches under ``spectral.MIN_BATCH``, and conv2-5 when
  ``use_algorithm("im2col")`` forces it) takes the *wide* form.
  The padded input is laid out flat with a row pitch L = W + max(left, right): each row is
  x's row followed by max(left, right) zeros, and those zeros serve as the right padding of
  one row and the left padding of the next (a window reading past a row's end reads the
  next row's first entries, which are zeros). L is at least W_out, which only padding
  wider than the kernel on both sides changes. The image's columns are laid out as rows of
  that pitch: column i*L + j. Then the row (c, p, q) is the flat plane read from offset
  p*L + q, one contiguous run of H_out*L values, copied in one loop. The GEMM also computes
  L - W_out = kw - 1 - min(left, right) columns per output row that are not outputs (conv2:
  2 per 27, 7% more work; a pitch of the padded width, W + left + right, had cost 4 per 27);
  the copy to y skips them, and the backward puts zeros there in its copy of grad_y, so they
  add nothing to dL/dw or dL/dx. This made im2col 3-5x faster than the per-output-row copies
  of the general form (runs of 13 values each) at the 13x13 layers.
- Any other stride takes the general form: runs of W_out values per output row. Padding
  is not materialised: im2col writes zeros where a window hangs over the edge and col2im
  skips those entries; the columns j that fall inside the image are one range per
  (q, row), so the inner loops have no branches.

Every copy loop runs over 1-D slices with the loop variable as the index. Numba checks a
computed index such as ``dst[col + j]`` for a negative value (Python's wraparound) on every
access, and that check kept the compiler from vectorising the copies; slices are free of it
and give the same bits (docs/benchmarks.md, "Measurements behind the CPU kernels").
The kernels are single-threaded and release the GIL (``nogil``), as NumPy's BLAS does, so
the threads of ``blas.run_tasks`` run them side by side; each thread has its own buffers.
"""
import numpy as np
from numba import njit

from .. import blas, workspace
from ..phases import gather_phase, phase_length

# An image's im2col matrix above this size is cut into bands of output rows (forward and dL/dw):
# AlexNet's largest, conv1's, is 4.4 MB, conv2's 4 MB.
MAX_COLS_BYTES = 16 << 20
# dL/dw's sums over images: the tasks are cut into this many runs per core (a run's images summed in
# order by one thread, then the runs in order), enough for the threads to share them out evenly.
RUNS_PER_CORE = 4
MAX_RUN_BYTES = 64 << 20  # fewer runs where their partial sums would take more memory than this


@njit(cache=True, inline="always")
def _inside(offset, stride, size, count):
    """The range [lo, hi) of j in [0, count) with 0 <= j*stride + offset < size."""
    lo = max(0, (stride - 1 - offset) // stride)
    hi = min(count, (size - 1 - offset) // stride + 1)
    return lo, max(lo, hi)


@njit(nogil=True, cache=True)
def _im2col(x, kh, kw, sh, sw, top, left, i0, i1, w_out, phases, cols):
    """For output rows i in [i0, i1) of one image's channels x (C', H, W):
    cols[(c*kh + p)*kw + q, (i - i0)*W_out + j] = x[c, i*sh + p - top, j*sw + q - left], 0 where
    that is outside x; the last row of cols is ones.

    Reading x at stride sw is a gather that the compiler does not vectorise, so each plane is
    first split into its sw column phases (``phases.py``; phase r holds columns r, r + sw, ...):
    then the run for kernel column q reads phase (q - left) mod sw contiguously from column
    j + (q - left) // sw, which the compiler vectorises.
    Runs are W_out long (conv1: 55), so the zero fills are plain loops: slice assignments
    cost Numba a view per run. ``phases`` is scratch of (sw, H, ceil(W / sw)); only the
    entries it gets from x are read."""
    channels, height, width = x.shape
    zero = cols.dtype.type(0)
    h_lo = max(0, i0 * sh - top)  # the rows of x that the band's windows read
    h_hi = min(height, (i1 - 1) * sh - top + kh)
    for c in range(channels):
        src = x[c]
        for h in range(h_lo, h_hi):
            for r in range(sw):
                gather_phase(src[h, r:], sw, phases[r, h, : phase_length(width, sw, r)])
        for p in range(kh):
            for q in range(kw):
                dst = cols[(c * kh + p) * kw + q]
                j_lo, j_hi = _inside(q - left, sw, width, w_out)
                phase = phases[(q - left) % sw]
                shift = (q - left) // sw  # floor division: negative where the window starts in the padding
                for i in range(i0, i1):
                    out = dst[(i - i0) * w_out : (i - i0 + 1) * w_out]
                    h = i * sh + p - top
                    if h < 0 or h >= height:
                        for j in range(w_out):
                            out[j] = zero
                        continue
                    for j in range(j_lo):
                        out[j] = zero
                    inside = out[j_lo:j_hi]
                    run = phase[h, j_lo + shift : j_hi + shift]
                    for j in range(j_hi - j_lo):
                        inside[j] = run[j]
                    tail = out[j_hi:]
                    for j in range(w_out - j_hi):
                        tail[j] = zero
    ones = cols[channels * kh * kw]
    for m in range(ones.size):
        ones[m] = 1


@njit(nogil=True, cache=True)
def _col2im(grad_cols, kh, kw, sh, sw, top, left, h_out, w_out, grad_x):
    """grad_x (C', H, W) = the sum of each grad_cols entry at the x position it was copied from."""
    channels, height, width = grad_x.shape
    grad_x[:] = 0
    for c in range(channels):
        for p in range(kh):
            for q in range(kw):
                row = grad_cols[(c * kh + p) * kw + q]
                j_lo, j_hi = _inside(q - left, sw, width, w_out)
                first = j_lo * sw + q - left  # the x column of output column j_lo (>= 0)
                for i in range(h_out):
                    h = i * sh + p - top
                    if h < 0 or h >= height:
                        continue
                    src = row[i * w_out + j_lo : i * w_out + j_hi]
                    if sw == 1:  # contiguous: a loop the compiler vectorises
                        dst = grad_x[c, h, first : first + j_hi - j_lo]
                        for j in range(j_hi - j_lo):
                            dst[j] += src[j]
                    else:
                        dst = grad_x[c, h, first:]
                        for j in range(j_hi - j_lo):
                            dst[np.uint64(j * sw)] += src[j]  # unsigned: no negative-index check


@njit(nogil=True, cache=True)
def _im2col_wide(x, kh, kw, top, left, pitch, i0, i1, plane, cols):
    """Stride 1 only: cols[(c*kh + p)*kw + q, m] = x_flat[c, (i0 + p)*pitch + q + m] for m in
    [0, (i1 - i0)*pitch), where x_flat holds x[c, h, w] at (h + top)*pitch + left + w and zeros
    elsewhere (the module docstring says why that pitch works): one contiguous copy per row;
    the last row of cols is ones. ``plane`` is scratch of at least h_pad*pitch + kw - 1."""
    channels, height, width = x.shape
    run = (i1 - i0) * pitch
    plane[:] = 0  # once: each channel writes the same in-image entries, the zeros around them stay
    for c in range(channels):
        for h in range(height):
            row = plane[(h + top) * pitch + left : (h + top) * pitch + left + width]
            src = x[c, h]
            for w in range(width):
                row[w] = src[w]
        for p in range(kh):
            for q in range(kw):
                # slices, so the loop's indices are the loop variable itself: an index like
                # offset + m costs a negative-index check that stops the compiler vectorising
                dst = cols[(c * kh + p) * kw + q]
                src = plane[(i0 + p) * pitch + q : (i0 + p) * pitch + q + run]
                for m in range(run):
                    dst[m] = src[m]
    ones = cols[channels * kh * kw]
    for m in range(ones.size):
        ones[m] = 1


@njit(nogil=True, cache=True)
def _col2im_wide(grad_cols, kh, kw, top, left, pitch, h_out, plane, grad_x):
    """The adjoint of ``_im2col_wide`` (whole images): each channel sums its rows' runs in a flat
    accumulator of the same layout, then keeps x's entries."""
    channels, height, width = grad_x.shape
    run = h_out * pitch
    for c in range(channels):
        plane[:] = 0
        for p in range(kh):
            for q in range(kw):
                src = grad_cols[(c * kh + p) * kw + q]
                dst = plane[p * pitch + q : p * pitch + q + run]  # a slice: see _im2col_wide
                for m in range(run):
                    dst[m] += src[m]
        for h in range(height):
            row = plane[(h + top) * pitch + left : (h + top) * pitch + left + width]
            dst = grad_x[c, h]
            for w in range(width):
                dst[w] = row[w]


def _own(name, shape, dtype):
    """Scratch of the calling thread's own (``workspace.thread_scratch``)."""
    return workspace.thread_scratch(f"conv.{name}", shape, dtype)


class _Geometry:
    """The sizes one convolution call needs, how it is cut into tasks, and its im2col/col2im."""

    def __init__(self, x, w_shape, stride, padding, groups):
        self.n, self.c, self.h, self.w = x.shape
        self.dtype = x.dtype
        self.k, self.c_g, self.kh, self.kw = w_shape
        self.k_g = self.k // groups
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
        self.row_len = self.pitch if self.wide else self.w_out  # GEMM columns per output row
        self.rows = self.c_g * self.kh * self.kw  # im2col rows per group, without the row of ones

    def bands(self, cut=True):
        """Output-row ranges [i0, i1) that cut each image (one, the whole image, unless ``cut``
        and there are fewer images times groups than cores or the matrix is over MAX_COLS_BYTES)."""
        count = 1
        if cut:
            cols_bytes = (self.rows + 1) * self.h_out * self.row_len * self.dtype.itemsize
            count = max(-(-blas.CORES // (self.n * self.groups)), -(-cols_bytes // MAX_COLS_BYTES))
        return blas.ranges(self.h_out, min(count, self.h_out), 1)

    def tasks(self, cut=True):
        """(n, g, i0, i1) of every task, in a fixed order."""
        return [(n, g, i0, i1) for n in range(self.n) for g in range(self.groups) for i0, i1 in self.bands(cut)]

    def im2col(self, x, n, g, i0, i1):
        """Image n's im2col matrix for group g and output rows [i0, i1), ones in its last row:
        (rows + 1, (i1 - i0)*row_len), the calling thread's own."""
        cols = _own("cols", (self.rows + 1, (i1 - i0) * self.row_len), self.dtype)
        x_g = x[n, g * self.c_g : (g + 1) * self.c_g]
        if self.wide:
            plane = _own("plane", (self.h_pad * self.pitch + self.kw - 1,), self.dtype)
            _im2col_wide(x_g, self.kh, self.kw, self.top, self.left, self.pitch, i0, i1, plane, cols)
        else:
            phases = _own("phases", (self.sw, self.h, -(-self.w // self.sw)), self.dtype)
            _im2col(x_g, self.kh, self.kw, self.sh, self.sw, self.top, self.left, i0, i1, self.w_out, phases, cols)
        return cols

    def col2im(self, grad_cols, grad_x_g):
        if self.wide:
            plane = _own("plane", (self.h_pad * self.pitch + self.kw - 1,), self.dtype)
            _col2im_wide(grad_cols, self.kh, self.kw, self.top, self.left, self.pitch, self.h_out, plane, grad_x_g)
        else:
            _col2im(grad_cols, self.kh, self.kw, self.sh, self.sw, self.top, self.left, self.h_out, self.w_out,
                    grad_x_g)

    def output_rows(self, a, n, g, i0, i1):
        """Rows [i0, i1) of a[n, group g] for a (N, K, H_out, W_out), C-contiguous: as a (K/G, (i1 - i0)*W_out)
        view where the GEMM's rows are W_out long, else as (K/G, i1 - i0, W_out)."""
        block = a[n, g * self.k_g : (g + 1) * self.k_g]
        if self.wide:
            return block[:, i0:i1]
        return block.reshape(self.k_g, -1)[:, i0 * self.w_out : i1 * self.w_out]

    def grad_rows(self, grad_y, n, g, i0, i1):
        """grad_y's rows [i0, i1) of image n and group g as a GEMM operand (K/G, (i1 - i0)*row_len):
        a view, or for the wide form a copy with zeros in the columns past W_out."""
        rows = self.output_rows(grad_y, n, g, i0, i1)
        if not self.wide:
            return rows
        pitched = _own("grad_y", (self.k_g, i1 - i0, self.pitch), self.dtype)
        pitched[:, :, self.w_out:] = 0
        pitched[:, :, : self.w_out] = rows
        return pitched.reshape(self.k_g, -1)


def conv2d_forward(x, w, b, stride, padding, groups):
    geo = _Geometry(x, w.shape, stride, padding, groups)
    # w with the bias as a last column: cols' last row is ones
    w_b = np.empty((groups, geo.k_g, geo.rows + 1), x.dtype)
    w_b[:, :, : geo.rows] = w.reshape(groups, geo.k_g, geo.rows)
    w_b[:, :, geo.rows] = 0 if b is None else b.reshape(groups, geo.k_g)
    y = workspace.empty((geo.n, geo.k, geo.h_out, geo.w_out), x.dtype)

    def task(n, g, i0, i1):
        cols = geo.im2col(x, n, g, i0, i1)
        out = geo.output_rows(y, n, g, i0, i1)
        if geo.wide:  # the product has the pitch's extra columns: through a buffer of the thread's own
            wide = _own("y", (geo.k_g, i1 - i0, geo.pitch), x.dtype)
            blas.product(w_b[g], cols, wide.reshape(geo.k_g, -1))
            np.copyto(out, wide[:, :, : geo.w_out])
        else:
            blas.product(w_b[g], cols, out)

    with blas.single_threaded_blas:
        blas.run_tasks([lambda t=t: task(*t) for t in geo.tasks()])
    return y


def conv2d_backward(x, w, grad_y, stride, padding, groups, needs_input_grad=(True, True, True)):
    """Returns (grad_x, grad_w, grad_b); an entry is None where ``needs_input_grad`` says so.

    dL/dw and dL/db come out of one product per task, transposed, as cols @ grad_y_g^T
    (C/G*kh*kw + 1, K/G): OpenBLAS ran that orientation faster at AlexNet's grouped sizes, and the
    transposition back is one small copy at the end."""
    geo = _Geometry(x, w.shape, stride, padding, groups)
    grad_y = np.ascontiguousarray(grad_y)
    needs_x, needs_w = needs_input_grad[0], needs_input_grad[1] or needs_input_grad[2]
    w_t = w.reshape(groups, geo.k_g, geo.rows).transpose(0, 2, 1)  # (G, rows, K/G)
    grad_x = workspace.empty(x.shape, x.dtype) if needs_x else None
    tasks = geo.tasks(cut=not needs_x)  # dL/dx's col2im takes whole images
    sum_bytes = groups * (geo.rows + 1) * geo.k_g * x.dtype.itemsize
    run_count = max(1, min(len(tasks), RUNS_PER_CORE * blas.CORES, MAX_RUN_BYTES // sum_bytes))
    runs = blas.ranges(len(tasks), run_count, 1)  # consecutive tasks, each run summed by one thread
    sums = np.empty((len(runs), groups, geo.rows + 1, geo.k_g), x.dtype) if needs_w else None  # one per run

    def run(r, lo, hi):
        started = set()
        for n, g, i0, i1 in tasks[lo:hi]:
            g_rows = geo.grad_rows(grad_y, n, g, i0, i1)
            if needs_w:
                cols = geo.im2col(x, n, g, i0, i1)
                if g in started:
                    part = _own("grad_w", sums.shape[2:], x.dtype)
                    sums[r, g] += blas.product(cols, g_rows.T, part)
                else:  # the run's first image of this group: straight into its sum
                    blas.product(cols, g_rows.T, sums[r, g])
                    started.add(g)
            if needs_x:
                grad_cols = _own("grad_cols", (geo.rows, g_rows.shape[1]), x.dtype)
                blas.product(w_t[g], g_rows, grad_cols)
                geo.col2im(grad_cols, grad_x[n, g * geo.c_g : (g + 1) * geo.c_g])
        if needs_w:
            for g in set(range(groups)) - started:  # a run too short to hold every group
                sums[r, g] = 0

    with blas.single_threaded_blas:
        blas.run_tasks([lambda r=r, span=span: run(r, *span) for r, span in enumerate(runs)])
    grad_w = grad_b = None
    if needs_w:
        total = sums[0]
        for r in range(1, len(runs)):  # in order: the same bits on any number of threads
            total += sums[r]
        if needs_input_grad[1]:
            grad_w = workspace.empty(w.shape, w.dtype)
            np.copyto(grad_w.reshape(groups, geo.k_g, geo.rows), total[:, : geo.rows].transpose(0, 2, 1))
        if needs_input_grad[2]:
            grad_b = total[:, geo.rows].reshape(geo.k).copy()
    return grad_x, grad_w, grad_b
