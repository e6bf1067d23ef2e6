"""No run lost or mixed: a run folder belongs to one run, best.ckpt survives a kill, nothing
non-finite is saved, the final message names only files that exist (issue 17's findings)."""
import io
import json
import os

import numpy as np
import pytest

import minicnn as mc
from minicnn.apps import train
from minicnn.data import transforms as T
from minicnn.apps.train import RunFolder, open_checkpoint, train_command
from minicnn.errors import ArgumentError

TINY = dict(train_size=48, val_size=16, image_size=20, width=0.25, batch_size=16, epochs=1)


def _run(out, **changes):
    return train_command(dict(TINY, **changes), out=out, stream=io.StringIO())


def test_resume_into_a_folder_that_holds_another_run_is_refused(tmp_path):
    _run(tmp_path / "a", seed=1)
    _run(tmp_path / "b", seed=2)
    before = (tmp_path / "b" / "last.ckpt").read_bytes()
    with pytest.raises(ArgumentError, match=r"b already holds another run \(last.ckpt\); resuming .*a/last.ckpt there "
                                            r"would replace it"):
        train_command({"epochs": 2}, out=tmp_path / "b", resume=str(tmp_path / "a" / "last.ckpt"),
                      stream=io.StringIO())
    assert (tmp_path / "b" / "last.ckpt").read_bytes() == before
    stream = io.StringIO()  # with --overwrite it may, and then names no best.ckpt it did not write
    train_command({"epochs": 2}, out=tmp_path / "c", resume=str(tmp_path / "a" / "last.ckpt"), stream=stream)
    assert "evaluate with" not in stream.getvalue() or os.path.exists(tmp_path / "c" / "best.ckpt")


def test_a_folder_in_use_is_refused_and_a_dead_holders_lock_taken_over(tmp_path):
    holder = RunFolder(str(tmp_path))
    try:
        with pytest.raises(ArgumentError, match=rf"{tmp_path} is in use by another minicnn train \(PID {os.getpid()}\)"):
            _run(tmp_path)
    finally:
        holder.release()
    (tmp_path / ".lock").write_text("999999999")  # a killed holder: its PID, no lock held
    (tmp_path / "last.ckpt.tmp-999999999").write_bytes(b"half a checkpoint")  # a save it did not finish
    trainer, outcome = _run(tmp_path)
    assert outcome == "done" and not [n for n in os.listdir(tmp_path) if ".tmp-" in n]
    assert sorted(os.listdir(tmp_path)) == [".lock", "best.ckpt", "last.ckpt", "metrics.jsonl"]


def test_an_impossible_out_is_refused_before_any_work(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ArgumentError, match="train: --out .*file is a file, not a folder"):
        _run(tmp_path / "file")
    with pytest.raises(ArgumentError, match="train: cannot write to --out .*file/run"):
        _run(tmp_path / "file" / "run")


def test_best_is_written_before_last(tmp_path, monkeypatch):
    """A kill between the two saves then leaves last.ckpt at the epoch before, whose resume
    writes this best.ckpt again; the other order lost it (2 of 3 kill sequences)."""
    saved = []
    original = train.Trainer.save
    monkeypatch.setattr(train.Trainer, "save", lambda self, name: saved.append(name) or original(self, name))
    _run(tmp_path)
    assert saved == ["best.ckpt", "last.ckpt"]


def test_a_non_finite_validation_loss_stops_the_run_and_keeps_the_last_good_checkpoints(tmp_path, monkeypatch):
    calls = []
    original = train.evaluate

    def evaluate(*args, **kwargs):
        result = original(*args, **kwargs)
        calls.append(1)
        return dict(result, loss=float("nan")) if len(calls) == 2 else result

    monkeypatch.setattr(train, "evaluate", evaluate)
    with pytest.raises(ArgumentError, match="the validation loss became nan at epoch 2; nothing of this epoch is saved"):
        _run(tmp_path, epochs=3)
    _, meta, _ = open_checkpoint(tmp_path / "last.ckpt")
    assert meta["epoch"] == 1
    assert [json.loads(line)["epoch"] for line in open(tmp_path / "metrics.jsonl")] == [1]


def test_metrics_are_strict_json(tmp_path):
    train.write_metrics(tmp_path / "m.jsonl", [{"epoch": 1, "val_loss": float("nan"), "lr": float("inf")}])
    text = (tmp_path / "m.jsonl").read_text()
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}")) == \
        {"epoch": 1, "val_loss": None, "lr": None}


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_relu_keeps_a_nan_as_pytorch_does(backend):
    """relu(NaN) was 0, so a model with NaN weights evaluated to a normal-looking loss."""
    with mc.use_backend(backend):
        y = mc.functional.relu(mc.tensor(np.array([np.nan, -1.0, 0.0, 2.0], np.float32)))
    assert np.isnan(y.numpy()[0]) and y.numpy()[1:].tolist() == [0.0, 0.0, 2.0]


