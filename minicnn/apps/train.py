"""Training and evaluation: what ``minicnn train`` and ``minicnn eval`` run.

One epoch: for each batch, in a seeded order, the paper's augmentation (PCA colour shift, mean
subtraction, random crop with mirror), forward, cross-entropy (plus the model's own L2 term, for
``alexnet_bn``), backward and one optimiser step; then validation on the centre crops (loss,
top-1 and top-5 error), one step of the learning-rate schedule, a line in ``metrics.jsonl`` and a
checkpoint (``last.ckpt``; ``best.ckpt`` when validation top-1 error improves, or on a tie the
validation loss).

Reproducibility: everything random is a function of the seed and of where training is. The batch
order of epoch e comes from (seed, e), the augmentation of batch b of epoch e from (seed, e, b),
and each dropout layer's masks from its own seed and call counter, which the checkpoint keeps. A
run resumed from a checkpoint therefore replays exactly the batches, crops and masks of a run that
never stopped, and on the CPU computes bit-for-bit the same losses and weights.

Ctrl-C (SIGINT) or SIGTERM finishes the step in flight, writes ``last.ckpt`` at that batch and
stops; ``minicnn train --resume OUT/last.ckpt`` goes on from there. A second Ctrl-C stops at once
(the last checkpoint written stays as it was).
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .. import checkpoint, checks
from .. import functional as F
from .. import models, optim
from ..autograd import no_grad
from ..data import CIFAR10, DataLoader, ImageFolder, ShapesDataset
from ..data import transforms as T
from ..errors import ArgumentError
from ..kernels.backends import SLOW_NOTE, use_backend
from ..nn import BatchNorm1d, BatchNorm2d, Dropout
from ..tensor import Tensor

# The paper trains on 227x227 crops of 256x256 images; smaller images are cropped in proportion.
CROP_FRACTION = 227 / 256
SHAPES_TRAIN_SEED, SHAPES_VAL_SEED = 0, 1  # the shapes data is fixed: only the run's own seed varies


# Images each model trains on by default: the smallest whose default crop (x 227 / 256) the
# model takes (alexnet_bn: 72 -> 64 >= 57; alexnet2012: 76 -> 67), 32 for alexnet_small.
DEFAULT_IMAGE_SIZE = {"alexnet_small": 32, "alexnet_bn": 72, "alexnet2012": 76, "alexnet2012_caffe": 76}


def default_crop(image_size):
    return max(1, round(image_size * CROP_FRACTION))


@dataclasses.dataclass
class TrainConfig:
    """Everything that defines a training run; saved in every checkpoint."""

    model: str = "alexnet_small"
    dataset: str = "shapes"  # shapes | cifar10 | folder
    data: str | None = None  # the folder of cifar10 or of an image folder (with train/ and val/)
    train_size: int = 5000  # shapes only
    val_size: int = 1000  # shapes only
    image_size: int | None = None  # shapes: drawn at this size; folder: shorter side resized, centre crop;
    # None: the model's DEFAULT_IMAGE_SIZE
    crop: int | None = None  # network input; default image_size * 227 / 256
    width: float = 1.0  # alexnet_small only: channel multiplier
    dropout: bool = True  # the ablations (alexnet_small only)
    lrn: bool = True
    overlap: bool = True
    activation: str = "relu"  # relu (the paper's), tanh or sigmoid: after every conv and fc layer
    epochs: int = 20
    batch_size: int = 64
    optimizer: str = "sgd"  # sgd | adam
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float | None = None  # None: 5e-4, or 0 for a model with its own L2 (alexnet_bn)
    schedule: str = "plateau"  # plateau (the paper's /10) | step | none
    step_size: int = 10
    patience: int = 2
    warmup_epochs: int = 1  # learning rate ramps up linearly over the first epochs' steps
    random_crop: bool = True  # random crops (else the centre crop)
    flip: bool = True  # mirror left-right with probability 1/2 (the paper's reflections); ten-crop
    # evaluation then averages the mirrored views too, else five views
    pca: bool = True  # PCA colour augmentation
    seed: int = 0
    device: str = "cpu"
    backend: str = "cpu"  # the kernels on the CPU: "cpu" (fast) or "reference" (readable NumPy, slow)
    parallel: str = "none"  # none | data (the batch shared by the processes mpiexec started: minicnn/distributed.py)
    # | towers (alexnet2012 as the paper's two towers on two processes: minicnn/towers.py)
    sync_bn: bool = False  # data parallel: batch norm over the whole global batch, not each process's part

    def __post_init__(self):
        if self.image_size is None:
            self.image_size = DEFAULT_IMAGE_SIZE.get(self.model, 32)
        self.validate()

    def validate(self):
        def positive_int(name, low=1):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ArgumentError(f"train: {name.replace('_', '-')} must be an integer >= {low}, got {value!r}")

        for name in ("train_size", "val_size", "epochs", "batch_size", "step_size"):
            positive_int(name)
        positive_int("image_size", 8)
        positive_int("patience", 0)
        positive_int("warmup_epochs", 0)
        positive_int("seed", 0)
        if self.model not in models.MODELS:
            raise ArgumentError(f"train: unknown model {self.model!r}; choose from {', '.join(models.MODELS)}")
        if self.dataset not in ("shapes", "cifar10", "folder"):
            raise ArgumentError(f"train: dataset must be shapes, cifar10 or folder, got {self.dataset!r}")
        if self.dataset != "shapes" and not self.data:
            raise ArgumentError(f"train: dataset {self.dataset} needs --data FOLDER")
        if self.crop is not None:
            positive_int("crop")
            if self.crop > self.image_size:
                raise ArgumentError(f"train: crop {self.crop} is larger than the images ({self.image_size})")
        smallest = models.MIN_INPUT_SIZE.get(self.model, 1)
        if self.input_size < smallest:
            raise ArgumentError(f"train: {self.model} takes crops of at least {smallest} px, got {self.input_size} "
                                f"(--image-size {self.image_size}" + (f", --crop {self.crop})" if self.crop else
                                                                      " x 227 / 256)") +
                                f"; --image-size {DEFAULT_IMAGE_SIZE.get(self.model, smallest)} or more works")
        if self.activation not in models.ACTIVATIONS:
            raise ArgumentError(f"train: activation must be one of {', '.join(models.ACTIVATIONS)}, got "
                                f"{self.activation!r}")
        if self.optimizer not in ("sgd", "adam"):
            raise ArgumentError(f"train: optimizer must be sgd or adam, got {self.optimizer!r}")
        if self.schedule not in ("plateau", "step", "none"):
            raise ArgumentError(f"train: schedule must be plateau, step or none, got {self.schedule!r}")
        if self.device not in ("cpu", "cuda"):
            raise ArgumentError(f"train: device must be cpu or cuda, got {self.device!r}")
        if self.backend not in ("cpu", "reference"):
            raise ArgumentError(f"train: backend must be cpu or reference, got {self.backend!r}")
        if self.parallel not in ("none", "data", "towers"):
            raise ArgumentError(f"train: parallel must be none, data or towers, got {self.parallel!r}")
        if self.sync_bn and self.parallel != "data":
            raise ArgumentError("train: --sync-bn synchronises batch norm across the processes of --parallel data")
        if self.parallel != "none" and self.device != "cpu":
            raise ArgumentError(f"train: --parallel {self.parallel} runs on the CPU (its sums over MPI are of host "
                                "arrays); --device cuda trains on one GPU")
        if self.parallel == "towers" and not self.model.startswith("alexnet2012"):
            raise ArgumentError(f"train: --parallel towers splits alexnet2012 or alexnet2012_caffe into the paper's two "
                                f"towers, got {self.model}")
        if self.backend == "reference" and self.device == "cuda":
            raise ArgumentError("train: the reference backend runs on the CPU; --device cuda runs the CUDA kernels")
        ablated = [name for name in ("dropout", "lrn", "overlap") if not getattr(self, name)]
        unsupported = [name for name in ablated if name not in models.ABLATIONS[self.model]]
        unsupported += ["width"] if self.width != 1.0 and self.model != "alexnet_small" else []
        if unsupported:
            raise ArgumentError(f"train: {self.model} has no {', '.join(unsupported)} to change (its switches: "
                                f"{', '.join(models.ABLATIONS[self.model])}" +
                                ("; width is alexnet_small's)" if "width" in unsupported else ")"))

    @property
    def input_size(self):
        return self.crop or default_crop(self.image_size)

    @classmethod
    def from_dict(cls, values):
        if "flip" not in values and "random_crop" in values:
            # a checkpoint from before --no-flip: --no-random-crop then meant no mirroring either
            values = dict(values, flip=values["random_crop"])
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ArgumentError(f"train: unknown settings {unknown}")
        return cls(**values)


# ---- data ---------------------------------------------------------------------------------------
def load_data(config):
    """(train, val) datasets with ``images`` (N, 3, H, W) float32 in [0, 1] and ``labels``."""
    if config.dataset == "shapes":
        return (ShapesDataset(config.train_size, config.image_size, seed=SHAPES_TRAIN_SEED),
                ShapesDataset(config.val_size, config.image_size, seed=SHAPES_VAL_SEED))
    if config.dataset == "cifar10":
        return CIFAR10(config.data, train=True), CIFAR10(config.data, train=False)
    splits = [os.path.join(config.data, split) for split in ("train", "val")]
    for split in splits:
        if not os.path.isdir(split):
            raise ArgumentError(f"train: an image folder needs train/ and val/ sub-folders; {split} not found")
    train_set = ImageFolder(splits[0], config.image_size)
    return train_set, ImageFolder(splits[1], config.image_size, classes=train_set.classes)


class Pipeline:
    """The paper's input pipeline, fitted to a training set: its per-channel mean and the
    eigenvalues and eigenvectors of its RGB covariance (for the PCA colour shift)."""

    def __init__(self, mean, eigenvalues, eigenvectors, crop, random_crop=True, pca=True, flip=True):
        self.mean = np.asarray(mean, dtype=np.float64)
        self.eigenvalues = np.asarray(eigenvalues, dtype=np.float64)
        self.eigenvectors = np.asarray(eigenvectors, dtype=np.float64)
        self.crop, self.random_crop, self.pca, self.flip = int(crop), bool(random_crop), bool(pca), bool(flip)

    @classmethod
    def fit(cls, images, crop, random_crop=True, pca=True, flip=True):
        return cls(T.channel_mean(images), *T.pca_colour(images), crop, random_crop, pca, flip)

    def train_batch(self, images, rng, index=None, part=None):
        """The augmented batch (colour shift, mean, crop, mirror) in one pass: ``transforms.augment``.
        ``index``: the batch is images[index], read from the whole set in place; ``part``: only these
        positions of it, with their draws in the whole batch (a data-parallel rank's share)."""
        eigen = (self.eigenvalues, self.eigenvectors) if self.pca else None
        return T.augment(images, self.crop, rng, self.mean, eigen, self.random_crop, self.flip, index, part=part)

    def eval_batch(self, images):
        return T.centre_crop(T.subtract_mean(images, self.mean), self.crop)

    def ten_crop_batch(self, images):
        """The ten views, or five (no mirrors) for a network trained without mirroring."""
        return T.ten_crop(T.subtract_mean(images, self.mean), self.crop, mirrors=self.flip)

    def arrays(self):
        """What a checkpoint keeps, under "pipeline:<name>"."""
        return {f"pipeline:{name}": getattr(self, name) for name in ("mean", "eigenvalues", "eigenvectors")}

    @classmethod
    def from_arrays(cls, arrays, crop, random_crop=True, pca=True, flip=True):
        return cls(arrays["pipeline:mean"], arrays["pipeline:eigenvalues"], arrays["pipeline:eigenvectors"], crop,
                   random_crop, pca, flip)


# ---- model, optimiser, schedule -----------------------------------------------------------------
def build_model(config, num_classes):
    kwargs = {"num_classes": num_classes, "input_size": config.input_size, "seed": config.seed,
              "activation": config.activation}
    switches = models.ABLATIONS[config.model]
    kwargs.update({name: getattr(config, name) for name in ("lrn", "overlap") if name in switches})
    if not config.dropout:
        kwargs["dropout"] = 0.0  # else the model's own rate (0.5, or alexnet_bn's 0.25)
    if config.model == "alexnet_small":
        kwargs["width"] = config.width
    return models.get(config.model, **kwargs)


# What one step needs, per image, as a multiple of the bytes of every layer's output: the outputs
# kept for backward, their gradients, and the kernels' workspaces. Measured (growth of peak
# resident memory from batch 2 to batch B): a training step 1.9-2.9x (alexnet_small at 64 and
# 512, alexnet2012 at 16 and 64, alexnet_bn at 32), a forward pass without gradients 0.9-1.4x;
# 3x and 1.5x keep the estimate above what a run uses. Parameters: the weights, their gradients,
# the optimiser's moments and the step's temporaries. Python, NumPy and Numba's compiled kernels
# take another 0.3-0.45 GiB (measured), RUNTIME_BYTES.
ACTIVATION_FACTOR = {"train": 3.0, "eval": 1.5}
PARAMETER_FACTOR = {"train": 4, "eval": 1}
RUNTIME_BYTES = 2**29


def memory_estimate(model, batch_size, input_shape, mode="train"):
    """Bytes a step of ``model`` on ``batch_size`` images of ``input_shape`` needs, from the layer
    plan (no forward pass is run): activations x batch x ACTIVATION_FACTOR + parameters x
    PARAMETER_FACTOR + RUNTIME_BYTES. Also returns the bytes of one image's activations."""
    from .summary import layer_plan  # the summary app owns the shape arithmetic

    per_image = math.prod(input_shape) + sum(math.prod(row["out_shape"]) for row in layer_plan(model, input_shape))
    activations = 4 * per_image * batch_size * ACTIVATION_FACTOR[mode]
    return int(activations + 4 * model.num_parameters() * PARAMETER_FACTOR[mode] + RUNTIME_BYTES), 4 * per_image


def check_memory(op, model, batch_size, input_shape, mode="train", stream=None):
    """Refuse, before the work starts, a batch whose estimated memory exceeds this machine's
    (a NumPy MemoryError or the kernel's OOM killer would come only later, mid-epoch); warn when
    it exceeds what is free now."""
    needed, per_image = memory_estimate(model, batch_size, input_shape, mode)
    total, available = checks.memory_bytes(), checks.available_memory_bytes()
    what = (f"{op}: a {'training step' if mode == 'train' else 'forward pass'} at batch {batch_size} on "
            f"{'x'.join(map(str, input_shape))} inputs needs about {needed / 2**30:.1f} GiB")
    if total is not None and needed > total:
        fixed = needed - per_image * batch_size * ACTIVATION_FACTOR[mode]
        fits = int((total - fixed) // (per_image * ACTIVATION_FACTOR[mode]))
        hint = f"--batch-size {fits} or less fits" if fits >= 1 else "a smaller model or input fits"
        raise ArgumentError(f"{what}, more than this machine's {total / 2**30:.1f} GiB of memory; {hint}")
    if stream is not None and available is not None and needed > available:
        stream.write(f"warning: {what}, more than the {available / 2**30:.1f} GiB free now; it may swap or be "
                     "stopped by the system\n")


def weight_decay(config, model):
    if config.weight_decay is not None:
        return config.weight_decay
    return 0.0 if model.weight_decay else 5e-4


def build_optimizer(config, model):
    params, decay = list(model.parameters()), weight_decay(config, model)
    if config.optimizer == "sgd":
        return optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=decay)
    return optim.Adam(params, lr=config.lr, weight_decay=decay)


def build_schedule(config, optimizer):
    if config.schedule == "plateau":
        return optim.ReduceLROnPlateau(optimizer, patience=config.patience)
    if config.schedule == "step":
        return optim.StepLR(optimizer, config.step_size)
    return None


# ---- metrics ------------------------------------------------------------------------------------
def top_k_correct(logits, labels, k):
    """How many rows have their label among the k largest logits."""
    k = min(k, logits.shape[1])
    top = np.argpartition(-logits, k - 1, axis=1)[:, :k]
    return int((top == labels[:, None]).any(axis=1).sum())


def softmax(logits):
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


def evaluate(model, pipeline, images, labels, batch_size=250, ten_crop=False, device="cpu", group=None):
    """Loss and top-1/top-5 error on a dataset, on centre crops or ten crops (softmax averaged).
    With 5 classes or fewer every label is in the top 5: top-5 error is None, not a meaningless 0.
    ``group`` (data parallelism): each rank evaluates an equal run of the images, and the sums are
    added over the ranks."""
    if group is not None:
        bounds = np.linspace(0, len(labels), group.size + 1).astype(int)
        images, labels = (a[bounds[group.rank]:bounds[group.rank + 1]] for a in (images, labels))
    was_training = model.training
    model.eval()
    loss_sum, top1, top5, classes = 0.0, 0, 0, 0
    try:
        with no_grad():
            for start in range(0, len(labels), batch_size):
                x, y = images[start:start + batch_size], labels[start:start + batch_size]
                views = pipeline.ten_crop_batch(x) if ten_crop else pipeline.eval_batch(x)[None]
                probs = np.mean([softmax(model(Tensor(np.ascontiguousarray(v)).to(device)).numpy().astype(np.float64))
                                 for v in views], axis=0)
                loss_sum += float(-np.log(np.maximum(probs[np.arange(len(y)), y], 1e-30)).sum())
                top1 += top_k_correct(probs, y, 1)
                top5 += top_k_correct(probs, y, 5)
                classes = probs.shape[1]
    finally:
        model.train(was_training)
    n = len(labels)
    if group is not None:
        loss_sum, top1, top5, n, classes = group.sum_values([loss_sum, top1, top5, n, classes > 5], "the evaluation")
        classes = 6 if classes else 0
    return {"loss": loss_sum / n, "top1_error": 1 - top1 / n, "top5_error": 1 - top5 / n if classes > 5 else None}


def best_order(row):
    """What makes an epoch's model the best: the lower validation top-1 error, and on a tie the
    lower validation loss (a later epoch that only equals the best keeps the earlier best.ckpt)."""
    return row["val_top1_error"], row["val_loss"]


def _percent(error, digits=1):
    """An error rate as a percentage; "n/a" for a top-5 error with 5 classes or fewer."""
    return "n/a (5 classes or fewer)" if error is None else f"{100 * error:.{digits}f}%"


# ---- progress -----------------------------------------------------------------------------------
def _in_notebook():
    """Whether tqdm.auto draws a notebook widget here (a Jupyter kernel with ipywidgets)."""
    from tqdm import autonotebook

    return autonotebook.tqdm.__module__ == "tqdm.notebook"


class Progress:
    """An epoch's progress. In a notebook, a tqdm widget; on a terminal, tqdm's line redrawn in
    place (both through ``tqdm.auto``); on a pipe or in a file, where carriage returns would pile
    up, a plain line every ~10% of the epoch."""

    def __init__(self, epoch, epochs, done, total, batch_size, stream=None):
        self.epoch, self.epochs, self.total, self.batch_size = epoch, epochs, total, batch_size
        self.stream = stream or sys.stderr
        self.last_tenth = 10 * done // total
        self.bar = None
        tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        if _in_notebook() or tty:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=done, desc=f"epoch {epoch}/{epochs}", unit="batch",
                            file=None if not tty else self.stream, mininterval=0.1, dynamic_ncols=True)

    def update(self, done, loss, acc, rate):
        if self.bar is not None:
            self.bar.set_postfix_str(f"loss {loss:.4f} acc {100 * acc:5.1f}% {rate:6.1f} img/s", refresh=False)
            self.bar.update(done - self.bar.n)
            return
        tenth = 10 * done // self.total
        if tenth == self.last_tenth and done < self.total:
            return
        self.last_tenth = tenth
        eta = (self.total - done) * self.batch_size / rate if rate > 0 else 0.0
        self.stream.write(f"epoch {self.epoch}/{self.epochs} {done}/{self.total} loss {loss:.4f} "
                          f"acc {100 * acc:5.1f}% {rate:6.1f} img/s eta {eta:4.0f}s\n")
        self.stream.flush()

    def close(self):
        if self.bar is not None:
            self.bar.close()


