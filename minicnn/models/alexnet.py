"""AlexNet, layer by layer, and its variants.

- ``alexnet2012``: Krizhevsky, Sutskever and Hinton's 2012 network as the paper
  describes it: 227x227x3 input; conv1 96@11x11/4; conv2 256@5x5 pad 2 in two
  groups (the paper's two GPUs); conv3 384@3x3 pad 1 (sees both groups);
  conv4 384@3x3 and conv5 256@3x3, pad 1, two groups; ReLU after every conv and
  fc; LRN after the ReLU of conv1 and conv2, then overlapping 3x3/2 max pooling
  (paper order conv, ReLU, LRN, pool); pooling after conv5; fc6 9216->4096 and
  fc7 4096->4096 with ReLU and dropout 0.5; fc8 4096->classes. 60,965,224
  parameters with 1000 classes.
- ``alexnet2012_caffe``: the same layers with pooling *before* LRN (conv, ReLU,
  pool, LRN), the order of Caffe's reference CaffeNet and of many write-ups. Same
  parameters and feature-map sizes; LRN then runs on 4x fewer pixels.
- ``alexnet_bn``: the popular single-GPU Keras variant of the write-up this
  project starts from: no groups, "same" padding, ReLU then batch norm after each
  conv, dropout 0.25 after each pool and each fc, L2 regularisation 0.0002 on
  every conv/fc weight, softmax over the classes (folded into the loss here: the
  model returns logits and ``cross_entropy`` applies log-softmax). As in that
  listing, conv5 has no activation and no batch norm.
- ``alexnet_small``: the 2012 structure (five convs, grouped conv2/4/5, LRN,
  overlapping pooling, three fc layers with dropout) scaled down for 32-64 pixel
  images, small enough to train on two CPU cores in minutes.

Every model is a ``Sequential`` of named layers (``conv1``, ``relu1``, ``lrn1``,
``pool1``, ... ``fc8``) with ``input_size``, a ``notes`` dict (remarks the
summary prints beside a layer) and ``weight_decay`` (the L2 factor a training
loop should apply; 0 where the model has none of its own).
"""
from __future__ import annotations

import numpy as np

from ..errors import ArgumentError
from ..functional import conv2d_padding
from ..nn import (BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Flatten, Linear, LocalResponseNorm, MaxPool2d, ReLU,
                  Sequential, Sigmoid, Tanh)
from ..nn import init as initialisers


class Network(Sequential):
    """A Sequential with what a summary and a training loop need to know about it."""

    def __init__(self, name, layers, input_size, notes=None, weight_decay=0.0):
        super().__init__(*layers)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "input_size", tuple(input_size))
        object.__setattr__(self, "notes", dict(notes or {}))
        object.__setattr__(self, "weight_decay", float(weight_decay))

    def regularization_loss(self):
        """weight_decay * sum of squared conv/fc weights (Keras' ``l2(reg)``; biases and
        batch-norm parameters excluded). A Tensor, so it can be added to the loss."""
        total = None
        for name, p in self.named_parameters():
            if name.endswith(".weight") and p.ndim in (2, 4):
                term = (p * p).sum()
                total = term if total is None else total + term
        return total * self.weight_decay

    def extra_repr(self):
        return self.name


def conv_out(size, kernel, stride=1, padding=0):
    """Output size of a convolution or pooling window: (size + 2p - k) // s + 1."""
    return (size + 2 * padding - kernel) // stride + 1


# The smallest input each model takes: its last pooling must still see one 3x3 window
# (alexnet_bn: ceil(n / 4) -> pool 3/2 three times, 57 -> 15 -> 7 -> 3 -> 1).
MIN_INPUT_SIZE = {"alexnet2012": 67, "alexnet2012_caffe": 67, "alexnet_bn": 57, "alexnet_small": 15}


# The paper's ablation switches each model takes (alexnet_bn has batch norm, no LRN to remove).
ABLATIONS = {"alexnet2012": ("dropout", "lrn", "overlap"), "alexnet2012_caffe": ("dropout", "lrn", "overlap"),
             "alexnet_bn": ("dropout", "overlap"), "alexnet_small": ("dropout", "lrn", "overlap")}


# The activation after each conv and fc layer: the paper's ReLU, or the saturating ones it was
# compared with ("ReLUs train several times faster than their equivalents with tanh units").
ACTIVATIONS = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid}


