"""Optimisers and learning-rate schedules, used as in PyTorch::

    opt = mc.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    schedule = mc.optim.ReduceLROnPlateau(opt)        # the paper: divide by 10 on a plateau
    for epoch in ...:
        for batch in ...:
            opt.zero_grad(); loss.backward(); opt.step()
        schedule.step(validation_error)

Each update is one fused pass per parameter (``kernels/*/sgd.py``, ``kernels/*/adam.py``) on the
parameter's own device: parameters on the GPU are updated there (SGD's in one launch per group).
"""
from __future__ import annotations

import numbers

import numpy as np

from . import checks
from . import device as _device
from .errors import ArgumentError, ShapeError
from .kernels import backends


class Optimizer:
    """Parameters, their per-parameter state (velocities, moments) and hyper-parameters.

    ``params`` is a list of parameters, or, as in PyTorch, a list of groups, dicts with "params"
    and the hyper-parameters that differ for them (``[{"params": convs}, {"params": fcs, "lr":
    0.001}]``). ``param_groups`` holds each group's live values: schedules change each group's
    "lr", and user code may set ``param_groups[i]["lr"]`` itself."""

    state_names = ()  # the per-parameter arrays a subclass keeps
    group_keys = ("lr",)  # the hyper-parameters a group may set for itself

    def __init__(self, params, hyper):
        owner = type(self).__name__
        items = list(params)
        groups = items if items and all(isinstance(g, dict) for g in items) else [{"params": items}]
        self.hyper = hyper  # the defaults, and what belongs to the whole optimiser (Adam's step count)
        self.param_groups, self.params, self._group_of = [], [], []
        for index, group in enumerate(groups):
            if not isinstance(group, dict) or "params" not in group:
                raise ArgumentError(f"{owner}: a parameter group is a dict with 'params', got {group!r}")
            unknown = sorted(set(group) - {"params"} - set(self.group_keys))
            if unknown:
                raise ArgumentError(f"{owner}: group {index} sets {unknown}; a group may set {list(self.group_keys)}")
            members = list(group["params"])
            live = {k: v for k, v in hyper.items() if k in self.group_keys}
            live.update({k: self._checked(k, v) for k, v in group.items() if k != "params"})
            self.param_groups.append({"params": members, **live})
            self.params += members
            self._group_of += [index] * len(members)
        if not self.params:
            raise ArgumentError(f"{owner}: got an empty list of parameters")
        self.state = [{} for _ in self.params]

    def _checked(self, key, value):
        low_inclusive = key not in ("lr", "eps")
        high = 1.0 if key == "momentum" else np.inf
        return checks.number(type(self).__name__, key, value, 0.0, high, low_inclusive=low_inclusive)

    def _hyper_of(self, i):
        """Parameter i's hyper-parameters: its group's, over the defaults."""
        group = self.param_groups[self._group_of[i]]
        return {**self.hyper, **{k: v for k, v in group.items() if k != "params"}}

    @property
    def lr(self):
        """The first group's learning rate; setting it sets every group's (one group is usual)."""
        return self.param_groups[0]["lr"]

    @lr.setter
    def lr(self, value):
        value = self._checked("lr", value)
        self.hyper["lr"] = value
        for group in self.param_groups:
            group["lr"] = value

    def zero_grad(self, set_to_none=True):
        """Forget the gradients (``set_to_none=False``: zero arrays instead of None, as PyTorch)."""
        for p in self.params:
            p.grad = None if set_to_none or p.grad is None else _device.full(p.shape, 0, p.dtype, p.device)

    def _arrays(self, i, p):
        """This parameter's state arrays, created as zeros on its device at its first step."""
        if not self.state[i]:
            self.state[i] = {name: _device.full(p.shape, 0, p.dtype, p.device) for name in self.state_names}
        return self.state[i]

    def _with_gradients(self):
        """[(i, p)] for each parameter that has a gradient, every gradient checked against its
        parameter before any update (so a bad one leaves all parameters as they were): the update
        kernels trust the shapes, and a smaller gradient would have them read past its end (a
        crash, or garbage weights)."""
        owner = f"{type(self).__name__}.step"
        stepped = [(i, p) for i, p in enumerate(self.params) if p.grad is not None]
        for i, p in stepped:
            g = p.grad
            where = _device.device_of(g)
            if where != p.device:
                raise ArgumentError(f"{owner}: parameter {i} is on {p.device} but its gradient is on {where}")
            if tuple(g.shape) != tuple(p.shape) or g.dtype != p.dtype:
                raise ShapeError(f"{owner}: parameter {i} is {p.dtype} of shape {tuple(p.shape)} but its gradient "
                                 f"is {g.dtype} of shape {tuple(g.shape)}")
        return stepped

    @staticmethod
    def _kernels(p):
        """The kernels for the parameter's device (kernels/backends.py)."""
        return backends.for_device(p.device)

    def state_dict(self):
        """Hyper-parameters (the first group's live values over the defaults), each group's, and
        per-parameter state as NumPy arrays (empty before a parameter's first step)."""
        groups = [{k: v for k, v in g.items() if k != "params"} for g in self.param_groups]
        return {"hyper": {**self.hyper, **groups[0]}, "groups": groups,
                "state": [{k: np.array(_device.move(a, "cpu"), copy=True) for k, a in s.items()} for s in self.state]}

    def load_state_dict(self, state):
        """Restore what ``state_dict`` gave; a state without "groups" (a checkpoint from before
        parameter groups) gives every group its "hyper"."""
        owner = f"{type(self).__name__}.load_state_dict"
        if set(state) - {"groups"} != {"hyper", "state"}:
            raise ArgumentError(f"{owner}: expected entries ['hyper', 'state'] (and 'groups'), got {sorted(state)}")
        groups = state.get("groups") or [{k: v for k, v in state["hyper"].items() if k in self.group_keys}
                                         for _ in self.param_groups]
        if len(groups) != len(self.param_groups):
            raise ShapeError(f"{owner}: state for {len(groups)} parameter groups, this optimiser has "
                             f"{len(self.param_groups)}")
        if set(state["hyper"]) != set(self.hyper):
            raise ArgumentError(f"{owner}: hyper-parameters {sorted(state['hyper'])}, expected {sorted(self.hyper)}")
        if len(state["state"]) != len(self.params):
            raise ShapeError(f"{owner}: state for {len(state['state'])} parameters, this optimiser has {len(self.params)}")
        for p, s in zip(self.params, state["state"]):
            if s and set(s) != set(self.state_names):
                raise ArgumentError(f"{owner}: per-parameter state {sorted(s)}, expected {sorted(self.state_names)}")
            for a in s.values():
                if np.shape(a) != p.shape:
                    raise ShapeError(f"{owner}: state of shape {np.shape(a)} for a parameter of shape {p.shape}")
        self.hyper = dict(state["hyper"])
        for group, values in zip(self.param_groups, groups):
            group.update({k: v for k, v in values.items() if k in self.group_keys})
        self.state = [{k: _device.move(np.array(a, dtype=p.dtype), p.device) for k, a in s.items()}
                      for p, s in zip(self.params, state["state"])]