def write_metrics(path, history):
    """All epochs' metrics as JSON lines, replaced atomically (a resumed run rewrites it whole).
    Strict JSON: a number that is not finite is written as null."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        for row in history:
            clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
            f.write(json.dumps(clean, allow_nan=False) + "\n")
    os.replace(tmp, path)


def plot_metrics(history, path):
    """Loss and error curves against epochs, as a PNG (needs matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ArgumentError("--plot needs matplotlib: pip install 'minicnn[plot]'") from None
    epochs = [row["epoch"] for row in history]
    fig, (ax_loss, ax_err) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [r["train_loss"] for r in history], "o-", label="train (augmented, dropout on)")
    ax_loss.plot(epochs, [r["val_loss"] for r in history], "o-", label="validation")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    ax_err.plot(epochs, [100 * r["train_top1_error"] for r in history], "o-", label="train top-1")
    ax_err.plot(epochs, [100 * r["val_top1_error"] for r in history], "o-", label="validation top-1")
    if all(r["val_top5_error"] is not None for r in history):
        ax_err.plot(epochs, [100 * r["val_top5_error"] for r in history], "o-", label="validation top-5")
    ax_err.set(xlabel="epoch", ylabel="error (%)", title="error", ylim=(0, 100))
    for ax in (ax_loss, ax_err):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def prefetched(prepare, numbers):
    """``prepare(k)`` for each k of ``numbers``, in order, each computed on a background thread while
    the caller works on the one before (the next training batch is augmented while this one trains:
    ``transforms.augment`` releases the GIL). ``prepare`` must depend on k alone, so that what is
    yielded does not depend on the timing; an error in it is raised here."""
    numbers = iter(numbers)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="minicnn-prefetch") as worker:
        upcoming = [worker.submit(prepare, k) for k in itertools.islice(numbers, 1)]
        while upcoming:
            current = upcoming.pop().result()
            upcoming = [worker.submit(prepare, k) for k in itertools.islice(numbers, 1)]
            yield current


