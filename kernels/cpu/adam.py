"""Adam on the CPU: one fused parallel pass per parameter.

    d = g + wd * p,   m = b1 m + (1 - b1) d,   v = b2 v + (1 - b2) d^2
    p = p - lr * (m / c1) / (sqrt(v / c2) + eps),   c1 = 1 - b1^t, c2 = 1 - b2^t

(``kernels/reference/adam.py`` explains it.) Each element is read and written once;
the constants come in the parameter's dtype.
"""
import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=True)
def _adam_step(param, grad, m, v, lr, beta1, beta2, eps, weight_decay, c1, c2, one):
    for i in prange(param.size):
        d = grad[i] + weight_decay * param[i]
        mi = beta1 * m[i] + (one - beta1) * d
        vi = beta2 * v[i] + (one - beta2) * d * d
        m[i] = mi
        v[i] = vi
        param[i] -= lr * (mi / c1) / (np.sqrt(vi / c2) + eps)


def adam_step(param, grad, m, v, lr, beta1, beta2, eps, weight_decay, c1, c2):
    """Update ``param``, ``m`` and ``v`` in place."""
    t = param.dtype.type
    _adam_step(param.reshape(-1), grad.reshape(-1), m.reshape(-1), v.reshape(-1), t(lr), t(beta1), t(beta2), t(eps),
               t(weight_decay), t(c1), t(c2), t(1))
