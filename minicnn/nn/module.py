"""``Module`` and ``Parameter``: layers that own tensors, as in ``torch.nn``.

A Module keeps its parameters and sub-modules in attribute order, so
``named_parameters()`` yields names like ``conv1.weight`` in the order a
network's layers run. ``train()``/``eval()`` switch the mode of every
sub-module (dropout and batch norm behave differently). ``state_dict()`` holds
parameters and buffers (batch norm's running statistics) as NumPy arrays;
``load_state_dict`` refuses missing, unexpected or mis-shaped entries with a
message that lists them.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from ..errors import ArgumentError, ShapeError
from ..tensor import Tensor


class Parameter(Tensor):
    """A tensor that a Module learns: ``requires_grad`` is on by default."""

    def __init__(self, data, requires_grad=True):
        super().__init__(np.asarray(data), requires_grad=requires_grad)

    def __repr__(self):
        return f"Parameter(shape={self.shape}, dtype={self.dtype})"


class Module:
    """Base class of every layer and network."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}: call Module.__init__() before assigning attributes")
        for registry in (self._parameters, self._buffers, self._modules):
            registry.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def register_buffer(self, name, tensor):
        """A tensor that belongs to the module's state but is not learned (running statistics)."""
        self._buffers[name] = tensor
        object.__setattr__(self, name, tensor)

    def forward(self, *args):
        raise NotImplementedError

    def __call__(self, *args):
        return self.forward(*args)

    # ---- traversal ---------------------------------------------------------------------
    def named_children(self):
        return iter(self._modules.items())

    def children(self):
        return iter(self._modules.values())

    def modules(self):
        """This module and every module inside it, depth first."""
        return (module for _, module in self.named_modules())

    def add_module(self, name, module):
        if not isinstance(name, str) or not name or "." in name:
            raise ArgumentError(f"add_module: a name is a non-empty string without dots, got {name!r}")
        if module is not None and not isinstance(module, Module):
            raise ArgumentError(f"add_module: {name!r} is a {type(module).__name__}, not a Module")
        setattr(self, name, module)

    def apply(self, fn):
        """Call ``fn(module)`` on every sub-module, then on this one (PyTorch's order: an
        initialiser reaches the layers before their container); returns self."""
        for child in self._modules.values():
            child.apply(fn)
        fn(self)
        return self

    def named_modules(self, prefix=""):
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def named_parameters(self, prefix=""):
        for name, p in self._parameters.items():
            yield (f"{prefix}.{name}" if prefix else name), p
        for name, child in self._modules.items():
            yield from child.named_parameters(f"{prefix}.{name}" if prefix else name)

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix=""):
        for name, b in self._buffers.items():
            yield (f"{prefix}.{name}" if prefix else name), b
        for name, child in self._modules.items():
            yield from child.named_buffers(f"{prefix}.{name}" if prefix else name)

    def num_parameters(self):
        return sum(p.size for p in self.parameters())

    # ---- modes and gradients ----------------------------------------------------------------
    def train(self, mode=True):
        for _, module in self.named_modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    def astype(self, dtype):
        """Convert every parameter and buffer to ``dtype`` in place (float64 for gradient checks)."""
        dtype = np.dtype(dtype)
        for _, t in list(self.named_parameters()) + list(self.named_buffers()):
            t.data = t.data.astype(dtype)
            t.grad = None
        return self

    def to(self, device):
        """Move every parameter and buffer to ``device`` ("cpu" or "cuda"), in place."""
        from .. import device as _device

        _device.check_device(device, f"{type(self).__name__}.to")
        for _, t in list(self.named_parameters()) + list(self.named_buffers()):
            t.data = _device.move(t.data, device)
            t.grad = None
        return self

    def double(self):
        return self.astype(np.float64)

    def float(self):
        return self.astype(np.float32)

    # ---- state -----------------------------------------------------------------------------
    def state_dict(self):
        """Parameters and buffers by dotted name, as copies of their arrays."""
        state = OrderedDict((name, np.array(p.numpy(), copy=True)) for name, p in self.named_parameters())
        state.update((name, np.array(b.numpy(), copy=True)) for name, b in self.named_buffers())
        return state

    def load_state_dict(self, state, strict=True):
        """Copy ``state``'s arrays (or tensors) into the parameters and buffers. ``strict``: every
        name must match both ways; with ``strict=False`` the matching names load and the rest are
        reported. Returns ``(missing_keys, unexpected_keys)``, as PyTorch does. A mis-shaped entry
        is refused either way, and nothing is loaded then."""
        own = OrderedDict(self.named_parameters())
        own.update(self.named_buffers())
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        if strict and (missing or unexpected):
            raise ArgumentError(
                f"load_state_dict: {type(self).__name__} state does not match; "
                f"missing {missing or 'none'}, unexpected {unexpected or 'none'} (strict=False loads the rest)"
            )
        values = {k: (state[k].numpy() if isinstance(state[k], Tensor) else state[k]) for k in own if k in state}
        wrong = [f"{k}: expected {own[k].shape}, got {np.shape(v)}" for k, v in values.items() if np.shape(v) != own[k].shape]
        if wrong:
            raise ShapeError(f"load_state_dict: mis-shaped entries in {type(self).__name__}: " + "; ".join(wrong))
        from .. import device as _device

        for name, value in values.items():
            tensor = own[name]
            tensor.data = _device.move(np.array(value, dtype=tensor.dtype, copy=True), tensor.device)
        return IncompatibleKeys(missing, unexpected)

    # ---- display -------------------------------------------------------------------------------
    def extra_repr(self):
        return ""

    def __repr__(self):
        if not self._modules:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}("]
        for name, child in self._modules.items():
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        lines.append(")")
        return "\n".join(lines)


class IncompatibleKeys(tuple):
    """``load_state_dict``'s answer: (missing_keys, unexpected_keys), by position or name."""

    def __new__(cls, missing, unexpected):
        return super().__new__(cls, (list(missing), list(unexpected)))

    missing_keys = property(lambda self: self[0])
    unexpected_keys = property(lambda self: self[1])


class Sequential(Module):
    """Layers run one after another. Built from modules (named "0", "1", ...) or from
    ``(name, module)`` pairs, as AlexNet's named layers ``conv1``, ``relu1``, ... are."""

    def __init__(self, *layers):
        super().__init__()
        for i, layer in enumerate(layers):
            name, module = layer if isinstance(layer, tuple) else (str(i), layer)
            if not isinstance(module, Module):
                raise ArgumentError(f"Sequential: layer {name!r} is a {type(module).__name__}, not a Module")
            if name in self._modules:
                raise ArgumentError(f"Sequential: two layers are named {name!r}")
            setattr(self, name, module)

    def forward(self, x):
        layers = list(self._modules.values())
        i = 0
        while i < len(layers):
            if i + 1 < len(layers) and _fuses_with_relu(layers[i], layers[i + 1]):
                x = layers[i].forward_relu(x)  # the layer and its ReLU as one op: the same numbers
                i += 2
            else:
                x = layers[i](x)
                i += 1
        return x

    def __getitem__(self, key):
        if isinstance(key, str):
            return self._modules[key]
        return list(self._modules.values())[key]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


def _fuses_with_relu(layer, following):
    """Whether ``layer`` runs the ReLU ``following`` it as part of its own op: a ``Conv2d`` or
    ``Linear`` (exactly those classes: a subclass may change what forward does) before an
    ``nn.ReLU``. On the GPU that is one kernel launch instead of two (the ReLU in the product's
    epilogue), on the CPU one array instead of two; the outputs and gradients are the same bits.
    ``minicnn trace`` runs the layers one at a time, so it still shows the ReLU on its own."""
    from .layers import Conv2d, Linear, ReLU  # (layers.py imports this module)

    return type(following) is ReLU and type(layer) in (Conv2d, Linear)


class ModuleList(Module):
    """Modules in a list, registered (their parameters are the list's), named "0", "1", ..."""

    def __init__(self, modules=()):
        super().__init__()
        self.extend(modules)

    def append(self, module):
        self.add_module(str(len(self._modules)), module)
        return self

    def extend(self, modules):
        for module in modules:
            self.append(module)
        return self

    def __getitem__(self, index):
        items = list(self._modules.values())
        if isinstance(index, slice):
            return ModuleList(items[index])
        if not -len(items) <= index < len(items):
            raise ArgumentError(f"ModuleList: index {index} is out of range for {len(items)} modules")
        return items[index]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class ModuleDict(Module):
    """Modules by name, registered, in insertion order."""

    def __init__(self, modules=None):
        super().__init__()
        for name, module in (modules or {}).items():
            self[name] = module

    def __setitem__(self, name, module):
        self.add_module(name, module)

    def __getitem__(self, name):
        if name not in self._modules:
            raise ArgumentError(f"ModuleDict: no module named {name!r}; it has {list(self._modules)}")
        return self._modules[name]

    def __contains__(self, name):
        return name in self._modules

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()
