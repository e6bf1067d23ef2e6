"""relu, sigmoid, tanh: CPU kernels vs reference, gradcheck away from the kink, PyTorch parity."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minicnn as mc
from minicnn.kernels.cpu import activation as cpu
from minicnn.kernels.reference import activation as ref
from tests.helpers import rel_error, tolerance
from tests.strategies import FLOAT_DTYPES, away_from_zero, normal, seeds

F = mc.functional
shapes = st.lists(st.integers(1, 6), min_size=1, max_size=4).map(tuple)
NAMES = ["relu", "sigmoid", "tanh"]


def _saved(name, x, y):
    """relu's backward takes the input, sigmoid's and tanh's the output."""
    return x if name == "relu" else y


@pytest.mark.parametrize("name", NAMES)
@given(shape=shapes, seed=seeds, dtype=FLOAT_DTYPES)
def test_cpu_matches_reference(name, shape, seed, dtype):
    x = normal(seed, shape, dtype, scale=5.0)
    y = getattr(cpu, f"{name}_forward")(x)
    assert y.dtype == dtype
    assert rel_error(y, getattr(ref, f"{name}_forward")(x)) < tolerance(dtype)
    grad_y = normal(seed + 1, shape, dtype)
    grad_x = getattr(cpu, f"{name}_backward")(_saved(name, x, y), grad_y)
    assert grad_x.dtype == dtype
    assert rel_error(grad_x, getattr(ref, f"{name}_backward")(_saved(name, x, y), grad_y)) < tolerance(dtype)


def test_relu_gradient_at_zero_is_zero():
    x = mc.tensor(np.array([-1.0, 0.0, 2.0], dtype=np.float32), requires_grad=True)
    F.relu(x).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 1.0])


def test_sigmoid_does_not_overflow():
    y = F.sigmoid(mc.tensor(np.array([-1000.0, 0.0, 1000.0], dtype=np.float32))).data
    np.testing.assert_array_equal(y, np.array([0.0, 0.5, 1.0], dtype=np.float32))


@pytest.mark.parametrize("name", NAMES)
@given(shape=shapes, seed=seeds)
def test_gradcheck(name, shape, seed):
    x = mc.tensor(away_from_zero(seed, shape), requires_grad=True)
    mc.gradcheck(getattr(F, name), [x])


@pytest.mark.parametrize("name", NAMES)
@given(shape=shapes, seed=seeds)
def test_matches_torch(torch, name, shape, seed):
    x = away_from_zero(seed, shape, np.float32)
    tx = torch.tensor(x, requires_grad=True)
    ty = getattr(torch, name)(tx)
    mx = mc.tensor(x, requires_grad=True)
    y = getattr(F, name)(mx)
    assert rel_error(y.data, ty.detach().numpy()) < 1e-5
    grad_y = normal(seed, shape, np.float32)
    ty.backward(torch.tensor(grad_y))
    y.backward(grad_y)
    assert rel_error(mx.grad, tx.grad.numpy()) < 1e-5
