"""The ``minicnn`` command: ``minicnn trace`` (the step-through) and ``minicnn summary``."""
from __future__ import annotations

import argparse
import sys

from . import models
from .errors import MiniCNNError


def _summary(args):
    from .summary import format_summary, layer_plan

    kwargs = {} if args.input_size is None else {"input_size": args.input_size}
    if args.num_classes is not None:
        kwargs["num_classes"] = args.num_classes
    net = models.get(args.model, **kwargs)
    print(format_summary(net, layer_plan(net)))


def _trace(args):
    from .trace import run_trace

    run_trace(model=args.model, batch=args.batch, seed=args.seed, input_size=args.input_size, image=args.image,
              num_classes=args.num_classes, step=args.step, checks=args.checks, json_path=args.json,
              save_maps=args.save_maps, training=not args.eval)


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

    s = sub.add_parser("summary", help="per layer: output shape, parameters with their arithmetic, MACs",
                       description="Print each layer's output shape with the size arithmetic, its parameter "
                                   "count with the arithmetic, multiply-accumulates per image, and totals.")
    model_options(s, "alexnet2012")
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
    t.set_defaults(run=_trace)

    from .bench import add_arguments

    b = sub.add_parser("bench", help="time each op at AlexNet's layer shapes, and a training step, on CPU and GPU",
                       description="Time each op (forward and backward) at the 2012 AlexNet's layer shapes and a whole "
                                   "training step, on the CPU and on the GPU when one is usable (CUDA events after a "
                                   "warm-up; compile time reported apart), with GFLOP/s and the fraction of peak.")
    add_arguments(b)
    b.set_defaults(run=_bench, model_name=None, model=None, default_model=None)
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
    args.model = args.model or args.model_name or args.default_model
    try:
        args.run(args)
    except MiniCNNError as exc:
        print(f"minicnn {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\nminicnn {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
