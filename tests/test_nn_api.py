"""The torch.nn and torch.optim names a PyTorch user reaches for (issue 20): losses as modules,
nn.functional, ModuleList/ModuleDict, modules()/apply()/add_module(), zero_grad(set_to_none=),
optim.lr_scheduler."""
import numpy as np
import pytest

import minicnn as mc
from minicnn import nn
from minicnn.errors import ArgumentError, ShapeError


def _logits(seed=0):
    return mc.tensor(np.random.default_rng(seed).standard_normal((4, 3)), dtype=np.float64, requires_grad=True)


LABELS = np.array([0, 2, 1, 2])


def test_losses_gradcheck_and_match_pytorch(torch):
    target = np.random.default_rng(3).standard_normal((4, 3))
    cases = [
        (lambda x: nn.CrossEntropyLoss()(x, mc.tensor(LABELS)), torch.nn.CrossEntropyLoss(), torch.tensor(LABELS)),
        (lambda x: nn.NLLLoss()(nn.functional.log_softmax(x, dim=1), LABELS),
         lambda z, y: torch.nn.NLLLoss()(torch.log_softmax(z, 1), y), torch.tensor(LABELS)),
        (lambda x: nn.MSELoss()(x, mc.tensor(target, dtype=np.float64)), torch.nn.MSELoss(), torch.tensor(target)),
    ]
    for ours, theirs, y in cases:
        mc.gradcheck(ours, [_logits()])
        x = _logits()
        z = torch.tensor(x.numpy(), requires_grad=True)
        loss, expected = ours(x), theirs(z, y)
        assert loss.item() == pytest.approx(expected.item(), rel=1e-12)
        loss.backward()
        expected.backward()
        np.testing.assert_allclose(x.grad, z.grad.numpy(), rtol=1e-10, atol=1e-15)


def test_loss_errors():
    with pytest.raises(ArgumentError, match="only reduction='mean' is built"):
        nn.CrossEntropyLoss(reduction="sum")
    with pytest.raises(ShapeError, match=r"NLLLoss: expected log-probabilities \(N, classes\) and labels \(N,\)"):
        nn.NLLLoss()(_logits(), np.array([0, 1]))
    with pytest.raises(ArgumentError, match=r"NLLLoss: labels must be in \[0, 3\)"):
        nn.NLLLoss()(_logits(), np.array([0, 1, 2, 3]))
    with pytest.raises(ShapeError, match="MSELoss: the two must have one shape"):
        nn.MSELoss()(_logits(), np.zeros((4, 2)))


def test_containers_register_their_modules():
    layers = nn.ModuleList([nn.Linear(3, 4), nn.ReLU()])
    layers.append(nn.Linear(4, 2))
    assert len(layers) == 3 and len(layers.parameters()) == 4 and isinstance(layers[-1], nn.Linear)
    assert [n for n, _ in layers.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    heads = nn.ModuleDict({"a": nn.Linear(2, 1)})
    heads["b"] = nn.Linear(2, 5)
    assert list(heads) == ["a", "b"] and "b" in heads and heads["b"].out_features == 5
    with pytest.raises(ArgumentError, match=r"ModuleDict: no module named 'c'; it has \['a', 'b'\]"):
        heads["c"]
    with pytest.raises(ArgumentError, match="ModuleList: index 3 is out of range for 3 modules"):
        layers[3]
    net = nn.Sequential(nn.Linear(3, 3))
    net.add_module("head", layers)
    assert len(list(net.modules())) == 6  # net, its Linear, the list and the list's three
    seen = []
    net.apply(lambda m: seen.append(type(m).__name__))
    assert seen[-1] == "Sequential" and seen.count("Linear") == 3  # children first, as PyTorch
    with pytest.raises(ArgumentError, match="add_module: a name is a non-empty string without dots"):
        net.add_module("a.b", nn.ReLU())


def test_zero_grad_and_lr_scheduler_names():
    p = nn.Parameter(np.ones(3, np.float32))
    p.grad = np.ones(3, np.float32)
    opt = mc.optim.SGD([p], lr=0.1)
    opt.zero_grad(set_to_none=False)
    assert p.grad is not None and (p.grad == 0).all()
    opt.zero_grad()
    assert p.grad is None
    schedule = mc.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    schedule.step()
    assert opt.lr == pytest.approx(0.05)
    assert mc.optim.lr_scheduler.ReduceLROnPlateau is mc.optim.ReduceLROnPlateau
