"""The array operations the autograd engine, the optimisers and tensor arithmetic need on device
arrays:

    full(shape, value, dtype)   a new device array filled with ``value``
    add(a, b)                   a + b, a new device array (gradient accumulation)
    copy(a)                     a new device array equal to ``a``
    upload(host)                a new device array holding a host array (``minicnn.device.to_device``)
    take(store, key)            store.pop(key), as a new device array (nothing here tracks who
                                else uses device memory, so a leaf's gradient is always a copy)
    binary, negative, power, sum, broadcast_to
                                tensor arithmetic with NumPy's broadcasting (``elementwise.py``)
"""
from .elementwise import add, binary, broadcast_to, negative, power, sum  # noqa: F401,A004
from .launch import empty, full, upload  # noqa: F401


def copy(a):
    out = empty(a.shape, a.dtype)
    out.copy_to_device(a)
    return out


def take(store, key):
    return copy(store.pop(key))
