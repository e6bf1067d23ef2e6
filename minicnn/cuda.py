"""``minicnn.cuda``: can tensors and modules move to "cuda"? And the device memory minicnn holds there.

    is_available()             whether "cuda" works (``why_no_cuda()`` says why not, in one line)
    memory_stats()             bytes in use, their peak, and bytes reserved (in use plus kept for reuse)
    reset_peak_memory_stats()  the peak starts again from what is in use now
    empty_cache()              gives the blocks kept for reuse back to the driver; returns how many bytes

minicnn keeps device memory that its arrays no longer need and hands it out again, as PyTorch's
caching allocator does (``kernels/cuda/memory.py`` says why): ``memory_stats()`` reads like
PyTorch's ``memory_allocated``, ``max_memory_allocated`` and ``memory_reserved``. Under the CUDA
simulator the pool is not used and every figure stays 0.
"""
from .device import cuda_available as is_available
from .device import why_no_cuda

__all__ = ["is_available", "why_no_cuda", "memory_stats", "reset_peak_memory_stats", "empty_cache"]


def _pool():
    from .kernels.cuda.memory import pool

    return pool


def memory_stats():
    """{"in_use_bytes", "peak_bytes", "reserved_bytes"} of minicnn's device memory pool."""
    return _pool().stats()


def reset_peak_memory_stats():
    _pool().reset_peak()


def empty_cache():
    """Gives the device blocks kept for reuse back to the driver; returns how many bytes that was."""
    return _pool().empty_cache()