class SGD(Optimizer):
    """d = g + weight_decay * p;  v = momentum * v + d;  p -= lr * v   (PyTorch's rule)."""

    state_names = ("velocity",)
    group_keys = ("lr", "momentum", "weight_decay")

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0):
        super().__init__(params, {"lr": checks.number("SGD", "lr", lr, 0.0, low_inclusive=False),
                                  "momentum": checks.number("SGD", "momentum", momentum, 0.0, 1.0),
                                  "weight_decay": checks.number("SGD", "weight_decay", weight_decay, 0.0)})

    def step(self):
        """One update of every parameter that has a gradient: one kernel call per parameter group and
        device (``sgd_group_step``: on the GPU, one launch for the group's parameters)."""
        batches = {}
        for i, p in self._with_gradients():
            batches.setdefault((self._group_of[i], p.device), []).append((i, p))
        for members in batches.values():
            h = self._hyper_of(members[0][0])
            self._kernels(members[0][1]).sgd.sgd_group_step(
                [p.data for _, p in members], [p.grad for _, p in members],
                [self._arrays(i, p)["velocity"] for i, p in members], h["lr"], h["momentum"], h["weight_decay"])


class Adam(Optimizer):
    """Adam with bias-corrected moments and L2 weight decay, as ``torch.optim.Adam``."""

    state_names = ("m", "v")
    group_keys = ("lr", "eps", "weight_decay")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ArgumentError(f"Adam: betas must be a pair, got {betas!r}")
        super().__init__(params, {
            "lr": checks.number("Adam", "lr", lr, 0.0, low_inclusive=False),
            "beta1": checks.number("Adam", "betas[0]", betas[0], 0.0, 1.0, high_inclusive=False),
            "beta2": checks.number("Adam", "betas[1]", betas[1], 0.0, 1.0, high_inclusive=False),
            "eps": checks.number("Adam", "eps", eps, 0.0, low_inclusive=False),
            "weight_decay": checks.number("Adam", "weight_decay", weight_decay, 0.0),
            "steps": 0,
        })

    def step(self):
        self.hyper["steps"] += 1
        for i, p in self._with_gradients():
            h = self._hyper_of(i)
            c1, c2 = 1 - h["beta1"] ** h["steps"], 1 - h["beta2"] ** h["steps"]
            s = self._arrays(i, p)
            self._kernels(p).adam.adam_step(p.data, p.grad, s["m"], s["v"], h["lr"], h["beta1"],
                                                          h["beta2"], h["eps"], h["weight_decay"], c1, c2)


