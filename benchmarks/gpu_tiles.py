"""Which tiles the GPU's matrix product should take, measured on AlexNet's own layers: every
convolution and linear layer of ``alexnet2012``, forward and backward, run through the engine's
product at each candidate tile shape, side by side in one run.

    python benchmarks/gpu_tiles.py                          # batch 128, 5 repeats
    python benchmarks/gpu_tiles.py --batch 16 --out-md gpu_tiles.md --out-json gpu_tiles.json

The engine picks its tiles by shape (``kernels/cuda/gemm.py``, ``choose_tiles``: 64 x 64, or thin
tiles for a product of a few rows). The static count (``benchmarks/gpu_sass.py``) says 128 x 128
tiles issue fewer instructions per multiply-add, but they keep half the warps resident and make
fewer blocks on small layers; 32 x 128 tiles issue more, but waste nothing on conv1's 96 rows (64 x
64 tiles spend a quarter of their work there on nothing): only the GPU can say which wins where,
and this script asks it. Each
candidate's results are checked against the default tiles' (within 1e-5 of the largest value: the
sums are the same, but split-K may cut them into other slices); a mismatch makes the exit code 1. conv1's input gradient is left out: training never asks for it. Under the CUDA simulator
(``NUMBA_ENABLE_CUDASIM=1``) it runs on small layers (``--small``): a check, not a timing.
"""
from __future__ import annotations

import argparse
import io
import json
import sys

import numpy as np

from minicnn.apps.bench import _Timer, gpu_software
from minicnn.kernels.cuda import conv, gemm, gemm_ladder, linear
from minicnn.kernels.cuda.launch import SIMULATED


def tiles_name(tiles):
    tpb_m, tpb_n, reg_m, reg_n, _ = tiles
    return f"{tpb_m * reg_m}x{tpb_n * reg_n}, {reg_m}x{reg_n} a thread"


# name -> tiles (TPB_M, TPB_N, REG_M, REG_N, TK): the default (64 x 64 on a GPU) first, then 128 x 128
# and 32 x 128 (gemm.WIDE: for conv1's 96 rows); under the simulator 8 x 8 tiles with 2 x 2 outputs a
# thread, 16 x 16 with 4 x 4, and 4 x 8 with 2 x 2
CANDIDATES = {tiles_name(tiles): tiles for tiles in (gemm.SQUARE, gemm_ladder.ENGINE_128, gemm.WIDE)}
TOLERANCE = 1e-5

# (name, input channels, input side, kernels, kernel side, stride, padding, groups) of alexnet2012's
# convolutions, and (name, inputs, outputs) of its linear layers
CONVS = [("conv1", 3, 227, 96, 11, 4, 0, 1), ("conv2", 96, 27, 256, 5, 1, 2, 2), ("conv3", 256, 13, 384, 3, 1, 1, 1),
         ("conv4", 384, 13, 384, 3, 1, 1, 2), ("conv5", 384, 13, 256, 3, 1, 1, 2)]
LINEARS = [("fc6", 9216, 4096), ("fc7", 4096, 4096), ("fc8", 4096, 1000)]
# the same kinds of layer, small enough for the simulator
SMALL_CONVS = [("conv_s4", 3, 11, 4, 3, 4, 0, 1), ("conv_g2", 4, 6, 6, 3, 1, 1, 2)]
SMALL_LINEARS = [("fc_small", 12, 9)]


