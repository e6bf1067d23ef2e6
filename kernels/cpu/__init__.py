"""Fast CPU kernels: Numba-compiled loops (float32 and float64) and NumPy BLAS for matrix products."""
