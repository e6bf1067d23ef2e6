"""Step through a network's forward and backward pass, layer by layer, on real numbers.

The forward runs one layer at a time. Each layer gets its input as a fresh leaf
tensor, so afterwards each layer's backward can be run, timed and inspected on
its own, in reverse order: ``out.backward(grad_out)`` gives the gradient that
leaves the layer towards its input and the gradients of its parameters. Chained
from the loss back to the image, that is exactly the backward of the whole
network (the chain rule, one link at a time).

For every layer the trace shows: the op and its settings, input and output
shape with the size arithmetic, parameters, multiply-accumulates, time,
activation statistics (and the fraction of zeros after a ReLU); then in the
backward: gradient norms in and out, parameter gradient norms, time, and a
finite-difference spot check of a few coordinates, in float64, with their
relative error. ``step=True`` pauses after each layer and works one example of
the layer's arithmetic on the actual numbers.
"""
from __future__ import annotations

import copy
import io
import json
import math
import sys
import time

import numpy as np

from .. import functional as F
from .. import models
from ..autograd import no_grad
from ..data.folders import load_image
from ..errors import ArgumentError
from ..gradcheck import central_difference, relative_error
from ..kernels.backends import SLOW_NOTE, use_backend
from ..kernels.reference.dropout import keep_mask
from ..nn import (BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Flatten, Linear, LocalResponseNorm, MaxPool2d, ReLU)
from .summary import layer_plan
from ..tensor import Tensor

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)


