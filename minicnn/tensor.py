"""``Tensor``: an array, its gradient, and the op that made it.

Besides the neural-network ops of ``minicnn.functional``, a tensor supports the
element-wise and reduction arithmetic a loss needs (``+ - * / -x x**c``, ``sum``,
``mean``, ``reshape``, ``@``) with NumPy broadcasting. The backward of a
broadcast op sums the gradient over the broadcast axes (``_unbroadcast``), so
every input receives a gradient of its own shape.
"""
from __future__ import annotations

import numbers

import numpy as np

from . import autograd
from . import device as _device
from .autograd import Function
from .errors import ArgumentError, DTypeError, ShapeError

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class Tensor:
    """An n-dimensional array with an optional gradient.

    Attributes: ``data`` (a NumPy array, or a Numba device array on "cuda"),
    ``grad`` (an array of the same shape and device, or None), ``requires_grad``,
    ``creator`` (the autograd ``Node`` that made it; None for a leaf) and
    ``device`` ("cpu" or "cuda", where ``data`` lives).
    """

    __array_priority__ = 1000  # so ndarray + Tensor defers to Tensor.__radd__

    def __init__(self, data, requires_grad=False):
        data = data.data if isinstance(data, Tensor) else data
        if not isinstance(data, np.ndarray) and not _device.is_device_array(data):
            data = _numeric_array(data)
        if data.dtype.kind not in "biuf":
            raise DTypeError(f"tensor: data must be numbers (bool, integer or float), got dtype {data.dtype}")
        if requires_grad and data.dtype not in FLOAT_DTYPES:
            raise DTypeError(f"tensor: only float32/float64 tensors can require grad, got dtype {data.dtype}")
        self.data = data
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self.creator = None
        self.retains_grad = False

    # ---- array-like facts -------------------------------------------------
    shape = property(lambda self: self.data.shape)
    ndim = property(lambda self: self.data.ndim)
    dtype = property(lambda self: self.data.dtype)
    size = property(lambda self: self.data.size)
    device = property(lambda self: _device.device_of(self.data))

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        grad = ", requires_grad=True" if self.requires_grad else ""
        fn = f", creator={self.creator.name}" if self.creator is not None else ""
        if self.device == "cuda":  # printing the values would copy them to the host
            return f"tensor(<cuda array of shape {self.shape}>, dtype={self.dtype}{grad}{fn})"
        body = np.array2string(self.data, precision=4, threshold=20, edgeitems=2)
        return f"tensor({body}, dtype={self.dtype}{grad}{fn})"

    def numpy(self) -> np.ndarray:
        """The values as a NumPy array (a copy from the GPU for a cuda tensor)."""
        return _device.move(self.data, "cpu")

    def item(self):
        return self.numpy().item()

    def to(self, device):
        """This tensor's values on ``device`` ("cpu" or "cuda"), as a new leaf tensor (or self if
        already there). Moving a model's parameters is ``Module.to``."""
        _device.check_device(device, "to")
        if device == self.device:
            return self
        return Tensor(_device.move(self.data, device), requires_grad=self.requires_grad)

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def detach(self) -> "Tensor":
        """The same data, cut from the graph (no gradient flows through it)."""
        return Tensor(self.data, requires_grad=False)

    def retain_grad(self):
        """Keep ``.grad`` on this non-leaf tensor after backward (leaves always keep it)."""
        self.retains_grad = True
        return self

    def zero_grad(self):
        self.grad = None

    def backward(self, grad=None, retain_graph=False):
        """Compute d self / d leaf for every leaf that requires grad, into ``leaf.grad``.

        ``grad`` defaults to 1 for a one-element tensor (a loss); other shapes must pass it.
        The graph's saved arrays are freed on the way unless ``retain_graph=True`` (needed to
        call backward on the same graph again).
        """
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require grad (no graph was recorded)")
        if grad is None:
            if self.data.size != 1:
                raise ShapeError(
                    f"backward: a gradient must be given for a non-scalar output, shape {self.shape}"
                )
            grad = _device.ones_like(self.data)
        grad = grad.data if isinstance(grad, Tensor) else grad
        if _device.device_of(grad) != self.device:
            raise ArgumentError(f"backward: the gradient is on {_device.device_of(grad)}, the tensor on {self.device}")
        if not _device.is_device_array(grad):
            grad = np.asarray(grad, dtype=self.dtype)
        if grad.shape != self.shape:
            raise ShapeError(f"backward: gradient has shape {grad.shape}, expected {self.shape}")
        autograd.backward(self, grad, retain_graph)

    # ---- arithmetic -----------------------------------------------------------
    def __add__(self, other):
        return Add.apply(self, _operand(other, self, "add"))

    def __radd__(self, other):
        return Add.apply(_operand(other, self, "add"), self)

    def __sub__(self, other):
        return Sub.apply(self, _operand(other, self, "sub"))

    def __rsub__(self, other):
        return Sub.apply(_operand(other, self, "sub"), self)

    def __mul__(self, other):
        return Mul.apply(self, _operand(other, self, "mul"))

    def __rmul__(self, other):
        return Mul.apply(_operand(other, self, "mul"), self)

    def __truediv__(self, other):
        return Div.apply(self, _operand(other, self, "div"))

    def __rtruediv__(self, other):
        return Div.apply(_operand(other, self, "div"), self)

    def __neg__(self):
        _host_only("neg", self)
        return Neg.apply(self)

    def __pow__(self, exponent):
        if not isinstance(exponent, numbers.Real):
            raise DTypeError(f"pow: exponent must be a constant number, got {type(exponent).__name__}")
        _host_only("pow", self)
        return Pow.apply(self, float(exponent))

    def __matmul__(self, other):
        return MatMul.apply(self, _operand(other, self, "matmul"))

    def __rmatmul__(self, other):
        return MatMul.apply(_operand(other, self, "matmul"), self)

    def sum(self, axis=None, keepdims=False):
        _host_only("sum", self)
        return Sum.apply(self, _normalise_axis(axis, self.ndim, "sum"), keepdims)

    def mean(self, axis=None, keepdims=False):
        axes = _normalise_axis(axis, self.ndim, "mean")
        count = int(np.prod([self.shape[a] for a in axes])) if axes else 1
        return self.sum(axes, keepdims) / count

    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        try:
            shape = np.empty(self.shape, dtype=np.bool_).reshape(shape).shape  # resolves a -1
        except ValueError:
            raise ShapeError(f"reshape: cannot reshape {self.shape} ({self.size} elements) into {tuple(shape)}") from None
        return Reshape.apply(self, shape)


