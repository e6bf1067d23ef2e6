"""gradcheck itself must fail on wrong backwards, report the worst coordinate, and catch
what a plain sum of the outputs would hide."""
import numpy as np
import pytest

import minicnn as mc
from minicnn.gradcheck import GradcheckError
from tests.strategies import normal

F = mc.functional


class ScaledWrong(mc.Function):
    """y = 3x with a backward that forgets the factor 3 at one coordinate."""

    @staticmethod
    def forward(ctx, x):
        return 3 * x

    @staticmethod
    def backward(ctx, g):
        grad = 3 * g
        grad.reshape(-1)[5] = g.reshape(-1)[5]
        return grad


class SoftmaxWithoutCoupling(mc.Function):
    """Softmax whose backward drops the coupling term: y * g instead of y * (g - sum(g * y)).

    Its error is invisible to L = sum(softmax(x)), whose true gradient is 0, if the wrong
    backward happens to be 0 too for g = 1... it is not: y * 1 != 0. The projection test
    below uses a backward that IS right for g = 1 but wrong otherwise."""

    @staticmethod
    def forward(ctx, x):
        y = F.softmax(mc.tensor(x)).data
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved
        # Correct would be y * (g - (g * y).sum(1, keepdims=True)). This one matches it
        # whenever g is constant along each row (then both are 0), as for a plain sum.
        return y * (g - g.mean(axis=1, keepdims=True))


class Nondeterministic(mc.Function):
    calls = 0

    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, g):
        Nondeterministic.calls += 1
        return g * (1 + 1e-3 * Nondeterministic.calls)


def test_reports_the_worst_coordinate():
    x = mc.tensor(normal(0, (2, 4)), requires_grad=True)
    with pytest.raises(GradcheckError, match=r"input0\[1, 1\] analytic .* numeric .* relative error"):
        mc.gradcheck(ScaledWrong.apply, [x])
    result = mc.gradcheck(ScaledWrong.apply, [x], raise_exception=False)
    assert not result.ok and tuple(result.worst["index"]) == (1, 1)
    assert abs(result.worst["analytic"] - 1 / 3 * result.worst["numeric"]) < 1e-6


def test_random_projection_catches_what_a_plain_sum_hides():
    x = mc.tensor(normal(0, (3, 4)), requires_grad=True)
    # With a plain sum, the wrong backward gives the right (zero) gradient:
    SoftmaxWithoutCoupling.apply(x).sum().backward()
    np.testing.assert_allclose(x.grad, 0, atol=1e-12)
    assert not mc.gradcheck(SoftmaxWithoutCoupling.apply, [x], raise_exception=False).ok


def test_backward_must_repeat_exactly():
    x = mc.tensor(normal(0, (3,)), requires_grad=True)
    with pytest.raises(GradcheckError, match="two backward passes"):
        mc.gradcheck(Nondeterministic.apply, [x])


def test_large_tensors_are_sampled_small_ones_checked_fully():
    small = mc.tensor(normal(0, (10,)), requires_grad=True)
    large = mc.tensor(normal(1, (1000,)), requires_grad=True)
    result = mc.gradcheck(lambda a, b: a.sum() * b, [small, large], max_coords=50)
    assert result.ok and result.checked == 10 + 50


def test_parameters_are_checked_by_name():
    x = mc.tensor(normal(0, (2, 3)))
    w = mc.tensor(normal(1, (4, 3)), requires_grad=True)
    result = mc.gradcheck(lambda x: F.linear(x, w), [x], params=[("fc.weight", w)])
    assert result.ok and result.worst["tensor"] == "fc.weight"


def test_refuses_float32():
    x = mc.tensor(normal(0, (3,), np.float32), requires_grad=True)
    with pytest.raises(mc.DTypeError, match="float64"):
        mc.gradcheck(F.relu, [x])
