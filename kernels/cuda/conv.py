"""2-D convolution on the GPU as three implicit GEMMs (``gemm.py``), one per pass.

Same math as ``kernels/cpu/conv/im2col.py`` (x (N, C, H, W), w (K, C/G, kh, kw), group g,
c' and k' counting within the group, x_pad read as 0 outside the image):

    forward:  y[n, g*K/G + k', i, j] = b + sum_{c', p, q} w[g*K/G + k', c', p, q] * x_pad[n, g*C/G + c', i*sh + p, j*sw + q]
              M = K/G rows (k'), N = batch*H_out*W_out columns (n, i, j), reduction over (c', p, q)
    grad_w:   dw[g*K/G + k', c', p, q] = sum_{n, i, j} grad_y[n, g*K/G + k', i, j] * x_pad[n, g*C/G + c', i*sh + p, j*sw + q]
              M = K/G (k'), N = C/G*kh*kw (c', p, q), reduction over (n, i, j)
    grad_x:   dx[n, g*C/G + c', h, w] = sum_{k', p, q} w[g*K/G + k', c', p, q] * grad_y[n, g*K/G + k', i, j]
              with i = (h + pad_top - p) / sh and j = (w + pad_left - q) / sw where those divide
              exactly and land inside the output; one product per *stride phase*
              (ph, pw) = ((h + pad_top) % sh, (w + pad_left) % sw): M = C/G (c'), N = the
              (n, h, w) of that phase, reduction over the (k', p, q) with p % sh = ph and
              q % sw = pw, the only ones that divide exactly
    grad_b:   db[k] = sum_{n, i, j} grad_y[n, k, i, j]     (``reduce.py``)

The input gradient is computed by gathering (each dx element sums what it
contributed to) instead of scattering col2im with atomics: each output has one
owner, and results are the same on every run. Split by stride phase, its reduction holds only
window positions that land on an output: conv1 (11x11, stride 4) sums 3 x 3 of them per input
channel's kernel, not 121 of which 112 are zero (16 products of 1/16 the columns, 13x less work).
The groups are the grid's z axis. The forward's store adds the bias, and in
``conv2d_relu_forward`` also applies a following ReLU (the epilogue: one launch, one store).
geom = (M, N, Kred, batch, C, H, W, K, kh, kw, sh, sw, pad_top, pad_left, H_out, W_out, C/G, K/G),
read through the named indices below (GEMM_M ... K_PER_GROUP).

Index tables instead of divisions: an implicit-GEMM loader must turn a matrix index into tensor
coordinates, (c', p, q) from a reduction index and (n, i, j) from a column, which is five integer
divisions per element loaded, each tens of instructions on a GPU. Those coordinates depend on the
index alone, so they are computed once per shape, by a kernel, into small int64 tables kept on the
device (``_output_tables``, ``_phase_tables``): a loader then reads, for column m and reduction index kk,

    x_pad[...] = x[column_base[m] + reduction_offset[kk]]   if 0 <= h0[m] + p[kk] < H and 0 <= w0[m] + q[kk] < W

(``column_base`` = n*C*H*W + h0*W + w0 with h0 = i*sh - pad_top, w0 = j*sw - pad_left;
``reduction_offset`` = c'*H*W + p*W + q), and likewise for the gathered input gradient (there the
tables hold i + a and a, with p = ph + a*sh, so that i = (i + a) - a needs no division). The tables
travel with the tensor as one kernel argument, a tuple (tensor, column table, reduction table).
A thread stages the same column (row) at every step of the reduction, so its table entries are read
once, before the loop, by the operand's ``prepare`` (``gemm.make_gemm``), and only the reduction
index's entries at each step, packed (``_pack``): 12 global loads a step in the forward where
there were 32. The padding tests compare as uint32 (a negative position wraps to a large one), one
32-bit compare where ``0 <= h < H`` took two 64-bit ones.
"""
from numba import cuda, int64, uint32, uint64

from .activation import relu
from .gemm import GEMM_K, GEMM_M, GEMM_N, SQUARE, make_gemm
from .launch import empty, flat, full, grid_1d, jit, kept
from .reduce import sum_over_batch_and_space


# The entries of ``geom``. Module-level ints are compile-time constants to Numba, so a name
# costs nothing against a bare index.
(BATCH, CHANNELS, HEIGHT, WIDTH, KERNELS, KH, KW, STRIDE_H, STRIDE_W, PAD_TOP, PAD_LEFT, H_OUT, W_OUT, C_PER_GROUP,
 K_PER_GROUP) = range(3, 18)