def tensor(data, requires_grad=False, dtype=None) -> Tensor:
    """Make a leaf tensor, as ``torch.tensor`` does.

    NumPy arrays keep their dtype; Python floats and lists of floats become float32
    (the project's default), Python ints become int64 (for class labels).
    """
    if isinstance(data, Tensor):
        data = data.data
    if dtype is None and not isinstance(data, (np.ndarray, np.generic)):
        array = _numeric_array(data)
        if array.dtype == np.float64:
            array = array.astype(np.float32)
    else:
        try:
            array = np.array(data, dtype=dtype, copy=True)
        except (TypeError, ValueError) as exc:
            raise DTypeError(f"tensor: cannot make an array of dtype {dtype} from {type(data).__name__}: {exc}") from None
    return Tensor(array, requires_grad=requires_grad)


def _numeric_array(data):
    """``data`` (a number, or nested lists of numbers) as an array, or a clear error: a ragged list,
    a string, None or a dict would otherwise become an array of Python objects."""
    try:
        array = np.asarray(data)
    except ValueError as exc:  # NumPy 2 refuses ragged nesting
        raise ShapeError(f"tensor: nested lists must be rectangular (the same length at each level): {exc}") from None
    if array.dtype.kind not in "biuf":
        raise DTypeError(f"tensor: data must be numbers (bool, integer or float), got {type(data).__name__} "
                         f"(dtype {array.dtype})")
    return array


def _host_only(op, *tensors):
    for t in tensors:
        if isinstance(t, Tensor) and t.device != "cpu":
            raise ArgumentError(f"{op}: element-wise tensor arithmetic runs on the CPU only; this tensor is on "
                                f"{t.device} (the network ops and the loss run on the GPU)")


def _operand(value, like: Tensor, op: str) -> Tensor:
    """Turn the other operand of a binary op into a Tensor with the same float dtype."""
    _host_only(op, like, value)
    if isinstance(value, Tensor):
        if value.dtype != like.dtype:
            raise DTypeError(f"{op}: dtypes differ, {like.dtype} and {value.dtype}; convert one explicitly")
        return value
    if isinstance(value, numbers.Real):
        return Tensor(np.asarray(value, dtype=like.dtype))
    array = np.asarray(value)
    if array.dtype != like.dtype:
        raise DTypeError(f"{op}: dtypes differ, {like.dtype} and {array.dtype}; convert one explicitly")
    return Tensor(array)


