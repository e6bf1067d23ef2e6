"""The CPU kernels' matrix products (kernels/cpu/blas.py): NumPy's BLAS on one thread per call,
cut into pieces chosen from the shapes, run on minicnn's threads."""
import threading
import time

import numba
import numpy as np
import pytest
from threadpoolctl import threadpool_info

from minicnn.kernels.cpu import blas
from tests.helpers import rel_error
from tests.strategies import normal


def _blas_threads():
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


@pytest.mark.parametrize("a_shape, b_shape", [
    ((4096, 256), (256, 64)),          # cut along M (fc6's forward, narrowed)
    ((64, 256), (256, 4096)),          # along N
    ((96, 6000), (6000, 48)),          # along K, long: a convolution's dL/dw
    ((2, 96, 6000), (2, 6000, 48)),    # the same per group: along the stack (2 cores), along K (more)
    ((16, 2, 192, 96), (16, 2, 96, 400)),  # Winograd's entries: along the stack where it shares out evenly
    ((3, 2, 20, 30), (3, 2, 30, 10)),  # a stack of small products: along the stack
    ((5, 7), (7, 3)),                  # too small to cut
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_numpy(a_shape, b_shape, dtype):
    a, b = normal(0, a_shape, dtype), normal(1, b_shape, dtype)
    out = np.empty(a_shape[:-1] + b_shape[-1:], dtype)
    assert blas.matmul(a, b, out) is out
    assert rel_error(out, np.matmul(a.astype(np.float64), b.astype(np.float64))) < (1e-5 if dtype == np.float32 else 1e-12)


def test_writes_into_strided_views():
    """The kernels pass transposed views and outputs whose matrices are padded apart (Winograd's)."""
    a = normal(0, (2, 300, 80), np.float32)
    b = normal(1, (2, 300, 90), np.float32).transpose(0, 2, 1)  # (2, 90, 300) as a view
    padded = np.zeros((2, 80 * 90 + 16), np.float32)
    out = padded[:, :80 * 90].reshape(2, 80, 90)  # matrices 16 elements apart
    blas.matmul(a.transpose(0, 2, 1), b.transpose(0, 2, 1), out)
    assert rel_error(out, np.matmul(a.transpose(0, 2, 1), b.transpose(0, 2, 1))) < 1e-5
    assert not padded[:, 80 * 90:].any()  # nothing written between the matrices


def test_the_cut_depends_on_the_shapes_and_cores_only():
    assert blas.plan(4096, 9216, 64, cores=2) == ("m", 8)  # fc6's forward, thin: 4 pieces per core
    assert blas.plan(4096, 9216, 128, cores=2) == ("m", 2)
    assert blas.plan(64, 4096, 9216, cores=16) == ("n", 16)  # 64 rows: too few to cut
    assert blas.plan(4096, 64, 9216, cores=2) == ("m", 2)  # fc6's dL/dw: rows, though it is wider than tall
    assert blas.plan(363, 21175, 48, cores=2) == ("k", 2)  # a long shared dimension: a convolution's dL/dw at once
    assert blas.plan(5, 7, 3, cores=16) == ("m", 1)  # too little work to hand out
    # a complex multiply-add is 4 real ones: the Fourier path's weight transform (conv2) is cut
    assert blas.plan(31, 5, 196608, cores=2) == ("n", 1)
    assert blas.plan(31, 5, 196608, cores=2, complex_values=True) == ("n", 2)


def test_complex_stacks_and_products_cut_and_match_numpy(monkeypatch):
    rng = np.random.default_rng(3)
    a = (rng.standard_normal((31, 5)) + 1j * rng.standard_normal((31, 5))).astype(np.complex64)
    b = (rng.standard_normal((5, 70000)) + 1j * rng.standard_normal((5, 70000))).astype(np.complex64)
    calls = []
    real_product = blas._product
    monkeypatch.setattr(blas, "_product", lambda *args: calls.append(args[2].shape) or real_product(*args))
    out = blas.matmul(a, b, np.empty((31, 70000), np.complex64))
    assert len(calls) == 2  # 87 million real flops (22 million if each complex one counted as 1): two pieces
    assert rel_error(out, a.astype(np.complex128) @ b.astype(np.complex128)) < 1e-5


def test_same_bits_on_any_number_of_threads(monkeypatch):
    a, b = normal(0, (2, 128, 4000), np.float32), normal(1, (2, 4000, 96), np.float32)
    results = []
    for threads in (1, 2, 16):
        monkeypatch.setattr(numba, "get_num_threads", lambda threads=threads: threads)
        results.append(blas.matmul(a, b, np.empty((2, 128, 96), np.float32)).copy())
    for other in results[1:]:
        np.testing.assert_array_equal(other, results[0])


def test_numpys_blas_runs_one_thread_during_a_product_and_gets_its_count_back():
    before = _blas_threads()
    seen = []
    a, b = normal(0, (512, 512), np.float32), normal(1, (512, 512), np.float32)
    original = blas._product

    def spy(*args):
        product = original(*args)
        def piece():  # slow enough that the calling thread cannot take every piece itself
            seen.append((_blas_threads(), threading.current_thread().name))
            time.sleep(0.05)
            return product()

        return piece

    blas._product = spy
    try:
        blas.matmul(a, b, np.empty((512, 512), np.float32))
    finally:
        blas._product = original
    assert seen and all(counts == [1] * len(before) for counts, _ in seen)
    assert _blas_threads() == before
    if numba.get_num_threads() > 1 and blas.CORES > 1:  # pieces ran on more than the calling thread
        assert len({name for _, name in seen}) > 1


def test_an_error_in_a_piece_is_raised_and_the_blas_count_restored():
    before = _blas_threads()
    with pytest.raises(ValueError):
        blas.matmul(np.ones((200, 300)), np.ones((300, 200)), np.empty((200, 100)))
    assert _blas_threads() == before
    with pytest.raises(ValueError, match="leading axes differ"):
        blas.matmul(np.ones((2, 3, 4)), np.ones((3, 4, 5)), np.empty((2, 3, 5)))
