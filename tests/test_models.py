"""AlexNet and its variants: parameter counts, feature-map sizes, gradcheck end to end,
and parity with the same network built in PyTorch."""
import numpy as np
import pytest

import minicnn as mc
from minicnn import models, nn
from tests.helpers import rel_error
from benchmarks.torch_twin import torch_alexnet
from tests.strategies import normal

F = mc.functional

PAPER_COUNTS = {"conv1": 34_944, "conv2": 307_456, "conv3": 885_120, "conv4": 663_936, "conv5": 442_624,
                "fc6": 37_752_832, "fc7": 16_781_312, "fc8": 4_097_000}


@pytest.fixture(scope="module")
def alexnet():
    return models.alexnet2012()


def layer_params(model, name):
    return sum(p.size for n, p in model.named_parameters() if n.split(".")[0] == name)


@pytest.mark.parametrize("name", ["alexnet2012", "alexnet2012_caffe"])
def test_parameter_counts_match_the_paper(name, alexnet):
    model = alexnet if name == "alexnet2012" else models.get(name)
    for layer, count in PAPER_COUNTS.items():
        assert layer_params(model, layer) == count, layer
    assert model.num_parameters() == 60_965_224
    # the write-up's counts leave out the biases of conv1 and the output layer:
    assert model["conv1"].weight.size == 34_848 and model["fc8"].weight.size == 4_096_000


def test_feature_map_sizes(alexnet):
    x = mc.tensor(np.zeros((1, 3, 227, 227), np.float32))
    sizes = {}
    alexnet.eval()
    with mc.no_grad():
        for name, layer in alexnet.named_children():
            x = layer(x)
            sizes[name] = x.shape
    assert [sizes[n][-1] for n in ("conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5")] == \
        [55, 27, 27, 13, 13, 13, 13, 6]
    assert sizes["conv2"][1] == 256 and sizes["flatten"] == (1, 9216) and sizes["fc8"] == (1, 1000)


def test_paper_initialisation(alexnet):
    for name in ("conv2", "conv4", "conv5", "fc6", "fc7"):
        assert np.all(alexnet[name].bias.data == 1)
    for name in ("conv1", "conv3", "fc8"):
        assert np.all(alexnet[name].bias.data == 0)
    w = alexnet["fc6"].weight.data
    assert abs(w.std() - 0.01) < 1e-4 and abs(w.mean()) < 1e-4


def test_layer_order_of_the_variants():
    paper = [n for n, _ in models.alexnet2012(num_classes=10, input_size=67).named_children()][:8]
    caffe = [n for n, _ in models.alexnet2012_caffe(num_classes=10, input_size=67).named_children()][:8]
    assert paper == ["conv1", "relu1", "lrn1", "pool1", "conv2", "relu2", "lrn2", "pool2"]
    assert caffe == ["conv1", "relu1", "pool1", "lrn1", "conv2", "relu2", "pool2", "lrn2"]


def test_alexnet_bn_follows_the_keras_listing():
    model = models.alexnet_bn(num_classes=10)
    names = [n for n, _ in model.named_children()]
    assert names[names.index("conv5") + 1] == "pool5"  # no activation after conv5, as listed
    assert not any(isinstance(m, nn.LocalResponseNorm) for _, m in model.named_modules())
    assert all(m.groups == 1 and m.padding == "same" for _, m in model.named_modules() if isinstance(m, nn.Conv2d))
    assert {m.p for _, m in model.named_modules() if isinstance(m, nn.Dropout)} == {0.25}
    assert model.weight_decay == 2e-4
    reg = model.regularization_loss().item()
    weights = sum(float((p.data.astype(np.float64) ** 2).sum()) for n, p in model.named_parameters()
                  if n.endswith("weight") and p.ndim > 1)
    assert abs(reg - 2e-4 * weights) < 1e-3 * reg


def test_unknown_model_and_bad_sizes():
    with pytest.raises(mc.ArgumentError, match="unknown model 'alexnet3'; choose from alexnet2012"):
        models.get("alexnet3")
    with pytest.raises(mc.ArgumentError, match="alexnet2012: input_size must be an integer >= 67, got 32"):
        models.alexnet2012(input_size=32)
    with pytest.raises(mc.ArgumentError, match="num_classes must be a positive integer"):
        models.alexnet_small(num_classes=0)


