"""What each layer of a network does to the shape, and what it costs: the static half of a trace.

``layer_plan(model, input_shape)`` walks a Sequential network's named layers and,
for each, works out by arithmetic alone (nothing is computed on data):

- the op and its settings (``conv 96@11x11/4``),
- input and output shape, with the size arithmetic (``(227 - 11) / 4 + 1 = 55``),
- the parameter count with its arithmetic (``96 x 11 x 11 x 3 + 96 = 34,944``),
  weights and biases apart,
- multiply-accumulates per image (a conv: out_channels x H_out x W_out x in_channels/groups x kh x kw).

``format_summary`` prints it as a table with totals.
"""
from __future__ import annotations

import math

from ..errors import ArgumentError
from ..functional import conv2d_padding
from ..nn import (BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Flatten, Linear, LocalResponseNorm, MaxPool2d, ReLU,
                 Sigmoid, Tanh)


def _n(v):
    return f"{v:,}"


def describe(layer):
    """A short name for a layer and its settings."""
    if isinstance(layer, Conv2d):
        kh, kw = layer.kernel_size
        sh, sw = layer.stride
        stride = f"/{sh}" if sh == sw else f"/{sh}x{sw}"
        pad = layer.padding
        pad_text = f" pad {pad}" if isinstance(pad, str) else (f" pad {pad[0]}" if pad[0] == pad[1] and pad[0] else
                                                                ("" if pad == (0, 0) else f" pad {pad}"))
        groups = f" groups {layer.groups}" if layer.groups > 1 else ""
        return f"conv {layer.out_channels}@{kh}x{kw}{stride}{pad_text}{groups}"
    if isinstance(layer, MaxPool2d):
        kh, kw = layer.kernel_size
        sh, sw = layer.stride
        overlap = " (overlapping)" if sh < kh or sw < kw else ""
        return f"maxpool {kh}x{kw}/{sh}{overlap}"
    if isinstance(layer, LocalResponseNorm):
        return f"lrn n={layer.size} alpha={layer.alpha:g} beta={layer.beta:g} k={layer.k:g}"
    if isinstance(layer, Linear):
        return f"fc {layer.in_features}->{layer.out_features}"
    if isinstance(layer, Dropout):
        return f"dropout p={layer.p:g}"
    if isinstance(layer, (BatchNorm1d, BatchNorm2d)):
        return f"batchnorm {layer.num_features}"
    names = {ReLU: "relu", Sigmoid: "sigmoid", Tanh: "tanh", Flatten: "flatten"}
    return names.get(type(layer), type(layer).__name__)


def _conv_sizes(layer, in_shape):
    c, h, w = in_shape
    kh, kw = layer.kernel_size
    sh, sw = layer.stride
    (top, bottom), (left, right) = conv2d_padding(layer.padding, (h, w), (kh, kw), (sh, sw))
    ho = (h + top + bottom - kh) // sh + 1
    wo = (w + left + right - kw) // sw + 1
    if layer.padding == "same":
        text = f"ceil({h} / {sh}) = {ho}" + (f" (pad {top}+{bottom})" if top + bottom else "")
    else:
        text = _size_text(h, top + bottom, kh, sh, ho)
    return (layer.out_channels, ho, wo), text


def _size_text(size, pad, kernel, stride, out):
    """(size + pad - kernel) / stride + 1, with the fraction and the floor shown where the division
    is not exact: a window that would hang over the edge is dropped (224 vs 227 for conv1)."""
    pad_text = f" + {pad}" if pad else ""
    exact = (size + pad - kernel) / stride + 1
    value = f"{out}" if exact == out else f"{exact:g}, floored to {out}"
    return f"({size}{pad_text} - {kernel}) / {stride} + 1 = {value}"


def _pool_sizes(layer, in_shape):
    c, h, w = in_shape
    kh, kw = layer.kernel_size
    sh, sw = layer.stride
    ph, pw = layer.padding
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    return (c, ho, wo), _size_text(h, 2 * ph, kh, sh, ho)


def _flattened(layer, name, shape):
    """(the per-image shape after a Flatten, its size text): the summary follows one image, so a
    Flatten that merges the batch axis (start_dim 0) is refused."""
    dims = len(shape) + 1  # with the batch axis
    start, end = (d + dims if d < 0 else d for d in (layer.start_dim, layer.end_dim))
    if not 1 <= start <= end < dims:
        raise ArgumentError(f"summary: {name} flattens axes {layer.start_dim}..{layer.end_dim} of a {dims}-d "
                            f"batch {('N',) + tuple(shape)}; the summary follows one image, so axes 1..{dims - 1}")
    merged = shape[start - 1:end]
    flat = math.prod(merged)
    text = " x ".join(map(str, merged)) + f" = {flat}"
    return tuple(shape[:start - 1]) + (flat,) + tuple(shape[end:]), text


