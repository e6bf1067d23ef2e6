"""SGD with momentum and weight decay on the GPU, in place: the parameters never leave the GPU.

    d = g + wd * p,   v = mu * v + d,   p = p - lr * v

The same arithmetic as ``kernels/cpu/sgd.py``, on device arrays. ``sgd_step`` updates one
parameter (a grid-stride pass); ``sgd_group_step`` updates every parameter of a group in one
launch: the arrays go to the kernel as tuples, row y of the grid takes tensor y, and its blocks
stride over that tensor (blocks past a small tensor's end have nothing to do). A launch costs the
host tens of microseconds whatever it does, and AlexNet has 16 parameters. At most
``TENSORS_PER_LAUNCH`` tensors go in one launch: each array is several words of the kernel's
parameters, whose space is bounded. A row has as many blocks as the largest tensor needs, but no
more than the GPU keeps resident (``group_blocks``): at 65535 a row, the most a 1-D grid takes,
AlexNet's 16 rows launched a million blocks, 85% of them with nothing to do.
"""
import numpy as np
from numba import cuda

from .launch import THREADS, flat, grid_1d, jit, resident_blocks

TENSORS_PER_LAUNCH = 16


@jit
def _sgd_step(param, grad, velocity, lr, momentum, weight_decay):
    for i in range(cuda.grid(1), param.size, cuda.gridsize(1)):
        v = momentum * velocity[i] + (grad[i] + weight_decay * param[i])
        velocity[i] = v
        param[i] -= lr * v


def sgd_step(param, grad, velocity, lr, momentum, weight_decay):
    """Update ``param`` and ``velocity`` in place."""
    t = param.dtype.type
    blocks, threads = grid_1d(param.size)
    _sgd_step[blocks, threads](flat(param), flat(grad), flat(velocity),
                               t(lr), t(momentum), t(weight_decay))


@jit
def _sgd_group_step(params, grads, velocities, lr, momentum, weight_decay):
    param, grad, velocity = params[cuda.blockIdx.y], grads[cuda.blockIdx.y], velocities[cuda.blockIdx.y]
    stride = cuda.gridDim.x * cuda.blockDim.x
    for i in range(cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x, param.size, stride):
        v = momentum * velocity[i] + (grad[i] + weight_decay * param[i])
        velocity[i] = v
        param[i] -= lr * v


def sgd_group_step(params, grads, velocities, lr, momentum, weight_decay):
    """``sgd_step`` for each parameter of one group (the lists in one order), in one launch per
    ``TENSORS_PER_LAUNCH`` parameters of one dtype."""
    by_dtype = {}
    for members in zip(params, grads, velocities):
        by_dtype.setdefault(np.dtype(members[0].dtype), []).append(members)
    for dtype, members in by_dtype.items():
        t = dtype.type
        for first in range(0, len(members), TENSORS_PER_LAUNCH):
            chunk = members[first:first + TENSORS_PER_LAUNCH]
            flats = [tuple(flat(a) for a in arrays) for arrays in zip(*chunk)]  # params, grads, velocities
            blocks = group_blocks(max(p.size for p, _, _ in chunk), resident_blocks(THREADS))
            _sgd_group_step[(blocks, len(chunk)), THREADS](*flats, t(lr), t(momentum), t(weight_decay))


def group_blocks(largest, resident):
    """Blocks of a group launch's row: those the largest tensor needs (one of its elements a thread, up
    to the grid's 65535), but at most the ``resident`` blocks the GPU runs at once; each row's blocks
    stride over their tensor, so fewer blocks give the same updates."""
    return max(1, min(grid_1d(largest)[0], resident))
