"""Shared test settings.

Numba compiles a kernel on its first call (seconds), so Hypothesis runs without
a deadline. The "ci" profile (the default) keeps the whole suite well under 15
minutes on a 2-core machine and is derandomized, so a given commit always tests
the same cases; ``--hypothesis-profile=thorough`` draws many more, fresh each run.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", deadline=None, max_examples=40, derandomize=True, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
settings.register_profile(
    "thorough", deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
settings.load_profile("ci")


@pytest.fixture(scope="session")
def torch():
    """PyTorch as an outside oracle; tests that use it skip where it is not installed."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(2)
    return torch


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def pytest_ignore_collect(collection_path, config):
    """tests/cuda runs where numba.cuda works: under the simulator (tests/test_cuda_simulator.py
    starts it in a process of its own) or on a machine with a GPU."""
    if collection_path.name == "cuda" and collection_path.parent.name == "tests":
        from minicnn.device import cuda_available

        return not cuda_available()
    return None
