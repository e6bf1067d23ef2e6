"""``Tensor``: an array, its gradient, and the op that made it.

Besides the neural-network ops of ``minicnn.functional``, a tensor supports the
element-wise and reduction arithmetic a loss needs (``+ - * / -x x**c``, ``sum``,
``mean``, ``reshape``, ``@``) with NumPy broadcasting. The backward of a
broadcast op sums the gradient over the broadcast axes (``_unbroadcast``), so
every input receives a gradient of its own shape. On "cuda" the same arithmetic (not ``@``)
runs the element-wise kernels of ``kernels/cuda/elementwise.py``: ``_math`` picks NumPy's
operators or those kernels by where the arrays live, so each op's code is written once.

And what a PyTorch user reaches for (docs/pytorch.md): indexing with a gradient
(``Index``: the gradient is scattered back with ``np.add.at``, so an element read
twice gets both), comparisons (boolean tensors, no gradient), ``argmax``,
``max``/``min`` (the gradient to the winner, through indexing), ``view``,
``flatten``, ``unsqueeze``, ``squeeze``, ``permute``/``transpose``/``T``
(``Permute``: the gradient is permuted back), ``clone``, ``float``/``double``
(``Cast``), ``size()``, ``dim=``/``keepdim=``, and ``cat``/``stack`` (``Cat``: the
gradient is split back into the parts).
"""
from __future__ import annotations