# Each operand has a loader and its ``prepare`` (``gemm.make_gemm``): ``prepare`` takes the row of A
# (column of B) a thread loads at every step and returns what does not change along the reduction,
# starting with whether that row exists; the loader adds the reduction index's part.

@cuda.jit(device=True, inline=True)
def _weight_row(geom, w, g, r):
    """Row r of the forward's A: the offset of w[g*K/G + r] in the flattened w."""
    return r < geom[GEMM_M], (g * geom[K_PER_GROUP] + r) * geom[GEMM_K]


@cuda.jit(device=True, inline=True)
def _weight_row_major(geom, w, g, row, kk, tile, slot_k, slot_mn):
    """A[k', (c', p, q)] = w[g*K/G + k', c', p, q]; w flattened."""
    exists, offset = row
    if exists and kk < geom[GEMM_K]:
        tile[slot_k, slot_mn] = w[uint64(offset + kk)]
    else:
        tile[slot_k, slot_mn] = 0


@cuda.jit(device=True, inline=True)
def _window_start(geom, columns, g, m):
    """Of the im2col matrix's column m = (n, i, j), from the column table: where its window starts
    in the image, (h0, w0), and in group g's flattened x, g*C/G*H*W + n*C*H*W + h0*W + w0."""
    m = uint64(m)
    group_base = g * geom[C_PER_GROUP] * geom[HEIGHT] * geom[WIDTH]
    return columns[m, COL_H0], columns[m, COL_W0], group_base + columns[m, COL_BASE]


@cuda.jit(device=True, inline=True)
def _window_entry(rows, kk):
    """Of the im2col matrix's row kk = (c', p, q), from the window table: p, q, c'*H*W + p*W + q."""
    offset, p, q = _unpack(rows[ROW_PACKED, uint64(kk)])
    return p, q, offset


_NOWHERE = (int64(0), int64(0), int64(0))  # (a row or column past the matrix's end: never read)


@cuda.jit(device=True, inline=True)
def _x_pad_into(geom, x, start, entry, tile, slot_k, slot_mn):
    """tile[...] = x_pad[n, g*C/G + c', i*sh + p, j*sw + q] for the window ``start`` of column
    (n, i, j) and the ``entry`` (c', p, q): 0 in the padding."""
    h0, w0, base = start
    p, q, offset = entry
    h, w = uint32(h0 + p), uint32(w0 + q)
    if h >= uint32(geom[HEIGHT]) or w >= uint32(geom[WIDTH]):  # (a negative h is a large uint32: one compare)
        tile[slot_k, slot_mn] = 0
    else:
        tile[slot_k, slot_mn] = x[uint64(base + offset)]


@cuda.jit(device=True, inline=True)
def _im2col_column(geom, x_tables, g, m):
    """Column m of the forward's B: whether it exists, and its window's start."""
    if m < geom[GEMM_N]:
        return True, _window_start(geom, x_tables[1], g, m)
    return False, _NOWHERE


@cuda.jit(device=True, inline=True)
def _im2col(geom, x_tables, g, kk, column, tile, slot_k, slot_mn):
    """B[(c', p, q), (n, i, j)] of the forward: the im2col matrix."""
    exists, start = column
    if not exists or kk >= geom[GEMM_K]:
        tile[slot_k, slot_mn] = 0
    else:
        _x_pad_into(geom, x_tables[0], start, _window_entry(x_tables[2], kk), tile, slot_k, slot_mn)


@cuda.jit(device=True, inline=True)
def _output_position(geom, g, r, col):
    """(n, k, i, j) of the forward product's row r (k' in group g) and column col = (n, i, j)."""
    plane = geom[H_OUT] * geom[W_OUT]
    return col // plane, g * geom[K_PER_GROUP] + r, (col % plane) // geom[W_OUT], col % geom[W_OUT]


@cuda.jit(device=True, inline=True)
def _store_output(geom, y, bias, g, r, col, value):
    n, k, i, j = _output_position(geom, g, r, col)
    y[uint64(n), uint64(k), uint64(i), uint64(j)] = value + bias[uint64(k)]


@cuda.jit(device=True, inline=True)
def _store_output_relu(geom, y, bias, g, r, col, value):
    """The epilogue of a convolution followed by a ReLU: max(value + b, 0) stored once, where a
    separate ReLU would read y back and write it again in a second launch."""
    n, k, i, j = _output_position(geom, g, r, col)
    y[uint64(n), uint64(k), uint64(i), uint64(j)] = relu(value + bias[uint64(k)])


