"""Where a PyTorch user looks for the data tools: ``minicnn.utils.data`` (``torch.utils.data``)."""
from . import data

__all__ = ["data"]
