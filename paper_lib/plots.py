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


def save_figure(fig, profile, name: str, dpi: int = 120) -> None:
    """Write ``fig`` to ``results/figures/<name>.png`` and ``.pdf`` (atomically)."""
    for ext in ("png", "pdf"):
        with atomic_path(config.results_path(profile, "figures", f"{name}.{ext}")) as tmp:
            fig.savefig(tmp, format=ext, dpi=dpi, bbox_inches="tight")
    plt.show()
