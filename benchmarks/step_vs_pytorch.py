"""The AlexNet training step, minicnn against PyTorch, at several batch sizes: the headline numbers.

    python benchmarks/step_vs_pytorch.py                         # batches 16, 64, 128; 3 repeats
    python benchmarks/step_vs_pytorch.py --batches 64 --repeats 5

For each batch size, each figure the median of ``--repeats`` runs after a warm-up, each engine in a
process of its own (``alexnet_cpu.py``'s children):

- minicnn's step and eval forward with ``import numpy`` first (as users' scripts start), and with
  ``import minicnn`` first;
- PyTorch's, in a process where minicnn was never imported (``torch_alone.py``): PyTorch as its
  users run it;
- both engines again, alternating in one process started with glibc told to keep freed memory
  (``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736 MALLOC_TOP_PAD_=268435456``), which
  helps PyTorch's allocator.

``alexnet_cpu.py`` gives the full report (per layer, memory, products) at one batch size.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy  # noqa: F401  (first, as users' scripts do: the order must not matter)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the sibling modules below

from alexnet_cpu import MALLOC_KEEP, _torch, build, mc_threads, pytorch_alone, run_child, torch_twin  # noqa: E402

from minicnn.apps.bench import describe_machine  # noqa: E402


def measure(batches, repeats, model_name="alexnet2012", progress=print):
    torch = _torch()
    rows = []
    for batch in batches:
        progress(f"batch {batch} ...")
        row = {"batch": batch,
               "numpy first": run_child("steps-minicnn", model_name, batch, repeats),
               "minicnn first": run_child("steps-minicnn", model_name, batch, repeats, first_import="minicnn"),
               "malloc keep": run_child("steps", model_name, batch, repeats, MALLOC_KEEP)}
        if torch is not None:
            net, x, labels = build(model_name, batch)
            row["pytorch alone"] = pytorch_alone(torch, torch_twin(torch, net), x, labels, repeats)
        rows.append(row)
    return {"machine": describe_machine(), "model": model_name, "repeats": repeats, "threads": mc_threads(),
            "torch": torch.__version__ if torch is not None else None, "rows": rows}


def format_report(r):
    out = [f"`python benchmarks/step_vs_pytorch.py --batches {' '.join(str(row['batch']) for row in r['rows'])} "
           f"--repeats {r['repeats']}`: {r['model']}, float32, {r['threads']} threads, SGD with momentum and weight "
           f"decay; medians of {r['repeats']} runs after a warm-up, each engine in a process of its own; PyTorch "
           f"{r['torch'] or '(not installed)'} in a process minicnn never touched. Machine: {r['machine']}.", "",
           "| batch | minicnn step, `import numpy` first | `import minicnn` first | PyTorch step | ratio | "
           "minicnn forward | PyTorch forward | ratio | glibc keeping memory: minicnn, PyTorch | ratio |",
           "|---|---|---|---|---|---|---|---|---|---|"]

    def ms(seconds):
        return f"{1e3 * seconds:.0f} ms"

    def ratio(ours, theirs):
        return f"{ours / theirs:.2f}" if theirs else "-"

    for row in r["rows"]:
        ours, other, keep = row["numpy first"], row["minicnn first"], row["malloc keep"]
        theirs = row.get("pytorch alone") or {}
        keep_theirs = keep.get("pytorch")
        cells = [str(row["batch"]), ms(ours["step"]), ms(other["step"]),
                 ms(theirs["step"]) if theirs else "-", ratio(ours["step"], theirs.get("step")),
                 ms(ours["forward"]), ms(theirs["forward"]) if theirs else "-", ratio(ours["forward"], theirs.get("forward")),
                 f"{ms(keep['minicnn'])}, {ms(keep_theirs) if keep_theirs else '-'}", ratio(keep["minicnn"], keep_theirs)]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--batches", type=int, nargs="+", default=[16, 64, 128], help="batch sizes (default 16 64 128)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per figure after a warm-up (default 3)")
    parser.add_argument("--model", default="alexnet2012", help="network (default alexnet2012)")
    args = parser.parse_args(argv)
    if min(args.batches) < 1 or args.repeats < 1:
        parser.error("--batches and --repeats must be positive")
    print(format_report(measure(args.batches, args.repeats, args.model,
                                progress=lambda m: print(m, file=sys.stderr, flush=True))))


if __name__ == "__main__":
    main()
