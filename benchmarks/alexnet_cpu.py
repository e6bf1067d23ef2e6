"""The 2012 AlexNet on this CPU: minicnn against PyTorch, side by side, in one run.

    python benchmarks/alexnet_cpu.py                          # batch 64, 3 repeats, writes the report
    python benchmarks/alexnet_cpu.py --batch 16 --repeats 5 --out-md docs/alexnet_cpu.md

What it measures, alternating minicnn and PyTorch (same shapes, same weights, same thread count),
each figure the median of ``--repeats`` runs after a warm-up run:

- the machine's reference speeds: NumPy SGEMM (GFLOP/s, 2048^3; sampled after each round of the
  per-layer timings and of the matrix products' timings, side by side with them, the median taken as
  the peak; also at the start and the end of the run, to show the drift) and copy bandwidth (at the
  start);
- a whole training step (forward, cross-entropy, backward, SGD momentum 0.9 + weight decay) and
  the eval-mode forward pass, in images/s; and the training step of the same network written as
  textbook NumPy (``numpy_textbook.py``: DeZero/CS231n-style im2col and ``@``);
- every layer's forward and backward (layers run one at a time on detached inputs, so each
  backward is timed alone), with GFLOP/s and the fraction of SGEMM for convolutions and fully
  connected layers, GB/s and the fraction of copy bandwidth for the memory-bound ones, and the
  optimiser step alone;
- the whole step again in a child process started with glibc told to keep freed memory
  (``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736 MALLOC_TOP_PAD_=268435456``), both
  engines in that same environment;
- peak memory (the high-water mark of RSS, VmHWM) of two training steps, each engine in a process
  of its own;
- time to the first line of ``minicnn trace`` with the Numba cache warm.

It writes a markdown report and JSON (``--out-md``, ``--out-json``).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np  # first, as users' scripts do: minicnn's speed does not depend on the order (both are timed)

import numba
import minicnn as mc
from minicnn import functional as F
from minicnn import nn, optim
from minicnn.apps.bench import copy_bandwidth_gbs, describe_machine, sgemm_gflops
from minicnn.kernels.cpu import blas
from minicnn.tensor import Tensor

MALLOC_KEEP = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "68719476736", "MALLOC_TOP_PAD_": "268435456"}
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the sibling modules below

from numpy_textbook import TextbookNet  # noqa: E402
from torch_twin import torch_twin  # noqa: E402


def _torch():
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(mc_threads())
    return torch


def mc_threads():
    import numba

    return numba.config.NUMBA_NUM_THREADS


def build(model_name, batch, seed=0):
    """The minicnn network (the paper's init), an input batch and labels."""
    net = mc.models.get(model_name, seed=seed)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, *net.input_size), dtype=np.float32)
    labels = np.arange(batch) % net.fc8.out_features
    return net, x, labels


# ---- whole steps ------------------------------------------------------------------------------
def minicnn_step(net, x, labels):
    opt = optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    xt = Tensor(x)

    def step():
        net.train()
        opt.zero_grad()
        F.cross_entropy(net(xt), labels).backward()
        opt.step()

    def forward():
        net.eval()
        with mc.no_grad():
            net(xt)

    return step, forward, opt


