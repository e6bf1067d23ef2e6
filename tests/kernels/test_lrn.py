"""local_response_norm: CPU kernel vs reference, gradcheck, PyTorch parity (alpha * size)."""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import minicnn as mc
from minicnn.kernels.cpu import lrn as cpu
from minicnn.kernels.reference import lrn as ref
from tests.helpers import rel_error, tolerance
from tests.strategies import FLOAT_DTYPES, image_shapes, normal, seeds

F = mc.functional
sizes = st.sampled_from([1, 3, 5, 7])
# The paper's constants and larger alphas, so the normalisation visibly matters.
constants = st.tuples(st.sampled_from([1e-4, 1e-2, 0.5]), st.sampled_from([0.75, 0.5, 1.0]), st.sampled_from([2.0, 1.0]))


@given(shape=image_shapes(max_channels=9), size=sizes, consts=constants, seed=seeds, dtype=FLOAT_DTYPES)
def test_cpu_matches_reference(shape, size, consts, seed, dtype):
    alpha, beta, k = consts
    x = normal(seed, shape, dtype, scale=3.0)
    y, saved = cpu.lrn_forward(x, size, alpha, beta, k)
    y_ref, saved_ref = ref.lrn_forward(x, size, alpha, beta, k)
    assert saved is None  # the CPU backward recomputes scale and y from x
    assert y.dtype == dtype
    assert rel_error(y, y_ref) < tolerance(dtype)
    grad_y = normal(seed + 1, shape, dtype)
    grad_x = cpu.lrn_backward(x, saved, grad_y, size, alpha, beta, k)
    assert grad_x.dtype == dtype
    term = float(np.abs(grad_y).max()) * k ** -beta  # the scale of dL/dx's terms (test_matches_torch says why)
    assert rel_error(grad_x, ref.lrn_backward(x, saved_ref, grad_y, size, alpha, beta, k), term) < tolerance(dtype)


def test_matches_the_paper_formula_at_one_point():
    x = normal(0, (1, 8, 2, 2), np.float64, scale=10.0)
    y = F.local_response_norm(mc.tensor(x)).data  # k=2, n=5, alpha=1e-4, beta=0.75
    c = 1  # window: channels max(0, 1-2)=0 .. 1+2=3
    expected = x[0, c, 1, 0] / (2 + 1e-4 * np.sum(x[0, 0:4, 1, 0] ** 2)) ** 0.75
    assert abs(y[0, c, 1, 0] - expected) < 1e-12


@given(shape=image_shapes(), size=sizes, consts=constants, seed=seeds)
def test_gradcheck(shape, size, consts, seed):
    alpha, beta, k = consts
    x = mc.tensor(normal(seed, shape, scale=2.0), requires_grad=True)
    mc.gradcheck(lambda x: F.local_response_norm(x, size, alpha, beta, k), [x])


@given(shape=image_shapes(max_channels=12), size=sizes, consts=constants, seed=seeds)
def test_matches_torch(torch, shape, size, consts, seed):
    alpha, beta, k = consts
    x = normal(seed, shape, np.float32, scale=3.0)
    tx = torch.tensor(x, requires_grad=True)
    # PyTorch divides alpha by size; passing alpha * size gives the paper's formula.
    ty = torch.nn.functional.local_response_norm(tx, size, alpha=alpha * size, beta=beta, k=k)
    mx = mc.tensor(x, requires_grad=True)
    y = F.local_response_norm(mx, size, alpha, beta, k)
    assert rel_error(y.data, ty.detach().numpy()) < 1e-4
    grad_y = normal(seed + 1, shape, np.float32)
    ty.backward(torch.tensor(grad_y))
    y.backward(grad_y)
    # dL/dx is a difference of two terms, the first grad_y * scale ** -beta (scale >= k): where they
    # cancel (size 1, x near sqrt(k / alpha)) float32 rounds on that term's scale, not the result's.
    term = float(np.abs(grad_y).max()) * k ** -beta
    assert rel_error(mx.grad, tx.grad.numpy(), scale=term) < 1e-4


def test_cpu_results_do_not_depend_on_the_thread_count():
    """The backward's tasks (32 channels of one image each) are spread over the threads; each
    computes its planes alone, so one thread and two give the same bits."""
    import numba

    x = normal(0, (3, 70, 5, 6), np.float32, scale=3.0)  # 70 channels: tasks of 32, 32 and 6
    grad_y = normal(1, x.shape, np.float32)
    results = []
    for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
        numba.set_num_threads(threads)
        try:
            y, saved = cpu.lrn_forward(x, 5, 1e-2, 0.75, 2.0)
            results.append((y.copy(), cpu.lrn_backward(x, saved, grad_y, 5, 1e-2, 0.75, 2.0).copy()))
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    for first, second in zip(*results):
        np.testing.assert_array_equal(first, second)