class StepLR:
    """Multiply the learning rate by ``gamma`` every ``step_size`` calls of ``step()`` (epochs)."""

    def __init__(self, optimizer, step_size, gamma=0.1):
        if isinstance(step_size, bool) or not isinstance(step_size, numbers.Integral) or step_size < 1:
            raise ArgumentError(f"StepLR: step_size must be a positive integer, got {step_size!r}")
        self.optimizer = optimizer
        self.step_size = int(step_size)
        self.gamma = checks.number("StepLR", "gamma", gamma, 0.0, 1.0, low_inclusive=False)
        self.epoch = 0

    def step(self):
        """Every ``step_size``-th call multiplies each group's current rate by ``gamma`` (as
        PyTorch's, so a rate the user set in between is scaled, not overwritten)."""
        self.epoch += 1
        if self.epoch % self.step_size == 0:
            for group in self.optimizer.param_groups:
                group["lr"] *= self.gamma

    def state_dict(self):
        return {"step_size": self.step_size, "gamma": self.gamma, "epoch": self.epoch}

    def load_state_dict(self, state):
        """(A checkpoint from before the schedule became chainable also holds "base_lr", unused: the
        optimiser's state holds the current rates.)"""
        self.step_size, self.gamma, self.epoch = (state[k] for k in ("step_size", "gamma", "epoch"))


