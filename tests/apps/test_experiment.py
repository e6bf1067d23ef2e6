"""minicnn experiment: each claim's experiment runs, is deterministic for a seed, writes strict
JSON and a PNG, and the training experiments compare arms that differ in one thing."""
import dataclasses
import io
import json

import pytest

from minicnn.apps import experiment as E
from minicnn.apps.cli import main
from minicnn.apps.experiment import ERROR_WINDOW
from minicnn.errors import ArgumentError

TINY = E.Setting(epochs=2, train_size=64, val_size=32, width=0.25, learning_rates=(0.01, 0.03), inits=("lecun",),
                 max_steps=60)


def _run(name, out, **kwargs):
    return E.run_experiment(name, out=str(out), stream=io.StringIO(), setting=kwargs.pop("setting", TINY),
                            **kwargs)


def test_relu_vs_tanh_counts_steps_and_shows_vanishing_gradients(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    setting = dataclasses.replace(TINY, train_size=128, learning_rates=(0.01, 0.03), max_steps=ERROR_WINDOW + 10)
    record = _run("relu-vs-tanh", tmp_path, setting=setting)
    text = capsys.readouterr().out
    assert "steps / ReLU's" in text and "||dL/dW|| per layer at initialisation" in text
    assert {(r["activation"], r["lr"]) for r in record["runs"]} == {(a, lr) for a in ("relu", "tanh", "sigmoid")
                                                                     for lr in (0.01, 0.03)}
    for run in record["runs"]:
        assert run["steps"] is None or run["steps"] <= setting.max_steps
        assert [step for step, _ in run["curve"]] == [ERROR_WINDOW, ERROR_WINDOW + 10][:len(run["curve"])]
        assert all(0 <= error <= 1 for _, error in run["curve"])
    norms = record["gradient_norms"]
    # sigmoid's derivative is at most 1/4: the gradient reaching conv1 is far smaller than ReLU's
    assert norms["sigmoid"]["conv1"] < 0.1 * norms["relu"]["conv1"]
    saved = json.loads((tmp_path / "relu-vs-tanh.json").read_text(),
                       parse_constant=lambda c: pytest.fail(f"non-standard JSON {c}"))
    assert saved["tables"] == record["tables"] and saved["setting"] == "custom"
    assert (tmp_path / "relu-vs-tanh.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    first = record["runs"][0]  # the same seed: the same numbers
    steps, curve, _ = E.steps_to_target(first["activation"], first["init"], first["lr"], E.figure1_data(setting, 0),
                                        setting, 0, io.StringIO())
    assert curve == [tuple(point) for point in first["curve"]] and steps == first["steps"]


def test_pooling_compares_equal_map_sizes_and_arms_are_shared(tmp_path):
    stream = io.StringIO()
    record = E.run_experiment("pooling", out=str(tmp_path), stream=stream, setting=TINY, plot=False)
    title = record["tables"][0]["title"]
    assert "both arms pool 31 -> 15 -> 7 -> 3" in title
    assert [row[0] for row in record["tables"][0]["rows"]] == ["overlapping 3x3/2", "non-overlapping 2x2/2"]
    assert stream.getvalue().count("== training") == 2
    # the dropout experiment's "with dropout" arm is the ten-crop experiment's network: trained once
    first = io.StringIO()
    E.run_experiment("dropout", out=str(tmp_path), stream=first, setting=TINY, plot=False)
    second = io.StringIO()
    ten = E.run_experiment("ten-crop", out=str(tmp_path), stream=second, setting=TINY, plot=False)
    assert first.getvalue().count("== training") == 2 and "== training" not in second.getvalue()
    assert set(ten["views"]) == {"centre crop", "ten crops (softmax averaged)"}
    for arm in record["arms"].values():
        assert len(arm["history"]) == TINY.epochs and 0 <= arm["train_error"] <= 1


def test_experiment_command_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["experiment", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for name in E.EXPERIMENTS:
        assert name in text
    with pytest.raises(SystemExit):
        main(["experiment", "sgd-vs-adam"])
    assert "invalid choice" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main(["experiment", "lrn", "--out", str(tmp_path / "file")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    with pytest.raises(ArgumentError, match="seed must be an integer >= 0"):
        E.run_experiment("lrn", seed=-1, out=str(tmp_path))