def layer_runs(batch, small, rng):
    """(layer, op, multiply-adds, run) for each product: ``run()`` launches the op and returns its
    device results."""
    from numba import cuda

    runs = []
    for index, (name, c, side, k, ksz, stride, pad, groups) in enumerate(SMALL_CONVS if small else CONVS):
        x = cuda.to_device(rng.standard_normal((batch, c, side, side), dtype=np.float32))
        w = cuda.to_device(rng.standard_normal((k, c // groups, ksz, ksz), dtype=np.float32) * 0.1)
        b = cuda.to_device(np.zeros(k, np.float32))
        out = (side + 2 * pad - ksz) // stride + 1
        grad_y = cuda.to_device(rng.standard_normal((batch, k, out, out), dtype=np.float32))
        padding, strides = ((pad, pad), (pad, pad)), (stride, stride)
        macs = batch * k * out * out * (c // groups) * ksz * ksz
        first = index == 0  # the image's layer: no input gradient in training
        runs.append((name, "forward", macs, lambda x=x, w=w, b=b, s=strides, p=padding, g=groups:
                     (conv.conv2d_forward(x, w, b, s, p, g),)))
        runs.append((name, "backward", macs * (1 if first else 2),
                     lambda x=x, w=w, gy=grad_y, s=strides, p=padding, g=groups, first=first:
                     conv.conv2d_backward(x, w, gy, s, p, g, (not first, True, False))[:2]))
    for name, inputs, outputs in (SMALL_LINEARS if small else LINEARS):
        x = cuda.to_device(rng.standard_normal((batch, inputs), dtype=np.float32))
        w = cuda.to_device(rng.standard_normal((outputs, inputs), dtype=np.float32) * 0.01)
        b = cuda.to_device(np.zeros(outputs, np.float32))
        grad_y = cuda.to_device(rng.standard_normal((batch, outputs), dtype=np.float32))
        macs = batch * inputs * outputs
        runs.append((name, "forward", macs, lambda x=x, w=w, b=b: (linear.linear_forward(x, w, b),)))
        runs.append((name, "backward", 2 * macs,
                     lambda x=x, w=w, gy=grad_y: linear.linear_backward(x, w, gy, (True, True, False))[:2]))
    return runs


def _tiles_or_thin(default, tiles):
    """A ``gemm.choose_tiles`` that gives every product ``tiles``, but a thin product its thin ones."""
    def choose(m, n, k):
        chosen = default(m, n, k)
        return chosen if chosen == gemm.THIN else tiles
    return choose


def host(results):
    return [r.copy_to_host() for r in results if r is not None]


def sweep(batch=128, repeats=5, small=False, layers=None, out=None):
    """Times every layer's products (or those of ``layers``, names) at every candidate tile shape;
    returns the rows and the failures."""
    out = out or sys.stdout
    say = lambda text="": print(text, file=out, flush=True)  # noqa: E731
    rng = np.random.default_rng(0)
    runs = [run for run in layer_runs(batch, small, rng) if layers is None or run[0] in layers]
    names = list(CANDIDATES)
    say("| layer | op | " + " | ".join(f"{n} ms" for n in names) + " | faster | GFLOP/s at the faster |")
    say("|---|---|" + "---|" * len(names) + "---|---|")
    rows, failed, default = [], [], gemm.choose_tiles
    try:
        for layer, op, macs, run in runs:
            times, outputs = {}, {}
            for name, tiles in CANDIDATES.items():
                gemm.choose_tiles = _tiles_or_thin(default, tiles)
                outputs[name] = host(run())
                times[name], _ = _Timer("cuda", repeats)(run)
            reference = outputs[names[0]]
            for name in names[1:]:
                for got, want in zip(outputs[name], reference):
                    error = float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-30))
                    if error > TOLERANCE:
                        failed.append(f"{layer} {op} at {name}: off by {error:.1e}")
            best = min(times, key=times.get)
            rows.append({"layer": layer, "op": op, "multiply_adds": macs,
                         "ms": {n: 1e3 * t for n, t in times.items()}, "faster": best})
            say(f"| {layer} | {op} | " + " | ".join(f"{1e3 * times[n]:.3f}" for n in names)
                + f" | {best} | {2 * macs / times[best] / 1e9:.0f} |")
    finally:
        gemm.choose_tiles = default
    say("\neach candidate's results against the default tiles': "
        + ("all within %.0e" % TOLERANCE if not failed else "FAILED: " + "; ".join(failed)))
    return rows, failed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=128, help="batch size (default 128)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per product, median reported (default 5)")
    parser.add_argument("--small", action="store_true", help="small layers instead of AlexNet's (for the simulator)")
    parser.add_argument("--out-md", help="also write the table as Markdown to this file")
    parser.add_argument("--out-json", help="also write the rows as JSON to this file")
    args = parser.parse_args(argv)
    if args.batch < 1 or args.repeats < 1:
        parser.error(f"--batch and --repeats: expected positive counts, got {args.batch} and {args.repeats}")
    from minicnn import device

    if not device.cuda_available():
        print(f"gpu_tiles: needs a usable GPU or the simulator: {device.why_no_cuda()}", file=sys.stderr)
        return 2
    if SIMULATED and not args.small:
        print("gpu_tiles: under the simulator AlexNet's layers would take hours: add --small", file=sys.stderr)
        return 2

    report = io.StringIO()

    class Both(io.TextIOBase):  # the table on the terminal and in the report
        def write(self, text):
            sys.stdout.write(text)
            return report.write(text)

    rows, failed = sweep(args.batch, args.repeats, args.small, out=Both())
    software = gpu_software()
    if args.out_md:
        with open(args.out_md, "w") as f:
            f.write(f"`python benchmarks/gpu_tiles.py --batch {args.batch} --repeats {args.repeats}`; {software}\n\n"
                    + report.getvalue())
    if args.out_json:
        with open(args.out_json, "w") as f:
            json.dump({"batch": args.batch, "software": software, "rows": rows, "failed": failed}, f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
