"""Datasets read from disk: CIFAR-10's python batches and a folder of images per class.

Both load every image into memory as float32 (N, 3, H, W) in [0, 1] (``images``) with int64
``labels``, which the DataLoader batches by indexing. Errors name the file and what was wrong:
a missing folder, a missing or corrupt file, an image of the wrong shape.
"""
from __future__ import annotations

import importlib
import os
import pickle

import numpy as np

from ..errors import ArgumentError, ShapeError
from .transforms import resize_centre_crop

CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST = ("test_batch",)


def _numpy_multiarray():
    try:
        return importlib.import_module("numpy._core.multiarray")  # numpy 2
    except ImportError:
        return importlib.import_module("numpy.core.multiarray")


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles what a CIFAR-10 batch holds, nothing else: dicts, lists, bytes, ints and NumPy
    arrays. A pickle may name any importable function and call it (``os.system``, say); this one
    resolves only the four names NumPy's arrays and scalars are rebuilt from (under NumPy 1's
    module names, which the real files use, and NumPy 2's) and refuses every other."""

    _multiarray = _numpy_multiarray()
    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _multiarray._reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _multiarray._reconstruct,
        ("numpy.core.multiarray", "scalar"): _multiarray.scalar,
        ("numpy._core.multiarray", "scalar"): _multiarray.scalar,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): __import__("_codecs").encode,  # how protocol 2 stores bytes
    }

    def find_class(self, module, name):
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"it names {module}.{name}, which a CIFAR-10 batch never holds "
                                         "(refused: a pickle can run any code it names)") from None


def _numbers(path, name, value):
    """A batch's ``data`` or ``labels`` as a numeric array, or an error naming the file."""
    try:
        array = np.asarray(value)
    except ValueError as exc:  # ragged nesting
        raise ArgumentError(f"CIFAR10: {path}: {name} is not a rectangular array of numbers ({exc})") from None
    if array.dtype.kind not in "biuf":
        raise ArgumentError(f"CIFAR10: {path}: {name} must be numbers, got dtype {array.dtype}")
    return array


class CIFAR10:
    """CIFAR-10 from the standard python-pickle batches (``data_batch_1`` ... ``test_batch``) in ``folder``."""

    classes = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

    def __init__(self, folder, train=True):
        if not os.path.isdir(folder):
            raise ArgumentError(f"CIFAR10: folder not found: {folder}")
        images, labels = [], []
        for name in CIFAR_TRAIN if train else CIFAR_TEST:
            path = os.path.join(folder, name)
            if os.path.exists(path) and not os.path.isfile(path):
                raise ArgumentError(f"CIFAR10: {path} is not a regular file (a folder, a FIFO or a device)")
            if not os.path.isfile(path):
                raise ArgumentError(f"CIFAR10: missing batch file {path} (expected the python version of CIFAR-10)")
            try:
                with open(path, "rb") as f:
                    batch = _BatchUnpickler(f, encoding="bytes").load()
                data, batch_labels = batch[b"data"], batch[b"labels"]
            except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as exc:
                raise ArgumentError(f"CIFAR10: cannot read {path}: {type(exc).__name__}: {exc}") from None
            data, batch_labels = _numbers(path, "data", data), _numbers(path, "labels", batch_labels)
            if data.ndim != 2 or data.shape[1] != 3072 or len(batch_labels) != len(data):
                raise ShapeError(f"CIFAR10: {path} holds data of shape {data.shape} and {len(batch_labels)} labels; "
                                 f"expected (N, 3072) and N labels")
            if len(data) == 0:
                raise ShapeError(f"CIFAR10: {path} holds no images")
            if data.dtype.kind not in "ui" or data.min() < 0 or data.max() > 255:
                raise ArgumentError(f"CIFAR10: {path}: pixels must be integers in 0..255, got {data.dtype} values "
                                    f"in [{data.min()}, {data.max()}]")
            if batch_labels.dtype.kind not in "ui" or batch_labels.min() < 0 or batch_labels.max() >= len(self.classes):
                raise ArgumentError(f"CIFAR10: {path}: labels must be integers in 0..{len(self.classes) - 1}, got "
                                    f"{batch_labels.dtype} values in [{batch_labels.min()}, {batch_labels.max()}]")
            images.append(data.reshape(-1, 3, 32, 32))
            labels.append(batch_labels.astype(np.int64))
        self.images = np.concatenate(images).astype(np.float32) / np.float32(255)
        self.labels = np.concatenate(labels)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return self.images[index], self.labels[index]


def load_image(path, size, op="load_image"):
    """One image file (any format Pillow reads) as (3, size, size) float32 in [0, 1]: the shorter
    side resized to ``size``, then the central square (``transforms.resize_centre_crop``). Errors
    name ``op`` and the file."""
    try:
        from PIL import Image
    except ImportError:
        raise ArgumentError(f"{op}: reading an image needs Pillow: pip install 'minicnn[image]'") from None
    if not os.path.isfile(path):
        raise ArgumentError(f"{op}: image file not found (or not a regular file): {path}")
    try:
        with Image.open(path) as img:
            return resize_centre_crop(img, size)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:  # a bomb: over Pillow's pixel limit
        raise ArgumentError(f"{op}: cannot read image {path}: {type(exc).__name__}: {exc}") from None


class ImageFolder:
    """``folder/<class name>/<image files>``, any format Pillow reads; each image's shorter side is
    resized to ``size``, then centre-cropped to size x size (``transforms.resize_centre_crop``).
    Classes are the sub-folders, sorted; ``classes`` (a validation split's, say) gives the training
    split's list instead, so that labels follow the class names: a sub-folder it lacks is refused.
    Only regular files are read (a FIFO would block the reading forever)."""

    def __init__(self, folder, size=64, classes=None):
        try:
            import PIL  # noqa: F401  (checked before the folder is walked)
        except ImportError:
            raise ArgumentError("ImageFolder needs Pillow: pip install 'minicnn[image]'") from None
        if not os.path.isdir(folder):
            raise ArgumentError(f"ImageFolder: folder not found: {folder}")
        present = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))
        if not present:
            raise ArgumentError(f"ImageFolder: {folder} has no class sub-folders")
        self.classes = present if classes is None else list(classes)
        unknown = [name for name in present if name not in self.classes]
        if unknown:
            raise ArgumentError(f"ImageFolder: {folder} has classes the training data lacks: {', '.join(unknown)} "
                                f"(training classes: {', '.join(self.classes)})")
        images, labels = [], []
        for name in present:
            label = self.classes.index(name)
            for file in sorted(os.listdir(os.path.join(folder, name))):
                path = os.path.join(folder, name, file)
                if not os.path.isfile(path):
                    raise ArgumentError(f"ImageFolder: {path} is not a regular file (a folder, a FIFO or a device)")
                images.append(load_image(path, size, "ImageFolder"))
                labels.append(label)
        if not images:
            raise ArgumentError(f"ImageFolder: no images under {folder}")
        self.images = np.stack(images)
        self.labels = np.array(labels, dtype=np.int64)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return self.images[index], self.labels[index]
