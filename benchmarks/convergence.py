"""How long does AlexNet take to converge? ``alexnet_small`` on the built-in shapes, the full
network against the paper's ablations, each trained with ``minicnn train``'s defaults.

    python benchmarks/convergence.py --out runs/convergence            # all runs, ~45 min on 2 cores
    python benchmarks/convergence.py --out runs/convergence --only full --epochs 20

Each run writes its own folder (checkpoints, metrics.jsonl); the script then writes
``convergence.md`` (a table of validation error by epoch and wall time) and ``convergence.png``
(the validation curves side by side). A finished run is not trained again: its metrics are read
back, so the study can be stopped and continued.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys

from minicnn.apps.bench import describe_machine
from minicnn.apps.train import train_command

RUNS = {
    "full": {},
    "no dropout": {"dropout": False},
    "no overlapping pooling (2x2/2)": {"overlap": False},
    "no LRN": {"lrn": False},
    "no PCA colour": {"pca": False},
}


def folder_name(label):
    return label.split(" (")[0].replace(" ", "_")


def run_all(out, epochs, ablation_epochs, only):
    histories = {}
    for label, changes in RUNS.items():
        if only and folder_name(label) not in only:
            continue
        folder = os.path.join(out, folder_name(label))
        n = epochs if label == "full" else ablation_epochs
        metrics = os.path.join(folder, "metrics.jsonl")
        done = [json.loads(line) for line in open(metrics)] if os.path.exists(metrics) else []
        if len(done) < n:
            print(f"== {label}: {n} epochs -> {folder}", file=sys.stderr)
            resume = os.path.join(folder, "last.ckpt") if done else None
            trainer, outcome = train_command(dict(changes, epochs=n), out=folder, resume=resume)
            if outcome != "done":
                raise SystemExit(130)
            done = trainer.history
        histories[label] = done[:n]
    return histories


def report(histories, out):
    lines = [f"Machine: {describe_machine()}, python {platform.python_version()}.", "",
             "| run | epochs | best val top-1 error (epoch) | val top-5 error there | final train loss | "
             "wall time (min) | images/s |", "|---|---|---|---|---|---|---|"]
    for label, h in histories.items():
        best = min(h, key=lambda r: r["val_top1_error"])
        ips = sorted(r["images_per_second"] for r in h)[len(h) // 2]
        lines.append(f"| {label} | {len(h)} | {100 * best['val_top1_error']:.1f}% ({best['epoch']}) | "
                     f"{100 * best['val_top5_error']:.1f}% | {h[-1]['train_loss']:.3f} | "
                     f"{h[-1]['elapsed_seconds'] / 60:.1f} | {ips:.0f} |")
    epochs = max(len(h) for h in histories.values())
    lines += ["", "Validation top-1 error (%) by epoch:", "",
              "| epoch | " + " | ".join(histories) + " |", "|---" * (len(histories) + 1) + "|"]
    for e in range(epochs):
        cells = [f"{100 * h[e]['val_top1_error']:.1f}" if e < len(h) else "" for h in histories.values()]
        lines.append(f"| {e + 1} | " + " | ".join(cells) + " |")
    with open(os.path.join(out, "convergence.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, (ax_loss, ax_err) = plt.subplots(1, 2, figsize=(11, 4))
    for label, h in histories.items():
        x = [r["epoch"] for r in h]
        ax_loss.plot(x, [r["train_loss"] for r in h], "o-", ms=3, label=label)
        ax_err.plot(x, [100 * r["val_top1_error"] for r in h], "o-", ms=3, label=label)
    ax_loss.set(xlabel="epoch", ylabel="training loss (augmented, dropout on)", title="training loss")
    ax_err.set(xlabel="epoch", ylabel="validation top-1 error (%)", title="validation error", ylim=(0, 100))
    for ax in (ax_loss, ax_err):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "convergence.png"), dpi=90)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/convergence", help="folder for the runs and the report")
    parser.add_argument("--epochs", type=int, default=20, help="epochs of the full network (default 20)")
    parser.add_argument("--ablation-epochs", type=int, default=12, help="epochs of each ablation (default 12)")
    parser.add_argument("--only", nargs="*", help=f"run only these: {', '.join(folder_name(k) for k in RUNS)}")
    args = parser.parse_args(argv)
    histories = run_all(args.out, args.epochs, args.ablation_epochs, args.only)
    report(histories, args.out)


if __name__ == "__main__":
    main()
