"""Datasets and batching: ``ShapesDataset`` (built in, nothing to download) and ``DataLoader``."""
from .loader import DataLoader
from .shapes import CLASSES, ShapesDataset

__all__ = ["DataLoader", "ShapesDataset", "CLASSES"]
