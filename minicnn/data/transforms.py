"""The 2012 paper's data augmentation, on whole batches (N, C, H, W) at once, each step seeded.

- ``resize_centre_crop(image, size)``: one image of any size (the paper's first step, for
  ImageNet's varied resolutions): scale the shorter side to ``size`` (256 in the paper), then
  take the central size x size square. Needs Pillow.
- ``channel_mean(images)`` and ``subtract_mean``: the paper subtracts the mean activity over the
  training set from each pixel; here the per-channel mean.
- ``centre_crop(images, size)``: the central size x size patch of each image.
- ``random_crop_flip(images, size, rng)``: a random size x size patch of each image (227 of 256
  in the paper), mirrored left-right with probability 1/2.
- ``pca_colour(images)`` and ``pca_colour_shift``: principal components of the training set's
  RGB values (eigenvectors p_i, eigenvalues l_i of their 3x3 covariance); each image is shifted
  by [p1 p2 p3] [a1 l1, a2 l2, a3 l3]^T with a_i ~ N(0, 0.1) drawn once per image, which changes
  the intensity and colour of the lighting but not the object.
- ``ten_crop(images, size, mirrors=True)``: the four corner patches and the centre patch, and their mirrors,
  for evaluation (the paper averages the softmax over the ten).

Each crop indexes a sliding-window view of the batch (``sliding_window_view``), so a batch is cropped without a
Python loop over its images.

``augment`` is the training pipeline's steps (colour shift, mean, random crop, mirror) in one pass
over the batch (``kernels/cpu/augment.py``), drawing the same random numbers in the same order as the
steps one at a time and giving the same bits; the steps above are its readable reference.
"""
from __future__ import annotations

import numpy as np

from ..errors import ArgumentError, ShapeError


def _check_batch(op, images, size=None):
    if not isinstance(images, np.ndarray) or images.ndim != 4:
        raise ShapeError(f"{op}: images must be a 4-d array (N, C, H, W), got {getattr(images, 'shape', type(images))}")
    if size is not None:
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise ArgumentError(f"{op}: size must be a positive integer, got {size!r}")
        if size > min(images.shape[2:]):
            raise ShapeError(f"{op}: crop size {size} is larger than the images, {images.shape[2]}x{images.shape[3]}")


def channel_mean(images):
    """The mean of each channel over a set of images (N, C, H, W) -> (C,), in float64."""
    _check_batch("channel_mean", images)
    return images.mean(axis=(0, 2, 3), dtype=np.float64)


def subtract_mean(images, mean):
    return (images - np.asarray(mean, dtype=images.dtype)[None, :, None, None]).astype(images.dtype)


def crop(images, tops, lefts, size):
    """Patch n is images[n, :, tops[n]:tops[n]+size, lefts[n]:lefts[n]+size]."""
    # windows[n, c, i, j] is the size x size patch whose top-left pixel is (i, j): a view, no copy.
    # Indexing it with (n, tops[n], lefts[n]) copies exactly the N chosen patches, once.
    windows = np.lib.stride_tricks.sliding_window_view(images, (size, size), axis=(2, 3))
    return windows[np.arange(len(images)), :, tops, lefts]


def resize_centre_crop(image, size):
    """A Pillow image (or an (H, W, 3) uint8 array) -> (3, size, size) float32 in [0, 1]: the
    shorter side scaled to ``size`` (bilinear, antialiased), then the central square."""
    try:
        from PIL import Image
    except ImportError:
        raise ArgumentError("resize_centre_crop needs Pillow: pip install 'minicnn[image]'") from None
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ArgumentError(f"resize_centre_crop: size must be a positive integer, got {size!r}")
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ShapeError(f"resize_centre_crop: an array image must be (H, W, 3) uint8, got {image.shape} "
                             f"{image.dtype}")
        image = Image.fromarray(image)
    if image.mode.startswith("I;16") or (image.mode == "I" and image.format == "PNG"):
        # 16-bit greys (Pillow opens a 16-bit PNG as I;16, older Pillows as I): convert("RGB")
        # would clip every value over 255 to white; scale 0..65535 to 0..255 instead
        grey = np.asarray(image, dtype=np.float64) / 257.0
        image = Image.fromarray(np.clip(np.rint(grey), 0, 255).astype(np.uint8))
    elif image.mode in ("I", "F"):
        # 32-bit integer or float pixels (a TIFF, say) have no range minicnn can know: [0, 1],
        # [0, 255] and [0, 65535] are all common, and a guess would silently change every pixel
        raise ArgumentError(f"resize_centre_crop: a 32-bit {'float' if image.mode == 'F' else 'integer'} image "
                            f"(Pillow mode {image.mode}) has no known pixel range; save it with 8 or 16 bits")
    image = image.convert("RGB")  # palette, CMYK, YCbCr, grey and alpha (dropped, as torchvision does) -> RGB
    scale = size / min(image.size)
    width, height = max(size, round(image.width * scale)), max(size, round(image.height * scale))
    image = image.resize((width, height), Image.BILINEAR)
    left, top = (width - size) // 2, (height - size) // 2
    square = np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.float32) / np.float32(255)
    return np.ascontiguousarray(square.transpose(2, 0, 1))


def centre_crop(images, size):
    """The central size x size patch of each image (the same patch as ten-crop's fifth view)."""
    _check_batch("centre_crop", images, size)
    n, _, h, w = images.shape
    top, left = (h - size) // 2, (w - size) // 2
    return np.ascontiguousarray(images[:, :, top:top + size, left:left + size])


