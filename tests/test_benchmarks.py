"""The baselines the benchmarks compare against compute the same function as minicnn."""
import os
import pathlib
import platform
import subprocess
import sys

import numpy as np
import pytest

import minicnn as mc
from benchmarks.numpy_textbook import TextbookNet
from minicnn import functional as F
from minicnn import models


def test_textbook_numpy_alexnet_has_minicnns_loss_and_gradients():
    net = models.alexnet_small(10, 32, width=0.25, dropout=0, seed=3)  # groups, LRN, overlapping pooling
    x = np.random.default_rng(0).standard_normal((4, 3, 32, 32)).astype(np.float32)
    labels = np.array([1, 7, 3, 3])
    textbook = TextbookNet(net)
    loss = textbook.loss_and_backward(x, labels)
    ours = F.cross_entropy(net(mc.tensor(x)), labels)
    ours.backward()
    assert abs(loss - ours.item()) < 1e-5
    for p, g in zip(net.parameters(), textbook.grads(), strict=True):
        assert g.shape == p.shape and g.dtype == np.float32
        np.testing.assert_allclose(g, p.grad, rtol=0, atol=1e-4 * np.abs(p.grad).max())
    before = [p.copy() for p in textbook.params()]
    textbook.sgd_step()
    assert all(not np.array_equal(a, b) for a, b in zip(before, textbook.params()))


def test_matmul_clock_sees_each_layers_matrix_products():
    """``benchmarks/alexnet_cpu.py`` splits a layer's time into its matrix products and the rest;
    the FLOPs it counts for each layer's products follow from the kernels' designs."""
    from benchmarks import alexnet_cpu
    from minicnn.kernels.cpu import blas
    matmul = blas.matmul
    net = models.alexnet_small(10, 32, width=0.25, dropout=0, seed=3)
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    seen = alexnet_cpu.matrix_products(net, x, np.array([1, 7]), repeats=1)
    assert blas.matmul is matmul  # put back
    work = alexnet_cpu.layer_work(net, x.shape)
    names = [name for name, _ in net.named_children()]
    ratio = {p: {name: seen[p]["products_flop"][i] / max(work[name][1 if p == "fwd" else 2], 1)
                 for i, name in enumerate(names)} for p in ("fwd", "bwd")}
    # im2col's products: GEMM rows W + max(left, right) long at stride 1, and a row of ones for the bias
    # (an inner length of C*kh*kw + 1) in the forward and dL/dw; dL/dx's product has none (conv1 has no dL/dx)
    rows = {name: int(np.prod(layer.weight.shape[1:])) for name, layer in net.named_children() if name in ("conv1", "conv2")}
    assert ratio["fwd"]["conv1"] == ratio["bwd"]["conv1"] == pytest.approx((32 + 2) / 32 * (rows["conv1"] + 1) / rows["conv1"])
    assert ratio["fwd"]["conv2"] == pytest.approx((15 + 2) / 15 * (rows["conv2"] + 1) / rows["conv2"])
    assert ratio["bwd"]["conv2"] == pytest.approx((15 + 2) / 15 * (2 * rows["conv2"] + 1) / (2 * rows["conv2"]))
    for p in ("fwd", "bwd"):
        assert all(ratio[p][name] == 1 for name in ("fc6", "fc7", "fc8"))  # three plain products
        assert ratio[p]["conv3"] == 16 * 4 * 4 / (9 * 7 * 7)  # Winograd F(2x2, 3x3) at 7x7: 4x4 tiles of 16 entries
        assert all(ratio[p][name] == 0 for name in names if not name.startswith(("conv", "fc")))
        assert all(s > 0 for s, f in zip(seen[p]["products_s"], seen[p]["products_flop"]) if f)


@pytest.mark.slow
def test_alexnet_cpu_benchmark_writes_its_report(tmp_path):
    """The benchmark of issue 5 end to end, on the small network (PyTorch's columns where it is
    installed, dashes where not): every section of the report and the JSON are written."""
    import json

    from benchmarks import alexnet_cpu
    md, js = tmp_path / "report.md", tmp_path / "report.json"
    alexnet_cpu.main(["--model", "alexnet_small", "--batch", "2", "--repeats", "1", "--out-md", str(md),
                      "--out-json", str(js)])
    report, result = md.read_text(), json.loads(js.read_text())
    assert report.startswith("`python benchmarks/alexnet_cpu.py --model alexnet_small --batch 2 --repeats 1`")
    for row in ("| training step |", "| forward (eval mode) |", "| SGD step alone", "| peak RSS", "| conv1 |",
                "| **sum** |", "| conv2 | bwd |", "| fc8 | fwd |"):
        assert row in report
    for order in ("`import numpy` first", "`import minicnn` first"):  # both orders, each in a process of its own
        assert f"| training step, {order} (own process)" in report
    assert set(result["orders"]) == {"numpy first", "minicnn first"}
    assert all(result["orders"][o]["step"] > 0 for o in result["orders"])
    alongside = result["sgemm_samples"]["alongside the layers"]
    assert len(alongside) == 2  # one sample after each timed round: per layer, then the products
    assert sorted(alongside)[0] <= result["sgemm_gflops"] <= sorted(alongside)[1]  # their median
    assert result["sgemm_samples"]["start"] > 0 and result["sgemm_samples"]["end"] > 0
    assert "samples taken between the rounds of the per-layer timings" in report
    assert len(result["layers"]["products"]["fwd"]["products_flop"]) == len(result["layers"]["names"])


