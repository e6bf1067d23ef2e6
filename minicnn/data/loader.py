"""``DataLoader`` and ``TensorDataset``: batches from a dataset, in a seeded order.

A dataset is anything with ``__len__`` and ``__getitem__(i) -> (image, label)``.
Datasets that hold all their images in memory as ``images``/``labels`` arrays
(``ShapesDataset``, ``CIFAR10``, ``TensorDataset``) are batched by fancy indexing,
one copy per batch; others item by item. The order of epoch e is a permutation
drawn from (seed, e): the same seed gives the same batches on every run and machine.

Iterating a loader (``for x, y in loader``) yields tensors, as PyTorch's does (the
labels as int64 tensors); ``loader.batches(epoch, start)`` yields the same batches
as NumPy arrays, from any batch on (what the training loop uses to resume).
"""
from __future__ import annotations

import numpy as np

from ..errors import ArgumentError


class TensorDataset:
    """Tensors (or arrays) of one length, item i being the tuple of their i-th rows, as
    ``torch.utils.data.TensorDataset``; the usual pair is (images, labels)."""

    def __init__(self, *tensors):
        from ..tensor import Tensor

        if not tensors:
            raise ArgumentError("TensorDataset: needs at least one tensor")
        self.arrays = [t.numpy() if isinstance(t, Tensor) else np.asarray(t) for t in tensors]
        lengths = {len(a) if a.ndim else None for a in self.arrays}
        if len(lengths) != 1 or None in lengths:
            raise ArgumentError(f"TensorDataset: the tensors must have one length (first axis), got shapes "
                                f"{[a.shape for a in self.arrays]}")

    def __len__(self):
        return len(self.arrays[0])

    def __getitem__(self, index):
        return tuple(a[index] for a in self.arrays)


class DataLoader:
    def __init__(self, dataset, batch_size=1, shuffle=False, seed=0, drop_last=False, dtype=None):
        """``dtype``: convert floating-point arrays (the images, and float targets) to it on
        iteration (NumPy makes float64 by default, minicnn's models are float32); None keeps what
        the dataset holds."""
        if len(dataset) == 0:
            raise ArgumentError("DataLoader: the dataset is empty")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ArgumentError(f"DataLoader: batch_size must be a positive integer, got {batch_size!r}")
        self.dataset, self.batch_size = dataset, int(batch_size)
        self.shuffle, self.seed, self.drop_last = bool(shuffle), int(seed), bool(drop_last)
        if dtype is not None and np.dtype(dtype) not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ArgumentError(f"DataLoader: dtype must be float32, float64 or None, got {dtype!r}")
        self.dtype = None if dtype is None else np.dtype(dtype)
        self.epoch = 0

    def __len__(self):
        full, rest = divmod(len(self.dataset), self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def order(self, epoch):
        n = len(self.dataset)
        return np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle else np.arange(n)

    def __iter__(self):
        """This epoch's batches as tuples of tensors, (images, labels) for the image datasets, labels
        int64 (each call is the next epoch, with its own order)."""
        from ..tensor import Tensor

        self.epoch += 1

        def converted(array):
            return array.astype(self.dtype, copy=False) if self.dtype is not None and array.dtype.kind == "f" else array

        return (tuple(Tensor(converted(a)) for a in batch) for batch in self.batches(self.epoch - 1))

    def batches(self, epoch, start=0):
        """The batches of epoch ``epoch``, from batch number ``start`` on (to resume mid-epoch)."""
        order = self.order(epoch)
        for first in range(start * self.batch_size, len(order), self.batch_size):
            index = order[first:first + self.batch_size]
            if len(index) < self.batch_size and self.drop_last:
                return
            yield self._batch(index)

    def _batch(self, index):
        arrays = getattr(self.dataset, "arrays", None)  # a TensorDataset: any number of aligned arrays
        if arrays is None:
            arrays = [getattr(self.dataset, "images", None), getattr(self.dataset, "labels", None)]
        if all(isinstance(a, np.ndarray) for a in arrays):
            return tuple(a[index] for a in arrays)
        items = [self.dataset[int(i)] for i in index]
        shapes = {np.shape(image) for image, _ in items}
        if len(shapes) > 1:
            raise ArgumentError(f"DataLoader: images in one batch have different shapes {sorted(shapes)}")
        return (np.stack([np.asarray(image, dtype=np.float32) for image, _ in items]),
                np.array([label for _, label in items], dtype=np.int64))
