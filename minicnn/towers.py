"""The 2012 paper's two GPUs as two processes: AlexNet split into its two towers over MPI.

    mpiexec -n 2 python my_script.py          # in it: towers = Towers(alexnet2012(...), world())

The paper trained AlexNet on two GPUs, each holding one *tower*: half the kernels of every
convolution and half the neurons of every fully connected layer. ``groups=2`` already draws those
halves in one process; ``Towers`` runs them on two ranks, rank t holding the t-th half of every
layer's outputs (and of its weights), computing it from what it holds, and exchanging activations
only where the network connects the halves:

    conv1           both ranks see the image; each computes its 48 of the 96 maps
    relu, pool      each on its own maps
    lrn1, lrn2      each on its own maps, with the 2 neighbouring maps of the other tower (the
                    window of 5 crosses the boundary): those edge maps are exchanged, and in the
                    backward the gradients of the edge maps go back to their owner
    conv2, 4, 5     groups=2: each tower's half reads only its own half of the maps
    conv3           reads all 256 maps: the halves are gathered (the paper's crossing)
    fc6, fc7, fc8   read all features: gathered; each rank computes half of the neurons
    dropout         each rank masks its half of the neurons as one process masks them
    logits          gathered on both ranks, which both compute the same loss

An exchange is an autograd op: ``gather`` hands both ranks the full activation in the forward; in the
backward each rank's gradient of the full activation is its own consumers' part only, so the two are
summed and each rank keeps the gradient of its own half (a reduce-scatter). The final gather of the
logits is the exception: both ranks compute the same loss from it, so each keeps its half of its own
gradient, summed with nothing. The result equals the one-process network: outputs, loss and every
parameter's gradient (tests/test_towers.py, float64 to 1e-12, float32 to 1e-5), only the order of a
few additions differing. ``bytes`` counts what each layer sent, forward and backward.
"""
from __future__ import annotations

import numpy as np

from .autograd import Function
from .errors import ArgumentError
from .kernels import backends
from .nn import Conv2d, Dropout, Flatten, Linear, LocalResponseNorm, MaxPool2d, Module, ReLU, Sigmoid, Tanh
from .nn import init as _init
from .tensor import Tensor, cat


class _Gather(Function):
    """Forward: the ranks' halves joined along ``axis`` in rank order. Backward: the gradient of this
    rank's half, summed over the ranks (``replicated=False``: each rank's consumers used the whole
    differently) or this rank's own (``replicated=True``: both ranks computed the same thing)."""

    @staticmethod
    def forward(ctx, x, group, axis, replicated, log):
        parts = group.allgather(x)
        log[0] += x.nbytes
        ctx.save_for_backward(group, axis, replicated, x.shape[axis], log)
        return np.concatenate(list(parts), axis=axis)

    @staticmethod
    def backward(ctx, grad):
        group, axis, replicated, width, log = ctx.saved
        if replicated:
            own = [slice(None)] * grad.ndim
            own[axis] = slice(group.rank * width, (group.rank + 1) * width)
            return np.ascontiguousarray(grad[tuple(own)]), None, None, None, None
        parts = np.stack(np.split(grad, group.size, axis=axis))
        summed = group.reduce_scatter(parts)
        log[1] += parts.nbytes - summed.nbytes
        return summed, None, None, None, None