def _activation(model, name):
    """A function i -> (layer name, layer): ("relu3", ReLU()), or ("tanh3", Tanh())."""
    if name not in ACTIVATIONS:
        raise ArgumentError(f"{model}: activation must be one of {', '.join(ACTIVATIONS)}, got {name!r}")
    return lambda i: (f"{name}{i}", ACTIVATIONS[name]())


def _check_input_size(model, size, minimum):
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < minimum:
        raise ArgumentError(f"{model}: input_size must be an integer >= {minimum}, got {size!r}")
    return int(size)


def _check_classes(model, num_classes):
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ArgumentError(f"{model}: num_classes must be a positive integer, got {num_classes!r}")
    return int(num_classes)


def _initialise(model, scheme, seed):
    rng = np.random.default_rng(seed)
    if scheme == "paper":
        initialisers.paper_init(model, rng)
    elif scheme == "kaiming":
        initialisers.kaiming_init(model, rng)
    else:
        raise ArgumentError(f"{model.name}: init must be 'paper' or 'kaiming', got {scheme!r}")
    for _, module in model.named_modules():
        if isinstance(module, Dropout):
            module.seed, module.calls = int(rng.integers(0, 2**63)), 0
    return model


def _check_ablations(model, dropout, lrn, overlap):
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ArgumentError(f"{model}: dropout must be a probability in [0, 1), got {dropout!r}")
    for name, value in (("lrn", lrn), ("overlap", overlap)):
        if not isinstance(value, bool):
            raise ArgumentError(f"{model}: {name} must be True or False, got {value!r}")
    return 3 if overlap else 2  # the pooling window: overlapping 3x3/2, or the paper's comparison 2x2/2


def _alexnet2012_layers(num_classes, input_size, pool_before_lrn, act, dropout, lrn, window):
    s1 = conv_out(input_size, 11, 4)  # 227 -> 55
    p1 = conv_out(s1, window, 2)  # 55 -> 27 (3x3/2 and 2x2/2 alike: every map here has an odd size)
    p2 = conv_out(p1, window, 2)  # 27 -> 13
    p5 = conv_out(p2, window, 2)  # 13 -> 6

    def block(i, conv):
        norm = [(f"lrn{i}", LocalResponseNorm(5, 1e-4, 0.75, 2.0))] if lrn else []
        pool = [(f"pool{i}", MaxPool2d(window, 2))]
        return [(f"conv{i}", conv), act(i)] + (pool + norm if pool_before_lrn else norm + pool)

    def drop(i):
        return [(f"drop{i}", Dropout(dropout))] if dropout else []

    return [
        *block(1, Conv2d(3, 96, 11, stride=4)),
        *block(2, Conv2d(96, 256, 5, padding=2, groups=2)),
        ("conv3", Conv2d(256, 384, 3, padding=1)), act(3),
        ("conv4", Conv2d(384, 384, 3, padding=1, groups=2)), act(4),
        ("conv5", Conv2d(384, 256, 3, padding=1, groups=2)), act(5),
        ("pool5", MaxPool2d(window, 2)),
        ("flatten", Flatten()),
        ("fc6", Linear(256 * p5 * p5, 4096)), act(6), *drop(6),
        ("fc7", Linear(4096, 4096)), act(7), *drop(7),
        ("fc8", Linear(4096, num_classes)),
    ]


_2012_NOTES = {
    "conv2": "groups=2: each half of the 256 filters sees only its own 48 input channels (GPU 1 / GPU 2)",
    "conv3": "no groups: the one layer where the two GPUs' halves meet",
    "conv4": "groups=2",
    "conv5": "groups=2",
}


def _with_fc6_share(notes, layers):
    """The notes, with fc6's share of the parameters counted from these layers (it depends on the
    input size: 62% at 227 px, 53% at 224)."""
    sizes = {name: sum(p.size for p in layer.parameters()) for name, layer in layers}
    total = sum(sizes.values())
    return dict(notes, fc6=f"the largest layer: {sizes['fc6'] / total:.0%} of all parameters "
                           f"({sizes['fc6']:,} of {total:,})")


