"""Checkpoint files: what is saved comes back exactly; damage of any kind is a clear error; a save
that fails half-way leaves the previous checkpoint as it was."""
import os

import numpy as np
import pytest

from minicnn import checkpoint
from minicnn.checkpoint import CheckpointError


def _arrays():
    rng = np.random.default_rng(0)
    return {"model:conv1.weight": rng.standard_normal((4, 3, 5, 5)).astype(np.float32),
            "optimizer:0:velocity": rng.standard_normal(7), "labels": np.arange(5)}


def test_round_trip_is_exact(tmp_path):
    meta = {"epoch": 3, "loss": 0.1 + 0.2, "seed": 2**63 - 1, "nested": {"a": [1, 2.5, None]}}
    path = checkpoint.save(tmp_path / "a.ckpt", _arrays(), meta)
    arrays, meta_back = checkpoint.load(path)
    assert meta_back == meta
    assert set(arrays) == set(_arrays())
    for name, value in _arrays().items():
        assert arrays[name].dtype == value.dtype
        np.testing.assert_array_equal(arrays[name], value)
    assert os.listdir(tmp_path) == ["a.ckpt"]  # no temporary left behind


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[:-100], "truncated"),
    (lambda b: b[:len(b) // 2], "truncated"),
    (lambda b: b + b"x", "extra bytes"),
    (lambda b: b[:-50] + bytes([b[-50] ^ 1]) + b[-49:], "corrupt"),
    (lambda b: b[:200] + bytes([b[200] ^ 0x80]) + b[201:], "corrupt"),
    (lambda b: b"PK" + b[2:], "not a minicnn checkpoint"),
    (lambda b: b[:30] + b"#" + b[31:], "header is damaged"),
    (lambda b: b"", "not a minicnn checkpoint"),
])
def test_damaged_files_give_clear_errors(tmp_path, damage, message):
    path = checkpoint.save(tmp_path / "a.ckpt", _arrays(), {"epoch": 1})
    with open(path, "rb") as f:
        good = f.read()
    with open(path, "wb") as f:
        f.write(damage(good))
    with pytest.raises(CheckpointError, match=message) as info:
        checkpoint.load(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        checkpoint.load(tmp_path / "none.ckpt")


class _Unsaveable:
    def __array__(self, dtype=None, copy=None):
        raise RuntimeError("disk full (simulated)")


def test_a_failed_save_keeps_the_previous_checkpoint(tmp_path):
    path = checkpoint.save(tmp_path / "a.ckpt", _arrays(), {"epoch": 1})
    before = open(path, "rb").read()
    with pytest.raises(RuntimeError, match="disk full"):
        checkpoint.save(path, {"x": _Unsaveable()}, {"epoch": 2})
    assert open(path, "rb").read() == before
    assert os.listdir(tmp_path) == ["a.ckpt"]
    assert checkpoint.load(path)[1] == {"epoch": 1}


def test_no_pickles(tmp_path):
    with pytest.raises(CheckpointError, match="reserved"):
        checkpoint.save(tmp_path / "a.ckpt", {"__meta__": np.zeros(1)}, {})
    path = checkpoint.save(tmp_path / "b.ckpt", {"objects": np.array([{"a": 1}], dtype=object)}, {})
    with pytest.raises(CheckpointError, match="cannot read"):  # written, but never unpickled on load
        checkpoint.load(path)


def test_a_failed_write_is_one_clear_error_and_keeps_the_previous_file(tmp_path, monkeypatch):
    """Disk full during a save: the previous checkpoint stays whole and the temporary file goes."""
    import errno

    path = tmp_path / "last.ckpt"
    checkpoint.save(path, {"w": np.ones(3)}, {"step": 1})
    before = path.read_bytes()

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", full_disk)
    with pytest.raises(checkpoint.CheckpointError, match=r"cannot write .*last.ckpt: No space left on device; the "
                                                          r"previous checkpoint there, if any, is intact"):
        checkpoint.save(path, {"w": np.zeros(3)}, {"step": 2})
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]
