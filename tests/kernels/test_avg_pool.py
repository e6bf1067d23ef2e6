"""avg_pool2d and adaptive_avg_pool2d: CPU kernel vs reference, gradcheck, PyTorch parity
(padding counted or not, ceil_mode, divisor_override; adaptive sizes that do and do not divide)."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minicnn as mc
from minicnn.errors import ArgumentError, ShapeError
from minicnn.kernels.cpu import pool as cpu
from minicnn.kernels.reference import pool as ref
from tests.helpers import pool_windows, rel_error
from tests.strategies import FLOAT_DTYPES, normal, pool_cases, seeds

F = mc.functional
nn = mc.nn


@st.composite
def avg_cases(draw):
    case = draw(pool_cases())
    case["ceil_mode"] = draw(st.booleans())
    case["count_include_pad"] = draw(st.booleans())
    case["divisor_override"] = draw(st.one_of(st.none(), st.integers(1, 5)))
    return case


def _kwargs(case):
    return {key: case[key] for key in ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                                       "divisor_override")}


@st.composite
def adaptive_cases(draw):
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 12)), draw(st.integers(1, 12)))
    out = (draw(st.one_of(st.none(), st.integers(1, 14))), draw(st.one_of(st.none(), st.integers(1, 14))))
    return shape, out


@given(case=avg_cases(), seed=seeds, dtype=FLOAT_DTYPES)
def test_cpu_matches_reference(case, seed, dtype):
    x = normal(seed, case["x_shape"], dtype)
    rows, cols = pool_windows(F.avg_pool2d, x, **_kwargs(case))
    y = cpu.avg_pool2d_forward(x, rows, cols)
    assert y.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    # Means whose terms cancel (16 terms near 1 averaging 7e-4) are rounded on the scale of the
    # terms: the same mean of |x| (and sum of |grad_y|) is each comparison's scale.
    y_scale = float(ref.avg_pool2d_forward(np.abs(x), rows, cols).max())
    assert rel_error(y, ref.avg_pool2d_forward(x, rows, cols), y_scale) < tol
    grad_y = normal(seed + 1, y.shape, dtype)
    grad_x = cpu.avg_pool2d_backward(grad_y, x.shape, rows, cols)
    assert grad_x.dtype == dtype
    x_scale = float(ref.avg_pool2d_backward(np.abs(grad_y), x.shape, rows, cols).max())
    assert rel_error(grad_x, ref.avg_pool2d_backward(grad_y, x.shape, rows, cols), x_scale) < tol


@given(case=adaptive_cases(), seed=seeds)
def test_adaptive_cpu_matches_reference(case, seed):
    shape, out = case
    x = normal(seed, shape)
    rows, cols = pool_windows(F.adaptive_avg_pool2d, x, output_size=out)
    y = cpu.avg_pool2d_forward(x, rows, cols)
    assert rel_error(y, ref.avg_pool2d_forward(x, rows, cols)) < 1e-12
    grad_y = normal(seed + 1, y.shape)
    assert rel_error(cpu.avg_pool2d_backward(grad_y, shape, rows, cols),
                     ref.avg_pool2d_backward(grad_y, shape, rows, cols)) < 1e-12


@given(case=avg_cases(), seed=seeds)
def test_gradcheck(case, seed):
    x = mc.tensor(normal(seed, case["x_shape"]), requires_grad=True)
    assert mc.gradcheck(lambda x: F.avg_pool2d(x, **_kwargs(case)), [x]).ok


@given(case=adaptive_cases(), seed=seeds)
def test_adaptive_gradcheck(case, seed):
    shape, out = case
    x = mc.tensor(normal(seed, shape), requires_grad=True)
    assert mc.gradcheck(lambda x: F.adaptive_avg_pool2d(x, out), [x]).ok


def _against_torch(torch, x, ours, theirs, seed):
    tx = torch.tensor(x, requires_grad=True)
    ty = theirs(tx)
    mx = mc.tensor(x, requires_grad=True)
    y = ours(mx)
    assert y.shape == tuple(ty.shape)
    assert rel_error(y.data, ty.detach().numpy()) < 1e-12
    grad_y = normal(seed + 1, y.shape)
    ty.backward(torch.tensor(grad_y))
    y.backward(grad_y)
    assert rel_error(mx.grad, tx.grad.numpy()) < 1e-12


@given(case=avg_cases(), seed=seeds)
def test_matches_torch(torch, case, seed):
    x = normal(seed, case["x_shape"])
    module = nn.AvgPool2d(**_kwargs(case))
    _against_torch(torch, x, module, lambda t: torch.nn.functional.avg_pool2d(t, **_kwargs(case)), seed)


@given(case=adaptive_cases(), seed=seeds)
def test_adaptive_matches_torch(torch, case, seed):
    shape, out = case
    _against_torch(torch, normal(seed, shape), nn.AdaptiveAvgPool2d(out),
                   lambda t: torch.nn.functional.adaptive_avg_pool2d(t, out), seed)


def test_torchvision_alexnet_head_pools_13x13_to_6x6(torch):
    """torchvision's AlexNet: AdaptiveAvgPool2d((6, 6)) after the last 3x3/2 max pool; at 224 px the
    input is already 6x6 (the identity), at 256 px it is 7x7 (overlapping 2x2 windows)."""
    for size in (6, 7, 13):
        x = normal(size, (2, 4, size, size), np.float32)
        y = nn.AdaptiveAvgPool2d((6, 6))(mc.tensor(x))
        assert y.shape == (2, 4, 6, 6) and y.dtype == np.float32
        assert rel_error(y.data, torch.nn.functional.adaptive_avg_pool2d(torch.tensor(x), 6).numpy()) < 1e-6
    x = normal(0, (1, 2, 6, 6), np.float32)
    np.testing.assert_array_equal(F.adaptive_avg_pool2d(mc.tensor(x), 6).data, x)


def test_padding_counts_in_the_divisor_unless_asked_not_to():
    x = mc.tensor(np.ones((1, 1, 2, 2)))
    assert F.avg_pool2d(x, 3, stride=1, padding=1).data[0, 0, 0, 0] == pytest.approx(4 / 9)
    assert F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False).data[0, 0, 0, 0] == 1.0
    assert F.avg_pool2d(x, 2, divisor_override=1).data[0, 0, 0, 0] == 4.0


def test_repr():
    assert repr(nn.AvgPool2d(3, 2)) == "AvgPool2d(kernel_size=3, stride=2)"
    assert repr(nn.AvgPool2d(3, 2, 1, ceil_mode=True)) == "AvgPool2d(kernel_size=3, stride=2, padding=1, ceil_mode=True)"
    assert repr(nn.AdaptiveAvgPool2d((6, 6))) == "AdaptiveAvgPool2d(output_size=(6, 6))"


@pytest.mark.parametrize("call, message", [
    (lambda x: F.avg_pool2d(x, 3, padding=2), "avg_pool2d: padding must be at most half"),
    (lambda x: F.avg_pool2d(x, 9), "avg_pool2d: kernel 9x9 is larger than the padded input 4x4"),
    (lambda x: F.avg_pool2d(x, 2, ceil_mode=1), "avg_pool2d: ceil_mode must be True or False"),
    (lambda x: F.avg_pool2d(x, 2, divisor_override=0), "avg_pool2d: divisor_override must be a positive integer"),
    (lambda x: F.adaptive_avg_pool2d(x, 0), "adaptive_avg_pool2d: output_size must be a positive integer"),
    (lambda x: F.adaptive_avg_pool2d(x, (1, 2, 3)), "adaptive_avg_pool2d: output_size must be an int or a pair"),
    (lambda x: F.adaptive_avg_pool2d(x.reshape(16), 2), "adaptive_avg_pool2d: input must be 4-d"),
])
def test_bad_arguments_are_named(call, message):
    x = mc.tensor(np.zeros((1, 1, 4, 4)))
    with pytest.raises((ArgumentError, ShapeError), match=message):
        call(x)
