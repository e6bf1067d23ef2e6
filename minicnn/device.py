"""Where a tensor's array lives: "cpu" (a NumPy array) or "cuda" (a Numba device array).

The GPU side needs the ``numba-cuda`` package (``pip install 'minicnn[cuda]'``) and
either an NVIDIA GPU or Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``, set
before anything imports numba). Every copy between host and device goes through
``to_device``/``to_host`` and is counted in ``transfers``, so a test can check
that a forward and backward pass makes none between layers.
"""
from __future__ import annotations

import numpy as np

from .errors import ArgumentError
from .kernels import backends

DEVICES = ("cpu", "cuda")
transfers = {"to_device": 0, "to_host": 0}


def is_device_array(array):
    return hasattr(array, "copy_to_host")


def device_of(array):
    return "cuda" if is_device_array(array) else "cpu"


def check_device(device, op="to"):
    if device not in DEVICES:
        raise ArgumentError(f"{op}: device must be 'cpu' or 'cuda', got {device!r}")
    if device == "cuda" and not cuda_available():
        raise ArgumentError(f"{op}: no CUDA device: {why_no_cuda()}")
    return device


def _cuda():
    from numba import cuda

    return cuda


def why_no_cuda():
    """One line saying why the cuda device cannot be used ('' when it can)."""
    try:
        cuda = _cuda()
    except ImportError:
        return "numba's CUDA support is not importable (pip install 'minicnn[cuda]')"
    try:
        if cuda.is_available():
            return ""
    except Exception as exc:  # the driver's own error, in one line
        return f"the CUDA driver failed: {exc}"
    return ("no NVIDIA GPU or driver was found (set NUMBA_ENABLE_CUDASIM=1 before starting Python to use "
            "Numba's CUDA simulator)")


def cuda_available():
    return why_no_cuda() == ""


def to_device(array):
    """A device array holding ``array``, on a block of minicnn's device memory pool (kernels/cuda/memory.py)."""
    transfers["to_device"] += 1
    # (ascontiguousarray would make 0-d arrays 1-d)
    return backends.for_device("cuda").arrays.upload(np.asarray(array, order="C"))


def to_host(array):
    transfers["to_host"] += 1
    return array.copy_to_host()


def move(array, device):
    """The array on ``device`` (the same object if it is there already)."""
    if device_of(array) == device:
        return array
    return to_device(array) if device == "cuda" else to_host(array)


# ---- the few array operations autograd and the optimisers need, on the array's own backend -------
def arrays_of(array):
    """The ``arrays`` module of the backend that holds ``array`` (kernels/*/arrays.py)."""
    return backends.for_device(device_of(array)).arrays


def full(shape, value, dtype, device):
    return backends.for_device(device).arrays.full(shape, value, dtype)


def ones_like(array):
    return arrays_of(array).full(array.shape, 1, array.dtype)


def add(a, b):
    return arrays_of(a).add(a, b)


def copy(array):
    return arrays_of(array).copy(array)
