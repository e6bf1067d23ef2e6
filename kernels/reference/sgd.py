"""One step of stochastic gradient descent with momentum and weight decay, as PyTorch defines it.

For a parameter p with gradient g, velocity v (zero before the first step), learning rate lr,
momentum mu and weight decay wd:

    d = g + wd * p          (L2 weight decay folded into the gradient)
    v = mu * v + d
    p = p - lr * v

The 2012 paper writes the same rule as v = 0.9 v - 0.0005 lr p - lr g, p = p + v: its v is
-lr times this one, which is the same update while lr is constant.
"""


def sgd_step(param, grad, velocity, lr, momentum, weight_decay):
    """Update ``param`` and ``velocity`` in place."""
    d = grad + weight_decay * param
    velocity *= momentum
    velocity += d
    param -= lr * velocity


def sgd_group_step(params, grads, velocities, lr, momentum, weight_decay):
    """``sgd_step`` for each parameter of one group (the lists in one order)."""
    for param, grad, velocity in zip(params, grads, velocities):
        sgd_step(param, grad, velocity, lr, momentum, weight_decay)
