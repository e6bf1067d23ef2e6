"""SGD with momentum and weight decay on the CPU: one fused pass over each parameter.
(``sgd_group_step`` updates a group's parameters one after the other: each pass already uses
every thread.)

    d = g + wd * p,   v = mu * v + d,   p = p - lr * v

(``kernels/reference/sgd.py`` has it in NumPy, three passes and temporaries.) Here
each element is read and written once, in a parallel loop over the flat arrays;
the constants come in the parameter's dtype, so float32 stays float32.
"""
from numba import njit, prange


@njit(parallel=True, cache=True)
def _sgd_step(param, grad, velocity, lr, momentum, weight_decay):
    for i in prange(param.size):
        v = momentum * velocity[i] + (grad[i] + weight_decay * param[i])
        velocity[i] = v
        param[i] -= lr * v


def sgd_step(param, grad, velocity, lr, momentum, weight_decay):
    """Update ``param`` and ``velocity`` in place."""
    t = param.dtype.type
    _sgd_step(param.reshape(-1), grad.reshape(-1), velocity.reshape(-1), t(lr), t(momentum), t(weight_decay))


def sgd_group_step(params, grads, velocities, lr, momentum, weight_decay):
    """``sgd_step`` for each parameter of one group (the lists in one order)."""
    for param, grad, velocity in zip(params, grads, velocities):
        sgd_step(param, grad, velocity, lr, momentum, weight_decay)