def torch_step(torch, twin, x, labels):
    opt = torch.optim.SGD(twin.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    xt, yt = torch.tensor(x), torch.tensor(labels)

    def step():
        twin.train()
        opt.zero_grad()
        torch.nn.functional.cross_entropy(twin(xt), yt).backward()
        opt.step()

    def forward():
        twin.eval()
        with torch.no_grad():
            twin(xt)

    return step, forward, opt


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def alternate(repeats, **candidates):
    """Median seconds of each candidate, run alternately, after one warm-up run each."""
    for fn in candidates.values():
        fn()
    times = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            times[name].append(timed(fn))
    return {name: statistics.median(t) for name, t in times.items()}


def time_textbook(net, x, labels):
    """Seconds of the second of two training steps of the textbook NumPy network (its saved
    activations and im2col matrices, several GB, are freed on return)."""
    textbook = TextbookNet(net)
    return [timed(lambda: textbook.train_step(x, labels)) for _ in range(2)][-1]


# ---- per layer ----------------------------------------------------------------------------------
def layer_work(net, x_shape):
    """(kind, forward work, backward work) per layer: FLOPs for conv/fc, bytes for the rest."""
    work = {}
    h = mc.tensor(np.zeros(x_shape, np.float32))
    with mc.no_grad():
        for i, (name, layer) in enumerate(net.named_children()):
            out = layer(h)
            n_in, n_out = int(np.prod(h.shape)), int(np.prod(out.shape))
            if isinstance(layer, nn.Conv2d):
                macs = n_out * layer.weight.shape[1] * layer.weight.shape[2] * layer.weight.shape[3]
                work[name] = ("flop", 2 * macs, 2 * macs * (1 if i == 0 else 2))  # conv1: no input gradient
            elif isinstance(layer, nn.Linear):
                macs = n_out * layer.in_features
                work[name] = ("flop", 2 * macs, 4 * macs)
            elif isinstance(layer, nn.Flatten):
                work[name] = ("none", 0, 0)
            else:  # read the input, write the output; backward reads the gradient (and input), writes one
                work[name] = ("bytes", 4 * (n_in + n_out), 4 * (n_in + 2 * n_out) if isinstance(layer, nn.MaxPool2d)
                              else 4 * (2 * n_in + n_out))
            h = out
    return work


class MatmulClock:
    """While active, times every ``blas.matmul`` and ``blas.product`` call and counts its FLOPs (2*K
    per output element, 4 times that for complex numbers).

    minicnn's CPU kernels hand all their matrix products to ``kernels/cpu/blas.py`` (im2col convolutions,
    Winograd's per-entry products, the Fourier path's transforms and products, the fc layers),
    so this separates a layer's time in BLAS from the time in its own kernels. ``blas.product``
    calls run side by side on minicnn's threads (im2col's images: one thread multiplies while
    another copies), so their seconds are summed over the threads and divided by the thread
    count: the wall time they take if the threads share the products evenly. The wrapper adds
    about a microsecond per call."""

    def __init__(self):
        self.seconds, self.flops = 0.0, 0
        self._lock = threading.Lock()

    def reading(self):
        return self.seconds, self.flops

    def _timed(self, call, share):
        def timed(a, b, out):
            start = time.perf_counter()
            call(a, b, out)
            elapsed = time.perf_counter() - start
            *stack, m, n = np.shape(out)
            members = math.prod(stack)  # a stack's products (1 for one product)
            with self._lock:
                self.seconds += elapsed * share()
                self.flops += members * blas.flop(m, np.shape(a)[-1], n, complex_values=np.iscomplexobj(out))
            return out

        return timed

    def __enter__(self):
        self._calls = blas.matmul, blas.product
        blas.matmul = self._timed(blas.matmul, lambda: 1.0)
        blas.product = self._timed(blas.product, lambda: 1.0 / numba.get_num_threads())
        return self

    def __exit__(self, *exc):
        blas.matmul, blas.product = self._calls

    @contextlib.contextmanager
    def paused(self):
        """The products untimed for a while (the SGEMM samples between rounds are not a layer's)."""
        timed, (blas.matmul, blas.product) = (blas.matmul, blas.product), self._calls
        try:
            yield
        finally:
            blas.matmul, blas.product = timed


def layer_by_layer(layers, first_input, leaf, logits_grad, zero_grads, clock=None):
    """Two closures: the forward of every layer, one at a time, on detached inputs (``leaf(h,
    requires_grad)``), and the backward of each in reverse order, passing the gradient by hand;
    each records its seconds per layer in the returned ``state`` (with a ``MatmulClock``, also
    the (seconds, FLOPs) of the matrix products inside each layer). Works for both engines:
    their tensors share ``backward(grad)`` and ``.grad``."""
    state = {}

    def products_since(before):
        return tuple(now - then for now, then in zip(clock.reading(), before)) if clock else (0.0, 0)

    def forward():
        zero_grads()
        h, ins, outs, secs, products = first_input(), [], [], [], []
        for i, layer in enumerate(layers):
            x = leaf(h, i > 0)
            before = clock.reading() if clock else None
            start = time.perf_counter()
            out = layer(x)
            secs.append(time.perf_counter() - start)
            products.append(products_since(before))
            ins.append(x)
            outs.append(out)
            h = out
        state.update(ins=ins, outs=outs, grad=logits_grad(h), fwd=secs, fwd_products=products)

    def backward():
        grad, secs, products = state["grad"], [0.0] * len(layers), [(0.0, 0)] * len(layers)
        for i in reversed(range(len(layers))):
            before = clock.reading() if clock else None
            start = time.perf_counter()
            state["outs"][i].backward(grad)
            secs[i] = time.perf_counter() - start
            products[i] = products_since(before)
            grad = state["ins"][i].grad
        state.update(bwd=secs, bwd_products=products)

    return forward, backward, state


def minicnn_layers(net, x, labels, clock=None):
    def logits_grad(h):
        logits = Tensor(h.data, requires_grad=True)
        F.cross_entropy(logits, labels).backward()
        return logits.grad

    def zero_grads():
        net.train()
        net.zero_grad()

    return layer_by_layer(list(net.children()), lambda: Tensor(x), lambda h, grad: Tensor(h.data, requires_grad=grad),
                          logits_grad, zero_grads, clock)


def torch_layers(torch, twin, x, labels):
    def logits_grad(h):
        logits = h.detach().requires_grad_(True)
        torch.nn.functional.cross_entropy(logits, torch.tensor(labels)).backward()
        return logits.grad

    def zero_grads():
        twin.train()
        twin.zero_grad(set_to_none=True)

    return layer_by_layer(list(twin), lambda: torch.tensor(x), lambda h, grad: h.detach().requires_grad_(grad),
                          logits_grad, zero_grads)


def per_layer(net, x, labels, torch, twin, repeats, between_rounds=lambda: None):
    """Per layer, the median seconds of each engine's forward and backward; ``between_rounds`` runs
    after each timed round (``measure`` takes an SGEMM sample there)."""
    names = [name for name, _ in net.named_children()]
    runs = {"minicnn": minicnn_layers(net, x, labels)}
    if torch is not None:
        runs["pytorch"] = torch_layers(torch, twin, x, labels)
    samples = {k: {"fwd": [], "bwd": []} for k in runs}
    for r in range(repeats + 1):
        for key, (f, b, st) in runs.items():
            f()
            b()
            if r:  # the first round is the warm-up
                samples[key]["fwd"].append(st["fwd"])
                samples[key]["bwd"].append(st["bwd"])
        if r:
            between_rounds()
    return names, {k: {p: np.median(np.array(v[p]), axis=0).tolist() for p in v} for k, v in samples.items()}


def matrix_products(net, x, labels, repeats, between_rounds=lambda: None):
    """minicnn's layers again, one at a time, with every matrix product timed: per layer and
    pass, the median seconds of the layer and of its products, and the products' FLOPs."""
    clock = MatmulClock()
    forward, backward, state = minicnn_layers(net, x, labels, clock)
    samples = []
    with clock:
        for r in range(repeats + 1):
            forward()
            backward()
            if r:  # the first round is the warm-up
                samples.append({p: (state[p], [s for s, _ in state[p + "_products"]]) for p in ("fwd", "bwd")})
                with clock.paused():
                    between_rounds()
    result = {}
    for p in ("fwd", "bwd"):
        result[p] = {"layer_s": np.median([s[p][0] for s in samples], axis=0).tolist(),
                     "products_s": np.median([s[p][1] for s in samples], axis=0).tolist(),
                     "products_flop": [f for _, f in state[p + "_products"]]}
    return result


def optimiser_step(net, x, labels, torch, twin, repeats):
    step, _, opt = minicnn_step(net, x, labels)
    step()
    candidates = {"minicnn": opt.step}
    if torch is not None:
        tstep, _, topt = torch_step(torch, twin, x, labels)
        tstep()
        candidates["pytorch"] = topt.step
    return alternate(repeats, **candidates)


# ---- child processes ----------------------------------------------------------------------------
def child(mode, model_name, batch, repeats):
    """Run in a process of its own: 'memory-minicnn'/'memory-pytorch' (peak RSS of two steps),
    'steps' (whole training steps of both engines, alternating) or 'steps-minicnn' (minicnn's
    alone, for the import orders)."""
    torch = _torch() if mode in ("memory-pytorch", "steps") else None
    net, x, labels = build(model_name, batch)
    if mode == "steps-minicnn":
        step, forward, _ = minicnn_step(net, x, labels)
        return alternate(repeats, step=step, forward=forward)
    if mode == "steps":
        step, _, _ = minicnn_step(net, x, labels)
        candidates = {"minicnn": step}
        if torch is not None:
            candidates["pytorch"] = torch_step(torch, torch_twin(torch, net), x, labels)[0]
        return alternate(repeats, **candidates)
    if mode == "memory-pytorch":
        twin = torch_twin(torch, net)
        del net
        step = torch_step(torch, twin, x, labels)[0]
    else:
        step = minicnn_step(net, x, labels)[0]
    before = _status_mb("VmRSS")
    step()
    step()
    return {"peak_mb": _status_mb("VmHWM"), "model_built_mb": before}


def _status_mb(field):
    """A memory figure of this process from /proc/self/status, in MB. (Not ru_maxrss: Linux carries
    that over from the parent across fork and exec, so a child would report the parent's peak.)"""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"alexnet_cpu: no {field} in /proc/self/status")


