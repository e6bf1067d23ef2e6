"""What the compiler makes of a GPU kernel, without a GPU: its registers, spills and occupancy, and the
instructions of its main loop.

A GEMM spends its time in its main loop, the loop over the reduction, and a GPU's scheduler issues one
instruction per clock: only the FFMAs (fused multiply-adds) among them do the product's arithmetic.
So the share of FFMA among the instructions one thread issues per step of that loop bounds the
fraction of the FP32 peak the kernel can reach, whatever the memory does; index arithmetic, loads and
loop counting take the rest of the issue slots. The bound is not a speed (stalls on memory and
barriers come on top, and only a GPU measures those), but it can be read on any machine, and it
points at the instructions that cost it.

How: Numba compiles the kernel to PTX for a compute capability (``numba.cuda.compile_ptx``, with
NVIDIA's NVVM); ``ptxas`` assembles the PTX into the machine code the GPU runs (SASS) and reports
registers, spills and shared memory; ``nvdisasm`` lists the SASS. The three come from NVIDIA's pip
wheels (``pip install -e ".[sass]"``: nvidia-nvvm, nvidia-cuda-nvrtc, nvidia-cuda-nvcc,
nvidia-cuda-nvdisasm), with no GPU and no driver. The code is what a GPU of that capability runs
from Numba's PTX; the driver on a GPU machine may assemble it with another ptxas version.

Counting a loop's instructions per step: the main loop is the longest loop that holds FFMAs, and the
inner loop the shortest (over a slab of the reduction, when the compiler left it rolled). A thread
issues the main loop's instructions outside the inner loop once per step and the inner loop's once
per trip, the trips being what makes the step's multiply-adds come out right:
``instructions = main - inner + inner * trips``, ``trips = (fmas_per_step - (main's FFMAs - inner's))
/ inner's FFMAs``.
"""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..errors import MiniCNNError

# Per SM on compute capability 9.0 (H100/H200), from NVIDIA's tuning guide: registers, resident
# warps, resident blocks, shared memory a block may use.
REGISTERS_PER_SM, WARPS_PER_SM, BLOCKS_PER_SM, SHARED_PER_SM = 65536, 64, 32, 227 * 1024
REGISTER_GRANULE = 8  # registers per thread are allocated in steps of 8 (256 per warp)


class ToolsMissing(MiniCNNError):
    """NVIDIA's compiler wheels (the ``sass`` extra) are not installed, or Numba runs its simulator."""


