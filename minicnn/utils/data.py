"""``torch.utils.data``'s names for minicnn's data tools (the same objects as ``minicnn.data``'s)."""
from ..data.loader import DataLoader, TensorDataset

__all__ = ["DataLoader", "TensorDataset"]
