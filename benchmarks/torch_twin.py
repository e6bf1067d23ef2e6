"""The PyTorch twin of a minicnn network: the same layers, with minicnn's weights copied in.

Used as the outside oracle by the tests (tests/test_models.py, tests/apps/test_train.py) and as the
baseline by benchmarks/alexnet_cpu.py. PyTorch's LRN divides alpha by the window size n, so the
twin passes alpha * n; TensorFlow-style "same" padding becomes an explicit ZeroPad2d; dropout
becomes the identity (comparisons run without it), except in ``torch_twin``, the twin the speed
benchmarks time, which keeps it so that both do the same work.
"""
import numpy as np

import minicnn as mc
from minicnn import functional as F
from minicnn import nn


def torch_alexnet(torch, ours):
    """The same network in PyTorch, with our weights copied in."""
    tnn = torch.nn
    layers = []
    for name, m in ours.named_children():
        if isinstance(m, nn.Conv2d):
            t = tnn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, 0 if m.padding == "same" else m.padding,
                           groups=m.groups)
            if m.padding == "same":  # TensorFlow's rule, which may pad one more after than before
                (top, bottom), (left, right) = F.conv2d_padding("same", _input_hw(ours, name), m.kernel_size, m.stride)
                layers.append(tnn.ZeroPad2d((left, right, top, bottom)))
        elif isinstance(m, nn.Linear):
            t = tnn.Linear(m.in_features, m.out_features)
        elif isinstance(m, nn.LocalResponseNorm):
            t = tnn.LocalResponseNorm(m.size, alpha=m.alpha * m.size, beta=m.beta, k=m.k)
        elif isinstance(m, nn.MaxPool2d):
            t = tnn.MaxPool2d(m.kernel_size, m.stride)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            t = (tnn.BatchNorm1d if isinstance(m, nn.BatchNorm1d) else tnn.BatchNorm2d)(
                m.num_features, eps=m.eps, momentum=m.momentum)
        elif isinstance(m, nn.Dropout):
            t = tnn.Identity()  # parity is checked without dropout
        else:
            t = {nn.ReLU: tnn.ReLU, nn.Flatten: tnn.Flatten}[type(m)]()
        for pname, p in m.named_parameters():
            getattr(t, pname).data = torch.tensor(p.data)
        layers.append(t)
    return tnn.Sequential(*layers)


def torch_twin(torch, ours):
    """``torch_alexnet`` with its dropout layers kept (the speed benchmarks: the same work as ours)."""
    twin = torch_alexnet(torch, ours)
    for i, layer in enumerate(ours.children()):
        if isinstance(layer, nn.Dropout):
            twin[i] = torch.nn.Dropout(layer.p)
    return twin


def _input_hw(model, layer_name):
    """Spatial size entering a layer, from a no-grad forward of zeros."""
    x = mc.tensor(np.zeros((1, *model.input_size), np.float32))
    with mc.no_grad():
        for name, m in model.named_children():
            if name == layer_name:
                return x.shape[2:]
            x = m(x) if not isinstance(m, nn.Dropout) else x
    raise KeyError(layer_name)
