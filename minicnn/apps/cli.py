"""The ``minicnn`` command: ``trace`` (the step-through), ``summary``, ``bench``, ``train``, ``eval``,
``augment`` and ``experiment``."""
from __future__ import annotations

import argparse
import os
import signal
import sys
import textwrap

from .. import models
from ..errors import ArgumentError, MiniCNNError
from ..kernels.backends import HOST_BACKENDS


def _summary(args):
    from .summary import format_summary, layer_plan
    from .train import DEFAULT_IMAGE_SIZE, default_crop

    if args.input_size is not None and args.crop is not None and args.input_size != args.crop:
        raise MiniCNNError(f"summary: --input-size {args.input_size} and --crop {args.crop} name two different inputs")
    kwargs = {"activation": args.activation}
    size = args.crop if args.crop is not None else args.input_size
    if size is not None:
        kwargs["input_size"] = size
    if args.num_classes is not None:
        kwargs["num_classes"] = args.num_classes
    net = models.get(args.model, **kwargs)
    print(format_summary(net, layer_plan(net)))
    trained = default_crop(DEFAULT_IMAGE_SIZE[args.model])
    if size is None and trained != net.input_size[1]:
        # the model's own input is the paper's (or 32 for alexnet_small); minicnn train's default differs
        classes = args.num_classes or 10  # the built-in shapes' ten classes
        trains = models.get(args.model, **dict(kwargs, input_size=trained, num_classes=classes))
        print(f"\nminicnn train's default trains {args.model} on {trained}x{trained} crops of "
              f"{DEFAULT_IMAGE_SIZE[args.model]}x{DEFAULT_IMAGE_SIZE[args.model]} images, {classes} classes: "
              f"{trains.num_parameters():,} parameters (`minicnn summary {args.model} --crop {trained} "
              f"--num-classes {classes}` shows that network)")


def _trace(args):
    if args.parallel == "towers":
        from .towers_trace import run_towers_trace

        unsupported = [flag for flag, given in (("--step", args.step), ("--save-maps", args.save_maps), ("--html", args.html),
                                                ("--backend reference", args.backend != "cpu"),
                                                ("--activation", args.activation not in (None, "relu")))
                       if given]
        if unsupported:
            raise ArgumentError(f"trace: --parallel towers shows the towers' layers and exchanges; it does not take "
                                f"{', '.join(unsupported)}")
        record = run_towers_trace(model=args.model, batch=args.batch, seed=args.seed, input_size=args.input_size,
                                  image=args.image, num_classes=args.num_classes, training=not args.eval,
                                  json_path=args.json)
        return 0 if record["ok"] else 1
    from .trace import run_trace

    record = run_trace(model=args.model, batch=args.batch, seed=args.seed, input_size=args.input_size,
                       image=args.image, num_classes=args.num_classes, step=args.step, checks=args.checks,
                       json_path=args.json, save_maps=args.save_maps, training=not args.eval, backend=args.backend,
                       activation=args.activation, html_path=args.html)
    return 1 if record["spot_check_failures"] else 0  # a verdict that can fail changes the exit code


