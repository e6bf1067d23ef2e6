"""Datasets read from disk: CIFAR-10's python batches and a folder of images per class.

Both load every image into memory as float32 (N, 3, H, W) in [0, 1] (``images``) with int64
``labels``, which the DataLoader batches by indexing. Errors name the file and what was wrong:
a missing folder, a missing or corrupt file, an image of the wrong shape.
"""
from __future__ import annotations

import os
import pickle

import numpy as np

from ..errors import ArgumentError, ShapeError
from .transforms import resize_centre_crop

CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST = ("test_batch",)


class CIFAR10:
    """CIFAR-10 from the standard python-pickle batches (``data_batch_1`` ... ``test_batch``) in ``folder``."""

    classes = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

    def __init__(self, folder, train=True):
        if not os.path.isdir(folder):
            raise ArgumentError(f"CIFAR10: folder not found: {folder}")
        images, labels = [], []
        for name in CIFAR_TRAIN if train else CIFAR_TEST:
            path = os.path.join(folder, name)
            if not os.path.isfile(path):
                raise ArgumentError(f"CIFAR10: missing batch file {path} (expected the python version of CIFAR-10)")
            try:
                with open(path, "rb") as f:
                    batch = pickle.load(f, encoding="bytes")
                data, batch_labels = batch[b"data"], batch[b"labels"]
            except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as exc:
                raise ArgumentError(f"CIFAR10: cannot read {path}: {type(exc).__name__}: {exc}") from None
            data = np.asarray(data)
            if data.ndim != 2 or data.shape[1] != 3072 or len(batch_labels) != len(data):
                raise ShapeError(f"CIFAR10: {path} holds data of shape {data.shape} and {len(batch_labels)} labels; "
                                 f"expected (N, 3072) and N labels")
            images.append(data.reshape(-1, 3, 32, 32))
            labels.append(np.asarray(batch_labels, dtype=np.int64))
        self.images = np.concatenate(images).astype(np.float32) / np.float32(255)
        self.labels = np.concatenate(labels)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return self.images[index], self.labels[index]


class ImageFolder:
    """``folder/<class name>/<image files>``, any format Pillow reads; each image's shorter side is
    resized to ``size``, then centre-cropped to size x size (``transforms.resize_centre_crop``).
    Classes are the sub-folders, sorted."""

    def __init__(self, folder, size=64):
        try:
            from PIL import Image
        except ImportError:
            raise ArgumentError("ImageFolder needs Pillow: pip install 'minicnn[image]'") from None
        if not os.path.isdir(folder):
            raise ArgumentError(f"ImageFolder: folder not found: {folder}")
        self.classes = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))
        if not self.classes:
            raise ArgumentError(f"ImageFolder: {folder} has no class sub-folders")
        images, labels = [], []
        for label, name in enumerate(self.classes):
            for file in sorted(os.listdir(os.path.join(folder, name))):
                path = os.path.join(folder, name, file)
                try:
                    with Image.open(path) as img:
                        images.append(resize_centre_crop(img, size))
                except OSError as exc:
                    raise ArgumentError(f"ImageFolder: cannot read image {path}: {exc}") from None
                labels.append(label)
        if not images:
            raise ArgumentError(f"ImageFolder: no images under {folder}")
        self.images = np.stack(images)
        self.labels = np.array(labels, dtype=np.int64)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return self.images[index], self.labels[index]
