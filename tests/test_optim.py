"""SGD: the fused CPU kernel against the reference, PyTorch's torch.optim.SGD as an oracle,
state_dict round trips, bad arguments."""
import numpy as np
import pytest

import minicnn as mc
from minicnn.kernels.cpu import sgd as cpu
from minicnn.kernels.reference import sgd as ref
from tests.helpers import rel_error
from tests.strategies import normal


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cpu_kernel_matches_reference(dtype):
    p, g, v = (normal(i, (7, 5), dtype) for i in range(3))
    p2, v2 = p.copy(), v.copy()
    cpu.sgd_step(p, g, v, 0.1, 0.9, 5e-4)
    ref.sgd_step(p2, g, v2, dtype(0.1), dtype(0.9), dtype(5e-4))
    assert p.dtype == dtype and rel_error(p, p2) < (1e-6 if dtype == np.float32 else 1e-14)
    assert rel_error(v, v2) < (1e-6 if dtype == np.float32 else 1e-14)


def test_matches_torch_over_several_steps(torch):
    w0 = normal(0, (4, 3), np.float32)
    grads = [normal(i + 1, (4, 3), np.float32) for i in range(5)]
    ours = mc.nn.Parameter(w0.copy())
    theirs = torch.tensor(w0.copy(), requires_grad=True)
    opt = mc.optim.SGD([ours], lr=0.01, momentum=0.9, weight_decay=5e-4)
    topt = torch.optim.SGD([theirs], lr=0.01, momentum=0.9, weight_decay=5e-4)
    for g in grads:
        ours.grad = g.copy()
        theirs.grad = torch.tensor(g)
        opt.step()
        topt.step()
    assert rel_error(ours.data, theirs.detach().numpy()) < 1e-6


def test_zero_grad_and_parameters_without_gradients():
    a, b = mc.nn.Parameter(np.ones(2, np.float32)), mc.nn.Parameter(np.ones(2, np.float32))
    opt = mc.optim.SGD([a, b], lr=0.5)
    a.grad = np.ones(2, np.float32)
    opt.step()
    np.testing.assert_array_equal(a.data, [0.5, 0.5])
    np.testing.assert_array_equal(b.data, [1.0, 1.0])
    opt.zero_grad()
    assert a.grad is None


def test_state_dict_round_trip_continues_identically():
    def run(steps, resume_at=None):
        p = mc.nn.Parameter(normal(0, (3,), np.float32))
        opt = mc.optim.SGD([p], lr=0.1, momentum=0.9)
        for i in range(steps):
            if i == resume_at:
                state = opt.state_dict()
                opt = mc.optim.SGD([p], lr=0.1, momentum=0.9)
                opt.load_state_dict(state)
            p.grad = normal(10 + i, (3,), np.float32)
            opt.step()
        return p.data

    np.testing.assert_array_equal(run(6), run(6, resume_at=3))


def test_bad_arguments():
    p = mc.nn.Parameter(np.ones(2, np.float32))
    with pytest.raises(mc.ArgumentError, match="SGD: lr must be > 0.0, got 0"):
        mc.optim.SGD([p], lr=0)
    with pytest.raises(mc.ArgumentError, match="SGD: momentum must be >= 0.0, got -0.5"):
        mc.optim.SGD([p], lr=0.1, momentum=-0.5)
    with pytest.raises(mc.ArgumentError, match="empty list of parameters"):
        mc.optim.SGD([], lr=0.1)
    opt = mc.optim.SGD([p], lr=0.1)
    with pytest.raises(mc.ShapeError, match="2 velocities for 1 parameters"):
        opt.load_state_dict({"lr": 0.1, "momentum": 0, "weight_decay": 0, "velocities": [None, None]})