@cuda.jit(device=True, inline=True)
def _grad_y_channel(geom, grad_y_tables, g, r):
    """Row r of the weight gradient's A: the offset of channel g*K/G + r's plane in an image of grad_y."""
    return r < geom[GEMM_M], (g * geom[K_PER_GROUP] + r) * geom[H_OUT] * geom[W_OUT]


@cuda.jit(device=True, inline=True)
def _grad_y_rows(geom, grad_y_tables, g, row, m, tile, slot_k, slot_mn):
    """A[k', (n, i, j)] = grad_y[n, g*K/G + k', i, j] (the column table's COL_GRAD_Y entry is
    n*K*H_out*W_out + i*W_out + j)."""
    exists, channel_offset = row
    if exists and m < geom[GEMM_K]:
        grad_y, columns = grad_y_tables
        tile[slot_k, slot_mn] = grad_y[uint64(columns[uint64(m), COL_GRAD_Y] + channel_offset)]
    else:
        tile[slot_k, slot_mn] = 0


@cuda.jit(device=True, inline=True)
def _im2col_row(geom, x_tables, g, kk):
    """Row kk of the im2col matrix, the weight gradient's column kk of B: whether it exists, and
    its window entry."""
    if kk < geom[GEMM_N]:
        return True, _window_entry(x_tables[2], kk)
    return False, _NOWHERE


@cuda.jit(device=True, inline=True)
def _im2col_transposed(geom, x_tables, g, m, window, tile, slot_k, slot_mn):
    """B[(n, i, j), (c', p, q)] of the weight gradient: the im2col matrix read the other way round."""
    exists, entry = window
    if not exists or m >= geom[GEMM_K]:
        tile[slot_k, slot_mn] = 0
    else:
        _x_pad_into(geom, x_tables[0], _window_start(geom, x_tables[1], g, m), entry, tile, slot_k, slot_mn)


@cuda.jit(device=True, inline=True)
def _store_weight_grad(geom, grad_w, unused, g, r, kk, value):
    grad_w[uint64((g * geom[K_PER_GROUP] + r) * geom[GEMM_N] + kk)] = value


@cuda.jit(device=True, inline=True)
def _weight_channel(geom, w_tables, g, c):
    """Row c of the input gradient's A: the offset of w[g*K/G, c] in the flattened w."""
    kernel_size = geom[KH] * geom[KW]
    return c < geom[GEMM_M], g * geom[K_PER_GROUP] * geom[C_PER_GROUP] * kernel_size + c * kernel_size


@cuda.jit(device=True, inline=True)
def _weight_transposed(geom, w_tables, g, row, kk, tile, slot_k, slot_mn):
    """A[c', (k', p, q)] = w[g*K/G + k', c', p, q], (k', p, q) the phase's kk-th window entry."""
    exists, offset = row
    if exists and kk < geom[GEMM_K]:
        w, rows = w_tables
        tile[slot_k, slot_mn] = w[uint64(offset + rows[PHASE_W, uint64(kk)])]
    else:
        tile[slot_k, slot_mn] = 0


@cuda.jit(device=True, inline=True)
def _grad_y_column(geom, grad_y_tables, g, col):
    """Column col = (n, h, w) of the input gradient's B: u, v and the offset of image n's group g in
    grad_y (from the phase's column table)."""
    if col >= geom[GEMM_N]:
        return False, _NOWHERE
    columns = grad_y_tables[1]
    col = uint64(col)
    group_base = g * geom[K_PER_GROUP] * geom[H_OUT] * geom[W_OUT]
    return True, (columns[PHASE_U, col], columns[PHASE_V, col], group_base + columns[PHASE_GRAD_Y, col])


@cuda.jit(device=True, inline=True)
def _grad_y_gathered(geom, grad_y_tables, g, kk, column, tile, slot_k, slot_mn):
    """B[(k', p, q), (n, h, w)] = grad_y[n, g*K/G + k', i, j] for the (i, j) whose window put
    x_pad[h + pad_top, w + pad_left] at offset (p, q), or 0 where that is outside the output. In the
    phase's tables, i = u - a and j = v - b (u, v per column; a, b per window entry)."""
    exists, (u, v, base) = column
    if not exists or kk >= geom[GEMM_K]:
        tile[slot_k, slot_mn] = 0
        return
    grad_y, rows = grad_y_tables[0], grad_y_tables[2]
    offset, a, b = _unpack(rows[PHASE_PACKED, uint64(kk)])
    i, j = uint32(u - a), uint32(v - b)
    if i >= uint32(geom[H_OUT]) or j >= uint32(geom[W_OUT]):  # (as in _x_pad_into: one compare each)
        tile[slot_k, slot_mn] = 0
        return
    tile[slot_k, slot_mn] = grad_y[uint64(base + offset + i * geom[W_OUT] + j)]


