"""linear and flatten: CPU kernel vs reference, gradcheck, PyTorch parity."""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import minicnn as mc
from minicnn.kernels.cpu import linear as cpu
from minicnn.kernels.reference import linear as ref
from tests.helpers import rel_error, tolerance
from tests.strategies import FLOAT_DTYPES, normal, seeds

F = mc.functional
dims = st.tuples(st.integers(1, 5), st.integers(1, 12), st.integers(1, 9))


def _term_scales(x, w, b, grad_y):
    """The largest sum of absolute terms in y, dL/dx, dL/dw and dL/db: the scale of the rounding
    in sums whose terms cancel (dL/db of 5 rows can be 1e-3 of its terms)."""
    x, w, grad_y = np.abs(x), np.abs(w), np.abs(grad_y)
    y = x @ w.T + (0 if b is None else np.abs(b))
    return [float(a.max()) for a in (y, grad_y @ w, grad_y.T @ x, grad_y.sum(axis=0))]


@given(dims=dims, bias=st.booleans(), seed=seeds, dtype=FLOAT_DTYPES)
def test_cpu_matches_reference(dims, bias, seed, dtype):
    n, i, o = dims
    x, w = normal(seed, (n, i), dtype), normal(seed + 1, (o, i), dtype)
    b = normal(seed + 2, (o,), dtype) if bias else None
    y = cpu.linear_forward(x, w, b)
    grad_y = normal(seed + 3, (n, o), dtype)
    results = [y, *cpu.linear_backward(x, w, grad_y)]
    expected = [ref.linear_forward(x, w, b), *ref.linear_backward(x, w, grad_y)]
    for got, want, scale in zip(results, expected, _term_scales(x, w, b, grad_y)):
        assert got.dtype == dtype and rel_error(got, want, scale) < tolerance(dtype)


@given(dims=dims, seed=seeds)
def test_gradcheck(dims, seed):
    n, i, o = dims
    x = mc.tensor(normal(seed, (n, i)), requires_grad=True)
    w = mc.tensor(normal(seed + 1, (o, i)), requires_grad=True)
    b = mc.tensor(normal(seed + 2, (o,)), requires_grad=True)
    mc.gradcheck(F.linear, [x, w, b])


@given(dims=dims, seed=seeds)
def test_matches_torch(torch, dims, seed):
    n, i, o = dims
    arrays = normal(seed, (n, i), np.float32), normal(seed + 1, (o, i), np.float32), normal(seed + 2, (o,), np.float32)
    t = [torch.tensor(a, requires_grad=True) for a in arrays]
    m = [mc.tensor(a, requires_grad=True) for a in arrays]
    ty, y = torch.nn.functional.linear(*t), F.linear(*m)
    grad_y = normal(seed + 3, (n, o), np.float32)
    ty.backward(torch.tensor(grad_y))
    y.backward(grad_y)
    pairs = [(y.data, ty)] + [(a.grad, b.grad) for a, b in zip(m, t)]
    for (ours, theirs), scale in zip(pairs, _term_scales(*arrays, grad_y)):
        assert rel_error(ours, theirs.detach().numpy(), scale) < 1e-5


def test_flatten_then_linear_gradcheck():
    x = mc.tensor(normal(0, (2, 3, 2, 2)), requires_grad=True)
    w = mc.tensor(normal(1, (4, 12)), requires_grad=True)
    mc.gradcheck(lambda x, w: F.linear(F.flatten(x), w), [x, w])
    assert F.flatten(x).shape == (2, 12)
