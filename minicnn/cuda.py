"""``minicnn.cuda.is_available()``: can tensors and modules move to "cuda"?"""
from .device import cuda_available as is_available
from .device import why_no_cuda

__all__ = ["is_available", "why_no_cuda"]
