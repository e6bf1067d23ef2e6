"""The AlexNet training step on one process with two threads against two processes with one thread
each (data parallel over MPI), with the bytes each step sends and the time spent sending them.

    python benchmarks/scaling.py                      # alexnet2012, global batch 64, 3 steps after a warm-up
    python benchmarks/scaling.py --batch 32 --steps 5

Needs the ``mpi`` extra (``pip install -e ".[mpi]"``). The single process runs with
``NUMBA_NUM_THREADS=2``; the two ranks under ``mpiexec -n 2`` with ``NUMBA_NUM_THREADS=1`` each, each
taking half of every batch and summing the gradients with ``Group.allreduce`` (minicnn/distributed.py).
Prints a markdown table and the cost model of docs/scaling.md with this run's numbers in it.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np


def _steps(group, batch, steps, model_name, overlap=False):
    """Median seconds of a training step (and of its allreduce), after one warm-up step."""
    import minicnn as mc
    from minicnn import functional as F
    from minicnn import optim

    net = mc.models.get(model_name, seed=0)
    first, local = group.share(batch) if group is not None else (0, batch)
    for m in net.modules():
        if isinstance(m, mc.nn.Dropout):
            m.batch_offset = first
    opt = optim.SGD(net.parameters(), lr=0.001, momentum=0.9, weight_decay=5e-4)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, *net.input_size), dtype=np.float32)[first:first + local]
    labels = (np.arange(batch) % net.fc8.out_features)[first:first + local] if hasattr(net, "fc8") else \
        np.zeros(local, dtype=np.int64)
    step_times, comm_times = [], []
    for s in range(steps + 1):
        start = time.perf_counter()
        opt.zero_grad()
        loss = F.cross_entropy(net(mc.tensor(x)), labels)
        if group is not None:
            loss = loss * (local / batch)
        if overlap:  # the sums started as the gradients complete, during the backward
            from minicnn import autograd
            from minicnn.distributed import GradientReducer

            reducer = GradientReducer(group, list(net.parameters()))
            autograd.backward(loss, np.ones((), dtype=np.float32), on_leaf=reducer.add)
            comm = time.perf_counter()
            reducer.finish()
        else:
            loss.backward()
            comm = time.perf_counter()
            if group is not None:
                group.allreduce([p.grad for p in net.parameters()])
        comm = time.perf_counter() - comm
        opt.step()
        if s:  # the first step is the warm-up
            step_times.append(time.perf_counter() - start)
            comm_times.append(comm)
    return {"step": statistics.median(step_times), "allreduce": statistics.median(comm_times),
            "gradient_bytes": int(sum(p.data.nbytes for p in net.parameters())),
            "bytes_sent_per_step": (group.bytes_sent // (steps + 1)) if group is not None else 0}


def _tower_steps(group, batch, steps, model_name):
    """Median seconds of a training step of the two towers (each rank its own half of every layer,
    minicnn/towers.py), and the bytes this rank sent per step, layer by layer."""
    import minicnn as mc
    from minicnn import functional as F
    from minicnn import optim
    from minicnn.towers import Towers

    towers = Towers(mc.models.get(model_name, seed=0), group)
    opt = optim.SGD(towers.parameters(), lr=0.001, momentum=0.9, weight_decay=5e-4)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, *towers.input_size), dtype=np.float32)
    labels = np.arange(batch) % 1000
    step_times = []
    for s in range(steps + 1):
        start = time.perf_counter()
        opt.zero_grad()
        F.cross_entropy(towers(mc.tensor(x)), labels).backward()
        opt.step()
        if s:
            step_times.append(time.perf_counter() - start)
    per_layer = {name: (f + b) // (steps + 1) for name, (f, b) in towers.bytes.items()}
    return {"step": statistics.median(step_times), "bytes_sent_per_step": sum(per_layer.values()),
            "per_layer": per_layer}


def child(mode, batch, steps, model_name):
    group = None
    if mode in ("data", "data-overlap", "towers"):
        from minicnn.distributed import world

        group = world()
    if mode == "towers":
        result = _tower_steps(group, batch, steps, model_name)
    else:
        result = _steps(group, batch, steps, model_name, overlap=mode == "data-overlap")
    if group is None or group.rank == 0:
        print(json.dumps(result), flush=True)


def run_child(mode, batch, steps, model_name, threads, processes=1):
    command = [sys.executable, os.path.abspath(__file__), "--child", mode, "--batch", str(batch), "--steps", str(steps),
               "--model", model_name]
    if processes > 1:
        mpiexec = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
        if mpiexec is None:
            sys.exit("scaling.py: no mpiexec: pip install -e '.[mpi]'")
        command = [mpiexec, "-n", str(processes), *command]
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads))
    out = subprocess.run(command, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"scaling.py: {mode} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def format_report(args, single, data, towers=None):
    g = data["gradient_bytes"]
    sent = data["bytes_sent_per_step"]
    compute = single["step"]
    # A ring allreduce over N machines sends 2(N-1)/N of the gradients per machine per step. Data
    # parallelism over N machines pays while step/N + 2(N-1)/N * G / bandwidth < step, that is while
    # the bandwidth exceeds 2 G / step (for every N).
    break_even = 2 * g / compute
    lines = [
        f"`python benchmarks/scaling.py --batch {args.batch} --steps {args.steps}`: {args.model}, global batch "
        f"{args.batch}, float32, medians of {args.steps} steps after a warm-up.", "",
        "| layout | step | of which allreduce | gradient bytes sent per step and rank |", "|---|---|---|---|",
        f"| 1 process x 2 threads | {1e3 * single['step']:.0f} ms | - | - |",
        f"| 2 processes x 1 thread, data parallel | {1e3 * data['step']:.0f} ms | {1e3 * data['allreduce']:.0f} ms "
        f"| {sent / 1e6:.0f} MB handed to allreduce ({g / 1e6:.0f} MB of gradients) |"]
    if towers is not None:
        layers = ", ".join(f"{name} {b / 1e6:.1f}" for name, b in towers["per_layer"].items())
        lines.append(f"| 2 processes x 1 thread, the paper's two towers | {1e3 * towers['step']:.0f} ms | - "
                     f"| {towers['bytes_sent_per_step'] / 1e6:.0f} MB of activations and their gradients "
                     f"(MB: {layers}) |")
    lines += ["",
        f"Ring allreduce over N machines: each sends 2(N-1)/N x {g / 1e6:.0f} MB per step ({g / 1e6:.0f} MB at N = 2). "
        f"With this machine's step of {1e3 * compute:.0f} ms, data parallelism over N machines is faster than one "
        f"while the network carries more than 2 x {g / 1e6:.0f} MB / {compute:.2f} s = {break_even / 1e6:.0f} MB/s "
        f"({8 * break_even / 1e9:.1f} Gbit/s) per machine, whatever N."]
    if towers is not None:
        lines.append(f"The towers send {towers['bytes_sent_per_step'] / 1e6:.0f} MB per step and rank instead; two "
                     f"machines holding a tower each beat one while the network carries more than "
                     f"{towers['bytes_sent_per_step'] / 1e6:.0f} MB / ({compute:.2f} s / 2) = "
                     f"{2 * towers['bytes_sent_per_step'] / compute / 1e6:.0f} MB/s, if the halves take half the time "
                     f"(the exchanges are not overlapped with the compute).")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--batch", type=int, default=64, help="global batch size (default 64)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps after a warm-up (default 3)")
    parser.add_argument("--model", default="alexnet2012", help="network (default alexnet2012)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.batch < 2 or args.batch % 2 or args.steps < 1:
        parser.error("--batch must be an even number >= 2 and --steps positive")
    if args.child:
        child(args.child, args.batch, args.steps, args.model)
        return
    print("1 process x 2 threads ...", file=sys.stderr, flush=True)
    single = run_child("single", args.batch, args.steps, args.model, threads=2)
    print("2 processes x 1 thread ...", file=sys.stderr, flush=True)
    data = run_child("data", args.batch, args.steps, args.model, threads=1, processes=2)
    towers = None
    if args.model.startswith("alexnet2012"):
        print("2 processes x 1 thread, towers ...", file=sys.stderr, flush=True)
        towers = run_child("towers", args.batch, args.steps, args.model, threads=1, processes=2)
    print(format_report(args, single, data, towers))


if __name__ == "__main__":
    main()
