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


@pytest.mark.parametrize("make", [lambda ps: mc.optim.SGD(ps, lr=0.1, momentum=0.9), lambda ps: mc.optim.Adam(ps)])
def test_state_dict_round_trip_continues_identically(make):
    def run(steps, resume_at=None):
        p = mc.nn.Parameter(normal(0, (3,), np.float32))
        opt = make([p])
        for i in range(steps):
            if i == resume_at:
                state = opt.state_dict()
                opt = make([p])
                opt.load_state_dict(state)
            p.grad = normal(10 + i, (3,), np.float32)
            opt.step()
        return p.data

    np.testing.assert_array_equal(run(6), run(6, resume_at=3))


def test_bad_arguments():
    p = mc.nn.Parameter(np.ones(2, np.float32))
    with pytest.raises(mc.ArgumentError, match=r"SGD: lr must be in \(0.0, inf\], got 0"):
        mc.optim.SGD([p], lr=0)
    with pytest.raises(mc.ArgumentError, match=r"SGD: momentum must be in \[0.0, 1.0\], got -0.5"):
        mc.optim.SGD([p], lr=0.1, momentum=-0.5)
    with pytest.raises(mc.ArgumentError, match="empty list of parameters"):
        mc.optim.SGD([], lr=0.1)
    with pytest.raises(mc.ArgumentError, match=r"Adam: betas\[1\] must be in \[0.0, 1.0\), got 1.0"):
        mc.optim.Adam([p], betas=(0.9, 1.0))
    opt = mc.optim.SGD([p], lr=0.1)
    with pytest.raises(mc.ShapeError, match="state for 2 parameters, this optimiser has 1"):
        opt.load_state_dict({"hyper": dict(opt.hyper), "state": [{}, {}]})
    with pytest.raises(mc.ArgumentError, match="expected entries"):
        opt.load_state_dict({"lr": 0.1})
    with pytest.raises(mc.ArgumentError, match="StepLR: step_size must be a positive integer"):
        mc.optim.StepLR(opt, 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_kernel_matches_reference(dtype):
    from minicnn.kernels.cpu import adam
    from minicnn.kernels.reference import adam as adam_ref

    p, g, m = (normal(i, (6, 4), dtype) for i in range(3))
    v = np.abs(normal(3, (6, 4), dtype))
    p2, m2, v2 = p.copy(), m.copy(), v.copy()
    args = (1e-3, 0.9, 0.999, 1e-8, 1e-4, 1 - 0.9 ** 3, 1 - 0.999 ** 3)
    adam.adam_step(p, g, m, v, *args)
    adam_ref.adam_step(p2, g, m2, v2, *(dtype(a) for a in args))
    tol = 1e-6 if dtype == np.float32 else 1e-13
    assert p.dtype == dtype and rel_error(p, p2) < tol and rel_error(m, m2) < tol and rel_error(v, v2) < tol


def test_adam_matches_torch(torch):
    w0 = normal(0, (5, 3), np.float32)
    ours = mc.nn.Parameter(w0.copy())
    theirs = torch.tensor(w0.copy(), requires_grad=True)
    opt = mc.optim.Adam([ours], lr=0.01, weight_decay=1e-3)
    topt = torch.optim.Adam([theirs], lr=0.01, weight_decay=1e-3)
    for i in range(6):
        g = normal(i + 1, (5, 3), np.float32)
        ours.grad, theirs.grad = g.copy(), torch.tensor(g)
        opt.step()
        topt.step()
    assert rel_error(ours.data, theirs.detach().numpy()) < 1e-5


def test_schedules_follow_torch(torch):
    p = mc.nn.Parameter(np.ones(2, np.float32))
    tp = torch.nn.Parameter(torch.ones(2))
    opt, topt = mc.optim.SGD([p], lr=0.1), torch.optim.SGD([tp], lr=0.1)
    step, tstep = mc.optim.StepLR(opt, 3, 0.5), torch.optim.lr_scheduler.StepLR(topt, 3, 0.5)
    for _ in range(8):
        topt.step()  # PyTorch expects an optimiser step before each scheduler step (a no-op here)
        step.step()
        tstep.step()
        assert opt.lr == pytest.approx(topt.param_groups[0]["lr"])
    opt, topt = mc.optim.SGD([p], lr=0.1), torch.optim.SGD([tp], lr=0.1)
    plateau = mc.optim.ReduceLROnPlateau(opt, factor=0.1, patience=2)
    tplateau = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, factor=0.1, patience=2)
    for error in [0.9, 0.8, 0.8, 0.81, 0.8, 0.79, 0.5, 0.5, 0.5, 0.5, 0.6]:
        topt.step()
        plateau.step(error)
        tplateau.step(error)
        assert opt.lr == pytest.approx(topt.param_groups[0]["lr"])
    assert opt.lr == pytest.approx(1e-3)


@pytest.mark.parametrize("make", [lambda ps: mc.optim.SGD(ps, lr=0.1, momentum=0.9), lambda ps: mc.optim.Adam(ps)])
def test_step_refuses_a_gradient_that_does_not_fit_its_parameter(make):
    """A wrong-shaped gradient used to crash the process (1 element for 1e8) or write garbage."""
    p = mc.nn.Parameter(np.zeros(4, np.float32))
    optimiser = make([p])
    for grad, message in ((np.zeros(3, np.float32), r"parameter 0 is float32 of shape \(4,\) but its gradient is "
                                                    r"float32 of shape \(3,\)"),
                          (np.zeros(1, np.float32), r"gradient is float32 of shape \(1,\)"),
                          (np.zeros(4, np.float64), r"gradient is float64 of shape \(4,\)")):
        p.grad = grad
        with pytest.raises(mc.ShapeError, match=message):
            optimiser.step()
        np.testing.assert_array_equal(p.data, np.zeros(4, np.float32))  # nothing was updated