def run_child(mode, model_name, batch, repeats, env=None, first_import=None):
    """This script in a child process; ``first_import`` names a module imported before it runs (so
    "minicnn" runs it with minicnn imported before NumPy)."""
    arguments = [os.path.abspath(__file__), "--child", mode, "--model", model_name, "--batch", str(batch),
                 "--repeats", str(repeats)]
    if first_import:
        arguments = ["-c", f"import {first_import}, runpy, sys; sys.argv = sys.argv[1:]; "
                           "runpy.run_path(sys.argv[0], run_name='__main__')", *arguments]
    result = subprocess.run([sys.executable, *arguments], env=dict(os.environ, **(env or {})), capture_output=True,
                            text=True)
    if result.returncode != 0:
        raise RuntimeError(f"alexnet_cpu: child {mode} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def pytorch_alone(torch, twin, x, labels, repeats):
    """PyTorch's step and forward in a process minicnn never touched (``torch_alone.py``)."""
    with tempfile.TemporaryDirectory() as folder:
        model_path, batch_path = os.path.join(folder, "twin.pt"), os.path.join(folder, "batch.npz")
        torch.save(twin, model_path)
        np.savez(batch_path, x=x, labels=labels)
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_alone.py")
        result = subprocess.run([sys.executable, script, model_path, batch_path, str(mc_threads()), str(repeats)],
                                capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"alexnet_cpu: torch_alone.py failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def warm_trace_start():
    """Seconds from starting ``minicnn trace`` to its first line of output (cache warm: run once first)."""
    command = [sys.executable, "-m", "minicnn", "trace", "--checks", "0"]
    subprocess.run(command, capture_output=True)
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    process.stdout.readline()
    first = time.perf_counter() - start
    process.communicate()
    return first


# ---- report -------------------------------------------------------------------------------------
def measure(model_name="alexnet2012", batch=64, repeats=3, progress=print):
    torch = _torch()
    result = {"machine": describe_machine(), "model": model_name, "batch": batch, "repeats": repeats,
              "threads": mc_threads(), "torch": torch.__version__ if torch is not None else None}
    progress("reference speeds ...")
    sgemm = {"start": sgemm_gflops()}
    result["copy_gbs"] = copy_bandwidth_gbs()
    net, x, labels = build(model_name, batch)
    twin = torch_twin(torch, net) if torch is not None else None
    progress("whole training step and forward ...")
    step, forward, _ = minicnn_step(net, x, labels)
    candidates = {"minicnn step": step, "minicnn forward": forward}
    if torch is not None:
        tstep, tforward, _ = torch_step(torch, twin, x, labels)
        candidates.update({"pytorch step": tstep, "pytorch forward": tforward})
    result["whole"] = alternate(repeats, **candidates)
    progress("minicnn in both import orders, PyTorch alone (child processes) ...")
    result["orders"] = {"numpy first": run_child("steps-minicnn", model_name, batch, repeats),
                        "minicnn first": run_child("steps-minicnn", model_name, batch, repeats, first_import="minicnn")}
    if torch is not None:
        result["pytorch_alone"] = pytorch_alone(torch, twin, x, labels, repeats)
    progress("textbook NumPy training step (two runs) ...")
    result["textbook_step"] = time_textbook(net, x, labels)
    progress("per layer ...")
    alongside = []  # one SGEMM sample after each round of layer timings

    def sample_sgemm():
        alongside.append(sgemm_gflops(repeats=1))

    names, layers = per_layer(net, x, labels, torch, twin, repeats, sample_sgemm)
    result["layers"] = {"names": names, "times": layers, "work": layer_work(net, x.shape)}
    progress("matrix products inside each layer ...")
    result["layers"]["products"] = matrix_products(net, x, labels, repeats, sample_sgemm)
    progress("optimiser step ...")
    result["optimiser_step"] = optimiser_step(net, x, labels, torch, twin, repeats)
    result["parameters"] = net.num_parameters()
    del net, twin, step, forward, candidates
    progress("whole step with the allocator keeping freed memory (child process) ...")
    result["whole_malloc_keep"] = run_child("steps", model_name, batch, repeats, MALLOC_KEEP)
    progress("peak memory (child processes) ...")
    result["memory"] = {"minicnn": run_child("memory-minicnn", model_name, batch, 1)}
    if torch is not None:
        result["memory"]["pytorch"] = run_child("memory-pytorch", model_name, batch, 1)
    progress("warm trace start ...")
    result["trace_first_output_s"] = warm_trace_start()
    sgemm["end"] = sgemm_gflops()
    # The reference for "% of SGEMM" is the median of the samples taken between the rounds of the
    # layer timings, side by side with what they are compared with: this VM's SGEMM has read
    # anywhere from 136 to 304 GFLOP/s within an hour (start and end are kept to show the drift).
    sgemm["alongside the layers"] = alongside
    result["sgemm_samples"], result["sgemm_gflops"] = sgemm, statistics.median(alongside)
    return result


def format_report(r):
    b, whole = r["batch"], r["whole"]
    alongside = r["sgemm_samples"]["alongside the layers"]
    has_torch = r["torch"] is not None
    model_flag = "" if r["model"] == "alexnet2012" else f" --model {r['model']}"
    out = [f"`python benchmarks/alexnet_cpu.py{model_flag} --batch {b} --repeats {r['repeats']}`: {r['model']} "
           f"({r['parameters']:,} parameters), batch {b}, float32, {r['threads']} threads; medians of "
           f"{r['repeats']} runs after a warm-up, minicnn and PyTorch {r['torch'] or '(not installed)'} alternating.",
           "", f"Machine: {r['machine']}. NumPy SGEMM {r['sgemm_gflops']:.0f} GFLOP/s (2048^3; the median of "
           f"{len(alongside)} samples taken between the rounds of the per-layer timings and of the products' timings, "
           + ", ".join(f"{g:.0f}" for g in alongside)
           + f"; {r['sgemm_samples']['start']:.0f} at the start of the run, {r['sgemm_samples']['end']:.0f} at its end), "
           f"copy bandwidth {r['copy_gbs']:.1f} GB/s (read + write, at the start).", ""]
    out += ["| | minicnn | PyTorch | minicnn / PyTorch time |", "|---|---|---|---|"]

    def row(label, ours, theirs):
        ratio = f"{ours / theirs:.2f}" if theirs else "-"
        out.append(f"| {label} | {1e3 * ours:.0f} ms ({b / ours:.1f} img/s) | "
                   + (f"{1e3 * theirs:.0f} ms ({b / theirs:.1f} img/s)" if theirs else "-") + f" | {ratio} |")

    row("training step", whole["minicnn step"], whole.get("pytorch step"))
    keep = r["whole_malloc_keep"]
    row("training step, glibc keeping freed memory", keep["minicnn"], keep.get("pytorch"))
    row("forward (eval mode)", whole["minicnn forward"], whole.get("pytorch forward"))
    alone = r.get("pytorch_alone") or {}
    for order, label in (("numpy first", "`import numpy` first"), ("minicnn first", "`import minicnn` first")):
        timing = r["orders"][order]
        row(f"training step, {label} (own process), against PyTorch alone in its own", timing["step"],
            alone.get("step"))
        row(f"forward, {label} (own process), against PyTorch alone", timing["forward"], alone.get("forward"))
    textbook = r["textbook_step"]
    out.append(f"| training step of the textbook NumPy im2col network (`numpy_textbook.py`, second of two runs) "
               f"| {1e3 * textbook:.0f} ms ({b / textbook:.1f} img/s): minicnn is {textbook / whole['minicnn step']:.1f}x "
               f"faster | | |")
    opt = r["optimiser_step"]
    sgd_bytes = 5 * 4 * r["parameters"]
    out.append(f"| SGD step alone ({sgd_bytes / 1e9:.2f} GB moved) | {1e3 * opt['minicnn']:.0f} ms "
               f"({sgd_bytes / opt['minicnn'] / 1e9:.1f} GB/s) | "
               + (f"{1e3 * opt['pytorch']:.0f} ms ({sgd_bytes / opt['pytorch'] / 1e9:.1f} GB/s)" if has_torch else "-")
               + (f" | {opt['minicnn'] / opt['pytorch']:.2f} |" if has_torch else " | - |"))
    mem = r["memory"]
    out.append(f"| peak RSS of two steps (after building) | {mem['minicnn']['peak_mb']:.0f} MB "
               f"({mem['minicnn']['model_built_mb']:.0f}) | "
               + (f"{mem['pytorch']['peak_mb']:.0f} MB ({mem['pytorch']['model_built_mb']:.0f})" if has_torch else "-")
               + (f" | {mem['minicnn']['peak_mb'] / mem['pytorch']['peak_mb']:.2f} |" if has_torch else " | - |"))
    out += ["", f"Warm `minicnn trace` start: first line after {r['trace_first_output_s']:.2f} s.", "",
            "Per layer (each layer timed alone on a detached input; backward includes the weight gradient). "
            "Convolutions and fc layers: GFLOP/s and % of SGEMM, counting a direct convolution's "
            "multiply-adds (conv3-5 run Winograd F(2x2, 3x3), which does 2.25x fewer, and conv2 products of "
            "Fourier transforms, 4-5x fewer counting the transforms' own products, so their rate is an effective one and can pass SGEMM's); the others: GB/s of the bytes they must read and write, "
            "and % of copy bandwidth.", "",
            "| layer | fwd minicnn | fwd PyTorch | bwd minicnn | bwd PyTorch | fwd rate (% peak) | bwd rate (% peak) |",
            "|---|---|---|---|---|---|---|"]
    layers = r["layers"]
    for i, name in enumerate(layers["names"]):
        kind, work_f, work_b = layers["work"][name]
        ours = layers["times"]["minicnn"]
        theirs = layers["times"].get("pytorch")

        def rate(work, seconds):
            if kind == "none" or seconds <= 0:
                return "-"
            if kind == "flop":
                g = work / seconds / 1e9
                return f"{g:.0f} GFLOP/s ({100 * g / r['sgemm_gflops']:.0f}%)"
            g = work / seconds / 1e9
            return f"{g:.1f} GB/s ({100 * g / r['copy_gbs']:.0f}%)"

        def ms(t):
            return f"{1e3 * t:.1f}"

        out.append(f"| {name} | {ms(ours['fwd'][i])} | {ms(theirs['fwd'][i]) if theirs else '-'} | "
                   f"{ms(ours['bwd'][i])} | {ms(theirs['bwd'][i]) if theirs else '-'} | "
                   f"{rate(work_f, ours['fwd'][i])} | {rate(work_b, ours['bwd'][i])} |")
    totals = [sum(layers["times"][k][p]) for k in layers["times"] for p in ("fwd", "bwd")]
    out.append("| **sum** | " + " | ".join(f"**{1e3 * t:.0f}**" for t in
                                           ([totals[0], totals[2], totals[1], totals[3]] if has_torch else
                                            [totals[0], 0, totals[1], 0])) + " | | |")
    if "products" in layers:
        out += ["", *format_products(layers, r["sgemm_gflops"])]
    return "\n".join(out) + "\n"


def format_products(layers, sgemm_gflops):
    """The table of the matrix products inside minicnn's conv and fc layers (``matrix_products``)."""
    out = ["The matrix products inside minicnn's layers (the layers run again, one at a time, with every "
           "`blas.matmul` and `blas.product` timed by `MatmulClock`). The products' own rate is their FLOPs over their time; their "
           "FLOPs differ from a direct convolution's where the kernel computes more (a stride-1 im2col's wide rows) "
           "or less (Winograd, the Fourier path: transforms and complex products, a complex multiply-add "
           "counted as 4 real ones). The ceiling is the layer's rate, counted as in the table above, if everything but the "
           "products took no time: a layer whose ceiling is under 80% of SGEMM cannot reach 80% with these "
           "products, however fast its own kernels.", "",
           "| layer | pass | layer rate (% SGEMM) | products' FLOPs / direct | products' own rate (% SGEMM) "
           "| ceiling (% SGEMM) | products' share of the layer's time |",
           "|---|---|---|---|---|---|---|"]

    def pct(gflops):
        return f"{gflops:.0f} GFLOP/s ({100 * gflops / sgemm_gflops:.0f}%)"

    for i, name in enumerate(layers["names"]):
        kind, work_f, work_b = layers["work"][name]
        for p, work in (("fwd", work_f), ("bwd", work_b)):
            seen = layers["products"][p]
            flop, secs, layer_s = seen["products_flop"][i], seen["products_s"][i], seen["layer_s"][i]
            if kind != "flop" or flop == 0 or secs <= 0:
                continue
            out.append(f"| {name} | {p} | {pct(work / layer_s / 1e9)} | {flop / work:.2f} | {pct(flop / secs / 1e9)} "
                       f"| {pct(work / secs / 1e9)} | {100 * secs / layer_s:.0f}% |")
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--model", default="alexnet2012", help="network (default alexnet2012)")
    parser.add_argument("--batch", type=int, default=64, help="batch size (default 64)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per figure after a warm-up (default 3)")
    parser.add_argument("--out-md", default="alexnet_cpu.md", help="markdown report (default alexnet_cpu.md)")
    parser.add_argument("--out-json", default="alexnet_cpu.json", help="JSON results (default alexnet_cpu.json)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.batch < 1 or args.repeats < 1:
        parser.error("--batch and --repeats must be positive")
    if args.child:
        print(json.dumps(child(args.child, args.model, args.batch, args.repeats)))
        return
    result = measure(args.model, args.batch, args.repeats, progress=lambda m: print(m, file=sys.stderr, flush=True))
    report = format_report(result)
    with open(args.out_md, "w") as f:
        f.write(report)
    with open(args.out_json, "w") as f:
        json.dump(result, f, indent=1)
    print(report)


if __name__ == "__main__":
    main()