# ---- the trainer --------------------------------------------------------------------------------
class Trainer:
    """A training run: data, pipeline, model, optimiser, schedule, and where it has got to."""

    def __init__(self, config, out_dir, stream=None, data=None, group=None):
        """``group``: the processes of a data-parallel run (minicnn.distributed.Group), each taking an
        equal part of every batch; rank 0 alone writes files, every rank's stream prints."""
        self.config, self.out_dir = config, os.fspath(out_dir)
        self.stream = stream or sys.stderr
        self.group = group
        self.towers = group is not None and config.parallel == "towers"  # each rank half of every layer, whole batches
        sharing = group is not None and not self.towers
        self.first, self.local = group.share(config.batch_size) if sharing else (0, config.batch_size)
        if group is not None:
            group.agree(json.dumps(dataclasses.asdict(config), sort_keys=True), "settings")
        self.train_set, self.val_set = data or load_data(config)
        if config.input_size > min(self.train_set.images.shape[2:]):
            raise ArgumentError(f"train: crop {config.input_size} is larger than the images "
                                f"{self.train_set.images.shape[2:]}")
        classes = getattr(self.train_set, "classes", None)
        self.num_classes = len(classes) if classes else int(max(self.train_set.labels.max(),
                                                                 self.val_set.labels.max())) + 1
        self.pipeline = Pipeline.fit(self.train_set.images, config.input_size, config.random_crop, config.pca,
                                     config.flip)
        self.model = build_model(config, self.num_classes)
        for m in self.model.modules():
            if isinstance(m, Dropout):
                m.batch_offset = self.first  # each image's mask as in one process
            if config.sync_bn and group is not None and isinstance(m, (BatchNorm1d, BatchNorm2d)):
                m.sync_group = group  # statistics of the whole global batch
        if config.device != "cpu":
            self.model.to(config.device)
        self.loader = DataLoader(self.train_set, config.batch_size, shuffle=True, seed=config.seed, drop_last=True)
        if len(self.loader) == 0:
            raise ArgumentError(f"train: batch size {config.batch_size} is larger than the training set "
                                f"({len(self.train_set)} images)")
        if config.device == "cpu":  # (a GPU's memory is the CUDA driver's to refuse; a tower needs less than this)
            check_memory("train", self.model, self.local, (3, config.input_size, config.input_size),
                         stream=self.stream)
        if self.towers:
            from ..towers import Towers

            self.model = Towers(self.model, group)
        self.optimizer = build_optimizer(config, self.model)
        self.base_lr = self.optimizer.lr
        self.schedule = build_schedule(config, self.optimizer)
        self.epoch, self.batch, self.steps = 0, 0, 0  # completed epochs; next batch in this epoch
        self.running = {"loss_sum": 0.0, "correct": 0, "seen": 0, "seconds": 0.0}
        self.history, self.elapsed = [], 0.0
        self.stop_signal = None
        self.stop_agreed = False  # data parallelism: whether any rank has been asked to stop (summed each step)

    # -- one step --
    def train_step(self, images, labels):
        if self.config.warmup_epochs and self.steps < self.config.warmup_epochs * len(self.loader):
            self.optimizer.lr = self.base_lr * (self.steps + 1) / (self.config.warmup_epochs * len(self.loader))
        x = Tensor(np.ascontiguousarray(images)).to(self.config.device)
        logits = self.model(x)
        loss = F.cross_entropy(logits, labels)
        group = self.group if not self.towers else None  # the towers share layers, not the batch
        if group is not None:  # this rank's part of the whole batch's mean
            loss = loss * (self.local / self.config.batch_size)
        if self.model.weight_decay and (group is None or group.rank == 0):  # the L2 term once, not once per rank
            loss = loss + self.model.regularization_loss()
        self.optimizer.zero_grad()
        loss.backward()
        value, correct = loss.item(), top_k_correct(logits.numpy(), labels, 1)
        if group is not None:
            group.allreduce([p.grad for p in self.model.parameters() if p.grad is not None])
            value, correct, stops = group.sum_values([value, correct, self.stop_signal is not None])
            self.stop_agreed = stops > 0
        elif self.towers:  # both ranks computed the same loss; only the stop votes are added
            self.stop_agreed = self.group.sum_values([self.stop_signal is not None], "the stop vote")[0] > 0
        self.optimizer.step()
        self.steps += 1
        return float(value), int(correct)

    def augmentation_rng(self, epoch, batch):
        return np.random.default_rng([self.config.seed, 2, epoch, batch])

    # -- the loop --
    def run(self):
        """Train until ``config.epochs`` epochs are done or a stop signal arrives; returns
        ``"done"`` or ``"interrupted"``."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            with use_backend(self.config.backend):
                return self._run_epochs()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _run_epochs(self):
        while self.epoch < self.config.epochs:
            if self._train_epoch() == "interrupted":
                path = self.save("last.ckpt")
                self.stream.write(f"\nstopped at epoch {self.epoch + 1}, batch {self.batch}/{len(self.loader)}; "
                                  f"saved {path}\nresume with: {self._launcher()}minicnn train --resume {path}\n")
                return "interrupted"
            self._end_epoch()
            if self.group is not None:
                self.stop_agreed = self.group.sum_values([self.stop_signal is not None], "the stop vote")[0] > 0
            if self._stopping():
                self.stream.write(f"stopped after epoch {self.epoch}; resume with: {self._launcher()}minicnn train --resume "
                                  f"{os.path.join(self.out_dir, 'last.ckpt')}\n")
                return "interrupted"
        return "done"

    def _launcher(self):
        """What the resume command starts with: mpiexec for a data-parallel run."""
        return f"mpiexec -n {self.group.size} " if self.group is not None and self.group.size > 1 else ""

    def _on_signal(self, signum, _frame):
        if self.stop_signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now, keep the last checkpoint
        self.stop_signal = signum
        self.stream.write(f"\n{signal.Signals(signum).name}: finishing this step, then saving a checkpoint "
                          "(Ctrl-C again to stop without saving)\n")

    def _train_epoch(self):
        config, total = self.config, len(self.loader)
        progress = Progress(self.epoch + 1, config.epochs, self.batch, total, config.batch_size, self.stream)
        try:
            return self._train_batches(progress)
        finally:
            progress.close()

    def _train_batches(self, progress):
        total = len(self.loader)
        self.model.train()
        r = self.running
        order, size, epoch = self.loader.order(self.epoch), self.config.batch_size, self.epoch
        images, all_labels = self.train_set.images, self.train_set.labels

        part = slice(self.first, self.first + self.local)  # this rank's images of each batch (all of it alone)

        def prepare(number):  # batch ``number`` of this epoch, augmented: a function of (seed, epoch, number) only
            index = order[number * size:(number + 1) * size]
            x = self.pipeline.train_batch(images, self.augmentation_rng(epoch, number), index, part)
            return x, all_labels[index[part]]

        for x, labels in prefetched(prepare, range(self.batch, total)):
            if self._stopping():
                return "interrupted"
            start = time.perf_counter()
            loss, correct = self.train_step(x, labels)
            if not math.isfinite(loss):
                raise ArgumentError(f"train: the loss became {loss} at epoch {self.epoch + 1}, batch {self.batch + 1}; "
                                    f"lower the learning rate (now {self.optimizer.lr:g})")
            self.batch += 1
            seen = self.config.batch_size if self.group is not None else len(labels)  # loss, correct: the batch's
            r["loss_sum"] += loss * seen
            r["correct"] += correct
            r["seen"] += seen
            r["seconds"] += time.perf_counter() - start
            progress.update(self.batch, r["loss_sum"] / r["seen"], r["correct"] / r["seen"], r["seen"] / r["seconds"])
        return "interrupted" if self._stopping() and self.batch < total else "done"

    def _stopping(self):
        """Whether to stop now: a signal arrived; with data parallelism, at any rank, as summed in
        the last step (never the local flag alone: the ranks must stop at the same batch)."""
        return self.stop_agreed if self.group is not None else self.stop_signal is not None

    def _end_epoch(self):
        r = self.running
        start = time.perf_counter()
        val = evaluate(self.model, self.pipeline, self.val_set.images, self.val_set.labels, device=self.config.device,
                       group=None if self.towers else self.group)
        seconds = r["seconds"] + time.perf_counter() - start
        self.elapsed += seconds
        row = {"epoch": self.epoch + 1, "lr": self.optimizer.lr, "train_loss": r["loss_sum"] / r["seen"],
               "train_top1_error": 1 - r["correct"] / r["seen"], "val_loss": val["loss"],
               "val_top1_error": val["top1_error"], "val_top5_error": val["top5_error"],
               "images_per_second": r["seen"] / r["seconds"], "epoch_seconds": seconds,
               "elapsed_seconds": self.elapsed}
        if not math.isfinite(val["loss"]):
            raise ArgumentError(f"train: the validation loss became {val['loss']} at epoch {self.epoch + 1}; nothing "
                                f"of this epoch is saved, the checkpoints of epoch {self.epoch} stay; lower the "
                                f"learning rate (now {self.optimizer.lr:g})")
        self.history.append(row)
        self.epoch, self.batch = self.epoch + 1, 0
        self.running = {"loss_sum": 0.0, "correct": 0, "seen": 0, "seconds": 0.0}
        if isinstance(self.schedule, optim.ReduceLROnPlateau):
            self.schedule.step(val["top1_error"])
        elif self.schedule is not None:
            self.schedule.step()
        self.stream.write(f"epoch {row['epoch']}/{self.config.epochs}: train loss {row['train_loss']:.4f}, "
                          f"val loss {row['val_loss']:.4f}, val top-1 error {100 * row['val_top1_error']:.1f}%, "
                          f"top-5 {_percent(row['val_top5_error'])}, lr {row['lr']:.3g}, "
                          f"{row['images_per_second']:.0f} img/s, {seconds:.0f} s\n")
        if self.writes_files:
            os.makedirs(self.out_dir, exist_ok=True)
            write_metrics(os.path.join(self.out_dir, "metrics.jsonl"), self.history)
        # best.ckpt first: a kill between the two saves then leaves last.ckpt at the previous epoch,
        # whose resume trains this epoch again and writes the same best.ckpt, bit for bit. (The
        # other order could lose this epoch's best model for good.)
        if all(best_order(row) < best_order(earlier) for earlier in self.history[:-1]):
            self.save("best.ckpt")
        self.save("last.ckpt")

    # -- checkpoints --
    @property
    def writes_files(self):
        """Rank 0 alone writes metrics and checkpoints (every rank holds the same weights)."""
        return self.group is None or self.group.rank == 0

    def save(self, name):
        """Write a checkpoint (rank 0); the towers' halves are put together first (a collective call),
        so that a towers run's checkpoint is a one-process alexnet2012's."""
        arrays = {f"model:{k}": v for k, v in self.model.state_dict().items()}
        opt_state = self.optimizer.state_dict()
        names = [name for name, _ in self.model.named_parameters()]
        for i, state in enumerate(opt_state["state"]):
            arrays.update({f"optimizer:{i}:{k}": self.model.whole(names[i], v) if self.towers else v
                           for k, v in state.items()})
        if not self.writes_files:
            return os.path.join(self.out_dir, name)
        arrays.update(self.pipeline.arrays())
        meta = {
            "format": "minicnn training checkpoint",
            "config": dataclasses.asdict(self.config),
            "model": self.config.model,
            "num_classes": self.num_classes,
            "epoch": self.epoch, "batch": self.batch, "steps": self.steps, "base_lr": self.base_lr,
            "running": self.running, "history": self.history, "elapsed": self.elapsed,
            "optimizer": {"hyper": opt_state["hyper"], "stepped": [bool(s) for s in opt_state["state"]]},
            "schedule": self.schedule.state_dict() if self.schedule is not None else None,
            "dropout": {name: {"seed": m.seed, "calls": m.calls}
                        for name, m in self.model.named_modules() if isinstance(m, Dropout)},
            "ranks": self.group.size if self.group is not None else 1,
        }
        return checkpoint.save(os.path.join(self.out_dir, name), arrays, meta)

    def restore(self, arrays, meta, path="checkpoint"):
        """Put the run back where ``save`` left it."""
        if meta.get("model") != self.config.model or meta.get("num_classes") != self.num_classes:
            raise checkpoint.CheckpointError(
                f"{path} is for {meta.get('model')} with {meta.get('num_classes')} classes; this run trains "
                f"{self.config.model} with {self.num_classes} classes")
        self.model.load_state_dict(model_state(arrays))
        stepped = meta["optimizer"]["stepped"]
        names = [name for name, _ in self.model.named_parameters()]

        def mine(i, array):  # a towers rank keeps its half of the whole network's buffer
            return self.model.own(names[i], array) if self.towers else array

        state = [{name: mine(i, arrays[f"optimizer:{i}:{name}"]) for name in self.optimizer.state_names} if was else {}
                 for i, was in enumerate(stepped)]
        self.optimizer.load_state_dict({"hyper": meta["optimizer"]["hyper"], "state": state})
        if self.schedule is not None:
            self.schedule.load_state_dict(meta["schedule"])
        self.pipeline = Pipeline.from_arrays(arrays, self.config.input_size, self.config.random_crop, self.config.pca,
                                             self.config.flip)
        dropout = dict(self.model.named_modules())
        for name, values in meta["dropout"].items():
            dropout[name].seed, dropout[name].calls = values["seed"], values["calls"]
        self.epoch, self.batch, self.steps, self.base_lr = meta["epoch"], meta["batch"], meta["steps"], meta["base_lr"]
        self.running, self.history, self.elapsed = dict(meta["running"]), list(meta["history"]), meta["elapsed"]


def model_state(arrays):
    """The model's state_dict out of a checkpoint's arrays (saved under "model:<name>")."""
    return {name.removeprefix("model:"): value for name, value in arrays.items() if name.startswith("model:")}


def open_checkpoint(path):
    """(arrays, meta, config) of a training checkpoint, with a clear error for anything else."""
    arrays, meta = checkpoint.load(path)
    if meta.get("format") != "minicnn training checkpoint" or "config" not in meta:
        raise checkpoint.CheckpointError(f"{path} is a minicnn checkpoint but not of a training run")
    missing = [key for key in TRAINING_META if key not in meta]
    if missing:
        raise checkpoint.CheckpointError(f"{path} is incomplete: its header lacks {', '.join(missing)}")
    return arrays, meta, TrainConfig.from_dict(meta["config"])


# What ``restore`` reads from a training checkpoint's header.
TRAINING_META = ("model", "num_classes", "optimizer", "schedule", "dropout", "epoch", "batch", "steps", "base_lr",
                 "running", "history", "elapsed")


# ---- the run folder -----------------------------------------------------------------------------
class RunFolder:
    """A run's ``--out`` folder, held by one process for the whole run.

    The lock is an exclusive ``flock`` on ``OUT/.lock``, which the kernel releases when the holder
    exits however it exits, so a lock left by a killed run is simply taken over; the file holds the
    holder's PID, for the refusal message. Taking the folder also removes temporary files that a
    save killed mid-way left behind (``*.tmp-PID``, the PID of a process that no longer runs)."""

    LOCK = ".lock"

    def __init__(self, path):
        import fcntl

        self.path = path
        if os.path.exists(path) and not os.path.isdir(path):
            raise ArgumentError(f"train: --out {path} is a file, not a folder")
        try:
            os.makedirs(path, exist_ok=True)
            self.file = open(os.path.join(path, self.LOCK), "a+")
        except OSError as exc:
            raise ArgumentError(f"train: cannot write to --out {path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.seek(0)
            holder = self.file.read().strip() or "unknown"
            self.file.close()
            raise ArgumentError(f"train: {path} is in use by another minicnn train (PID {holder}); wait for it "
                                "to finish, or choose another --out") from None
        self.file.seek(0)
        self.file.truncate()
        self.file.write(str(os.getpid()))
        self.file.flush()
        self._remove_leftovers()

    def _remove_leftovers(self):
        for name in os.listdir(self.path):
            stem, sep, pid = name.rpartition(".tmp-")
            if sep and stem and pid.isdigit() and not _process_alive(int(pid)):
                os.remove(os.path.join(self.path, name))

    def release(self):
        self.file.close()  # closing the file releases the flock


def _process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, and belongs to someone else
        return True
    return True


# ---- the commands -------------------------------------------------------------------------------
# Settings a resumed run may change: how far to train, where, and what to draw. Anything else
# would make the resumed run a different run.
RESUMABLE_CHANGES = ("epochs", "device", "backend", "parallel")


def config_for_resume(meta_config, given, path):
    """The checkpoint's config, with ``given`` (the options typed on the command line) checked
    against it: changing the model, data or hyper-parameters of a run mid-way is refused."""
    values = dataclasses.asdict(meta_config)
    clashes = [f"--{k.replace('_', '-')} {v!r} (the checkpoint has {values[k]!r})" for k, v in given.items()
               if k not in RESUMABLE_CHANGES and values[k] != v]
    if clashes:
        raise checkpoint.CheckpointError(f"{path} was written by a different run configuration: "
                                         + "; ".join(clashes) + ". Start a new run with another --out instead.")
    values.update({k: v for k, v in given.items() if k in RESUMABLE_CHANGES})
    return TrainConfig.from_dict(values)


# Options only some runs read, each with the settings under which it is read: typed for a run that
# would ignore it, it is refused (--data beside the built-in shapes would otherwise train on shapes).
READ_ONLY_WITH = {
    "data": (lambda c: c.dataset != "shapes", "--dataset cifar10 or folder (shapes are drawn, not read)"),
    "train_size": (lambda c: c.dataset == "shapes", "the built-in shapes (cifar10 and folder use every image)"),
    "val_size": (lambda c: c.dataset == "shapes", "the built-in shapes (cifar10 and folder use every image)"),
    "image_size": (lambda c: c.dataset != "cifar10", "shapes and folder (CIFAR-10's images are 32 px)"),
    "momentum": (lambda c: c.optimizer == "sgd", "--optimizer sgd"),
    "step_size": (lambda c: c.schedule == "step", "--schedule step"),
    "patience": (lambda c: c.schedule == "plateau", "--schedule plateau (the default)"),
}


def refuse_unread(config, given):
    """Raise if ``given`` (the options typed) holds one that ``config``'s run would not read."""
    for name, (reads, where) in READ_ONLY_WITH.items():
        if name in given and not reads(config):
            raise ArgumentError(f"train: --{name.replace('_', '-')} is read only with {where}; this run would "
                                "ignore it")


