"""Install minicnn; the top-level ``kernels/`` folder installs as ``minicnn.kernels``.

``kernels`` is also the name of an unrelated PyPI package, so it must never be
installed as a top-level module: ``package_dir`` maps it into ``minicnn``.
"""
from setuptools import setup

# numba-cuda 0.30 fails at its first compile with NumPy 2.5 (it calls np.row_stack, issue 23): pinned together
# wherever numba-cuda is installed ("cuda", "sass", "test")
CUDA = ["numba-cuda>=0.30,<0.31", "numpy<2.5"]
# NVIDIA's compiler from pip, no GPU or driver needed: NVVM (PTX), ptxas (machine code), nvdisasm (its listing)
SASS_TOOLS = ["nvidia-nvvm>=13,<14", "nvidia-cuda-nvrtc>=13,<14", "nvidia-cuda-nvcc>=13,<14",
              "nvidia-cuda-nvdisasm>=13,<14"]
KERNEL_PACKAGES = ["minicnn.kernels", "minicnn.kernels.reference", "minicnn.kernels.cpu", "minicnn.kernels.cpu.conv",
                   "minicnn.kernels.cuda"]

setup(
    name="minicnn",
    version="0.1.0",
    description="A from-scratch CNN engine with hand-written Numba kernels, and AlexNet layer by layer",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=["minicnn", "minicnn.nn", "minicnn.models", "minicnn.data", "minicnn.apps", "minicnn.utils"] + KERNEL_PACKAGES,
    package_dir={
        "minicnn": "minicnn",
        "minicnn.kernels": "kernels",
        "minicnn.kernels.reference": "kernels/reference",
        "minicnn.kernels.cpu": "kernels/cpu",
        "minicnn.kernels.cpu.conv": "kernels/cpu/conv",
        "minicnn.kernels.cuda": "kernels/cuda",
    },
    install_requires=["numpy>=1.24,<2.6", "numba>=0.60,<0.69", "tqdm>=4.66", "threadpoolctl>=3.1"],
    extras_require={
        "test": ["pytest>=8", "pytest-xdist>=3.5", "hypothesis>=6.100", "Pillow>=9", "matplotlib>=3.6",
                 *CUDA, "mpi4py>=4", "mpich>=4", "playwright>=1.40", *SASS_TOOLS],
        "image": ["Pillow>=9"],
        "plot": ["matplotlib>=3.6"],
        "cuda": CUDA,
        "mpi": ["mpi4py>=4", "mpich>=4"],  # MPI with no system install: mpiexec -n 2 minicnn train --parallel data
        # what the compiler makes of the GPU kernels, read without a GPU: benchmarks/gpu_sass.py
        "sass": [*CUDA, *SASS_TOOLS],
    },
    entry_points={"console_scripts": ["minicnn = minicnn.apps.cli:main"]},
)