def test_eval_and_train_refuse_bad_numbers_before_any_work(tmp_path):
    with pytest.raises(ArgumentError, match="eval: batch-size must be an integer >= 1, got -1"):
        train.eval_command(str(tmp_path / "missing.ckpt"), batch_size=-1, stream=io.StringIO())
    with pytest.raises(ArgumentError, match="eval: batch-size must be an integer >= 1, got 0"):
        train.eval_command(str(tmp_path / "missing.ckpt"), batch_size=0, stream=io.StringIO())
    with pytest.raises(ArgumentError, match="train: seed must be an integer >= 0, got -1"):
        train.TrainConfig(seed=-1)


def test_eval_refuses_a_data_folder_for_a_run_on_the_built_in_shapes(tmp_path):
    _run(tmp_path / "run")
    with pytest.raises(ArgumentError, match="eval: --data names the dataset folder of a cifar10 or folder run; .* was "
                                            "trained on the built-in shapes"):
        train.eval_command(str(tmp_path / "run" / "last.ckpt"), data=str(tmp_path), stream=io.StringIO())


def test_a_checksummed_checkpoint_missing_keys_is_refused_as_incomplete(tmp_path):
    from minicnn import checkpoint

    _run(tmp_path / "run")
    arrays, meta, _ = open_checkpoint(tmp_path / "run" / "last.ckpt")
    del meta["epoch"]
    checkpoint.save(str(tmp_path / "partial.ckpt"), arrays, meta)  # a valid checksum over an incomplete header
    with pytest.raises(checkpoint.CheckpointError, match="partial.ckpt is incomplete: its header lacks epoch"):
        train_command({}, out=tmp_path / "other", resume=str(tmp_path / "partial.ckpt"), stream=io.StringIO())


def test_out_of_memory_is_one_line_from_the_command(monkeypatch, capsys):
    from minicnn.apps import cli

    def no_memory(args):
        raise MemoryError

    monkeypatch.setattr(cli, "_train", no_memory)
    parser_run = cli.main(["train", "--epochs", "1"])
    assert parser_run == 2
    assert capsys.readouterr().err.strip() == ("minicnn train: out of memory; a smaller --batch-size (or dataset, or "
                                               "model) needs less")


def test_every_model_trains_with_the_defaults_and_a_too_small_crop_is_refused_up_front(tmp_path):
    """`minicnn train --model alexnet_bn` used to fail deep inside with "Linear: in_features must be
    a positive integer, got 0" (the write-up's own Keras model)."""
    assert train.TrainConfig(model="alexnet_bn").input_size >= mc.models.MIN_INPUT_SIZE["alexnet_bn"]
    assert train.TrainConfig(model="alexnet2012").input_size >= mc.models.MIN_INPUT_SIZE["alexnet2012"]
    assert train.TrainConfig().image_size == 32
    with pytest.raises(ArgumentError, match=r"train: alexnet_bn takes crops of at least 57 px, got 28 \(--image-size "
                                            r"32 x 227 / 256\); --image-size 72 or more works"):
        train.TrainConfig(model="alexnet_bn", image_size=32)
    with pytest.raises(ArgumentError, match="alexnet_bn: input_size must be an integer >= 57, got 28"):
        mc.models.alexnet_bn(input_size=28)
    trainer, outcome = train_command(dict(model="alexnet_bn", train_size=8, val_size=4, batch_size=4, epochs=1),
                                     out=tmp_path, stream=io.StringIO())
    assert outcome == "done" and np.isfinite(trainer.history[0]["train_loss"])


def test_train_and_summary_take_the_activation(tmp_path, capsys):
    from minicnn.apps.cli import main

    trainer, outcome = _run(tmp_path, activation="tanh")
    assert outcome == "done" and "tanh1" in dict(trainer.model.named_children())
    _, _, config = open_checkpoint(tmp_path / "last.ckpt")
    assert config.activation == "tanh"  # a resumed run rebuilds the same network
    with pytest.raises(ArgumentError, match="train: activation must be one of relu, tanh, sigmoid, got 'elu'"):
        train.TrainConfig(activation="elu")
    assert main(["summary", "alexnet_small", "--activation", "sigmoid"]) == 0
    assert "sigmoid1" in capsys.readouterr().out


def test_a_batch_that_cannot_fit_in_memory_is_refused_before_training(tmp_path, monkeypatch):
    """At batch 4096 a run used to end in NumPy's MemoryError (or the system's OOM killer) mid-epoch."""
    from minicnn import checks

    config = train.TrainConfig(**TINY)
    crop = config.input_size
    needed, _ = train.memory_estimate(train.build_model(config, 10), 16, (3, crop, crop))
    monkeypatch.setattr(checks, "memory_bytes", lambda: needed - 1)  # a machine just too small for batch 16
    with pytest.raises(ArgumentError, match=rf"train: a training step at batch 16 on 3x{crop}x{crop} inputs needs about "
                                            r"[0-9.]+ GiB, more than this machine's [0-9.]+ GiB of memory; "
                                            r"--batch-size 15 or less fits"):
        _run(tmp_path / "run")
    assert not (tmp_path / "run" / "last.ckpt").exists()
    monkeypatch.setattr(checks, "memory_bytes", lambda: needed)  # just enough: it runs
    monkeypatch.setattr(checks, "available_memory_bytes", lambda: needed - 1)  # but not free now: a warning
    stream = io.StringIO()
    train_command(dict(TINY), out=tmp_path / "run", stream=stream)
    assert "warning: train: a training step at batch 16" in stream.getvalue() and "GiB free now" in stream.getvalue()


