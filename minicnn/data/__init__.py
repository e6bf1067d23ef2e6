"""Datasets, batching and augmentation: ``ShapesDataset`` (built in, nothing to download),
``CIFAR10`` and ``ImageFolder`` (from disk), ``DataLoader``, and the 2012 paper's transforms in
``minicnn.data.transforms``."""
from . import transforms
from .folders import CIFAR10, ImageFolder
from .loader import DataLoader, TensorDataset
from .shapes import CLASSES, ShapesDataset

__all__ = ["DataLoader", "TensorDataset", "ShapesDataset", "CLASSES", "CIFAR10", "ImageFolder", "transforms"]
