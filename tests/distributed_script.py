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
# alexnet_bn is compared after one step: with batch norm over 8 random images at lr 0.05 the training
# is chaotic, a difference of 1e-13 after the first step (the sums' order) growing 30x a step.
BN_STEPS = 1
# float32 is compared after one step too. Two ranks round differently from one process (the gradient
# sums' order; conv2 takes the Fourier path for 8 images and im2col for 4), by about 1e-7 of each
# layer's scale, and from the second step on a ReLU input or a pooling window's top two that lie
# that close to a tie can decide otherwise, sending that element's gradient elsewhere: in 72 random
# batches (`python benchmarks/float32_drift.py`), after one step at most 1.1e-6 apart, after two 1
# batch over 1e-5 (1.7e-2), after three 2 (the largest 2.5e-4).
FLOAT32_STEPS = 1


def build(dtype, model="alexnet_small"):
    if model == "alexnet_small":
        net = models.alexnet_small(10, 32, width=0.25, seed=3).astype(dtype)
    else:  # batch norm after every layer: its statistics are the whole batch's only with sync_group set
        net = models.alexnet_bn(10, SIZES[model], seed=3).astype(dtype)
    return net, optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)


SIZES = {"alexnet_small": 32, "alexnet_bn": 64}


def rel(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def overlapped_steps(group, dtype, model, sync, xs, ys, first, local):
    """The same steps with the sums started during the backward (GradientReducer): the same bits."""
    from minicnn import autograd
    from minicnn.distributed import GradientReducer

    net, opt = build(dtype, model)
    for m in net.modules():
        if isinstance(m, mc.nn.Dropout):
            m.batch_offset = first
    for s in range(len(xs)):
        opt.zero_grad()
        part = slice(first, first + local)
        loss = F.cross_entropy(net(mc.tensor(xs[s, part])), ys[s, part]) * (local / BATCH)
        reducer = GradientReducer(group, list(net.parameters()))
        autograd.backward(loss, np.ones((), dtype=dtype), on_leaf=reducer.add)
        reducer.finish()
        opt.step()
    return {name: p.data.copy() for name, p in net.named_parameters()}


def main():
    group = world(timeout=120)
    first, local = group.share(BATCH)
    cases = [(np.float64, "alexnet_small", False), (np.float32, "alexnet_small", False),
             (np.float64, "alexnet_bn", True), (np.float64, "alexnet_bn", False)]
    for dtype, model, sync in cases:
        rng = np.random.default_rng(0)
        size = SIZES[model]
        steps = BN_STEPS if model == "alexnet_bn" else FLOAT32_STEPS if dtype == np.float32 else STEPS
        xs = rng.standard_normal((steps, BATCH, 3, size, size)).astype(dtype)
        ys = rng.integers(0, 10, (steps, BATCH))
        net, opt = build(dtype, model)
        for m in net.modules():
            if isinstance(m, mc.nn.Dropout):
                m.batch_offset = first
            if isinstance(m, (mc.nn.BatchNorm1d, mc.nn.BatchNorm2d)) and sync:
                m.sync_group = group
        losses = []
        for s in range(steps):
            opt.zero_grad()
            part = slice(first, first + local)
            loss = F.cross_entropy(net(mc.tensor(xs[s, part])), ys[s, part]) * (local / BATCH)
            loss.backward()
            group.allreduce([p.grad for p in net.parameters()])
            losses.append(group.sum_values([loss.item()])[0])
            opt.step()
        weights = {name: p.data.copy() for name, p in net.named_parameters()}
        overlapped = overlapped_steps(group, dtype, model, sync, xs, ys, first, local) if not sync else weights
        buffers = {name: b.data.copy() for name, b in net.named_buffers()}  # batch norm's running statistics
        everyone = group.comm.gather((weights, buffers), root=0)
        if group.rank != 0:
            continue
        alone, alone_opt = build(dtype, model)
        alone_losses = []
        for s in range(steps):
            alone_opt.zero_grad()
            loss = F.cross_entropy(alone(mc.tensor(xs[s])), ys[s])
            loss.backward()
            alone_losses.append(loss.item())
            alone_opt.step()
        alone_state = {name: np.asarray(value) for name, value in alone.state_dict().items()}
        ours = {**weights, **buffers}
        print(json.dumps({
            "dtype": np.dtype(dtype).name, "model": model, "sync_bn": sync, "steps": steps,
            "loss_error": max(abs(a - b) / abs(b) for a, b in zip(losses, alone_losses)),
            "weight_error": max(rel(weights[name], alone_state[name]) for name in weights),
            "statistics_error": max((rel(buffers[name], alone_state[name]) for name in buffers), default=0.0),
            "overlap_identical": all(np.array_equal(overlapped[k], weights[k]) for k in weights),
            "identical_on_ranks": all(np.array_equal(other[k], weights[k]) for other, _ in everyone for k in weights),
            "statistics_identical_on_ranks": all(np.array_equal(other[k], buffers[k]) for _, other in everyone
                                                 for k in buffers),
            "allreduce_bytes": group.bytes_sent,
            "worst": max(ours, key=lambda name: rel(ours[name], alone_state[name])),
        }), flush=True)


if __name__ == "__main__":
    main()