MEASURE_STEP = """
import numpy as np
import minicnn as mc
from minicnn.apps import train

model = mc.models.alexnet_small(num_classes=10)
optimizer = mc.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

def peak_resident_bytes():  # VmHWM: this process's own peak (ru_maxrss carries the parent's over exec)
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))

def step(batch):
    x = np.random.default_rng(0).random((batch, *model.input_size), dtype=np.float32)
    loss = mc.functional.cross_entropy(model(mc.tensor(x)), np.zeros(batch, np.int64))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()

step(2)  # Numba compiles the kernels, the optimiser makes its momenta
before = peak_resident_bytes()
step(256)
grown = peak_resident_bytes() - before
estimate, per_image = train.memory_estimate(model, 256, model.input_size)
print(grown, per_image * 256 * train.ACTIVATION_FACTOR["train"])
"""


def test_the_memory_estimate_bounds_what_a_training_step_uses():
    """The estimate must not be below what a step really takes (else the check would let an
    impossible batch through). The peak resident memory of a process grows, from batch 2 to
    batch 256, by less than the estimate's activation part (tracemalloc cannot tell: it does not
    see the arrays Numba's kernels allocate)."""
    import subprocess
    import sys

    if not os.path.exists("/proc/self/status"):
        pytest.skip("needs Linux's /proc/self/status for a process's peak memory")
    out = subprocess.run([sys.executable, "-c", MEASURE_STEP], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    grown, estimated = map(float, out.stdout.split())
    assert 0 < grown < estimated, (grown, estimated)


def test_a_tie_on_validation_error_keeps_the_earlier_best(tmp_path, monkeypatch):
    """Ties on error used to count as best; now the lower validation loss breaks a tie, and an
    epoch that is no better on both keeps the earlier best.ckpt."""
    errors_and_losses = iter([(0.5, 1.0), (0.5, 1.2), (0.5, 0.9), (0.6, 0.1)])
    original = train.evaluate

    def evaluate(*args, **kwargs):
        error, loss = next(errors_and_losses)
        return dict(original(*args, **kwargs), top1_error=error, loss=loss)

    saved = []
    original_save = train.Trainer.save
    monkeypatch.setattr(train, "evaluate", evaluate)
    monkeypatch.setattr(train.Trainer, "save", lambda self, name: saved.append((self.epoch, name)) or
                        original_save(self, name))
    stream = io.StringIO()
    train_command(dict(TINY, epochs=4), out=tmp_path, stream=stream)
    assert [epoch for epoch, name in saved if name == "best.ckpt"] == [1, 3]
    assert "best validation top-1 error 50.0% (accuracy 50.0%) at epoch 3" in stream.getvalue()


@pytest.mark.parametrize("mode, expected", [
    ("P", (204, 102, 51)),  # a palette: the web-safe palette's nearest colour
    ("PA", (204, 102, 51)),
    ("RGBA", (200, 100, 50)),  # alpha dropped, as torchvision's loader does
    ("LA", (124, 124, 124)),  # ITU-R 601 luma of (200, 100, 50), as three greys
    ("L", (124, 124, 124)),
    ("CMYK", (200, 100, 50)),
    ("YCbCr", (199, 99, 49)),  # JPEG's colour space: one step of rounding each way
])
def test_image_modes_become_the_right_rgb(tmp_path, mode, expected):
    image = pytest.importorskip("PIL.Image")
    picture = image.new("RGB", (8, 6), (200, 100, 50)).convert(mode)
    square = T.resize_centre_crop(picture, 4)
    assert square.shape == (3, 4, 4)
    np.testing.assert_allclose(square[:, 1, 2] * 255, expected, atol=0.51)


def test_a_32_bit_image_of_unknown_range_is_refused_naming_the_file(tmp_path):
    image = pytest.importorskip("PIL.Image")
    classes = tmp_path / "train" / "cat"
    classes.mkdir(parents=True)
    image.fromarray(np.full((8, 8), 0.5, np.float32)).save(classes / "a.tiff")  # mode F
    with pytest.raises(ArgumentError, match=r"ImageFolder: cannot read image .*a.tiff: .*a 32-bit float image "
                                            r"\(Pillow mode F\) has no known pixel range; save it with 8 or 16 bits"):
        mc.data.ImageFolder(str(tmp_path / "train"), 8)
