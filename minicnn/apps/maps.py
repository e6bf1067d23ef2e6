"""PNG grids of feature maps and of conv1's filters (matplotlib, an optional extra)."""
from __future__ import annotations

import os

import numpy as np

from ..errors import ArgumentError
from ..nn import Conv2d


def require_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ArgumentError("--save-maps needs matplotlib: pip install 'minicnn[plot]'") from None


def _grid(images, columns):
    """(count, h, w[, 3]) -> one image with the tiles in rows of ``columns``, 1-pixel gaps."""
    count, h, w = images.shape[:3]
    rows = -(-count // columns)
    grid = np.ones((rows * (h + 1) - 1, columns * (w + 1) - 1) + images.shape[3:], dtype=np.float32)
    for i in range(count):  # arranging tiles for a picture, not a forward pass
        r, c = divmod(i, columns)
        grid[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = images[i]
    return grid


def _normalise(a):
    a = a.astype(np.float32)
    low, high = a.min(), a.max()
    return (a - low) / (high - low) if high > low else np.zeros_like(a)


def save_feature_maps(directory, net, inputs, outputs, max_maps=64):
    """Write conv1's filters and the first image's feature maps after every conv and pool layer.
    Returns the paths written."""
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(directory, exist_ok=True)
    written = []
    names = [n for n, _ in net.named_children()]
    first_conv = next(m for _, m in net.named_children() if isinstance(m, Conv2d))
    filters = first_conv.weight.data.transpose(0, 2, 3, 1)  # (K, kh, kw, C): each filter as an RGB patch
    if filters.shape[-1] == 3:
        tiles = np.stack([_normalise(f) for f in filters])
        path = os.path.join(directory, "conv1_filters.png")
        plt.imsave(path, _grid(tiles, 16))
        written.append(path)
    for name, out in zip(names, outputs):
        if out.ndim != 4 or not (name.startswith("conv") or name.startswith("pool")):
            continue
        maps = np.stack([_normalise(m) for m in out.data[0, :max_maps]])
        path = os.path.join(directory, f"{name}_maps.png")
        plt.imsave(path, _grid(maps, 8), cmap="viridis")
        written.append(path)
    return written
