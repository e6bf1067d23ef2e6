"""mc.save / mc.load: state dicts and nested objects round-trip exactly, in order, as they were
saved; the file is a checksummed checkpoint that never runs code; bad objects are refused."""
import numpy as np
import pytest

import minicnn as mc
from minicnn.checkpoint import CheckpointError
from minicnn.errors import ArgumentError


def test_a_state_dict_and_a_nested_object_round_trip(tmp_path):
    model = mc.models.alexnet_small(width=0.25)
    optimizer = mc.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    obj = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 3, "best": 0.125,
           "note": "résumé", "flags": [True, None, (1, 2)], "x": mc.tensor([1.0, 2.0], requires_grad=True),
           "labels": np.array([3, 1], np.int64)}
    mc.save(obj, tmp_path / "run.mc")
    back = mc.load(tmp_path / "run.mc")
    assert list(back["model"]) == list(model.state_dict())  # the layers' order
    for name, array in model.state_dict().items():
        assert back["model"][name].dtype == array.dtype and (back["model"][name] == array).all()
    assert back["epoch"] == 3 and back["best"] == 0.125 and back["note"] == "résumé"
    assert back["flags"] == [True, None, [1, 2]]  # a tuple comes back as a list, as JSON has no tuple
    assert isinstance(back["x"], mc.Tensor) and back["x"].requires_grad and back["x"].tolist() == [1.0, 2.0]
    assert isinstance(back["labels"], np.ndarray) and back["labels"].tolist() == [3, 1]
    other = mc.models.alexnet_small(width=0.25, seed=1)
    assert other.load_state_dict(back["model"]) == ([], [])
    optimizer.load_state_dict(back["optimizer"])


def test_load_refuses_damage_and_other_files(tmp_path):
    mc.save({"a": mc.zeros(3)}, tmp_path / "a.mc")
    data = bytearray((tmp_path / "a.mc").read_bytes())
    data[-5] ^= 0xFF
    (tmp_path / "b.mc").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="is corrupt"):
        mc.load(tmp_path / "b.mc")
    from minicnn import checkpoint

    checkpoint.save(str(tmp_path / "train.ckpt"), {"w": np.zeros(2)}, {"format": "minicnn training checkpoint"})
    with pytest.raises(CheckpointError, match="not one written by mc.save"):
        mc.load(tmp_path / "train.ckpt")


@pytest.mark.parametrize("obj, message", [
    ({1: mc.zeros(2)}, "has a key that is not a string: 1"),
    ({"f": lambda: 0}, r"the object\['f'\] is a function"),
    ({"s": np.array(["a"])}, "an array of dtype <U1; only numbers are saved"),
])
def test_what_cannot_be_saved_is_refused(tmp_path, obj, message):
    with pytest.raises(ArgumentError, match=message):
        mc.save(obj, tmp_path / "x.mc")
    assert not (tmp_path / "x.mc").exists()


def test_load_state_dict_strict_false_reports_what_it_skipped():
    model = mc.nn.Sequential(mc.nn.Linear(3, 2))
    state = dict(model.state_dict())
    state["extra.weight"] = np.zeros(1)
    del state["0.bias"]
    with pytest.raises(ArgumentError, match=r"missing \['0.bias'\], unexpected \['extra.weight'\]"):
        model.load_state_dict(state)
    before = model[0].bias.numpy().copy()
    state["0.weight"] = np.ones((2, 3), np.float32)
    result = model.load_state_dict(state, strict=False)
    assert result.missing_keys == ["0.bias"] and result.unexpected_keys == ["extra.weight"]
    assert (model[0].weight.numpy() == 1).all() and (model[0].bias.numpy() == before).all()
