"""batch_norm (2-D and 4-D, training and eval): CPU kernel vs reference, running statistics,
gradcheck, PyTorch parity."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minicnn as mc
from minicnn.kernels.cpu import batchnorm as cpu
from minicnn.kernels.reference import batchnorm as ref
from tests.helpers import rel_error, tolerance
from tests.strategies import FLOAT_DTYPES, normal, seeds

F = mc.functional
shapes = st.one_of(
    st.tuples(st.integers(2, 6), st.integers(1, 5)),
    st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4), st.integers(1, 4)),
).filter(lambda s: int(np.prod(s)) // s[1] >= 2)


def _term_size(weight, grad_y, var):
    """The size of the terms whose difference is dL/dx: |weight * grad_y| / std."""
    return np.abs(weight).max() * np.abs(grad_y).max() / np.sqrt(var.min() + 1e-5)


def _params(seed, channels, dtype):
    return normal(seed, (channels,), dtype) + 1, normal(seed + 1, (channels,), dtype)


@given(shape=shapes, seed=seeds, dtype=FLOAT_DTYPES)
def test_cpu_matches_reference(shape, seed, dtype):
    x = normal(seed, shape, dtype, scale=3.0) + 2
    weight, bias = _params(seed + 1, shape[1], dtype)
    y, mean, var = cpu.batch_norm_train_forward(x, weight, bias, 1e-5)
    y_ref, mean_ref, var_ref = ref.batch_norm_train_forward(x, weight, bias, 1e-5)
    assert y.dtype == dtype and mean.dtype == dtype
    tol = 1e-4 if dtype == np.float32 else 1e-10  # normalising divides by a small std
    assert rel_error(y, y_ref) < tol and rel_error(mean, mean_ref) < tol and rel_error(var, var_ref) < tol
    grad_y = normal(seed + 3, shape, dtype)
    for training in (True, False):
        got = cpu.batch_norm_backward(x, mean, var, weight, grad_y, 1e-5, training)
        want = ref.batch_norm_backward(x, mean, var, weight, grad_y, 1e-5, training)
        # dL/dx is a difference of terms of size |weight * grad_y| / std that can cancel almost
        # exactly (with two values per channel it is ~0): measure the error against those terms.
        assert got[0].dtype == dtype and rel_error(got[0], want[0], _term_size(weight, grad_y, var)) < tol
        for a, b in zip(got[1:], want[1:]):
            assert a.dtype == dtype and rel_error(a, b) < tol
    y_eval = cpu.batch_norm_eval_forward(x, mean, var, weight, bias, 1e-5)
    assert rel_error(y_eval, ref.batch_norm_eval_forward(x, mean, var, weight, bias, 1e-5)) < tolerance(dtype) * 10


@pytest.mark.parametrize("training", [True, False])
@given(shape=shapes, seed=seeds)
def test_gradcheck(training, shape, seed):
    x = mc.tensor(normal(seed, shape, scale=2.0), requires_grad=True)
    weight, bias = (mc.tensor(a, requires_grad=True) for a in _params(seed + 1, shape[1], np.float64))
    running_mean = mc.tensor(normal(seed + 2, (shape[1],)))
    running_var = mc.tensor(np.abs(normal(seed + 3, (shape[1],))) + 0.5)
    mc.gradcheck(lambda x, w, b: F.batch_norm(x, running_mean, running_var, w, b, training, 0.1, 1e-5),
                 [x, weight, bias])


def test_gradcheck_without_affine_parameters():
    x = mc.tensor(normal(0, (4, 3, 2, 2)), requires_grad=True)
    mc.gradcheck(lambda x: F.batch_norm(x, None, None, training=True), [x])


@given(shape=shapes, seed=seeds)
def test_matches_torch_with_running_statistics(torch, shape, seed):
    x = normal(seed, shape, np.float32, scale=3.0) + 1
    weight, bias = _params(seed + 1, shape[1], np.float32)
    grad_y = normal(seed + 2, shape, np.float32)
    t_stats = [torch.zeros(shape[1]), torch.ones(shape[1])]
    m_stats = [mc.tensor(np.zeros(shape[1], np.float32)), mc.tensor(np.ones(shape[1], np.float32))]
    for training in (True, False):
        tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, weight, bias))
        mx, mw, mb = (mc.tensor(a, requires_grad=True) for a in (x, weight, bias))
        ty = torch.nn.functional.batch_norm(tx, *t_stats, tw, tb, training, 0.1, 1e-5)
        y = F.batch_norm(mx, *m_stats, mw, mb, training, 0.1, 1e-5)
        assert rel_error(y.data, ty.detach().numpy()) < 1e-4
        for ours, theirs in zip(m_stats, t_stats):
            assert rel_error(ours.data, theirs.numpy()) < 1e-5
        ty.backward(torch.tensor(grad_y))
        y.backward(grad_y)
        var = x.reshape(shape[0], shape[1], -1).var(axis=(0, 2))
        assert rel_error(mx.grad, tx.grad.numpy(), _term_size(weight, grad_y, var)) < 1e-4
        for ours, theirs in ((mw, tw), (mb, tb)):
            assert rel_error(ours.grad, theirs.grad.numpy()) < 1e-4
