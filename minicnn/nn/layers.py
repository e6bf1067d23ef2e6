"""The layers: thin Modules over ``minicnn.functional``.

Each layer keeps its settings and parameters and calls the functional op; the
math and its checks live there and in the kernels. Parameters are created in
float32 with Kaiming-normal weights and zero biases (``nn.init`` has the paper's
scheme); ``dtype=np.float64`` makes a layer for gradient checks.
"""
import numpy as np

from .. import checks
from .. import functional as F
from .. import random as _random
from ..errors import ArgumentError
from ..tensor import Tensor
from . import init
from .module import Module, Parameter


def _short(pair):
    """A pair as the int it repeats, or as the pair: "1" or "(1, 2)" (PyTorch's repr shows both as pairs)."""
    return str(pair[0]) if pair[0] == pair[1] else str(pair)


class Conv2d(Module):
    """2-D convolution: weight (out_channels, in_channels / groups, kh, kw), bias (out_channels,)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, groups=1, bias=True,
                 dtype=np.float32):
        super().__init__()
        self.in_channels = checks.positive_integer("Conv2d", "in_channels", in_channels)
        self.out_channels = checks.positive_integer("Conv2d", "out_channels", out_channels)
        self.groups = checks.positive_integer("Conv2d", "groups", groups)
        if in_channels % groups or out_channels % groups:
            raise ArgumentError(
                f"Conv2d: groups={groups} must divide in_channels={in_channels} and out_channels={out_channels}"
            )
        # Normalised once, here, as PyTorch's layers do: pairs of ints, or "same"/"valid".
        self.kernel_size = checks.pair("Conv2d", "kernel_size", kernel_size, 1)
        self.stride = checks.pair("Conv2d", "stride", stride, 1)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ArgumentError(f"Conv2d: padding must be an int, a pair, 'same' or 'valid', got {padding!r}")
            self.padding = padding
        else:
            self.padding = checks.pair("Conv2d", "padding", padding, 0)
        self.weight = Parameter(np.zeros((out_channels, in_channels // groups, *self.kernel_size), dtype=dtype))
        self.bias = Parameter(np.zeros(out_channels, dtype=dtype)) if bias else None
        if init.default_init_enabled():
            init.kaiming_normal_(self.weight)

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.groups)

    def forward_relu(self, x):
        """relu(self(x)) as one op (``F.conv2d_relu``): how ``Sequential`` runs a Conv2d and the
        ReLU after it."""
        return F.conv2d_relu(x, self.weight, self.bias, self.stride, self.padding, self.groups)

    def extra_repr(self):
        kh, kw = self.kernel_size
        extra = f", groups={self.groups}" if self.groups > 1 else ""
        bias = "" if self.bias is not None else ", bias=False"
        padding = repr(self.padding) if isinstance(self.padding, str) else _short(self.padding)
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={kh}x{kw}, stride={_short(self.stride)}, "
                f"padding={padding}{extra}{bias}")


class Linear(Module):
    """Fully connected: weight (out_features, in_features), bias (out_features,)."""

    def __init__(self, in_features, out_features, bias=True, dtype=np.float32):
        super().__init__()
        self.in_features = checks.positive_integer("Linear", "in_features", in_features)
        self.out_features = checks.positive_integer("Linear", "out_features", out_features)
        self.weight = Parameter(np.zeros((out_features, in_features), dtype=dtype))
        self.bias = Parameter(np.zeros(out_features, dtype=dtype)) if bias else None
        if init.default_init_enabled():
            init.kaiming_normal_(self.weight)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def forward_relu(self, x):
        """relu(self(x)) as one op (``F.linear_relu``): how ``Sequential`` runs a Linear and the
        ReLU after it."""
        return F.linear_relu(x, self.weight, self.bias)

    def extra_repr(self):
        return f"{self.in_features}, {self.out_features}" + ("" if self.bias is not None else ", bias=False")


class MaxPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        # Normalised once, here: pairs of ints; the stride defaults to the window (no overlap).
        self.kernel_size = checks.pair("MaxPool2d", "kernel_size", kernel_size, 1)
        self.stride = self.kernel_size if stride is None else checks.pair("MaxPool2d", "stride", stride, 1)
        self.padding = checks.pair("MaxPool2d", "padding", padding, 0)

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self):
        padding = f", padding={_short(self.padding)}" if any(self.padding) else ""
        return f"kernel_size={_short(self.kernel_size)}, stride={_short(self.stride)}{padding}"


class AvgPool2d(Module):
    """Average pooling, with PyTorch's arguments (F.avg_pool2d)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        super().__init__()
        self.kernel_size = checks.pair("AvgPool2d", "kernel_size", kernel_size, 1)
        self.stride = self.kernel_size if stride is None else checks.pair("AvgPool2d", "stride", stride, 1)
        self.padding = checks.pair("AvgPool2d", "padding", padding, 0)
        self.ceil_mode, self.count_include_pad, self.divisor_override = ceil_mode, count_include_pad, divisor_override

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad,
                            self.divisor_override)

    def extra_repr(self):
        padding = f", padding={_short(self.padding)}" if any(self.padding) else ""
        options = "".join(f", {name}={getattr(self, name)}" for name, default in
                          (("ceil_mode", False), ("count_include_pad", True), ("divisor_override", None))
                          if getattr(self, name) != default)
        return f"kernel_size={_short(self.kernel_size)}, stride={_short(self.stride)}{padding}{options}"


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size, whatever the input's (F.adaptive_avg_pool2d)."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        return F.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class LocalResponseNorm(Module):
    """The 2012 paper's LRN (alpha not divided by size, unlike PyTorch)."""

    def __init__(self, size=5, alpha=1e-4, beta=0.75, k=2.0):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, x):
        return F.local_response_norm(x, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self):
        return f"size={self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


