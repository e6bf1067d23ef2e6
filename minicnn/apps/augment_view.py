"""``minicnn augment``: the paper's augmentations drawn on built-in shapes, or on your own photo
(``--image PATH``), as one PNG.

Columns: the original image; three random crops with mirroring (227/256 of the side, as the
paper crops 227 of 256); three PCA colour shifts at the paper's strength (a_i ~ N(0, 0.1));
three at ten times that strength, so the direction of the shift can be seen; the ten
evaluation crops (corners, centre and their mirrors) of the first image in a row of their own.

The colour PCA is fitted to the training set's pixels in the paper (here: 200 shapes); a single
photo is shifted along its own pixels' principal colour axes.
"""
from __future__ import annotations

import os

import numpy as np

from ..data import ShapesDataset
from ..data.folders import load_image
from ..data import transforms as T
from ..errors import ArgumentError


def augmentation_figure(path, image_size=64, count=4, seed=0, image=None):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ArgumentError("augment needs matplotlib: pip install 'minicnn[plot]'") from None
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 20:
        raise ArgumentError(f"augment: count must be an integer in [1, 20], got {count!r}")
    if isinstance(image_size, bool) or not isinstance(image_size, int) or not 8 <= image_size <= 1024:
        raise ArgumentError(f"augment: image size must be an integer in [8, 1024], got {image_size!r}")
    if image is not None:
        images = load_image(image, image_size, "augment")[None]
        count, row_names, source = 1, [os.path.basename(image)], f"{os.path.basename(image)}"
        eigenvalues, eigenvectors = T.pca_colour(images)  # its own pixels' colour axes
    else:
        data = ShapesDataset(max(count, 200), image_size, seed=seed)  # 200 images to estimate the colour PCA
        images = data.images[:count]
        row_names, source = [data.classes[label] for label in data.labels[:count]], "shapes"
        eigenvalues, eigenvectors = T.pca_colour(data.images)
    crop = max(1, round(image_size * 227 / 256))
    rng = np.random.default_rng(seed)
    columns = [("original", images)]
    columns += [(f"crop+flip {i + 1}", T.random_crop_flip(images, crop, rng)) for i in range(3)]
    columns += [(f"PCA colour {i + 1}", T.pca_colour_shift(images, eigenvalues, eigenvectors, rng)) for i in range(3)]
    columns += [(f"PCA x10 {i + 1}", T.pca_colour_shift(images, eigenvalues, eigenvectors, rng, std=1.0))
                for i in range(3)]
    ten = T.ten_crop(images[:1], crop)[:, 0]
    names = ["top-left", "top-right", "bottom-left", "bottom-right", "centre"]
    ten_titles = names + [f"{n} mirrored" for n in names]
    cols = max(len(columns), 10)
    fig, axes = plt.subplots(count + 1, cols, figsize=(1.3 * cols, 1.4 * (count + 1)), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for c, (title, batch) in enumerate(columns):
        for r in range(count):
            axes[r, c].imshow(np.clip(batch[r].transpose(1, 2, 0), 0, 1))
            if r == 0:
                axes[r, c].set_title(title, fontsize=7)
    for c in range(10):
        axes[count, c].imshow(np.clip(ten[c].transpose(1, 2, 0), 0, 1))
        axes[count, c].set_title(ten_titles[c], fontsize=6)
    for r in range(count):
        axes[r, 0].set_title(row_names[r] if r else f"original\n{row_names[0]}", fontsize=7)
    fig.suptitle(f"The 2012 paper's augmentations on {source} ({image_size} px, crops of {crop}); last row: ten-crop "
                 f"evaluation views", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=60)
    plt.close(fig)
    return path
