"""A PyTorch user's training loop, run unchanged on minicnn and on PyTorch, timed side by side.

    python benchmarks/pytorch_loop.py                        # 2048 images of 8x8, 3 epochs, float32, 5 repeats
    python benchmarks/pytorch_loop.py --images 4096 --dtype float64

``users_script(torch, ...)`` is what a PyTorch user writes (TensorDataset, DataLoader,
nn.CrossEntropyLoss, SGD with momentum, a StepLR, a change to ``param_groups[0]["lr"]``, ``no_grad``,
``argmax(1) == y``, indexing, ``view``, ``save``/``load``) against a module called ``torch``: it runs
with ``import minicnn as torch`` and with PyTorch. ``tests/test_pytorch_script.py`` checks that the
two give the same losses, accuracy and weights (float64, 1e-10) on a small run; this script times a
larger one: a small CNN on digit-sized images (1x8x8, 3 classes; scikit-learn's digits are 8x8),
batches of 32, each library alternating in one process on its own default number of threads (or
``--threads`` for both), median of ``--repeats`` whole runs after a warm-up run, and the ratio of
the times.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np


def users_script(torch, path, initial=None, images=24, epochs=4, dtype="float64", batch_size=8):
    """What a PyTorch user writes; returns (losses, accuracy, the first row of logits, the saved weights)."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.standard_normal((images, 1, 8, 8)), dtype=getattr(torch, dtype))
    y = torch.tensor(rng.integers(0, 3, images))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=batch_size)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 4, 3))
    model = model.double() if dtype == "float64" else model
    if initial is not None:  # the same starting weights in both
        model.load_state_dict({name: torch.tensor(value) for name, value in initial.items()})
    loss_fn = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    losses = []
    for epoch in range(epochs):
        for xb, yb in loader:
            loss = loss_fn(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        schedule.step()
        if epoch == 2:
            optimizer.param_groups[0]["lr"] = 0.02
    with torch.no_grad():
        logits = model(x)
        accuracy = (logits.argmax(1) == y).float().mean().item()
        first_row = logits[0].view(1, -1)
    torch.save(model.state_dict(), path)
    saved = torch.load(path)
    weights = {name: np.asarray(value.numpy() if hasattr(value, "numpy") else value) for name, value in saved.items()}
    return losses, accuracy, first_row.numpy(), weights


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=2048, help="training images (default 2048)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (default 3)")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size (default 32)")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32", help="(default float32)")
    parser.add_argument("--threads", type=int, help="threads for both libraries (default: each library's own "
                                                     "default, as its users run it)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each, median reported (default 5)")
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        parser.error("needs PyTorch (pip install torch==2.13.0), the other side of the comparison")
    import numba

    import minicnn

    if args.threads:
        torch.set_num_threads(args.threads)
        numba.set_num_threads(args.threads)
    settings = {"images": args.images, "epochs": args.epochs, "dtype": args.dtype, "batch_size": args.batch_size}
    times = {"minicnn": [], "PyTorch": []}
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(args.repeats + 1):  # round 0 warms up (Numba compiles or loads its kernels)
            for name, library in (("minicnn", minicnn), ("PyTorch", torch)):
                start = time.perf_counter()
                users_script(library, os.path.join(folder, name), **settings)
                if round_:
                    times[name].append(time.perf_counter() - start)
            print(f"round {round_}/{args.repeats}", file=sys.stderr, flush=True)
    ours, theirs = (statistics.median(times[k]) for k in ("minicnn", "PyTorch"))
    steps = args.epochs * -(-args.images // args.batch_size)
    print(f"`python benchmarks/pytorch_loop.py --images {args.images} --epochs {args.epochs} --batch-size "
          f"{args.batch_size} --dtype {args.dtype}" + (f" --threads {args.threads}" if args.threads else "")
          + f" --repeats {args.repeats}`: {steps} steps; minicnn {minicnn.__version__} on {numba.get_num_threads()} "
          f"threads, PyTorch {torch.__version__} on {torch.get_num_threads()}")
    print(f"minicnn {ours:.2f} s, PyTorch {theirs:.2f} s: minicnn / PyTorch time {ours / theirs:.2f} "
          f"(runs: minicnn {', '.join(f'{t:.2f}' for t in times['minicnn'])}; "
          f"PyTorch {', '.join(f'{t:.2f}' for t in times['PyTorch'])})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
