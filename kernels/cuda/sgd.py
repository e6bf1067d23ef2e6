"""SGD with momentum and weight decay on the GPU: one grid-stride pass per parameter.

    d = g + wd * p,   v = mu * v + d,   p = p - lr * v

The same arithmetic as ``kernels/cpu/sgd.py``, on device arrays, in place: the
parameters never leave the GPU.
"""
from numba import cuda

from .launch import grid_1d, jit


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
    _sgd_step[blocks, threads](param.reshape(param.size), grad.reshape(grad.size), velocity.reshape(velocity.size),
                               t(lr), t(momentum), t(weight_decay))
