"""max_pool2d: CPU kernel vs reference (tie rule included), gradcheck, PyTorch parity."""
import numpy as np
from hypothesis import given

import minicnn as mc
from minicnn.kernels.cpu import pool as cpu
from minicnn.kernels.reference import pool as ref
from tests.helpers import rel_error
from tests.strategies import FLOAT_DTYPES, distinct, normal, pool_cases, seeds

F = mc.functional


def _args(case):
    return case["kernel_size"], case["stride"], case["padding"]


@given(case=pool_cases(), seed=seeds, dtype=FLOAT_DTYPES)
def test_cpu_matches_reference(case, seed, dtype):
    # Rounded values make ties common, so the tie rule is exercised too.
    x = np.round(normal(seed, case["x_shape"], dtype) * 2).astype(dtype)
    y, argmax = cpu.max_pool2d_forward(x, *_args(case))
    y_ref, argmax_ref = ref.max_pool2d_forward(x, *_args(case))
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(argmax, argmax_ref)
    grad_y = normal(seed + 1, y.shape, dtype)
    grad_x = cpu.max_pool2d_backward(grad_y, argmax, x.shape, *_args(case))
    assert rel_error(grad_x, ref.max_pool2d_backward(grad_y, argmax_ref, x.shape, *_args(case))) < 1e-12


@given(case=pool_cases(max_size=20), seed=seeds)
def test_cpu_matches_reference_with_nan_and_inf(case, seed):
    """A NaN wins its window (the first one, for argmax), padding never wins, not even
    against an input of -inf; larger planes than above, so most outputs take the
    vectorised interior path, and more of them than one task of the kernel takes."""
    rng = np.random.default_rng(seed)
    n, _, h, w = case["x_shape"]
    x = np.round(rng.standard_normal((n, 9, h, w)) * 2).astype(np.float32)  # 9-18 planes: tasks of 8 and a rest
    x[rng.random(x.shape) < 0.05] = np.nan
    x[rng.random(x.shape) < 0.2] = -np.inf
    y, argmax = cpu.max_pool2d_forward(x, *_args(case))
    y_ref, argmax_ref = ref.max_pool2d_forward(x, *_args(case))
    np.testing.assert_array_equal(y, y_ref)  # NaN equals NaN here
    np.testing.assert_array_equal(argmax, argmax_ref)


def test_alexnet_pool_matches_reference():
    """pool1's shape, a few planes: the interior path at full size (PW = 28 > W_out = 27)."""
    x = normal(3, (1, 9, 55, 55), np.float32)
    x[0, 4, 10:20, 30:40] = 0.0  # a block of ties
    y, argmax = cpu.max_pool2d_forward(x, (3, 3), (2, 2), (0, 0))
    y_ref, argmax_ref = ref.max_pool2d_forward(x, (3, 3), (2, 2), (0, 0))
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(argmax, argmax_ref)


def test_ties_go_to_the_first_element_in_row_major_order():
    x = np.zeros((1, 1, 3, 3), dtype=np.float32)
    x[0, 0, 1, 2] = x[0, 0, 2, 0] = 5.0  # two maxima; (1, 2) comes first in row-major order
    for kernels in (cpu, ref):
        y, argmax = kernels.max_pool2d_forward(x, (3, 3), (1, 1), (0, 0))
        assert y[0, 0, 0, 0] == 5.0 and argmax[0, 0, 0, 0] == 1 * 3 + 2


@given(case=pool_cases(max_size=7), seed=seeds)
def test_gradcheck(case, seed):
    x = mc.tensor(distinct(seed, case["x_shape"]), requires_grad=True)
    mc.gradcheck(lambda x: F.max_pool2d(x, *_args(case)), [x])


def test_gradcheck_overlapping_3x3_stride_2():
    x = mc.tensor(distinct(0, (2, 3, 13, 13)), requires_grad=True)
    result = mc.gradcheck(lambda x: F.max_pool2d(x, 3, stride=2), [x], max_coords=1014)
    assert result.ok and result.checked == 1014
    assert F.max_pool2d(x, 3, stride=2).shape == (2, 3, 6, 6)


@given(case=pool_cases(), seed=seeds)
def test_matches_torch(torch, case, seed):
    x = distinct(seed, case["x_shape"], np.float32)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.max_pool2d(tx, *_args(case))
    mx = mc.tensor(x, requires_grad=True)
    y = F.max_pool2d(mx, *_args(case))
    np.testing.assert_array_equal(y.data, ty.detach().numpy())
    grad_y = normal(seed, y.shape, np.float32)
    ty.backward(torch.tensor(grad_y))
    y.backward(grad_y)
    assert rel_error(mx.grad, tx.grad.numpy()) < 1e-6


def test_stride_defaults_to_kernel_size():
    x = mc.tensor(normal(0, (1, 1, 8, 8), np.float32))
    assert F.max_pool2d(x, 2).shape == (1, 1, 4, 4)


def test_a_leaf_keeps_the_backward_gradient_without_a_copy(monkeypatch):
    """The kernel returns grad_x as a reshaped view of its arena array; the autograd engine
    still keeps it as the leaf's .grad instead of copying it (74 MB at pool1, batch 64)."""
    copies = []
    original = mc.device.copy
    monkeypatch.setattr(mc.device, "copy", lambda array: copies.append(array.shape) or original(array))
    x = mc.tensor(normal(0, (2, 8, 127, 127), np.float32), requires_grad=True)  # 1 MB: from the arenas
    y = F.max_pool2d(x, 3, stride=2)
    y.backward(normal(1, y.shape, np.float32))
    assert x.grad.shape == x.shape and copies == []
