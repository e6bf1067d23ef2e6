"""Layers and containers, shaped like ``torch.nn``."""
from . import init
from .layers import (BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Flatten, Linear, LocalResponseNorm, MaxPool2d, ReLU,
                     Sigmoid, Tanh)
from .module import Module, Parameter, Sequential

__all__ = [
    "Module", "Parameter", "Sequential", "Conv2d", "Linear", "MaxPool2d", "LocalResponseNorm", "ReLU", "Sigmoid",
    "Tanh", "Flatten", "Dropout", "BatchNorm1d", "BatchNorm2d", "init",
]
