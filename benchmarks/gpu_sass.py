"""What the compiler makes of every GPU product kernel, on a machine without a GPU: registers, spills,
resident warps per SM, and the instructions one thread issues per step of the main loop, with the
share of them that are FFMAs (the multiply-adds): an upper bound on the fraction of the FP32 peak,
not a speed (minicnn/apps/sass.py says how it is counted), and how many of them are global loads
(LDG: the slab's values and, in a convolution, the index tables' entries).

    pip install -e ".[sass]"                      # NVIDIA's NVVM, ptxas and nvdisasm, from pip
    python benchmarks/gpu_sass.py                 # compute capability 9.0 (H100/H200)
    python benchmarks/gpu_sass.py --cc 8.0 --out-md sass.md --out-json sass.json

Covers every rung of the GEMM ladder (kernels/cuda/gemm_ladder.py) and every product the engine runs
(convolution forward, weight and input gradients, linear layers), float32. Exit code 1 when a kernel
spills registers, keeps an array in local memory, or has a double-precision instruction (in these
float32 kernels, an index compared through float64: Numba's type for int64 mixed with uint64).

A second table gives the kernels that loop over a window for each element (max and average pooling,
LRN): registers, calls to the 64-bit integer division routine (exit code 1 if any: these kernels index
in 32 bits, ``kernels/cuda/pool.py``), and the window loop's instructions per global load.

``--every-kernel`` also compiles every other kernel (element-wise, pooling, LRN, batch norm, softmax,
dropout, the optimisers, tensor arithmetic) with the argument types a small float32 workload gives
them, and fails on float64 arithmetic in any but those that add in float64 on purpose
(``sass.FLOAT64_ALLOWED``), and on a kernel the workload never launched.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy  # noqa: F401  (first, as users' scripts do)

from minicnn.apps import sass


def parse_cc(text):
    try:
        major, minor = (int(part) for part in text.split("."))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a compute capability such as 9.0, got {text!r}") from None
    return major, minor


def table_row(row):
    return (f"| {row['kernel']} | {row['registers']} | {row['spill_bytes']} | {row['stack_bytes']} "
            f"| {row['shared_bytes']} | {row['threads']} | {row['warps_per_sm']} | {row['instructions_per_step']:.0f} "
            f"| {row['ffma_per_step']} | {100 * row['ffma_share']:.0f}% | {row['global_loads_per_step']} "
            f"| {row['others']} |")


EVERY_HEADER = ("| kernel (module:function) | registers | spills (bytes) | local memory (bytes) | float64 instructions "
                "| allowed because | 64-bit division call sites |\n|---|---|---|---|---|---|---|")


def every_row(row):
    return (f"| {row['kernel']} | {row['registers']} | {row['spill_bytes']} | {row['stack_bytes']} "
            f"| {row['float64_instructions']} | {row['float64_allowed']} | {row['integer_divisions_64']} |")


WINDOW_HEADER = ("| window kernel | registers | spills (bytes) | float64 instructions | 64-bit division call sites "
                 "| window loop: instructions, global loads | instructions per global load |\n|---|---|---|---|---|---|---|")


def window_row(row):
    return (f"| {row['kernel']} | {row['registers']} | {row['spill_bytes']} | {row['float64_instructions']} "
            f"| {row['integer_divisions_64']} | {row['window_loop_instructions']}, {row['window_loop_loads']} "
            f"| {row['instructions_per_load']:.1f} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cc", type=parse_cc, default=(9, 0),
                        help="compute capability to compile for, major.minor (default 9.0: H100/H200; the "
                             "warps-per-SM column counts with 9.0's registers and shared memory)")
    parser.add_argument("--out-md", help="also write the table as Markdown to this file")
    parser.add_argument("--out-json", help="also write the rows as JSON to this file")
    parser.add_argument("--every-kernel", action="store_true",
                        help="also compile every other kernel (activations, pooling, LRN, batch norm, softmax, "
                             "dropout, optimisers, tensor arithmetic) with the argument types a float32 workload "
                             "gives them under the simulator (about a minute), and refuse float64 arithmetic in "
                             "any but the few that add in float64 on purpose")
    args = parser.parse_args(argv)
    try:
        sass.tools()
    except sass.ToolsMissing as error:
        print(error, file=sys.stderr)
        return 2
    cases = sass.kernel_cases()
    rows = []
    header = ("| kernel | registers | spills (bytes) | local memory (bytes) | shared (bytes) | threads | warps per SM "
              "| instructions per step | FFMA per step | FFMA share | global loads per step | the rest, most first |\n"
              "|---|---|---|---|---|---|---|---|---|---|---|---|")
    print(f"compute capability {args.cc[0]}.{args.cc[1]}; per thread, per step of the main loop\n\n{header}")
    for number, (name, kernel, argtypes, fmas_per_step, threads) in enumerate(cases, 1):
        print(f"[{number}/{len(cases)}] compiling {name}", file=sys.stderr, flush=True)
        row = sass.report(name, kernel, argtypes, fmas_per_step, threads, args.cc)
        rows.append(row)
        print(table_row(row), flush=True)
    print(f"\nthe kernels that loop over a window for each element, float32\n\n{WINDOW_HEADER}", flush=True)
    windows = []
    for name, kernel, argtypes in sass.window_kernel_cases():
        windows.append(sass.window_report(name, kernel, argtypes, args.cc))
        print(window_row(windows[-1]), flush=True)
    spilling = [row["kernel"] for row in rows + windows if row["spill_bytes"] or row.get("stack_bytes")]
    float64 = [row["kernel"] for row in rows + windows if row["float64_instructions"]]
    dividing = [row["kernel"] for row in windows if row["integer_divisions_64"]]
    every, not_launched = [], []
    if args.every_kernel:
        print("\nevery other kernel, float32 (the workload runs under the simulator in a child process)", flush=True)
        every, not_launched = sass.every_kernel(args.cc)
        print(f"\n{EVERY_HEADER}")
        for row in every:
            print(every_row(row))
        spilling += [row["kernel"] for row in every if row["spill_bytes"] or row["stack_bytes"]]
        float64 += [row["kernel"] for row in every if row["float64_instructions"] and not row["float64_allowed"]]
        if not_launched:
            print(f"kernels the workload never launched (so not checked): {', '.join(not_launched)}", file=sys.stderr)
    if args.out_md:
        with open(args.out_md, "w") as f:
            f.write(f"`python benchmarks/gpu_sass.py --cc {args.cc[0]}.{args.cc[1]}`\n\n{header}\n")
            f.writelines(table_row(row) + "\n" for row in rows)
            f.write(f"\n{WINDOW_HEADER}\n")
            f.writelines(window_row(row) + "\n" for row in windows)
            if every:
                f.write(f"\n{EVERY_HEADER}\n")
                f.writelines(every_row(row) + "\n" for row in every)
    if args.out_json:
        with open(args.out_json, "w") as f:
            json.dump({"cc": list(args.cc), "rows": rows, "window_kernels": windows, "every_kernel": every,
                       "not_launched": not_launched}, f,
                      indent=1)
    if spilling:
        print(f"spills or local memory in: {', '.join(spilling)}", file=sys.stderr)
    if float64:
        print(f"double-precision instructions in: {', '.join(float64)}", file=sys.stderr)
    if dividing:
        print(f"64-bit integer divisions in: {', '.join(dividing)}", file=sys.stderr)
    return 1 if spilling or float64 or dividing or not_launched else 0


if __name__ == "__main__":
    sys.exit(main())
