"""The array operations the autograd engine and the optimisers need on device arrays:

    full(shape, value, dtype)   a new device array filled with ``value``
    add(a, b)                   a + b, a new device array (gradient accumulation)
    copy(a)                     a new device array equal to ``a``
    take(store, key)            store.pop(key), as a new device array (nothing here tracks who
                                else uses device memory, so a leaf's gradient is always a copy)
"""
from numba import cuda

from .launch import add, full  # noqa: F401  (the element-wise kernels live with the launch helpers)


def copy(a):
    out = cuda.device_array_like(a)
    out.copy_to_device(a)
    return out


def take(store, key):
    return copy(store.pop(key))
