"""minicnn: a from-scratch CNN engine with hand-written kernels, and AlexNet layer by layer.

    import minicnn as mc
    x = mc.tensor(np.random.randn(2, 3, 32, 32).astype("float32"))
    w = mc.tensor(np.random.randn(8, 3, 3, 3).astype("float32") * 0.1, requires_grad=True)
    loss = mc.functional.relu(mc.functional.conv2d(x, w, padding=1)).mean()
    loss.backward()          # w.grad now holds d loss / d w
"""
import os

import numpy as _np


def _start_numba_threads_passive():
    """Start Numba's thread pool now, with its OpenMP workers told to sleep when idle.

    Why: OpenMP workers spin for milliseconds after every parallel loop by default, and on a
    2-core machine that took a core from the BLAS product that ran next (AlexNet's training step
    was 15% slower: docs/numba.md). OpenMP reads its wait policy only from the environment, once,
    when its runtime loads, and Numba loads it with its thread pool. So the variable is set just
    for that moment and removed again: it reaches Numba's OpenMP runtime and no library loaded
    later (PyTorch ran 6-10% slower with it). A policy the user set is left as it is, and a pool
    that is already running (Numba's parallel code ran before minicnn was imported) keeps its own.
    """
    import numba

    if "OMP_WAIT_POLICY" in os.environ:
        return
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        numba.get_num_threads()  # loads the threading layer and starts its workers
    finally:
        del os.environ["OMP_WAIT_POLICY"]


_start_numba_threads_passive()

from . import cuda, data, device, errors, functional, models, nn, optim, random  # noqa: E402
from .autograd import Function, no_grad, is_grad_enabled  # noqa: E402
from .errors import ArgumentError, DTypeError, MiniCNNError, ShapeError  # noqa: E402
from .gradcheck import gradcheck  # noqa: E402
from .kernels.backends import use_backend  # noqa: E402
from .random import manual_seed  # noqa: E402
from .serialization import load, save  # noqa: E402
from .tensor import Tensor, cat, flatten, from_numpy, ones, randn, stack, tensor, zeros  # noqa: E402

from . import utils  # noqa: E402  (torch.utils.data's place)

# PyTorch's dtype names, so that torch.tensor(x, dtype=torch.float64) reads the same here
float32, float64, int64 = _np.float32, _np.float64, _np.int64

__version__ = "0.1.0"
__all__ = [
    "Tensor", "tensor", "no_grad", "is_grad_enabled", "Function", "functional", "gradcheck", "errors",
    "MiniCNNError", "ShapeError", "ArgumentError", "DTypeError", "nn", "models", "random", "manual_seed", "cuda", "device", "optim", "data",
    "use_backend", "cat", "stack", "flatten", "from_numpy", "zeros", "ones", "randn", "save", "load", "utils",
    "float32", "float64", "int64",
]
