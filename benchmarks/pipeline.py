"""What the paper's input pipeline adds to an AlexNet training step, at the paper's 256-px input.

    python benchmarks/pipeline.py                    # batch 64, 4 steps a round, 3 rounds
    python benchmarks/pipeline.py --batch 16 --steps 6

Measures, on one machine in one run (medians over rounds; each round runs every variant in turn):

- the pipeline alone, per batch: the steps one at a time as the trainer ran them before issue 19
  (the loader's gather of the batch, then the colour shift, the mean, the random crop and the
  mirror, each a NumPy pass) against ``transforms.augment``'s one pass;
- the training loop per step: steps on a batch prepared beforehand (no pipeline at all), against
  the trainer's loop (``minicnn.apps.train.prefetched``: the next batch augmented on a background
  thread while this one trains), and against the pipeline run on the training thread before each
  step. The pipeline's share is (loop - step alone) / step alone.

NumPy is imported first, as in users' scripts. Prints a markdown table.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

import minicnn as mc
from minicnn import functional as F
from minicnn import optim
from minicnn.apps.train import Pipeline, prefetched
from minicnn.apps.bench import describe_machine
from minicnn.data import transforms as T


def steps_one_at_a_time(pipeline, images, index, rng):
    """The trainer's pipeline before issue 19: a gathered copy of the batch, then one pass per step."""
    batch = images[index]
    batch = T.pca_colour_shift(batch, pipeline.eigenvalues, pipeline.eigenvectors, rng)
    batch = T.subtract_mean(batch, pipeline.mean)
    return T.random_crop_flip(batch, pipeline.crop, rng)


def measure(batch=64, steps=4, rounds=3, image_size=256, progress=print):
    net = mc.models.get("alexnet2012", seed=0)
    crop = net.input_size[1]
    rng = np.random.default_rng(0)
    count = 2 * batch
    images = rng.random((count, 3, image_size, image_size), dtype=np.float32)
    labels = rng.integers(0, 1000, count)
    pipeline = Pipeline.fit(images[:batch], crop)
    opt = optim.SGD(net.parameters(), lr=0.001, momentum=0.9, weight_decay=5e-4)

    def index_of(k):
        return np.arange(k % 2 * batch, (k % 2 + 1) * batch)

    def prepare(k):
        index = index_of(k)
        return pipeline.train_batch(images, np.random.default_rng([0, k]), index), labels[index]

    def step(x, y):
        opt.zero_grad()
        F.cross_entropy(net(mc.tensor(x)), y).backward()
        opt.step()

    ready = prepare(0)

    def loop_without_pipeline():
        for _ in range(steps):
            step(*ready)

    def loop_prefetched():
        for x, y in prefetched(prepare, range(steps)):
            step(x, y)

    def loop_inline():
        for k in range(steps):
            step(*prepare(k))

    variants = {"old pipeline alone": lambda: steps_one_at_a_time(pipeline, images, index_of(1), np.random.default_rng(1)),
                "one-pass pipeline alone": lambda: prepare(1),
                "steps, no pipeline": loop_without_pipeline,
                "steps, pipeline prefetched (the trainer)": loop_prefetched,
                "steps, pipeline on the training thread": loop_inline}
    per_call = {"old pipeline alone": 1, "one-pass pipeline alone": 1}
    times = {name: [] for name in variants}
    step(*ready)  # warm-up: compile, fill the memory arenas
    for fn in variants.values():
        fn()
    for r in range(rounds):
        progress(f"round {r + 1}/{rounds} ...")
        for name, fn in variants.items():
            start = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - start) / per_call.get(name, steps))
    return {"machine": describe_machine(), "batch": batch, "steps": steps, "rounds": rounds, "image_size": image_size,
            "crop": crop, "threads": mc_threads(), "seconds": {name: statistics.median(t) for name, t in times.items()}}


def mc_threads():
    import numba

    return numba.get_num_threads()


def format_report(r):
    s = r["seconds"]
    alone = s["steps, no pipeline"]
    out = [f"`python benchmarks/pipeline.py --batch {r['batch']} --steps {r['steps']} --rounds {r['rounds']}`: "
           f"alexnet2012, batch {r['batch']}, {r['image_size']}-px images cropped to {r['crop']}, {r['threads']} threads, "
           f"medians of {r['rounds']} rounds. Machine: {r['machine']}.", "",
           "| | time per batch | share of the step alone |", "|---|---|---|"]
    for name, seconds in s.items():
        share = f"{100 * seconds / alone:.1f}%" if name.endswith("alone") else f"{100 * (seconds - alone) / alone:+.1f}%"
        if name == "steps, no pipeline":
            share = "(the step alone)"
        out.append(f"| {name} | {1e3 * seconds:.0f} ms | {share} |")
    return "\n".join(out) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--batch", type=int, default=64, help="batch size (default 64)")
    parser.add_argument("--steps", type=int, default=4, help="training steps per round and loop (default 4)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; each figure is their median (default 3)")
    parser.add_argument("--image-size", type=int, default=256, help="input images' side before the crop (default 256)")
    args = parser.parse_args(argv)
    if min(args.batch, args.steps, args.rounds) < 1 or args.image_size < 227:
        parser.error("--batch, --steps and --rounds must be positive, --image-size at least 227")
    print(format_report(measure(args.batch, args.steps, args.rounds, args.image_size,
                                progress=lambda m: print(m, flush=True, file=sys.stderr))))


if __name__ == "__main__":
    main()