def alexnet2012(num_classes=1000, input_size=227, *, init="paper", seed=0, activation="relu", dropout=0.5,
                lrn=True, overlap=True):
    """The 2012 paper's AlexNet (conv, ReLU, LRN, pool). 60,965,224 parameters for 1000 classes.
    The paper's ablations, each one switch: ``dropout=0`` drops the dropout layers, ``lrn=False``
    the two LRN layers, ``overlap=False`` pools with 2x2/2 windows (the same map sizes here)."""
    num_classes = _check_classes("alexnet2012", num_classes)
    input_size = _check_input_size("alexnet2012", input_size, MIN_INPUT_SIZE["alexnet2012"])
    window = _check_ablations("alexnet2012", dropout, lrn, overlap)
    with initialisers.no_default_init():  # _initialise draws every weight below
        layers = _alexnet2012_layers(num_classes, input_size, False, _activation("alexnet2012", activation),
                                     dropout, lrn, window)
    notes = _with_fc6_share(_2012_NOTES, layers)
    return _initialise(Network("alexnet2012", layers, (3, input_size, input_size), notes), init, seed)


def alexnet2012_caffe(num_classes=1000, input_size=227, *, init="paper", seed=0, activation="relu", dropout=0.5,
                      lrn=True, overlap=True):
    """The 2012 network in CaffeNet's order: conv, ReLU, pool, LRN (pooling before normalising);
    the same ablation switches as ``alexnet2012``."""
    num_classes = _check_classes("alexnet2012_caffe", num_classes)
    input_size = _check_input_size("alexnet2012_caffe", input_size, MIN_INPUT_SIZE["alexnet2012_caffe"])
    window = _check_ablations("alexnet2012_caffe", dropout, lrn, overlap)
    with initialisers.no_default_init():
        layers = _alexnet2012_layers(num_classes, input_size, True, _activation("alexnet2012_caffe", activation),
                                     dropout, lrn, window)
    notes = dict(_with_fc6_share(_2012_NOTES, layers),
                 **({"lrn1": "after pool1 in this order (the paper normalises before pooling)"} if lrn else {}))
    return _initialise(Network("alexnet2012_caffe", layers, (3, input_size, input_size), notes), init, seed)


