"""minicnn: a from-scratch CNN engine with hand-written kernels, and AlexNet layer by layer.

    import minicnn as mc
    x = mc.tensor(np.random.randn(2, 3, 32, 32).astype("float32"))
    w = mc.tensor(np.random.randn(8, 3, 3, 3).astype("float32") * 0.1, requires_grad=True)
    loss = mc.functional.relu(mc.functional.conv2d(x, w, padding=1)).mean()
    loss.backward()          # w.grad now holds d loss / d w
"""
import os

import numpy as _np

# Numba's OpenMP workers otherwise spin for milliseconds after every parallel loop,
# time a busy 2-core machine needs for BLAS (docs/numba.md). Must be set before numba loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# NumPy's OpenBLAS workers likewise spin after each matrix product (2^28 cycles by
# default) and took a core from the Numba kernel that ran next: im2col of AlexNet's
# conv2 took 105 ms right after a GEMM against 70 ms alone. 2^4 cycles puts them to sleep
# at once. OpenBLAS reads this when NumPy first loads it: import minicnn before numpy.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

from . import cuda, data, device, errors, functional, models, nn, optim, random  # noqa: E402
from .autograd import Function, no_grad, is_grad_enabled  # noqa: E402
from .errors import ArgumentError, DTypeError, MiniCNNError, ShapeError  # noqa: E402
from .gradcheck import gradcheck  # noqa: E402
from .kernels.backends import use_backend  # noqa: E402
from .random import manual_seed  # noqa: E402
from .serialization import load, save  # noqa: E402
from .tensor import Tensor, cat, from_numpy, ones, randn, stack, tensor, zeros  # noqa: E402

from . import utils  # noqa: E402  (torch.utils.data's place)

# PyTorch's dtype names, so that torch.tensor(x, dtype=torch.float64) reads the same here
float32, float64, int64 = _np.float32, _np.float64, _np.int64

__version__ = "0.1.0"
__all__ = [
    "Tensor", "tensor", "no_grad", "is_grad_enabled", "Function", "functional", "gradcheck", "errors",
    "MiniCNNError", "ShapeError", "ArgumentError", "DTypeError", "nn", "models", "random", "manual_seed", "cuda", "device", "optim", "data",
    "use_backend", "cat", "stack", "from_numpy", "zeros", "ones", "randn", "save", "load", "utils",
    "float32", "float64", "int64",
]
