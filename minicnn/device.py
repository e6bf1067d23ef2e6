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
from .kernels.cpu import workspace

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


def cuda_kernels():
    """The ``minicnn.kernels.cuda`` modules, imported on first use."""
    from .kernels.cuda import activation, adam, batchnorm, conv, dropout, launch, linear, lrn, pool, sgd, softmax

    return {"conv": conv, "pool": pool, "lrn": lrn, "activation": activation, "dropout": dropout,
            "linear": linear, "softmax": softmax, "batchnorm": batchnorm, "sgd": sgd, "adam": adam,
            "launch": launch}


def to_device(array):
    transfers["to_device"] += 1
    return _cuda().to_device(np.asarray(array, order="C"))  # (ascontiguousarray would make 0-d arrays 1-d)


def to_host(array):
    transfers["to_host"] += 1
    return array.copy_to_host()


def move(array, device):
    """The array on ``device`` (the same object if it is there already)."""
    if device_of(array) == device:
        return array
    return to_device(array) if device == "cuda" else to_host(array)


# ---- the few array operations autograd itself needs, on either device ---------------------------
def full(shape, value, dtype, device):
    if device == "cuda":
        return cuda_kernels()["launch"].full(shape, value, dtype)
    return np.full(shape, value, dtype=dtype)


def ones_like(array):
    if is_device_array(array):
        return cuda_kernels()["launch"].full(array.shape, 1, array.dtype)
    return np.ones_like(array)


def add(a, b):
    if is_device_array(a):
        return cuda_kernels()["launch"].add(a, b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return a + b
    out = workspace.empty(a.shape, a.dtype)  # reused memory: accumulating fc6's 151 MB gradient
    return np.add(a, b, out=out)             # into fresh memory page-faulted for 0.5 s


def copy(array):
    if is_device_array(array):
        out = _cuda().device_array_like(array)
        out.copy_to_device(array)
        return out
    out = workspace.empty(array.shape, array.dtype)  # reused memory: see kernels/cpu/workspace.py
    np.copyto(out, array)
    return out
