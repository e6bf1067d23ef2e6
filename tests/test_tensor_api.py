"""The tensor methods a PyTorch user reaches for (issue 20): indexing with a gradient, comparisons,
argmax, max/min, view, size(), unsqueeze/squeeze/flatten, permute/transpose/T, clone, float(),
dim=/keepdim=, cat, stack, from_numpy, zeros/ones/randn. Each differentiable one is checked
against finite differences, and against PyTorch where torch is installed."""
import numpy as np
import pytest

import minicnn as mc
from minicnn.errors import ArgumentError, DTypeError, ShapeError


def _x(shape=(3, 4, 5), seed=0):
    values = np.random.default_rng(seed).standard_normal(shape)
    return mc.tensor(values, dtype=np.float64, requires_grad=True)


# Each case: a function of one tensor, applied the same way to a minicnn and a torch tensor.
DIFFERENTIABLE = {
    "basic index": lambda t: t[1],
    "slices": lambda t: t[:, 1:3, ::2],
    "negative and None": lambda t: t[-1, None, :, -2],
    "integer array, repeated": lambda t: t[[0, 2, 0]],
    "two integer arrays": lambda t: t[[0, 1, 1], [3, 3, 0]],
    "boolean mask": lambda t: t[t > 0],
    "view": lambda t: t.view(3, -1),
    "flatten(1)": lambda t: t.flatten(1),
    "unsqueeze": lambda t: t.unsqueeze(1),
    "squeeze": lambda t: t[:, :1].squeeze(1),
    "permute": lambda t: t.permute(2, 0, 1),
    "transpose": lambda t: t.transpose(0, 2),
    "T of a matrix": lambda t: t[0].T,
    "clone": lambda t: t.clone(),
    "max over all": lambda t: t.max(),
    "max along dim": lambda t: t.max(dim=1)[0],
    "min along dim, keepdim": lambda t: t.min(dim=2, keepdim=True).values,
    "sum with dim=": lambda t: t.sum(dim=1),
    "mean with dim=, keepdim=": lambda t: t.mean(dim=(0, 2), keepdim=True),
}


@pytest.mark.parametrize("name", list(DIFFERENTIABLE))
def test_gradients_agree_with_finite_differences(name):
    mc.gradcheck(DIFFERENTIABLE[name], [_x()])


@pytest.mark.parametrize("name", list(DIFFERENTIABLE))
def test_values_and_gradients_agree_with_pytorch(name, torch):
    ours, theirs = _x(), None
    theirs = torch.tensor(ours.numpy(), requires_grad=True)
    y, z = DIFFERENTIABLE[name](ours), DIFFERENTIABLE[name](theirs)
    np.testing.assert_allclose(y.numpy(), z.detach().numpy(), rtol=1e-14, atol=0)  # a mean rounds apart
    weights = np.random.default_rng(1).standard_normal(y.shape)
    (y * mc.tensor(weights, dtype=np.float64)).sum().backward()
    (z * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-14, atol=1e-15)


def test_cat_and_stack_send_each_part_its_gradient(torch):
    a, b = _x((2, 3), 1), _x((2, 5), 2)
    mc.gradcheck(lambda a, b: mc.cat([a, b], dim=1), [a, b])
    c = _x((2, 3), 3)
    mc.gradcheck(lambda a, c: mc.stack([a, c], dim=1), [a, c])
    ta, tc = (torch.tensor(t.numpy()) for t in (a, c))
    np.testing.assert_array_equal(mc.stack([a, c], dim=-1).numpy(), torch.stack([ta, tc], dim=-1).numpy())
    np.testing.assert_array_equal(mc.cat([a, c]).numpy(), torch.cat([ta, tc]).numpy())


