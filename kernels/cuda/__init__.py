"""CUDA kernels (numba.cuda), with the same signatures as ``kernels/cpu``.

Arrays are Numba device arrays that stay on the GPU between layers: no kernel
here copies to or from the host. Every kernel also runs under Numba's CUDA
simulator (``NUMBA_ENABLE_CUDASIM=1``), which is how machines without a GPU test
them; tile sizes shrink there so the simulated threads finish in seconds.
"""
