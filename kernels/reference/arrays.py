"""The array operations the autograd engine and the optimisers need, in plain NumPy (the CPU
backend's ``arrays.py`` does the same in reused memory):

    full(shape, value, dtype)   a new array filled with ``value``
    add(a, b)                   a + b, a new array (gradient accumulation)
    copy(a)                     a new array equal to ``a``
    take(store, key)            store.pop(key), as a new array: this backend reuses no memory
"""
import numpy as np


def full(shape, value, dtype):
    return np.full(shape, value, dtype=dtype)


def add(a, b):
    return a + b


def copy(a):
    return np.array(a, copy=True)


def take(store, key):
    return np.array(store.pop(key), copy=True)