def test_the_gpu_step_report_is_written_after_each_batch_and_marks_what_was_not_reached(tmp_path):
    """benchmarks/gpu_step.py writes its report after each measurement, so a device call cut short by its
    time limit keeps what it measured; a row whose run without the pool never came says so."""
    import json
    from types import SimpleNamespace

    from benchmarks.gpu_step import report_lines, write_report

    ours = {"seconds": 0.05, "launches": 150, "driver_allocations_per_step": 0, "pool_peak_bytes": 3 << 30}
    theirs = {"seconds": 0.025, "peak_memory_bytes": 2 << 30}
    unpooled = {"seconds": 0.08, "peak_memory_bytes": 5 << 30}
    rows = [{"batch": 128, "minicnn": ours, "pytorch": theirs, "minicnn_numba_allocator": unpooled},
            {"batch": 16, "minicnn": ours, "pytorch": None, "minicnn_numba_allocator": None}]
    args = SimpleNamespace(batches=[128, 16], repeats=5, out_md=str(tmp_path / "s.md"), out_json=str(tmp_path / "s.json"))
    lines = report_lines(args, rows)
    assert lines[-2] == ("| 128 | 50.0 ms | 2560 | 25.0 ms | 5120 | 2.00 | 150 | 0 | 3072 MiB, 2048 MiB | 80.0 ms "
                         "| 5120 MiB |")
    assert lines[-1] == "| 16 | 50.0 ms | 320 | - | - | - | 150 | 0 | 3072 MiB, - | (not reached) | - |"
    write_report(args, rows)
    assert (tmp_path / "s.md").read_text().splitlines()[-1] == lines[-1]
    assert json.loads((tmp_path / "s.json").read_text())["rows"][1]["minicnn_numba_allocator"] is None


# benchmarks/cpu_asm.py reads the machine code of the CPU kernels. Its targets are AVX2 builds, which
# every x86-64 machine here can run, so the checks name Numba's target (Haswell) instead of the host's.
x86_only = pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"),
                              reason="x86 assembly: this machine is not x86-64")
CONDITIONAL_STORES = """
import numpy as np
from numba import njit
from benchmarks.cpu_asm import assembly, count_masked

@njit(cache=False)
def keep_in_place(values, best):  # the form max pooling's scan had: a store under a condition
    for m in range(best.size):
        if values[m] > best[m]:
            best[m] = values[m]

@njit(cache=False)
def keep_in_another(values, best_then, best_now):  # its form now: loads first, then a plain store
    for m in range(best_now.size):
        value, best = values[m], best_then[m]
        best_now[m] = value if value > best else best

a = np.zeros(64, np.float32)
keep_in_place(a, a.copy())
keep_in_another(a, a.copy(), a.copy())
print(count_masked(assembly(keep_in_place, keep_in_place.signatures[0]))[0],
      count_masked(assembly(keep_in_another, keep_in_another.signatures[0]))[0])
"""


def _haswell(args, **kwargs):
    env = dict(os.environ, NUMBA_CPU_NAME="haswell", NUMBA_CPU_FEATURES="")
    root = pathlib.Path(__file__).resolve().parents[1]
    return subprocess.run([sys.executable, *args], cwd=root, env=env, capture_output=True, text=True, **kwargs)


@x86_only
def test_cpu_asm_counts_the_masked_stores_of_a_store_under_a_condition():
    done = _haswell(["-c", CONDITIONAL_STORES], timeout=300)
    assert done.returncode == 0, done.stderr
    in_place, in_another = (int(n) for n in done.stdout.split())
    assert in_place >= 1 and in_another == 0


@pytest.mark.slow
@x86_only
def test_cpu_asm_finds_no_masked_store_in_pooling():
    done = _haswell(["benchmarks/cpu_asm.py", "--modules", "pool"], timeout=1200)
    assert done.returncode == 0, done.stderr
    assert "| pool:_max_pool_forward | 1 | 0 |" in done.stdout
    bad = _haswell(["benchmarks/cpu_asm.py", "--modules", "no_such_module"], timeout=1200)
    assert bad.returncode == 2 and "no compiled kernel in modules ['no_such_module']" in bad.stderr


def test_float32_drift_prints_one_row_per_step_count_and_refuses_zero_seeds(capsys):
    """One step of two summed halves against the whole batch stays within float32's rounding
    (docs/scaling.md); the script's table has a row per step count."""
    from benchmarks import float32_drift
    assert float32_drift.main(["--seeds", "2", "--steps", "1"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 1 |")]
    assert len(rows) == 1
    _, steps, batches, median, largest, over, _ = rows[0].split("|")
    assert int(batches) == 2 and float(largest) < 1e-5 and int(over) == 0 and 0 < float(median) <= float(largest)
    with pytest.raises(SystemExit) as error:
        float32_drift.main(["--seeds", "0"])
    assert error.value.code == 2
    assert "--seeds and --steps must be at least 1, got 0 and 3" in capsys.readouterr().err