def _normalise_axis(axis, ndim, op):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, numbers.Integral) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ShapeError(f"{op}: axis {a} is out of range for a {ndim}-d tensor")
        out.append(a % ndim)
    return tuple(sorted(set(out)))


def _broadcast_shape(a, b, op):
    try:
        return np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ShapeError(f"{op}: shapes {a.shape} and {b.shape} do not broadcast") from None


def _unbroadcast(grad, shape):
    """Sum ``grad`` down to ``shape``: over leading axes broadcasting added, and over
    axes where ``shape`` has size 1 but the result did not."""
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, size in enumerate(shape) if size == 1 and grad.shape[lead + i] != 1
    )
    return grad.sum(axis=axes, keepdims=True).reshape(shape)


class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        _broadcast_shape(a, b, "add")
        ctx.save_for_backward(a.shape, b.shape)
        return a + b

    @staticmethod
    def backward(ctx, g):
        a_shape, b_shape = ctx.saved
        return _unbroadcast(g, a_shape), _unbroadcast(g, b_shape)


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        _broadcast_shape(a, b, "sub")
        ctx.save_for_backward(a.shape, b.shape)
        return a - b

    @staticmethod
    def backward(ctx, g):
        a_shape, b_shape = ctx.saved
        return _unbroadcast(g, a_shape), _unbroadcast(-g, b_shape)


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        _broadcast_shape(a, b, "mul")
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        ga = _unbroadcast(g * b, a.shape) if ctx.needs_input_grad[0] else None
        gb = _unbroadcast(g * a, b.shape) if ctx.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        _broadcast_shape(a, b, "div")
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        ga = _unbroadcast(g / b, a.shape) if ctx.needs_input_grad[0] else None
        gb = _unbroadcast(-g * a / (b * b), b.shape) if ctx.needs_input_grad[1] else None
        return ga, gb


class Neg(Function):
    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, g):
        return (-g,)


class Pow(Function):
    """``a ** c`` for a constant c; d/da = c * a ** (c - 1)."""

    @staticmethod
    def forward(ctx, a, exponent):
        ctx.save_for_backward(a, exponent)
        return a ** a.dtype.type(exponent)

    @staticmethod
    def backward(ctx, g):
        a, exponent = ctx.saved
        c = a.dtype.type(exponent)
        return g * c * a ** (c - 1), None


class MatMul(Function):
    """``a @ b`` for 2-d operands (and 1-d/batched as NumPy defines them).

    d/da = g @ b^T and d/db = a^T @ g, summed over broadcast batch axes.
    """

    @staticmethod
    def forward(ctx, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ShapeError(f"matmul: operands must be at least 1-d, got shapes {a.shape} and {b.shape}")
        inner_a = a.shape[-1]
        inner_b = b.shape[-2] if b.ndim >= 2 else b.shape[0]
        if inner_a != inner_b:
            raise ShapeError(
                f"matmul: inner sizes differ, {a.shape} @ {b.shape} ({inner_a} != {inner_b})"
            )
        ctx.save_for_backward(a, b)
        return np.matmul(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = np.expand_dims(g, -1) if b.ndim == 1 else g  # restore the axes a vector operand dropped
        if a.ndim == 1:
            g2 = np.expand_dims(g2, -2)
        ga = gb = None
        if ctx.needs_input_grad[0]:
            ga = _unbroadcast(np.matmul(g2, np.swapaxes(b2, -1, -2)), a2.shape).reshape(a.shape)
        if ctx.needs_input_grad[1]:
            gb = _unbroadcast(np.matmul(np.swapaxes(a2, -1, -2), g2), b2.shape).reshape(b.shape)
        return ga, gb


class Sum(Function):
    @staticmethod
    def forward(ctx, a, axes, keepdims):
        ctx.save_for_backward(a.shape, axes, keepdims)
        return np.asarray(a.sum(axis=axes, keepdims=keepdims), dtype=a.dtype)

    @staticmethod
    def backward(ctx, g):
        shape, axes, keepdims = ctx.saved
        if not keepdims:
            g = np.expand_dims(g, axes)
        return np.broadcast_to(g, shape).copy(), None, None


class Reshape(Function):
    @staticmethod
    def forward(ctx, a, shape):
        ctx.save_for_backward(a.shape)
        return a.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        (shape,) = ctx.saved
        return g.reshape(shape), None