def layer_plan(model, input_shape=None):
    """One dict per named layer: name, layer, op, in_shape, out_shape (per image, no batch axis),
    size_text, weights, biases, params, params_text, macs, note."""
    shape = tuple(input_shape or model.input_size)
    notes = getattr(model, "notes", {})
    rows = []
    for name, layer in model.named_children():
        in_shape = shape
        size_text = ""
        weights = layer.weight.size if getattr(layer, "weight", None) is not None else 0
        biases = layer.bias.size if getattr(layer, "bias", None) is not None else 0
        params_text = ""
        macs = 0
        if isinstance(layer, Conv2d):
            if len(shape) != 3 or shape[0] != layer.in_channels:
                raise ArgumentError(f"summary: {name} expects {layer.in_channels} input channels, gets shape {shape}")
            shape, size_text = _conv_sizes(layer, shape)
            if min(shape[1:]) < 1:
                raise ArgumentError(f"summary: the input is too small: {name} would output {shape}")
            kh, kw = layer.kernel_size
            cg = layer.in_channels // layer.groups
            params_text = f"{layer.out_channels} x {kh} x {kw} x {cg}" + (f" + {biases}" if biases else "")
            macs = layer.out_channels * shape[1] * shape[2] * cg * kh * kw
        elif isinstance(layer, MaxPool2d):
            shape, size_text = _pool_sizes(layer, shape)
            if min(shape[1:]) < 1:
                raise ArgumentError(f"summary: the input is too small: {name} would output {shape}")
        elif isinstance(layer, Flatten):
            shape, size_text = _flattened(layer, name, shape)
        elif isinstance(layer, Linear):
            if shape != (layer.in_features,):
                raise ArgumentError(f"summary: {name} expects {layer.in_features} features, gets shape {shape}")
            shape = (layer.out_features,)
            params_text = f"{layer.out_features} x {layer.in_features}" + (f" + {biases}" if biases else "")
            macs = layer.in_features * layer.out_features
        elif isinstance(layer, (BatchNorm1d, BatchNorm2d)):
            params_text = f"{layer.num_features} + {layer.num_features} (+ 2 x {layer.num_features} running stats)"
        if params_text and (weights or biases):
            params_text += f" = {_n(weights + biases)}"
        rows.append({
            "name": name, "layer": layer, "op": describe(layer), "in_shape": in_shape, "out_shape": shape,
            "size_text": size_text, "weights": weights, "biases": biases, "params": weights + biases,
            "params_text": params_text, "macs": macs, "note": notes.get(name, ""),
        })
    return rows


def format_summary(model, rows):
    """The plan as a text table with totals."""
    header = ("layer", "op", "output", "size arithmetic", "parameters", "MACs/image")
    body = [(r["name"], r["op"], "x".join(map(str, r["out_shape"])), r["size_text"], r["params_text"] or "-",
             _n(r["macs"]) if r["macs"] else "-") for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body)]

    def line(cells):
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()

    total_w = sum(r["weights"] for r in rows)
    total_b = sum(r["biases"] for r in rows)
    total_macs = sum(r["macs"] for r in rows)
    out = [f"{model.name}: input {'x'.join(map(str, rows[0]['in_shape']))}", "", line(header),
           line(["-" * w for w in widths])]
    for row, cells in zip(rows, body):
        out.append(line(cells))
        if row["note"]:
            out.append(" " * (widths[0] + 2) + f"note: {row['note']}")
    biggest = max(rows, key=lambda r: r["params"])
    out += [
        "",
        f"parameters: {_n(total_w + total_b)} ({_n(total_w)} weights + {_n(total_b)} biases)",
        f"largest layer: {biggest['name']} with {_n(biggest['params'])} ({100 * biggest['params'] / (total_w + total_b):.0f}%)",
        f"multiply-accumulates per image: {_n(total_macs)} ({2 * total_macs / 1e9:.2f} GFLOP forward)",
    ]
    if getattr(model, "weight_decay", 0):
        out.append(f"L2 weight regularisation: {model.weight_decay:g} x sum of squared conv/fc weights")
    return "\n".join(out)
