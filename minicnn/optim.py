"""Optimisers. ``SGD`` with momentum and weight decay, as the 2012 paper trains
(lr 0.01, momentum 0.9, weight decay 0.0005), used as in PyTorch::

    opt = mc.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    opt.zero_grad(); loss.backward(); opt.step()

The update is one fused kernel per parameter (``kernels/*/sgd.py``) on the
parameter's own device: parameters on the GPU are updated there.
"""
from __future__ import annotations

import numbers

import numpy as np

from . import device as _device
from .errors import ArgumentError, ShapeError
from .kernels.cpu import sgd as _cpu_sgd


def _number(name, value, low, low_inclusive=True):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or np.isnan(value):
        raise ArgumentError(f"SGD: {name} must be a number, got {value!r}")
    if value < low or (value == low and not low_inclusive):
        raise ArgumentError(f"SGD: {name} must be {'>=' if low_inclusive else '>'} {low}, got {value}")
    return float(value)


class SGD:
    """Stochastic gradient descent: d = g + weight_decay * p; v = momentum * v + d; p -= lr * v."""

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0):
        self.params = list(params)
        if not self.params:
            raise ArgumentError("SGD: got an empty list of parameters")
        self.lr = _number("lr", lr, 0.0, low_inclusive=False)
        self.momentum = _number("momentum", momentum, 0.0)
        self.weight_decay = _number("weight_decay", weight_decay, 0.0)
        self.velocities = [None] * len(self.params)

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self):
        """One update of every parameter that has a gradient."""
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            if self.velocities[i] is None:
                self.velocities[i] = _device.full(p.shape, 0, p.dtype, p.device)
            kernels = _cpu_sgd if p.device == "cpu" else _device.cuda_kernels()["sgd"]
            kernels.sgd_step(p.data, p.grad, self.velocities[i], self.lr, self.momentum, self.weight_decay)

    def state_dict(self):
        """Settings and velocities (as NumPy arrays; None before a parameter's first step)."""
        return {"lr": self.lr, "momentum": self.momentum, "weight_decay": self.weight_decay,
                "velocities": [None if v is None else np.array(_device.move(v, "cpu"), copy=True)
                               for v in self.velocities]}

    def load_state_dict(self, state):
        missing = {"lr", "momentum", "weight_decay", "velocities"} - set(state)
        if missing:
            raise ArgumentError(f"SGD.load_state_dict: missing entries {sorted(missing)}")
        if len(state["velocities"]) != len(self.params):
            raise ShapeError(f"SGD.load_state_dict: {len(state['velocities'])} velocities for "
                             f"{len(self.params)} parameters")
        for p, v in zip(self.params, state["velocities"]):
            if v is not None and np.shape(v) != p.shape:
                raise ShapeError(f"SGD.load_state_dict: a velocity of shape {np.shape(v)} for a parameter of shape {p.shape}")
        self.lr = _number("lr", state["lr"], 0.0, low_inclusive=False)
        self.momentum = _number("momentum", state["momentum"], 0.0)
        self.weight_decay = _number("weight_decay", state["weight_decay"], 0.0)
        self.velocities = [None if v is None else _device.move(np.array(v, dtype=p.dtype), p.device)
                           for p, v in zip(self.params, state["velocities"])]
