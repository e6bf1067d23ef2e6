"""The alexnet2012 training step on the GPU: minicnn against PyTorch (TF32 off), side by side in one run.

    python benchmarks/gpu_step.py                          # batches 16 and 128, 5 repeats
    python benchmarks/gpu_step.py --batches 128 --repeats 10 --out-md gpu_step.md

For each batch size, on the same weights and inputs: minicnn's step (forward, cross-entropy, backward,
SGD with momentum 0.9 and weight decay) and PyTorch's twin of the network (``torch_twin.py``), each the
median of CUDA-event timings after a warm-up step; images per second; minicnn's kernel launches per
step (``kernels/cuda/launch.py`` counts them); device memory: PyTorch's peak allocated
(``torch.cuda.max_memory_allocated``) and minicnn's, the peak in use of its memory pool
(``kernels/cuda/memory.py``, PyTorch's measure) and the driver allocations of a step after the
warm-up (0 when the pool reuses every block). minicnn's step runs a second time with the pool off
(every array from Numba's allocator, as before the pool), on a fresh copy of the network: its time,
and its peak read from the driver's free-memory count after the forward, the backward and the
update, less what was in use before the network was built (an upper bound: Numba frees lazily).
Needs a real GPU (the simulator would take hours at these sizes).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the sibling torch_twin.py

import minicnn as mc  # noqa: E402
from minicnn import functional as F  # noqa: E402
from minicnn import models, optim  # noqa: E402
from minicnn.apps.bench import _Timer, _torch, gpu_software, launches_so_far, measure_torch_call  # noqa: E402


def minicnn_step(net, x_host, labels, repeats, pooled=True):
    """Times ``net`` (on the host; moved to the GPU here) on one batch; returns the figures. ``pooled``:
    device memory from minicnn's pool (the default), else from Numba's allocator for every array."""
    from numba import cuda

    from minicnn.kernels.cuda.memory import pool

    pool.enabled = pooled
    try:
        mc.cuda.empty_cache()
        context = cuda.current_context()
        free_before, pool_before = context.get_memory_info().free, pool.stats()["in_use_bytes"]
        mc.cuda.reset_peak_memory_stats()
        net.train().to("cuda")
        x = mc.tensor(x_host).to("cuda")
        opt = optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

        def step(sample=lambda: None):
            opt.zero_grad()
            loss = F.cross_entropy(net(x), labels)
            sample()
            loss.backward()
            sample()
            opt.step()
            sample()

        def sample():
            cuda.synchronize()
            in_use.append(free_before - context.get_memory_info().free)

        seconds, first = _Timer("cuda", repeats)(step)
        before, blocks_before, in_use = launches_so_far(), pool.blocks_made, []
        step(sample)
        return {"seconds": seconds, "first_step": first, "launches": launches_so_far() - before,
                "pooled": pooled, "peak_memory_bytes": max(in_use),  # the driver's count: an upper bound
                "pool_peak_bytes": pool.stats()["peak_bytes"] - pool_before,  # exact, while pooled
                "driver_allocations_per_step": pool.blocks_made - blocks_before}
    finally:
        pool.enabled = True


def pytorch_step(torch, net, x_host, labels, repeats):
    from torch_twin import torch_twin

    twin = torch_twin(torch, net.to("cpu")).to("cuda")
    x, y = torch.tensor(x_host, device="cuda"), torch.tensor(labels, device="cuda")
    opt = torch.optim.SGD(twin.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    def step():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(twin(x), y).backward()
        opt.step()

    torch.cuda.reset_peak_memory_stats()
    seconds = measure_torch_call(torch, step, repeats)
    return {"seconds": seconds, "peak_memory_bytes": torch.cuda.max_memory_allocated()}


def report_lines(args, rows):
    """The Markdown report of the batches measured so far."""
    lines = [f"`python benchmarks/gpu_step.py --batches {' '.join(map(str, args.batches))} --repeats {args.repeats}`: "
             f"alexnet2012, float32, SGD with momentum and weight decay, medians of {args.repeats} steps after a warm-up "
             f"(CUDA events); PyTorch with TF32 off. {gpu_software()}.", "",
             "| batch | minicnn step | images/s | PyTorch step | images/s | minicnn / PyTorch time | kernel launches "
             "per step | driver allocations per step | peak device memory: minicnn's pool, PyTorch (allocated) "
             "| minicnn's step, Numba's allocator for every array | its peak (driver's count, an upper bound) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ours, unpooled, theirs, b = r["minicnn"], r["minicnn_numba_allocator"], r["pytorch"], r["batch"]
        lines.append(f"| {b} | {ours['seconds'] * 1e3:.1f} ms | {b / ours['seconds']:.0f} | "
                     + (f"{theirs['seconds'] * 1e3:.1f} ms | {b / theirs['seconds']:.0f} | "
                        f"{ours['seconds'] / theirs['seconds']:.2f}" if theirs else "- | - | -")
                     + f" | {ours['launches']} | {ours['driver_allocations_per_step']} | "
                     f"{ours['pool_peak_bytes'] / 2**20:.0f} MiB, "
                     + (f"{theirs['peak_memory_bytes'] / 2**20:.0f} MiB" if theirs else "-")
                     + (f" | {unpooled['seconds'] * 1e3:.1f} ms | {unpooled['peak_memory_bytes'] / 2**20:.0f} MiB |"
                        if unpooled else " | (not reached) | - |"))
    return lines


def write_report(args, rows):
    with open(args.out_md, "w") as f:
        f.write("\n".join(report_lines(args, rows)) + "\n")
    with open(args.out_json, "w") as f:
        json.dump({"software": gpu_software(), "rows": rows}, f, indent=1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[16, 128], help="batch sizes (default 16 128)")
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per figure, median reported (default 5)")
    parser.add_argument("--out-md", default="gpu_step.md", help="Markdown report (default gpu_step.md)")
    parser.add_argument("--out-json", default="gpu_step.json", help="JSON results (default gpu_step.json)")
    args = parser.parse_args(argv)
    from minicnn.kernels.cuda.launch import SIMULATED

    if SIMULATED or not mc.cuda.is_available():
        parser.error("needs a real NVIDIA GPU (at these sizes the simulator would take hours): "
                     + ("the CUDA simulator is on" if SIMULATED else mc.cuda.why_no_cuda()))
    torch = _torch()
    torch = torch if torch is not None and torch.cuda.is_available() else None
    rows = []
    for batch in args.batches:  # the report is written after each batch: a run cut short keeps what it measured
        print(f"batch {batch} ...", file=sys.stderr, flush=True)
        x_host = np.random.default_rng(0).standard_normal((batch, 3, 227, 227), dtype=np.float32)
        labels = np.arange(batch) % 1000
        ours = minicnn_step(models.alexnet2012(seed=0), x_host, labels, args.repeats)
        theirs = pytorch_step(torch, models.alexnet2012(seed=0), x_host, labels, args.repeats) if torch else None
        row = {"batch": batch, "minicnn": ours, "pytorch": theirs, "minicnn_numba_allocator": None}
        rows.append(row)
        write_report(args, rows)
        row["minicnn_numba_allocator"] = minicnn_step(models.alexnet2012(seed=0), x_host, labels, args.repeats,
                                                      pooled=False)
        write_report(args, rows)
    print("\n".join(report_lines(args, rows)))
    print(f"wrote {args.out_md} and {args.out_json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