class _EdgeLRN(Function):
    """LRN of this tower's maps, with the ``size // 2`` edge maps of the other tower on the side
    they touch (rank 0's maps come first). Backward: the gradients that fall on the borrowed maps go
    back to the other tower and are added to its own."""

    @staticmethod
    def forward(ctx, x, size, alpha, beta, k, group, kernels, log):
        edge = size // 2
        first = group.rank == 0
        mine = x[:, -edge:] if first else x[:, :edge]  # what the other tower borrows
        borrowed = group.exchange(mine, 1 - group.rank)
        log[0] += mine.nbytes
        extended = np.ascontiguousarray(np.concatenate([x, borrowed] if first else [borrowed, x], axis=1))
        y, saved = kernels.lrn.lrn_forward(extended, size, alpha, beta, k)
        own = slice(0, x.shape[1]) if first else slice(edge, edge + x.shape[1])
        ctx.save_for_backward(extended, saved, size, alpha, beta, k, group, kernels, own, log)
        return np.ascontiguousarray(y[:, own])

    @staticmethod
    def backward(ctx, grad_y):
        extended, saved, size, alpha, beta, k, group, kernels, own, log = ctx.saved
        edge = size // 2
        first = group.rank == 0
        grad_extended_y = np.zeros(extended.shape, dtype=grad_y.dtype)
        grad_extended_y[:, own] = grad_y  # the borrowed maps' outputs belong to the other tower
        grad = kernels.lrn.lrn_backward(extended, saved, grad_extended_y, size, alpha, beta, k)
        borrowed = slice(-edge, None) if first else slice(0, edge)
        returned = group.exchange(grad[:, borrowed], 1 - group.rank)
        log[1] += grad[:, borrowed].nbytes
        grad_x = np.array(grad[:, own])
        if first:
            grad_x[:, -edge:] += returned
        else:
            grad_x[:, :edge] += returned
        return grad_x, None, None, None, None, None, None, None


