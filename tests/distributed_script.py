"""Run under ``mpiexec -n 2``: data-parallel training steps against one process (tests/test_distributed.py).

Every rank trains alexnet_small (dropout on, LRN, grouped convolutions) for a few SGD steps on its
part of each batch, the gradients summed with ``Group.allreduce``; rank 0 then trains the same
network on the whole batches alone and prints, as one JSON line per dtype, how far apart the two
runs' losses and weights are, and whether every rank ended with the same weights.
"""
import json

import numpy as np

import minicnn as mc
from minicnn import functional as F
from minicnn import models, optim
from minicnn.distributed import world

STEPS, BATCH = 3, 8


def build(dtype):
    net = models.alexnet_small(10, 32, width=0.25, seed=3).astype(dtype)
    return net, optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)


def rel(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def main():
    group = world(timeout=120)
    first, local = group.share(BATCH)
    for dtype in (np.float64, np.float32):
        rng = np.random.default_rng(0)
        xs = rng.standard_normal((STEPS, BATCH, 3, 32, 32)).astype(dtype)
        ys = rng.integers(0, 10, (STEPS, BATCH))
        net, opt = build(dtype)
        for m in net.modules():
            if isinstance(m, mc.nn.Dropout):
                m.batch_offset = first
        losses = []
        for s in range(STEPS):
            opt.zero_grad()
            part = slice(first, first + local)
            loss = F.cross_entropy(net(mc.tensor(xs[s, part])), ys[s, part]) * (local / BATCH)
            loss.backward()
            group.allreduce([p.grad for p in net.parameters()])
            losses.append(group.sum_values([loss.item()])[0])
            opt.step()
        weights = {name: p.data.copy() for name, p in net.named_parameters()}
        everyone = group.comm.gather(weights, root=0)
        if group.rank != 0:
            continue
        alone, alone_opt = build(dtype)
        alone_losses = []
        for s in range(STEPS):
            alone_opt.zero_grad()
            loss = F.cross_entropy(alone(mc.tensor(xs[s])), ys[s])
            loss.backward()
            alone_losses.append(loss.item())
            alone_opt.step()
        print(json.dumps({
            "dtype": np.dtype(dtype).name,
            "loss_error": max(abs(a - b) / abs(b) for a, b in zip(losses, alone_losses)),
            "weight_error": max(rel(weights[name], p.data) for name, p in alone.named_parameters()),
            "identical_on_ranks": all(np.array_equal(other[k], weights[k]) for other in everyone for k in weights),
            "allreduce_bytes": group.bytes_sent,
        }), flush=True)


if __name__ == "__main__":
    main()
