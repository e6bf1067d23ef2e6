"""The write-up's claims as experiments anyone can rerun: ``minicnn experiment NAME``.

Each experiment trains small networks on the built-in shapes (nothing to download), prints a
table, and writes ``OUT/NAME.png`` (its plot) and ``OUT/NAME.json`` (every number, the settings,
the machine and the wall time). Everything is seeded: the same seed on the same machine gives the
same numbers. The default setting finishes in a few minutes on two CPU cores; ``--full`` runs the
longer, fuller version.

- ``relu-vs-tanh``: the paper's Figure 1 in small. A four-layer CNN (three convs, one fc) is
  trained with ReLU, tanh and sigmoid units, no regularisation, until its training error (the
  mean over the last 50 steps, looked at every 10) reaches 25%; the steps it took, and each layer's gradient norm at
  initialisation, which shows why a saturating unit trains slowly.
- ``pooling``: overlapping 3x3/2 against non-overlapping 2x2/2 max pooling, at an input size (31)
  where both give the same feature maps (15, 7, 3) and the same parameter count.
- ``dropout``, ``lrn``, ``pca-colour``: ``alexnet_small`` with and without the paper's device.
- ``ten-crop``: one trained ``alexnet_small`` evaluated on centre crops and on ten crops.

The training experiments use a small training set (2,000 images) so that a network can overfit
it within minutes: the claims about dropout and augmentation are claims about overfitting, and
they show as the gap between the error on the training images (evaluated like the validation
images: centre crops, no dropout) and the validation error. Each arm is a ``minicnn train`` run
in its own folder under ``OUT/runs/``; a finished arm is read back, not trained again, so
experiments that share an arm (the full network) train it once, and an interrupted experiment
continues where it stopped.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import sys
import time

import numpy as np

from .. import functional as F
from .. import nn, optim
from ..data import DataLoader, ShapesDataset, TensorDataset
from ..data import transforms as T
from ..errors import ArgumentError
from ..models.alexnet import ACTIVATIONS
from ..nn import init as initialisers
from ..tensor import Tensor
from .summary import layer_plan
from .train import TrainConfig, build_model, evaluate, load_data, load_trained, train_command

TARGET_TRAIN_ERROR = 0.25  # the paper's Figure 1: steps until the training error reaches 25%
ERROR_WINDOW = 50  # the training error is the mean over the last 50 steps' batches,
CHECK_EVERY = 10  # looked at every 10 steps
CONVERGED_ERROR = 0.25  # training experiments: how fast an arm converges is when it first gets here


@dataclasses.dataclass
class Setting:
    """How long and how wide an experiment runs (``default`` or ``full``)."""

    epochs: int  # training experiments: epochs per arm
    train_size: int
    val_size: int
    width: float  # alexnet_small's channel multiplier
    learning_rates: tuple  # relu-vs-tanh: each activation gets the best of these (the paper chose
    inits: tuple  # "independently to make training as fast as possible"); and these initialisations
    max_steps: int  # relu-vs-tanh: a run that has not reached the target by then stops


SETTINGS = {
    "default": Setting(epochs=60, train_size=2000, val_size=500, width=0.5, learning_rates=(0.01,),
                       inits=("lecun",), max_steps=1500),
    "full": Setting(epochs=150, train_size=2000, val_size=1000, width=1.0, learning_rates=(0.003, 0.01, 0.03, 0.1),
                    inits=("lecun", "kaiming"), max_steps=3000),
}


@dataclasses.dataclass
class Experiment:
    name: str
    claim: str  # the write-up's words (translated)
    what: str  # what the experiment measures, one line for --help
    run: object  # (setting, seed, out, stream) -> result dict


# ---- relu-vs-tanh -------------------------------------------------------------------------------
def four_layer_cnn(activation, init, seed, num_classes=10):
    """Three 'same' convolutions, each followed by the activation and 3x3/2 max pooling, and one
    fc layer: 32x32 -> 15 -> 7 -> 3. ``init``: "lecun" draws every weight from N(0, 1 / fan_in)
    (the standard initialisation for tanh and sigmoid networks), "kaiming" from N(0, 2 / fan_in)
    (ReLU's); biases 0."""
    unit = ACTIVATIONS[activation]
    model = nn.Sequential(
        nn.Conv2d(3, 32, 5, padding=2), unit(), nn.MaxPool2d(3, 2),
        nn.Conv2d(32, 32, 5, padding=2), unit(), nn.MaxPool2d(3, 2),
        nn.Conv2d(32, 64, 3, padding=1), unit(), nn.MaxPool2d(3, 2),
        nn.Flatten(), nn.Linear(64 * 3 * 3, num_classes))
    rng = np.random.default_rng(seed)
    gain = {"lecun": 1.0, "kaiming": 2.0}[init]
    for _, layer in initialisers._weighted_layers(model):
        initialisers.normal_(layer.weight, math.sqrt(gain / initialisers.fan_in(layer.weight)), rng)
        initialisers.constant_(layer.bias, 0.0)
    return model


def _weighted(model):
    """("conv1", layer), ("conv2", ...), ("fc4", ...): the weighted layers, numbered in order."""
    return [(f"{'conv' if isinstance(layer, nn.Conv2d) else 'fc'}{i}", layer)
            for i, (_, layer) in enumerate(initialisers._weighted_layers(model), start=1)]


def gradient_norms(model, images, labels):
    """Each weighted layer's ||dL/dW|| (Frobenius) for one batch: how much signal reaches it."""
    loss = F.cross_entropy(model(Tensor(images)), labels)
    model.zero_grad()
    loss.backward()
    return {name: float(np.linalg.norm(layer.weight.grad)) for name, layer in _weighted(model)}


def steps_to_target(activation, init, lr, data, setting, seed, stream):
    """Train until the mean training error over the last ERROR_WINDOW steps is at most
    TARGET_TRAIN_ERROR; returns (steps or None, the windowed error curve, seconds)."""
    images, labels = data
    model = four_layer_cnn(activation, init, seed)
    optimizer = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    loader = DataLoader(TensorDataset(images, labels), 64, shuffle=True, seed=seed, drop_last=True)
    wrong, curve, start = [], [], time.perf_counter()
    epoch = 0
    terminal = hasattr(stream, "isatty") and stream.isatty()
    carriage, ending = ("\r", "") if terminal else ("", "\n")
    while len(wrong) < setting.max_steps:
        for x, y in loader.batches(epoch):
            logits = model(Tensor(x))
            loss = F.cross_entropy(logits, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if not math.isfinite(float(loss.item())):  # diverged: this learning rate is too high
                stream.write(f"  {activation} lr {lr:g}: the loss became {loss.item()} at step {len(wrong) + 1}\n")
                return None, curve, time.perf_counter() - start
            wrong.append(float((logits.numpy().argmax(axis=1) != y).mean()))
            if len(wrong) >= ERROR_WINDOW and len(wrong) % CHECK_EVERY == 0:
                error = float(np.mean(wrong[-ERROR_WINDOW:]))
                curve.append((len(wrong), error))
                reached = error <= TARGET_TRAIN_ERROR
                if terminal or reached or len(wrong) % (5 * ERROR_WINDOW) == 0:  # a pipe gets fewer lines
                    stream.write(f"{carriage}  {activation:7} init {init:7} lr {lr:<6g} step {len(wrong):5d}: "
                                 f"training error {100 * error:5.1f}%{ending}")
                    stream.flush()
                if reached:
                    stream.write("\n" if terminal else "")
                    return len(wrong), curve, time.perf_counter() - start
            if len(wrong) >= setting.max_steps:
                break
        epoch += 1
    stream.write(("\n" if terminal else "") + f"  {activation}: not within {setting.max_steps} steps\n")
    return None, curve, time.perf_counter() - start


def figure1_data(setting, seed):
    """The relu-vs-tanh training set: (images less their channel mean, labels), no augmentation
    (the paper's Figure 1 has none)."""
    if setting.train_size < 64:
        raise ArgumentError(f"experiment relu-vs-tanh: needs at least one batch of 64 images, got {setting.train_size}")
    shapes = ShapesDataset(setting.train_size, 32, seed=seed)
    return np.ascontiguousarray(T.subtract_mean(shapes.images, T.channel_mean(shapes.images))), shapes.labels


def relu_vs_tanh(setting, seed, out, stream):
    data = images, labels = figure1_data(setting, seed)
    probe = images[:64], labels[:64]
    norms = {act: gradient_norms(four_layer_cnn(act, setting.inits[0], seed), *probe) for act in ACTIVATIONS}
    runs = []
    for init in setting.inits:
        for activation in ACTIVATIONS:
            for lr in setting.learning_rates:
                steps, curve, seconds = steps_to_target(activation, init, lr, data, setting, seed, stream)
                runs.append({"activation": activation, "init": init, "lr": lr, "steps": steps, "curve": curve,
                             "seconds": seconds})
    best = {}
    for run in runs:
        key = (run["activation"], run["init"])
        steps = run["steps"] if run["steps"] is not None else math.inf
        if key not in best or steps < (best[key]["steps"] or math.inf):
            best[key] = run
    rows = []
    for (activation, init), run in best.items():
        relu = best[("relu", init)]["steps"]
        steps = run["steps"]
        ratio = (f"{steps / relu:.2f}" if steps and relu else
                 f"> {setting.max_steps / relu:.1f}" if relu and steps is None else "n/a")
        rows.append([activation, init, f"{run['lr']:g}",
                     str(steps) if steps else f"not within {setting.max_steps}",
                     f"{steps * 64 / len(images):.1f}" if steps else "-", ratio])
    norm_rows = [[act] + [f"{v:.3g}" for v in layer_norms.values()] for act, layer_norms in norms.items()]
    tables = [
        {"title": f"steps (batches of 64) until the training error over {ERROR_WINDOW} steps reaches "
                  f"{100 * TARGET_TRAIN_ERROR:.0f}% (best learning rate of {list(setting.learning_rates)})",
         "columns": ["activation", "init", "lr", "steps", "epochs", "steps / ReLU's"], "rows": rows},
        {"title": f"||dL/dW|| per layer at initialisation ({setting.inits[0]}), one batch of 64",
         "columns": ["activation", *next(iter(norms.values())).keys()], "rows": norm_rows},
    ]

    def plot(plt):
        fig, (ax_curve, ax_norm) = plt.subplots(1, 2, figsize=(11, 4))
        for (activation, init), run in best.items():
            if run["curve"]:
                steps, errors = zip(*run["curve"])
                ax_curve.plot(steps, [100 * e for e in errors], label=f"{activation} ({init}, lr {run['lr']:g})")
        ax_curve.axhline(100 * TARGET_TRAIN_ERROR, color="grey", linestyle="--", linewidth=1)
        ax_curve.set(xlabel="step", ylabel=f"training error over {ERROR_WINDOW} steps (%)", ylim=(0, 100),
                     title="time to 25% training error (the paper's Figure 1)")
        layers = list(next(iter(norms.values())))
        for i, (activation, layer_norms) in enumerate(norms.items()):
            ax_norm.bar(np.arange(len(layers)) + 0.27 * (i - 1), list(layer_norms.values()), 0.27, label=activation)
        ax_norm.set(xticks=range(len(layers)), xticklabels=layers, yscale="log", ylabel="||dL/dW||",
                    title="gradient reaching each layer at initialisation")
        for ax in (ax_curve, ax_norm):
            ax.grid(alpha=0.3)
            ax.legend()
        return fig

    return {"tables": tables, "plot": plot, "runs": runs, "gradient_norms": norms}


# ---- training experiments -----------------------------------------------------------------------
def arm_settings(setting, seed, **changes):
    """``minicnn train``'s settings for one arm: alexnet_small on the small training set, a fixed
    learning rate divided by 10 once, at three quarters of the epochs (a plateau schedule would
    divide it at a different epoch in each arm, and the arms would no longer differ in one thing)."""
    return dict({"model": "alexnet_small", "train_size": setting.train_size, "val_size": setting.val_size,
                 "width": setting.width, "epochs": setting.epochs, "schedule": "step",
                 "step_size": max(1, setting.epochs * 3 // 4), "seed": seed}, **changes)


def arm_folder(out, settings):
    """One folder per distinct run, named by its settings, so that experiments share arms."""
    name = "_".join(f"{k}-{v}" for k, v in sorted(settings.items()) if k != "model")
    return os.path.join(out, "runs", name.replace("_size", "").replace("False", "off"))


def train_arm(out, settings, stream):
    """Train one arm (or read it back when done; continue it when interrupted). Returns its
    history, the error on its training images evaluated like validation (centre crops, no
    dropout), the trained model and pipeline, and the folder."""
    folder = arm_folder(out, settings)
    metrics = os.path.join(folder, "metrics.jsonl")
    done = [json.loads(line) for line in open(metrics)] if os.path.exists(metrics) else []
    if len(done) < settings["epochs"]:
        last = os.path.join(folder, "last.ckpt")  # a run stopped part-way (even in its first epoch) goes on
        resume = last if os.path.exists(last) else None
        stream.write(f"== training {folder}\n")
        trainer, outcome = train_command(dict(settings), out=folder, resume=resume,
                                         stream=stream)
        if outcome != "done":
            raise KeyboardInterrupt
        done = trainer.history
    config, _, model, pipeline = load_trained(os.path.join(folder, "last.ckpt"))
    train_set, val_set = load_data(config)
    seen = evaluate(model, pipeline, train_set.images, train_set.labels)
    return {"folder": folder, "history": done, "train_error": seen["top1_error"], "model": model,
            "pipeline": pipeline, "val_set": val_set, "config": config}


def compare_arms(arms, setting, seed, out, stream, note=""):
    """Train each (label, changes) arm and tabulate: validation error at the end and at its best,
    the error on the training images, and the gap between them."""
    results = {label: train_arm(out, arm_settings(setting, seed, **changes), stream) for label, changes in arms}
    rows = []
    for label, r in results.items():
        last, best = r["history"][-1], min(r["history"], key=lambda row: row["val_top1_error"])
        reached = next((h["epoch"] for h in r["history"] if h["val_top1_error"] <= CONVERGED_ERROR), None)
        rows.append([label, f"{100 * last['val_top1_error']:.1f}%",
                     f"{100 * best['val_top1_error']:.1f}% ({best['epoch']})", f"{100 * r['train_error']:.1f}%",
                     f"{100 * (last['val_top1_error'] - r['train_error']):.1f}",
                     str(reached) if reached else "not reached",
                     f"{sum(h['epoch_seconds'] for h in r['history']) / 60:.1f}"])
    tables = [{"title": f"alexnet_small (width {setting.width}) on {setting.train_size} training and "
                        f"{setting.val_size} validation shapes, {setting.epochs} epochs{note}",
               "columns": ["arm", "val error (end)", "best val error (epoch)", "error on training images",
                           "gap (points)", f"first epoch at <= {100 * CONVERGED_ERROR:.0f}% val error", "minutes"],
               "rows": rows}]

    def plot(plt):
        fig, (ax_val, ax_gap) = plt.subplots(1, 2, figsize=(11, 4))
        for label, r in results.items():
            ax_val.plot([h["epoch"] for h in r["history"]], [100 * h["val_top1_error"] for h in r["history"]],
                        label=label)
        ax_val.set(xlabel="epoch", ylabel="validation top-1 error (%)", ylim=(0, 100), title="validation error")
        labels = list(results)
        x = np.arange(len(labels))
        ax_gap.bar(x - 0.2, [100 * r["train_error"] for r in results.values()], 0.4, label="training images")
        ax_gap.bar(x + 0.2, [100 * r["history"][-1]["val_top1_error"] for r in results.values()], 0.4,
                   label="validation images")
        ax_gap.set(xticks=x, xticklabels=labels, ylabel="top-1 error at the end (%)",
                   title="overfitting: training against validation error")
        for ax in (ax_val, ax_gap):
            ax.grid(alpha=0.3)
            ax.legend()
        return fig

    summary = {label: {"folder": r["folder"], "history": r["history"], "train_error": r["train_error"]}
               for label, r in results.items()}
    return {"tables": tables, "plot": plot, "arms": summary}, results


def ablation(changes_off, label_on, label_off):
    def run(setting, seed, out, stream):
        result, _ = compare_arms([(label_on, {}), (label_off, changes_off)], setting, seed, out, stream)
        return result
    return run


def pooling(setting, seed, out, stream):
    """Image size 35 gives the default crop round(35 x 227 / 256) = 31, where 3x3/2 and 2x2/2
    pooling both give 31 -> 15 -> 7 -> 3: the same maps and parameters, one difference."""
    arms = [("overlapping 3x3/2", {"image_size": 35}), ("non-overlapping 2x2/2", {"image_size": 35, "overlap": False})]
    sizes = {}
    for label, changes in arms:
        model = build_model(TrainConfig(**arm_settings(setting, seed, **changes)), 10)
        plan = layer_plan(model)
        sizes[label] = ([row["out_shape"][1] for row in plan if row["name"].startswith("pool")],
                        model.num_parameters())
    if len({str(v) for v in sizes.values()}) != 1:
        raise ArgumentError(f"experiment pooling: the two arms differ in more than the pooling: {sizes}")
    maps, params = next(iter(sizes.values()))
    result, _ = compare_arms(arms, setting, seed, out, stream,
                             note=f"; both arms pool 31 -> {' -> '.join(map(str, maps))}, {params:,} parameters")
    return result


def ten_crop(setting, seed, out, stream):
    _, results = compare_arms([("full network", {})], setting, seed, out, stream)
    r = results["full network"]
    views = {}
    for mode in ("centre crop", "ten crops (softmax averaged)"):
        start = time.perf_counter()
        e = evaluate(r["model"], r["pipeline"], r["val_set"].images, r["val_set"].labels,
                     ten_crop=mode.startswith("ten"))
        views[mode] = dict(e, seconds=time.perf_counter() - start)
    rows = [[mode, f"{100 * e['top1_error']:.1f}%", f"{e['loss']:.4f}", f"{e['seconds']:.1f}"]
            for mode, e in views.items()]
    tables = [{"title": f"alexnet_small (width {setting.width}) after {setting.epochs} epochs on "
                        f"{setting.train_size} shapes, {len(r['val_set'].labels)} validation images",
               "columns": ["evaluation", "top-1 error", "loss", "seconds"], "rows": rows}]

    def plot(plt):
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.bar(list(views), [100 * e["top1_error"] for e in views.values()], color=["C0", "C1"])
        ax.set(ylabel="validation top-1 error (%)", title="centre crop against ten crops")
        ax.grid(alpha=0.3)
        return fig

    return {"tables": tables, "plot": plot, "views": {m: {k: v for k, v in e.items()} for m, e in views.items()}}


EXPERIMENTS = {e.name: e for e in [
    Experiment("relu-vs-tanh",
               "ReLU trains several times faster than saturating units: a four-layer CNN with ReLUs reaches 25% "
               "training error on CIFAR-10 six times faster than the same network with tanh units",
               "steps to 25% training error for ReLU, tanh and sigmoid, and gradient norms at initialisation",
               relu_vs_tanh),
    Experiment("pooling",
               "overlapping pooling (3x3 windows, stride 2) lowers top-1 error by 0.4% against non-overlapping "
               "2x2/2 pooling of the same output size, and makes the network slightly harder to overfit",
               "overlapping 3x3/2 against 2x2/2 pooling at equal map sizes: error and train-validation gap",
               pooling),
    Experiment("dropout",
               "dropout (p = 0.5 in the first two fc layers) greatly reduces overfitting, at the cost of roughly "
               "twice the iterations to converge",
               "alexnet_small with and without dropout: error, train-validation gap, convergence",
               ablation({"dropout": False}, "with dropout", "no dropout")),
    Experiment("lrn",
               "local response normalisation lowers top-1 error by 1.4% (and top-5 by 1.2%)",
               "alexnet_small with and without LRN",
               ablation({"lrn": False}, "with LRN", "no LRN")),
    Experiment("pca-colour",
               "the PCA colour shift captures that object identity does not change with the intensity and colour "
               "of the light, and lowers top-1 error by over 1%",
               "alexnet_small with and without the PCA colour shift",
               ablation({"pca": False}, "with PCA colour", "no PCA colour")),
    Experiment("ten-crop",
               "at test time the network averages its softmax over ten 224x224 patches (four corners, centre, and "
               "their mirrors)",
               "centre crop against ten crops on one trained alexnet_small",
               ten_crop),
]}


# ---- the command --------------------------------------------------------------------------------
def format_table(table):
    widths = [max(len(str(c)) for c in column) for column in zip(table["columns"], *table["rows"])]
    lines = [table["title"], "  ".join(str(c).ljust(w) for c, w in zip(table["columns"], widths)).rstrip()]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in table["rows"]]
    return "\n".join(lines)


def run_experiment(name, full=False, seed=0, out="experiments", stream=None, plot=True, setting=None):
    """Run one experiment; print its tables; write OUT/NAME.json and OUT/NAME.png. Returns the
    JSON record. ``setting``: a ``Setting`` of one's own instead of the default or full one."""
    from .bench import describe_machine

    stream = stream or sys.stderr
    if name not in EXPERIMENTS:
        raise ArgumentError(f"experiment: unknown experiment {name!r}; choose from {', '.join(EXPERIMENTS)}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ArgumentError(f"experiment: seed must be an integer >= 0, got {seed!r}")
    if os.path.exists(out) and not os.path.isdir(out):
        raise ArgumentError(f"experiment: --out {out} is a file, not a folder")
    if plot:
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            raise ArgumentError("experiment: the plot needs matplotlib: pip install 'minicnn[plot]' (or --no-plot)") \
                from None
    os.makedirs(out, exist_ok=True)
    experiment = EXPERIMENTS[name]
    setting_name = "custom" if setting is not None else "full" if full else "default"
    setting = setting or SETTINGS[setting_name]
    stream.write(f"experiment {name} ({setting_name} setting, seed {seed}): {experiment.what}\n"
                 f"the claim: {experiment.claim}\n")
    start = time.perf_counter()
    result = experiment.run(setting, seed, out, stream)
    seconds = time.perf_counter() - start
    text = "\n\n".join(format_table(t) for t in result["tables"])
    print(text)
    record = {"experiment": name, "claim": experiment.claim, "setting": setting_name,
              "settings": dataclasses.asdict(setting), "seed": seed, "machine": describe_machine(),
              "python": platform.python_version(), "wall_seconds": seconds, "tables": result["tables"],
              **{k: v for k, v in result.items() if k not in ("tables", "plot")}}
    with open(os.path.join(out, f"{name}.json"), "w") as f:
        json.dump(record, f, indent=1, default=float, allow_nan=False)
    written = [os.path.join(out, f"{name}.json")]
    if plot:
        fig = result["plot"](plt)
        fig.suptitle(f"minicnn experiment {name} ({setting_name}, seed {seed})")
        fig.tight_layout()
        fig.savefig(os.path.join(out, f"{name}.png"), dpi=100)
        plt.close(fig)
        written.append(os.path.join(out, f"{name}.png"))
    stream.write(f"done in {seconds / 60:.1f} min; wrote {', '.join(written)}\n")
    return record
