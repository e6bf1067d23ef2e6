"""Datasets, batching and augmentation: ``ShapesDataset`` (built in, nothing to download),
``DataLoader``, and the 2012 paper's transforms in ``minicnn.data.transforms``."""
from . import transforms
from .loader import DataLoader
from .shapes import CLASSES, ShapesDataset

__all__ = ["DataLoader", "ShapesDataset", "CLASSES", "transforms"]
