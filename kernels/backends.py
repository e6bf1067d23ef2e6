"""The one backend registry: which kernels run an op.

A backend is a set of modules with the same file names and the same function signatures:

    "reference"  kernels/reference/   readable NumPy, slow: the tests' oracle, and a whole network
                                      can run on it (``minicnn trace --backend reference``)
    "cpu"        kernels/cpu/         Numba loops and NumPy's BLAS: the default for arrays in memory
    "cuda"       kernels/cuda/        numba.cuda kernels on device arrays, imported on first use

Each backend has one module per op family (``conv``, ``pool``, ``lrn``, ``activation``,
``dropout``, ``linear``, ``softmax``, ``batchnorm``, ``sgd``, ``adam``) and ``arrays``: the
few array operations autograd and the optimisers need on that backend's arrays (``full``,
``add``, ``copy``, ``take``), which is where a backend's memory reuse stays hidden.

Arrays in host memory run on the *host backend*, "cpu" unless ``use_backend`` says
"reference"; device arrays always run on "cuda". Everything that picks kernels asks here:
``minicnn.functional`` (``for_device``), the optimisers and ``minicnn.device``.
"""
from __future__ import annotations

import importlib
import threading
from types import SimpleNamespace

from ..errors import ArgumentError

BACKENDS = ("reference", "cpu", "cuda")
HOST_BACKENDS = ("reference", "cpu")
MODULES = ("conv", "pool", "lrn", "activation", "dropout", "linear", "softmax", "batchnorm", "sgd", "adam", "arrays")

# What ``minicnn trace`` and ``minicnn train`` print when they run on the reference backend.
SLOW_NOTE = ("backend reference: every op runs its readable NumPy kernel (kernels/reference/), written to be "
             "read, not to be fast: slower than the cpu backend; the numbers are the same to rounding")

_loaded = {}
_state = threading.local()


def get(name):
    """The backend ``name``: a namespace of its modules (``get("cpu").conv.conv2d_forward``).
    "cuda" imports numba.cuda on this first call."""
    if name not in BACKENDS:
        raise ArgumentError(f"backend must be one of {', '.join(map(repr, BACKENDS))}, got {name!r}")
    if name not in _loaded:
        modules = {m: importlib.import_module(f"{__package__}.{name}.{m}") for m in MODULES}
        _loaded[name] = SimpleNamespace(name=name, **modules)
    return _loaded[name]


def host_backend():
    """The name of the backend that runs arrays in host memory: "cpu" or "reference"."""
    return getattr(_state, "host", "cpu")


def for_device(device):
    """The backend for tensors on ``device`` ("cpu": the host backend; "cuda")."""
    return get("cuda" if device == "cuda" else host_backend())


class use_backend:
    """Run the ops on host arrays with ``name``'s kernels ("reference" or "cpu").

    As a call it switches from now on; as a context manager it switches back on leaving::

        with minicnn.use_backend("reference"):     # AlexNet on the readable NumPy kernels
            loss = F.cross_entropy(net(x), labels)
        loss.backward()                            # the backward runs the kernels its forward ran

    An op records its kernels when its forward runs, so a graph's backward always runs on the
    backend of its forward. The choice is per thread.
    """

    def __init__(self, name):
        if name not in HOST_BACKENDS:
            raise ArgumentError(f"use_backend: the host backend must be 'reference' or 'cpu', got {name!r} "
                             "(tensors move to 'cuda' with .to('cuda'))")
        self.previous = host_backend()
        _state.host = name

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _state.host = self.previous
        return False
