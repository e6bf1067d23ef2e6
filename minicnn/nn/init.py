"""Weight initialisers, each seeded (pass ``rng``, or the global generator of
``minicnn.random.manual_seed`` is used).

- ``normal_(t, std)``: N(0, std^2), the 2012 paper's choice with std = 0.01.
- ``kaiming_normal_(t)``: He et al. 2015, N(0, 2 / fan_in): keeps the variance of
  activations constant through ReLU layers, so deep nets train from the start.
- ``constant_(t, value)``.
- ``paper_init(model)``: the 2012 paper's scheme: every weight N(0, 0.01); biases 1 in
  conv2, conv4, conv5, fc6 and fc7 (to give the ReLUs positive inputs early on), 0 elsewhere.
- ``kaiming_init(model)``: Kaiming weights for conv and linear layers, zero biases.

fan_in is ``in_channels / groups * kh * kw`` for a convolution, ``in_features`` for a linear layer.
"""
import contextlib

import numpy as np

from .. import random as _random

PAPER_BIAS_ONE = ("conv2", "conv4", "conv5", "fc6", "fc7")


_defaults = {"enabled": True}


@contextlib.contextmanager
def no_default_init():
    """Within this block, new Conv2d/Linear layers leave their weights at zero instead of drawing
    Kaiming weights: for builders that initialise every layer themselves afterwards (drawing 61
    million numbers twice costs AlexNet a second)."""
    previous = _defaults["enabled"]
    _defaults["enabled"] = False
    try:
        yield
    finally:
        _defaults["enabled"] = previous


def default_init_enabled():
    return _defaults["enabled"]


def _rng(rng):
    return _random.generator() if rng is None else rng


def normal_(tensor, std, rng=None):
    tensor.data = _rng(rng).standard_normal(tensor.shape, dtype=tensor.dtype) * tensor.dtype.type(std)
    return tensor


def constant_(tensor, value):
    tensor.data = np.full(tensor.shape, value, dtype=tensor.dtype)
    return tensor


def fan_in(weight):
    return int(np.prod(weight.shape[1:]))


def kaiming_normal_(tensor, rng=None):
    return normal_(tensor, np.sqrt(2.0 / fan_in(tensor)), rng)


def _weighted_layers(model):
    from .layers import Conv2d, Linear

    for name, module in model.named_modules():
        if isinstance(module, (Conv2d, Linear)):
            yield name, module


def paper_init(model, rng=None):
    """Weights N(0, 0.01); bias 1 in conv2, conv4, conv5, fc6, fc7; 0 elsewhere."""
    for name, layer in _weighted_layers(model):
        normal_(layer.weight, 0.01, rng)
        if layer.bias is not None:
            constant_(layer.bias, 1.0 if name.split(".")[-1] in PAPER_BIAS_ONE else 0.0)
    return model


def kaiming_init(model, rng=None):
    """Kaiming-normal weights, zero biases."""
    for _, layer in _weighted_layers(model):
        kaiming_normal_(layer.weight, rng)
        if layer.bias is not None:
            constant_(layer.bias, 0.0)
    return model
