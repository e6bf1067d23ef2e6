"""minicnn's kernels, installed as ``minicnn.kernels``.

- ``reference/``: slow, obviously correct NumPy, written to be read; the tests' oracle.
- ``cpu/``: the fast kernels (Numba ``@njit`` loops, NumPy's BLAS for matrix products).

Each op family has the same file name and the same function signatures in each
backend. Kernels assume valid, C-contiguous arrays: ``minicnn.functional``
validates arguments before any kernel runs.
"""
