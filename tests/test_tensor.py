"""The autograd engine: arithmetic ops and their broadcasting backwards, accumulation,
deep graphs, no_grad, detach, retain_grad."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minicnn as mc
from tests.strategies import normal, seeds


def test_tensor_dtypes():
    assert mc.tensor([1.0, 2.0]).dtype == np.float32
    assert mc.tensor(np.zeros(2)).dtype == np.float64
    assert mc.tensor([1, 2]).dtype.kind == "i"
    assert mc.tensor(np.zeros(2, np.float32), dtype=np.float64).dtype == np.float64


def test_tensor_copies_its_input():
    a = np.zeros(3, np.float32)
    t = mc.tensor(a)
    a[0] = 1
    assert t.data[0] == 0


broadcast_pairs = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3)


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
@given(shapes=broadcast_pairs, seed=seeds)
def test_broadcasting_binary_ops_gradcheck(op, shapes, seed):
    a_shape, b_shape = shapes.input_shapes
    a = mc.tensor(normal(seed, a_shape), requires_grad=True)
    b_data = normal(seed + 1, b_shape)
    if op == "div":
        b_data = np.sign(b_data) * (np.abs(b_data) + 0.5)  # away from division by zero
    b = mc.tensor(b_data, requires_grad=True)
    fn = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
          "div": lambda a, b: a / b}[op]
    out = fn(a, b)
    assert out.shape == shapes.result_shape
    mc.gradcheck(fn, [a, b])


def test_scalars_on_either_side():
    a = mc.tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = (2 - a) * 3 + 1 / a - (-a) ** 2
    y.sum().backward()
    np.testing.assert_allclose(a.grad, -3 - 1 / a.data ** 2 - 2 * a.data)
    assert y.dtype == np.float64


@given(shape=st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4)), seed=seeds,
       axis=st.sampled_from([None, 0, 1, 2, -1, (0, 2)]), keepdims=st.booleans())
def test_sum_and_mean_gradcheck(shape, seed, axis, keepdims):
    x = mc.tensor(normal(seed, shape), requires_grad=True)
    mc.gradcheck(lambda x: x.sum(axis, keepdims), [x])
    mc.gradcheck(lambda x: x.mean(axis, keepdims), [x])
    np.testing.assert_allclose(x.mean(axis, keepdims).data, x.data.mean(axis=axis, keepdims=keepdims))


@given(dims=st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4)), batch=st.integers(0, 2), seed=seeds)
def test_matmul_gradcheck(dims, batch, seed):
    n, k, m = dims
    lead = (2,) * batch
    a = mc.tensor(normal(seed, lead + (n, k)), requires_grad=True)
    b = mc.tensor(normal(seed + 1, (k, m)), requires_grad=True)
    np.testing.assert_allclose((a @ b).data, a.data @ b.data)
    mc.gradcheck(lambda a, b: a @ b, [a, b])


def test_matmul_with_vectors_gradcheck():
    a = mc.tensor(normal(0, (3,)), requires_grad=True)
    b = mc.tensor(normal(1, (3, 2)), requires_grad=True)
    v = mc.tensor(normal(2, (2,)), requires_grad=True)
    mc.gradcheck(lambda a, b, v: (a @ b) @ v, [a, b, v])


def test_pow_and_reshape_gradcheck():
    x = mc.tensor(np.abs(normal(0, (2, 6))) + 0.5, requires_grad=True)
    mc.gradcheck(lambda x: (x ** 3).reshape(3, 4) ** -0.5, [x])


def test_a_tensor_used_twice_accumulates():
    x = mc.tensor(np.array([3.0]), requires_grad=True)
    y = x * x + x
    y.backward()
    assert x.grad[0] == 7.0
    # leaves keep accumulating across backward calls, as in PyTorch
    (x * 2).backward()
    assert x.grad[0] == 9.0


def test_a_graph_thousands_deep_does_not_recurse():
    x = mc.tensor(np.array([1.0]), requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0001 + 0.0
    y.backward()
    np.testing.assert_allclose(x.grad, [1.0001 ** 5000], rtol=1e-10)


def test_diamond_graph():
    x = mc.tensor(np.array([2.0]), requires_grad=True)
    a = x * 3
    b = a * a
    c = a + b
    c.backward()
    assert x.grad[0] == 3 + 2 * 6 * 3


def test_no_grad_records_nothing():
    x = mc.tensor(np.ones(2), requires_grad=True)
    with mc.no_grad():
        y = x * 2
        assert not mc.is_grad_enabled()
    assert mc.is_grad_enabled()
    assert not y.requires_grad and y.creator is None


def test_detach_cuts_the_graph():
    x = mc.tensor(np.ones(2), requires_grad=True)
    y = (x * 2).detach() * x
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 2.0])


def test_retain_grad_keeps_an_intermediate_gradient():
    x = mc.tensor(np.ones(2), requires_grad=True)
    h = (x * 3).retain_grad()
    unkept = h * 1.0
    (h * unkept).sum().backward()
    np.testing.assert_array_equal(h.grad, [6.0, 6.0])
    assert unkept.grad is None


def test_backward_needs_a_gradient_for_non_scalars():
    x = mc.tensor(np.ones(3), requires_grad=True)
    with pytest.raises(mc.ShapeError, match="non-scalar"):
        (x * 2).backward()
    with pytest.raises(mc.ShapeError, match="expected"):
        (x * 2).backward(np.ones(2))
    with pytest.raises(RuntimeError, match="does not require grad"):
        mc.tensor(np.ones(1)).backward()


def test_custom_function_plugs_into_the_engine():
    class Square(mc.Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return a * a

        @staticmethod
        def backward(ctx, g):
            (a,) = ctx.saved
            return 2 * a * g

    x = mc.tensor(normal(0, (3,)), requires_grad=True)
    mc.gradcheck(Square.apply, [x])


def test_repr_mentions_grad_and_creator():
    x = mc.tensor(np.ones(2), requires_grad=True)
    assert "requires_grad=True" in repr(x) and "creator=Mul" in repr(x * 2)


def test_backward_frees_the_graph_unless_told_to_keep_it():
    x = mc.tensor(np.arange(1.0, 7.0).reshape(2, 3), requires_grad=True)
    hidden = mc.functional.relu(x * 2.0)
    loss = (hidden * hidden).sum()
    loss.backward(retain_graph=True)
    np.testing.assert_allclose(x.grad, 8.0 * x.data)
    loss.backward()  # the second backward through a kept graph accumulates
    np.testing.assert_allclose(x.grad, 16.0 * x.data)
    assert hidden.creator.ctx is None and hidden.creator.inputs == ()  # saved arrays and links dropped
    with pytest.raises(RuntimeError, match="freed by an earlier backward.*retain_graph=True"):
        loss.backward()


def test_the_graph_holds_no_intermediate_tensor_and_backward_lets_go_of_the_saved_arrays():
    """The graph links ops, not tensors: an intermediate tensor is gone once the user lets go of it;
    what an op saved for its backward (ReLU: its output) lives until that backward has run."""
    import weakref

    w = mc.tensor(np.ones((4, 4)), requires_grad=True)
    hidden = mc.tensor(np.ones((3, 4))) @ w
    alive = weakref.ref(hidden)
    activation = mc.functional.relu(hidden)
    saved = weakref.ref(activation.data)
    loss = activation.sum()
    del hidden, activation
    assert alive() is None  # the matmul's output: nothing keeps it
    assert saved() is not None  # ReLU's output, saved for its backward
    loss.backward()
    assert saved() is None and w.grad is not None


def test_retain_grad_reaches_a_tensor_the_user_holds():
    x = mc.tensor(np.arange(3.0), requires_grad=True)
    hidden = x * 2
    hidden.retain_grad()
    (hidden * hidden).sum().backward()
    np.testing.assert_array_equal(hidden.grad, 2 * hidden.data)
    np.testing.assert_array_equal(x.grad, 8 * x.data)


def test_a_leaf_takes_its_gradient_only_when_nothing_else_uses_it():
    """Leaves keep a kernel's fresh gradient as it is (no 244 MB copy per AlexNet step) but
    never share memory with the caller's array or with another tensor's gradient."""
    from minicnn.kernels.cpu import workspace

    user_grad = np.ones((2, 3))
    x = mc.tensor(np.zeros((2, 3)), requires_grad=True)
    x.backward(user_grad)  # the root is the leaf itself
    assert not np.shares_memory(x.grad, user_grad)
    x.grad = None
    x.reshape(3, 2).backward(user_grad.reshape(3, 2))  # a view of the caller's array comes back
    assert not np.shares_memory(x.grad, user_grad)
    a, b = (mc.tensor(np.ones(3), requires_grad=True) for _ in range(2))
    (a + b).backward(np.full(3, 2.0))  # Add hands the same array to both inputs
    assert not np.shares_memory(a.grad, b.grad)
    np.testing.assert_array_equal(a.grad, [2.0, 2.0, 2.0])

    rng = np.random.default_rng(0)
    w = mc.tensor(rng.standard_normal((600, 600), dtype=np.float32), requires_grad=True)  # 1.4 MB: cached
    inputs = rng.standard_normal((4, 600), dtype=np.float32)
    mc.functional.linear(mc.tensor(inputs), w).backward(np.ones((4, 600), np.float32))
    np.testing.assert_allclose(w.grad, np.ones((600, 4), np.float32) @ inputs, rtol=1e-5)
    assert any(w.grad.base is region.owner for region in workspace._regions)  # taken, not copied
