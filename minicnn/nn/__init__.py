"""Layers and containers, shaped like ``torch.nn``."""
from .. import functional  # torch.nn.functional's place: the same module as minicnn.functional
from . import init
from .layers import (AdaptiveAvgPool2d, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Flatten, Linear, LocalResponseNorm, MaxPool2d, ReLU,
                     Sigmoid, Tanh)
from .losses import CrossEntropyLoss, MSELoss, NLLLoss
from .module import Module, ModuleDict, ModuleList, Parameter, Sequential

__all__ = [
    "Module", "Parameter", "Sequential", "Conv2d", "Linear", "MaxPool2d", "LocalResponseNorm", "ReLU", "Sigmoid",
    "Tanh", "Flatten", "Dropout", "BatchNorm1d", "BatchNorm2d", "init", "functional", "ModuleList", "ModuleDict",
    "CrossEntropyLoss", "NLLLoss", "MSELoss", "AvgPool2d", "AdaptiveAvgPool2d",
]
