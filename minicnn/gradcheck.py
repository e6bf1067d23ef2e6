"""``gradcheck``: compare autograd's gradients with central finite differences.

For a function ``f`` of some tensors, gradcheck draws a fixed random tensor R of
the output's shape and checks the gradient of the scalar

    L(inputs) = sum(f(inputs) * R)

A random projection, not a plain sum: for softmax (each row sums to 1) and for
batch norm (the normalised outputs of a channel sum to 0) ``sum(f)`` is a
constant, its gradient is zero, and a wrong backward would pass unnoticed.

For each input or parameter that requires grad, each checked coordinate i gets

    numeric[i]  = (L(x + eps e_i) - L(x - eps e_i)) / (2 eps)
    analytic[i] = dL/dx[i] from backward

and passes when |analytic - numeric| <= atol + rtol * |numeric|. Tensors with at
most ``max_coords`` elements are checked in every coordinate; larger ones in a
seeded random sample of ``max_coords``. Backward runs twice and the two results
must be identical bit for bit (a backward that depends on hidden state, a race
or accumulated garbage fails here).

Tolerances. Everything runs in float64 (gradcheck refuses float32: its rounding,
~1e-7 relative, divided by eps would swamp the comparison). With eps = 1e-6 the
central difference's truncation error is O(eps^2 * f''') ~ 1e-12, and rounding
adds ~1e-16 * |L| / eps ~ 1e-10 * |L|. The defaults atol = 1e-6, rtol = 1e-4 are
one hundred to ten thousand times those errors, yet a wrong backward (a missing
term, a wrong index, a factor of 2) is off by far more. Inputs must stay away
from kinks (ReLU at 0, max-pool ties) by more than eps, or the difference
straddles two branches: the tests draw their inputs that way.
"""
from __future__ import annotations

import numpy as np

from . import device as _device
from .autograd import no_grad
from .errors import DTypeError
from .tensor import Tensor


class GradcheckError(AssertionError):
    """Raised by gradcheck when analytic and numeric gradients disagree."""


class GradcheckResult:
    """What gradcheck found: ``ok``, the worst coordinate, and a readable ``report()``."""

    def __init__(self, ok, worst, checked, message=""):
        self.ok = ok
        self.worst = worst  # dict: tensor, index, analytic, numeric, rel_error (or None)
        self.checked = checked  # number of coordinates compared
        self.message = message

    def __bool__(self):
        return self.ok

    def report(self):
        if self.message:
            return self.message
        if self.worst is None:
            return "gradcheck: nothing to check (no input requires grad)"
        w = self.worst
        return (
            f"gradcheck {'passed' if self.ok else 'FAILED'} over {self.checked} coordinates; worst: "
            f"{w['tensor']}{list(w['index'])} analytic {w['analytic']:.8g} numeric {w['numeric']:.8g} "
            f"relative error {w['rel_error']:.3g}"
        )

    def __repr__(self):
        return self.report()


def _coordinate_setter(tensor, host):
    """A function that sets one coordinate of ``tensor``: in place on the CPU; on the GPU in the host
    copy ``host``, which then goes back to the device for the next evaluation."""
    flat = host.reshape(-1)

    def set_value(i, value):
        flat[i] = value
        if tensor.device != "cpu":
            tensor.data = _device.move(host, tensor.device)

    return set_value


def central_difference(objective, set_value, original, eps):
    """(L(x + eps e_i) - L(x - eps e_i)) / (2 eps): ``set_value(v)`` sets coordinate i of x to v,
    ``objective()`` evaluates L; coordinate i is left at ``original``. (``gradcheck`` and the
    trace's spot checks both take their numbers from here.)"""
    set_value(original + eps)
    plus = objective()
    set_value(original - eps)
    minus = objective()
    set_value(original)
    return (plus - minus) / (2 * eps)


def relative_error(analytic, numeric):
    return abs(analytic - numeric) / max(abs(analytic), abs(numeric), 1e-300)


def _as_outputs(out):
    outs = out if isinstance(out, (tuple, list)) else (out,)
    if not all(isinstance(o, Tensor) for o in outs):
        raise DTypeError("gradcheck: the function must return a Tensor or a tuple of Tensors")
    return outs


def gradcheck(fn, inputs, params=(), *, eps=1e-6, atol=1e-6, rtol=1e-4, max_coords=64, seed=0,
              raise_exception=True):
    """Check ``fn(*inputs)``'s gradients against central finite differences.

    ``inputs``: the tensors passed to ``fn`` (those with ``requires_grad`` are checked).
    ``params``: more tensors ``fn`` uses (a module's parameters), checked too;
    names may be given as ``(name, tensor)`` pairs. Returns a ``GradcheckResult``;
    raises ``GradcheckError`` with the worst coordinate on failure unless
    ``raise_exception=False``.
    """
    inputs = tuple(inputs)
    named = [(f"input{i}", t) for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    for i, p in enumerate(params):
        name, t = p if isinstance(p, tuple) else (f"param{i}", p)
        if t.requires_grad:
            named.append((name, t))
    for name, t in named:
        if t.dtype != np.float64:
            raise DTypeError(f"gradcheck: {name} is {t.dtype}; finite differences need float64 tensors")
    if not named:
        return GradcheckResult(True, None, 0)

    rng = np.random.default_rng(seed)
    outputs = _as_outputs(fn(*inputs))
    projections = [rng.standard_normal(o.shape) for o in outputs]

    def objective():
        with no_grad():
            outs = _as_outputs(fn(*inputs))
        return sum(float(np.sum(o.numpy() * r)) for o, r in zip(outs, projections))

    def analytic():
        for _, t in named:
            t.grad = None
        for o, r in zip(_as_outputs(fn(*inputs)), projections):
            if o.requires_grad:  # d/dx sum(o * r) is o's backward with r as its gradient
                o.backward(_device.move(r.astype(o.dtype), o.device))
        return [np.zeros(t.shape, t.dtype) if t.grad is None else np.array(_device.move(t.grad, "cpu"))
                for _, t in named]

    first, second = analytic(), analytic()
    for (name, _), g1, g2 in zip(named, first, second):
        if not np.array_equal(g1, g2):
            diff = np.abs(g1 - g2).max()
            result = GradcheckResult(False, None, 0, f"gradcheck FAILED: two backward passes gave different "
                                                     f"gradients for {name} (max difference {diff:.3g})")
            if raise_exception:
                raise GradcheckError(result.report())
            return result

    worst, worst_score, checked, ok = None, -np.inf, 0, True
    for (name, t), grad in zip(named, first):
        host = t.numpy().copy() if t.device != "cpu" else t.data
        flat = host.reshape(-1)
        set_value = _coordinate_setter(t, host)
        if flat.size <= max_coords:
            coords = np.arange(flat.size)
        else:
            coords = np.sort(rng.choice(flat.size, size=max_coords, replace=False))
        for i in coords:
            numeric = central_difference(objective, lambda value: set_value(i, value), flat[i], eps)
            a = float(grad.reshape(-1)[i])
            error = abs(a - numeric)
            passed = error <= atol + rtol * abs(numeric)
            ok &= passed
            score = error / (atol + rtol * abs(numeric))
            checked += 1
            if score > worst_score:
                worst_score = score
                worst = {"tensor": name, "index": tuple(int(j) for j in np.unravel_index(i, t.shape)), "analytic": a,
                         "numeric": numeric, "rel_error": relative_error(a, numeric)}
    result = GradcheckResult(bool(ok), worst, checked)
    if not ok and raise_exception:
        raise GradcheckError(result.report())
    return result
