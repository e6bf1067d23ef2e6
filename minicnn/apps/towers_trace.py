"""``mpiexec -n 2 minicnn trace --parallel towers``: one forward and backward pass of alexnet2012 as the
paper's two towers (minicnn/towers.py), layer by layer: which tower computed each layer, the shapes
each tower held, and the bytes that crossed between the towers, forward and backward; then the
towers' logits, loss and gradients checked against the one-process network (float32: relative 1e-5).

Rank 0 prints; the exit code is 1 when the check fails.
"""
from __future__ import annotations

import json
import sys

import numpy as np

from .. import functional as F
from .. import models
from ..distributed import world
from ..errors import ArgumentError
from ..tensor import Tensor
from .trace import IMAGENET_MEAN, builtin_images

TOLERANCE = 1e-5  # float32, relative to the largest value: the sums differ only in their order


def run_towers_trace(model="alexnet2012", batch=2, seed=0, input_size=None, image=None, num_classes=None,
                     training=True, json_path=None, out=None):
    if not model.startswith("alexnet2012"):
        raise ArgumentError(f"trace: --parallel towers splits alexnet2012 or alexnet2012_caffe, got {model}")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ArgumentError(f"trace: batch must be a positive integer, got {batch!r}")
    from ..towers import Towers

    group = world()
    out = out or sys.stdout
    say = out.write if group.rank == 0 else (lambda text: None)
    kwargs = {"seed": seed, **({"input_size": input_size} if input_size else {}),
              **({"num_classes": num_classes} if num_classes else {})}
    net = models.get(model, **kwargs).train(training)
    towers = Towers(models.get(model, **kwargs).train(training), group)
    size = net.input_size[1]
    if image is not None:
        from ..data.folders import load_image

        pixels = np.repeat(load_image(image, size, "trace")[None], batch, axis=0)
    else:
        pixels = builtin_images(batch, size, seed)
    x = pixels - IMAGENET_MEAN[None, :, None, None]
    classes = net.fc8.out_features
    labels = np.arange(batch) % classes

    shapes = []
    h = Tensor(x)
    for name, what, step in towers.steps:
        h = step(h)
        shapes.append((name, what, h.shape))
    loss = F.cross_entropy(h, labels)
    loss.backward()
    grads = towers.full_grads()
    sent = {name: list(b) for name, b in towers.bytes.items()}
    other_sent = group.comm.gather(sent, root=0)

    one_logits = net(Tensor(x))
    one_loss = F.cross_entropy(one_logits, labels)
    one_loss.backward()

    def rel(a, b):
        return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))

    errors = {"logits": rel(h.data, one_logits.data), "loss": abs(loss.item() - one_loss.item()) / abs(one_loss.item()),
              "gradients": max(rel(grads[k], p.grad) for k, p in net.named_parameters())}
    ok = all(e <= TOLERANCE for e in errors.values())
    record = {"model": model, "batch": batch, "seed": seed, "input_size": size, "training": training,
              "layers": [], "errors": errors, "tolerance": TOLERANCE, "ok": ok}
    say(f"{model} as two towers on 2 processes, batch {batch}, {size}x{size} input, "
        f"{'training' if training else 'eval'} mode: rank 0 holds tower 1, rank 1 tower 2\n\n")
    say(f"{'layer':<9} {'computed by':<34} {'each tower holds':<22} {'bytes crossed fwd':>18} {'bwd':>12}\n")
    for name, what, shape in shapes:
        exchanged = what != "own" and name in sent and group.rank == 0  # (a gather shares its layer's name)
        crossed = [sum(ranks[name][i] for ranks in other_sent) if exchanged else 0 for i in (0, 1)]
        who = {"own": "each tower, its half", "gathered": "both: the halves gathered",
               "edges exchanged": "each tower, 2 edge maps borrowed"}[what]
        if name == "logits":
            who = "both: logits gathered, one loss"
        held = "x".join(str(d) for d in shape)
        say(f"{name:<9} {who:<34} {held:<22} {crossed[0]:>18,} {crossed[1]:>12,}\n")
        record["layers"].append({"layer": name, "computed": what, "shape": list(shape), "bytes_forward": crossed[0],
                                 "bytes_backward": crossed[1]})
    total = [sum(layer["bytes_forward"] for layer in record["layers"]),
             sum(layer["bytes_backward"] for layer in record["layers"])]
    record["bytes_total"] = total
    say(f"\nbetween the towers: {total[0]:,} bytes forward, {total[1]:,} backward "
        f"({(total[0] + total[1]) / 1e6:.2f} MB per step)\n")
    verdict = "ok" if ok else "FAILED"
    say(f"against the one-process {model}: logits {errors['logits']:.1e}, loss {errors['loss']:.1e}, "
        f"all 16 parameter gradients {errors['gradients']:.1e} (relative; tolerance {TOLERANCE:g}): {verdict}\n")
    if json_path and group.rank == 0:
        with open(json_path, "w") as f:
            json.dump(record, f, indent=1)
    return record