@cuda.jit(device=True, inline=True)
def _store_input_grad(geom, grad_x, columns, g, c, col, value):
    """(The column table comes in the bias argument, which this product has no use for.)"""
    plane = geom[HEIGHT] * geom[WIDTH]
    grad_x[uint64(columns[PHASE_X, uint64(col)] + (g * geom[C_PER_GROUP] + c) * plane)] = value


# ---- the index tables -------------------------------------------------------------------------
# The column table over (n, i, j) and the window table over (c', p, q), for the x_pad reads of the
# forward and the weight gradient. A window entry's three numbers are packed into one int64 word
# (``_pack``), so a loader reads them with one load where it took three: the forward reads the
# window table at every step, by every element of B (the column table once per thread). The
# weight gradient reads a column's four entries at every step (grad_y's offset for A, the window's
# start for B): they sit side by side, table[m, COL_...], one address and one 32-byte sector for all
# four (508 -> 487 instructions a step against a table of four rows).
COL_BASE, COL_H0, COL_W0, COL_GRAD_Y = range(4)  # the columns of the column table, (N*H_out*W_out, 4)
ROW_PACKED = 0  # c'*H*W + p*W + q, p, q
# One stride phase of the input gradient: per column (n, h, w), the grad_y offset of image n, u and
# v (h + pad_top = u*sh + ph) and the flat x index of (n, 0, h, w); per window entry (k', p, q)
# with p = ph + a*sh, q = pw + b*sw: k'*H_out*W_out, a and b packed, and the weight's offset
# k'*C/G*kh*kw + p*kw + q.
PHASE_GRAD_Y, PHASE_U, PHASE_V, PHASE_X = range(4)
PHASE_PACKED, PHASE_W = range(2)  # (k'*H_out*W_out, a, b), the weight's offset
PACKED_LOW_LIMIT, PACKED_HIGH_LIMIT = 2 ** 31, 2 ** 15  # what a packed word's parts may reach, exclusive


@cuda.jit(device=True, inline=True)
def _pack(low, middle, high):
    """One table word: low (0 <= low < 2**31) in bits 0-31, middle and high (0 <= . < 2**15) in bits
    32-47 and 48-63 (``_check_packable`` refuses a shape whose numbers would not fit)."""
    return low | (middle << 32) | (high << 48)


@cuda.jit(device=True, inline=True)
def _unpack(word):
    """(low, middle, high) of a ``_pack`` word."""
    return word & 0xFFFFFFFF, (word >> 32) & 0xFFFF, word >> 48


def _check_packable(shape):
    """The window tables' packed words hold one image group's offsets in 31 bits and kernel positions
    in 15: refuse (clearly) the convolution whose numbers would not fit, rather than compute garbage."""
    _, _, h, w, _, kh, kw = shape[:7]
    h_out, w_out, c_per_group, k_per_group = shape[11:15]
    for name, value, limit in (("C/G*H*W (the input's channels of one group, one image)", c_per_group * h * w,
                                PACKED_LOW_LIMIT),
                               ("K/G*H_out*W_out (the output's channels of one group, one image)",
                                k_per_group * h_out * w_out, PACKED_LOW_LIMIT),
                               ("the kernel's height", kh, PACKED_HIGH_LIMIT),
                               ("the kernel's width", kw, PACKED_HIGH_LIMIT)):
        if value >= limit:
            raise ValueError(f"conv2d (cuda): {name} is {value}; the GPU kernels' index tables hold at most "
                             f"{limit - 1}")


