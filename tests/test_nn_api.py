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


def _torchvision_alexnet(torch, num_classes):
    """torchvision's AlexNet (torchvision/models/alexnet.py), written against a module called torch."""
    nn = torch.nn

    class AlexNet(nn.Module):
        def __init__(self, num_classes=1000, dropout=0.5):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True),
                nn.MaxPool2d(kernel_size=3, stride=2),
                nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(inplace=True),
                nn.MaxPool2d(kernel_size=3, stride=2),
                nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),
                nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
                nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
                nn.MaxPool2d(kernel_size=3, stride=2),
            )
            self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
            self.classifier = nn.Sequential(
                nn.Dropout(p=dropout), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
                nn.Dropout(p=dropout), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
                nn.Linear(4096, num_classes),
            )

        def forward(self, x):
            x = self.features(x)
            x = self.avgpool(x)
            x = torch.flatten(x, 1)
            return self.classifier(x)

    return AlexNet(num_classes)


def test_torchvisions_alexnet_runs_unchanged_and_matches_pytorch(torch):
    """nn.ReLU(inplace=True), nn.Dropout(p=...) and torch.flatten(x, 1), as torchvision writes them:
    the same parameters, and with PyTorch's weights the same logits and input gradient (eval mode,
    float64)."""
    ours, theirs = _torchvision_alexnet(mc, 10).double().eval(), _torchvision_alexnet(torch, 10).double().eval()
    assert repr(ours.features[1]) == "ReLU(inplace=True)" and not ours.classifier[0].inplace
    assert [(n, tuple(p.shape)) for n, p in ours.named_parameters()] == \
        [(n, tuple(p.shape)) for n, p in theirs.named_parameters()]
    ours.load_state_dict({name: value.detach().numpy() for name, value in theirs.state_dict().items()})
    images = np.random.default_rng(0).standard_normal((2, 3, 67, 67))
    x, z = mc.tensor(images, requires_grad=True), torch.tensor(images, requires_grad=True)
    logits, expected = ours(x), theirs(z)
    np.testing.assert_allclose(logits.numpy(), expected.detach().numpy(), rtol=1e-9, atol=1e-12)
    logits.sum().backward()
    expected.sum().backward()
    np.testing.assert_allclose(x.grad, z.grad.numpy(), rtol=1e-8, atol=1e-14)
    with pytest.raises(ArgumentError, match="ReLU: inplace must be True or False, got 1"):
        nn.ReLU(inplace=1)
    with pytest.raises(mc.DTypeError, match="flatten: input must be a minicnn Tensor, got ndarray"):
        mc.flatten(images)
    assert mc.flatten(x).shape == (2 * 3 * 67 * 67,) and mc.flatten(x, 1, 2).shape == (2, 3 * 67, 67)


def test_flatten_takes_pytorchs_axes(torch):
    """nn.Flatten(start_dim=1, end_dim=-1) as torch.nn.Flatten, the summary following the merged
    axes, and one that would merge the batch axis refused there with a clear line."""
    from minicnn.apps.summary import layer_plan

    images = np.random.default_rng(1).standard_normal((2, 3, 4, 5))
    for args in ((), (2,), (1, 2), (-3, -2), (0,)):
        np.testing.assert_array_equal(nn.Flatten(*args)(mc.tensor(images)).numpy(),
                                      torch.nn.Flatten(*args)(torch.tensor(images)).numpy())
    assert repr(nn.Flatten()) == "Flatten()" and repr(nn.Flatten(2)) == "Flatten(start_dim=2, end_dim=-1)"
    net = nn.Sequential(("conv", nn.Conv2d(3, 4, 1)), ("flat", nn.Flatten(2)))
    assert [row["out_shape"] for row in layer_plan(net, (3, 4, 5))] == [(4, 4, 5), (4, 20)]
    with pytest.raises(ArgumentError, match=r"summary: flat flattens axes 0..-1 of a 4-d batch"):
        layer_plan(nn.Sequential(("conv", nn.Conv2d(3, 4, 1)), ("flat", nn.Flatten(0))), (3, 4, 5))
    with pytest.raises(ArgumentError, match="Flatten: start_dim must be an integer, got 'a'"):
        nn.Flatten("a")
    from minicnn.apps.trace import worked_example  # the step-through's line for each kind

    for layer, line in ((nn.Flatten(), "3x4x5 = 60 values per image, one vector each"),
                        (nn.Flatten(2), "3x4x5 -> 3x20 per image, the same values in the same order")):
        assert worked_example("flat", layer, images, layer(mc.tensor(images)).data) == [line]
