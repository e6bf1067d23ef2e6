"""Hypothesis strategies shared by the kernel tests: shapes and arguments of each op,
and inputs drawn away from kinks (ReLU at 0, max-pool ties) for gradient checks."""
import numpy as np
from hypothesis import strategies as st

FLOAT_DTYPES = st.sampled_from([np.float32, np.float64])


@st.composite
def conv_cases(draw, max_size=9, kernel=None, stride=None):
    """Arguments of a small conv2d: shapes, stride, padding, groups (with and without bias).
    ``kernel`` (kh, kw) and ``stride`` fix those instead of drawing them."""
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    c_per_group = draw(st.integers(1, 3))
    k_per_group = draw(st.integers(1, 3))
    kh, kw = kernel or (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    stride = stride or (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = draw(st.one_of(
        st.tuples(st.integers(0, 2), st.integers(0, 2)),
        st.sampled_from(["same", "valid"]),
    ))
    pad_h = 2 * padding[0] if isinstance(padding, tuple) else 0
    pad_w = 2 * padding[1] if isinstance(padding, tuple) else 0
    h = draw(st.integers(max(1, kh - pad_h), max_size))
    w = draw(st.integers(max(1, kw - pad_w), max_size))
    return {
        "x_shape": (draw(st.integers(1, 2)), c_per_group * groups, h, w),
        "w_shape": (k_per_group * groups, c_per_group, kh, kw),
        "bias": draw(st.booleans()),
        "stride": stride,
        "padding": padding,
        "groups": groups,
    }


@st.composite
def pool_cases(draw, max_size=9):
    """Arguments of a small max_pool2d, overlapping (stride < kernel) or not."""
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2)))
    h = draw(st.integers(max(1, kh - 2 * padding[0]), max_size))
    w = draw(st.integers(max(1, kw - 2 * padding[1]), max_size))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), h, w)
    return {"x_shape": shape, "kernel_size": (kh, kw), "stride": stride, "padding": padding}


def image_shapes(max_channels=7, max_size=6):
    return st.tuples(st.integers(1, 2), st.integers(1, max_channels), st.integers(1, max_size), st.integers(1, max_size))


def normal(seed, shape, dtype=np.float64, scale=1.0):
    return np.asarray(np.random.default_rng(seed).standard_normal(shape) * scale, dtype=dtype)


def distinct(seed, shape, dtype=np.float64, spacing=1e-2):
    """Values at least ``spacing`` apart, in random order: max pooling has no ties and a
    finite-difference step of 1e-6 never changes a window's winner."""
    n = int(np.prod(shape))
    values = np.random.default_rng(seed).permutation(n) * spacing - n * spacing / 2
    return values.reshape(shape).astype(dtype)


def away_from_zero(seed, shape, dtype=np.float64, gap=1e-2):
    """Normal values pushed at least ``gap`` away from 0 (ReLU's kink)."""
    x = normal(seed, shape)
    return np.asarray(np.sign(x) * (np.abs(x) + gap), dtype=dtype)


seeds = st.integers(0, 2**32 - 1)
