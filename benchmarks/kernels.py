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
from minicnn.apps.bench import cpu_name, layer_cases  # layer_cases: the one table of AlexNet's layers

try:
    import torch
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


def alexnet_cases(n):
    """(name, unit, description, build) for each layer of the 2012 AlexNet at batch n
    (``minicnn.apps.bench.layer_cases``, the table ``minicnn bench`` times too)."""
    return [(name, "GFLOP/s" if kind in ("conv", "fc") else "GB/s", build.description, (build, work))
            for name, kind, work, build in layer_cases(n)]


def _ours(fn, arrays, repeats):
    """Forward and backward times of minicnn's op on the current backend."""
    tensors = [mc.tensor(a, requires_grad=True) for a in arrays]
    y = fn(*tensors)
    grad = np.ones(y.shape, np.float32)
    return median_time(lambda: fn(*tensors), repeats), median_time(lambda: y.backward(grad, retain_graph=True), repeats)


def measure_case(case, repeats, with_reference, with_torch, rng):
    build, work = case
    arrays, fn, torch_fn = build(rng)
    out = {}
    out["ours_fwd"], out["ours_bwd"] = _ours(fn, arrays, repeats)
    if with_reference:
        with mc.use_backend("reference"):  # the same op on the readable NumPy kernels
            out["ref_fwd"], out["ref_bwd"] = _ours(fn, arrays, repeats)
    if with_torch:
        tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
        ty = torch_fn(torch, *tensors)
        tgrad = torch.ones_like(ty)
        out["torch_fwd"] = median_time(lambda: torch_fn(torch, *tensors), repeats)
        out["torch_bwd"] = median_time(lambda: ty.backward(tgrad, retain_graph=True), repeats)
    out["work_fwd"], out["work_bwd"] = work
    return out


def sgemm_gflops(repeats):
    a = np.random.default_rng(0).standard_normal((4096, 4096), dtype=np.float32)
    return 2 * 4096**3 / median_time(lambda: np.matmul(a, a), repeats) / 1e9


def machine_description():
    import numba
    parts = [f"{cpu_name()}, {os.cpu_count()} cores", f"Python {platform.python_version()}",
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
    for i, (name, unit, desc, case) in enumerate(cases, 1):
        print(f"[{i}/{len(cases)}] {name} ...", file=sys.stderr, flush=True)
        result = measure_case(case, args.repeats, not args.no_reference, with_torch, rng)
        rows.append({"name": name, "unit": unit, "desc": desc, **result})
    print(f"batch {args.batch}, median of {args.repeats} runs; machine: {machine_description()}\n")
    print(markdown_table(rows, sgemm))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine_description(), "batch": args.batch, "repeats": args.repeats,
                       "sgemm_gflops": sgemm, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
