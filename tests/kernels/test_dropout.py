"""dropout: the counter-based mask (CPU kernel == NumPy reference bit for bit, statistics,
thread-count independence), inverted scaling, eval identity, gradcheck."""
import os
import subprocess
import sys

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import minicnn as mc
from minicnn.kernels.cpu import dropout as cpu
from minicnn.kernels.reference import dropout as ref
from tests.strategies import FLOAT_DTYPES, normal, seeds

F = mc.functional
probabilities = st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.9])
shapes = st.lists(st.integers(1, 7), min_size=1, max_size=4).map(tuple)


@given(shape=shapes, p=probabilities, seed=st.integers(0, 2**64 - 1), dtype=FLOAT_DTYPES)
def test_cpu_matches_reference_bit_for_bit(shape, p, seed, dtype):
    x = normal(seed % 2**32, shape, dtype)
    y = cpu.dropout_forward(x, p, seed)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, ref.dropout_forward(x, p, seed))
    np.testing.assert_array_equal(cpu.dropout_backward(x, p, seed), ref.dropout_backward(x, p, seed))


def test_mask_statistics():
    for p in (0.1, 0.5, 0.9):
        kept = ref.keep_mask(seed=12345, p=p, shape=(1 << 20,))
        assert abs(kept.mean() - (1 - p)) < 3e-3
    u = (ref.mix32(ref.mix32(np.uint64(ref.seed_key(7)) ^ np.arange(1 << 20, dtype=np.uint64))) >> np.uint64(8))
    u = u / 2**24
    assert abs(u.mean() - 0.5) < 2e-3 and abs(u.var() - 1 / 12) < 2e-3


def test_scaling_and_expectation():
    x = np.ones((1000, 100), dtype=np.float32)
    y = F.dropout(mc.tensor(x), p=0.5, training=True, seed=3).data
    assert set(np.unique(y)) == {0.0, 2.0}
    assert abs(y.mean() - 1.0) < 0.02


def test_seeds_give_different_masks_and_the_same_seed_the_same():
    x = mc.tensor(np.ones(4096, dtype=np.float32))
    a, b, c = (F.dropout(x, 0.5, True, s).data for s in (1, 2, 1))
    assert (a != b).any()
    np.testing.assert_array_equal(a, c)


def test_eval_mode_and_p_zero_are_identity():
    x = mc.tensor(normal(0, (3, 4), np.float32))
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0, training=True, seed=1) is x


def test_mask_does_not_depend_on_thread_count():
    code = (
        "import numba, numpy as np; numba.set_num_threads({t});"
        "from minicnn.kernels.cpu.dropout import dropout_forward;"
        "print(dropout_forward(np.ones(100003, np.float32), 0.5, 99).tobytes().hex().__hash__())"
    )
    outputs = [
        subprocess.run([sys.executable, "-c", code.format(t=t)], capture_output=True, text=True, check=True,
                       env={**os.environ, "PYTHONHASHSEED": "0"}, timeout=300).stdout
        for t in (1, 2)
    ]
    assert outputs[0].strip() and outputs[0] == outputs[1]


@given(shape=shapes, p=st.sampled_from([0.2, 0.5]), seed=seeds)
def test_gradcheck(shape, p, seed):
    x = mc.tensor(normal(seed, shape), requires_grad=True)
    mc.gradcheck(lambda x: F.dropout(x, p, True, seed), [x])


@given(first=st.integers(0, 5), p=probabilities, seed=st.integers(0, 2**64 - 1))
def test_a_part_of_a_batch_gets_its_images_masks_with_the_offset(first, p, seed):
    """Data parallelism: images first.. of a batch, with offset first * (elements per image), are
    masked as in the whole batch, on both backends, forward and backward; the layer does it from
    its batch_offset."""
    x = normal(seed % 2**32, (6, 3, 4, 5), np.float32)
    whole = cpu.dropout_forward(x, p, seed)
    per_image = x[0].size
    for kernels in (cpu, ref):
        np.testing.assert_array_equal(kernels.dropout_forward(x[first:], p, seed, first * per_image), whole[first:])
        np.testing.assert_array_equal(kernels.dropout_backward(x[first:], p, seed, first * per_image), whole[first:])
    layer = mc.nn.Dropout(p, seed=seed % 2**63)
    layer_whole = layer(mc.tensor(x)).data
    layer.calls, layer.batch_offset = 0, first
    np.testing.assert_array_equal(layer(mc.tensor(x[first:])).data, layer_whole[first:])
