"""``mc.save(obj, path)`` and ``mc.load(path)``, as ``torch.save``/``torch.load`` are used: for
state dicts and nested dicts and lists of tensors, arrays, numbers, strings, bools and None.

The file is a minicnn checkpoint (``checkpoint.py``): written atomically, checked by a SHA-256
when read, and made of an ``.npz`` of the arrays plus a JSON document for the rest, so loading a
file never runs code (``torch.load`` unpickles, which can). In the JSON, each array is a
placeholder ``{"__array__": "<name in the npz>", "tensor": true|false}`` and each dict a list of
its (key, value) pairs, so that its order comes back; ``load`` puts the
arrays back as tensors or NumPy arrays, as they were saved (a tensor comes back as a leaf, with
its ``requires_grad``, on the CPU).
"""
from __future__ import annotations

import numbers

import numpy as np

from . import checkpoint
from .errors import ArgumentError
from .tensor import Tensor

FORMAT = "minicnn.save 1"


def save(obj, path):
    """Write ``obj`` to ``path`` atomically; returns the path."""
    arrays = {}

    def encode(value, where):
        if isinstance(value, (Tensor, np.ndarray)):
            name = f"a{len(arrays)}"
            arrays[name] = value.numpy() if isinstance(value, Tensor) else value
            if arrays[name].dtype.kind not in "biuf":
                raise ArgumentError(f"save: {where} is an array of dtype {arrays[name].dtype}; only numbers are saved")
            return {"__array__": name, "tensor": isinstance(value, Tensor),
                    "requires_grad": bool(getattr(value, "requires_grad", False))}
        if isinstance(value, dict):
            if not all(isinstance(k, str) for k in value):
                raise ArgumentError(f"save: {where} has a key that is not a string: {next(k for k in value if not isinstance(k, str))!r}")
            # as a list of pairs: the file's JSON is written with sorted keys, and a state dict's
            # order (the order the layers run) must come back
            return {"__items__": [[k, encode(v, f"{where}[{k!r}]")] for k, v in value.items()]}
        if isinstance(value, (list, tuple)):
            return [encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if value is None or isinstance(value, (str, bool)):
            return value
        if isinstance(value, numbers.Integral):
            return int(value)
        if isinstance(value, numbers.Real):
            return float(value)
        raise ArgumentError(f"save: {where} is a {type(value).__name__}; minicnn saves tensors, arrays, numbers, "
                            "strings, bools, None, and dicts (string keys) and lists of them")

    document = {"format": FORMAT, "object": encode(obj, "the object")}
    return checkpoint.save(path, arrays, document)


def load(path):
    """Read what ``save`` wrote (refusing anything else, or a damaged file, with a clear error)."""
    arrays, document = checkpoint.load(path)
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise checkpoint.CheckpointError(f"{path} is a minicnn checkpoint but not one written by mc.save (a "
                                         "training checkpoint: use minicnn eval, or checkpoint.load)")

    def decode(value):
        if isinstance(value, dict) and "__array__" in value:
            array = arrays[value["__array__"]]
            return Tensor(array, requires_grad=value["requires_grad"]) if value["tensor"] else array
        if isinstance(value, dict):
            return {k: decode(v) for k, v in value["__items__"]}
        if isinstance(value, list):
            return [decode(v) for v in value]
        return value

    try:
        return decode(document["object"])
    except KeyError as exc:
        raise checkpoint.CheckpointError(f"{path}: the document names an array {exc} the file lacks") from None
