"""``minicnn bench``: each op at AlexNet's layer shapes, and a whole training step, on CPU and GPU.

Columns measured in one run: minicnn on the CPU and on the GPU (when one is
usable), the readable NumPy reference of ``kernels/reference`` on the CPU, and
PyTorch on the same devices where it is installed (TF32 off, so both sides
compute in plain FP32). GPU times come from CUDA
events around the launch, after a warm-up call; the warm-up call's wall time is
reported apart as "first call" (it includes Numba's compilation, or loading
from its cache). CPU times are medians of ``repeats`` wall-clock runs.
Convolutions and linear layers give GFLOP/s and the fraction of the device's
peak: the CPU's measured SGEMM speed, or the GPU's FP32 (non-tensor-core)
peak from its datasheet. Results are printed as a table and can be written as
JSON and as a PNG bar chart. On the GPU, the training step's kernel launches are counted.

``--ladder [SIZE]`` runs the GEMM ladder instead (``kernels/cuda/gemm_ladder.py``): each rung on
one SIZE^3 float32 product (default 4096), its GFLOP/s and share of the FP32 peak, cuBLAS through
PyTorch (TF32 off) beside it, and each rung's result checked against a reference product (relative
error at most ``LADDER_TOLERANCE``; a rung over it makes the exit code 1).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

from .. import device as _device
from .. import functional as F
from .. import models, optim
from ..errors import ArgumentError
from ..kernels.backends import use_backend
from ..kernels.cpu import conv as cpu_conv
from ..tensor import Tensor

# FP32 peak without tensor cores, TFLOP/s, from NVIDIA's datasheets.
GPU_FP32_PEAK = {"H100": 67.0, "H200": 67.0, "A100": 19.5, "L4": 30.3, "T4": 8.1, "V100": 15.7}
# Memory bandwidth, TB/s, from the same datasheets (H100 SXM).
GPU_BANDWIDTH = {"H100": 3.35, "H200": 4.8, "A100": 2.0, "L4": 0.3, "T4": 0.32, "V100": 0.9}


def _cuda():
    from numba import cuda

    return cuda


def _gpu_peak(name, table=GPU_FP32_PEAK):
    """The datasheet figure for this GPU, in G-units per second (GFLOP/s or GB/s), or None."""
    for key, tera in table.items():
        if key in name:
            return tera * 1e3
    return None


def copy_bandwidth_gbs(repeats=3):
    """The CPU's measured copy bandwidth: bytes read plus bytes written per second, 256 MB arrays."""
    src = np.ones(64 * 2**20, np.float32)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    best = statistics.median([_time(lambda: np.copyto(dst, src)) for _ in range(repeats)])
    return 2 * src.nbytes / best / 1e9


