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
    batches = [(x.numpy(), y.numpy()) for x, y in loader]  # iterating yields tensors
    assert len(loader) == 4 and [len(b[1]) for b in batches] == [16, 16, 16, 2]
    assert batches[0][0].shape == (16, 3, 16, 16) and batches[0][1].dtype == np.int64
    seen = np.concatenate([b[1] for b in batches])
    assert sorted(seen.tolist()) == sorted(d.labels.tolist())
    again = list(DataLoader(d, batch_size=16, shuffle=True, seed=7).batches(0))
    np.testing.assert_array_equal(batches[0][0], again[0][0])
    second_epoch = [y.numpy() for _, y in loader]
    assert not np.array_equal(second_epoch[0], batches[0][1])
    assert len(DataLoader(d, 16, drop_last=True)) == 3 and len(list(DataLoader(d, 16, drop_last=True))) == 3


def test_loader_works_with_any_indexable_dataset():
    items = [(np.full((1, 2, 2), i, np.float32), i % 3) for i in range(5)]
    (x, y), = list(DataLoader(items, batch_size=5))
    assert isinstance(x, mc.Tensor) and x.shape == (5, 1, 2, 2) and y.tolist() == [0, 1, 2, 0, 1]
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


def write_cifar_batch(path, count, seed, labels=None):
    import pickle

    rng = np.random.default_rng(seed)
    batch = {b"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8),
             b"labels": list(labels if labels is not None else rng.integers(0, 10, count))}
    with open(path, "wb") as f:
        pickle.dump(batch, f)
    return batch


def test_cifar10_reads_the_python_batches(tmp_path):
    from minicnn.data import CIFAR10

    written = [write_cifar_batch(tmp_path / f"data_batch_{i}", 4, i) for i in range(1, 6)]
    write_cifar_batch(tmp_path / "test_batch", 3, 9)
    train, test = CIFAR10(str(tmp_path)), CIFAR10(str(tmp_path), train=False)
    assert train.images.shape == (20, 3, 32, 32) and len(test) == 3 and train.images.dtype == np.float32
    first = written[0][b"data"][0].reshape(3, 32, 32) / 255
    np.testing.assert_allclose(train.images[0], first, atol=1e-7)
    assert train.labels[:4].tolist() == list(written[0][b"labels"])


def test_cifar10_errors(tmp_path):
    from minicnn.data import CIFAR10

    with pytest.raises(mc.ArgumentError, match="CIFAR10: folder not found"):
        CIFAR10(str(tmp_path / "nowhere"))
    with pytest.raises(mc.ArgumentError, match="missing batch file .*test_batch"):
        CIFAR10(str(tmp_path), train=False)
    (tmp_path / "test_batch").write_bytes(b"\x80\x04truncated")
    with pytest.raises(mc.ArgumentError, match="CIFAR10: cannot read .*test_batch"):
        CIFAR10(str(tmp_path), train=False)
    import pickle

    with open(tmp_path / "test_batch", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, f)
    with pytest.raises(mc.ShapeError, match=r"holds data of shape \(2, 100\)"):
        CIFAR10(str(tmp_path), train=False)