@pytest.mark.parametrize("input_size", [32, 64])
def test_gradcheck_alexnet_small_end_to_end(input_size):
    model = models.alexnet_small(num_classes=5, input_size=input_size).double().train()
    x = mc.tensor(normal(0, (2, 3, input_size, input_size)), requires_grad=True)
    labels = np.array([1, 4])
    dropouts = [m for _, m in model.named_modules() if isinstance(m, nn.Dropout)]

    def loss(x):
        for d in dropouts:
            d.calls = 0  # the same masks in every evaluation
        return F.cross_entropy(model(x), labels)

    result = mc.gradcheck(loss, [x], params=list(model.named_parameters()), max_coords=6)
    assert result.ok and result.checked == 6 + sum(min(6, p.size) for p in model.parameters())


def test_gradcheck_alexnet2012_sampled():
    model = models.alexnet2012(num_classes=10, init="kaiming", seed=1).double().train()
    x = mc.tensor(normal(0, (1, 3, 227, 227)), requires_grad=True)
    dropouts = [m for _, m in model.named_modules() if isinstance(m, nn.Dropout)]

    def logits(x):
        for d in dropouts:
            d.calls = 0
        return model(x)

    params = [(n, p) for n, p in model.named_parameters() if n.endswith("weight")]
    result = mc.gradcheck(logits, [x], params=params, max_coords=2)
    assert result.ok and result.checked == 2 * (1 + len(params))


# Where a ReLU's input or a max-pooling window's top two are within float32 rounding of each other
# (relative to the layer's largest value), the two engines may decide differently, and a gradient is
# not continuous there: one flipped ReLU at conv2 (3.6e-7 against -5.2e-7, scale 1) moved dL/dx by
# 0.6% over 51x51 pixels on a CPU whose BLAS rounds otherwise. Such a near-tie is expected about once
# per float32 pass of this size. So in float32 the reference follows minicnn's decisions, and each
# decision that differs from float64's must be such a near-tie: the test still fails for a decision
# that differs by more, or for a wrong gradient along the same decisions.
NEAR_TIE = 1e-5


def _decisions(torch, model, x):
    """minicnn's discrete choices in its own forward pass (layer by layer, the same kernels and bits
    as a whole pass): each ReLU's mask, and each max-pooling window's winner (PyTorch's index into
    the flattened plane, found on minicnn's float32 input: the gradient then also checks that the
    two engines break exact ties alike)."""
    masks, winners = [], []
    h = mc.tensor(x)
    with mc.no_grad():
        for _, m in model.named_children():
            if isinstance(m, nn.ReLU):
                masks.append(torch.tensor(h.data > 0))
            elif isinstance(m, nn.MaxPool2d):
                winners.append(torch.nn.functional.max_pool2d(
                    torch.tensor(h.data), m.kernel_size, m.stride, return_indices=True)[1])
            h = m(h)
    return masks, winners


def _forward_along(torch, reference, tx, masks, winners):
    """The float64 reference's forward with minicnn's ReLU masks and pooling winners, checking that
    each one that differs from its own is a near-tie."""
    masks, winners = iter(masks), iter(winners)
    t = tx
    for layer in reference:
        if isinstance(layer, torch.nn.ReLU):
            mask = next(masks)
            near = t.detach().abs() <= NEAR_TIE * t.detach().abs().max()
            assert bool((((t.detach() > 0) == mask) | near).all()), "a ReLU decided otherwise, not at a near-tie"
            t = t * mask
        elif isinstance(layer, torch.nn.MaxPool2d):
            ours = next(winners)
            own = torch.nn.functional.max_pool2d(t.detach(), layer.kernel_size, layer.stride, return_indices=True)[1]
            flat = t.flatten(2)
            gap = (flat.detach().gather(2, ours.flatten(2)) - flat.detach().gather(2, own.flatten(2))).abs()
            assert bool((gap <= NEAR_TIE * t.detach().abs().max()).all()), "a pooling window chose otherwise, not at a near-tie"
            t = flat.gather(2, ours.flatten(2)).view(ours.shape)
        else:
            t = layer(t)
    return t