def layer_cases(n):
    """AlexNet's layers at batch n, the one table that ``minicnn bench`` and
    ``benchmarks/kernels.py`` both time: (name, kind, work, build), where work is the (forward,
    backward) FLOPs for "conv"/"fc" and the bytes each pass must at least read and write for
    "memory", and build(rng) returns (input arrays, minicnn's function of tensors, PyTorch's
    function of (torch, tensors)). The NumPy reference runs minicnn's function on the
    reference backend."""
    def conv(name, c, hw, k, ksz, stride, pad, groups):
        h_out = (hw + 2 * pad - ksz) // stride + 1
        flops = 2 * n * k * h_out * h_out * (c // groups) * ksz * ksz

        def build(rng):
            arrays = [rng.standard_normal((n, c, hw, hw), dtype=np.float32),
                      rng.standard_normal((k, c // groups, ksz, ksz), dtype=np.float32) * 0.01,
                      np.zeros(k, np.float32)]
            return arrays, lambda x, w, b: F.conv2d(x, w, b, stride, pad, groups), \
                lambda t, x, w, b: t.nn.functional.conv2d(x, w, b, stride, pad, 1, groups)
        geometry = ((k, c // groups, ksz, ksz), (stride, stride), ((pad, pad), (pad, pad)))
        build.cpu_algorithm = cpu_conv.algorithm(*geometry, n)
        build.description = f"{c}x{hw}x{hw} -> {k}@{ksz}x{ksz}/{stride} p{pad} g{groups}"
        return name, "conv", (flops, 2 * flops), build

    def fc(name, i, o):
        def build(rng):
            arrays = [rng.standard_normal((n, i), dtype=np.float32),
                      rng.standard_normal((o, i), dtype=np.float32) * 0.01, np.zeros(o, np.float32)]
            return arrays, F.linear, lambda t, x, w, b: t.nn.functional.linear(x, w, b)
        build.description = f"{i} -> {o}"
        return name, "fc", (2 * n * i * o, 4 * n * i * o), build

    def unary(name, shape, fn, torch_fn, passes=(2, 3)):
        """passes: how many arrays of the input's size each pass must at least read or write."""
        size = 4 * int(np.prod(shape))

        def build(rng):
            return [rng.standard_normal(shape, dtype=np.float32)], fn, torch_fn
        build.description = "x".join(map(str, shape[1:]))
        return name, "memory", (passes[0] * size, passes[1] * size), build

    def pool(name, c, hw):  # reads x, writes y and argmax (int32: each about x/4); backward reads both, writes dL/dx
        return unary(name, (n, c, hw, hw), lambda x: F.max_pool2d(x, 3, 2),
                     lambda t, x: t.nn.functional.max_pool2d(x, 3, 2), (1.5, 1.5))

    def lrn(name, c, hw):
        return unary(name, (n, c, hw, hw), F.local_response_norm,
                     lambda t, x: t.nn.functional.local_response_norm(x, 5, 5e-4, 0.75, 2.0))

    labels = np.arange(n) % 1000
    return [
        conv("conv1", 3, 227, 96, 11, 4, 0, 1),
        unary("relu1", (n, 96, 55, 55), F.relu, lambda t, x: t.relu(x)),
        lrn("lrn1", 96, 55),
        pool("pool1", 96, 55),
        conv("conv2", 96, 27, 256, 5, 1, 2, 2),
        lrn("lrn2", 256, 27),
        pool("pool2", 256, 27),
        conv("conv3", 256, 13, 384, 3, 1, 1, 1),
        conv("conv4", 384, 13, 384, 3, 1, 1, 2),
        conv("conv5", 384, 13, 256, 3, 1, 1, 2),
        pool("pool5", 256, 13),
        fc("fc6", 9216, 4096),
        unary("dropout6", (n, 4096), lambda x: F.dropout(x, 0.5, True, 1), lambda t, x: t.nn.functional.dropout(x, 0.5),
              (2, 2)),
        fc("fc7", 4096, 4096),
        fc("fc8", 4096, 1000),
        unary("cross_entropy", (n, 1000), lambda x: F.cross_entropy(x, labels),
              lambda t, x: t.nn.functional.cross_entropy(x, t.tensor(labels)), (1, 2)),
        unary("bn (variant)", (n, 96, 55, 55), lambda x: F.batch_norm(x, None, None, training=True),
              lambda t, x: t.nn.functional.batch_norm(x, None, None, training=True), (3, 4)),
    ]


def select_layers(cases, names):
    """The cases named in ``names`` (all for None or empty), in the table's order; a case matches its
    name or the name's first word ("bn" is "bn (variant)"). A name that matches none is an error."""
    if not names:
        return cases
    known = {case[0]: case[0].split()[0] for case in cases}
    unknown = [n for n in names if n not in known and n not in known.values()]
    if unknown:
        raise ArgumentError(f"bench: no layer named {', '.join(map(repr, unknown))}; the layers are "
                            f"{', '.join(v for v in known.values())}")
    return [case for case in cases if case[0] in names or known[case[0]] in names]


class _Timer:
    """Times a function on one device: CUDA events on the GPU, wall clock on the CPU."""

    def __init__(self, device, repeats):
        self.device, self.repeats = device, repeats

    def __call__(self, fn):
        start = time.perf_counter()
        fn()
        if self.device == "cuda":
            _cuda().synchronize()
        first = time.perf_counter() - start
        times = []
        for _ in range(self.repeats):
            cuda = _cuda() if self.device == "cuda" else None
            if cuda is not None and hasattr(cuda, "event_elapsed_time"):
                begin, end = cuda.event(), cuda.event()
                begin.record()
                fn()
                end.record()
                end.synchronize()
                times.append(cuda.event_elapsed_time(begin, end) / 1e3)
            elif cuda is not None:  # the CUDA simulator has no events' times: the wall clock, synchronised
                t0 = time.perf_counter()
                fn()
                cuda.synchronize()
                times.append(time.perf_counter() - t0)
            else:
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
        return statistics.median(times), first


def _torch():
    try:
        import torch
    except ImportError:
        return None
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return torch


def measure_torch_layer(build, device, repeats, rng):
    """The same layer in PyTorch on the same device, or None where PyTorch cannot run there."""
    torch = _torch()
    if torch is None or (device == "cuda" and not torch.cuda.is_available()):
        return None
    arrays, _, torch_fn = build(rng)
    tensors = [torch.tensor(a, device=device, requires_grad=True) for a in arrays]

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    def timed(fn):
        fn()
        sync()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            sync()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    y = torch_fn(torch, *tensors)
    grad = torch.ones_like(y)
    return {"forward": timed(lambda: torch_fn(torch, *tensors)),
            "backward": timed(lambda: y.backward(grad, retain_graph=True))}


def measure_reference(build, repeats, rng):
    """minicnn's same op on the reference backend: the readable NumPy kernels of
    ``kernels/reference`` (CPU, wall clock)."""
    with use_backend("reference"):
        return measure_layer(build, "cpu", repeats, rng)


def measure_layer(build, device, repeats, rng):
    arrays, fn, _ = build(rng)
    tensors = [Tensor(_device.move(a, device), requires_grad=True) for a in arrays]
    timer = _Timer(device, repeats)
    forward, first_forward = timer(lambda: fn(*tensors))
    y = fn(*tensors)
    grad = _device.move(np.ones(y.shape, np.float32), device)
    backward, first_backward = timer(lambda: y.backward(grad, retain_graph=True))
    return {"forward": forward, "backward": backward, "first_call": first_forward + first_backward}


def launches_so_far():
    """Kernel launches so far in this process (``kernels/cuda/launch.py`` counts them)."""
    from ..kernels.cuda import launch

    return launch.launches


def measure_training_step(batch, device, repeats):
    net = models.alexnet2012(seed=0).train()
    if device == "cuda":
        net.to("cuda")
    x = Tensor(_device.move(np.random.default_rng(0).standard_normal((batch, 3, 227, 227), dtype=np.float32), device))
    labels = np.arange(batch) % 1000
    opt = optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    def step():
        opt.zero_grad()
        F.cross_entropy(net(x), labels).backward()
        opt.step()

    seconds, first = _Timer(device, repeats)(step)
    result = {"seconds": seconds, "first_call": first, "images_per_second": batch / seconds}
    if device == "cuda":
        before = launches_so_far()
        step()
        result["launches"] = launches_so_far() - before
    return result


def sgemm_gflops(repeats=3):
    """NumPy's SGEMM at 2048^3 (median GFLOP/s), run as minicnn runs its products (kernels/cpu/blas.py:
    single-threaded BLAS calls on minicnn's threads), so that no BLAS thread is left spinning to
    slow the timing that follows."""
    from ..kernels.cpu import blas

    a = np.random.default_rng(0).standard_normal((2048, 2048), dtype=np.float32)
    out = np.empty_like(a)
    blas.matmul(a, a, out)
    best = statistics.median([_time(lambda: blas.matmul(a, a, out)) for _ in range(repeats)])
    return 2 * 2048 ** 3 / best / 1e9


def _time(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def cpu_name():
    """The CPU's model name (from /proc/cpuinfo on Linux; else the machine type)."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def describe_machine():
    import numba

    text = f"CPU {cpu_name()} ({os.cpu_count()} cores, numba {numba.__version__}, {numba.config.NUMBA_NUM_THREADS} threads)"
    gpu = gpu_name()
    return text + (f"; GPU {gpu}" if gpu else "")


def gpu_software():
    """The GPU, its driver and the software versions, in one line (for reports)."""
    import numba

    from importlib.metadata import PackageNotFoundError, version

    from ..kernels.cuda.launch import SIMULATED

    parts = [f"GPU {gpu_name()}"]
    if not SIMULATED:
        try:
            from numba.cuda.cudadrv.driver import driver

            parts.append(f"driver's CUDA {'.'.join(map(str, driver.get_version()))}")
        except Exception:  # (a version that cannot be read is left out of a report, not an error)
            pass
    try:
        parts.append(f"numba-cuda {version('numba-cuda')}")
    except PackageNotFoundError:
        pass
    torch = _torch()
    parts += [f"numba {numba.__version__}", f"numpy {np.__version__}"] + ([f"torch {torch.__version__}"] if torch else [])
    return ", ".join(parts)


def gpu_name():
    if not _device.cuda_available():
        return None
    cuda = _cuda()
    from ..kernels.cuda.launch import SIMULATED

    if SIMULATED:
        return "CUDA simulator"
    name = cuda.get_current_device().name
    return name.decode() if isinstance(name, bytes) else name


def run(batch=16, repeats=5, layers=None, devices=("cpu", "cuda"), step=True, json_path=None, png_path=None,
        reference=True, out=None):
    out = out or sys.stdout  # (read at the call: a default bound at import would keep a stale stream)
    say = lambda text="": print(text, file=out, flush=True)  # noqa: E731
    devices = list(devices)
    cases = select_layers(layer_cases(batch), layers)  # a name that matches no layer is an error, before any work
    gpu_missing = ""
    if "cuda" in devices and not _device.cuda_available():
        gpu_missing = _device.why_no_cuda()
        if devices == ["cuda"]:
            raise ArgumentError(f"bench: --device cuda needs a usable GPU: {gpu_missing}")
        devices.remove("cuda")
    gpu = gpu_name() if "cuda" in devices else None
    say(f"minicnn bench: batch {batch}, median of {repeats}; {describe_machine()}")
    if gpu_missing:
        say(f"GPU columns missing: {gpu_missing}")
    cpu_peak, cpu_bandwidth = sgemm_gflops(), copy_bandwidth_gbs()
    gpu_peak = _gpu_peak(gpu) if gpu else None
    gpu_bandwidth = _gpu_peak(gpu, GPU_BANDWIDTH) if gpu else None
    say(f"CPU peaks (measured): NumPy SGEMM 2048^3 {cpu_peak:.0f} GFLOP/s, copy {cpu_bandwidth:.0f} GB/s" +
        (f"; GPU peaks (datasheet): FP32 {gpu_peak / 1e3:.0f} TFLOP/s, memory {gpu_bandwidth / 1e3:.2f} TB/s"
         if gpu_peak else ""))
    rng = np.random.default_rng(0)
    rows = []
    for i, (name, kind, work, build) in enumerate(cases, 1):
        print(f"[{i}/{len(cases)}] {name}", file=sys.stderr, flush=True)
        row = {"layer": name, "kind": kind, "work": {"forward": work[0], "backward": work[1]},
               "unit": "GB/s" if kind == "memory" else "GFLOP/s", "cpu_algorithm": getattr(build, "cpu_algorithm", None)}
        for dev in devices:
            row[dev] = measure_layer(build, dev, repeats, rng)
            row[f"torch_{dev}"] = measure_torch_layer(build, dev, repeats, rng)
        row["reference"] = measure_reference(build, max(1, min(repeats, 2)), rng) if reference else None
        rows.append(row)
    result = {"machine": describe_machine(), "gpu": gpu, "gpu_missing": gpu_missing, "batch": batch,
              "repeats": repeats, "cpu_sgemm_gflops": cpu_peak, "cpu_copy_gbs": cpu_bandwidth,
              "gpu_fp32_peak_gflops": gpu_peak, "gpu_bandwidth_gbs": gpu_bandwidth, "layers": rows}
    if step:
        print("training step", file=sys.stderr, flush=True)
        result["training_step"] = {dev: measure_training_step(batch, dev, repeats) for dev in devices}
    say()
    for line in format_table(result, devices):
        say(line)
    if json_path:
        with open(json_path, "w") as f:
            json.dump(result, f, indent=1)
        say(f"\nJSON: {json_path}")
    if png_path:
        say(write_chart(result, devices, png_path))
    return result


def format_table(result, devices):
    header = ["layer", "pass", "numpy ref ms"]
    for dev in devices:
        header += [f"{dev} ms", f"{dev} rate", f"{dev} % peak", f"torch {dev} ms"]
    header.append("unit")
    if "cpu" in devices and "cuda" in devices:
        header.append("GPU speed-up")
    peaks = {("cpu", "GFLOP/s"): result["cpu_sgemm_gflops"], ("cpu", "GB/s"): result["cpu_copy_gbs"],
             ("cuda", "GFLOP/s"): result.get("gpu_fp32_peak_gflops"), ("cuda", "GB/s"): result.get("gpu_bandwidth_gbs")}
    rows = []
    for r in result["layers"]:
        for direction in ("forward", "backward"):
            ref = r.get("reference")
            cells = [r["layer"], direction, f"{ref[direction] * 1e3:.1f}" if ref else "-"]
            for dev in devices:
                seconds = r[dev][direction]
                rate = r["work"][direction] / seconds / 1e9
                peak = peaks[(dev, r["unit"])]
                theirs = r.get(f"torch_{dev}")
                cells += [f"{seconds * 1e3:.3f}", f"{rate:.0f}", f"{100 * rate / peak:.0f}%" if peak else "-",
                          f"{theirs[direction] * 1e3:.3f}" if theirs else "-"]
            cells.append(r["unit"])
            if "cpu" in devices and "cuda" in devices:
                cells.append(f"{r['cpu'][direction] / r['cuda'][direction]:.1f}x")
            rows.append(cells)
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    lines = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(header, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |" for cells in rows]
    first = ", ".join(f"{r['layer']} {r[d]['first_call']:.1f}s ({d})" for r in result["layers"] for d in devices
                      if r[d]["first_call"] > 0.5)
    lines.append("")
    for algorithm, method in (("winograd", "Winograd F(2x2, 3x3), 2.25x fewer multiply-adds"),
                              ("spectral", "products of Fourier transforms (kernels/cpu/conv/spectral.py), "
                                           "fewer multiply-adds")):
        layers = [r["layer"] for r in result["layers"] if r.get("cpu_algorithm") == algorithm]
        if "cpu" in devices and layers:
            lines.append(f"CPU {', '.join(layers)}: {method}; GFLOP/s and % peak count a direct convolution's work")
    lines.append(f"first calls over 0.5 s (Numba compiling or loading kernels): {first or 'none'}")
    for dev, s in result.get("training_step", {}).items():
        lines.append(f"alexnet2012 training step (forward + loss + backward + SGD update), batch {result['batch']}, {dev}: "
                     f"{s['seconds'] * 1e3:.0f} ms, {s['images_per_second']:.1f} images/s (first step {s['first_call']:.1f} s)"
                     + (f", {s['launches']} kernel launches" if "launches" in s else ""))
    return lines


# ---- the GEMM ladder ------------------------------------------------------------------------------
LADDER_TOLERANCE = 1e-4  # relative to the largest |C|: float32 sums of 4096 products err by ~1e-6


def run_ladder(size=4096, repeats=5, json_path=None, out=None):
    """Each rung of the GEMM ladder on one size^3 SGEMM, beside cuBLAS (PyTorch, TF32 off). Returns the
    result; ``result["failed"]`` lists the rungs whose product was wrong."""
    out = out or sys.stdout
    say = lambda text="": print(text, file=out, flush=True)  # noqa: E731
    if not _device.cuda_available():
        raise ArgumentError(f"bench: --ladder needs a usable GPU or the simulator: {_device.why_no_cuda()}")
    if size < 1:
        raise ArgumentError(f"bench: --ladder SIZE must be at least 1, got {size}")
    from ..kernels.cuda import gemm_ladder

    gpu = gpu_name()
    peak = _gpu_peak(gpu)
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((size, size), dtype=np.float32) for _ in range(2))
    say(f"minicnn bench --ladder: C = A @ B, {size}^3 float32, median of {repeats}; GPU {gpu}" +
        (f", FP32 peak {peak / 1e3:.0f} TFLOP/s (datasheet)" if peak else ""))
    torch = _torch()
    cublas = None
    if torch is not None and torch.cuda.is_available():
        ta, tb = torch.tensor(a, device="cuda"), torch.tensor(b, device="cuda")
        cublas = measure_torch_call(torch, lambda: torch.matmul(ta, tb), repeats)
        reference = torch.matmul(ta, tb).cpu().numpy()
    else:
        reference = (a.astype(np.float64) @ b).astype(np.float32)  # (no PyTorch: NumPy on the CPU, in float64)
    da, db = _device.to_device(a), _device.to_device(b)
    flops = 2 * size ** 3
    rows, failed = [], []
    for i, (name, (summary, build)) in enumerate(gemm_ladder.RUNGS.items(), 1):
        print(f"[{i}/{len(gemm_ladder.RUNGS)}] {name}", file=sys.stderr, flush=True)
        run, c = build(), _device.to_device(np.zeros((size, size), np.float32))
        seconds, first = _Timer("cuda", repeats)(lambda: run(da, db, c))
        error = float(np.abs(_device.to_host(c) - reference).max() / max(np.abs(reference).max(), 1e-30))
        if not error <= LADDER_TOLERANCE:
            failed.append(name)
        rows.append({"rung": name, "summary": summary, "seconds": seconds, "gflops": flops / seconds / 1e9,
                     "first_call": first, "relative_error": error})
    say()
    say("| rung | what it changes | ms | GFLOP/s | % of FP32 peak | of cuBLAS's speed | max error / max abs |")
    say("|---|---|---|---|---|---|---|")
    for r in rows + ([{"rung": "cuBLAS (PyTorch, TF32 off)", "summary": "", "seconds": cublas,
                       "gflops": flops / cublas / 1e9, "relative_error": None}] if cublas else []):
        say(f"| {r['rung']} | {r['summary']} | {r['seconds'] * 1e3:.2f} | {r['gflops']:.4g} | "
            + (f"{100 * r['gflops'] * 1e9 / (peak * 1e9):.1f}%" if peak else "-") + " | "
            + (f"{cublas / r['seconds']:.2f}" if cublas else "-") + " | "
            + ("-" if r["relative_error"] is None else f"{r['relative_error']:.1e}") + " |")
    say()
    if gpu == "CUDA simulator":
        say("under the simulator every rung runs at small tiles, thread by thread in Python: a check, not a timing")
    say(f"each rung's product checked against {'cuBLAS' if cublas else 'NumPy'}: "
        + (f"FAILED (error over {LADDER_TOLERANCE:g}): {', '.join(failed)}" if failed else
           f"all within {LADDER_TOLERANCE:g} of the largest |C|"))
    result = {"gpu": gpu, "size": size, "repeats": repeats, "fp32_peak_gflops": peak, "rungs": rows,
              "cublas_seconds": cublas, "failed": failed, "tolerance": LADDER_TOLERANCE}
    if json_path:
        with open(json_path, "w") as f:
            json.dump(result, f, indent=1)
        say(f"JSON: {json_path}")
    return result


def measure_torch_call(torch, fn, repeats):
    """Median seconds of ``fn`` on PyTorch's GPU (CUDA events), after a warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        begin.record()
        fn()
        end.record()
        end.synchronize()
        times.append(begin.elapsed_time(end) / 1e3)
    return statistics.median(times)


def write_chart(result, devices, path):
    try:
        import matplotlib
    except ImportError:
        return "PNG chart skipped: matplotlib is not installed (pip install 'minicnn[plot]')"
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["layer"] for r in result["layers"]]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(12, 4))
    width = 0.8 / len(devices)
    for i, dev in enumerate(devices):
        ms = [1e3 * (r[dev]["forward"] + r[dev]["backward"]) for r in result["layers"]]
        ax.bar(x + i * width, ms, width, label=dev)
    ax.set_xticks(x + width * (len(devices) - 1) / 2, names, rotation=45, ha="right")
    ax.set_yscale("log")
    ax.set_ylabel("forward + backward, ms (log)")
    ax.set_title(f"minicnn at AlexNet's layer shapes, batch {result['batch']}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return f"PNG chart: {path}"


def add_arguments(parser):
    parser.add_argument("--batch", type=int, default=16, help="batch size (default 16)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per measurement, median reported (default 5)")
    parser.add_argument("--layers", nargs="*", help="only these layers (conv1 ... fc8, relu1, lrn1, pool1, dropout6, "
                                                    "cross_entropy, bn); a name that matches none is an error")
    parser.add_argument("--device", choices=["cpu", "cuda", "both"], default="both", help="which columns (default both)")
    parser.add_argument("--no-step", action="store_true", help="skip the whole alexnet2012 training step")
    parser.add_argument("--no-reference", action="store_true",
                        help="skip the NumPy reference column (the slowest part: its convolutions take seconds)")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")
    parser.add_argument("--png", metavar="PATH", help="write a bar chart (needs matplotlib)")
    parser.add_argument("--ladder", nargs="?", type=int, const=4096, metavar="SIZE",
                        help="instead: the GEMM ladder (kernels/cuda/gemm_ladder.py), every rung on one SIZE^3 float32 "
                             "product beside cuBLAS (default SIZE 4096); needs a GPU or the simulator (a small SIZE)")


def run_from_args(args):
    if args.batch < 1 or args.repeats < 1:
        raise ArgumentError(f"bench: --batch and --repeats must be at least 1, got {args.batch} and {args.repeats}")
    if args.ladder is not None:
        result = run_ladder(args.ladder, args.repeats, args.json)
        if result["failed"]:
            raise SystemExit(1)
        return result
    devices = ("cpu", "cuda") if args.device == "both" else (args.device,)
    return run(args.batch, args.repeats, args.layers, devices, not args.no_step, args.json, args.png,
               reference=not args.no_reference)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m minicnn.apps.bench", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    main()
