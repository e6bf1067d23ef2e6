"""softmax, log_softmax, cross_entropy: CPU kernels vs reference, stability, gradcheck
(with the random projection that catches what a plain sum hides), PyTorch parity."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minicnn as mc
from minicnn.kernels.cpu import softmax as cpu
from minicnn.kernels.reference import softmax as ref
from tests.helpers import rel_error, tolerance
from tests.strategies import FLOAT_DTYPES, normal, seeds

F = mc.functional
dims = st.tuples(st.integers(1, 6), st.integers(1, 12))


def _labels(seed, n, classes):
    return np.random.default_rng(seed).integers(0, classes, n)


@given(dims=dims, seed=seeds, dtype=FLOAT_DTYPES)
def test_cpu_matches_reference(dims, seed, dtype):
    x = normal(seed, dims, dtype, scale=4.0)
    grad_y = normal(seed + 1, dims, dtype)
    tol = tolerance(dtype)
    assert rel_error(cpu.log_softmax_forward(x), ref.log_softmax_forward(x)) < tol
    assert rel_error(cpu.softmax_forward(x), ref.softmax_forward(x)) < tol
    log_y, y = ref.log_softmax_forward(x), ref.softmax_forward(x)
    assert rel_error(cpu.log_softmax_backward(log_y, grad_y), ref.log_softmax_backward(log_y, grad_y)) < tol
    assert rel_error(cpu.softmax_backward(y, grad_y), ref.softmax_backward(y, grad_y)) < tol
    labels = _labels(seed, dims[0], dims[1])
    loss, log_y = cpu.cross_entropy_forward(x, labels)
    loss_ref, _ = ref.cross_entropy_forward(x, labels)
    assert loss.dtype == dtype and rel_error(loss, loss_ref) < tol
    grad = cpu.cross_entropy_backward(log_y, labels, 0.7)
    assert grad.dtype == dtype and rel_error(grad, ref.cross_entropy_backward(log_y, labels, 0.7)) < tol


def test_large_logits_do_not_overflow():
    x = mc.tensor(np.array([[1000.0, 0.0, -1000.0]], dtype=np.float32))
    assert np.isfinite(F.log_softmax(x).data).all()
    np.testing.assert_allclose(F.softmax(x).data, [[1.0, 0.0, 0.0]])
    assert F.cross_entropy(x, np.array([0])).item() == 0.0


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@given(dims=dims, seed=seeds)
def test_gradcheck(name, dims, seed):
    x = mc.tensor(normal(seed, dims, scale=2.0), requires_grad=True)
    mc.gradcheck(getattr(F, name), [x])


@given(dims=dims, seed=seeds)
def test_gradcheck_cross_entropy(dims, seed):
    x = mc.tensor(normal(seed, dims, scale=2.0), requires_grad=True)
    labels = _labels(seed, *dims)
    mc.gradcheck(lambda x: F.cross_entropy(x, labels), [x])


@given(dims=dims, seed=seeds)
def test_matches_torch(torch, dims, seed):
    x = normal(seed, dims, np.float32, scale=4.0)
    labels = _labels(seed, *dims)
    grad_y = normal(seed + 1, dims, np.float32)
    cases = [
        (lambda t: torch.softmax(t, 1), F.softmax, grad_y),
        (lambda t: torch.log_softmax(t, 1), F.log_softmax, grad_y),
        (lambda t: torch.nn.functional.cross_entropy(t, torch.tensor(labels)),
         lambda m: F.cross_entropy(m, labels), np.float32(0.5)),
    ]
    for torch_fn, our_fn, grad in cases:
        tx, mx = torch.tensor(x, requires_grad=True), mc.tensor(x, requires_grad=True)
        ty, y = torch_fn(tx), our_fn(mx)
        assert rel_error(y.data, ty.detach().numpy()) < 1e-4
        ty.backward(torch.tensor(grad))
        y.backward(np.asarray(grad))
        # The input gradient is a difference of terms as large as the output gradient
        # (g - sum(g * y)); float32 rounding is relative to those terms.
        assert rel_error(mx.grad, tx.grad.numpy(), scale=float(np.abs(grad).max())) < 1e-4
