"""The backend registry (kernels/backends.py): one set of signatures, the readable reference
kernels run a whole network, ``use_backend`` switches and restores."""
import importlib
import inspect
import json

import numpy as np
import pytest

import minicnn as mc
import minicnn.functional as F
from minicnn.errors import ArgumentError
from minicnn.kernels import backends
from minicnn.models import alexnet_small
from tests.helpers import rel_error


def _public_functions(module):
    return {name: inspect.signature(getattr(f, "py_func", f)) for name, f in vars(module).items()
            if not name.startswith("_") and callable(f) and getattr(f, "__module__", "").startswith("minicnn.kernels")
            and not inspect.isclass(f)}


@pytest.mark.parametrize("module", backends.MODULES)
def test_every_backend_has_the_same_functions_and_signatures(module):
    """What the engine calls exists on every backend with one signature (cuda: where importable)."""
    reference = _public_functions(importlib.import_module(f"minicnn.kernels.reference.{module}"))
    cpu = _public_functions(importlib.import_module(f"minicnn.kernels.cpu.{module}"))
    called = {name for name in reference if name.endswith(("_forward", "_backward", "_step", "_stats"))} | (
        {"full", "add", "copy", "take"} if module == "arrays" else set())
    assert called, module
    for name in called:
        assert name in cpu and cpu[name] == reference[name], (module, name)
    try:
        cuda = _public_functions(importlib.import_module(f"minicnn.kernels.cuda.{module}"))
    except ImportError:  # numba-cuda is an optional extra
        return
    for name in called:
        assert name in cuda and cuda[name] == reference[name], (module, name)


def _loss_and_grads(net, x, labels):
    for p in net.parameters():
        p.grad = None
    for _, m in net.named_modules():
        if isinstance(m, mc.nn.Dropout):
            m.calls = 0  # the same masks again: a dropout layer's mask is a function of its seed and call count
    loss = F.cross_entropy(net(mc.tensor(x)), labels)
    loss.backward()
    return loss.item(), {name: p.grad.copy() for name, p in net.named_parameters()}


def test_alexnet_small_gives_the_same_loss_and_gradients_on_reference_and_cpu():
    """Training mode (dropout on, LRN, overlapping pooling, grouped convs), float64, to 1e-10."""
    net = alexnet_small(10, 32, seed=1).astype(np.float64)
    x = np.random.default_rng(0).standard_normal((4, 3, 32, 32))
    labels = np.array([1, 2, 3, 4])
    cpu_loss, cpu_grads = _loss_and_grads(net, x, labels)
    with mc.use_backend("reference"):
        ref_loss, ref_grads = _loss_and_grads(net, x, labels)
    assert abs(ref_loss - cpu_loss) <= 1e-10 * abs(cpu_loss)
    assert cpu_grads.keys() == ref_grads.keys() and len(cpu_grads) == 16
    for name in cpu_grads:
        assert rel_error(ref_grads[name], cpu_grads[name]) < 1e-10, name


def test_use_backend_switches_restores_and_backward_runs_the_forwards_kernels(monkeypatch):
    assert backends.host_backend() == "cpu"
    calls = []
    reference_conv = backends.get("reference").conv
    original = reference_conv.conv2d_backward
    monkeypatch.setattr(reference_conv, "conv2d_backward", lambda *a, **k: calls.append(1) or original(*a, **k))
    w = mc.tensor(np.ones((2, 1, 3, 3)), requires_grad=True)
    with mc.use_backend("reference") as chosen:
        assert backends.host_backend() == "reference" and isinstance(chosen, mc.use_backend)
        y = F.conv2d(mc.tensor(np.ones((1, 1, 5, 5))), w)
    assert backends.host_backend() == "cpu"
    y.sum().backward()  # outside the block: the graph recorded the reference kernels
    assert calls == [1] and w.grad.shape == (2, 1, 3, 3)
    mc.use_backend("reference")  # as a call: from now on
    try:
        assert backends.host_backend() == "reference"
    finally:
        mc.use_backend("cpu")
    with pytest.raises(ArgumentError, match="use_backend: the host backend must be 'reference' or 'cpu', got 'cuda'"):
        mc.use_backend("cuda")
    with pytest.raises(ArgumentError, match="backend must be one of 'reference', 'cpu', 'cuda', got 'gpu'"):
        backends.get("gpu")


def test_an_optimiser_step_runs_on_the_reference_backend():
    x = np.random.default_rng(1).standard_normal((2, 3, 32, 32))
    finals = []
    for backend in ("cpu", "reference"):
        model = alexnet_small(10, 32, width=0.25, seed=2, dropout=0).astype(np.float64)
        optimiser = mc.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
        with mc.use_backend(backend):
            for _ in range(2):
                optimiser.zero_grad()
                F.cross_entropy(model(mc.tensor(x)), np.array([0, 1])).backward()
                optimiser.step()
        finals.append([p.numpy().copy() for p in model.parameters()])
    for cpu_param, ref_param in zip(*finals):
        assert rel_error(ref_param, cpu_param) < 1e-10


def test_trace_on_the_reference_backend_gives_the_cpu_loss(tmp_path):
    import io

    from minicnn.apps.cli import main
    from minicnn.apps.trace import run_trace

    losses = {}
    for backend in ("cpu", "reference"):
        path = tmp_path / f"{backend}.json"
        assert main(["trace", "--model", "alexnet_small", "--backend", backend, "--checks", "1",
                     "--json", str(path)]) == 0
        record = json.loads(path.read_text())
        assert record["backend"] == backend and record["worst_spot_check"] < 1e-3
        losses[backend] = record["loss"]
    assert abs(losses["reference"] - losses["cpu"]) <= 1e-6 * abs(losses["cpu"])
    printed = io.StringIO()
    run_trace(model="alexnet_small", checks=0, backend="reference", out=printed)
    assert "backend reference: every op runs its readable NumPy kernel" in printed.getvalue()
    assert backends.host_backend() == "cpu"
    with pytest.raises(ArgumentError, match="trace: backend must be cpu or reference, got 'cuda'"):
        run_trace(model="alexnet_small", backend="cuda", out=printed)


def test_train_on_the_reference_backend_says_so_and_learns_the_same(tmp_path):
    import io

    from minicnn.apps.train import train_command

    settings = dict(train_size=32, val_size=16, image_size=20, width=0.25, batch_size=16, epochs=1)
    histories = {}
    for backend in ("cpu", "reference"):
        stream = io.StringIO()
        trainer, outcome = train_command(dict(settings, backend=backend), out=tmp_path / backend, stream=stream)
        assert outcome == "done"
        assert ("backend reference: every op" in stream.getvalue()) == (backend == "reference")
        histories[backend] = trainer.history[-1]
    assert abs(histories["reference"]["train_loss"] - histories["cpu"]["train_loss"]) < 1e-4
    with pytest.raises(ArgumentError, match="the reference backend runs on the CPU"):
        train_command(dict(settings, backend="reference", device="cuda"), out=tmp_path / "x", stream=io.StringIO())
