"""Notebook helpers: images in a grid with their predicted labels (matplotlib, imported lazily)."""

from __future__ import annotations

import numpy as np


def label_name(label: int, classes: list[str] | None) -> str:
    return classes[label] if classes and 0 <= label < len(classes) else str(int(label))


def show_grid(images: np.ndarray, predicted: np.ndarray, truth: np.ndarray | None = None,
              classes: list[str] | None = None, cols: int = 8, title: str | None = None):
    """uint8 (N, C, H, W) images with their predicted labels: green when they match ``truth``,
    red when not (black without truth). Returns the matplotlib figure."""
    import matplotlib.pyplot as plt

    n = len(images)
    cols = max(1, min(cols, n))
    rows = max(1, -(-n // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.8 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, ax in enumerate(axes.flat[:n]):
        img = np.asarray(images[i]).transpose(1, 2, 0)
        if img.shape[2] == 1:
            ax.imshow(img[..., 0], cmap="gray", vmin=0, vmax=255)
        else:
            ax.imshow(img)
        color = "black" if truth is None else ("green" if predicted[i] == truth[i] else "red")
        ax.set_title(label_name(int(predicted[i]), classes), color=color, fontsize=10)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
