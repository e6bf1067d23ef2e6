"""Modules: parameters in order, train/eval, state_dict round trips and its errors, repr."""
import numpy as np
import pytest

import minicnn as mc
from minicnn import nn
from tests.strategies import normal


def small_net():
    mc.manual_seed(0)
    return nn.Sequential(
        ("conv", nn.Conv2d(2, 4, 3, padding=1, groups=2)), ("bn", nn.BatchNorm2d(4)), ("relu", nn.ReLU()),
        ("pool", nn.MaxPool2d(2)), ("flat", nn.Flatten()), ("drop", nn.Dropout(0.5)), ("fc", nn.Linear(16, 3)),
    )


def test_named_parameters_follow_the_layers():
    names = [n for n, _ in small_net().named_parameters()]
    assert names == ["conv.weight", "conv.bias", "bn.weight", "bn.bias", "fc.weight", "fc.bias"]
    assert [n for n, _ in small_net().named_buffers()] == ["bn.running_mean", "bn.running_var"]
    assert small_net().num_parameters() == 4 * 1 * 9 + 4 + 4 + 4 + 3 * 16 + 3


def test_train_and_eval_switch_every_layer():
    net = small_net().eval()
    assert not any(m.training for _, m in net.named_modules())
    x = mc.tensor(normal(0, (2, 2, 4, 4), np.float32))
    np.testing.assert_array_equal(net(x).data, net(x).data)  # eval: no dropout, fixed statistics
    net.train()
    assert all(m.training for _, m in net.named_modules())
    assert not np.array_equal(net(x).data, net(x).data)  # each training call draws a new mask


def test_state_dict_round_trip():
    a, b = small_net(), small_net()
    mc.manual_seed(5)
    b = nn.Sequential(*[(n, m) for n, m in b.named_children()])
    for p in b.parameters():
        p.data = p.data + 1
    b.load_state_dict(a.state_dict())
    for (n1, p1), (n2, p2) in zip(a.named_parameters(), b.named_parameters()):
        assert n1 == n2 and np.array_equal(p1.data, p2.data)


def test_state_dict_errors_name_the_entries():
    net = small_net()
    state = net.state_dict()
    missing = {k: v for k, v in state.items() if k != "fc.bias"}
    with pytest.raises(mc.ArgumentError, match=r"missing \['fc.bias'\], unexpected none"):
        net.load_state_dict(missing)
    with pytest.raises(mc.ArgumentError, match=r"unexpected \['extra'\]"):
        net.load_state_dict({**state, "extra": np.zeros(1)})
    with pytest.raises(mc.ShapeError, match=r"fc.weight: expected \(3, 16\), got \(3, 15\)"):
        net.load_state_dict({**state, "fc.weight": np.zeros((3, 15))})


def test_gradcheck_through_a_module():
    net = small_net().double()
    x = mc.tensor(normal(0, (2, 2, 4, 4)), requires_grad=True)
    net.train()
    drop = net["drop"]

    def run(x):
        drop.calls = 0  # the same dropout mask on every evaluation
        return net(x)

    mc.gradcheck(run, [x], params=list(net.named_parameters()))


def test_repr_is_readable():
    text = repr(small_net())
    assert "(conv): Conv2d(2, 4, kernel_size=3x3, stride=1, padding=1, groups=2)" in text
    assert "(fc): Linear(16, 3)" in text