import numbers
import operator
from types import SimpleNamespace

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
    size = property(lambda self: _Size(self.data.size, self.data.shape))  # t.size (elements), t.size() / t.size(d)
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

    def dim(self):
        return self.data.ndim

    def numel(self):
        return int(self.data.size)

    def __bool__(self):
        if self.data.size != 1:
            raise ArgumentError(f"bool: a tensor of {self.data.size} elements is neither true nor false; use "
                                "(t == x).all() or .any()")
        return bool(self.item())

    def __float__(self):
        return float(self._one("float"))

    def __int__(self):
        return int(self._one("int"))

    def __index__(self):
        if self.dtype.kind not in "iu":
            raise DTypeError(f"index: only an integer tensor can be an index, got dtype {self.dtype}")
        return int(self._one("index"))

    def _one(self, op):
        if self.data.size != 1:
            raise ShapeError(f"{op}: only a one-element tensor converts to a Python number, got shape {self.shape}")
        return self.item()

    def tolist(self):
        return self.numpy().tolist()

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
        return Neg.apply(self)

    def __pow__(self, exponent):
        if not isinstance(exponent, numbers.Real):
            raise DTypeError(f"pow: exponent must be a constant number, got {type(exponent).__name__}")
        return Pow.apply(self, float(exponent))

    def __matmul__(self, other):
        _host_only("matmul", self, other)
        return MatMul.apply(self, _operand(other, self, "matmul"))

    def __rmatmul__(self, other):
        _host_only("matmul", self, other)
        return MatMul.apply(_operand(other, self, "matmul"), self)

    def sum(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        """Sum over ``axis`` (NumPy's name) or ``dim`` (PyTorch's), all axes by default."""
        axis, keepdims = _reduction_args("sum", axis, keepdims, dim, keepdim)
        return Sum.apply(self, _normalise_axis(axis, self.ndim, "sum"), keepdims)

    def mean(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        axis, keepdims = _reduction_args("mean", axis, keepdims, dim, keepdim)
        axes = _normalise_axis(axis, self.ndim, "mean")
        count = int(np.prod([self.shape[a] for a in axes])) if axes else 1
        return self.sum(axes, keepdims) / count

    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        try:
            shape = np.empty(self.shape, dtype=np.bool_).reshape(shape).shape  # resolves a -1
        except (ValueError, TypeError):
            raise ShapeError(f"reshape: cannot reshape {self.shape} ({self.data.size} elements) into "
                             f"{tuple(shape)}") from None
        return Reshape.apply(self, shape)

    view = reshape  # PyTorch's name; no tensor here shares memory with another, so the same op

    def flatten(self, start_dim=0, end_dim=-1):
        """The axes from ``start_dim`` to ``end_dim`` (inclusive) merged into one."""
        start, end = (_normalise_axis(d, max(self.ndim, 1), "flatten")[0] for d in (start_dim, end_dim))
        if self.ndim == 0:
            return self.reshape(1)
        if start > end:
            raise ShapeError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
        return self.reshape(*self.shape[:start], -1, *self.shape[end + 1:])

    def unsqueeze(self, dim):
        """A new axis of size 1 at ``dim`` (counted in the result, as PyTorch does)."""
        where = _normalise_axis(dim, self.ndim + 1, "unsqueeze")[0]
        return self.reshape(*self.shape[:where], 1, *self.shape[where:])

    def squeeze(self, dim=None):
        """Without the axes of size 1 (only ``dim``, if given and of size 1)."""
        if dim is None:
            return self.reshape(*[s for s in self.shape if s != 1])
        where = _normalise_axis(dim, self.ndim, "squeeze")[0]
        if self.shape[where] != 1:
            return self
        return self.reshape(*self.shape[:where], *self.shape[where + 1:])

    def permute(self, *dims):
        dims = dims[0] if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
        order = tuple(_normalise_axis(d, self.ndim, "permute")[0] for d in dims)
        if sorted(order) != list(range(self.ndim)):
            raise ShapeError(f"permute: {tuple(dims)} is not an order of the {self.ndim} axes of {self.shape}")
        _host_only("permute", self)
        return Permute.apply(self, order)

    def transpose(self, dim0, dim1):
        order = list(range(self.ndim))
        a, b = (_normalise_axis(d, self.ndim, "transpose")[0] for d in (dim0, dim1))
        order[a], order[b] = order[b], order[a]
        return self.permute(order)

    @property
    def T(self):
        """The axes in reverse order (the transpose of a matrix)."""
        return self.permute(tuple(range(self.ndim))[::-1])

    def clone(self):
        """A copy that stays in the graph: its gradient flows back to this tensor."""
        return self * 1 if self.dtype.kind == "f" else Tensor(np.array(self.data, copy=True))

    def float(self):
        return self._cast(np.float32)

    def double(self):
        return self._cast(np.float64)

    def _cast(self, dtype):
        if self.dtype == dtype:
            return self
        _host_only("astype", self)
        return Cast.apply(self, np.dtype(dtype)) if self.dtype.kind == "f" else Tensor(self.data.astype(dtype))

    # ---- indexing and comparison --------------------------------------------------
    def __getitem__(self, index):
        """``t[0]``, ``t[:, 1:3]``, ``t[labels]``, ``t[mask]``...: NumPy's indexing, with a gradient
        that goes back to the elements read (added up where one is read twice)."""
        _host_only("index", self)
        return Index.apply(self, _index_key(index))

    def _compare(self, other, op, name):
        _host_only(name, self)
        values = other.data if isinstance(other, Tensor) else other
        try:
            result = op(self.data, values)
        except (TypeError, ValueError) as exc:
            raise ShapeError(f"{name}: cannot compare a tensor of shape {self.shape} with {values!r}: {exc}") \
                from None
        return Tensor(np.asarray(result, dtype=np.bool_))

    def __eq__(self, other):
        return self._compare(other, np.equal, "eq")

    def __ne__(self, other):
        return self._compare(other, np.not_equal, "ne")

    def __lt__(self, other):
        return self._compare(other, np.less, "lt")

    def __le__(self, other):
        return self._compare(other, np.less_equal, "le")

    def __gt__(self, other):
        return self._compare(other, np.greater, "gt")

    def __ge__(self, other):
        return self._compare(other, np.greater_equal, "ge")

    __hash__ = object.__hash__  # a tensor is a key by identity (== compares values, as in PyTorch)

    def all(self):
        return Tensor(np.asarray(bool(np.all(self.numpy()))))

    def any(self):
        return Tensor(np.asarray(bool(np.any(self.numpy()))))

    def argmax(self, dim=None, keepdim=False):
        """The index of the largest value (of all, flattened, or along ``dim``), as int64."""
        return self._arg(np.argmax, dim, keepdim, "argmax")

    def argmin(self, dim=None, keepdim=False):
        return self._arg(np.argmin, dim, keepdim, "argmin")

    def _arg(self, op, dim, keepdim, name):
        _host_only(name, self)
        if dim is None:
            return Tensor(np.asarray(op(self.data), dtype=np.int64))
        axis = _normalise_axis(dim, self.ndim, name)[0]
        return Tensor(np.asarray(op(self.data, axis=axis, keepdims=keepdim), dtype=np.int64))

    def max(self, dim=None, keepdim=False):
        """The largest value; along ``dim``, (values, indices) as PyTorch returns them. The
        gradient goes to the winner (the first one, on a tie)."""
        return self._extreme(np.argmax, dim, keepdim, "max")

    def min(self, dim=None, keepdim=False):
        return self._extreme(np.argmin, dim, keepdim, "min")

    def _extreme(self, op, dim, keepdim, name):
        _host_only(name, self)
        if self.data.size == 0:
            raise ShapeError(f"{name}: the tensor is empty")
        if dim is None:
            winner = np.unravel_index(int(op(self.data)), self.shape)
            return self[winner]
        axis = _normalise_axis(dim, self.ndim, name)[0]
        indices = np.expand_dims(op(self.data, axis=axis), axis)
        grid = list(np.indices(indices.shape, sparse=True))
        grid[axis] = indices
        values = self[tuple(grid)]
        if not keepdim:
            values, indices = values.squeeze(axis), np.squeeze(indices, axis)
        return MinMax(values, Tensor(indices.astype(np.int64)))


class _Size(int):
    """A tensor's element count (``t.size``, as before) that can also be called as PyTorch's
    ``t.size()`` (the shape) and ``t.size(d)`` (one axis)."""

    def __new__(cls, count, shape):
        size = super().__new__(cls, count)
        size.shape = tuple(shape)
        return size

    def __call__(self, dim=None):
        if dim is None:
            return self.shape
        return self.shape[_normalise_axis(dim, len(self.shape), "size")[0]]


class MinMax(tuple):
    """(values, indices) of ``max(dim)``/``min(dim)``, by position or by name, as PyTorch's."""

    def __new__(cls, values, indices):
        return super().__new__(cls, (values, indices))

    values = property(lambda self: self[0])
    indices = property(lambda self: self[1])


def _reduction_args(op, axis, keepdims, dim, keepdim):
    """``axis``/``keepdims`` (NumPy's names) or ``dim``/``keepdim`` (PyTorch's), not both."""
    if dim is not None and axis is not None:
        raise ArgumentError(f"{op}: give axis or dim, not both")
    return (dim if dim is not None else axis), (keepdim if keepdim is not None else keepdims)


def _index_key(index):
    """A NumPy index from what a user may write: ints, slices, None, Ellipsis, lists, arrays and
    tensors (integer or boolean); a float index is a clear error (one out of range: ``Index``)."""
    items = index if isinstance(index, tuple) else (index,)
    key = []
    for item in items:
        if isinstance(item, Tensor):
            item = item.numpy()
        if isinstance(item, list):
            item = np.asarray(item)
        if isinstance(item, np.ndarray) and item.dtype.kind not in "biu":
            raise DTypeError(f"index: an index array must be integer or boolean, got dtype {item.dtype}")
        if isinstance(item, (float, np.floating)):
            raise DTypeError(f"index: {item!r} is not an integer index")
        key.append(item)
    return tuple(key)


def flatten(input, start_dim=0, end_dim=-1):  # noqa: A002  (torch.flatten's argument name)
    """``input`` with the axes from ``start_dim`` to ``end_dim`` merged into one, as
    ``torch.flatten`` (``Tensor.flatten``)."""
    if not isinstance(input, Tensor):
        raise DTypeError(f"flatten: input must be a minicnn Tensor, got {type(input).__name__}")
    return input.flatten(start_dim, end_dim)


def cat(tensors, dim=0):
    """The tensors joined along ``dim`` (their other axes must match), as ``torch.cat``."""
    tensors = _same_kind("cat", tensors)
    axis = _normalise_axis(dim, tensors[0].ndim, "cat")[0]
    shapes = {t.shape[:axis] + t.shape[axis + 1:] for t in tensors}
    if len(shapes) != 1:
        raise ShapeError(f"cat: the tensors differ in more than axis {axis}: {[t.shape for t in tensors]}")
    return Cat.apply(axis, *tensors)


def stack(tensors, dim=0):
    """The tensors (all of one shape) along a new axis ``dim``, as ``torch.stack``."""
    tensors = _same_kind("stack", tensors)
    if len({t.shape for t in tensors}) != 1:
        raise ShapeError(f"stack: the tensors must have one shape, got {[t.shape for t in tensors]}")
    axis = _normalise_axis(dim, tensors[0].ndim + 1, "stack")[0]
    return cat([t.unsqueeze(axis) for t in tensors], axis)


def _same_kind(op, tensors):
    tensors = list(tensors)
    if not tensors or not all(isinstance(t, Tensor) for t in tensors):
        raise ArgumentError(f"{op}: needs a non-empty sequence of tensors")
    if len({t.dtype for t in tensors}) != 1:
        raise DTypeError(f"{op}: the tensors have different dtypes {sorted({str(t.dtype) for t in tensors})}")
    _host_only(op, *tensors)
    return tensors


def from_numpy(array):
    """A tensor of ``array``'s values and dtype (a copy: minicnn's tensors never share memory)."""
    if not isinstance(array, np.ndarray):
        raise ArgumentError(f"from_numpy: expected a NumPy array, got {type(array).__name__}")
    return Tensor(np.array(array, copy=True))


def zeros(*shape, dtype=np.float32, requires_grad=False):
    return Tensor(np.zeros(_shape_args("zeros", shape), dtype=dtype), requires_grad=requires_grad)


def ones(*shape, dtype=np.float32, requires_grad=False):
    return Tensor(np.ones(_shape_args("ones", shape), dtype=dtype), requires_grad=requires_grad)


def randn(*shape, dtype=np.float32, requires_grad=False, rng=None):
    """Standard normal values; from ``rng`` (a NumPy Generator) or minicnn's seeded generator."""
    from .random import generator

    rng = rng if rng is not None else generator()
    values = rng.standard_normal(_shape_args("randn", shape)).astype(dtype)
    return Tensor(values, requires_grad=requires_grad)


def _shape_args(op, shape):
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)
    if not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 0 for s in shape):
        raise ArgumentError(f"{op}: a shape is non-negative integers, got {shape}")
    return shape


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
            raise ArgumentError(f"{op}: runs on the CPU only; this tensor is on {t.device} (the network ops, "
                                "the loss and + - * / ** sum mean run on the GPU; .cpu() brings a tensor back)")