# float32 parity uses Kaiming weights: with the paper's N(0, 0.01) weights the float32 gradients that
# reach the early layers are sums of nearly cancelling terms (1e-8 from terms of 1e-6), where any two
# summation orders differ by percents. In float64 the two engines agree to 1e-15 with the paper's init.
@pytest.mark.parametrize("name, training, init, dtype", [
    ("alexnet2012", False, "kaiming", np.float32),
    ("alexnet2012", True, "paper", np.float64),
    ("alexnet_bn", False, "kaiming", np.float32),
    ("alexnet_bn", True, "kaiming", np.float64),  # batch norm over 4 samples: float32 cancels likewise
])
def test_matches_pytorch(torch, name, training, init, dtype):
    model = models.get(name, num_classes=1000, seed=3, init=init)
    model.train(training)
    for _, m in model.named_modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    reference = torch_alexnet(torch, model).train(training)
    if not training:  # non-trivial running statistics
        rng = np.random.default_rng(0)
        for _, m in model.named_modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.running_mean.data = rng.standard_normal(m.num_features).astype(np.float32) * 0.1
                m.running_var.data = rng.uniform(0.5, 2, m.num_features).astype(np.float32)
        tbns = [t for t in reference.modules() if isinstance(t, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d))]
        obns = [m for _, m in model.named_modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
        for t, m in zip(tbns, obns):
            t.running_mean.copy_(torch.tensor(m.running_mean.data))
            t.running_var.copy_(torch.tensor(m.running_var.data))
    if dtype == np.float64:
        model.double()
    # PyTorch runs in float64 for both: its own float32 dL/dx for alexnet_bn was 1.1% off its
    # float64 one on an AMD EPYC (minicnn's float32: 1.1e-6), so float64 is the oracle here.
    reference.double()
    x = normal(1, (4, 3, 227, 227), dtype)
    labels = np.array([3, 1, 4, 1])
    tx = torch.tensor(x.astype(np.float64), requires_grad=True)
    if dtype == np.float32:
        t_logits = _forward_along(torch, reference, tx, *_decisions(torch, model, x))
    else:
        t_logits = reference(tx)
    torch.nn.functional.cross_entropy(t_logits, torch.tensor(labels)).backward()
    mx = mc.tensor(x, requires_grad=True)
    logits = model(mx)
    F.cross_entropy(logits, labels).backward()
    tol = 1e-4 if dtype == np.float32 else 1e-10
    assert rel_error(logits.data, t_logits.detach().numpy()) < tol
    assert rel_error(mx.grad, tx.grad.numpy()) < tol
    tparams = dict(reference.named_parameters())
    ours = [p for _, p in model.named_parameters()]
    assert len(ours) == len(tparams)
    for p, (tname, tp) in zip(ours, tparams.items()):
        assert rel_error(p.grad, tp.grad.numpy()) < tol, tname


def test_alexnet_small_ablation_switches():
    full = models.alexnet_small()
    names = [name for name, _ in full.named_children()]
    assert {"lrn1", "lrn2", "drop6", "drop7"} <= set(names) and full.pool1.kernel_size == (3, 3)
    no_lrn = [name for name, _ in models.alexnet_small(lrn=False).named_children()]
    assert no_lrn == [n for n in names if not n.startswith("lrn")]
    no_drop = [name for name, _ in models.alexnet_small(dropout=0).named_children()]
    assert no_drop == [n for n in names if not n.startswith("drop")]
    flat = models.alexnet_small(overlap=False)  # 2x2/2 pooling: 32 -> 16 -> 8 -> 4 instead of 15 -> 7 -> 3
    assert flat.pool1.kernel_size == (2, 2) and flat.pool1.stride == (2, 2)
    assert flat.fc6.weight.shape == (256, 128 * 4 * 4) and full.fc6.weight.shape == (256, 128 * 3 * 3)
    assert flat(mc.tensor(np.zeros((1, 3, 32, 32), np.float32))).shape == (1, 10)
    with pytest.raises(mc.ArgumentError, match="alexnet_small: dropout must be a probability"):
        models.alexnet_small(dropout=1.5)


@pytest.mark.parametrize("name", list(models.MODELS))
def test_every_model_takes_an_activation(name):
    """The paper's comparison of ReLU with saturating units: every model can be built with tanh or
    sigmoid after each conv and fc layer, named for it, with the same parameters."""
    size = {"alexnet_small": 32}.get(name, models.MIN_INPUT_SIZE[name] + 10)
    relu = models.get(name, input_size=size, num_classes=10)
    for activation, kind in (("tanh", nn.Tanh), ("sigmoid", nn.Sigmoid)):
        net = models.get(name, input_size=size, num_classes=10, activation=activation)
        layers = dict(net.named_children())
        assert isinstance(layers[f"{activation}1"], kind) and "relu1" not in layers
        assert net.num_parameters() == relu.num_parameters()
        assert sum(isinstance(m, kind) for m in layers.values()) == sum(
            isinstance(m, nn.ReLU) for m in dict(relu.named_children()).values())
    with pytest.raises(mc.ArgumentError, match=f"{name}: activation must be one of relu, tanh, sigmoid, got 'elu'"):
        models.get(name, input_size=size, activation="elu")


def test_a_tanh_network_trains_and_its_gradients_check():
    net = models.alexnet_small(10, 20, width=0.25, dropout=0, activation="tanh").astype(np.float64)
    x = mc.tensor(normal(0, (2, 3, 20, 20)), requires_grad=True)
    params = [(n, p) for n, p in net.named_parameters() if n.endswith("weight")]
    assert mc.gradcheck(lambda x: net(x), [x], params=params, max_coords=3).ok