def test_bad_layer_arguments():
    with pytest.raises(mc.ArgumentError, match="Conv2d: groups=2 must divide in_channels=3"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(mc.ArgumentError, match="Dropout: p must be in"):
        nn.Dropout(1.0)
    with pytest.raises(mc.ArgumentError, match="BatchNorm2d: input must be 4-d"):
        nn.BatchNorm2d(3)(mc.tensor(np.ones((2, 3), np.float32)))
    with pytest.raises(mc.ArgumentError, match="Sequential: layer 'x' is a int"):
        nn.Sequential(("x", 3))


def test_default_init_can_be_deferred_to_a_model_builder():
    with nn.init.no_default_init():
        deferred = nn.Linear(50, 40)
    drawn = nn.Linear(50, 40)
    assert not deferred.weight.data.any()
    assert abs(drawn.weight.data.std() - np.sqrt(2 / 50)) < 0.02


def test_layers_normalise_their_arguments_once_in_init():
    conv = nn.Conv2d(3, 8, 5, stride=2, padding=(1, 2))
    assert (conv.kernel_size, conv.stride, conv.padding) == ((5, 5), (2, 2), (1, 2))
    assert nn.Conv2d(3, 8, 3, padding="same").padding == "same"
    pool = nn.MaxPool2d(3)
    assert (pool.kernel_size, pool.stride, pool.padding) == ((3, 3), (3, 3), (0, 0))  # the stride defaults to the window
    assert "kernel_size=3, stride=3" in repr(pool) and "stride=2, padding=(1, 2)" in repr(conv)
    with pytest.raises(mc.ArgumentError, match="Conv2d: stride must be >= 1, got 0"):
        nn.Conv2d(3, 8, 3, stride=0)
    with pytest.raises(mc.ArgumentError, match="Conv2d: padding must be an int, a pair, 'same' or 'valid', got 'full'"):
        nn.Conv2d(3, 8, 3, padding="full")
    with pytest.raises(mc.ArgumentError, match="MaxPool2d: padding must be an int or a pair of ints, got"):
        nn.MaxPool2d(3, 2, (1, 1, 1))


def _layer_by_layer(net, x):
    for layer in net.children():
        x = layer(x)
    return x


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_sequential_runs_a_conv_or_linear_and_its_relu_as_one_op_with_the_same_bits(backend, monkeypatch):
    """Conv2d + ReLU and Linear + ReLU run as F.conv2d_relu / F.linear_relu (one launch on the GPU):
    the output and every gradient are the bits of the layers run one at a time."""
    fused_calls = []
    for name in ("conv2d_relu", "linear_relu"):
        op = getattr(mc.functional, name)
        monkeypatch.setattr(mc.functional, name, lambda *a, op=op, name=name: fused_calls.append(name) or op(*a))
    with mc.use_backend(backend):
        mc.manual_seed(0)
        net = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, groups=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                            nn.Linear(16, 5), nn.ReLU(), nn.Linear(5, 3), nn.ReLU())
        x = mc.tensor(normal(1, (3, 2, 4, 4), np.float32), requires_grad=True)
        results = []
        for run in (net, lambda x: _layer_by_layer(net, x)):
            for p in [x, *net.parameters()]:
                p.grad = None
            y = run(x)
            mc.functional.cross_entropy(y, np.array([0, 2, 1])).backward()
            results.append([y.data.copy(), x.grad.copy()] + [p.grad.copy() for p in net.parameters()])
        for fused, separate in zip(*results):
            np.testing.assert_array_equal(fused, separate)
    assert fused_calls == ["conv2d_relu", "linear_relu", "linear_relu"]  # by net(x), not layer by layer


def test_the_fused_ops_keep_relus_rules_and_gradients():
    """relu(NaN) is NaN and a negative value becomes +0 (not -0) in the fused ops as in F.relu; their
    gradients pass gradcheck; a Conv2d subclass (its forward may differ) is not fused."""
    F = mc.functional
    x = normal(2, (2, 2, 5, 5), np.float32)
    x[0, 0, 1, 1] = np.nan
    w, b = normal(3, (4, 2, 3, 3), np.float32), normal(4, (4,), np.float32)
    args = (mc.tensor(x), mc.tensor(w), mc.tensor(b))
    np.testing.assert_array_equal(F.conv2d_relu(*args, 1, 1).data, F.relu(F.conv2d(*args, 1, 1)).data)
    assert np.isnan(F.conv2d_relu(*args, 1, 1).data).any()
    assert not np.signbit(F.conv2d_relu(*args, 1, 1).data).any()
    fc_x, fc_w, fc_b = (mc.tensor(normal(5, shape, np.float32)) for shape in ((3, 6), (4, 6), (4,)))
    np.testing.assert_array_equal(F.linear_relu(fc_x, fc_w, fc_b).data, F.relu(F.linear(fc_x, fc_w, fc_b)).data)

    conv_args = [mc.tensor(normal(s, shape), requires_grad=True) for s, shape in ((6, (2, 2, 5, 5)), (7, (4, 1, 3, 3)), (8, (4,)))]
    mc.gradcheck(lambda x, w, b: F.conv2d_relu(x, w, b, 2, 1, 2), conv_args)
    mc.gradcheck(F.linear_relu, [mc.tensor(normal(s, shape), requires_grad=True) for s, shape in ((9, (3, 6)), (10, (4, 6)), (11, (4,)))])

    class Doubled(nn.Conv2d):
        def forward(self, x):
            return super().forward(x) * 2

    net = nn.Sequential(Doubled(2, 4, 3), nn.ReLU())
    np.testing.assert_array_equal(net(args[0]).data, F.relu(net[0](args[0])).data)