def _operand(value, like: Tensor, op: str) -> Tensor:
    """Turn the other operand of a binary op into a Tensor with the same float dtype. With a tensor
    on "cuda", the other may be on "cuda" too, or a number or one-element array (as PyTorch allows
    a 0-d CPU tensor there): those stay on the host and reach the kernel as a value."""
    if isinstance(value, Tensor):
        if value.dtype != like.dtype:
            raise DTypeError(f"{op}: dtypes differ, {like.dtype} and {value.dtype}; convert one explicitly")
        host_scalar = any(t.device == "cpu" and t.data.size == 1 for t in (value, like))
        if value.device != like.device and not host_scalar:
            raise ArgumentError(f"{op}: the tensors are on different devices, {like.device} {like.shape} and "
                                f"{value.device} {value.shape}; move one with .to()")
        return value
    if isinstance(value, numbers.Real):
        return Tensor(np.asarray(value, dtype=like.dtype))
    array = np.asarray(value)
    if array.dtype != like.dtype:
        raise DTypeError(f"{op}: dtypes differ, {like.dtype} and {array.dtype}; convert one explicitly")
    if like.device != "cpu" and array.size != 1:
        raise ArgumentError(f"{op}: a tensor on {like.device} with a host array of shape {array.shape}; make it a "
                            f"tensor and move it with .to({like.device!r})")
    return Tensor(array)