def test_sgd_momentum_is_at_most_one():
    with pytest.raises(mc.ArgumentError, match=r"SGD: momentum must be in \[0.0, 1.0\], got 5"):
        mc.optim.SGD([mc.nn.Parameter(np.zeros(2))], lr=0.1, momentum=5)


def test_a_bad_gradient_leaves_every_parameter_as_it_was():
    good, bad = mc.nn.Parameter(np.ones(3, np.float32)), mc.nn.Parameter(np.ones(4, np.float32))
    optimiser = mc.optim.SGD([good, bad], lr=0.1)
    good.grad, bad.grad = np.ones(3, np.float32), np.ones(2, np.float32)
    with pytest.raises(mc.ShapeError, match="parameter 1"):
        optimiser.step()
    np.testing.assert_array_equal(good.data, np.ones(3, np.float32))  # checked before any update


def test_parameter_groups_follow_pytorch(torch):
    """Issue 20: per-group learning rates, momentum and weight decay, set by the user through
    param_groups and by the schedules, as torch.optim does (float64, 1e-12)."""
    rng = np.random.default_rng(0)
    values = [rng.standard_normal(s) for s in ((3, 2), (2,), (4,))]
    ours = [mc.nn.Parameter(v.copy()) for v in values]
    theirs = [torch.tensor(v.copy(), requires_grad=True) for v in values]

    def groups(ps):
        return [{"params": ps[:2]}, {"params": ps[2:], "lr": 0.05, "weight_decay": 0.01, "momentum": 0.5}]

    opt = mc.optim.SGD(groups(ours), lr=0.1, momentum=0.9)
    ref = torch.optim.SGD(groups(theirs), lr=0.1, momentum=0.9)
    schedule = mc.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    ref_schedule = torch.optim.lr_scheduler.StepLR(ref, step_size=2, gamma=0.5)
    for step in range(5):
        grads = [rng.standard_normal(v.shape) for v in values]
        for p, t, g in zip(ours, theirs, grads):
            p.grad, t.grad = g.copy(), torch.tensor(g)
        opt.step()
        ref.step()
        schedule.step()
        ref_schedule.step()
        if step == 2:  # user code changing one group's rate, as schedulers and people do
            opt.param_groups[1]["lr"] = ref.param_groups[1]["lr"] = 0.2
    for p, t in zip(ours, theirs):
        np.testing.assert_allclose(p.numpy(), t.detach().numpy(), rtol=1e-12, atol=1e-14)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([g["lr"] for g in ref.param_groups])
    # a state dict keeps the groups; one from before groups gives every group its hyper-parameters
    again = mc.optim.SGD(groups([mc.nn.Parameter(v.copy()) for v in values]), lr=0.1, momentum=0.9)
    again.load_state_dict(opt.state_dict())
    assert [g["lr"] for g in again.param_groups] == [g["lr"] for g in opt.param_groups]
    old = {k: v for k, v in opt.state_dict().items() if k != "groups"}
    again.load_state_dict(old)
    assert [g["lr"] for g in again.param_groups] == [opt.param_groups[0]["lr"]] * 2


def test_bad_parameter_groups_are_refused():
    p = mc.nn.Parameter(np.zeros(2, np.float32))
    with pytest.raises(mc.ArgumentError, match=r"SGD: group 0 sets \['betas'\]; a group may set \['lr', 'momentum', 'weight_decay'\]"):
        mc.optim.SGD([{"params": [p], "betas": (0.9, 0.99)}], lr=0.1)
    with pytest.raises(mc.ArgumentError, match=r"SGD: lr must be in \(0.0, inf\], got -1"):
        mc.optim.SGD([{"params": [p], "lr": -1}], lr=0.1)
    with pytest.raises(mc.ArgumentError, match="a parameter group is a dict with 'params'"):
        mc.optim.SGD([{"lr": 0.1}], lr=0.1)


@pytest.mark.parametrize("make", [
    lambda sched, opt: sched.CosineAnnealingLR(opt, T_max=4, eta_min=0.001),
    lambda sched, opt: sched.LinearLR(opt, start_factor=0.1, end_factor=1.0, total_iters=3),
])
def test_cosine_and_linear_schedules_follow_pytorch(make, torch):
    p = mc.nn.Parameter(np.zeros(2))
    t = torch.zeros(2, requires_grad=True)
    opt = mc.optim.SGD([{"params": [p]}, {"params": [mc.nn.Parameter(np.zeros(1))], "lr": 0.5}], lr=0.1)
    ref = torch.optim.SGD([{"params": [t]}, {"params": [torch.zeros(1, requires_grad=True)], "lr": 0.5}], lr=0.1)
    ours, theirs = make(mc.optim.lr_scheduler, opt), make(torch.optim.lr_scheduler, ref)
    for _ in range(10):
        assert [g["lr"] for g in opt.param_groups] == pytest.approx([g["lr"] for g in ref.param_groups], rel=1e-12)
        ref.step()  # (PyTorch warns when a schedule steps before its optimiser)
        ours.step()
        theirs.step()
    with pytest.raises(mc.ArgumentError, match="T_max must be a positive integer"):
        mc.optim.lr_scheduler.CosineAnnealingLR(opt, 0)