def test_comparisons_are_boolean_tensors_without_gradients():
    x = _x((2, 3))
    for result in (x == x, x != 0, x > 0, x >= x, x < 1, x <= -1):
        assert isinstance(result, mc.Tensor) and result.dtype == np.bool_ and not result.requires_grad
    assert bool((x == x).all()) and not bool((x != x).any())
    logits, labels = mc.tensor(np.array([[0.1, 0.9], [0.8, 0.2]])), mc.tensor([1, 1])
    assert float((logits.argmax(1) == labels).float().mean()) == 0.5  # accuracy, as PyTorch users write it
    assert {x: 1}[x] == 1 and len({x, x.detach()}) == 2  # still a key, by identity
    with pytest.raises(ArgumentError, match="a tensor of 6 elements is neither true nor false"):
        bool(x > 0)


def test_argmax_max_and_conversions():
    x = mc.tensor(np.array([[1.0, 5.0, 5.0], [7.0, 0.0, 2.0]]))
    assert x.argmax().item() == 3 and x.argmax(dim=1).tolist() == [1, 0] and x.argmin(1, keepdim=True).shape == (2, 1)
    values, indices = x.max(dim=1)
    assert values.tolist() == [5.0, 7.0] and indices.tolist() == [1, 0]  # a tie goes to the first
    assert indices.dtype == np.int64 and x.max().item() == 7.0 and x.min().item() == 0.0
    assert float(x.sum()) == 20.0 and int(x[1, 0]) == 7 and x.tolist() == [[1.0, 5.0, 5.0], [7.0, 0.0, 2.0]]
    assert x.float().dtype == np.float32 and x.double() is x  # (a NumPy array keeps its float64)
    assert x.size == 6 and x.size() == (2, 3) and x.size(-1) == 3 and x.dim() == 2 and x.numel() == 6


def test_float_casts_carry_the_gradient():
    x = _x((2, 2))
    y = x.float()
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float64 and (x.grad == 1).all()


def test_constructors():
    assert mc.zeros(2, 3).shape == (2, 3) and mc.zeros(2, 3).dtype == np.float32
    assert mc.ones((4,), dtype=np.float64).numpy().tolist() == [1.0] * 4
    mc.manual_seed(5)
    first = mc.randn(3, 2).numpy()
    mc.manual_seed(5)
    np.testing.assert_array_equal(mc.randn(3, 2).numpy(), first)
    array = np.arange(3.0)
    t = mc.from_numpy(array)
    array[0] = 9
    assert t.numpy()[0] == 0.0 and t.dtype == np.float64  # a copy, the same dtype


@pytest.mark.parametrize("call, error, message", [
    (lambda x: x[5], ShapeError, r"index: index 5 is out of bounds for axis 0 with size 3 \(tensor shape \(3, 4\)\)"),
    (lambda x: x[0.5], DTypeError, "is not an integer index"),
    (lambda x: x[np.array([0.0])], DTypeError, "index array must be integer or boolean"),
    (lambda x: x.view(5, -1), ShapeError, r"cannot reshape \(3, 4\) \(12 elements\) into \(5, -1\)"),
    (lambda x: x.permute(0, 0), ShapeError, r"permute: \(0, 0\) is not an order of the 2 axes"),
    (lambda x: x.sum(axis=0, dim=1), ArgumentError, "give axis or dim, not both"),
    (lambda x: float(x), ShapeError, r"float: only a one-element tensor converts to a Python number"),
    (lambda x: x.unsqueeze(4), ShapeError, "unsqueeze: axis 4 is out of range"),
    (lambda x: mc.cat([x, mc.zeros(2, 5, dtype=np.float64)], dim=0), ShapeError, "cat: the tensors differ"),
    (lambda x: mc.cat([x, x.float()]), DTypeError, "different dtypes"),
    (lambda x: mc.stack([]), ArgumentError, "stack: needs a non-empty sequence of tensors"),
    (lambda x: mc.zeros(2, -1), ArgumentError, r"zeros: a shape is non-negative integers, got \(2, -1\)"),
])
def test_bad_input_gets_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call(_x((3, 4)))
