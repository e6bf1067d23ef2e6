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


def _grid(images, columns, gap=np.nan):
    """(count, h, w[, 3]) -> one image with the tiles in rows of ``columns``, 1-pixel gaps
    (NaN for a map: drawn in the colour map's "bad" colour; 1.0, white, for RGB tiles)."""
    count, h, w = images.shape[:3]
    rows = -(-count // columns)
    grid = np.full((rows * (h + 1) - 1, columns * (w + 1) - 1) + images.shape[3:], gap, dtype=np.float32)
    for i in range(count):  # arranging tiles for a picture, not a forward pass
        r, c = divmod(i, columns)
        grid[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = images[i]
    return grid


def _normalise(a):
    a = a.astype(np.float32)
    low, high = a.min(), a.max()
    return (a - low) / (high - low) if high > low else np.zeros_like(a)


def enlarge(image, factor):
    """Each pixel as a factor x factor block (nearest neighbour: no smoothing invents values)."""
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


TILE_PIXELS = 48  # a tile is drawn at least this many screen pixels wide: an 11x11 filter becomes 55x55


def _save(plt, path, grid, title, scale=None, dpi=100):
    """Write ``grid`` one array pixel to one PNG pixel (so the enlargement is what one sees), with a
    title above and, for maps (``scale``: their low and high value), a colour bar to the right."""
    import matplotlib

    h, w = grid.shape[:2]
    bar, top = (90 if scale else 0), 24
    width, height = max(w + bar, 400), h + top
    fig = plt.figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    ax = fig.add_axes((0, 0, w / width, h / height))
    ax.set_axis_off()
    fig.text(0.005, 1 - 4 / height, title, fontsize=7, va="top")
    if scale is None:
        ax.imshow(grid, interpolation="nearest", aspect="equal")
    else:
        low, high = scale
        colours = matplotlib.colormaps["viridis"].with_extremes(bad="white")
        shown = ax.imshow(grid, cmap=colours, vmin=low, vmax=high if high > low else low + 1,
                          interpolation="nearest", aspect="equal")
        cax = fig.add_axes(((w + 12) / width, 0.1 * h / height, 14 / width, 0.8 * h / height))
        fig.colorbar(shown, cax=cax, label="activation")
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def save_feature_maps(directory, net, inputs, outputs, max_maps=64):
    """Write conv1's filters and the first image's feature maps after every conv and pool layer,
    each pixel enlarged to a block (nearest neighbour), the maps with a shared colour scale and
    its colour bar. Returns the paths written."""
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
        factor = max(1, -(-TILE_PIXELS // filters.shape[1]))
        grid = _grid(np.stack([enlarge(_normalise(f), factor) for f in filters]), 16, gap=1.0)
        title = (f"conv1's {len(filters)} filters, {filters.shape[1]}x{filters.shape[2]}x3 each (one weight = "
                 f"{factor}x{factor} pixels), every filter scaled to its own range")
        written.append(_save(plt, os.path.join(directory, "conv1_filters.png"), grid, title))
    for name, out in zip(names, outputs):
        if out.ndim != 4 or not (name.startswith("conv") or name.startswith("pool")):
            continue
        maps = out.data[0, :max_maps].astype(np.float32)
        factor = max(1, -(-TILE_PIXELS // maps.shape[1]))
        grid = _grid(np.stack([enlarge(m, factor) for m in maps]), 8)
        title = (f"{name}: {len(maps)} of {out.shape[1]} maps of image 0, {maps.shape[1]}x{maps.shape[2]} each "
                 f"(one value = {factor}x{factor} pixels), one colour scale")
        written.append(_save(plt, os.path.join(directory, f"{name}_maps.png"), grid, title,
                             scale=(float(maps.min()), float(maps.max()))))
    return written
