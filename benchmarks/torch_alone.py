"""PyTorch's training step and forward, timed in a process where minicnn was never imported.

    python benchmarks/torch_alone.py MODEL.pt BATCH.npz THREADS REPEATS

``benchmarks/alexnet_cpu.py`` saves its PyTorch twin (the same weights) and the batch, and runs this
so that the baseline is PyTorch as its users run it: nothing minicnn does at import (it starts
Numba's threads, and sets NumPy's BLAS to one thread while its own products run) can reach it.
Prints one JSON line: {"step": seconds, "forward": seconds}, medians of REPEATS after a warm-up.
"""
import json
import statistics
import sys
import time

import numpy as np
import torch


def main(model_path, batch_path, threads, repeats):
    assert "minicnn" not in sys.modules
    torch.set_num_threads(threads)
    net = torch.load(model_path, weights_only=False)
    batch = np.load(batch_path)
    x, labels = torch.tensor(batch["x"]), torch.tensor(batch["labels"])
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    def step():
        net.train()
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), labels).backward()
        opt.step()

    def forward():
        net.eval()
        with torch.no_grad():
            net(x)

    times = {"step": [], "forward": []}
    for r in range(repeats + 1):  # the first round is the warm-up
        for name, fn in (("step", step), ("forward", forward)):
            start = time.perf_counter()
            fn()
            if r:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


if __name__ == "__main__":
    if sys.argv[1:] in (["-h"], ["--help"]):
        print(__doc__)
        sys.exit(0)
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    print(json.dumps(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
