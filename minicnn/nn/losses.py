"""Losses as modules, shaped like ``torch.nn``'s: ``CrossEntropyLoss``, ``NLLLoss``, ``MSELoss``.

    CrossEntropyLoss(logits, labels) = mean_n -log softmax(logits_n)[labels_n]   (functional.cross_entropy)
    NLLLoss(log_probs, labels)       = mean_n -log_probs[n, labels_n]
    MSELoss(x, y)                    = mean of (x - y)^2 over every element

The mean over the batch is the only reduction (PyTorch's default, ``reduction="mean"``).
"""
from __future__ import annotations

import numpy as np

from .. import functional as F
from ..errors import ArgumentError, DTypeError, ShapeError
from ..tensor import Tensor
from .module import Module


def _mean_only(op, reduction):
    if reduction != "mean":
        raise ArgumentError(f"{op}: only reduction='mean' is built, got {reduction!r}")


class CrossEntropyLoss(Module):
    def __init__(self, reduction="mean"):
        super().__init__()
        _mean_only("CrossEntropyLoss", reduction)

    def forward(self, logits, labels):
        return F.cross_entropy(logits, labels)


class NLLLoss(Module):
    """For log-probabilities (a ``log_softmax`` output): picks each row's label entry, through
    indexing, so the gradient is -1/N there and 0 elsewhere."""

    def __init__(self, reduction="mean"):
        super().__init__()
        _mean_only("NLLLoss", reduction)

    def forward(self, log_probs, labels):
        labels = labels.numpy() if isinstance(labels, Tensor) else np.asarray(labels)
        if log_probs.ndim != 2 or labels.shape != (log_probs.shape[0],):
            raise ShapeError(f"NLLLoss: expected log-probabilities (N, classes) and labels (N,), got "
                             f"{log_probs.shape} and {labels.shape}")
        if labels.dtype.kind not in "iu":
            raise DTypeError(f"NLLLoss: labels must be integers, got dtype {labels.dtype}")
        if labels.size and (labels.min() < 0 or labels.max() >= log_probs.shape[1]):
            raise ArgumentError(f"NLLLoss: labels must be in [0, {log_probs.shape[1]}), got {labels.min()}..{labels.max()}")
        return -log_probs[np.arange(len(labels)), labels].mean()


class MSELoss(Module):
    def __init__(self, reduction="mean"):
        super().__init__()
        _mean_only("MSELoss", reduction)

    def forward(self, x, y):
        if tuple(x.shape) != tuple(np.shape(y.data if isinstance(y, Tensor) else y)):
            raise ShapeError(f"MSELoss: the two must have one shape, got {x.shape} and "
                             f"{np.shape(y.data if isinstance(y, Tensor) else y)}")
        return ((x - y) ** 2).mean()