def train_command(given, out=None, resume=None, overwrite=False, plot=None, stream=None):
    """``minicnn train``: ``given`` holds the settings typed on the command line. Returns the
    trainer (its ``history`` holds the metrics) and whether it finished or was interrupted."""
    stream = stream or sys.stderr
    if resume:
        arrays, meta, saved = open_checkpoint(resume)
        config = config_for_resume(saved, given, resume)
        out = out or os.path.dirname(os.path.abspath(resume))
        target = os.path.join(out, "last.ckpt")
        if os.path.exists(target) and not os.path.samefile(target, resume) and not overwrite:
            raise ArgumentError(f"train: {out} already holds another run (last.ckpt); resuming {resume} there would "
                                "replace it: choose another --out, or pass --overwrite")
    else:
        config = TrainConfig(**given)
        refuse_unread(config, given)
        out = out or os.path.join("runs", f"{config.model}-{config.dataset}")
        if os.path.exists(os.path.join(out, "last.ckpt")) and not overwrite:
            raise ArgumentError(f"train: {out} already holds a run (last.ckpt); continue it with --resume "
                                f"{os.path.join(out, 'last.ckpt')}, or choose another --out, or pass --overwrite")
    group = None
    if config.parallel != "none":  # every rank has checked the same arguments above, before any collective call
        from ..distributed import world

        group = world()
        if group.rank != 0:
            stream = open(os.devnull, "w")  # rank 0 reports for all
    try:
        folder = RunFolder(out) if group is None or group.rank == 0 else None
        try:
            return _train_in(config, out, resume and (arrays, meta, resume), plot, stream, group)
        finally:
            if folder is not None:
                folder.release()
    except BaseException as exc:
        if group is not None and group.size > 1:
            _end_ranks(group, exc)
        raise


