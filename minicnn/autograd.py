"""The autograd engine: ``Function`` nodes, gradient mode and the backward walk.

An op is a subclass of ``Function`` with two static methods, as in PyTorch's
``torch.autograd.Function``::

    forward(ctx, *args)      -> output array          (args: arrays and plain values)
    backward(ctx, grad_out)  -> one gradient per arg  (None where an arg has none)

``Function.apply`` unwraps Tensors into arrays, runs ``forward``, and, when any
input requires a gradient and gradient mode is on, records a ``Node`` on the
output tensor. ``backward`` (called by ``Tensor.backward``) orders the nodes
topologically with an explicit stack, so a graph thousands of ops deep never
touches Python's recursion limit, then sends gradients from the output back to
the inputs, summing where a tensor was used more than once.
"""
from __future__ import annotations

import contextlib
import threading
import weakref

import numpy as np

from . import device as _device

_state = threading.local()


def is_grad_enabled() -> bool:
    return getattr(_state, "grad_enabled", True)


@contextlib.contextmanager
def no_grad():
    """Within this block ops record no graph (for evaluation and parameter updates)."""
    previous = is_grad_enabled()
    _state.grad_enabled = False
    try:
        yield
    finally:
        _state.grad_enabled = previous


class Context:
    """What a Function's forward leaves for its backward.

    ``needs_input_grad[i]`` says whether argument ``i`` needs a gradient, so a
    backward can skip work nobody asked for (the input gradient of conv1, say).
    """

    def __init__(self, needs_input_grad):
        self.needs_input_grad = needs_input_grad
        self.saved = ()

    def save_for_backward(self, *values):
        self.saved = values


class Node:
    """One recorded op: the Function that ran, its context, and one edge per forward argument.

    An edge leads to the op that made that input (its Node) or, for a tensor no op made (a leaf:
    a parameter, an input), to the tensor itself; None where the input needs no gradient. The graph
    never holds an op's intermediate input tensors, as PyTorch's does not: an activation's array
    lives as long as an op saved it or the user holds it, no longer. (A ReLU saves its output, so a
    convolution's output before it is freed as soon as the ReLU has run: at AlexNet's conv1, batch
    64, 74 MB.) The output tensor is known only weakly, to give it ``.grad`` if it asked to
    ``retain_grad``.
    """

    __slots__ = ("function", "ctx", "inputs", "output", "shape", "dtype")

    def __init__(self, function, ctx, inputs, output):
        self.function = function
        self.ctx = ctx
        self.inputs = tuple(None if t is None or not t.requires_grad else _vertex(t) for t in inputs)
        self.output = weakref.ref(output)
        self.shape, self.dtype = output.shape, output.dtype

    @property
    def name(self) -> str:
        return self.function.__name__


def _vertex(tensor):
    """Where a tensor sits in the graph: the Node that made it, or itself for a leaf."""
    return tensor.creator if tensor.creator is not None else tensor


class Function:
    """Base class of every differentiable op."""

    @staticmethod
    def forward(ctx, *args):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, grad_out):
        raise NotImplementedError

    @classmethod
    def apply(cls, *args):
        from .tensor import Tensor

        tensors = [a if isinstance(a, Tensor) else None for a in args]
        raw = [a.data if isinstance(a, Tensor) else a for a in args]
        record = is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)
        needs = tuple(record and t is not None and t.requires_grad for t in tensors)
        ctx = Context(needs)
        out = cls.forward(ctx, *raw)
        result = Tensor(out, requires_grad=record)
        if record:
            result.creator = Node(cls, ctx, tensors, result)
        return result


def _topological_order(root):
    """The graph's vertices (Nodes, and leaf tensors) that lead to ``root``, root first, each after
    every vertex that uses it."""
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        vertex, children_done = stack.pop()
        if children_done:
            order.append(vertex)
            continue
        if id(vertex) in visited:
            continue
        visited.add(id(vertex))
        stack.append((vertex, True))
        if isinstance(vertex, Node):
            for parent in vertex.inputs:
                if parent is not None and id(parent) not in visited:
                    stack.append((parent, False))
    order.reverse()
    return order


def backward(root, grad, retain_graph=False, on_leaf=None):
    """Send ``grad`` (d loss / d root) back through the graph that made ``root``.

    Leaf tensors (and tensors that called ``retain_grad``) accumulate into ``.grad``.
    As in PyTorch, each op's saved arrays and its links to its inputs are dropped as soon
    as its backward has run, so the activations of a network are freed one by one
    during the backward pass instead of all at its end (AlexNet at batch 64: the arrays
    alive at the peak went from 1011 MB to 878 MB). ``retain_graph=True`` keeps the graph
    for another backward (gradcheck runs two on one graph). ``on_leaf(tensor)`` is called as soon
    as a leaf's gradient is complete (data parallelism starts summing it over the processes then,
    while the backward goes on: minicnn.distributed.GradientReducer).
    """
    start = _vertex(root)
    order = _topological_order(start)
    grads = {id(start): grad}
    for position, vertex in enumerate(order):
        order[position] = None  # the list must not keep a vertex, and so its arrays, alive
        key = id(vertex)
        if key not in grads:
            continue
        arrays = _device.arrays_of(grads[key])
        if not isinstance(vertex, Node):  # a leaf keeps the gradient: itself where nothing else uses it
            vertex.grad = arrays.take(grads, key) if vertex.grad is None else arrays.add(vertex.grad, grads.pop(key))
            if on_leaf is not None:
                on_leaf(vertex)
            continue
        output = vertex.output()
        if output is not None and output.retains_grad:  # the gradient also goes on to the op's inputs
            output.grad = arrays.copy(grads[key]) if output.grad is None else arrays.add(output.grad, grads[key])
        # No variable here holds a gradient (nor does _send_back's, once it returns), so that
        # ``arrays.take`` sees exactly who else uses one.
        _send_back(vertex, grads.pop(key), grads, retain_graph)


def _send_back(node, grad, grads, retain_graph):
    """Run ``node``'s backward on ``grad`` and add the input gradients into ``grads``."""
    if node.ctx is None:
        raise RuntimeError(
            f"backward: the graph through {node.name} was freed by an earlier backward; "
            "pass retain_graph=True to that one to run backward twice"
        )
    input_grads = node.function.backward(node.ctx, grad)
    inputs = node.inputs
    if not retain_graph:
        node.ctx, node.inputs = None, ()
    if not isinstance(input_grads, tuple):
        input_grads = (input_grads,)
    if len(input_grads) != len(inputs):
        raise RuntimeError(f"{node.name}.backward returned {len(input_grads)} gradients for {len(inputs)} inputs")
    for parent, parent_grad in zip(inputs, input_grads):
        if parent is None or parent_grad is None:
            continue
        if not _device.is_device_array(parent_grad):
            parent_grad = np.asarray(parent_grad, dtype=parent.dtype)
        if parent_grad.shape != parent.shape:
            raise RuntimeError(
                f"{node.name}.backward gave a gradient of shape {parent_grad.shape} "
                f"for an input of shape {parent.shape}"
            )
        key = id(parent)
        grads[key] = parent_grad if key not in grads else _device.add(grads[key], parent_grad)
