"""The array operations the autograd engine and the optimisers need on this backend's arrays
(NumPy arrays; large ones in the reused memory of ``workspace.py``):

    full(shape, value, dtype)   a new array filled with ``value``
    add(a, b)                   a + b, a new array (gradient accumulation)
    copy(a)                     a new array equal to ``a``
    take(store, key)            store.pop(key) as it is where nothing else uses it, else a copy

``take`` is how a leaf tensor keeps its gradient without a copy (AlexNet: 244 MB a step not
copied); ``workspace.take`` says how it knows that nothing else uses the array.
"""
import numpy as np

from . import workspace
from .workspace import take  # noqa: F401  (this backend's memory reuse: see its docstring)


def full(shape, value, dtype):
    return np.full(shape, value, dtype=dtype)


def add(a, b):
    if a.shape != b.shape or a.dtype != b.dtype:
        return a + b
    # reused memory: accumulating fc6's 151 MB gradient into fresh memory page-faulted for 0.5 s
    return np.add(a, b, out=workspace.empty(a.shape, a.dtype))


def copy(a):
    out = workspace.empty(a.shape, a.dtype)
    np.copyto(out, a)
    return out