def _end_ranks(group, exc):
    """A rank failed. An error every rank raised at the same call (``on_every_rank``) ends each rank
    on its own: rank 0 returns, for the caller to raise and print it, the others exit 2 silently. No
    MPI_Abort there: when two ranks abort at once mpiexec can drop output it has not yet passed on,
    the message included (seen in CI). Any other error: say so, then stop every rank (MPI_Abort), so
    that none waits for this one forever."""
    if getattr(exc, "on_every_rank", False):
        if group.rank != 0:
            raise SystemExit(2) from None
        return
    if isinstance(exc, KeyboardInterrupt):
        message, code = "interrupted", 130
    else:
        message, code = str(exc).removeprefix("train: ") or type(exc).__name__, 2
    sys.stderr.write(f"minicnn train: rank {group.rank} of {group.size}: {message}; stopping all ranks\n")
    sys.stderr.flush()
    group.abort(code)


def _layout(trainer):
    if trainer.towers:
        return ", as the paper's two towers on 2 processes (each half of every layer)"
    if trainer.group is not None:
        return f", data parallel over {trainer.group.size} processes ({trainer.local} images each per batch)"
    return ""


def _train_in(config, out, resumed, plot, stream, group=None):
    stream.write(f"loading {config.dataset} ...\n")
    trainer = Trainer(config, out, stream, group=group)
    if resumed:
        arrays, meta, resume = resumed
        trainer.restore(arrays, meta, resume)
        stream.write(f"resumed {resume}: epoch {trainer.epoch + 1}, batch {trainer.batch}\n")
        ranks, now = meta.get("ranks", 1), group.size if group is not None else 1
        if ranks != now:
            stream.write(f"note: the run was trained on {ranks} process(es), it continues on {now}: the same batches "
                         "and augmentation, the same results up to the rounding of the gradient sums (not bit for "
                         "bit); a model with batch norm also normalises over each process's part of a batch\n")
    n_params = trainer.model.num_parameters()
    stream.write(f"training {config.model} ({n_params:,} parameters) on {config.dataset}: {len(trainer.train_set)} "
                 f"training and {len(trainer.val_set)} validation images, {config.input_size}x{config.input_size} "
                 f"crops, batch {config.batch_size}, {config.optimizer} lr {config.lr:g}, {config.epochs} epochs, "
                 f"on {config.device}{_layout(trainer)}; checkpoints and metrics in {out}\n")
    if config.backend == "reference":
        stream.write(SLOW_NOTE + "\n")
    outcome = trainer.run()
    if plot and trainer.history:
        plot_metrics(trainer.history, plot)
        stream.write(f"wrote {plot}\n")
    if outcome == "done" and trainer.history:
        best = min(trainer.history, key=best_order)
        best_path = os.path.join(out, "best.ckpt")
        evaluate_with = (f"; evaluate with: minicnn eval {best_path} --ten-crop" if os.path.exists(best_path) else
                         f"; its checkpoint is in the run resumed from, this folder has {os.path.join(out, 'last.ckpt')}")
        stream.write(f"done in {trainer.elapsed / 60:.1f} min: best validation top-1 error "
                     f"{100 * best['val_top1_error']:.1f}% (accuracy {100 * (1 - best['val_top1_error']):.1f}%) at "
                     f"epoch {best['epoch']}{evaluate_with}\n")
    return trainer, outcome