def alexnet_bn(num_classes=1000, input_size=227, *, init="kaiming", seed=0, activation="relu", dropout=0.25,
               overlap=True):
    """The write-up's Keras AlexNet: batch norm instead of LRN, no groups, "same" padding,
    dropout 0.25, L2 0.0002. Keras' BatchNormalization defaults are kept: eps 1e-3 and a
    running average that keeps 0.99 of the old value (momentum 0.01 in PyTorch's terms).
    Ablations: ``dropout=0`` drops the dropout layers, ``overlap=False`` pools 2x2/2 (57 -> 28 ->
    14 -> 7 instead of 28 -> 13 -> 6: not the same sizes here; it has no LRN to switch off)."""
    num_classes = _check_classes("alexnet_bn", num_classes)
    act = _activation("alexnet_bn", activation)
    input_size = _check_input_size("alexnet_bn", input_size, MIN_INPUT_SIZE["alexnet_bn"])
    window = _check_ablations("alexnet_bn", dropout, True, overlap)
    s1 = -(-input_size // 4)  # "same" at stride 4: ceil(227 / 4) = 57
    (top, bottom), _ = conv2d_padding("same", (input_size, input_size), (11, 11), (4, 4))
    p1 = conv_out(s1, window, 2)  # 57 -> 28
    p2 = conv_out(p1, window, 2)  # 28 -> 13
    p5 = conv_out(p2, window, 2)  # 13 -> 6

    def bn2d(c):
        return BatchNorm2d(c, eps=1e-3, momentum=0.01)

    def bn1d(c):
        return BatchNorm1d(c, eps=1e-3, momentum=0.01)

    def drop(i):
        return [(f"drop{i}", Dropout(dropout))] if dropout else []

    with initialisers.no_default_init():
        layers = [
            ("conv1", Conv2d(3, 96, 11, stride=4, padding="same")), act(1), ("bn1", bn2d(96)),
            ("pool1", MaxPool2d(window, 2)), *drop(1),
            ("conv2", Conv2d(96, 256, 5, padding="same")), act(2), ("bn2", bn2d(256)),
            ("pool2", MaxPool2d(window, 2)), *drop(2),
            ("conv3", Conv2d(256, 384, 3, padding="same")), act(3), ("bn3", bn2d(384)),
            ("conv4", Conv2d(384, 384, 3, padding="same")), act(4), ("bn4", bn2d(384)),
            ("conv5", Conv2d(384, 256, 3, padding="same")),
            ("pool5", MaxPool2d(window, 2)), *drop(5),
            ("flatten", Flatten()),
            ("fc6", Linear(256 * p5 * p5, 4096)), act(6), ("bn6", bn1d(4096)), *drop(6),
            ("fc7", Linear(4096, 4096)), act(7), ("bn7", bn1d(4096)), *drop(7),
            ("fc8", Linear(4096, num_classes)),
        ]
    notes = {
        "conv1": f"'same' padding at stride 4: output ceil({input_size} / 4) = {s1}, with {top} zero rows and "
                 f"columns before the image and {bottom} after",
        "conv5": "no activation and no batch norm here, exactly as the write-up's Keras listing has it",
        "fc8": "the listing's final softmax is applied by the loss (cross_entropy takes these logits)",
    }
    return _initialise(Network("alexnet_bn", layers, (3, input_size, input_size), notes, weight_decay=2e-4),
                       init, seed)


def alexnet_small(num_classes=10, input_size=32, *, width=1.0, init="kaiming", seed=0, dropout=0.5, lrn=True,
                  overlap=True, activation="relu"):
    """AlexNet's structure for 32-64 pixel images: five convs (conv2/4/5 in two groups), LRN
    and overlapping 3x3/2 pooling after conv1 and conv2, pooling after conv5, fc layers of
    256 with dropout 0.5. Images of 64 pixels and more use stride 2 in conv1. ``width``
    scales every layer's channels and features (0.25 makes a network small enough for the
    CUDA simulator).

    The paper's ablations, each one switch: ``dropout=0`` drops the dropout layers,
    ``lrn=False`` the two LRN layers, ``overlap=False`` pools with non-overlapping 2x2/2
    windows instead of 3x3/2 (the paper's comparison: "s = z = 2")."""
    num_classes = _check_classes("alexnet_small", num_classes)
    act = _activation("alexnet_small", activation)
    input_size = _check_input_size("alexnet_small", input_size, MIN_INPUT_SIZE["alexnet_small"])
    if not isinstance(width, (int, float)) or not 0 < width <= 4:
        raise ArgumentError(f"alexnet_small: width must be a number in (0, 4], got {width!r}")

    def ch(count):  # an even number of channels, so that two groups split them evenly
        return max(2, 2 * round(count * width / 2))

    c1, c2, c3, c5, f = ch(48), ch(128), ch(192), ch(128), ch(256)
    window = _check_ablations("alexnet_small", dropout, lrn, overlap)
    stride = 2 if input_size >= 64 else 1
    s1 = conv_out(input_size, 5, stride, 2)
    p1 = conv_out(s1, window, 2)
    p2 = conv_out(p1, window, 2)
    p5 = conv_out(p2, window, 2)
    if p5 < 1:
        raise ArgumentError(f"alexnet_small: input_size {input_size} is too small for three {window}x{window}/2 poolings")

    def norm(i):
        return [(f"lrn{i}", LocalResponseNorm(5, 1e-4, 0.75, 2.0))] if lrn else []

    def drop(i):
        return [(f"drop{i}", Dropout(dropout))] if dropout else []

    with initialisers.no_default_init():
        layers = [
            ("conv1", Conv2d(3, c1, 5, stride=stride, padding=2)), act(1),
            *norm(1), ("pool1", MaxPool2d(window, 2)),
            ("conv2", Conv2d(c1, c2, 5, padding=2, groups=2)), act(2),
            *norm(2), ("pool2", MaxPool2d(window, 2)),
            ("conv3", Conv2d(c2, c3, 3, padding=1)), act(3),
            ("conv4", Conv2d(c3, c3, 3, padding=1, groups=2)), act(4),
            ("conv5", Conv2d(c3, c5, 3, padding=1, groups=2)), act(5),
            ("pool5", MaxPool2d(window, 2)),
            ("flatten", Flatten()),
            ("fc6", Linear(c5 * p5 * p5, f)), act(6), *drop(6),
            ("fc7", Linear(f, f)), act(7), *drop(7),
            ("fc8", Linear(f, num_classes)),
        ]
    return _initialise(Network("alexnet_small", layers, (3, input_size, input_size)), init, seed)


MODELS = {
    "alexnet2012": alexnet2012,
    "alexnet2012_caffe": alexnet2012_caffe,
    "alexnet_bn": alexnet_bn,
    "alexnet_small": alexnet_small,
}


def get(name, **kwargs):
    """Build a model by name: ``get("alexnet_small", num_classes=10, input_size=32)``."""
    if name not in MODELS:
        raise ArgumentError(f"models: unknown model {name!r}; choose from {', '.join(MODELS)}")
    return MODELS[name](**kwargs)