# ---- input -----------------------------------------------------------------------------------
def builtin_images(batch, size, seed=0):
    """A deterministic batch of RGB images in [0, 1] (N, 3, size, size): a colour gradient with a
    disc and a square of seeded colour, position and size. Nothing to download."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
    images = np.empty((batch, 3, size, size), dtype=np.float32)
    for n in range(batch):  # building the input, not a forward pass
        base = rng.uniform(0.2, 0.8, 3).astype(np.float32)
        tilt = rng.uniform(-0.3, 0.3, (3, 2)).astype(np.float32)
        img = base[:, None, None] + tilt[:, 0, None, None] * xx + tilt[:, 1, None, None] * yy
        cy, cx, r = rng.uniform(0.25, 0.75), rng.uniform(0.25, 0.75), rng.uniform(0.1, 0.25)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
        img[:, disc] = rng.uniform(0, 1, (3, 1)).astype(np.float32)
        top, left, side = rng.uniform(0, 0.6), rng.uniform(0, 0.6), rng.uniform(0.1, 0.3)
        square = (yy >= top) & (yy < top + side) & (xx >= left) & (xx < left + side)
        img[:, square] = rng.uniform(0, 1, (3, 1)).astype(np.float32)
        img += rng.normal(0, 0.02, img.shape).astype(np.float32)
        images[n] = np.clip(img, 0, 1)
    return images


# ---- numbers -----------------------------------------------------------------------------------
def stats(array):
    a = array.astype(np.float64)
    return {"mean": float(a.mean()), "std": float(a.std()), "min": float(a.min()), "max": float(a.max()),
            "zeros": float(np.mean(a == 0))}


def norm(array):
    return float(np.sqrt(np.sum(np.square(array, dtype=np.float64)))) if array is not None else 0.0


def _g(v):
    return "-" if v is None else f"{v:.4g}"


def _shape(s):
    return "x".join(map(str, s))


# ---- worked examples (--step) --------------------------------------------------------------------
def _central_window(layer, x, per_output):
    """The pooling window of output (0, c, i, j) at the centre of the map, in the channel where
    ``per_output`` (the output, or its gradient) is largest there: (c, i, j, window, winner)."""
    (kh, kw), (sh, sw) = layer.kernel_size, layer.stride
    i, j = per_output.shape[2] // 2, per_output.shape[3] // 2
    c = int(np.argmax(np.abs(per_output[0, :, i, j])))
    window = x[0, c, i * sh:i * sh + kh, j * sw:j * sw + kw]
    return c, i, j, window, np.unravel_index(int(np.argmax(window)), window.shape)


def worked_example(name, layer, x, y, kept=None):
    """A few lines that redo one output of the layer by hand, on the actual numbers (``kept``: a
    dropout layer's kept fraction, counted from its mask)."""
    lines = []
    if isinstance(layer, Conv2d):
        n, k = 0, 0
        i, j = y.shape[2] // 2, y.shape[3] // 2
        kh, kw = layer.kernel_size
        sh, sw = layer.stride
        (top, bottom), (left, right) = F.conv2d_padding(layer.padding, x.shape[2:], (kh, kw), (sh, sw))
        xp = np.pad(x[0], ((0, 0), (top, bottom), (left, right)))
        cg = layer.in_channels // layer.groups
        w = layer.weight.data[k]
        patch = xp[:cg, i * sh:i * sh + kh, j * sw:j * sw + kw]
        terms = (w * patch).astype(np.float64)
        b = float(layer.bias.data[k]) if layer.bias is not None else 0.0
        lines.append(f"y[{n},{k},{i},{j}] = bias[{k}] + sum over c<{cg}, p<{kh}, q<{kw} of "
                     f"w[{k},c,p,q] * x_pad[{n},c,{i}*{sh}+p,{j}*{sw}+q]   ({terms.size} products)")
        for c, p, q in [(0, 0, 0), (0, 0, 1), (0, 1, 0)][: terms.size]:
            if p < kh and q < kw:
                lines.append(f"  w[{k},{c},{p},{q}] * x_pad = {_g(w[c, p, q])} * {_g(patch[c, p, q])} = {_g(terms[c, p, q])}")
        lines.append(f"  ... sum of all {terms.size} products = {_g(terms.sum())}; + bias {_g(b)} = {_g(terms.sum() + b)}"
                     f"   (the layer computed {_g(y[n, k, i, j])})")
    elif isinstance(layer, MaxPool2d):
        (kh, kw), (sh, sw) = layer.kernel_size, layer.stride
        c, i, j, window, (p, q) = _central_window(layer, x, y)
        lines.append(f"window of y[0,{c},{i},{j}]: rows {i * sh}..{i * sh + kh - 1}, columns {j * sw}..{j * sw + kw - 1} of x[0,{c}]")
        for r in window:
            lines.append("  " + "  ".join(f"{v:9.4f}" for v in r))
        overlap = f" (windows overlap: stride {sh} < window {kh})" if sh < kh else ""
        lines.append(f"  winner at window ({p},{q}) = {_g(window[p, q])}; the backward sends y's gradient there only"
                     + overlap)
    elif isinstance(layer, LocalResponseNorm):
        half = layer.size // 2
        i, j = x.shape[2] // 2, x.shape[3] // 2
        c = int(np.argmax(np.abs(x[0, :, i, j])))  # the most active channel at the centre pixel
        lo, hi = max(0, c - half), min(x.shape[1] - 1, c + half)
        squares = x[0, lo:hi + 1, i, j].astype(np.float64) ** 2
        denom = (layer.k + layer.alpha * squares.sum()) ** layer.beta
        lines.append(f"y[0,{c},{i},{j}] = x / (k + alpha * sum_(j={lo}..{hi}) x[j]^2) ** beta")
        lines.append(f"  sum of squares over channels {lo}..{hi} = {' + '.join(_g(v) for v in squares)} = {_g(squares.sum())}")
        lines.append(f"  denominator = ({layer.k:g} + {layer.alpha:g} * {_g(squares.sum())}) ** {layer.beta:g} = {_g(denom)}")
        lines.append(f"  y = {_g(x[0, c, i, j])} / {_g(denom)} = {_g(x[0, c, i, j] / denom)}   (the layer computed {_g(y[0, c, i, j])})")
    elif isinstance(layer, ReLU):
        negative = np.flatnonzero(x.reshape(-1) < 0)
        lines.append(f"{np.mean(y == 0):.1%} of the outputs are 0 (their inputs were <= 0; no gradient flows back through them)")
        if negative.size:
            idx = int(negative[0])
            lines.append(f"  e.g. element {idx}: max({_g(x.reshape(-1)[idx])}, 0) = 0")
    elif isinstance(layer, Dropout):
        kept = 1.0 if kept is None else kept
        lines.append(f"kept fraction {kept:.4f} of the mask (expected {1 - layer.p:.2f}; the output has more zeros: "
                     f"the ReLU's before it); kept values are scaled by 1 / (1 - {layer.p:g}) = {1 / (1 - layer.p):.4g}")
        lines.append(f"  so the expected output equals the input: the paper instead multiplies by {1 - layer.p:g} at "
                     "test time, the same network once trained (this is 'inverted' dropout)")
    elif isinstance(layer, Linear):
        j = 0
        terms = layer.weight.data[j].astype(np.float64) * x[0].astype(np.float64)
        b = float(layer.bias.data[j]) if layer.bias is not None else 0.0
        shown = " + ".join(f"{_g(layer.weight.data[j, m])} * {_g(x[0, m])}" for m in range(min(3, terms.size)))
        lines.append(f"y[0,{j}] = bias + sum_m w[{j},m] * x[0,m] = {_g(b)} + {shown} + ... ({terms.size} products)")
        lines.append(f"  = {_g(b + terms.sum())}   (the layer computed {_g(y[0, j])})")
    elif isinstance(layer, (BatchNorm1d, BatchNorm2d)):
        values = x[:, 0].astype(np.float64).reshape(-1)
        mean, var = values.mean(), values.var()
        if not layer.training:
            mean, var = float(layer.running_mean.data[0]), float(layer.running_var.data[0])
        xhat = (values[0] - mean) / math.sqrt(var + layer.eps)
        lines.append(f"channel 0 over {values.size} values: mean {_g(mean)}, variance {_g(var)}"
                     + (" (running statistics: eval mode)" if not layer.training else " (this batch)"))
        lines.append(f"  first value: ({_g(values[0])} - {_g(mean)}) / sqrt({_g(var)} + {layer.eps:g}) = {_g(xhat)};"
                     f" * weight {_g(layer.weight.data[0])} + bias {_g(layer.bias.data[0])} = "
                     f"{_g(xhat * layer.weight.data[0] + layer.bias.data[0])}")
    elif isinstance(layer, Flatten):
        if y.ndim == 2:
            lines.append(f"{_shape(x.shape[1:])} = {int(np.prod(x.shape[1:]))} values per image, one vector each")
        else:
            lines.append(f"{_shape(x.shape[1:])} -> {_shape(y.shape[1:])} per image, the same values in the same order")
    return [line for line in lines if line]


def _sum_line(terms, first_factors, computed, what):
    """'= a*b + c*d + ... (N products) = S   (the backward computed S')': the first three nonzero
    products are shown (after a ReLU most are 0), the sum is over all of them."""
    nonzero = [(a, b) for a, b in first_factors if a * b != 0] or first_factors  # zeros teach nothing
    shown = " + ".join(f"{_g(a)} * {_g(b)}" for a, b in nonzero[:3])
    more = " + ..." if terms.size > 3 else ""
    return (f"  = {shown}{more}   ({terms.size} products) = {_g(terms.sum())}   (the backward computed "
            f"{_g(computed)} for {what})")


def worked_backward(name, layer, x, grad_y, grad_x, param_grads):
    """A few lines that redo one entry of the layer's backward by hand, on the actual numbers:
    ``grad_y`` is d loss / d output, ``grad_x`` what the backward sent to the input (None for the
    first layer), ``param_grads`` its parameters' gradients by name."""
    lines = []
    if isinstance(layer, Conv2d):
        kh, kw = layer.kernel_size
        sh, sw = layer.stride
        (top, bottom), (left, right) = F.conv2d_padding(layer.padding, x.shape[2:], (kh, kw), (sh, sw))
        xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (top, bottom), (left, right)))
        g = grad_y.astype(np.float64)
        n_img, _, ho, wo = g.shape
        kg = layer.out_channels // layer.groups  # output channels per group
        k, c, p, q = 0, 0, kh // 2, kw // 2
        patch = xp[:, c, p:p + sh * (ho - 1) + 1:sh, q:q + sw * (wo - 1) + 1:sw]  # x_pad[n, c, i*s+p, j*s+q]
        terms = g[:, k] * patch
        lines.append(f"dL/dw[{k},{c},{p},{q}] = sum over n<{n_img}, i<{ho}, j<{wo} of dL/dy[n,{k},i,j] * "
                     f"x_pad[n,{c},i*{sh}+{p},j*{sw}+{q}]   (every output position this weight touched)")
        lines.append(_sum_line(terms, list(zip(g[:, k].reshape(-1), patch.reshape(-1))),
                               param_grads["weight"][k, c, p, q], f"w[{k},{c},{p},{q}]"))
        if grad_x is not None:
            h, w = x.shape[2] // 2, x.shape[3] // 2
            # output rows i whose window row p = h + top - i*sh lies in 0..kh-1, and the same for columns
            rows = [(i, h + top - i * sh) for i in range(ho) if 0 <= h + top - i * sh < kh]
            cols = [(j, w + left - j * sw) for j in range(wo) if 0 <= w + left - j * sw < kw]
            ks = np.arange(kg)  # channel 0 is in group 0: the group's output channels read it
            i_idx, p_idx = (np.array(v) for v in zip(*rows))
            j_idx, q_idx = (np.array(v) for v in zip(*cols))
            g_part = g[0][np.ix_(ks, i_idx, j_idx)]
            w_part = layer.weight.data.astype(np.float64)[:kg, 0][np.ix_(ks, p_idx, q_idx)]
            terms = g_part * w_part
            lines.append(f"dL/dx[0,0,{h},{w}] = sum over the {kg} output channels of its group and the "
                         f"{len(rows)}x{len(cols)} output positions whose window covers it of dL/dy[0,k,i,j] * "
                         f"w[k,0,{h}+{top}-i*{sh},{w}+{left}-j*{sw}]")
            lines.append(_sum_line(terms, list(zip(g_part.reshape(-1), w_part.reshape(-1))), grad_x[0, 0, h, w],
                                   f"x[0,0,{h},{w}]"))
        lines.append(f"dL/dbias[{k}] = sum of dL/dy[n,{k},i,j] over all n, i, j = {_g(g[:, k].sum())}   "
                     f"(the backward computed {_g(param_grads['bias'][k])})" if "bias" in param_grads else "")
    elif isinstance(layer, MaxPool2d) and grad_x is not None:
        (kh, kw), (sh, sw) = layer.kernel_size, layer.stride
        c, i, j, window, (p, q) = _central_window(layer, x, grad_y)
        h, w = i * sh + p, j * sw + q
        # every window that covers x[0,c,h,w] and has it as its winner sends its gradient there
        winners = []
        for a in range(max(0, -(-(h - kh + 1) // sh)), min(grad_y.shape[2] - 1, h // sh) + 1):
            for b in range(max(0, -(-(w - kw + 1) // sw)), min(grad_y.shape[3] - 1, w // sw) + 1):
                other = x[0, c, a * sh:a * sh + kh, b * sw:b * sw + kw]
                if np.unravel_index(int(np.argmax(other)), other.shape) == (h - a * sh, w - b * sw):
                    winners.append((a, b))
        total = sum(float(grad_y[0, c, a, b]) for a, b in winners)
        lines.append(f"y[0,{c},{i},{j}]'s window has its winner at x[0,{c},{h},{w}] = {_g(x[0, c, h, w])}: its "
                     f"gradient {_g(grad_y[0, c, i, j])} goes there, the other {kh * kw - 1} inputs of the window get 0")
        lines.append(f"  x[0,{c},{h},{w}] wins {len(winners)} window(s) {winners}"
                     + (" (windows overlap, so one input can win several)" if sh < kh else "")
                     + f": dL/dx = {' + '.join(_g(grad_y[0, c, a, b]) for a, b in winners)} = {_g(total)}"
                     f"   (the backward computed {_g(grad_x[0, c, h, w])})")
    elif isinstance(layer, LocalResponseNorm) and grad_x is not None:
        half = layer.size // 2
        i, j = np.unravel_index(int(np.argmax(np.abs(grad_y[0]).sum(axis=0))), grad_y.shape[2:])  # most gradient
        column, g = x[0, :, i, j].astype(np.float64), grad_y[0, :, i, j].astype(np.float64)
        c = int(np.argmax(np.abs(g) * (column != 0)))
        channels = np.arange(column.size)
        scale = layer.k + layer.alpha * np.array([np.sum(column[max(0, m - half):m + half + 1] ** 2) for m in channels])
        near = channels[np.abs(channels - c) <= half]
        direct = g[c] * scale[c] ** -layer.beta
        through = 2 * layer.alpha * layer.beta * column[c] * np.sum(g[near] * column[near] * scale[near] ** (-layer.beta - 1))
        lines.append(f"dL/dx[0,{c},{i},{j}] = dL/dy[{c}] * scale[{c}]^-beta - 2 alpha beta x[{c}] * sum over "
                     f"m={near[0]}..{near[-1]} of dL/dy[m] * x[m] * scale[m]^(-beta-1)   (x[{c}] is in the "
                     f"denominator of its neighbours too)")
        lines.append(f"  = {_g(g[c])} * {_g(scale[c])}^-{layer.beta:g} - 2 * {layer.alpha:g} * {layer.beta:g} * "
                     f"{_g(column[c])} * {_g(through / (2 * layer.alpha * layer.beta * column[c]) if column[c] else 0.0)}"
                     f" = {_g(direct)} - {_g(through)} = {_g(direct - through)}   (the backward computed "
                     f"{_g(grad_x[0, c, i, j])})")
    elif isinstance(layer, ReLU) and grad_x is not None:
        flat_x, flat_g, flat_gx = x.reshape(-1), grad_y.reshape(-1), grad_x.reshape(-1)
        on = np.flatnonzero((flat_x > 0) & (flat_g != 0))
        off = np.flatnonzero((flat_x < 0) & (flat_g != 0))
        if on.size:
            lines.append(f"dL/dx = dL/dy where x > 0, else 0: element {on[0]}: x = {_g(flat_x[on[0]])} > 0, "
                         f"dL/dx = {_g(flat_g[on[0]])}   (the backward computed {_g(flat_gx[on[0]])})")
        if off.size:
            lines.append(f"  element {off[0]}: x = {_g(flat_x[off[0]])} <= 0, dL/dx = 0 whatever dL/dy "
                         f"({_g(flat_g[off[0]])})   (the backward computed {_g(flat_gx[off[0]])})")
    elif isinstance(layer, Linear):
        g = grad_y.astype(np.float64)
        j = int(np.argmax(np.abs(g).sum(axis=0)))  # the output with the most gradient
        m = int(np.argmax(np.abs(x).sum(axis=0)))  # the input feature most active in the batch
        terms = g[:, j] * x[:, m].astype(np.float64)
        lines.append(f"dL/dw[{j},{m}] = sum over the batch of dL/dy[n,{j}] * x[n,{m}] "
                     + _sum_line(terms, list(zip(g[:, j], x[:, m])), param_grads["weight"][j, m], f"w[{j},{m}]")[2:])
        if grad_x is not None:
            terms = g[0] * layer.weight.data[:, m].astype(np.float64)
            lines.append(f"dL/dx[0,{m}] = sum over the {g.shape[1]} outputs of dL/dy[0,j] * w[j,{m}] "
                         + _sum_line(terms, list(zip(g[0], layer.weight.data[:, m])), grad_x[0, m], f"x[0,{m}]")[2:])
    elif isinstance(layer, Dropout) and grad_x is not None:
        flat_g, flat_gx = grad_y.reshape(-1), grad_x.reshape(-1)
        kept, dropped = np.flatnonzero(flat_gx != 0), np.flatnonzero((flat_gx == 0) & (flat_g != 0))
        if kept.size:
            lines.append(f"dL/dx = dL/dy * mask / (1 - p): a kept element {kept[0]}: {_g(flat_g[kept[0]])} / "
                         f"{1 - layer.p:g} = {_g(flat_g[kept[0]] / (1 - layer.p))}   (the backward computed "
                         f"{_g(flat_gx[kept[0]])})")
        if dropped.size:
            lines.append(f"  a dropped element {dropped[0]}: dL/dy {_g(flat_g[dropped[0]])}, dL/dx 0 (the same mask "
                         "as the forward's)")
    return [line for line in lines if line]


def worked_loss_gradient(logits, labels, grad):
    """Cross-entropy's backward: dL/dlogits = (softmax(z) - one_hot(label)) / N, for image 0."""
    z = logits[0].astype(np.float64)
    p = np.exp(z - z.max())
    p /= p.sum()
    n, t = len(labels), int(labels[0])
    other = 0 if t != 0 else 1
    return [f"dL/dlogits[n,c] = (softmax(z_n)[c] - (1 if c is the label else 0)) / N, N = {n}: the mean loss's "
            "gradient pushes the true class up and every other down, each by its probability",
            f"  image 0, label {t}: ({_g(p[t])} - 1) / {n} = {_g((p[t] - 1) / n)}   (the backward computed "
            f"{_g(grad[0, t])})",
            f"  image 0, class {other}: ({_g(p[other])} - 0) / {n} = {_g(p[other] / n)}   (the backward computed "
            f"{_g(grad[0, other])})"]


# ---- finite-difference spot check ----------------------------------------------------------------
def _float64_twin(layer):
    """The same layer in float64, and a function that readies it for one more evaluation: a
    dropout twin replays the mask the forward just used."""
    twin = copy.deepcopy(layer)
    if hasattr(twin, "double"):
        twin.double()
    replay = twin.calls - 1 if isinstance(twin, Dropout) else None

    def ready():
        if replay is not None:
            twin.calls = replay
        return twin

    return twin, ready


# The spot checks' verdict. In float64 with eps = 1e-6 a right backward agrees with the central
# difference to about 1e-10..1e-6 (truncation O(eps^2), rounding about 1e-16 |S| / eps relative to
# the gradient); a wrong one is off by its own mistake (a 10% error in a kernel: 1e-1).
SPOT_CHECK_TOLERANCE = 1e-4


def spot_check(layer, x, grad_out, checks, rng, eps=1e-6):
    """Central differences in float64 of S = sum(grad_out * layer(x)) at a few coordinates of the
    input and of each parameter, against the float64 analytic gradient. Returns a list of dicts.

    Coordinates are drawn among those whose gradient is at least 1e-3 of the tensor's largest
    (a relative error of a gradient that is nearly zero says nothing) and, for the input, whose
    value is more than 1e-3 from 0 (ReLU's kink, ties between zeros in a pooling window).
    """
    x64 = x.astype(np.float64)
    g64 = grad_out.astype(np.float64)
    twin, ready = _float64_twin(layer)
    leaf = Tensor(x64.copy(), requires_grad=True)
    ready()(leaf).backward(g64)
    targets = [("input", leaf.data, leaf.grad)]
    targets += [(pname, p.data, p.grad) for pname, p in twin.named_parameters()]

    def objective(x_values):
        with no_grad():
            return float(np.sum(g64 * ready()(Tensor(x_values)).data))

    results = []
    for tname, values, grad in targets:
        if grad is None:
            continue
        flat_grad = grad.reshape(-1)
        largest = np.abs(flat_grad).max()
        candidates = np.flatnonzero(np.abs(flat_grad) >= 1e-3 * largest) if largest > 0 else np.array([], int)
        if tname == "input":
            candidates = candidates[np.abs(values.reshape(-1)[candidates]) > 1e-3]
        if candidates.size == 0:
            continue
        probe_x = x64.copy()
        target = probe_x if tname == "input" else values  # perturb in place, then restore
        flat_target = target.reshape(-1)
        for idx in rng.choice(candidates, size=min(checks, candidates.size), replace=False):
            idx = int(idx)
            numeric = central_difference(lambda: objective(probe_x), lambda v: flat_target.__setitem__(idx, v),
                                         flat_target[idx], eps)
            analytic = float(flat_grad[idx])
            results.append({"tensor": tname, "index": [int(i) for i in np.unravel_index(idx, grad.shape)],
                            "analytic": analytic, "numeric": numeric, "rel_error": relative_error(analytic, numeric)})
    return results


# ---- the trace -------------------------------------------------------------------------------------
class _Printer:
    def __init__(self, stream):
        self.stream = stream

    def __call__(self, text=""):
        print(text, file=self.stream, flush=True)


def _table(rows, header):
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    fmt = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return [fmt(header), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows]


def _layer_by_layer(net, x, labels):
    """A forward and backward through ``net`` one layer at a time, each on a leaf of its own, as
    the traced pass below makes them: the warm-up. A whole-network pass would not do: it runs a
    convolution or linear layer and its ReLU as one fused op, and the traced pass's separate calls
    then ran for the first time inside its times (fc6's backward 223 ms in the first trace of a
    process, 25 ms in the next; not compiling: the BLAS products' first run on the helper thread)."""
    leaves, outputs = [], []
    current = Tensor(x)
    for idx, (_, layer) in enumerate(net.named_children()):
        leaves.append(Tensor(current.data, requires_grad=idx > 0))
        outputs.append(current := layer(leaves[-1]))
    logits = Tensor(current.data, requires_grad=True)
    F.cross_entropy(logits, labels).backward()
    grad = logits.grad
    for leaf, output in zip(reversed(leaves), reversed(outputs)):
        output.backward(grad)
        grad = leaf.grad


def run_trace(model="alexnet2012", batch=2, seed=0, input_size=None, image=None, num_classes=None, step=False,
              checks=3, json_path=None, save_maps=None, training=True, out=None, stdin=None,
              backend="cpu", activation="relu", html_path=None):
    """Run the step-through and return everything it printed as a dict (also written to ``json_path``).
    ``backend``: the kernels, "cpu" or "reference" (kernels/backends.py). ``html_path``: also write the
    step-through as one self-contained web page (trace_html.py), with every layer's worked example."""
    if backend not in ("cpu", "reference"):
        raise ArgumentError(f"trace: backend must be cpu or reference, got {backend!r}")
    with use_backend(backend):  # the streams looked up now, not at import: a caller may have replaced them
        return _run_trace(model, batch, seed, input_size, image, num_classes, step, checks, json_path, save_maps,
                          training, out or sys.stdout, stdin or sys.stdin, backend, activation, html_path)


def _run_trace(model, batch, seed, input_size, image, num_classes, step, checks, json_path, save_maps, training, out,
               stdin, backend, activation, html_path=None):
    say = _Printer(out)
    examples = step or html_path is not None  # the web page shows every layer's worked example
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ArgumentError(f"trace: batch must be a positive integer, got {batch!r}")
    if checks < 0:
        raise ArgumentError(f"trace: checks must be >= 0, got {checks}")
    if save_maps is not None:
        from .maps import require_matplotlib
        require_matplotlib()
    kwargs = {"seed": seed, "activation": activation}
    if input_size is not None:
        kwargs["input_size"] = input_size
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    started = time.perf_counter()
    net = models.get(model, **kwargs).train(training)
    size = net.input_size[1]
    classes = [m for _, m in net.named_children()][-1].out_features
    if image is not None:
        pixels = np.repeat(load_image(image, size, "trace")[None], batch, axis=0)
        source = f"image {image}"
    else:
        pixels = builtin_images(batch, size, seed)
        source = f"built-in synthetic images (seed {seed})"
    x = pixels - IMAGENET_MEAN[None, :, None, None]
    labels = np.arange(batch) % classes
    plan = layer_plan(net)
    record = {"model": model, "batch": batch, "seed": seed, "input_size": size, "classes": classes,
              "activation": activation, "backend": backend, "source": source, "mode": "train" if training else "eval", "forward": [], "backward": []}

    say(f"minicnn trace: {model}, batch {batch}, input {_shape(x.shape)} from {source}, {classes} classes, "
        f"{net.num_parameters():,} parameters, {'training' if training else 'eval'} mode")
    if backend == "reference":
        say(SLOW_NOTE)
    # A warm-up pass on a copy (the copy's dropout masks and batch-norm statistics are its own):
    # Numba compiles each kernel on its first call, or loads it from its cache, and that must not
    # show in a layer's time.
    warm_start = time.perf_counter()
    _layer_by_layer(copy.deepcopy(net), x, labels)
    record["warmup_seconds"] = time.perf_counter() - warm_start
    say(f"(times in ms are measured after a warm-up pass, {record['warmup_seconds']:.1f} s, which compiled the "
        "kernels or loaded them from Numba's cache)")
    say()
    say("FORWARD: each row is one layer; input -> output shape, then statistics of the output")

    inputs, outputs = [], []
    current = Tensor(x)
    rows = []
    for idx, (name, layer) in enumerate(net.named_children()):
        leaf = Tensor(current.data, requires_grad=idx > 0)
        dropping = isinstance(layer, Dropout) and layer.training and layer.p > 0
        mask_seed = layer.next_seed() if dropping else None  # the seed this call's mask will use
        t0 = time.perf_counter()
        result = layer(leaf)
        elapsed = time.perf_counter() - t0
        inputs.append(leaf)
        outputs.append(result)
        s = stats(result.data)
        p = plan[idx]
        entry = {"layer": name, "op": p["op"], "in": list(leaf.shape), "out": list(result.shape),
                 "size_arithmetic": p["size_text"], "params": p["params"], "params_arithmetic": p["params_text"],
                 "macs_per_image": p["macs"], "ms": elapsed * 1e3, **s}
        kept = float(keep_mask(mask_seed, layer.p, result.shape).mean()) if dropping else None
        if dropping:
            entry["kept_fraction"] = kept  # from the mask: counting nonzero outputs would count ReLU's zeros too
        record["forward"].append(entry)
        rows.append([name, p["op"], f"{_shape(leaf.shape)} -> {_shape(result.shape)}", p["size_text"],
                     f"{p['params']:,}" if p["params"] else "-", f"{p['macs'] / 1e6:.1f}M" if p["macs"] else "-",
                     f"{elapsed * 1e3:.1f}", _g(s["mean"]), _g(s["std"]), _g(s["min"]), _g(s["max"]),
                     f"{s['zeros']:.0%}" if isinstance(layer, ReLU) else ""])
        if step:
            for line in _table(rows[-1:], _FORWARD_HEADER)[0 if idx == 0 else 2:]:
                say(line)
            example = worked_example(name, layer, leaf.data, result.data, kept)
            entry["worked_example"] = example
            for line in example:
                say("    " + line)
            _pause(stdin, say)
        elif examples:
            entry["worked_example"] = worked_example(name, layer, leaf.data, result.data, kept)
        current = result
    if not step:
        for line in _table(rows, _FORWARD_HEADER):
            say(line)

    logits = Tensor(current.data, requires_grad=True)
    loss = F.cross_entropy(logits, labels)
    probs = F.softmax(Tensor(current.data)).data
    true_p = probs[np.arange(batch), labels]
    say()
    say(f"LOSS: cross-entropy {loss.item():.6f} over labels {labels.tolist()}; an untrained network guesses "
        f"1/{classes} for each class, loss ln({classes}) = {math.log(classes):.4f}; "
        f"p(true class) = {', '.join(f'{v:.5f}' for v in true_p)}")
    record["loss"] = loss.item()
    record["p_true_class"] = true_p.tolist()

    say()
    say("BACKWARD: from the loss back to the image; |grad| are L2 norms of d loss / d (tensor);"
        f" spot check: {checks} finite differences per tensor in float64, worst relative error")
    t0 = time.perf_counter()
    loss.backward()
    grad = logits.grad
    record["backward"].append({"layer": "loss", "ms": (time.perf_counter() - t0) * 1e3, "grad_out_norm": norm(grad)})
    if examples:
        example = worked_loss_gradient(current.data, labels, grad)
        record["backward"][-1]["worked_example"] = example
    if step:
        for line in example:
            say("    " + line)
        _pause(stdin, say)
    rng = np.random.default_rng(seed)
    back_rows = []
    layers = list(net.named_children())
    for idx in range(len(layers) - 1, -1, -1):
        name, layer = layers[idx]
        for p in layer.parameters():
            p.grad = None
        t0 = time.perf_counter()
        outputs[idx].backward(grad)
        elapsed = time.perf_counter() - t0
        grad_in = inputs[idx].grad
        param_norms = {pname: norm(p.grad) for pname, p in layer.named_parameters()}
        checks_done = []
        if checks and (idx > 0 or param_norms) and not isinstance(layer, Flatten):
            checks_done = spot_check(layer, inputs[idx].data, grad, checks, rng)
        worst = max((c["rel_error"] for c in checks_done), default=None)
        record["backward"].append({"layer": name, "ms": elapsed * 1e3, "grad_out_norm": norm(grad),
                                   "grad_in_norm": norm(grad_in) if idx > 0 else None,
                                   "param_grad_norms": param_norms, "spot_checks": checks_done})
        back_rows.append([name, _g(norm(grad)), _g(norm(grad_in)) if idx > 0 else "(image)",
                          ", ".join(f"{k} {_g(v)}" for k, v in param_norms.items()) or "-", f"{elapsed * 1e3:.1f}",
                          f"{worst:.1e} ({len(checks_done)})" if worst is not None else "-"])
        if step:
            for line in _table(back_rows[-1:], _BACKWARD_HEADER)[0 if len(back_rows) == 1 else 2:]:
                say(line)
            example = worked_backward(name, layer, inputs[idx].data, grad, grad_in if idx > 0 else None,
                                      {pname: p.grad for pname, p in layer.named_parameters()})
            record["backward"][-1]["worked_example"] = example
            for line in example:
                say("    " + line)
            if example:
                _pause(stdin, say)
        elif examples:
            record["backward"][-1]["worked_example"] = worked_backward(
                name, layer, inputs[idx].data, grad, grad_in if idx > 0 else None,
                {pname: p.grad for pname, p in layer.named_parameters()})
        grad = grad_in
    if not step:
        for line in _table(back_rows, _BACKWARD_HEADER):
            say(line)
    worst_all = max((c["rel_error"] for b in record["backward"] for c in b.get("spot_checks", [])), default=None)
    record["worst_spot_check"] = worst_all
    record["seconds"] = time.perf_counter() - started
    say()
    record["spot_check_tolerance"] = SPOT_CHECK_TOLERANCE
    record["spot_check_failures"] = [dict(c, layer=b["layer"]) for b in record["backward"]
                                     for c in b.get("spot_checks", []) if not c["rel_error"] <= SPOT_CHECK_TOLERANCE]
    coordinates = sum(len(b.get("spot_checks", [])) for b in record["backward"])
    if record["spot_check_failures"]:
        for c in record["spot_check_failures"]:
            say(f"SPOT CHECK FAILED: {c['layer']}'s backward, d loss / d {c['tensor']}{tuple(c['index'])}: analytic "
                f"{c['analytic']:.6g}, finite differences {c['numeric']:.6g}, relative error {c['rel_error']:.1e} > "
                f"tolerance {SPOT_CHECK_TOLERANCE:g}")
        say(f"{len(record['spot_check_failures'])} of {coordinates} coordinates disagree: that backward is wrong.")
    elif worst_all is not None:
        say(f"Every layer's backward agrees with finite differences within the tolerance {SPOT_CHECK_TOLERANCE:g} "
            f"(relative): worst relative error {worst_all:.1e} over {coordinates} coordinates.")
    say(f"Total {record['seconds']:.1f} s: building the model, forward, backward and spot checks.")
    if save_maps is not None:
        from .maps import save_feature_maps
        written = save_feature_maps(save_maps, net, inputs, outputs)
        record["maps"] = written
        say(f"Feature maps written: {', '.join(written)}")
    if html_path is not None:
        from .trace_html import write_page

        page_start = time.perf_counter()
        compare = None
        if model in models.MODELS and activation in models.ACTIVATIONS:  # the same pass with tanh (or relu)
            other = "tanh" if activation != "tanh" else "relu"
            compare = run_trace(model, batch, seed, input_size, image, num_classes, checks=0, training=training,
                                out=io.StringIO(), backend=backend, activation=other)
        size = write_page(html_path, record, net, plan, [o.data for o in outputs], pixels, compare)
        record["html"] = {"path": html_path, "bytes": size, "seconds": time.perf_counter() - page_start}
        say(f"Web page: {html_path} ({size / 1e6:.1f} MB, made in {record['html']['seconds']:.1f} s); open it in a "
            "browser: the arrow keys step through the layers")
    if json_path is not None:
        with open(json_path, "w", encoding="utf-8") as f:
            json.dump(record, f, indent=1, default=float)
        say(f"Everything above, as data: {json_path}")
    return record


_BACKWARD_HEADER = ["layer", "|grad out|", "|grad in|", "|param grads|", "ms", "spot check"]
_FORWARD_HEADER = ["layer", "op", "shape", "size arithmetic", "params", "MACs/img", "ms", "mean", "std", "min", "max",
                   "zeros"]


def _pause(stdin, say):
    say("    [Enter: next layer]")
    try:
        line = stdin.readline()
    except (OSError, ValueError):
        return
    if line == "":  # end of input: carry on without pausing
        return
