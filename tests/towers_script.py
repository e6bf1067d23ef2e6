"""Run under ``mpiexec -n 2``: alexnet2012 split into its two towers against the one-process network
(tests/test_towers.py). Rank 0 prints one JSON line per dtype: the largest relative differences of
the logits, the loss and every parameter's gradient, and the bytes each layer sent."""
import json
import sys

import numpy as np

import minicnn as mc
from minicnn import functional as F
from minicnn import models
from minicnn.distributed import world
from minicnn.towers import Towers

BATCH = int(sys.argv[1]) if len(sys.argv) > 1 else 2
SIZE = int(sys.argv[2]) if len(sys.argv) > 2 else 67  # alexnet2012's smallest input: a quick check


def rel(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def main():
    group = world(timeout=300)
    for dtype in (np.float64, np.float32):
        for name in ("alexnet2012", "alexnet2012_caffe"):
            net = models.get(name, num_classes=10, input_size=SIZE, seed=1).astype(dtype)
            towers = Towers(models.get(name, num_classes=10, input_size=SIZE, seed=1).astype(dtype), group)
            rng = np.random.default_rng(0)
            x = rng.standard_normal((BATCH, 3, SIZE, SIZE)).astype(dtype)
            labels = rng.integers(0, 10, BATCH)
            logits = towers(mc.tensor(x))
            loss = F.cross_entropy(logits, labels)
            loss.backward()
            grads = towers.full_grads()
            if group.rank != 0:
                continue
            one_logits = net(mc.tensor(x))
            one_loss = F.cross_entropy(one_logits, labels)
            one_loss.backward()
            print(json.dumps({
                "dtype": np.dtype(dtype).name, "model": name,
                "logits": rel(logits.data, one_logits.data),
                "loss": abs(loss.item() - one_loss.item()) / abs(one_loss.item()),
                "grads": {k: rel(grads[k], p.grad) for k, p in net.named_parameters()},
                "layers": towers.layers(), "bytes": towers.bytes,
            }), flush=True)


if __name__ == "__main__":
    main()
