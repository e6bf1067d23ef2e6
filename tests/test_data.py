"""The shapes dataset and the DataLoader: deterministic, balanced, batched as asked, clear errors."""
import numpy as np
import pytest

import minicnn as mc
from minicnn.data import DataLoader, ShapesDataset


def test_shapes_are_deterministic_and_balanced():
    a, b = ShapesDataset(200, 24, seed=3), ShapesDataset(200, 24, seed=3)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.images.shape == (200, 3, 24, 24) and a.images.dtype == np.float32
    assert 0 <= a.images.min() and a.images.max() <= 1
    assert np.bincount(a.labels).tolist() == [20] * 10
    assert not np.array_equal(ShapesDataset(200, 24, seed=4).images, a.images)


def test_images_of_one_class_differ_and_classes_differ_in_shape_not_colour():
    d = ShapesDataset(400, 32, seed=0)
    discs = d.images[d.labels == 0]
    assert np.abs(discs[0] - discs[1]).mean() > 0.05
    # the mean colour carries almost no information about the class
    means = np.array([d.images[d.labels == k].mean() for k in range(10)])
    assert means.std() < 0.03


def test_loader_batches_shuffles_and_drops():
    d = ShapesDataset(50, 16, seed=1)
    loader = DataLoader(d, batch_size=16, shuffle=True, seed=7)
    batches = list(loader)
    assert len(loader) == 4 and [len(b[1]) for b in batches] == [16, 16, 16, 2]
    assert batches[0][0].shape == (16, 3, 16, 16) and batches[0][1].dtype == np.int64
    seen = np.concatenate([b[1] for b in batches])
    assert sorted(seen.tolist()) == sorted(d.labels.tolist())
    again = list(DataLoader(d, batch_size=16, shuffle=True, seed=7))
    np.testing.assert_array_equal(batches[0][0], again[0][0])
    second_epoch = list(loader)
    assert not np.array_equal(second_epoch[0][1], batches[0][1])
    assert len(DataLoader(d, 16, drop_last=True)) == 3 and len(list(DataLoader(d, 16, drop_last=True))) == 3


def test_loader_works_with_any_indexable_dataset():
    items = [(np.full((1, 2, 2), i, np.float32), i % 3) for i in range(5)]
    (x, y), = list(DataLoader(items, batch_size=5))
    assert x.shape == (5, 1, 2, 2) and y.tolist() == [0, 1, 2, 0, 1]
    with pytest.raises(mc.ArgumentError, match="different shapes"):
        list(DataLoader([(np.zeros((1, 2, 2)), 0), (np.zeros((1, 3, 3)), 1)], batch_size=2))


def test_bad_arguments():
    with pytest.raises(mc.ArgumentError, match="shapes: size must be an integer >= 8, got 4"):
        ShapesDataset(10, 4)
    with pytest.raises(mc.ArgumentError, match="shapes: count must be a positive integer"):
        ShapesDataset(0)
    with pytest.raises(mc.ArgumentError, match="DataLoader: batch_size must be a positive integer, got 0"):
        DataLoader(ShapesDataset(10, 8), 0)
    with pytest.raises(mc.ArgumentError, match="DataLoader: the dataset is empty"):
        DataLoader([], 4)
