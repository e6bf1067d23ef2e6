"""The GEMM ladder on this machine's GPU: every rung of ``kernels/cuda/gemm_ladder.py`` on one SGEMM,
beside cuBLAS through PyTorch (TF32 off), in one run.

    python benchmarks/gemm_ladder.py                              # 4096^3, 5 repeats, writes gemm_ladder.md
    python benchmarks/gemm_ladder.py --size 8192 --repeats 10 --out-md docs/gemm_ladder.md

The same as ``minicnn bench --ladder SIZE``, with the report also written as Markdown (the card, its
driver and the software versions on top) and JSON. Each rung's product is checked against cuBLAS's;
a rung off by more than ``minicnn.apps.bench.LADDER_TOLERANCE`` makes the exit code 1. Under Numba's
CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) it runs too, at a small ``--size``: a check, not a timing.
"""
from __future__ import annotations

import argparse
import io
import json
import sys

import numpy  # noqa: F401  (first, as users' scripts do)

from minicnn.apps.bench import gpu_software, run_ladder


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=4096, help="M = N = K (default 4096)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per rung, median reported (default 5)")
    parser.add_argument("--out-md", default="gemm_ladder.md", help="Markdown report (default gemm_ladder.md)")
    parser.add_argument("--out-json", default="gemm_ladder.json", help="JSON results (default gemm_ladder.json)")
    args = parser.parse_args(argv)
    report = io.StringIO()

    class Both(io.TextIOBase):  # the table on the terminal and in the report
        def write(self, text):
            sys.stdout.write(text)
            return report.write(text)

    result = run_ladder(args.size, args.repeats, out=Both())
    result["software"] = gpu_software()
    with open(args.out_md, "w") as f:
        f.write(f"`python benchmarks/gemm_ladder.py --size {args.size} --repeats {args.repeats}`; "
                f"{result['software']}\n\n" + report.getvalue())
    with open(args.out_json, "w") as f:
        json.dump(result, f, indent=1)
    print(f"wrote {args.out_md} and {args.out_json}")
    return 1 if result["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
