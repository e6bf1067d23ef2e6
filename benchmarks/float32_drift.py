"""How far two float32 trainings that differ only in rounding drift apart, step by step.

    python benchmarks/float32_drift.py                    # 72 random batches, 1 to 3 steps
    python benchmarks/float32_drift.py --seeds 20 --steps 5

The two runs are what data parallelism on two processes computes and what one process computes:
``alexnet_small`` (width 0.25, 32-px input, dropout on) trained with SGD (lr 0.05, momentum 0.9) on
batches of 8 random images, once on the whole batch and once as two halves whose gradients are
summed (dropout's masks the same in both), so the runs differ only in the order of additions and in
the convolution algorithm a batch of 4 takes. For each number of steps it prints, over ``--seeds``
random batches, the largest relative difference of the weights (max |a - b| over the largest |b|
of each tensor), its median and maximum, and how many exceed 1e-5. In float32 they stay within
rounding until a ReLU input or a max-pooling window's top two lie within that rounding of a tie and
decide otherwise (docs/scaling.md).
"""
from __future__ import annotations

import argparse
import sys

import numpy as np  # first, as users' scripts do

import minicnn as mc
from minicnn import functional as F
from minicnn import models, optim

BATCH, SIZE = 8, 32


def train(xs, ys, steps, halves):
    """The weights after ``steps`` SGD steps, the whole batch at once or as two summed halves."""
    net = models.alexnet_small(10, SIZE, width=0.25, seed=3)
    opt = optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    dropouts = [m for m in net.modules() if isinstance(m, mc.nn.Dropout)]
    parts = (slice(0, BATCH // 2), slice(BATCH // 2, BATCH)) if halves else (slice(0, BATCH),)
    for step in range(steps):
        grads = [np.zeros_like(p.data) for p in net.parameters()]
        for part in parts:
            net.zero_grad()
            for d in dropouts:  # each part's masks are the whole batch's rows
                d.calls, d.batch_offset = step, part.start
            share = (part.stop - part.start) / BATCH
            loss = F.cross_entropy(net(mc.tensor(xs[step, part])), ys[step, part]) * share
            loss.backward()
            for g, p in zip(grads, net.parameters()):
                g += p.grad
        for g, p in zip(grads, net.parameters()):
            p.grad[...] = g
        opt.step()
    return {name: p.data.astype(np.float64) for name, p in net.named_parameters()}


def drift(seed, steps):
    rng = np.random.default_rng(seed)
    xs = rng.standard_normal((steps, BATCH, 3, SIZE, SIZE)).astype(np.float32)
    ys = rng.integers(0, 10, (steps, BATCH))
    whole, halves = train(xs, ys, steps, False), train(xs, ys, steps, True)
    return max(float(np.abs(halves[k] - w).max() / max(np.abs(w).max(), 1e-30)) for k, w in whole.items())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=72, help="random batches per step count (default 72)")
    parser.add_argument("--steps", type=int, default=3, help="the most steps; each count from 1 is run (default 3)")
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.steps < 1:
        parser.error(f"--seeds and --steps must be at least 1, got {args.seeds} and {args.steps}")
    print("| steps | batches | median difference | largest | over 1e-5 |\n|---|---|---|---|---|")
    for steps in range(1, args.steps + 1):
        differences = []
        for seed in range(args.seeds):
            differences.append(drift(seed, steps))
            print(f"\r{steps} step(s): {seed + 1}/{args.seeds}", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        over = sum(d > 1e-5 for d in differences)
        print(f"| {steps} | {args.seeds} | {np.median(differences):.1e} | {max(differences):.1e} | {over} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
