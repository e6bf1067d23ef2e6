"""The neural-network ops, one ``Function`` each, shaped like ``torch.nn.functional``.

Each public function validates its arguments (raising minicnn's errors, which
name the op, what it expected and what it got), picks the kernels for the
tensors' device, and calls ``SomeOp.apply``. The ``Function`` classes are thin:
forward calls the backend's ``*_forward`` kernel and saves what backward needs;
backward calls the ``*_backward`` kernel. The math lives with the kernels, in
``kernels/reference/*.py`` (readable NumPy), ``kernels/cpu/*.py`` (fast) and
``kernels/cuda/*.py``; ``kernels/backends.py`` says which run.
"""
from __future__ import annotations

import numbers

import numpy as np

from . import checks
from . import device as _device
from .autograd import Function
from .errors import ArgumentError, DTypeError, ShapeError
from .kernels import backends
from .tensor import FLOAT_DTYPES, Tensor

__all__ = [
    "conv2d_padding", "conv2d", "conv2d_relu", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "local_response_norm", "relu", "sigmoid", "tanh", "dropout",
    "linear", "linear_relu", "flatten", "log_softmax", "softmax", "cross_entropy", "batch_norm",
]

# ---- argument checks ------------------------------------------------------------------
def _check_tensor(op, name, value, ndims=None):
    """``value`` must be a float32/float64 Tensor of one of the ranks ``ndims``; returns it contiguous."""
    if not isinstance(value, Tensor):
        raise DTypeError(f"{op}: {name} must be a minicnn Tensor, got {type(value).__name__}")
    if value.dtype not in FLOAT_DTYPES:
        raise DTypeError(f"{op}: {name} must be float32 or float64, got {value.dtype}")
    if ndims is not None and value.ndim not in ndims:
        want = " or ".join(f"{d}-d" for d in ndims)
        raise ShapeError(f"{op}: {name} must be {want}, got {value.ndim}-d with shape {value.shape}")
    if isinstance(value.data, np.ndarray) and not value.data.flags.c_contiguous:
        value.data = np.ascontiguousarray(value.data)
    return value


def _check_same_dtype(op, first, **others):
    for name, t in others.items():
        if t is not None and t.dtype != first.dtype:
            fix = ""
            if t.dtype.kind == first.dtype.kind == "f":  # the usual case: NumPy's float64 data, a float32 model
                fix = (f" (x.{'float' if t.dtype == np.float32 else 'double'}() converts the input; a "
                       f"DataLoader(..., dtype=np.{t.dtype}) converts each batch)")
            raise DTypeError(f"{op}: {name} is {t.dtype} but input is {first.dtype}; all must have one dtype{fix}")


def _kernels(op, *tensors):
    """The kernels for the tensors' device (kernels/backends.py); mixing devices in one op is an error."""
    devices = {t.device for t in tensors if isinstance(t, Tensor)}
    if len(devices) > 1:
        raise ArgumentError(f"{op}: tensors are on different devices {sorted(devices)}; move them to one device")
    return backends.for_device(devices.pop())


