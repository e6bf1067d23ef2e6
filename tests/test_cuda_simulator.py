"""Runs tests/cuda under Numba's CUDA simulator, in a process of its own (the simulator
replaces numba.cuda and must be chosen before numba is imported). On a machine with a
GPU, ``pytest tests/cuda`` runs the same tests on the real device."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minicnn as mc

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_cuda_kernels_under_the_simulator():
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    out = subprocess.run([sys.executable, "-m", "pytest", "tests/cuda", "-q", "-p", "no:cacheprovider"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-3000:]
    assert " passed" in out.stdout and "skipped" not in out.stdout


@pytest.mark.skipif(mc.cuda.is_available(), reason="this machine has a usable CUDA device")
def test_without_a_gpu_asking_for_cuda_says_why_in_one_line():
    with pytest.raises(mc.ArgumentError) as info:
        mc.tensor(np.ones(2, np.float32)).to("cuda")
    message = str(info.value)
    assert "\n" not in message and "no CUDA device" in message and "NUMBA_ENABLE_CUDASIM" in message
    assert mc.cuda.why_no_cuda()


@pytest.mark.slow  # a minicnn bench subprocess
def test_bench_runs_the_cpu_columns_and_says_why_gpu_ones_are_missing(tmp_path):
    out = subprocess.run([sys.executable, "-m", "minicnn", "bench", "--layers", "conv5", "pool1", "--repeats", "1",
                          "--no-step", "--json", str(tmp_path / "b.json"), "--png", str(tmp_path / "b.png")],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "| conv5" in out.stdout and "GFLOP/s" in out.stdout and "GB/s" in out.stdout
    assert "CPU conv5: Winograd" in out.stdout  # its rate counts a direct convolution's work
    if not mc.cuda.is_available():
        assert "GPU columns missing:" in out.stdout
    assert (tmp_path / "b.json").stat().st_size > 100 and (tmp_path / "b.png").stat().st_size > 1000


def test_bench_layer_names_are_checked_and_bn_is_found():
    from minicnn.apps.bench import layer_cases, select_layers

    cases = layer_cases(2)
    assert [c[0] for c in select_layers(cases, ["bn", "conv1"])] == ["conv1", "bn (variant)"]
    assert select_layers(cases, None) == cases
    with pytest.raises(mc.ArgumentError, match="bench: no layer named 'bogus'; the layers are conv1, relu1"):
        select_layers(cases, ["bogus"])


@pytest.mark.skipif(mc.cuda.is_available(), reason="this machine has a usable CUDA device")
def test_bench_on_cuda_alone_without_a_gpu_is_an_error(capsys):
    from minicnn.apps.cli import main

    assert main(["bench", "--device", "cuda", "--layers", "relu1", "--no-step"]) == 2
    assert "bench: --device cuda needs a usable GPU" in capsys.readouterr().err
    assert main(["bench", "--layers", "bogus"]) == 2
    assert "no layer named 'bogus'" in capsys.readouterr().err
    assert main(["bench", "--batch", "0"]) == 2  # the exit code of every other bad argument
    assert "bench: --batch and --repeats must be at least 1, got 0 and" in capsys.readouterr().err
    assert main(["bench", "--ladder", "64"]) == 2
    assert "bench: --ladder needs a usable GPU or the simulator" in capsys.readouterr().err
