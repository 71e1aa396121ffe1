"""Shared plotting helpers: image grids and saving figures (PNG and PDF) atomically under results/figures/."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from . import config
from .io import atomic_path


def image_grid(images: torch.Tensor, ncol: int, pad: int = 1, side: int = 28) -> torch.Tensor:
    """Tile ``images`` ([N, side*side] or [N, side, side]) into one [H, W] tensor, ``ncol`` per row."""
    images = images.detach().float().cpu().reshape(-1, side, side)
    n = len(images)
    nrow = -(-n // ncol)
    grid = torch.ones(nrow * (side + pad) + pad, ncol * (side + pad) + pad)
    for i, img in enumerate(images):
        r, c = divmod(i, ncol)
        top, left = pad + r * (side + pad), pad + c * (side + pad)
        grid[top:top + side, left:left + side] = 1.0 - img  # dark strokes on white, as in the paper's figures
    return grid


def show_grid(ax, images: torch.Tensor, ncol: int, title: str | None = None) -> None:
    """Draw an image grid on ``ax`` without ticks."""
    ax.imshow(image_grid(images, ncol), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)


def plot_images(rows: list[torch.Tensor], row_labels: list[str], title: str = "", captions: list[list[str]] | None = None):
    """A grid of 28x28 images, one row per tensor [n, 784]; optional caption under each image."""
    n = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), n, figsize=(n * 0.9, len(rows) * 0.95 + 0.3), squeeze=False)
    for i, (images, label) in enumerate(zip(rows, row_labels)):
        for j, ax in enumerate(axes[i]):
            ax.set_xticks([]), ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if j < len(images):
                ax.imshow(images[j].detach().cpu().reshape(28, 28), cmap="gray", vmin=0, vmax=1)
                if captions:
                    ax.set_xlabel(captions[i][j], fontsize=7)
        axes[i][0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle(title)
    return fig


def save_figure(fig, profile, name: str, dpi: int = 120) -> None:
    """Write ``fig`` to ``results/figures/<name>.png`` and ``.pdf`` (atomically)."""
    for ext in ("png", "pdf"):
        with atomic_path(config.results_path(profile, "figures", f"{name}.{ext}")) as tmp:
            fig.savefig(tmp, format=ext, dpi=dpi, bbox_inches="tight")
    plt.show()
