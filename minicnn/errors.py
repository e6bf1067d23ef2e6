"""The errors minicnn raises for invalid calls.

Every message names the op, what it expected and what it was given, for example
``conv2d: input has 3 channels, weight expects 96 (48 per group x 2 groups); ...``.
They subclass ``ValueError``/``TypeError`` so callers can catch them either way.
"""


class MiniCNNError(Exception):
    """Base class of every error minicnn raises on purpose."""


class ShapeError(MiniCNNError, ValueError):
    """An array has the wrong rank, size or a shape that does not fit the others."""


class ArgumentError(MiniCNNError, ValueError):
    """A non-array argument (stride, padding, p, size, ...) is out of range."""


class DTypeError(MiniCNNError, TypeError):
    """An array has a dtype the op does not accept, or dtypes do not match."""