class ReduceLROnPlateau:
    """The paper's schedule: divide the learning rate by 10 (``factor``) when the validation
    error (``mode="min"``) has not improved by more than ``threshold`` (relative) for
    ``patience`` epochs; never below ``min_lr``. ``step(metric)`` once per epoch."""

    def __init__(self, optimizer, mode="min", factor=0.1, patience=2, threshold=1e-4, min_lr=0.0):
        if mode not in ("min", "max"):
            raise ArgumentError(f"ReduceLROnPlateau: mode must be 'min' or 'max', got {mode!r}")
        if isinstance(patience, bool) or not isinstance(patience, numbers.Integral) or patience < 0:
            raise ArgumentError(f"ReduceLROnPlateau: patience must be an integer >= 0, got {patience!r}")
        self.optimizer = optimizer
        self.mode = mode
        self.factor = checks.number("ReduceLROnPlateau", "factor", factor, 0.0, 1.0, False, False)
        self.patience = int(patience)
        self.threshold = checks.number("ReduceLROnPlateau", "threshold", threshold, 0.0)
        self.min_lr = checks.number("ReduceLROnPlateau", "min_lr", min_lr, 0.0)
        self.best = None
        self.bad_epochs = 0

    def _improved(self, metric):
        if self.best is None:
            return True
        if self.mode == "min":
            return metric < self.best * (1 - self.threshold)
        return metric > self.best * (1 + self.threshold)

    def step(self, metric):
        metric = checks.number("ReduceLROnPlateau", "metric", metric, -np.inf)
        if self._improved(metric):
            self.best, self.bad_epochs = metric, 0
            return
        self.bad_epochs += 1
        if self.bad_epochs > self.patience:
            for group in self.optimizer.param_groups:
                group["lr"] = max(group["lr"] * self.factor, self.min_lr)
            self.bad_epochs = 0

    def state_dict(self):
        return {"best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state):
        self.best, self.bad_epochs = state["best"], state["bad_epochs"]


class _ClosedForm:
    """A schedule whose rate is base_lr x factor(epoch), for each group; ``step()`` once per epoch.
    The factor at epoch 0 applies from construction on, as PyTorch's schedules do."""

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self.epoch = 0
        self._apply()

    def _apply(self):
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = self.rate(base, self.epoch)

    def step(self):
        self.epoch += 1
        self._apply()

    def state_dict(self):
        return {"base_lrs": list(self.base_lrs), "epoch": self.epoch}

    def load_state_dict(self, state):
        self.base_lrs, self.epoch = list(state["base_lrs"]), state["epoch"]


class CosineAnnealingLR(_ClosedForm):
    """lr(t) = eta_min + (base_lr - eta_min) (1 + cos(pi t / T_max)) / 2: from the base rate down
    to ``eta_min`` over ``T_max`` epochs along half a cosine (and back up after, as PyTorch's)."""

    def __init__(self, optimizer, T_max, eta_min=0.0):  # noqa: N803 (PyTorch's argument name)
        if isinstance(T_max, bool) or not isinstance(T_max, numbers.Integral) or T_max < 1:
            raise ArgumentError(f"CosineAnnealingLR: T_max must be a positive integer, got {T_max!r}")
        self.T_max, self.eta_min = int(T_max), checks.number("CosineAnnealingLR", "eta_min", eta_min, 0.0)
        super().__init__(optimizer)

    def rate(self, base, t):
        return self.eta_min + (base - self.eta_min) * (1 + np.cos(np.pi * t / self.T_max)) / 2


class LinearLR(_ClosedForm):
    """A linear ramp of the rate's factor from ``start_factor`` to ``end_factor`` over
    ``total_iters`` steps, then constant: the usual warm-up (``LinearLR(opt, 0.1, 1.0, 5)``)."""

    def __init__(self, optimizer, start_factor=1 / 3, end_factor=1.0, total_iters=5):
        self.start = checks.number("LinearLR", "start_factor", start_factor, 0.0, 1.0, low_inclusive=False)
        self.end = checks.number("LinearLR", "end_factor", end_factor, 0.0, 1.0)
        if isinstance(total_iters, bool) or not isinstance(total_iters, numbers.Integral) or total_iters < 1:
            raise ArgumentError(f"LinearLR: total_iters must be a positive integer, got {total_iters!r}")
        self.total = int(total_iters)
        super().__init__(optimizer)

    def rate(self, base, t):
        return base * (self.start + (self.end - self.start) * min(t, self.total) / self.total)


class lr_scheduler:  # noqa: N801  (a namespace with PyTorch's name: mc.optim.lr_scheduler.StepLR)
    """The schedules where a PyTorch user looks for them."""

    StepLR = StepLR
    ReduceLROnPlateau = ReduceLROnPlateau
    CosineAnnealingLR = CosineAnnealingLR
    LinearLR = LinearLR