class ReLU(Module):
    """max(x, 0). ``inplace`` is accepted for PyTorch code (torchvision's AlexNet writes
    ``nn.ReLU(inplace=True)``) and gives the same output and gradients; minicnn's autograd has no
    in-place ops, so the input is left as it was. (In a ``Sequential``, a ReLU after a Conv2d or
    Linear is written over that layer's output anyway: ``F.conv2d_relu``.)"""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = checks.boolean("ReLU", "inplace", inplace)

    def forward(self, x):
        return F.relu(x)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class Sigmoid(Module):
    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    def forward(self, x):
        return F.tanh(x)


class Flatten(Module):
    """The axes from ``start_dim`` to ``end_dim`` merged into one, as ``torch.nn.Flatten``: by default
    every axis after the batch's, (N, C, H, W) -> (N, C*H*W)."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim = checks.integer("Flatten", "start_dim", start_dim)
        self.end_dim = checks.integer("Flatten", "end_dim", end_dim)

    def forward(self, x):
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self):
        return "" if (self.start_dim, self.end_dim) == (1, -1) else f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Dropout(Module):
    """Inverted dropout. Each training call uses a fresh mask: the seed of call t is derived
    from the layer's ``seed`` and t, so a run is repeatable from its seeds."""

    def __init__(self, p=0.5, inplace=False, seed=None):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
            raise ArgumentError(f"Dropout: p must be in [0, 1), got {p!r}")
        self.p = float(p)
        # PyTorch's argument, accepted for its code: the same output, the input left as it was (ReLU's note)
        self.inplace = checks.boolean("Dropout", "inplace", inplace)
        self.seed = int(_random.generator().integers(0, 2**63)) if seed is None else int(seed)
        self.calls = 0
        # Images of the whole batch before this process's part of it (data parallelism sets it), so
        # that each image gets the mask it would get in one process: see F.dropout's offset.
        self.batch_offset = 0

    def next_seed(self):
        """The seed of the next training call (a SplitMix64-style step of (seed, calls))."""
        return (self.seed * 0x9E3779B97F4A7C15 + self.calls * 0xBF58476D1CE4E5B9 + 1) % 2**64

    def forward(self, x):
        if not self.training or self.p == 0:
            return F.dropout(x, self.p, False)
        seed = self.next_seed()
        self.calls += 1
        per_image = x.size // x.shape[0] if x.ndim else 1
        return F.dropout(x, self.p, True, seed, self.batch_offset * per_image)

    def extra_repr(self):
        return f"p={self.p}" + (", inplace=True" if self.inplace else "")


class _BatchNorm(Module):
    _ranks = ()

    def __init__(self, num_features, eps=1e-5, momentum=0.1, dtype=np.float32):
        super().__init__()
        self.num_features = checks.positive_integer(type(self).__name__, "num_features", num_features)
        self.eps, self.momentum = eps, momentum
        self.weight = Parameter(np.ones(num_features, dtype=dtype))
        self.bias = Parameter(np.zeros(num_features, dtype=dtype))
        self.register_buffer("running_mean", Tensor(np.zeros(num_features, dtype=dtype)))
        self.register_buffer("running_var", Tensor(np.ones(num_features, dtype=dtype)))
        # Data parallelism with --sync-bn sets the process group: training then normalises over the
        # whole global batch (minicnn.distributed.sync_batch_norm), not over this process's part.
        self.sync_group = None

    def forward(self, x):
        if isinstance(x, Tensor) and x.ndim not in self._ranks:
            want = " or ".join(f"{r}-d" for r in self._ranks)
            raise ArgumentError(f"{type(self).__name__}: input must be {want}, got shape {x.shape}")
        if self.training and self.sync_group is not None:
            from ..distributed import sync_batch_norm

            return sync_batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, self.momentum,
                                   self.eps, self.sync_group)
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            self.training, self.momentum, self.eps)

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) input (after a linear layer)."""
    _ranks = (2,)


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, C, H, W) input, per channel (after a convolution)."""
    _ranks = (4,)
