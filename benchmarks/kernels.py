"""Time every op, forward and backward, at the 2012 AlexNet's layer shapes.

Columns, measured in one run, side by side: minicnn (the CPU kernels through the
autograd layer, as a model uses them), the readable NumPy reference in
``kernels/reference`` (the naive baseline), and PyTorch's CPU build where it is
installed. Each time is the median of ``--repeats`` runs after one warm-up run
(the warm-up also absorbs Numba's compile time). Convolutions and linear layers
report GFLOP/s (multiply-adds count 2); the memory-bound ops report GB/s of the
bytes they must at least read and write. The first row measures NumPy's SGEMM on
a 4096^3 product: the machine's practical peak, to read the others against.

    python benchmarks/kernels.py                     # batch 16, all ops
    python benchmarks/kernels.py --ops conv2 lrn1 --repeats 7 --json out.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import minicnn as mc  # before numpy: it sets the BLAS thread settings (minicnn/__init__.py)
import numpy as np
from minicnn.kernels.reference import activation as ref_act
from minicnn.kernels.reference import batchnorm as ref_bn
from minicnn.kernels.reference import conv as ref_conv
from minicnn.kernels.reference import dropout as ref_dropout
from minicnn.kernels.reference import linear as ref_linear
from minicnn.kernels.reference import lrn as ref_lrn
from minicnn.kernels.reference import pool as ref_pool
from minicnn.kernels.reference import softmax as ref_softmax

F = mc.functional

try:
    import torch
    import torch.nn.functional as TF
except ImportError:
    torch = None


def median_time(fn, repeats):
    fn()  # warm-up: compiles Numba kernels, fills caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def conv_flops(n, c, k, h_out, w_out, kh, kw, groups):
    return 2 * n * k * h_out * w_out * (c // groups) * kh * kw


def alexnet_cases(n):
    """(name, kind, description, builder) for each layer of the 2012 AlexNet at batch n."""
    def conv(name, c, hw, k, ksz, stride, pad, groups):
        h_out = (hw + 2 * pad - ksz) // stride + 1
        flops = conv_flops(n, c, k, h_out, h_out, ksz, ksz, groups)
        desc = f"{c}x{hw}x{hw} -> {k}@{ksz}x{ksz}/{stride} p{pad} g{groups}"

        def build(rng):
            x = rng.standard_normal((n, c, hw, hw), dtype=np.float32)
            w = rng.standard_normal((k, c // groups, ksz, ksz), dtype=np.float32) * 0.01
            b = np.zeros(k, np.float32)
            pads = ((pad, pad), (pad, pad))
            gy = rng.standard_normal((n, k, h_out, h_out), dtype=np.float32)
            return {
                "ours": lambda: F.conv2d(mc.tensor(x, requires_grad=True), mc.tensor(w, requires_grad=True),
                                         mc.tensor(b, requires_grad=True), stride, pad, groups),
                "ref_fwd": lambda: ref_conv.conv2d_forward(x, w, b, (stride, stride), pads, groups),
                "ref_bwd": lambda: ref_conv.conv2d_backward(x, w, gy, (stride, stride), pads, groups),
                "torch": lambda: TF.conv2d(torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True),
                                           torch.tensor(b, requires_grad=True), stride, pad, 1, groups),
                "grad": gy, "flops": (flops, 2 * flops),
            }
        return name, "GFLOP/s", desc, build

    def elementwise(name, shape, op):
        size = int(np.prod(shape))
        nbytes = 4 * size

        def build(rng):
            x = rng.standard_normal(shape, dtype=np.float32)
            gy = rng.standard_normal(shape, dtype=np.float32)
            if op == "relu":
                return {"ours": lambda: F.relu(mc.tensor(x, requires_grad=True)),
                        "ref_fwd": lambda: ref_act.relu_forward(x), "ref_bwd": lambda: ref_act.relu_backward(x, gy),
                        "torch": lambda: torch.relu(torch.tensor(x, requires_grad=True)),
                        "grad": gy, "bytes": (2 * nbytes, 3 * nbytes)}
            if op == "dropout":
                return {"ours": lambda: F.dropout(mc.tensor(x, requires_grad=True), 0.5, True, 1),
                        "ref_fwd": lambda: ref_dropout.dropout_forward(x, 0.5, 1),
                        "ref_bwd": lambda: ref_dropout.dropout_backward(gy, 0.5, 1),
                        "torch": lambda: TF.dropout(torch.tensor(x, requires_grad=True), 0.5, True),
                        "grad": gy, "bytes": (2 * nbytes, 2 * nbytes)}
            if op == "lrn":
                _, saved = ref_lrn.lrn_forward(x, 5, 1e-4, 0.75, 2.0)
                return {"ours": lambda: F.local_response_norm(mc.tensor(x, requires_grad=True)),
                        "ref_fwd": lambda: ref_lrn.lrn_forward(x, 5, 1e-4, 0.75, 2.0),
                        "ref_bwd": lambda: ref_lrn.lrn_backward(x, saved, gy, 5, 1e-4, 0.75, 2.0),
                        "torch": lambda: TF.local_response_norm(torch.tensor(x, requires_grad=True), 5, 5e-4, 0.75, 2.0),
                        "grad": gy, "bytes": (2 * nbytes, 3 * nbytes)}  # x -> y; x, grad_y -> grad_x
            if op == "batchnorm":
                c = shape[1]
                ones, zeros = np.ones(c, np.float32), np.zeros(c, np.float32)
                _, mean, var = ref_bn.batch_norm_train_forward(x, ones, zeros, 1e-5)
                return {"ours": lambda: F.batch_norm(mc.tensor(x, requires_grad=True), None, None,
                                                     mc.tensor(ones, requires_grad=True), mc.tensor(zeros, requires_grad=True), True),
                        "ref_fwd": lambda: ref_bn.batch_norm_train_forward(x, ones, zeros, 1e-5),
                        "ref_bwd": lambda: ref_bn.batch_norm_backward(x, mean, var, ones, gy, 1e-5, True),
                        "torch": lambda: TF.batch_norm(torch.tensor(x, requires_grad=True), None, None,
                                                       torch.tensor(ones, requires_grad=True),
                                                       torch.tensor(zeros, requires_grad=True), True),
                        "grad": gy, "bytes": (2 * nbytes, 3 * nbytes)}
            raise ValueError(op)
        return name, "GB/s", "x".join(map(str, shape[1:])), build

    def pool(name, c, hw):
        h_out = (hw - 3) // 2 + 1
        nbytes_in, nbytes_out = 4 * n * c * hw * hw, 4 * n * c * h_out * h_out

        def build(rng):
            x = rng.standard_normal((n, c, hw, hw), dtype=np.float32)
            gy = rng.standard_normal((n, c, h_out, h_out), dtype=np.float32)
            _, argmax = ref_pool.max_pool2d_forward(x, (3, 3), (2, 2), (0, 0))
            return {"ours": lambda: F.max_pool2d(mc.tensor(x, requires_grad=True), 3, 2),
                    "ref_fwd": lambda: ref_pool.max_pool2d_forward(x, (3, 3), (2, 2), (0, 0)),
                    "ref_bwd": lambda: ref_pool.max_pool2d_backward(gy, argmax, x.shape, (3, 3), (2, 2), (0, 0)),
                    "torch": lambda: TF.max_pool2d(torch.tensor(x, requires_grad=True), 3, 2),
                    "grad": gy, "bytes": (nbytes_in + 3 * nbytes_out, nbytes_in + 3 * nbytes_out)}
        return name, "GB/s", f"{c}x{hw}x{hw} 3x3/2", build

    def fc(name, i, o):
        flops = 2 * n * i * o

        def build(rng):
            x = rng.standard_normal((n, i), dtype=np.float32)
            w = rng.standard_normal((o, i), dtype=np.float32) * 0.01
            b = np.zeros(o, np.float32)
            gy = rng.standard_normal((n, o), dtype=np.float32)
            return {"ours": lambda: F.linear(mc.tensor(x, requires_grad=True), mc.tensor(w, requires_grad=True),
                                             mc.tensor(b, requires_grad=True)),
                    "ref_fwd": lambda: ref_linear.linear_forward(x, w, b),
                    "ref_bwd": lambda: ref_linear.linear_backward(x, w, gy),
                    "torch": lambda: TF.linear(torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True),
                                               torch.tensor(b, requires_grad=True)),
                    "grad": gy, "flops": (flops, 2 * flops)}
        return name, "GFLOP/s", f"{i} -> {o}", build

    def loss(name, classes):
        def build(rng):
            x = rng.standard_normal((n, classes), dtype=np.float32)
            labels = rng.integers(0, classes, n)
            _, log_y = ref_softmax.cross_entropy_forward(x, labels)
            return {"ours": lambda: F.cross_entropy(mc.tensor(x, requires_grad=True), labels),
                    "ref_fwd": lambda: ref_softmax.cross_entropy_forward(x, labels),
                    "ref_bwd": lambda: ref_softmax.cross_entropy_backward(log_y, labels, 1.0),
                    "torch": lambda: TF.cross_entropy(torch.tensor(x, requires_grad=True), torch.tensor(labels)),
                    "grad": np.float32(1.0), "bytes": (4 * n * classes, 8 * n * classes)}
        return name, "GB/s", f"{classes} classes", build

    return [
        conv("conv1", 3, 227, 96, 11, 4, 0, 1),
        elementwise("relu1", (n, 96, 55, 55), "relu"),
        elementwise("lrn1", (n, 96, 55, 55), "lrn"),
        pool("pool1", 96, 55),
        conv("conv2", 96, 27, 256, 5, 1, 2, 2),
        elementwise("lrn2", (n, 256, 27, 27), "lrn"),
        pool("pool2", 256, 27),
        conv("conv3", 256, 13, 384, 3, 1, 1, 1),
        conv("conv4", 384, 13, 384, 3, 1, 1, 2),
        conv("conv5", 384, 13, 256, 3, 1, 1, 2),
        pool("pool5", 256, 13),
        fc("fc6", 9216, 4096),
        elementwise("dropout6", (n, 4096), "dropout"),
        fc("fc7", 4096, 4096),
        fc("fc8", 4096, 1000),
        loss("cross_entropy", 1000),
        elementwise("bn1 (variant)", (n, 96, 55, 55), "batchnorm"),
    ]


def measure_case(build, repeats, with_reference, with_torch, rng):
    fns = build(rng)
    grad = fns["grad"]
    out = {}
    y = fns["ours"]()
    out["ours_fwd"] = median_time(fns["ours"], repeats)
    out["ours_bwd"] = median_time(lambda: y.backward(grad, retain_graph=True), repeats)
    if with_reference:
        out["ref_fwd"] = median_time(fns["ref_fwd"], repeats)
        out["ref_bwd"] = median_time(fns["ref_bwd"], repeats)
    if with_torch:
        ty = fns["torch"]()
        tgrad = torch.tensor(grad)
        out["torch_fwd"] = median_time(fns["torch"], repeats)
        out["torch_bwd"] = median_time(lambda: ty.backward(tgrad, retain_graph=True), repeats)
    work = fns.get("flops") or fns.get("bytes")
    out["work_fwd"], out["work_bwd"] = work
    return out


def sgemm_gflops(repeats):
    a = np.random.default_rng(0).standard_normal((4096, 4096), dtype=np.float32)
    return 2 * 4096**3 / median_time(lambda: np.matmul(a, a), repeats) / 1e9


def machine_description():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import numba
    parts = [f"{cpu}, {os.cpu_count()} cores", f"Python {platform.python_version()}",
             f"numpy {np.__version__}", f"numba {numba.__version__} ({numba.config.NUMBA_NUM_THREADS} threads)"]
    if torch is not None:
        parts.append(f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
    return "; ".join(parts)


def fmt_ms(seconds):
    return "-" if seconds is None else f"{seconds * 1e3:.2f}"


def rate(work, seconds, unit):
    return "-" if seconds is None else f"{work / seconds / 1e9:.1f}"


def markdown_table(rows, sgemm):
    lines = [
        f"NumPy SGEMM 4096^3: {sgemm:.1f} GFLOP/s (the practical peak for the GFLOP/s rows)",
        "",
        "| layer | shape | pass | minicnn ms | NumPy ref ms | PyTorch ms | minicnn rate | PyTorch rate | unit | ref / minicnn | PyTorch / minicnn |",
        "|---|---|---|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for r in rows:
        for direction in ("fwd", "bwd"):
            ours, ref, tor = r.get(f"ours_{direction}"), r.get(f"ref_{direction}"), r.get(f"torch_{direction}")
            work = r[f"work_{direction}"]
            lines.append(
                f"| {r['name']} | {r['desc']} | {direction} | {fmt_ms(ours)} | {fmt_ms(ref)} | {fmt_ms(tor)} | "
                f"{rate(work, ours, r['unit'])} | {rate(work, tor, r['unit'])} | {r['unit']} | "
                f"{'-' if ref is None else f'{ref / ours:.1f}x'} | {'-' if tor is None else f'{tor / ours:.2f}x'} |"
            )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=16, help="batch size (default 16)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per measurement; the median is reported")
    parser.add_argument("--ops", nargs="*", help="only these layers (names as in the table, e.g. conv2 lrn1)")
    parser.add_argument("--no-reference", action="store_true", help="skip the NumPy reference column")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch column")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.batch < 1 or args.repeats < 1:
        parser.error("--batch and --repeats must be at least 1")

    with_torch = torch is not None and not args.no_torch
    if torch is None and not args.no_torch:
        print("PyTorch is not installed: its columns stay empty (pip install torch==2.13.0 to fill them)", file=sys.stderr)
    if with_torch:
        torch.set_num_threads(os.cpu_count() or 1)
    cases = alexnet_cases(args.batch)
    if args.ops:
        known = {c[0] for c in cases}
        unknown = set(args.ops) - known
        if unknown:
            parser.error(f"unknown layers {sorted(unknown)}; choose from {sorted(known)}")
        cases = [c for c in cases if c[0] in args.ops]

    print(f"machine: {machine_description()}", file=sys.stderr)
    sgemm = sgemm_gflops(args.repeats)
    rng = np.random.default_rng(0)
    rows = []
    for i, (name, unit, desc, build) in enumerate(cases, 1):
        print(f"[{i}/{len(cases)}] {name} ...", file=sys.stderr, flush=True)
        result = measure_case(build, args.repeats, not args.no_reference, with_torch, rng)
        rows.append({"name": name, "unit": unit, "desc": desc, **result})
    print(f"batch {args.batch}, median of {args.repeats} runs; machine: {machine_description()}\n")
    print(markdown_table(rows, sgemm))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine_description(), "batch": args.batch, "repeats": args.repeats,
                       "sgemm_gflops": sgemm, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
