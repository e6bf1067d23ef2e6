"""What the compiler makes of every CPU kernel on this machine: the masked stores in its machine code.

    python benchmarks/cpu_asm.py                      # every kernel a small training step compiles
    python benchmarks/cpu_asm.py --modules pool lrn   # only these modules of kernels/cpu

A loop whose body stores to an array only when a condition holds (``if v > best[m]: best[m] = v``,
or ``best[m] = v if v > best[m] else best[m]``, which LLVM turns back into the same) is vectorised
with masked stores. With AVX-512 they are plain stores under a mask register (counted, not judged);
AVX2 has them only as ``vmaskmovps`` / ``vpmaskmovd`` with a memory destination, which AMD's cores
run as microcode (on a Zen 3, max pooling's forward took 2.2x as long as with a blend and a plain
store: docs/benchmarks.md, "Measurements behind the CPU kernels"). Masked *loads* are cheap on
both and are counted apart. To see an AVX2 build's code on an AVX-512 machine, set Numba's target:
``NUMBA_CPU_NAME=haswell python benchmarks/cpu_asm.py``.

The script runs a training step of ``alexnet2012`` and ``alexnet_bn`` at batch 8 (every convolution
algorithm, pooling, LRN, batch norm, dropout, the loss) and an SGD and an Adam step, then compiles
every kernel of ``kernels/cpu`` again, without the cache, for each argument type it was called
with, and reads its assembly. One line per kernel; exit code 1 where a kernel has an AVX2 masked
store.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import re
import sys

import numpy as np  # first, as users' scripts do
import llvmlite.binding as llvm
import numba
from numba.core.registry import CPUDispatcher

import minicnn as mc
from minicnn import functional as F
from minicnn import models, optim
import minicnn.kernels.cpu as cpu_kernels

# AT&T syntax: the memory operand comes last, so a store's last operand is an address.
ADDRESS = r"[-\w]*\([^)]*\)"  # 16(%rax,%rsi,4)
AVX2_MASKED_STORE = re.compile(rf"^\s*vp?maskmov[a-z]+\s+%[xy]mm\d+,\s*%[xy]mm\d+,\s*{ADDRESS}\s*$", re.M)
AVX2_MASKED_LOAD = re.compile(rf"^\s*vp?maskmov[a-z]+\s+{ADDRESS},\s*%[xy]mm\d+,\s*%[xy]mm\d+\s*$", re.M)
AVX512_MASKED_STORE = re.compile(rf"^\s*vmov[a-z0-9]+\s+%[xyz]mm\d+,\s*{ADDRESS}\s*\{{%k\d\}}\s*$", re.M)


def count_masked(asm):
    """(AVX2 masked stores, AVX2 masked loads, AVX-512 masked stores) in AT&T assembly text."""
    return (len(AVX2_MASKED_STORE.findall(asm)), len(AVX2_MASKED_LOAD.findall(asm)),
            len(AVX512_MASKED_STORE.findall(asm)))


def run_workload():
    """Compile the kernels a small training step uses (float32, batch 8)."""
    rng = np.random.default_rng(0)
    for name in ("alexnet2012", "alexnet_bn"):
        model = models.get(name, num_classes=10, seed=0)
        x = mc.tensor(rng.standard_normal((8, 3, 227, 227)).astype(np.float32))
        F.cross_entropy(model(x), np.arange(8) % 10).backward()
        for opt in (optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4),
                    optim.Adam(model.parameters(), lr=1e-3)):
            opt.step()


def kernels(module_names=None):
    """(module name, function name, dispatcher) for every compiled Numba function of kernels/cpu."""
    found = []
    for info in pkgutil.walk_packages(cpu_kernels.__path__, cpu_kernels.__name__ + "."):
        short = info.name[len(cpu_kernels.__name__) + 1:]
        if module_names and short not in module_names and short.split(".")[-1] not in module_names:
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if isinstance(value, CPUDispatcher) and value.__module__ == module.__name__ and value.signatures:
                found.append((short, name, value))
    return found


def assembly(dispatcher, signature):
    """The function's assembly for one signature, compiled again without the cache (Numba does
    not keep the assembly of what it loaded from its cache)."""
    options = {k: v for k, v in dispatcher.targetoptions.items() if k not in ("cache", "nopython")}
    fresh = numba.njit(**options)(dispatcher.py_func)
    fresh.compile(signature)
    return fresh.inspect_asm(signature)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modules", nargs="+", metavar="MODULE",
                        help="only these modules of kernels/cpu (e.g. pool lrn conv.winograd; default all)")
    args = parser.parse_args(argv)
    print(f"compiling for CPU {numba.config.CPU_NAME or 'host'} ({llvm.get_host_cpu_name()} here)", file=sys.stderr)
    print("compiling the kernels of a small training step ...", file=sys.stderr, flush=True)
    run_workload()
    found = kernels(args.modules)
    if not found:
        print(f"cpu_asm: no compiled kernel in modules {args.modules}; expected names such as pool, lrn, conv.winograd",
              file=sys.stderr)
        return 2
    print("| kernel (module:function) | signatures | AVX2 masked stores | AVX2 masked loads | AVX-512 masked stores |\n"
          "|---|---|---|---|---|")
    offenders = []
    for number, (module, name, dispatcher) in enumerate(found, 1):
        print(f"[{number}/{len(found)}] {module}:{name}", file=sys.stderr, flush=True)
        totals = [0, 0, 0]
        for signature in dispatcher.signatures:
            totals = [a + b for a, b in zip(totals, count_masked(assembly(dispatcher, signature)))]
        print(f"| {module}:{name} | {len(dispatcher.signatures)} | {totals[0]} | {totals[1]} | {totals[2]} |", flush=True)
        if totals[0]:
            offenders.append(f"{module}:{name}")
    if offenders:
        print(f"\nAVX2 masked stores (microcoded on AMD): {', '.join(offenders)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
