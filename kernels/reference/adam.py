"""One Adam step (Kingma and Ba, 2015), as PyTorch computes it, with L2 weight decay.

At step t (1, 2, ...), for a parameter p with gradient g and moments m, v (zero at first):

    d = g + wd * p
    m = b1 * m + (1 - b1) * d                 running mean of the gradient
    v = b2 * v + (1 - b2) * d^2               running mean of its square
    p = p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)

The divisions by 1 - b^t undo the bias of moments that start at zero. The host passes
c1 = 1 - b1^t and c2 = 1 - b2^t.
"""
import numpy as np


def adam_step(param, grad, m, v, lr, beta1, beta2, eps, weight_decay, c1, c2):
    """Update ``param``, ``m`` and ``v`` in place."""
    d = grad + weight_decay * param
    m *= beta1
    m += (1 - beta1) * d
    v *= beta2
    v += (1 - beta2) * d * d
    param -= lr * (m / c1) / (np.sqrt(v / c2) + eps)
