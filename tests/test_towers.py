"""The paper's two towers as two processes (minicnn/towers.py): the split network equals the
one-process one, and the halves meet only where the paper's network connects them."""
import json
import sys

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