def load_trained(path, device=None, data=None):
    """(config, meta, model, pipeline) of a training checkpoint: the model with its weights (on
    ``device``, default the training device) and the input pipeline fitted to its training set."""
    arrays, meta, config = open_checkpoint(path)
    changes = {k: v for k, v in (("device", device), ("data", data)) if v is not None}
    config = TrainConfig.from_dict({**dataclasses.asdict(config), **changes})
    if data is not None and config.dataset == "shapes":
        raise ArgumentError(f"eval: --data names the dataset folder of a cifar10 or folder run; {path} was "
                            "trained on the built-in shapes, which are drawn, not read")
    model = build_model(config, meta["num_classes"])
    model.load_state_dict(model_state(arrays))
    if config.device != "cpu":
        model.to(config.device)
    return config, meta, model, Pipeline.from_arrays(arrays, config.input_size, flip=config.flip)


def eval_command(path, ten_crop=False, batch_size=250, device=None, data=None, stream=None):
    """``minicnn eval``: top-1 and top-5 error of a checkpoint on its validation set."""
    stream = stream or sys.stdout
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ArgumentError(f"eval: batch-size must be an integer >= 1, got {batch_size!r}")
    config, meta, model, pipeline = load_trained(path, device, data)
    _, val_set = load_data(config)
    num_classes = meta["num_classes"]
    if config.device == "cpu":
        check_memory("eval", model, min(batch_size, len(val_set.labels)) * (10 if ten_crop else 1),
                     (3, config.input_size, config.input_size), mode="eval", stream=sys.stderr)
    if int(val_set.labels.max()) >= num_classes:
        raise ArgumentError(f"eval: the data has labels up to {int(val_set.labels.max())}, the model "
                            f"{num_classes} classes")
    results = {}
    views = "ten crops" if pipeline.flip else "five crops (no mirrors: the network trained without mirroring)"
    for mode in (["centre", "ten-crop"] if ten_crop else ["centre"]):
        start = time.perf_counter()
        r = evaluate(model, pipeline, val_set.images, val_set.labels, batch_size, mode == "ten-crop", config.device)
        r["seconds"] = time.perf_counter() - start
        results[mode] = r
        stream.write(f"{config.model} after epoch {meta['epoch']}, {len(val_set.labels)} validation images, "
                     f"{(views + ' (softmax averaged)') if mode == 'ten-crop' else 'centre crop'}: "
                     f"top-1 error {100 * r['top1_error']:.2f}%, top-5 error {_percent(r['top5_error'], 2)}, "
                     f"loss {r['loss']:.4f} ({r['seconds']:.1f} s)\n")
    return results
