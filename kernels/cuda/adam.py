"""Adam on the GPU: the fused update of ``kernels/cpu/adam.py``, one grid-stride pass per parameter."""
import math

from numba import cuda

from .launch import flat, grid_1d, jit


@jit
def _adam_step(param, grad, m, v, lr, beta1, beta2, eps, weight_decay, c1, c2, one):
    for i in range(cuda.grid(1), param.size, cuda.gridsize(1)):
        d = grad[i] + weight_decay * param[i]
        mi = beta1 * m[i] + (one - beta1) * d
        vi = beta2 * v[i] + (one - beta2) * d * d
        m[i] = mi
        v[i] = vi
        param[i] -= lr * (mi / c1) / (math.sqrt(vi / c2) + eps)


def adam_step(param, grad, m, v, lr, beta1, beta2, eps, weight_decay, c1, c2):
    """Update ``param``, ``m`` and ``v`` in place."""
    t = param.dtype.type
    blocks, threads = grid_1d(param.size)
    _adam_step[blocks, threads](flat(param), flat(grad), flat(m), flat(v), t(lr), t(beta1), t(beta2), t(eps),
                                t(weight_decay), t(c1), t(c2), t(1))