# ---- convolution ----------------------------------------------------------------------
def conv2d_padding(padding, size, kernel, stride):
    """Resolve conv2d's ``padding`` (int, pair, "same" or "valid") for an input of spatial
    ``size`` (h, w), a ``kernel`` (kh, kw) and a ``stride`` pair, to ((top, bottom), (left, right))."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        if padding == "same":
            # TensorFlow/Keras rule: output = ceil(input / stride); an odd total pads one more after.
            sides = []
            for n, k, s in zip(size, kernel, stride):
                total = max((-(-n // s) - 1) * s + k - n, 0)
                sides.append((total // 2, total - total // 2))
            return tuple(sides)
        raise ArgumentError(f"conv2d: padding must be an int, a pair, 'same' or 'valid', got {padding!r}")
    ph, pw = checks.pair("conv2d", "padding", padding, 0)
    return (ph, ph), (pw, pw)


class Conv2d(Function):
    @staticmethod
    def forward(ctx, x, w, b, stride, padding, groups, kernels):
        ctx.save_for_backward(x, w, stride, padding, groups, kernels)
        return kernels.conv.conv2d_forward(x, w, b, stride, padding, groups)

    @staticmethod
    def backward(ctx, grad_y):
        x, w, stride, padding, groups, kernels = ctx.saved
        grads = kernels.conv.conv2d_backward(x, w, grad_y, stride, padding, groups, ctx.needs_input_grad[:3])
        return (*grads, None, None, None, None)


class Conv2dReLU(Function):
    """relu(conv2d(...)) as one op: the backend computes both in one pass (on the GPU the ReLU
    runs in the product's epilogue, one launch instead of two), and the backward takes the ReLU's
    mask then the convolution's gradients, the same arithmetic as the two ops apart."""

    @staticmethod
    def forward(ctx, x, w, b, stride, padding, groups, kernels):
        y = kernels.conv.conv2d_relu_forward(x, w, b, stride, padding, groups)
        ctx.save_for_backward(x, w, y, stride, padding, groups, kernels)  # y, as ReLU alone keeps
        return y

    @staticmethod
    def backward(ctx, grad_y):
        x, w, y, stride, padding, groups, kernels = ctx.saved
        grad_z = kernels.activation.relu_backward(y, grad_y)
        grads = kernels.conv.conv2d_backward(x, w, grad_z, stride, padding, groups, ctx.needs_input_grad[:3])
        return (*grads, None, None, None, None)


def conv2d(x, weight, bias=None, stride=1, padding=0, groups=1):
    """2-D convolution of x (N, C, H, W) with weight (K, C/groups, kh, kw) and optional bias (K,).

    ``stride``: int or pair, >= 1. ``padding``: int or pair >= 0, or "valid" (none) or
    "same" (output size ceil(input / stride), the TensorFlow rule). ``groups`` splits
    the channels into groups that only see their own inputs (AlexNet's two GPUs).
    """
    return Conv2d.apply(x, weight, bias, *_conv2d_arguments(x, weight, bias, stride, padding, groups))


def conv2d_relu(x, weight, bias=None, stride=1, padding=0, groups=1):
    """``relu(conv2d(x, weight, bias, stride, padding, groups))`` as one op, the same numbers bit
    for bit: on the GPU one kernel launch (the ReLU in the product's epilogue) where the two ops
    take two and a pass over the output between them. ``nn.Sequential`` runs a ``Conv2d`` followed
    by a ``ReLU`` this way."""
    return Conv2dReLU.apply(x, weight, bias, *_conv2d_arguments(x, weight, bias, stride, padding, groups))


def _conv2d_arguments(x, weight, bias, stride, padding, groups):
    """conv2d's checks: (stride, padding, groups, kernels) normalised, or a clear error."""
    op = "conv2d"
    _check_tensor(op, "input", x, (4,))
    _check_tensor(op, "weight", weight, (4,))
    if bias is not None:
        _check_tensor(op, "bias", bias, (1,))
    _check_same_dtype(op, x, weight=weight, bias=bias)
    groups = checks.integer(op, "groups", groups, 1)
    stride = checks.pair(op, "stride", stride, 1)
    n, c, h, w = x.shape
    k, c_per_group, kh, kw = weight.shape
    if c != c_per_group * groups:
        also = f" (groups={groups} does not divide the {c} input channels)" if c % groups else ""
        raise ShapeError(
            f"{op}: input has {c} channels, weight expects {c_per_group * groups} "
            f"({c_per_group} per group x {groups} groups); input {x.shape}, weight {weight.shape}{also}"
        )
    if k % groups:
        raise ShapeError(f"{op}: groups={groups} does not divide the {k} output channels; weight {weight.shape}")
    if bias is not None and bias.shape != (k,):
        raise ShapeError(f"{op}: bias must have shape ({k},) for weight {weight.shape}, got {bias.shape}")
    if min(n, c, h, w, k, kh, kw) == 0:
        raise ShapeError(f"{op}: empty input or weight, input {x.shape}, weight {weight.shape}")
    padding = conv2d_padding(padding, (h, w), (kh, kw), stride)
    padded = (h + sum(padding[0]), w + sum(padding[1]))
    if kh > padded[0] or kw > padded[1]:
        raise ShapeError(
            f"{op}: kernel {kh}x{kw} is larger than the padded input {padded[0]}x{padded[1]} "
            f"(input {h}x{w}, padding {padding})"
        )
    out_hw = [(size - kernel) // s + 1 for size, kernel, s in zip(padded, (kh, kw), stride)]
    checks.fits_in_memory(op, "the output", (n, k, *out_hw), x.dtype)
    return stride, padding, groups, _kernels(op, x, weight, bias)


# ---- pooling and normalisation -----------------------------------------------------------
class MaxPool2d(Function):
    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, kernels):
        y, argmax = kernels.pool.max_pool2d_forward(x, kernel_size, stride, padding)
        ctx.save_for_backward(argmax, x.shape, kernel_size, stride, padding, kernels)
        return y

    @staticmethod
    def backward(ctx, grad_y):
        argmax, x_shape, kernel_size, stride, padding, kernels = ctx.saved
        grad_x = kernels.pool.max_pool2d_backward(grad_y, argmax, x_shape, kernel_size, stride, padding)
        return grad_x, None, None, None, None


def _pool_arguments(op, x, kernel_size, stride, padding):
    """max_pool2d's and avg_pool2d's checks: the window as pairs (kernel, stride, padding)."""
    _check_tensor(op, "input", x, (4,))
    kernel_size = checks.pair(op, "kernel_size", kernel_size, 1)
    stride = kernel_size if stride is None else checks.pair(op, "stride", stride, 1)
    padding = checks.pair(op, "padding", padding, 0)
    for p, k in zip(padding, kernel_size):
        if p > k // 2:
            raise ArgumentError(f"{op}: padding must be at most half the kernel size, got padding {padding} for kernel {kernel_size}")
    n, c, h, w = x.shape
    if min(n, c, h, w) == 0:
        raise ShapeError(f"{op}: empty input {x.shape}")
    if kernel_size[0] > h + 2 * padding[0] or kernel_size[1] > w + 2 * padding[1]:
        raise ShapeError(
            f"{op}: kernel {kernel_size[0]}x{kernel_size[1]} is larger than the padded input "
            f"{h + 2 * padding[0]}x{w + 2 * padding[1]}; input {x.shape}"
        )
    return kernel_size, stride, padding


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Max pooling of x (N, C, H, W); windows may overlap (AlexNet: kernel_size=3, stride=2).

    ``stride`` defaults to ``kernel_size``. ``padding`` (<= kernel_size // 2) pads with -inf.
    Ties go to the first element of the window in row-major order.
    """
    op = "max_pool2d"
    kernel_size, stride, padding = _pool_arguments(op, x, kernel_size, stride, padding)
    return MaxPool2d.apply(x, kernel_size, stride, padding, _kernels(op, x))


class AvgPool2d(Function):
    """Average pooling over windows given as (start, stop, count) per output row and column
    (kernels/reference/pool.py); both nn.AvgPool2d and nn.AdaptiveAvgPool2d run on it."""

    @staticmethod
    def forward(ctx, x, rows, cols, kernels):
        ctx.save_for_backward(x.shape, rows, cols, kernels)
        return kernels.pool.avg_pool2d_forward(x, rows, cols)

    @staticmethod
    def backward(ctx, grad_y):
        x_shape, rows, cols, kernels = ctx.saved
        return kernels.pool.avg_pool2d_backward(grad_y, x_shape, rows, cols), None, None, None


def _windows(start, stop, count):
    return tuple(np.ascontiguousarray(a, dtype=np.int64) for a in (start, stop, count))


def _avg_pool_windows(size, kernel, stride, pad, ceil_mode, count_include_pad):
    """One axis of avg_pool2d, as PyTorch has it: output i's window starts at i*stride - pad in the
    padded input and ends kernel later, but not past the padding; ceil_mode adds a last, partial
    window where one starts inside the input or its left padding. The divisor counts the padding
    (count_include_pad) or only the input the window covers."""
    span = size + 2 * pad - kernel
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    start = np.arange(out) * stride - pad
    stop = np.minimum(start + kernel, size + pad)
    padded_count = stop - start
    start, stop = np.maximum(start, 0), np.minimum(stop, size)
    return _windows(start, stop, padded_count if count_include_pad else stop - start)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None):
    """Average pooling of x (N, C, H, W), with PyTorch's arguments and rules.

    ``stride`` defaults to ``kernel_size``; ``padding`` (<= kernel_size // 2) pads with zeros,
    which count in the divisor when ``count_include_pad`` (the default); ``ceil_mode`` rounds
    the output size up; ``divisor_override`` divides every window's sum by that number instead.
    """
    op = "avg_pool2d"
    kernel_size, stride, padding = _pool_arguments(op, x, kernel_size, stride, padding)
    for name, flag in (("ceil_mode", ceil_mode), ("count_include_pad", count_include_pad)):
        checks.boolean(op, name, flag)
    rows, cols = (_avg_pool_windows(size, k, s, p, ceil_mode, count_include_pad)
                  for size, k, s, p in zip(x.shape[2:], kernel_size, stride, padding))
    if divisor_override is not None:
        divisor = checks.positive_integer(op, "divisor_override", divisor_override)
        rows, cols = (*rows[:2], np.full_like(rows[2], divisor)), (*cols[:2], np.ones_like(cols[2]))
    return AvgPool2d.apply(x, rows, cols, _kernels(op, x))


def _adaptive_windows(size, out):
    """Output i of ``out`` averages input [floor(i*size/out), ceil((i+1)*size/out)): windows of
    near-equal length that cover the input, overlapping where out does not divide size."""
    i = np.arange(out)
    start, stop = i * size // out, -(-(i + 1) * size // out)
    return _windows(start, stop, stop - start)


def adaptive_avg_pool2d(x, output_size):
    """Average pooling of x (N, C, H, W) to ``output_size`` (an int, or a pair whose None keeps
    that axis's size), whatever the input's size: torchvision's AlexNet pools to 6x6 this way."""
    op = "adaptive_avg_pool2d"
    _check_tensor(op, "input", x, (4,))
    items = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size, output_size)
    if len(items) != 2:
        raise ArgumentError(f"{op}: output_size must be an int or a pair, got {output_size!r}")
    out = tuple(size if o is None else checks.positive_integer(op, "output_size", o)
                for size, o in zip(x.shape[2:], items))
    if min(x.shape) == 0:
        raise ShapeError(f"{op}: empty input {x.shape}")
    rows, cols = (_adaptive_windows(size, o) for size, o in zip(x.shape[2:], out))
    return AvgPool2d.apply(x, rows, cols, _kernels(op, x))


class LocalResponseNorm(Function):
    @staticmethod
    def forward(ctx, x, size, alpha, beta, k, kernels):
        y, saved = kernels.lrn.lrn_forward(x, size, alpha, beta, k)  # saved: what the backend's backward takes
        ctx.save_for_backward(x, saved, size, alpha, beta, k, kernels)
        return y

    @staticmethod
    def backward(ctx, grad_y):
        x, saved, size, alpha, beta, k, kernels = ctx.saved
        return kernels.lrn.lrn_backward(x, saved, grad_y, size, alpha, beta, k), None, None, None, None, None


def local_response_norm(x, size=5, alpha=1e-4, beta=0.75, k=2.0):
    """The 2012 AlexNet paper's LRN across channels of x (N, C, H, W):
    ``y[c] = x[c] / (k + alpha * sum_{|j - c| <= size // 2} x[j]^2) ** beta``.

    The defaults are the paper's. Unlike PyTorch, alpha is not divided by ``size``.
    """
    op = "local_response_norm"
    _check_tensor(op, "input", x, (4,))
    size = checks.integer(op, "size", size, 1)
    if size % 2 == 0:
        raise ArgumentError(f"{op}: size must be a positive odd integer (a window centred on each channel), got {size}")
    alpha = checks.number(op, "alpha", alpha, 0.0)
    beta = checks.number(op, "beta", beta, 0.0)
    k = checks.number(op, "k", k, 0.0, low_inclusive=False)
    if x.size == 0:
        raise ShapeError(f"{op}: empty input {x.shape}")
    return LocalResponseNorm.apply(x, size, alpha, beta, k, _kernels(op, x))


# ---- element-wise ---------------------------------------------------------------------------
class ReLU(Function):
    @staticmethod
    def forward(ctx, x, kernels):
        y = kernels.activation.relu_forward(x)
        ctx.save_for_backward(y, kernels)  # y, not x: the layer before may then free its output
        return y

    @staticmethod
    def backward(ctx, grad_y):
        y, kernels = ctx.saved
        return kernels.activation.relu_backward(y, grad_y), None


class Sigmoid(Function):
    @staticmethod
    def forward(ctx, x, kernels):
        y = kernels.activation.sigmoid_forward(x)
        ctx.save_for_backward(y, kernels)
        return y

    @staticmethod
    def backward(ctx, grad_y):
        y, kernels = ctx.saved
        return kernels.activation.sigmoid_backward(y, grad_y), None


class Tanh(Function):
    @staticmethod
    def forward(ctx, x, kernels):
        y = kernels.activation.tanh_forward(x)
        ctx.save_for_backward(y, kernels)
        return y

    @staticmethod
    def backward(ctx, grad_y):
        y, kernels = ctx.saved
        return kernels.activation.tanh_backward(y, grad_y), None


def relu(x):
    """max(x, 0), element-wise; its gradient at exactly 0 is 0."""
    return ReLU.apply(_check_tensor("relu", "input", x), _kernels("relu", x))


def sigmoid(x):
    """1 / (1 + exp(-x)), element-wise."""
    return Sigmoid.apply(_check_tensor("sigmoid", "input", x), _kernels("sigmoid", x))


def tanh(x):
    """tanh(x), element-wise."""
    return Tanh.apply(_check_tensor("tanh", "input", x), _kernels("tanh", x))


class Dropout(Function):
    @staticmethod
    def forward(ctx, x, p, seed, offset, kernels):
        ctx.save_for_backward(p, seed, offset, kernels)
        return kernels.dropout.dropout_forward(x, p, seed, offset)

    @staticmethod
    def backward(ctx, grad_y):
        p, seed, offset, kernels = ctx.saved
        return kernels.dropout.dropout_backward(grad_y, p, seed, offset), None, None, None, None


def dropout(x, p=0.5, training=True, seed=None, offset=0):
    """Inverted dropout: in training, zero each element with probability p and scale the
    rest by 1 / (1 - p); in eval, return x unchanged.

    The mask is a pure function of (``seed``, element index), identical on every backend
    and thread count. ``seed`` is an int in [0, 2**64); None draws one from NumPy's global
    generator (so ``np.random.seed`` makes a run repeatable). ``offset`` is added to every element
    index: a process holding part of a larger batch passes the elements before its part, so that
    each image gets the mask it would get in the whole batch (data parallelism).
    """
    op = "dropout"
    _check_tensor(op, "input", x)
    p = checks.number(op, "p", p, 0.0, 1.0, high_inclusive=False)
    checks.boolean(op, "training", training)
    if not training or p == 0.0:
        return x
    if seed is None:
        seed = int(np.random.randint(0, 2**63, dtype=np.int64))
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2**64:
        raise ArgumentError(f"{op}: seed must be an integer in [0, 2**64), got {seed!r}")
    offset = checks.integer(op, "offset", offset, 0, 2**63 - 1)
    return Dropout.apply(x, p, int(seed), offset, _kernels(op, x))


# ---- fully connected ------------------------------------------------------------------------
class Linear(Function):
    @staticmethod
    def forward(ctx, x, w, b, kernels):
        ctx.save_for_backward(x, w, kernels)
        return kernels.linear.linear_forward(x, w, b)

    @staticmethod
    def backward(ctx, grad_y):
        x, w, kernels = ctx.saved
        return (*kernels.linear.linear_backward(x, w, grad_y, ctx.needs_input_grad[:3]), None)


class LinearReLU(Function):
    """relu(linear(...)) as one op (see ``Conv2dReLU``)."""

    @staticmethod
    def forward(ctx, x, w, b, kernels):
        y = kernels.linear.linear_relu_forward(x, w, b)
        ctx.save_for_backward(x, w, y, kernels)
        return y

    @staticmethod
    def backward(ctx, grad_y):
        x, w, y, kernels = ctx.saved
        grad_z = kernels.activation.relu_backward(y, grad_y)
        return (*kernels.linear.linear_backward(x, w, grad_z, ctx.needs_input_grad[:3]), None)


def linear(x, weight, bias=None):
    """y = x @ weight^T + bias, for x (N, in_features) and weight (out_features, in_features)."""
    return Linear.apply(x, weight, bias, _linear_arguments(x, weight, bias))


def linear_relu(x, weight, bias=None):
    """``relu(linear(x, weight, bias))`` as one op, the same numbers bit for bit (one kernel launch
    on the GPU; see ``conv2d_relu``). ``nn.Sequential`` runs a ``Linear`` followed by a ``ReLU``
    this way."""
    return LinearReLU.apply(x, weight, bias, _linear_arguments(x, weight, bias))


def _linear_arguments(x, weight, bias):
    """linear's checks: the kernels for the tensors' device, or a clear error."""
    op = "linear"
    _check_tensor(op, "input", x, (2,))
    _check_tensor(op, "weight", weight, (2,))
    if bias is not None:
        _check_tensor(op, "bias", bias, (1,))
    _check_same_dtype(op, x, weight=weight, bias=bias)
    if x.shape[1] != weight.shape[1]:
        raise ShapeError(
            f"{op}: input has {x.shape[1]} features, weight expects {weight.shape[1]}; "
            f"input {x.shape}, weight {weight.shape}"
        )
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ShapeError(f"{op}: bias must have shape ({weight.shape[0]},) for weight {weight.shape}, got {bias.shape}")
    return _kernels(op, x, weight, bias)


def flatten(x, start_dim=1):
    """Merge the axes from ``start_dim`` on into one: (N, C, H, W) -> (N, C*H*W)."""
    if not isinstance(x, Tensor):
        raise DTypeError(f"flatten: input must be a minicnn Tensor, got {type(x).__name__}")
    start_dim = checks.integer("flatten", "start_dim", start_dim, 0)
    if start_dim >= max(x.ndim, 1):
        raise ShapeError(f"flatten: start_dim {start_dim} is out of range for a {x.ndim}-d input {x.shape}")
    return x.reshape(*x.shape[:start_dim], -1)


# ---- softmax and loss -------------------------------------------------------------------------
def _check_class_dim(op, x, dim):
    _check_tensor(op, "input", x, (2,))
    if dim not in (1, -1):
        raise ArgumentError(f"{op}: dim must be 1 (the class axis of (N, classes) input), got {dim!r}")
    if x.shape[1] == 0:
        raise ShapeError(f"{op}: input has no classes, shape {x.shape}")


class LogSoftmax(Function):
    @staticmethod
    def forward(ctx, x, kernels):
        log_y = kernels.softmax.log_softmax_forward(x)
        ctx.save_for_backward(log_y, kernels)
        return log_y

    @staticmethod
    def backward(ctx, grad_y):
        log_y, kernels = ctx.saved
        return kernels.softmax.log_softmax_backward(log_y, grad_y), None


class Softmax(Function):
    @staticmethod
    def forward(ctx, x, kernels):
        y = kernels.softmax.softmax_forward(x)
        ctx.save_for_backward(y, kernels)
        return y

    @staticmethod
    def backward(ctx, grad_y):
        y, kernels = ctx.saved
        return kernels.softmax.softmax_backward(y, grad_y), None


def log_softmax(x, dim=-1):
    """log(softmax(x)) over the classes of x (N, classes), computed stably."""
    _check_class_dim("log_softmax", x, dim)
    return LogSoftmax.apply(x, _kernels("log_softmax", x))


def softmax(x, dim=-1):
    """exp(x) / sum(exp(x)) over the classes of x (N, classes), computed stably."""
    _check_class_dim("softmax", x, dim)
    return Softmax.apply(x, _kernels("softmax", x))


class CrossEntropy(Function):
    @staticmethod
    def forward(ctx, logits, labels, kernels):
        loss, log_y = kernels.softmax.cross_entropy_forward(logits, labels)
        ctx.save_for_backward(log_y, labels, kernels)
        return loss

    @staticmethod
    def backward(ctx, grad_loss):
        log_y, labels, kernels = ctx.saved
        return kernels.softmax.cross_entropy_backward(log_y, labels, grad_loss), None, None


def cross_entropy(logits, labels):
    """Mean over the batch of -log softmax(logits)[n, labels[n]].

    logits (N, classes) float; labels (N,) integers in [0, classes), a Tensor or array.
    """
    op = "cross_entropy"
    _check_class_dim(op, logits, -1)
    data = labels.numpy() if isinstance(labels, Tensor) else np.asarray(labels)  # checked on the host
    if data.dtype.kind not in "iu":
        raise DTypeError(f"{op}: labels must be integers, got dtype {data.dtype}")
    n, classes = logits.shape
    if data.shape != (n,):
        raise ShapeError(f"{op}: labels must have shape ({n},) to match logits {logits.shape}, got {data.shape}")
    if n == 0:
        raise ShapeError(f"{op}: empty batch, logits {logits.shape}")
    low, high = data.min(), data.max()
    if low < 0 or high >= classes:
        bad = low if low < 0 else high
        raise ArgumentError(f"{op}: labels must be in [0, {classes}) for {classes} classes, got {bad}")
    labels_array = _device.move(np.ascontiguousarray(data, dtype=np.int64), logits.device)
    return CrossEntropy.apply(logits, labels_array, _kernels(op, logits))


# ---- batch norm ---------------------------------------------------------------------------------
class BatchNorm(Function):
    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, training, momentum, eps, kernels):
        bn = kernels.batchnorm
        if training:
            y, mean, var = bn.batch_norm_train_forward(x, weight, bias, eps)
            if running_mean is not None:
                bn.update_running_stats(running_mean, running_var, mean, var, momentum, x.size // x.shape[1])
        else:
            # copies: a later training-mode call may update the running statistics before this backward
            mean, var = _device.copy(running_mean), _device.copy(running_var)
            y = bn.batch_norm_eval_forward(x, mean, var, weight, bias, eps)
        ctx.save_for_backward(x, mean, var, weight, training, eps, kernels)
        return y

    @staticmethod
    def backward(ctx, grad_y):
        x, mean, var, weight, training, eps, kernels = ctx.saved
        grad_x, grad_weight, grad_bias = kernels.batchnorm.batch_norm_backward(x, mean, var, weight, grad_y, eps, training)
        return grad_x, grad_weight, grad_bias, None, None, None, None, None, None


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Batch normalisation of x (N, C) or (N, C, H, W) per channel, as ``torch.nn.functional.batch_norm``.

    Training normalises with the batch's mean and (biased) variance and updates
    ``running_mean``/``running_var`` in place (the variance stored unbiased); eval
    normalises with the running statistics. ``weight``/``bias`` (C,) are optional.
    """
    op = "batch_norm"
    _check_tensor(op, "input", x, (2, 4))
    channels = x.shape[1]
    named = {"running_mean": running_mean, "running_var": running_var, "weight": weight, "bias": bias}
    for name, t in named.items():
        if t is not None:
            _check_tensor(op, name, t, (1,))
            if t.shape != (channels,):
                raise ShapeError(f"{op}: {name} must have shape ({channels},) for input {x.shape}, got {t.shape}")
    _check_same_dtype(op, x, **named)
    checks.boolean(op, "training", training)
    momentum = checks.number(op, "momentum", momentum, 0.0, 1.0)
    eps = checks.number(op, "eps", eps, 0.0, low_inclusive=False)
    if x.size == 0:
        raise ShapeError(f"{op}: empty input {x.shape}")
    if training and x.size // channels < 2:
        raise ShapeError(f"{op}: training needs more than one value per channel, got input {x.shape}")
    if (running_mean is None) != (running_var is None):
        raise ArgumentError(f"{op}: give both running_mean and running_var, or neither")
    if not training and (running_mean is None or running_var is None):
        raise ArgumentError(f"{op}: eval mode (training=False) needs running_mean and running_var")
    w = weight if weight is not None else _device.full(channels, 1, x.dtype, x.device)
    b = bias if bias is not None else _device.full(channels, 0, x.dtype, x.device)
    return BatchNorm.apply(x, w, b, running_mean, running_var, bool(training), momentum, eps,
                           _kernels(op, x, weight, bias, running_mean, running_var))