def tools():
    """(ptxas, nvdisasm): the paths of NVIDIA's assembler and disassembler from the pip wheels."""
    from numba import config

    if config.ENABLE_CUDASIM:
        raise ToolsMissing("sass: the CUDA simulator is on (NUMBA_ENABLE_CUDASIM=1); the compiler's output "
                           "needs the real numba.cuda: run without it")
    spec = importlib.util.find_spec("nvidia")
    roots = [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []
    found = {}
    # the two programs this module runs, and the two libraries Numba's compile_ptx loads
    for name, pattern in (("ptxas", "cu*/bin/ptxas"), ("nvdisasm", "cu*/bin/nvdisasm"),
                          ("libnvvm", "cu*/lib/libnvvm.so*"), ("libnvrtc", "cu*/lib/libnvrtc.so*")):
        paths = sorted(p for root in roots for p in root.glob(pattern) if os.access(p, os.R_OK))
        if not paths:
            raise ToolsMissing(f"sass: NVIDIA's {name} is not installed; pip install -e \".[sass]\" installs it "
                               "(nvidia-cuda-nvcc, nvidia-cuda-nvdisasm, nvidia-nvvm, nvidia-cuda-nvrtc)")
        found[name] = str(paths[-1])
    return found["ptxas"], found["nvdisasm"]


@dataclass
class Compiled:
    ptx: str
    sass: str
    registers: int
    spill_bytes: int  # spill stores + spill loads, per thread
    stack_bytes: int  # local memory per thread (a cuda.local.array the compiler could not keep in registers)
    shared_bytes: int


def compile_kernel(pyfunc, argtypes, cc=(9, 0), max_registers=None):
    """The PTX, SASS and resource counts of the kernel ``pyfunc`` (a Python function written for
    ``cuda.jit``) for arguments of Numba types ``argtypes`` on compute capability ``cc``; with
    ``max_registers``, assembled under that cap, as the driver assembles a kernel given one."""
    from numba import cuda

    ptxas, nvdisasm = tools()
    ptx, _ = cuda.compile_ptx(pyfunc, tuple(argtypes), cc=cc)
    arch = f"sm_{cc[0]}{cc[1]}"
    with tempfile.TemporaryDirectory() as folder:
        ptx_path, cubin_path = os.path.join(folder, "kernel.ptx"), os.path.join(folder, "kernel.cubin")
        Path(ptx_path).write_text(ptx)
        cap = [f"-maxrregcount={max_registers}"] if max_registers else []
        assembled = subprocess.run([ptxas, f"-arch={arch}", "-v", *cap, ptx_path, "-o", cubin_path],
                                   capture_output=True, text=True)
        if assembled.returncode:
            raise RuntimeError(f"sass: ptxas failed on {pyfunc.__name__}: {assembled.stderr.strip()}")
        listing = subprocess.run([nvdisasm, "-c", cubin_path], capture_output=True, text=True, check=True).stdout
    report = assembled.stderr

    def number(pattern):
        found = re.search(pattern, report)
        return int(found.group(1)) if found else 0

    return Compiled(ptx, listing, number(r"Used (\d+) registers"),
                    number(r"(\d+) bytes spill stores") + number(r"(\d+) bytes spill loads"),
                    number(r"(\d+) bytes stack frame"), number(r"(\d+) bytes smem"))


_LABEL = re.compile(r"^\s*\.(L_x_\d+):")
_INSTRUCTION = re.compile(r"^\s*/\*[0-9a-f]+\*/\s+(?:@!?U?P[T\d]+\s+)?([A-Z][A-Z0-9_.]*)\s*([^;]*);")
_TARGET = re.compile(r"`\(\.(L_x_\d+)\)")


def loops(sass):
    """Every loop of a SASS listing as (first, last) instruction positions and the list of its
    instructions' opcodes (a branch back to a label makes a loop from the label to the branch)."""
    labels, opcodes, found = {}, [], []
    for line in sass.splitlines():
        label = _LABEL.match(line)
        if label:
            labels[label.group(1)] = len(opcodes)
            continue
        instruction = _INSTRUCTION.match(line)
        if instruction:
            opcode, operands = instruction.groups()
            opcodes.append(opcode)
            target = _TARGET.search(operands)
            if opcode.startswith("BRA") and target and labels.get(target.group(1), len(opcodes)) < len(opcodes):
                first = labels[target.group(1)]
                found.append(((first, len(opcodes) - 1), opcodes[first:]))
    return found


_SOFTWARE_DIVISION = re.compile(r"CALL\.REL\S*\s+`\(\$__internal_\d+_\$__cuda_sm20_(?:div|rem)_[su]64\)")


def integer_divisions_64(sass):
    """How many places of a listing call the GPU's routine for a 64-bit integer division or remainder
    (about 85 instructions: the GPU has no divide instruction; each call site first tests whether both
    operands fit in 32 bits and then takes an inline 32-bit division instead, about 20 instructions
    with the test). A 32-bit unsigned division is inline: about 10."""
    return len(_SOFTWARE_DIVISION.findall(sass))


def innermost_loop(sass):
    """(instructions, global loads) of the shortest loop of a listing with a global load in it: a window
    kernel's loop over its window (the compiler unrolls it, so both count several window elements)."""
    with_loads = [loop for _, loop in loops(sass) if any(op.startswith("LDG") for op in loop)]
    if not with_loads:
        raise ValueError("sass: the kernel has no loop with a global load in it")
    loop = min(with_loads, key=len)
    return len(loop), sum(1 for op in loop if op.startswith("LDG"))


def float64_instructions(sass):
    """How many double-precision instructions a listing has: in a float32 kernel, each one is an
    index compared or converted through float64 (Numba's type for int64 mixed with uint64)."""
    opcodes = (found.group(1) for found in map(_INSTRUCTION.match, sass.splitlines()) if found)
    return sum(1 for op in opcodes if op.startswith(("DADD", "DMUL", "DFMA", "DSETP", "DMNMX")) or ".F64" in op)


def _ffma(opcodes):
    return sum(1 for op in opcodes if op.startswith("FFMA"))


@dataclass
class LoopMix:
    per_step: Counter  # opcode (its first word) -> how many a thread issues per step of the main loop
    inner_trips: int = 1

    @property
    def instructions(self):
        return sum(self.per_step.values())

    @property
    def ffma_share(self):
        return self.per_step["FFMA"] / self.instructions


def main_loop_mix(sass, fmas_per_step):
    """The instructions one thread issues per step of the kernel's main loop, where a step does
    ``fmas_per_step`` multiply-adds (the module's docstring gives the count)."""
    with_ffma = [(span, loop) for span, loop in loops(sass) if _ffma(loop)]
    if not with_ffma:
        raise ValueError("sass: the kernel has no loop with an FFMA in it")
    (main_first, main_last), main = max(with_ffma, key=lambda found: len(found[1]))
    inner = min((loop for (first, last), loop in with_ffma if main_first <= first and last <= main_last), key=len)
    main_ops, inner_ops = (Counter(op.split(".")[0] for op in loop) for loop in (main, inner))
    if len(main) == len(inner):  # one loop level: the compiler unrolled (or there is no) inner loop
        return LoopMix(main_ops)
    trips = (fmas_per_step - (_ffma(main) - _ffma(inner))) / _ffma(inner)
    if trips < 1 or trips != int(trips):
        raise ValueError(f"sass: {fmas_per_step} multiply-adds per step do not fit the loops found "
                         f"({_ffma(main)} FFMA in the main loop, {_ffma(inner)} in the inner one)")
    per_step = main_ops - inner_ops
    for op, count in inner_ops.items():
        per_step[op] += count * int(trips)
    return LoopMix(per_step, int(trips))


def warps_per_sm(registers, threads, shared_bytes):
    """Resident warps per SM (of 64) on compute capability 9.0, from registers, shared memory and
    the block size, whichever runs out first."""
    warps_per_block = -(-threads // 32)
    registers_per_warp = -(-max(registers, 1) // REGISTER_GRANULE) * REGISTER_GRANULE * 32
    blocks = min(BLOCKS_PER_SM, WARPS_PER_SM // warps_per_block,
                 (REGISTERS_PER_SM // registers_per_warp) // warps_per_block,
                 SHARED_PER_SM // shared_bytes if shared_bytes else BLOCKS_PER_SM)
    return blocks * warps_per_block


def report(name, kernel, argtypes, fmas_per_step, threads, cc=(9, 0)):
    """One row: what the compiler made of ``kernel`` (a ``launch.jit`` kernel)."""
    compiled = compile_kernel(kernel.dispatcher.py_func, argtypes, cc, kernel.max_registers)
    mix = main_loop_mix(compiled.sass, fmas_per_step)
    return {"kernel": name, "registers": compiled.registers, "spill_bytes": compiled.spill_bytes,
            "stack_bytes": compiled.stack_bytes, "shared_bytes": compiled.shared_bytes, "threads": threads,
            "float64_instructions": float64_instructions(compiled.sass),
            "warps_per_sm": warps_per_sm(compiled.registers, threads, compiled.shared_bytes),
            "instructions_per_step": mix.instructions, "ffma_per_step": mix.per_step["FFMA"],
            "global_loads_per_step": mix.per_step["LDG"],
            "ffma_share": mix.ffma_share,
            "others": ", ".join(f"{op} {n}" for op, n in mix.per_step.most_common(7) if op != "FFMA")}


def _types(*examples):
    """The Numba types of arguments like ``examples`` (host arrays stand in for device arrays: the
    types are the same)."""
    from numba import typeof

    return tuple(typeof(example) for example in examples)


def kernel_cases():
    """(name, kernel, argument types, multiply-adds per step of the main loop, threads per block) for
    every rung of the GEMM ladder and every product the engine runs (convolution and linear layers,
    at the tiles they get), float32."""
    import numpy as np

    from ..kernels.cuda import conv, gemm, gemm_ladder, linear

    f32, i64 = np.float32, np.int64
    cases = []
    for name, (_, make) in gemm_ladder.RUNGS.items():
        rung = make()
        cases.append((f"ladder: {name}", rung.kernel, _types(*rung.example_arguments), rung.fmas_per_step,
                      rung.threads))

    def engine_product(name, product, tiles, *examples):
        tpb_m, tpb_n, reg_m, reg_n, tk = tiles
        kernel = product.compiled(f32, tiles)[0]
        argtypes = _types(*examples, np.zeros((1, 1, 1), f32), 1, 1)  # + partial sums, splits, k_chunk
        cases.append((name, kernel, argtypes, reg_m * reg_n * tk, tpb_m * tpb_n))

    flat, table, four_d = np.zeros(4, f32), np.zeros((2, 2), i64), np.zeros((1, 1, 1, 1), f32)
    conv_geom = (0,) * 18
    for name, product in (("conv forward", conv._forward), ("conv forward + ReLU", conv._forward_relu)):
        engine_product(name, product, gemm.SQUARE, conv_geom, flat, (flat, table, table), four_d, flat)
    engine_product("conv forward (wide tiles, a candidate for conv1's 96 rows)", conv._forward, gemm.WIDE, conv_geom,
                   flat, (flat, table, table), four_d, flat)
    engine_product("conv weight gradient", conv._weight_grad, gemm.SQUARE, conv_geom, (flat, table),
                   (flat, table, table), flat, four_d)
    for tiles, label in ((gemm.SQUARE, ""), (gemm.THIN, " (thin tiles: conv1)")):
        engine_product(f"conv input gradient{label}", conv._input_grad, tiles, conv_geom, (flat, table),
                       (flat, table, table), flat, table)
    matrix, geom = np.zeros((2, 2), f32), (0, 0, 0)
    engine_product("linear forward + ReLU", linear._forward_relu, gemm.SQUARE, geom, matrix, matrix, matrix, flat)
    engine_product("linear weight gradient", linear._weight_grad, gemm.SQUARE, geom, matrix, matrix, matrix, matrix)
    return cases


def window_kernel_cases():
    """(name, kernel, argument types) of the kernels that loop over a window for each element (max and
    average pooling, LRN), float32, as their host functions launch them: flat arrays, uint32 sizes."""
    import numpy as np

    from ..kernels.cuda import lrn, pool

    flat, index, table, size = np.zeros(4, np.float32), np.zeros(4, np.int32), np.zeros(4, np.uint32), np.uint32(1)
    f32, yes = np.float32(1), True
    return [("max pooling forward", pool._forward, _types(flat, *(size,) * 10, flat, index)),
            ("max pooling backward", pool._backward, _types(flat, index, *(size,) * 10, f32, flat)),
            ("average pooling forward", pool._avg_forward, _types(flat, size, size, table, table, flat, table, table, flat,
                                                                  f32, flat)),
            ("average pooling backward", pool._avg_backward, _types(flat, size, size, table, table, flat, table, table,
                                                                    flat, f32, flat)),
            ("LRN forward", lrn._forward, _types(flat, size, size, size, f32, f32, f32, yes, flat, flat)),
            ("LRN backward", lrn._backward, _types(flat, flat, flat, flat, size, size, size, f32, f32, yes, flat))]


def window_report(name, kernel, argtypes, cc=(9, 0)):
    """One row: registers, 64-bit division call sites, float64 instructions, and the window loop's
    instructions per global load."""
    compiled = compile_kernel(kernel.dispatcher.py_func, argtypes, cc)
    instructions, loads = innermost_loop(compiled.sass)
    return {"kernel": name, "registers": compiled.registers, "spill_bytes": compiled.spill_bytes,
            "integer_divisions_64": integer_divisions_64(compiled.sass),
            "float64_instructions": float64_instructions(compiled.sass),
            "window_loop_instructions": instructions, "window_loop_loads": loads,
            "instructions_per_load": instructions / loads}


# ---- every kernel, not only the products ------------------------------------------------------
# The element-wise kernels (activations, pooling, LRN, batch norm, softmax, dropout, the optimisers'
# updates, tensor arithmetic) have no main loop worth counting: they should be bound by memory. What
# can go wrong in them is index arithmetic (a 64-bit division per element: ``integer_divisions_64``,
# and ``window_kernel_cases`` for the kernels that loop over a window) and precision: Numba types a Python number as float64, so ``x if c else 0`` or
# ``x * 0.5`` on a float32 value computes in float64 and converts back (an H100 does float64 at half
# the float32 rate, and each conversion is an instruction). To compile each one, its argument types
# are needed: a small float32 workload runs every op forward and backward under the simulator, in a
# process of its own, and records each kernel launch's Numba types (``launch.recorder``).

# Kernels whose float64 instructions are reported, not refused, and why.
FLOAT64_ALLOWED = {
    "minicnn.kernels.cuda.elementwise:_sum": "adds in float64 partials on purpose (elementwise.py)",
    "minicnn.kernels.cuda.elementwise:_add_pieces": "adds a long sum's float64 pieces (elementwise.py)",
    "minicnn.kernels.cuda.reduce:_channel_sums": "dL/db adds in float64 on purpose (reduce.py)",
    "minicnn.kernels.cuda.batchnorm:_stats": "batch norm's statistics add in float64 on purpose",
    "minicnn.kernels.cuda.batchnorm:_grad_sums": "batch norm's gradient sums add in float64 on purpose",
    "minicnn.kernels.cuda.batchnorm:_train_grad_x": "computes as its CPU twin does (an integer count in the "
                                                    "formula makes both float64)",
}


def _workload():
    """Every op on "cuda", forward and backward, in float32 at small sizes (run under the simulator)."""
    import numpy as np

    import minicnn as mc
    from minicnn import nn

    from ..kernels import backends

    F = mc.functional  # noqa: N806
    rng = np.random.default_rng(0)

    def leaf(*shape):
        return mc.tensor(rng.standard_normal(shape).astype(np.float32), requires_grad=True).to("cuda")

    x, w = leaf(2, 4, 7, 7), leaf(4, 2, 3, 3)
    y = F.conv2d(x * leaf(4, 1, 1), w, leaf(4), stride=2, padding=1, groups=2)
    y = F.local_response_norm(F.relu(y), 3, 1e-4, 0.75, 2.0)
    y = F.local_response_norm(y, 3, 1e-4, 0.5, 2.0) + F.max_pool2d(y, 3, 1, 1)
    y = F.batch_norm(F.avg_pool2d(y, 3, 1, 1), None, None, training=True)
    h = F.dropout(F.sigmoid(F.flatten(y)) * F.tanh(F.flatten(y)), 0.5, True, 3)
    logits = F.linear(h, leaf(3, h.shape[1]), leaf(3))
    loss = F.cross_entropy(logits, np.array([0, 2])) + F.log_softmax(logits).mean() + F.softmax(logits).sum()
    penalty = (w * w).sum() / 2 - w.mean(dim=(0, 2), keepdim=True).sum() ** 2 + (x - 1.5).sum() * 0.5
    (loss + penalty).backward()

    net = nn.Sequential(("conv", nn.Conv2d(3, 4, 3)), ("relu", nn.ReLU()), ("bn", nn.BatchNorm2d(4)),
                        ("flatten", nn.Flatten()), ("fc", nn.Linear(4 * 3 * 3, 2))).to("cuda")
    batch = mc.tensor(rng.standard_normal((2, 3, 5, 5)).astype(np.float32)).to("cuda")
    for optimiser in (mc.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4),
                      mc.optim.Adam(net.parameters(), lr=1e-3)):
        optimiser.zero_grad()
        F.cross_entropy(net(batch), np.array([1, 0])).backward()
        optimiser.step()
    net.eval()
    net(batch).sum().backward()
    param = net.fc.weight.data
    backends.get("cuda").sgd.sgd_step(param, param, param.copy(), 0.1, 0.9, 0.0)  # one parameter's update alone


def record_launches(workload=_workload):
    """{kernel name: [Numba argument types, ...]} of every kernel ``workload()`` launches (under the
    simulator: the types are those a GPU run would compile for)."""
    from numba import typeof

    from ..kernels.cuda import launch

    seen = {}

    def record(kernel, args):
        if "<locals>" in kernel.name:  # the products make_gemm builds: kernel_cases()' (and their split-K sum)
            return
        types = tuple(typeof(arg) for arg in args)
        if types not in seen.setdefault(kernel.name, []):
            seen[kernel.name].append(types)

    launch.recorder = record
    try:
        workload()
    finally:
        launch.recorder = None
    return seen


def _record_to(path):
    """(Run by ``every_kernel``'s child process, under the simulator.)"""
    import pickle

    Path(path).write_bytes(pickle.dumps(record_launches()))


def module_kernels():
    """{name: kernel} of every kernel defined at the top level of a ``minicnn.kernels.cuda`` module
    (the products ``gemm.make_gemm`` builds are ``kernel_cases()``')."""
    import pkgutil

    from ..kernels import cuda as package
    from ..kernels.cuda import launch

    found = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for value in vars(module).values():
            if isinstance(value, launch.jit) and value.name.startswith(module.__name__ + ":"):
                found[value.name] = value
    return found


def every_kernel(cc=(9, 0)):
    """One row per (module-level kernel, argument types) that the float32 workload launches: its
    registers, spills, stack and float64 instructions; and the names of the kernels it never
    launched. The workload runs under the simulator in a child process (this one compiles)."""
    import pickle
    import sys

    tools()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "launches.pickle"
        env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
        child = subprocess.run([sys.executable, "-c", f"from minicnn.apps.sass import _record_to; _record_to({str(path)!r})"],
                               env=env, capture_output=True, text=True)
        if child.returncode:
            raise RuntimeError(f"sass: the simulator workload failed:\n{child.stderr[-3000:]}")
        launched = pickle.loads(path.read_bytes())
    kernels, rows = module_kernels(), []
    for name in sorted(launched):
        for argtypes in launched[name]:
            compiled = compile_kernel(kernels[name].dispatcher.py_func, argtypes, cc)
            rows.append({"kernel": name.replace("minicnn.kernels.cuda.", ""), "registers": compiled.registers,
                         "spill_bytes": compiled.spill_bytes, "stack_bytes": compiled.stack_bytes,
                         "float64_instructions": float64_instructions(compiled.sass),
                         "integer_divisions_64": integer_divisions_64(compiled.sass),
                         "float64_allowed": FLOAT64_ALLOWED.get(name, "")})
    return rows, sorted(set(kernels) - set(launched))