@jit
def _output_columns(geom, table):
    """Per column m = (n, i, j) of the forward and weight-gradient products."""
    plane = geom[H_OUT] * geom[W_OUT]
    for m in range(cuda.grid(1), table.shape[0], cuda.gridsize(1)):
        n, ij = m // plane, m % plane
        h0 = (ij // geom[W_OUT]) * geom[STRIDE_H] - geom[PAD_TOP]
        w0 = (ij % geom[W_OUT]) * geom[STRIDE_W] - geom[PAD_LEFT]
        table[m, COL_BASE] = n * geom[CHANNELS] * geom[HEIGHT] * geom[WIDTH] + h0 * geom[WIDTH] + w0
        table[m, COL_H0] = h0
        table[m, COL_W0] = w0
        table[m, COL_GRAD_Y] = n * geom[KERNELS] * plane + ij


@jit
def _x_windows(geom, table):
    """Per reduction index kk = (c', p, q) of the x_pad reads: c'*H*W + p*W + q, p and q, packed."""
    kh, kw = geom[KH], geom[KW]
    for kk in range(cuda.grid(1), table.shape[1], cuda.gridsize(1)):
        p, q = (kk // kw) % kh, kk % kw
        table[ROW_PACKED, kk] = _pack(((kk // (kh * kw)) * geom[HEIGHT] + p) * geom[WIDTH] + q, p, q)


@jit
def _phase_columns(geom, u_first, u_count, v_first, v_count, ph, pw, table):
    """Per column m = (n, u - u_first, v - v_first) of one stride phase of the input gradient."""
    per_image = u_count * v_count
    for m in range(cuda.grid(1), table.shape[1], cuda.gridsize(1)):
        n, uv = m // per_image, m % per_image
        u, v = u_first + uv // v_count, v_first + uv % v_count
        h = u * geom[STRIDE_H] + ph - geom[PAD_TOP]
        w = v * geom[STRIDE_W] + pw - geom[PAD_LEFT]
        table[PHASE_GRAD_Y, m] = n * geom[KERNELS] * geom[H_OUT] * geom[W_OUT]
        table[PHASE_U, m] = u
        table[PHASE_V, m] = v
        table[PHASE_X, m] = n * geom[CHANNELS] * geom[HEIGHT] * geom[WIDTH] + h * geom[WIDTH] + w


@jit
def _phase_windows(geom, a_count, b_count, ph, pw, table):
    """Per window entry kk = (k', a, b) of one stride phase: p = ph + a*sh, q = pw + b*sw."""
    per_kernel = a_count * b_count
    for kk in range(cuda.grid(1), table.shape[1], cuda.gridsize(1)):
        k, ab = kk // per_kernel, kk % per_kernel
        a, b = ab // b_count, ab % b_count
        p, q = ph + a * geom[STRIDE_H], pw + b * geom[STRIDE_W]
        table[PHASE_PACKED, kk] = _pack(k * geom[H_OUT] * geom[W_OUT], a, b)
        table[PHASE_W, kk] = (k * geom[C_PER_GROUP] * geom[KH] + p) * geom[KW] + q


def _output_tables(shape):
    """(column table, window table) of the x_pad reads for a convolution of ``shape`` (``_geometry``'s)."""
    def build():
        _check_packable(shape)
        n, kh, kw = shape[0], shape[5], shape[6]
        h_out, w_out, c_per_group = shape[11:14]
        geom = (0, 0, 0) + shape  # (the tables' kernels read geom's shape entries only)
        columns = empty((n * h_out * w_out, 4), "int64")
        _output_columns[grid_1d(columns.shape[0])](geom, columns)
        windows = empty((1, c_per_group * kh * kw), "int64")
        _x_windows[grid_1d(windows.shape[1])](geom, windows)
        return columns, windows

    return kept(("conv output", shape), build)


def _phase_range(stride, phase, pad, size):
    """(first, count) of the u with 0 <= u*stride + phase - pad < size."""
    first = max(0, -((phase - pad) // stride))  # ceil((pad - phase) / stride), at least 0
    last = (size - 1 + pad - phase) // stride
    return first, max(0, last - first + 1)


def _phase_tables(shape):
    """For each stride phase (ph, pw) of the input gradient that has columns: (columns, windows,
    their counts)."""
    def build():
        _check_packable(shape)
        n, _, h, w, _, kh, kw, sh, sw, top, left = shape[:11]
        k_per_group = shape[14]
        geom = (0, 0, 0) + shape
        phases = []
        for ph in range(sh):
            for pw in range(sw):
                u_first, u_count = _phase_range(sh, ph, top, h)
                v_first, v_count = _phase_range(sw, pw, left, w)
                if u_count * v_count == 0:
                    continue  # no input position in this phase
                a_count, b_count = len(range(ph, kh, sh)), len(range(pw, kw, sw))
                columns = empty((4, n * u_count * v_count), "int64")
                _phase_columns[grid_1d(columns.shape[1])](geom, u_first, u_count, v_first, v_count, ph, pw, columns)
                windows = empty((2, max(1, k_per_group * a_count * b_count)), "int64")  # (K = 0: its gradient is 0)
                if a_count * b_count:
                    _phase_windows[grid_1d(windows.shape[1])](geom, a_count, b_count, ph, pw, windows)
                phases.append((columns, windows, columns.shape[1], k_per_group * a_count * b_count))
        return phases

    return kept(("conv phases", shape), build)


# At 64 x 64 tiles the products take a cap of 64 registers (``make_gemm``'s ``max_registers``, docs/gpu.md):
# the forward's loaders left the compiler at 72 (3 blocks per SM), capped it fits 4 at the same instructions
# per step; the gradients, at 56 without the cap, issue fewer under it (input 462 -> 451 a step, weight
# 494 -> 490) at the same 4 blocks.
_REGISTERS = {SQUARE: 64}
_forward = make_gemm(_weight_row_major, _im2col, _store_output, prepare_a=_weight_row, prepare_b=_im2col_column,
                     max_registers=_REGISTERS)
_forward_relu = make_gemm(_weight_row_major, _im2col, _store_output_relu, prepare_a=_weight_row,
                          prepare_b=_im2col_column, max_registers=_REGISTERS)
_weight_grad = make_gemm(_grad_y_rows, _im2col_transposed, _store_weight_grad, prepare_a=_grad_y_channel,
                         prepare_b=_im2col_row, max_registers=_REGISTERS)
_input_grad = make_gemm(_weight_transposed, _grad_y_gathered, _store_input_grad, prepare_a=_weight_channel,
                        prepare_b=_grad_y_column, max_registers=_REGISTERS)


def _geometry(x_shape, w_shape, stride, padding, groups):
    n, c, h, w = x_shape
    k, c_per_group, kh, kw = w_shape
    (top, bottom), (left, right) = padding
    h_out = (h + top + bottom - kh) // stride[0] + 1
    w_out = (w + left + right - kw) // stride[1] + 1
    shape = (n, c, h, w, k, kh, kw, stride[0], stride[1], top, left, h_out, w_out, c_per_group, k // groups)
    return shape, h_out, w_out


def _run_forward(product, x, w, b, stride, padding, groups):
    shape, h_out, w_out = _geometry(x.shape, w.shape, stride, padding, groups)
    n, k, c_per_group, kh, kw = x.shape[0], w.shape[0], w.shape[1], w.shape[2], w.shape[3]
    y = empty((n, k, h_out, w_out), x.dtype)
    bias = b if b is not None else full(k, 0, x.dtype)
    geom = (k // groups, n * h_out * w_out, c_per_group * kh * kw) + shape
    x_tables = (flat(x), *_output_tables(shape))
    product(geom, groups, flat(w), x_tables, y, bias)
    return y


def conv2d_forward(x, w, b, stride, padding, groups):
    return _run_forward(_forward, x, w, b, stride, padding, groups)


def conv2d_relu_forward(x, w, b, stride, padding, groups):
    """relu(conv2d_forward(...)) in one launch: the ReLU in the product's epilogue."""
    return _run_forward(_forward_relu, x, w, b, stride, padding, groups)


def conv2d_backward(x, w, grad_y, stride, padding, groups, needs_input_grad=(True, True, True)):
    shape, h_out, w_out = _geometry(x.shape, w.shape, stride, padding, groups)
    n, c, h, wd = x.shape
    k, c_per_group, kh, kw = w.shape
    grad_x = grad_w = grad_b = None
    if needs_input_grad[0]:
        grad_x = empty(x.shape, x.dtype)
        grad_y_flat, grad_x_flat, w_flat = flat(grad_y), flat(grad_x), flat(w)
        for columns, windows, column_count, window_count in _phase_tables(shape):
            geom = (c_per_group, column_count, window_count) + shape
            _input_grad(geom, groups, (w_flat, windows), (grad_y_flat, columns, windows), grad_x_flat, columns)
    if needs_input_grad[1]:
        grad_w = empty(w.shape, w.dtype)
        geom = (k // groups, c_per_group * kh * kw, n * h_out * w_out) + shape
        columns, windows = _output_tables(shape)
        x_tables = (flat(x), columns, windows)
        _weight_grad(geom, groups, (flat(grad_y), columns), x_tables, flat(grad_w), grad_w)
    if needs_input_grad[2]:
        grad_b = sum_over_batch_and_space(grad_y.reshape(n, k, h_out * w_out))
    return grad_x, grad_w, grad_b
