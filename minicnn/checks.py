"""Argument checks shared by the engine. Each returns the value normalised (an int, a float, a
pair of ints) or raises ``ArgumentError`` naming the op or layer, the argument, what it expected
and what it got."""
from __future__ import annotations

import functools
import math
import numbers
import os

import numpy as np

from .errors import ArgumentError


INDEX_MAX = 2**31 - 1  # sizes, strides and paddings beyond this overflow the kernels' index arithmetic


def integer(op, name, value, minimum=None, maximum=None):
    """An int (not a bool), at least ``minimum`` and at most ``maximum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArgumentError(f"{op}: {name} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ArgumentError(f"{op}: {name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ArgumentError(f"{op}: {name} must be <= {maximum}, got {value}")
    return int(value)


def boolean(op, name, value):
    """True or False (NumPy's bools too), not a number or a string."""
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentError(f"{op}: {name} must be True or False, got {value!r}")
    return bool(value)


def positive_integer(op, name, value):
    """An int >= 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ArgumentError(f"{op}: {name} must be a positive integer, got {value!r}")
    return int(value)


def pair(op, name, value, minimum, maximum=INDEX_MAX):
    """An int or a pair of ints, each in [minimum, maximum], as a tuple of two ints."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2:
        raise ArgumentError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    return tuple(integer(op, name, v, minimum, maximum) for v in items)


@functools.lru_cache(maxsize=1)
def memory_bytes():
    """The machine's physical memory, asked once (conv2d checks against it on every call); None
    where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def available_memory_bytes():
    """Memory free for a new allocation now (Linux's MemAvailable: free plus reclaimable cache);
    None where the system does not say."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def fits_in_memory(op, what, shape, dtype):
    """Refuse an array larger than this machine's memory before allocating it (NumPy's own
    MemoryError, or a page-out, would come only after the work began)."""
    nbytes = int(np.prod(shape, dtype=np.float64) * np.dtype(dtype).itemsize)
    total = memory_bytes()
    if total is not None and nbytes > total:
        raise ArgumentError(f"{op}: {what} would have shape {tuple(shape)}, {nbytes / 2**30:.1f} GiB, more than this "
                            f"machine's {total / 2**30:.1f} GiB of memory")


def number(op, name, value, low=-math.inf, high=math.inf, low_inclusive=True, high_inclusive=True):
    """A real number (not a bool, not NaN) in the interval from ``low`` to ``high``, as a float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
        raise ArgumentError(f"{op}: {name} must be a number, got {value!r}")
    ok_low = value >= low if low_inclusive else value > low
    ok_high = value <= high if high_inclusive else value < high
    if not (ok_low and ok_high):
        interval = f"{'[' if low_inclusive else '('}{low}, {high}{']' if high_inclusive else ')'}"
        raise ArgumentError(f"{op}: {name} must be in {interval}, got {value}")
    return float(value)