def random_crop_flip(images, size, rng, flip=True):
    """A random size x size patch of each image, mirrored left-right with probability 1/2 (with
    ``flip=False`` the coin is still drawn, so that the crops do not change, but not used)."""
    _check_batch("random_crop_flip", images, size)
    n, _, h, w = images.shape
    tops = rng.integers(0, h - size + 1, n)
    lefts = rng.integers(0, w - size + 1, n)
    patches = crop(images, tops, lefts, size)
    mirrored = (rng.random(n) < 0.5) & flip
    patches[mirrored] = patches[mirrored, :, :, ::-1]
    return patches


def random_flip(images, rng):
    """Each image mirrored left-right with probability 1/2 (a copy)."""
    mirrored = rng.random(len(images)) < 0.5
    flipped = np.array(images, copy=True)
    flipped[mirrored] = flipped[mirrored, :, :, ::-1]
    return flipped


def pca_colour(images):
    """Eigenvalues (3,) and eigenvectors (3, 3), columns, of the RGB covariance over all pixels."""
    _check_batch("pca_colour", images)
    if images.shape[1] != 3:
        raise ShapeError(f"pca_colour: images must have 3 (RGB) channels, got {images.shape[1]}")
    # The covariance from float64 sums over blocks of images: a float64 copy of a whole dataset
    # (6 GiB for 4096 images at 256 px) is never made.
    total, products, count = np.zeros(3), np.zeros((3, 3)), 0
    for start in range(0, images.shape[0], 64):
        pixels = images[start:start + 64].transpose(1, 0, 2, 3).reshape(3, -1).astype(np.float64)
        if not np.isfinite(pixels).all():
            last = min(start + 64, images.shape[0]) - 1
            raise ArgumentError(f"pca_colour: images {start}..{last} hold NaN or infinite pixel values")
        total += pixels.sum(axis=1)
        products += pixels @ pixels.T
        count += pixels.shape[1]
    if count < 2:
        raise ShapeError(f"pca_colour: need at least 2 pixels, got {count}")
    covariance = (products - np.outer(total, total) / count) / (count - 1)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    return np.clip(eigenvalues, 0, None), eigenvectors


def pca_colour_shift(images, eigenvalues, eigenvectors, rng, std=0.1):
    """Add [p1 p2 p3] [a1 l1, a2 l2, a3 l3]^T to every pixel of each image, a_i ~ N(0, std)."""
    _check_batch("pca_colour_shift", images)
    alphas = rng.normal(0, std, (images.shape[0], 3))
    shifts = (alphas * eigenvalues[None, :]) @ eigenvectors.T  # (N, 3): one RGB offset per image
    return (images + shifts[:, :, None, None]).astype(images.dtype)


def ten_crop(images, size, mirrors=True):
    """(10, N, C, size, size): top-left, top-right, bottom-left, bottom-right, centre, then mirrors;
    (5, N, C, size, size) without the mirrors (for a network that never saw a mirrored image)."""
    _check_batch("ten_crop", images, size)
    n, _, h, w = images.shape
    corners = [(0, 0), (0, w - size), (h - size, 0), (h - size, w - size), ((h - size) // 2, (w - size) // 2)]
    crops = [crop(images, np.full(n, top), np.full(n, left), size) for top, left in corners]
    return np.stack(crops + ([c[:, :, :, ::-1] for c in crops] if mirrors else []))


def augment(images, size, rng, mean, eigen=None, random_crop=True, flip=True, index=None, std=0.1, part=None):
    """The training batch: ``pca_colour_shift`` (where ``eigen`` = (eigenvalues, eigenvectors) is
    given), ``subtract_mean``, then ``random_crop_flip`` (or, without ``random_crop``, ``centre_crop``
    and ``random_flip`` where ``flip``), in one pass. ``index``: the batch is images[index] (read in
    place, never copied whole); None: all of ``images``. The same random numbers are drawn in the
    same order as by the steps one at a time, and the result has the same bits.

    ``part`` (a slice of the batch's positions) returns only those images, with the random numbers
    they get in the whole batch: a data-parallel rank's share (minicnn/distributed.py)."""
    from ..kernels.cpu.augment import augment_batch

    _check_batch("augment", images, size)
    index = np.arange(len(images)) if index is None else np.asarray(index, dtype=np.int64)
    if index.ndim != 1 or (len(index) and not 0 <= index.min() <= index.max() < len(images)):
        raise ArgumentError(f"augment: index must be a 1-d array of image numbers below {len(images)}")
    n, (h, w) = len(index), images.shape[2:]
    shifts, has_shift = np.zeros((n, images.shape[1])), eigen is not None
    if has_shift:
        if images.shape[1] != 3:
            raise ShapeError(f"augment: the colour shift needs 3 (RGB) channels, got {images.shape[1]}")
        eigenvalues, eigenvectors = eigen
        shifts = (rng.normal(0, std, (n, 3)) * eigenvalues[None, :]) @ eigenvectors.T
    if random_crop:
        tops, lefts = rng.integers(0, h - size + 1, n), rng.integers(0, w - size + 1, n)
        mirrored = (rng.random(n) < 0.5) & flip
    else:
        tops, lefts = np.full(n, (h - size) // 2), np.full(n, (w - size) // 2)
        mirrored = rng.random(n) < 0.5 if flip else np.zeros(n, dtype=bool)
    if part is not None:
        index, tops, lefts, mirrored, shifts = (a[part] for a in (index, tops, lefts, mirrored, shifts))
    out = np.empty((len(index), images.shape[1], size, size), dtype=images.dtype)
    augment_batch(images, index, tops, lefts, mirrored, shifts, has_shift,
                  np.asarray(mean, dtype=images.dtype), out)
    return out