class Towers(Module):
    """``net`` (alexnet2012 or alexnet2012_caffe, or any Sequential of the same kinds of layers)
    split into two towers over ``group`` (two ranks); this rank holds tower ``group.rank``. The
    weights are copied from ``net``'s halves; ``state_dict`` puts the halves back together (a
    one-process network's keys and shapes), ``load_state_dict`` takes them from a whole network's."""

    def __init__(self, net, group):
        super().__init__()
        if group.size != 2:
            raise ArgumentError(f"Towers: the paper's network has two towers; run it on 2 processes, got {group.size}")
        object.__setattr__(self, "group", group)
        object.__setattr__(self, "input_size", getattr(net, "input_size", None))
        object.__setattr__(self, "weight_decay", getattr(net, "weight_decay", 0.0))
        object.__setattr__(self, "whole_parameters", sum(p.size for p in net.parameters()))
        object.__setattr__(self, "steps", [])  # (name, what, callable) in order
        object.__setattr__(self, "bytes", {})  # layer -> [forward bytes, backward bytes] this rank sent
        self.halves = {}  # parameter name in net -> (axis 0 slice of the full parameter)
        t = group.rank
        state = "full"  # the activation: "full" (the same on both ranks) or "half" (each rank its half)
        with _init.no_default_init():
            for name, layer in net.named_children():
                if isinstance(layer, Conv2d):
                    state = self._conv(name, layer, state, t)
                elif isinstance(layer, Linear):
                    state = self._linear(name, layer, state, t)
                elif isinstance(layer, LocalResponseNorm):
                    self._lrn(name, layer, state)
                elif isinstance(layer, Dropout):
                    self._dropout(name, layer, state, t)
                elif isinstance(layer, (ReLU, Tanh, Sigmoid, MaxPool2d, Flatten)):
                    self.add_module(name, layer)
                    self.steps.append((name, "own", layer))
                else:
                    raise ArgumentError(f"Towers: no tower form for layer {name} ({type(layer).__name__})")
        if state == "half":
            self._gather("logits", replicated=True)

    # -- building --------------------------------------------------------------------------------
    def _gather(self, name, replicated=False):
        log = self.bytes.setdefault(name, [0, 0])

        def gather(x):
            return _Gather.apply(x, self.group, 1, replicated, log)

        self.steps.append((name, "gathered", gather))

    def _own_rows(self, name, layer, local, t):
        """Copy rows t*half .. of ``layer``'s weight and bias into ``local``."""
        half = layer.weight.shape[0] // 2
        rows = slice(t * half, (t + 1) * half)
        local.weight.data[...] = layer.weight.data[rows]
        self.halves[f"{name}.weight"] = rows
        if layer.bias is not None:
            local.bias.data[...] = layer.bias.data[rows]
            self.halves[f"{name}.bias"] = rows

    def _conv(self, name, layer, state, t):
        if layer.out_channels % 2:
            raise ArgumentError(f"Towers: {name} has {layer.out_channels} output channels, which do not split in two")
        dtype = layer.weight.dtype
        if layer.groups == 2:
            if state != "half":
                raise ArgumentError(f"Towers: {name} has groups=2 but its input is not split between the towers")
            local = Conv2d(layer.in_channels // 2, layer.out_channels // 2, layer.kernel_size, layer.stride,
                           layer.padding, bias=layer.bias is not None, dtype=dtype)
        elif layer.groups == 1:
            if state == "half":
                self._gather(name)
            local = Conv2d(layer.in_channels, layer.out_channels // 2, layer.kernel_size, layer.stride, layer.padding,
                           bias=layer.bias is not None, dtype=dtype)
        else:
            raise ArgumentError(f"Towers: {name} has groups={layer.groups}; the towers split groups=1 or 2")
        self._own_rows(name, layer, local, t)
        self.add_module(name, local)
        self.steps.append((name, "own", local))
        return "half"

    def _linear(self, name, layer, state, t):
        if layer.out_features % 2:
            raise ArgumentError(f"Towers: {name} has {layer.out_features} outputs, which do not split in two")
        if state == "half":
            self._gather(name)
        local = Linear(layer.in_features, layer.out_features // 2, bias=layer.bias is not None,
                       dtype=layer.weight.dtype)
        self._own_rows(name, layer, local, t)
        self.add_module(name, local)
        self.steps.append((name, "own", local))
        return "half"

    def _lrn(self, name, layer, state):
        self.add_module(name, layer)
        if state != "half":
            self.steps.append((name, "own", layer))
            return
        log = self.bytes.setdefault(name, [0, 0])

        def lrn(x):
            kernels = backends.for_device(x.device)
            return _EdgeLRN.apply(x, layer.size, layer.alpha, layer.beta, layer.k, self.group, kernels, log)

        self.steps.append((name, "edges exchanged", lrn))

    def _dropout(self, name, layer, state, t):
        self.add_module(name, layer)
        if state != "half":
            self.steps.append((name, "own", layer))
            return

        def dropout(x):  # the mask of this half of the whole layer's: masked at full width, then sliced
            if not layer.training or layer.p == 0:
                return x
            zeros = Tensor(np.zeros(x.shape, dtype=x.dtype))
            full = layer(cat([x, zeros] if t == 0 else [zeros, x], dim=1))
            width = x.shape[1]
            return full[:, t * width:(t + 1) * width]

        self.steps.append((name, "own", dropout))

    # -- running ---------------------------------------------------------------------------------
    def forward(self, x):
        for _, _, step in self.steps:
            x = step(x)
        return x

    def layers(self):
        """(name, what each rank does there) in order: "own", "gathered" or "edges exchanged"."""
        return [(name, what) for name, what, _ in self.steps]

    def whole(self, name, half):
        """The whole network's array for parameter ``name`` (a weight, its gradient, an optimiser's
        buffer for it) from this rank's ``half`` and the other rank's (a collective call)."""
        parts = self.group.allgather(half, f"gathering {name}")
        return np.concatenate(list(parts), axis=0) if name in self.halves else parts[0]

    def own(self, name, whole):
        """This rank's half of the whole network's array for parameter ``name``."""
        return np.array(whole[self.halves[name]] if name in self.halves else whole)

    def state_dict(self):
        """The whole network's parameters (the keys and shapes of the one-process network's), this
        tower's halves and the other's put together: a collective call, both ranks must make it."""
        return {name: self.whole(name, p.data) for name, p in self.named_parameters()}

    def load_state_dict(self, state, strict=True):
        """Take this tower's halves of a whole network's parameters (a one-process checkpoint's)."""
        mine = {name: self.own(name, np.asarray(value)) for name, value in state.items()}
        return super().load_state_dict(mine, strict)

    def full_grads(self):
        """The whole network's parameter gradients, the halves put together (collective)."""
        return {name: self.whole(name, p.grad if p.grad is not None else np.zeros_like(p.data))
                for name, p in self.named_parameters()}

    def num_parameters(self):
        """The whole network's count (each rank holds half of it)."""
        return self.whole_parameters

