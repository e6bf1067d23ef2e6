"""The paper's two towers as two processes (minicnn/towers.py): the split network equals the
one-process one, and the halves meet only where the paper's network connects them."""
import json
import sys

import numpy as np
import pytest

from minicnn import models
from minicnn.errors import ArgumentError
from minicnn.towers import Towers
from tests.test_distributed import MPIEXEC, _run, needs_mpi


class _FakeGroup:
    def __init__(self, rank, size):
        self.rank, self.size = rank, size


def test_the_towers_need_two_processes():
    with pytest.raises(ArgumentError, match="two towers; run it on 2 processes, got 3"):
        Towers(models.alexnet2012(10, 67), _FakeGroup(0, 3))


def test_each_tower_holds_half_of_every_layer():
    net = models.alexnet2012(10, 67, seed=2)
    towers = [Towers(net, _FakeGroup(t, 2)) for t in (0, 1)]
    for name, p in net.named_parameters():
        halves = [dict(tower.named_parameters())[name].data for tower in towers]
        assert halves[0].shape[0] * 2 == p.shape[0]
        assert (halves[0] == p.data[:p.shape[0] // 2]).all() and (halves[1] == p.data[p.shape[0] // 2:]).all()
    assert sum(p.size for p in towers[0].parameters()) * 2 == net.num_parameters()
    assert [name for name, what in towers[0].layers() if what != "own"] == \
        ["lrn1", "lrn2", "conv3", "fc6", "fc7", "fc8", "logits"]  # where the towers meet
    with pytest.raises(ArgumentError, match="no tower form for layer bn1"):
        Towers(models.alexnet_bn(10, 64), _FakeGroup(0, 2))


@pytest.mark.slow
@needs_mpi
def test_two_towers_give_the_one_process_outputs_loss_and_gradients():
    """alexnet2012 and its CaffeNet order, training mode (dropout on), batch 2: float64 to 1e-12,
    float32 to 1e-5, every parameter's gradient; the bytes each exchange sent."""
    out = _run([MPIEXEC, "-n", "2", sys.executable, "tests/towers_script.py"], timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    results = [json.loads(line) for line in out.stdout.strip().splitlines()]
    assert {(r["dtype"], r["model"]) for r in results} == {(d, m) for d in ("float64", "float32")
                                                           for m in ("alexnet2012", "alexnet2012_caffe")}
    for r in results:
        tol = 1e-12 if r["dtype"] == "float64" else 1e-5
        assert r["logits"] < tol and r["loss"] < tol, r
        assert len(r["grads"]) == 16 and max(r["grads"].values()) < tol, r["grads"]
        assert set(r["bytes"]) == {"lrn1", "lrn2", "conv3", "fc6", "fc7", "fc8", "logits"}
        itemsize = 8 if r["dtype"] == "float64" else 4
        assert r["bytes"]["fc7"] == [2 * 2048 * itemsize] * 2  # batch 2, half of fc6's 4096, forward and back


TOWERS = ["--model", "alexnet2012", "--train-size", "64", "--val-size", "32", "--batch-size", "16", "--epochs", "2",
          "--lr", "0.001"]


@pytest.mark.slow
@needs_mpi
def test_minicnn_train_as_two_towers_matches_one_process_and_resumes(tmp_path):
    """Two epochs of alexnet2012 as two towers against one process: the same metrics and, in the
    checkpoint (a one-process network's: the halves put together), the same weights and momenta to
    float32's rounding. A run stopped with Ctrl-C resumes as towers bit for bit."""
    from minicnn import checkpoint
    from tests.test_distributed import _interrupt_when

    def train(out, *extra, processes=None):
        command = [sys.executable, "-m", "minicnn", "train", *TOWERS, "--out", str(tmp_path / out), *extra]
        return _run([MPIEXEC, "-n", str(processes), *command] if processes else command, timeout=600)

    one, two = train("one"), train("two", "--parallel", "towers", processes=2)
    assert one.returncode == 0, one.stderr[-3000:]
    assert two.returncode == 0, two.stderr[-3000:]
    assert "as the paper's two towers on 2 processes" in two.stderr
    rows = [[json.loads(line) for line in open(tmp_path / name / "metrics.jsonl")] for name in ("one", "two")]
    for a, b in zip(*rows, strict=True):
        assert abs(a["train_loss"] - b["train_loss"]) <= 1e-5 * abs(a["train_loss"])
        assert abs(a["val_loss"] - b["val_loss"]) <= 1e-5 * abs(a["val_loss"])
    (a, _), (b, meta) = (checkpoint.load(tmp_path / name / "last.ckpt") for name in ("one", "two"))
    assert sorted(a) == sorted(b) and meta["ranks"] == 2
    for key, value in a.items():
        if key.startswith(("model:", "optimizer:")):
            assert np.abs(b[key] - value).max() <= 1e-5 * max(np.abs(value).max(), 1e-30), key

    command = [MPIEXEC, "-n", "2", sys.executable, "-m", "minicnn", "train", *TOWERS, "--parallel", "towers",
               "--out", str(tmp_path / "stopped")]
    code, output = _interrupt_when(command, "epoch 1/2 2/4", tmp_path / "stopped")
    assert code == 130, output[-3000:]
    resumed = _run([MPIEXEC, "-n", "2", sys.executable, "-m", "minicnn", "train", "--resume",
                    str(tmp_path / "stopped" / "last.ckpt")], timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    stopped = checkpoint.load(tmp_path / "stopped" / "last.ckpt")[0]
    for key, value in b.items():
        np.testing.assert_array_equal(stopped[key], value, err_msg=key)


def test_trace_towers_refuses_what_it_cannot_show(capsys):
    from minicnn.apps.cli import main

    assert main(["trace", "--parallel", "towers", "--step", "--save-maps", "maps"]) == 2
    assert "--parallel towers shows the towers' layers and exchanges; it does not take --step, --save-maps" in \
        capsys.readouterr().err


@pytest.mark.slow
@needs_mpi
def test_trace_shows_which_tower_computed_each_layer_and_the_bytes_between_them(tmp_path):
    out = _run([MPIEXEC, "-n", "2", sys.executable, "-m", "minicnn", "trace", "--parallel", "towers", "--batch", "2",
                "--json", str(tmp_path / "t.json")], timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count("alexnet2012 as two towers") == 1  # rank 0 alone prints
    record = json.load(open(tmp_path / "t.json"))
    assert record["ok"] and record["errors"]["gradients"] < 1e-5
    crossing = {(layer["layer"], layer["computed"]): layer for layer in record["layers"] if layer["computed"] != "own"}
    assert set(crossing) == {("lrn1", "edges exchanged"), ("lrn2", "edges exchanged"), ("conv3", "gathered"),
                             ("fc6", "gathered"), ("fc7", "gathered"), ("fc8", "gathered"), ("logits", "gathered")}
    # conv3 reads both towers' 128 maps of 13x13 (batch 2, float32): each tower sends its half
    assert crossing[("conv3", "gathered")]["bytes_forward"] == 2 * (2 * 128 * 13 * 13 * 4)
    assert crossing[("lrn1", "edges exchanged")]["bytes_forward"] == 2 * (2 * 2 * 55 * 55 * 4)  # 2 edge maps each way
    assert all(layer["bytes_forward"] == 0 for layer in record["layers"] if layer["computed"] == "own")
    assert record["bytes_total"][0] == sum(layer["bytes_forward"] for layer in record["layers"])