# train options: (flag, TrainConfig field, argparse keywords). Each defaults to None, so that
# the settings actually typed can be told apart (a resumed run must not silently change them).
_TRAIN_OPTIONS = [
    ("--dataset", "dataset", dict(choices=["shapes", "cifar10", "folder"],
                                   help="shapes (built in, the default), cifar10 (python batches in --data) or "
                                        "folder (--data with train/ and val/, one sub-folder per class)")),
    ("--data", "data", dict(metavar="DIR", help="the dataset's folder (cifar10, folder)")),
    ("--train-size", "train_size", dict(type=int, help="shapes: training images (default 5000)")),
    ("--val-size", "val_size", dict(type=int, help="shapes: validation images (default 1000)")),
    ("--image-size", "image_size", dict(type=int, help="shapes: drawn size; folder: shorter side resized and "
                                                       "centre-cropped to this (default: 32 for alexnet_small, 72 for alexnet_bn, 76 for "
                                                       "alexnet2012; 256 for ImageNet-size)")),
    ("--crop", "crop", dict(type=int, help="network input, random crops of this size (default image size x 227/256)")),
    ("--width", "width", dict(type=float, help="alexnet_small: channel multiplier (default 1)")),
    ("--no-dropout", "dropout", dict(action="store_false", default=None, help="ablation: no dropout layers")),
    ("--no-lrn", "lrn", dict(action="store_false", default=None, help="ablation: no LRN layers (not alexnet_bn: it has none)")),
    ("--no-overlap", "overlap", dict(action="store_false", default=None,
                                     help="ablation: 2x2/2 pooling instead of the overlapping 3x3/2 (the same map sizes in "
                                          "alexnet2012, and in alexnet_small at 31 px crops: --image-size 35)")),
    ("--no-random-crop", "random_crop", dict(action="store_false", default=None,
                                             help="augmentation off: centre crops (mirroring stays on: --no-flip)")),
    ("--no-flip", "flip", dict(action="store_false", default=None,
                               help="augmentation off: no mirroring; ten-crop evaluation then averages the five "
                                    "unmirrored views")),
    ("--no-pca", "pca", dict(action="store_false", default=None, help="augmentation off: no PCA colour shift")),
    ("--epochs", "epochs", dict(type=int, help="epochs to train (default 20; may be raised on --resume)")),
    ("--batch-size", "batch_size", dict(type=int, help="images per step (default 64)")),
    ("--optimizer", "optimizer", dict(choices=["sgd", "adam"], help="sgd (momentum, the paper's) or adam")),
    ("--lr", "lr", dict(type=float, help="learning rate (default 0.01)")),
    ("--momentum", "momentum", dict(type=float, help="SGD momentum (default 0.9)")),
    ("--weight-decay", "weight_decay", dict(type=float, help="L2 weight decay (default 5e-4; 0 for alexnet_bn, "
                                                             "whose loss has its own L2 term)")),
    ("--schedule", "schedule", dict(choices=["plateau", "step", "none"],
                                    help="plateau: divide lr by 10 when validation error stops improving (the "
                                         "paper's, default); step: every --step-size epochs; none")),
    ("--step-size", "step_size", dict(type=int, help="step schedule: epochs between divisions by 10 (default 10)")),
    ("--patience", "patience", dict(type=int, help="plateau schedule: epochs without improvement tolerated "
                                                   "(default 2: the third in a row divides the lr)")),
    ("--warmup-epochs", "warmup_epochs", dict(type=int, help="linear learning-rate warm-up (default 1 epoch)")),
    ("--seed", "seed", dict(type=int, help="seed of the weights, batch order, augmentation and dropout (default 0)")),
    ("--device", "device", dict(choices=["cpu", "cuda"], help="where to train (default cpu)")),
    ("--activation", "activation", dict(choices=list(models.ACTIVATIONS),
                                        help="after every conv and fc layer: relu (the paper's, the default), tanh or "
                                             "sigmoid (the paper's comparison)")),
    ("--parallel", "parallel", dict(choices=["none", "data", "towers"],
                                    help="data: the processes that mpiexec -n N started share each batch, every one "
                                         "taking batch-size/N images, their gradients summed over MPI; towers: "
                                         "alexnet2012 as the paper's two towers on mpiexec -n 2, each process half of "
                                         "every layer (both need pip install 'minicnn[mpi]'); the same results as one "
                                         "process up to rounding (default none)")),
    ("--sync-bn", "sync_bn", dict(action="store_true", default=None,
                                  help="with --parallel data: batch norm normalises over the whole global batch "
                                       "(its statistics summed over the processes at every layer), as one process "
                                       "does; by default each process uses its own part's, as PyTorch's "
                                       "DistributedDataParallel does (no extra exchange)")),
    ("--backend", "backend", dict(choices=list(HOST_BACKENDS),
                                  help="the kernels on the CPU: cpu (fast, the default) or reference (the readable "
                                       "NumPy kernels of kernels/reference/, slower)")),
]


def _train(args):
    from .train import train_command

    given = {field: getattr(args, field) for _, field, _ in _TRAIN_OPTIONS if getattr(args, field) is not None}
    if args.model_name or args.given_model:
        given["model"] = args.model
    _, outcome = train_command(given, out=args.out, resume=args.resume, overwrite=args.overwrite, plot=args.plot)
    return 130 if outcome == "interrupted" else 0


def _eval(args):
    from .train import eval_command

    eval_command(args.checkpoint, ten_crop=args.ten_crop, batch_size=args.batch_size, device=args.device,
                 data=args.data)


def _augment(args):
    from .augment_view import augmentation_figure

    augmentation_figure(args.out, image_size=args.image_size, count=args.count, seed=args.seed, image=args.image)
    print(f"wrote {args.out}")


