"""``DataLoader``: batches from a dataset, in a seeded order, as NumPy arrays.

A dataset is anything with ``__len__`` and ``__getitem__(i) -> (image, label)``.
Datasets that hold all their images in memory as ``images``/``labels`` arrays
(``ShapesDataset``, ``CIFAR10``) are batched by fancy indexing, one copy per
batch; others item by item. The order of epoch e is a permutation drawn from
(seed, e): the same seed gives the same batches on every run and machine.
"""
from __future__ import annotations

import numpy as np

from ..errors import ArgumentError


class DataLoader:
    def __init__(self, dataset, batch_size, shuffle=False, seed=0, drop_last=False):
        if len(dataset) == 0:
            raise ArgumentError("DataLoader: the dataset is empty")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ArgumentError(f"DataLoader: batch_size must be a positive integer, got {batch_size!r}")
        self.dataset, self.batch_size = dataset, int(batch_size)
        self.shuffle, self.seed, self.drop_last = bool(shuffle), int(seed), bool(drop_last)
        self.epoch = 0

    def __len__(self):
        full, rest = divmod(len(self.dataset), self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def order(self, epoch):
        n = len(self.dataset)
        return np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle else np.arange(n)

    def __iter__(self):
        self.epoch += 1
        return self.batches(self.epoch - 1)

    def batches(self, epoch, start=0):
        """The batches of epoch ``epoch``, from batch number ``start`` on (to resume mid-epoch)."""
        order = self.order(epoch)
        for first in range(start * self.batch_size, len(order), self.batch_size):
            index = order[first:first + self.batch_size]
            if len(index) < self.batch_size and self.drop_last:
                return
            yield self._batch(index)

    def _batch(self, index):
        images = getattr(self.dataset, "images", None)
        labels = getattr(self.dataset, "labels", None)
        if isinstance(images, np.ndarray) and isinstance(labels, np.ndarray):
            return images[index], labels[index]
        items = [self.dataset[int(i)] for i in index]
        shapes = {np.shape(image) for image, _ in items}
        if len(shapes) > 1:
            raise ArgumentError(f"DataLoader: images in one batch have different shapes {sorted(shapes)}")
        return (np.stack([np.asarray(image, dtype=np.float32) for image, _ in items]),
                np.array([label for _, label in items], dtype=np.int64))