class _RunsACommand:
    """Pickles as a call of os.system: what a booby-trapped dataset file would hold."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


def test_a_cifar_batch_cannot_run_code(tmp_path):
    import pickle

    from minicnn.data import CIFAR10

    marker = tmp_path / "ran"
    with open(tmp_path / "test_batch", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1], b"x": _RunsACommand(marker)}, f)
    with pytest.raises(mc.ArgumentError, match=r"test_batch: UnpicklingError: it names (posix|os|nt)\.system, which a "
                                               r"CIFAR-10 batch never holds"):
        CIFAR10(str(tmp_path), train=False)
    assert not marker.exists()
    for protocol in (2, 4):  # what the real files (Python 2) and Python 3 write: arrays, scalars, bytes
        with open(tmp_path / "test_batch", "wb") as f:
            pickle.dump({b"data": np.full((2, 3072), 7, np.uint8), b"labels": [np.int64(3), 1],
                         b"batch_label": b"testing batch 1 of 1", b"filenames": [b"a.png", b"b.png"]}, f,
                        protocol=protocol)
        test = CIFAR10(str(tmp_path), train=False)
        assert test.labels.tolist() == [3, 1] and test.images.max() == np.float32(7 / 255)


@pytest.mark.parametrize("data, labels, message", [
    (np.zeros((2, 3072), np.uint8), [0, -1], r"labels must be integers in 0\.\.9, got int64 values in \[-1, 0\]"),
    (np.zeros((2, 3072), np.uint8), [0, 255], r"labels must be integers in 0\.\.9, got int64 values in \[0, 255\]"),
    (np.zeros((2, 3072), np.uint8), [0, 1.7], r"labels must be integers in 0\.\.9, got float64"),
    (np.full((2, 3072), 0.5, np.float32), [0, 1], r"pixels must be integers in 0\.\.255, got float32"),
    (np.zeros((0, 3072), np.uint8), [], r"holds no images"),
    (np.zeros((2, 3072), np.uint8), ["cat", "dog"], r"labels must be numbers, got dtype <U3"),
    (np.zeros((2, 3072), np.uint8), [[0], [1, 2]], r"labels is not a rectangular array of numbers"),
])
def test_cifar_labels_and_pixels_are_checked_when_loading(tmp_path, data, labels, message):
    import pickle

    from minicnn.data import CIFAR10

    with open(tmp_path / "test_batch", "wb") as f:
        pickle.dump({b"data": data, b"labels": labels}, f)
    with pytest.raises((mc.ArgumentError, mc.ShapeError), match=message):
        CIFAR10(str(tmp_path), train=False)


def test_image_folder(tmp_path):
    image = pytest.importorskip("PIL.Image")
    from minicnn.data import ImageFolder

    for name, colour in (("cats", (255, 0, 0)), ("dogs", (0, 0, 255))):
        (tmp_path / name).mkdir()
        for i in range(2):
            image.new("RGB", (40 + 10 * i, 30), colour).save(tmp_path / name / f"{i}.png")
    data = ImageFolder(str(tmp_path), size=16)
    assert data.classes == ["cats", "dogs"] and data.images.shape == (4, 3, 16, 16)
    assert data.labels.tolist() == [0, 0, 1, 1]
    np.testing.assert_allclose(data.images[0, :, 5, 5], [1, 0, 0])
    (tmp_path / "dogs" / "broken.png").write_bytes(b"not an image")
    with pytest.raises(mc.ArgumentError, match="ImageFolder: cannot read image .*broken.png"):
        ImageFolder(str(tmp_path), size=16)
    with pytest.raises(mc.ArgumentError, match="ImageFolder: folder not found"):
        ImageFolder(str(tmp_path / "nowhere"))


def test_image_folder_labels_follow_the_class_names(tmp_path):
    image = pytest.importorskip("PIL.Image")
    from minicnn.data import ImageFolder

    colours = {"cat": (255, 0, 0), "dog": (0, 255, 0), "fox": (0, 0, 255)}
    for split, names in (("train", ["cat", "dog", "fox"]), ("val", ["cat", "fox"])):
        for name in names:
            (tmp_path / split / name).mkdir(parents=True)
            image.new("RGB", (12, 12), colours[name]).save(tmp_path / split / name / "0.png")
    train = ImageFolder(str(tmp_path / "train"), 8)
    val = ImageFolder(str(tmp_path / "val"), 8, classes=train.classes)
    assert val.classes == ["cat", "dog", "fox"] and val.labels.tolist() == [0, 2]  # fox is 2, not dog's 1
    assert val.images[1, 2].mean() > 0.9  # the blue image carries fox's label
    (tmp_path / "val" / "wolf").mkdir()
    image.new("RGB", (12, 12)).save(tmp_path / "val" / "wolf" / "0.png")
    with pytest.raises(mc.ArgumentError, match="has classes the training data lacks: wolf"):
        ImageFolder(str(tmp_path / "val"), 8, classes=train.classes)


def test_image_folder_refuses_a_fifo_instead_of_hanging(tmp_path):
    pytest.importorskip("PIL.Image")
    import os

    from minicnn.data import ImageFolder

    (tmp_path / "cat").mkdir()
    os.mkfifo(tmp_path / "cat" / "trap.png")
    with pytest.raises(mc.ArgumentError, match=r"trap.png is not a regular file"):
        ImageFolder(str(tmp_path), 8)


def test_a_decompression_bomb_is_refused_naming_the_file(tmp_path, monkeypatch):
    image = pytest.importorskip("PIL.Image")
    from minicnn.data import ImageFolder

    (tmp_path / "cat").mkdir()
    image.new("RGB", (64, 64)).save(tmp_path / "cat" / "big.png")
    monkeypatch.setattr(image, "MAX_IMAGE_PIXELS", 1000)  # 4096 pixels is then twice over the limit: a "bomb"
    with pytest.raises(mc.ArgumentError, match=r"cannot read image .*big.png: DecompressionBombError"):
        ImageFolder(str(tmp_path), 8)


def test_a_cifar_batch_that_is_a_fifo_is_refused(tmp_path):
    import os

    from minicnn.data import CIFAR10

    os.mkfifo(tmp_path / "test_batch")
    with pytest.raises(mc.ArgumentError, match="test_batch is not a regular file"):
        CIFAR10(str(tmp_path), train=False)


def test_tensor_dataset_and_a_loader_that_yields_tensors():
    """Issue 20: the loader yielded NumPy arrays (the model then refused them) and needed a
    batch size; TensorDataset did not exist."""
    from minicnn.data import TensorDataset

    images = mc.tensor(np.arange(24, dtype=np.float32).reshape(6, 1, 2, 2))
    labels = mc.tensor(np.array([0, 1, 2, 0, 1, 2]))
    data = TensorDataset(images, labels)
    assert len(data) == 6 and data[2][1] == 2
    loader = DataLoader(data, batch_size=4, shuffle=True, seed=0)
    batches = list(loader)
    assert [type(t) for t in batches[0]] == [mc.Tensor, mc.Tensor] and batches[0][1].dtype == np.int64
    assert sorted(np.concatenate([y.numpy() for _, y in batches]).tolist()) == [0, 0, 1, 1, 2, 2]
    assert len(DataLoader(data)) == 6  # batch_size 1 by default, as PyTorch
    x, y, weight = next(iter(DataLoader(TensorDataset(images, labels, np.arange(6.0)), batch_size=3)))
    assert weight.tolist() == [0.0, 1.0, 2.0] and y.tolist() == [0, 1, 2]  # any number of tensors
    with pytest.raises(mc.ArgumentError, match=r"TensorDataset: the tensors must have one length"):
        TensorDataset(images, mc.tensor([0, 1]))


def test_float64_data_meets_a_float32_model_with_a_fix_named():
    from minicnn.data import TensorDataset

    data = TensorDataset(np.zeros((4, 3, 8, 8)), np.array([0, 1, 0, 1]))  # NumPy's float64
    model = mc.nn.Sequential(mc.nn.Conv2d(3, 2, 3))
    x, _ = next(iter(DataLoader(data, batch_size=2)))
    with pytest.raises(mc.DTypeError, match=r"x.float\(\) converts the input; a DataLoader\(..., dtype=np.float32\)"):
        model(x)
    x, y = next(iter(DataLoader(data, batch_size=2, dtype=np.float32)))
    assert x.dtype == np.float32 and y.dtype == np.int64 and model(x).shape == (2, 2, 6, 6)
    with pytest.raises(mc.ArgumentError, match="DataLoader: dtype must be float32, float64 or None"):
        DataLoader(data, dtype=np.int32)