def _experiment(args):
    from .experiment import run_experiment

    run_experiment(args.name, full=args.full, seed=args.seed, out=args.out, plot=not args.no_plot)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="minicnn",
        description="minicnn: AlexNet layer by layer, with hand-written kernels and checked gradients.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def model_options(p, default):
        p.add_argument("model_name", nargs="?", metavar="MODEL", choices=list(models.MODELS),
                       help=f"which network: {', '.join(models.MODELS)} (default {default})")
        p.add_argument("--model", choices=list(models.MODELS), help="the same, as an option")
        p.set_defaults(default_model=default)
        p.add_argument("--input-size", type=int, help="image height and width (default: the model's own, 227 for AlexNet)")
        p.add_argument("--num-classes", type=int, help="output classes (default: 1000, or 10 for alexnet_small)")
        p.add_argument("--activation", choices=list(models.ACTIVATIONS), default="relu",
                       help="after every conv and fc layer: relu (the paper's, the default), tanh or sigmoid")

    s = sub.add_parser("summary", help="per layer: output shape, parameters with their arithmetic, MACs",
                       description="Print each layer's output shape with the size arithmetic, its parameter "
                                   "count with the arithmetic, multiply-accumulates per image, and totals.")
    model_options(s, "alexnet2012")
    s.add_argument("--crop", type=int, help="the crop minicnn train feeds the network (the same as --input-size): "
                                            "describes the network that trains")
    s.set_defaults(run=_summary)

    t = sub.add_parser("trace", help="step through a forward and backward pass, layer by layer",
                       description="Run one forward and backward pass on a deterministic built-in batch "
                                   "(nothing to download) and show, per layer, shapes and their arithmetic, "
                                   "parameters, MACs, time, activation and gradient statistics, and a "
                                   "finite-difference check of the backward.")
    model_options(t, "alexnet2012")
    t.add_argument("--batch", type=int, default=2, help="images in the batch (default 2)")
    t.add_argument("--seed", type=int, default=0, help="seed of the weights, input and dropout (default 0)")
    t.add_argument("--image", metavar="PATH", help="use this image (any format Pillow reads) instead of the built-in one")
    t.add_argument("--step", action="store_true",
                   help="pause after each layer and work one example of its arithmetic on the actual numbers")
    t.add_argument("--checks", type=int, default=3,
                   help="finite-difference spot checks per tensor in the backward (default 3, 0 to skip)")
    t.add_argument("--eval", action="store_true", help="eval mode: no dropout, batch norm uses running statistics")
    t.add_argument("--json", metavar="PATH", help="also write everything printed, as data, to this JSON file")
    t.add_argument("--save-maps", metavar="DIR", help="write PNG grids of feature maps and conv1's filters (needs matplotlib)")
    t.add_argument("--backend", choices=list(HOST_BACKENDS), default="cpu",
                   help="the kernels: cpu (fast, the default) or reference (the readable NumPy kernels of "
                        "kernels/reference/, slower)")
    t.add_argument("--html", metavar="PATH", help="also write the step-through as one self-contained web page (diagram, "
                                                  "tables, feature maps, every layer's worked example, charts, spot "
                                                  "checks; the arrow keys step through it; opens offline)")
    t.add_argument("--parallel", choices=["none", "towers"], default="none",
                   help="towers: under mpiexec -n 2, the pass as the paper's two towers (each process half of every "
                        "layer): which tower computed each layer, the bytes that crossed between them, and the "
                        "result checked against one process (needs pip install 'minicnn[mpi]')")
    t.set_defaults(run=_trace)

    from .bench import add_arguments

    b = sub.add_parser("bench", help="time each op at AlexNet's layer shapes, and a training step, on CPU and GPU",
                       description="Time each op (forward and backward) at the 2012 AlexNet's layer shapes and a whole "
                                   "training step, on the CPU and on the GPU when one is usable (CUDA events after a "
                                   "warm-up; compile time reported apart), with GFLOP/s and the fraction of peak.")
    add_arguments(b)
    b.set_defaults(run=_bench, model_name=None, model=None, default_model=None)

    tr = sub.add_parser("train", help="train a network (default alexnet_small on the built-in shapes)",
                        description="Train with the 2012 paper's recipe: SGD with momentum and weight decay, the "
                                    "learning rate divided by 10 on a plateau, random crops with mirroring and the "
                                    "PCA colour shift. Shows progress (loss, accuracy, images/s); after each epoch "
                                    "validates (top-1/top-5 error), appends to OUT/metrics.jsonl and writes "
                                    "OUT/last.ckpt atomically (and OUT/best.ckpt). Ctrl-C saves and stops; "
                                    "--resume continues bit for bit.")
    tr.add_argument("model_name", nargs="?", metavar="MODEL", choices=list(models.MODELS),
                    help=f"which network: {', '.join(models.MODELS)} (default alexnet_small)")
    tr.add_argument("--model", dest="given_model", choices=list(models.MODELS), help="the same, as an option")
    for flag, field, kwargs in _TRAIN_OPTIONS:
        tr.add_argument(flag, dest=field, **kwargs)
    tr.add_argument("--out", metavar="DIR", help="where checkpoints and metrics go (default runs/MODEL-DATASET; "
                                                 "with --resume, the checkpoint's folder)")
    tr.add_argument("--resume", metavar="CHECKPOINT", help="continue the run saved in this checkpoint")
    tr.add_argument("--overwrite", action="store_true", help="start afresh even if --out already holds a run")
    tr.add_argument("--plot", metavar="PNG", help="write loss and error curves to this PNG (needs matplotlib)")
    tr.set_defaults(run=_train, model=None, default_model="alexnet_small")

    ev = sub.add_parser("eval", help="top-1 and top-5 error of a training checkpoint, optionally with ten crops",
                        description="Evaluate a checkpoint written by minicnn train on its validation set: centre "
                                    "crops, and with --ten-crop the paper's ten views (four corners, the centre and "
                                    "their mirrors) with the softmax averaged.")
    ev.add_argument("checkpoint", metavar="CHECKPOINT", help="a .ckpt file written by minicnn train")
    ev.add_argument("--ten-crop", action="store_true", help="also evaluate on ten crops per image")
    ev.add_argument("--batch-size", type=int, default=250, help="images per forward pass (default 250)")
    ev.add_argument("--data", metavar="DIR", help="the dataset folder, if it moved since training")
    ev.add_argument("--device", choices=["cpu", "cuda"], help="where to evaluate (default: the training device)")
    ev.set_defaults(run=_eval, model_name=None, model=None, default_model=None)

    au = sub.add_parser("augment", help="draw the paper's augmentations on built-in shapes or your photo, as a PNG",
                        description="Write a PNG grid: original images, random crops with mirroring, the PCA colour "
                                    "shift (at the paper's strength and exaggerated), and the ten evaluation crops.")
    au.add_argument("--out", default="augmentation.png", metavar="PNG", help="output file (default augmentation.png)")
    au.add_argument("--image", metavar="PATH", help="your own photo (any format Pillow reads) instead of the shapes")
    au.add_argument("--image-size", type=int, default=64,
                    help="size of the drawn shapes, or of the photo's centre square (default 64)")
    au.add_argument("--count", type=int, default=4, help="images, one per row (default 4)")
    au.add_argument("--seed", type=int, default=0, help="seed of the images and the augmentation (default 0)")
    au.set_defaults(run=_augment, model_name=None, model=None, default_model=None)

    from .experiment import EXPERIMENTS, SETTINGS

    listing = "\n".join(f"  {e.name:13} {e.what}" for e in EXPERIMENTS.values())
    ex = sub.add_parser("experiment", help="rerun one of the write-up's claims: a table, a PNG and a JSON",
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        description=textwrap.fill(
                            "Rerun a claim of the AlexNet write-up on the built-in shapes: train the networks it "
                            "compares, print a table, write OUT/NAME.png and OUT/NAME.json. Deterministic for a "
                            "seed; the default setting takes a few minutes on two CPU cores, --full longer. "
                            "docs/claims.md gives each claim's numbers and verdict.", 79),
                        epilog=f"experiments:\n{listing}")
    ex.add_argument("name", metavar="NAME", choices=list(EXPERIMENTS), help=f"one of: {', '.join(EXPERIMENTS)}")
    ex.add_argument("--full", action="store_true",
                    help=f"the fuller run (training experiments: {SETTINGS['full'].epochs} epochs, width "
                         f"{SETTINGS['full'].width}; relu-vs-tanh: learning rates "
                         f"{', '.join(map(str, SETTINGS['full'].learning_rates))} and two initialisations)")
    ex.add_argument("--seed", type=int, default=0, help="seed of the data, weights and batches (default 0)")
    ex.add_argument("--out", default="experiments", metavar="DIR",
                    help="where the PNG, the JSON and the training runs go (default experiments/)")
    ex.add_argument("--no-plot", action="store_true", help="write no PNG (no matplotlib needed)")
    ex.set_defaults(run=_experiment, model_name=None, model=None, default_model=None)
    return parser


def _bench(args):
    from .bench import run_from_args

    run_from_args(args)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.model and args.model_name and args.model != args.model_name:
        parser.error(f"two different models given: {args.model_name} and --model {args.model}")
    given_model = getattr(args, "given_model", None)
    if given_model and args.model_name and given_model != args.model_name:
        parser.error(f"two different models given: {args.model_name} and --model {given_model}")
    args.model = args.model or given_model or args.model_name or args.default_model
    try:
        code = args.run(args)
    except MiniCNNError as exc:
        message = str(exc).removeprefix(f"{args.command}: ")
        print(f"minicnn {args.command}: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\nminicnn {args.command}: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print(f"minicnn {args.command}: out of memory; a smaller --batch-size (or dataset, or model) needs less",
              file=sys.stderr)
        return 2
    except BrokenPipeError:
        # Whoever read the output stopped reading (`minicnn trace | head`): stop quietly, as Unix tools
        # do, instead of a traceback. Python flushes stdout once more on exit; /dev/null takes that.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE  # 141, the status of a tool a closed pipe stopped
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
