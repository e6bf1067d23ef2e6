"""The baselines the benchmarks compare against compute the same function as minicnn."""
import numpy as np

import minicnn as mc
from benchmarks.numpy_textbook import TextbookNet
from minicnn import functional as F
from minicnn import models


def test_textbook_numpy_alexnet_has_minicnns_loss_and_gradients():
    net = models.alexnet_small(10, 32, width=0.25, dropout=0, seed=3)  # groups, LRN, overlapping pooling
    x = np.random.default_rng(0).standard_normal((4, 3, 32, 32)).astype(np.float32)
    labels = np.array([1, 7, 3, 3])
    textbook = TextbookNet(net)
    loss = textbook.loss_and_backward(x, labels)
    ours = F.cross_entropy(net(mc.tensor(x)), labels)
    ours.backward()
    assert abs(loss - ours.item()) < 1e-5
    for p, g in zip(net.parameters(), textbook.grads(), strict=True):
        assert g.shape == p.shape and g.dtype == np.float32
        np.testing.assert_allclose(g, p.grad, rtol=0, atol=1e-4 * np.abs(p.grad).max())
    before = [p.copy() for p in textbook.params()]
    textbook.sgd_step()
    assert all(not np.array_equal(a, b) for a, b in zip(before, textbook.params()))
