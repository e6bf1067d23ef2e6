"""``shapes``: a built-in synthetic image set, generated deterministically from a seed.

Ten classes of drawn shapes: disc, square, triangle, plus, ring, diamond, X, wide
ellipse, frame (a hollow square) and bars. Every image varies the shape's colour,
size (30-70% of the image), position, rotation (+-20 degrees, since a square turned
by 45 is the diamond), the background's colour and
gradient, and adds Gaussian noise, so a network has to learn the shape itself,
not its colour or place. Any image size; nothing to download.

Images are float32 (3, size, size) in [0, 1]; labels int64 in [0, 10).
"""
from __future__ import annotations

import numpy as np

from ..errors import ArgumentError

CLASSES = ("disc", "square", "triangle", "plus", "ring", "diamond", "x", "ellipse", "frame", "bars")


def _shape_mask(label, u, v):
    """Pixels inside shape ``label``; u, v are coordinates in the shape's own frame, the shape
    spanning roughly [-1, 1] on both axes."""
    au, av = np.abs(u), np.abs(v)
    r2 = u * u + v * v
    if label == 0:
        return r2 < 1
    if label == 1:
        return (au < 0.8) & (av < 0.8)
    if label == 2:
        return (v < 0.7) & (v > -0.9 + 1.8 * au)
    if label == 3:
        return ((au < 0.25) & (av < 0.9)) | ((av < 0.25) & (au < 0.9))
    if label == 4:
        return (r2 < 1) & (r2 > 0.4)
    if label == 5:
        return au + av < 1
    if label == 6:
        return (np.abs(u - v) < 0.3) & (au < 0.8) & (av < 0.8) | (np.abs(u + v) < 0.3) & (au < 0.8) & (av < 0.8)
    if label == 7:
        return (u / 1.0) ** 2 + (v / 0.45) ** 2 < 1
    if label == 8:
        return (au < 0.85) & (av < 0.85) & ~((au < 0.5) & (av < 0.5))
    return (au < 0.9) & (av < 0.9) & (np.floor((v + 0.9) / 0.36) % 2 == 0)


def render(label, size, rng):
    """One image of class ``label`` (3, size, size), drawn with the random choices of ``rng``."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1) * 2 - 1
    scale = rng.uniform(0.3, 0.7)
    cy, cx = rng.uniform(-1 + scale, 1 - scale, 2)
    # +-20 degrees only: a square turned 45 degrees is the diamond, a plus turned 45 the X
    angle = rng.uniform(-np.pi / 9, np.pi / 9)
    cos, sin = np.cos(angle), np.sin(angle)
    u = ((xx - cx) * cos + (yy - cy) * sin) / scale
    v = (-(xx - cx) * sin + (yy - cy) * cos) / scale
    background = rng.uniform(0, 1, 3).astype(np.float32)
    colour = rng.uniform(0, 1, 3).astype(np.float32)
    while np.abs(colour - background).sum() < 0.6:  # keep the shape visible
        colour = rng.uniform(0, 1, 3).astype(np.float32)
    tilt = rng.uniform(-0.2, 0.2, (3, 2)).astype(np.float32)
    image = background[:, None, None] + tilt[:, :1, None] * xx + tilt[:, 1:, None] * yy
    mask = _shape_mask(label, u, v)
    image[:, mask] = colour[:, None]
    image += rng.normal(0, rng.uniform(0.02, 0.12), image.shape).astype(np.float32)
    return np.clip(image, 0, 1).astype(np.float32)


class ShapesDataset:
    """``count`` images of ``size`` x ``size`` pixels; image i is drawn from (seed, i) alone, so
    any subset is reproducible. Labels cycle through the classes in a seeded order."""

    def __init__(self, count=5000, size=32, seed=0, num_classes=10):
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
            raise ArgumentError(f"shapes: count must be a positive integer, got {count!r}")
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 8:
            raise ArgumentError(f"shapes: size must be an integer >= 8, got {size!r}")
        if not isinstance(num_classes, (int, np.integer)) or not 2 <= num_classes <= len(CLASSES):
            raise ArgumentError(f"shapes: num_classes must be in [2, {len(CLASSES)}], got {num_classes!r}")
        self.count, self.size, self.seed, self.num_classes = int(count), int(size), int(seed), int(num_classes)
        self.classes = CLASSES[:num_classes]
        self.labels = np.random.default_rng([seed, 0]).permutation(np.arange(count) % num_classes).astype(np.int64)
        self.images = np.stack([render(int(label), self.size, np.random.default_rng([seed, 1, i]))
                                for i, label in enumerate(self.labels)])  # generating data, not a forward pass

    def __len__(self):
        return self.count

    def __getitem__(self, index):
        return self.images[index], self.labels[index]