# The arithmetic of the ops below, on the host: NumPy's operators (the results NumPy gives, 0-d
# arrays included); ``_math`` swaps in the CUDA kernels (kernels/cuda/arrays.py, same names) when
# an operand lives on the GPU.
_HOST_MATH = SimpleNamespace(
    binary=lambda op, a, b: _HOST_OPS[op](a, b),
    negative=operator.neg,
    power=lambda a, exponent: a ** a.dtype.type(exponent),
    sum=lambda a, axes, keepdims: np.asarray(a.sum(axis=axes, keepdims=keepdims), dtype=a.dtype),
    broadcast_to=lambda a, shape: np.broadcast_to(a, shape).copy(),
)
_HOST_OPS = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv}


def _math(*arrays):
    """NumPy's arithmetic for host arrays; the CUDA kernels' when any operand is a device array."""
    if any(_device.is_device_array(a) for a in arrays):
        return _device.arrays_of(next(a for a in arrays if _device.is_device_array(a)))
    return _HOST_MATH


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
    return _math(grad).sum(grad, axes, True).reshape(shape)


def _binary(op, a, b):
    return _math(a, b).binary(op, a, b)


class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        _broadcast_shape(a, b, "add")
        ctx.save_for_backward(a.shape, b.shape)
        return _binary("add", a, b)

    @staticmethod
    def backward(ctx, g):
        a_shape, b_shape = ctx.saved
        return _unbroadcast(g, a_shape), _unbroadcast(g, b_shape)


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        _broadcast_shape(a, b, "sub")
        ctx.save_for_backward(a.shape, b.shape)
        return _binary("sub", a, b)

    @staticmethod
    def backward(ctx, g):
        a_shape, b_shape = ctx.saved
        return _unbroadcast(g, a_shape), _unbroadcast(_math(g).negative(g), b_shape)


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        _broadcast_shape(a, b, "mul")
        ctx.save_for_backward(a, b)
        return _binary("mul", a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        ga = _unbroadcast(_binary("mul", g, b), a.shape) if ctx.needs_input_grad[0] else None
        gb = _unbroadcast(_binary("mul", g, a), b.shape) if ctx.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        _broadcast_shape(a, b, "div")
        ctx.save_for_backward(a, b)
        return _binary("div", a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        ga = _unbroadcast(_binary("div", g, b), a.shape) if ctx.needs_input_grad[0] else None
        gb = None
        if ctx.needs_input_grad[1]:  # -g * a / (b * b)
            gb = _unbroadcast(_binary("div", _binary("mul", _math(g).negative(g), a), _binary("mul", b, b)), b.shape)
        return ga, gb


class Neg(Function):
    @staticmethod
    def forward(ctx, a):
        return _math(a).negative(a)

    @staticmethod
    def backward(ctx, g):
        return (_math(g).negative(g),)


class Pow(Function):
    """``a ** c`` for a constant c; d/da = c * a ** (c - 1)."""

    @staticmethod
    def forward(ctx, a, exponent):
        ctx.save_for_backward(a, exponent)
        return _math(a).power(a, exponent)

    @staticmethod
    def backward(ctx, g):
        a, exponent = ctx.saved
        c = a.dtype.type(exponent)
        return _binary("mul", _binary("mul", g, c), _math(a).power(a, c - 1)), None


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
        return _math(a).sum(a, axes, keepdims)

    @staticmethod
    def backward(ctx, g):
        shape, axes, keepdims = ctx.saved
        if not keepdims:  # the summed axes back, as size 1
            g = g.reshape(tuple(1 if d in axes else size for d, size in enumerate(shape)))
        return _math(g).broadcast_to(g, shape), None, None


class Reshape(Function):
    @staticmethod
    def forward(ctx, a, shape):
        ctx.save_for_backward(a.shape)
        return a.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        (shape,) = ctx.saved
        return g.reshape(shape), None


class Permute(Function):
    @staticmethod
    def forward(ctx, a, order):
        ctx.save_for_backward(order)
        return np.ascontiguousarray(np.transpose(a, order))

    @staticmethod
    def backward(ctx, g):
        (order,) = ctx.saved
        return np.ascontiguousarray(np.transpose(g, np.argsort(order))), None


class Cast(Function):
    @staticmethod
    def forward(ctx, a, dtype):
        ctx.save_for_backward(a.dtype)
        return a.astype(dtype)

    @staticmethod
    def backward(ctx, g):
        (dtype,) = ctx.saved
        return g.astype(dtype), None


class Index(Function):
    """y = a[key]; dL/da is zero except where y was read from, where it adds dL/dy (np.add.at, so
    that an element read twice, as in ``a[[0, 0]]``, gets both gradients)."""

    @staticmethod
    def forward(ctx, a, key):
        try:
            values = np.array(a[key], copy=True)
        except IndexError as exc:  # NumPy's own rules and message, with the shape added
            raise ShapeError(f"index: {exc} (tensor shape {a.shape})") from None
        ctx.save_for_backward(a.shape, a.dtype, key)
        return values

    @staticmethod
    def backward(ctx, g):
        shape, dtype, key = ctx.saved
        grad = np.zeros(shape, dtype=dtype)
        np.add.at(grad, key, g)
        return grad, None


class Cat(Function):
    @staticmethod
    def forward(ctx, axis, *arrays):
        ctx.save_for_backward(axis, np.cumsum([a.shape[axis] for a in arrays])[:-1])
        return np.concatenate(arrays, axis=axis)

    @staticmethod
    def backward(ctx, g):
        axis, bounds = ctx.saved
        return (None, *(np.ascontiguousarray(part) for part in np.split(g, bounds, axis=axis)))
