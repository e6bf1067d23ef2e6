"""The same seed gives the same bits on any Numba thread count: AlexNet's forward at the trace's
batch (2) and at 8, and a short training run, each reaching all three convolution algorithms
(im2col, Winograd, the Fourier path). The BLAS's threads are held fixed: OpenBLAS 0.3.31 on an
AMD EPYC gives other bits for one matrix product on 1 and on 2 threads (docs/kernels.md, "The
choice, and the same bits on any thread count")."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from minicnn import checkpoint

BLAS_THREADS_FIXED = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

# Records the algorithm of every convolution it runs, then prints them as JSON on its last line.
RECORDING = """
import json, sys
from minicnn.kernels.cpu import conv
chosen, choose = set(), conv.algorithm
conv.algorithm = lambda *a: chosen.add(choose(*a)) or choose(*a)
"""


def _run(code, threads, tmp_path):
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads), **BLAS_THREADS_FIXED)
    out = subprocess.run([sys.executable, "-c", RECORDING + code + "\nprint(json.dumps(sorted(chosen)))"],
                         env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


FORWARD = """
import numpy as np
import minicnn as mc
net = mc.models.alexnet2012(seed=0).eval()
x = np.random.default_rng(0).standard_normal((8, 3, 227, 227), dtype=np.float32)
with mc.no_grad():
    np.savez("logits.npz", batch2=net(mc.tensor(x[:2])).numpy(),
             batch8=net(mc.tensor(x)).numpy())
"""


def test_alexnet2012_forward_is_the_same_on_1_and_2_threads(tmp_path):
    logits = []
    for threads in (1, 2):
        (tmp_path / str(threads)).mkdir()
        chosen = _run(FORWARD, threads, tmp_path / str(threads))
        assert chosen == ["im2col", "spectral", "winograd"]  # conv2 takes im2col at batch 2, Fourier at 8
        logits.append(np.load(tmp_path / str(threads) / "logits.npz"))
    for batch in ("batch2", "batch8"):
        np.testing.assert_array_equal(logits[0][batch], logits[1][batch], err_msg=batch)


TRAIN = """
from minicnn.apps.cli import main
assert main(["train", "--out", "run", "--train-size", "128", "--val-size", "32", "--image-size", "20",
             "--width", "1", "--batch-size", "16", "--epochs", "1", "--seed", "3"]) == 0
"""


@pytest.mark.slow
def test_a_training_run_is_the_same_on_1_and_2_threads(tmp_path):
    """alexnet_small at width 1: conv1 (3 channels) takes im2col, conv2 (24 channels per group,
    batch 16) the Fourier path, conv3-5 Winograd; forward, backward and SGD, then the weights."""
    finals = []
    for threads in (1, 2):
        (tmp_path / str(threads)).mkdir()
        chosen = _run(TRAIN, threads, tmp_path / str(threads))
        assert chosen == ["im2col", "spectral", "winograd"]
        arrays, _ = checkpoint.load(tmp_path / str(threads) / "run" / "last.ckpt")
        finals.append({k: v for k, v in arrays.items() if k.startswith("model:")})
    assert finals[0].keys() == finals[1].keys() and len(finals[0]) > 10
    for name in finals[0]:
        np.testing.assert_array_equal(finals[0][name], finals[1][name], err_msg=name)
