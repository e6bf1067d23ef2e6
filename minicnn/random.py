"""The one seeded generator behind weight initialisation and dropout seeds.

``manual_seed(s)`` makes everything drawn afterwards repeatable, as ``torch.manual_seed`` does.
"""
import numpy as np

_generator = np.random.default_rng(0)


def manual_seed(seed):
    """Reset the generator; returns it."""
    global _generator
    _generator = np.random.default_rng(seed)
    return _generator


def generator():
    return _generator
