"""Test-set numbers for the trained models (Table 3, section 8.3 accuracies) and their figures.

The VAE's test loss is the negative ELBO per example, estimated with one z per example drawn from a
seeded generator (the ELBO is an expectation over q(z|x); one draw per example is an unbiased estimate,
and over 10k test images its spread is far below the differences we compare). Dropout is off.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from . import reference
from .io import update_rows
from .train import ClassifierObjective, VAEObjective, evaluate


def paper_vae_losses(dataset: str) -> dict:
    """Table 3's test loss, NLL and KL for ``dataset`` (combined: NLL and loss on the 1000x scale)."""
    row = reference.table("table3").set_index("dataset").loc[dataset]
    return {term: float(row[term]) for term in ("loss", "nll", "kl")}


def paper_accuracy(dataset: str) -> float:
    """The classifier's test accuracy in section 8.3, as a fraction."""
    return float(reference.table("classifier_accuracy").set_index("dataset").loc[dataset, "accuracy"])


def vae_losses(vae, images: torch.Tensor, recon_scale: float = 1.0, seed: int = 0) -> dict:
    """Per-example test loss, NLL and KL as Table 3 reports them (NLL scaled by ``recon_scale``),
    plus the unscaled NLL; ``loss == nll + kl``."""
    terms = evaluate(vae, VAEObjective(recon_scale), images, seed=seed)
    return {"loss": terms["loss"], "nll": terms["nll"] * recon_scale, "kl": terms["kl"],
            "recon_scale": recon_scale, "nll_unscaled": terms["nll"]}


@torch.no_grad()
def predict(classifier, images: torch.Tensor, batch: int = 1024) -> torch.Tensor:
    """Predicted class of each image (eval mode), on the CPU."""
    classifier.eval()
    dev = next(classifier.parameters()).device
    return torch.cat([classifier(images[i : i + batch].to(dev)).argmax(1).cpu() for i in range(0, len(images), batch)])


def classifier_scores(classifier, images: torch.Tensor, labels: torch.Tensor) -> dict:
    """Test accuracy (a fraction), mean cross-entropy, predictions and the confusion matrix (rows: true class)."""
    terms = evaluate(classifier, ClassifierObjective(), images, labels)
    predictions = predict(classifier, images)
    return {"accuracy": terms["accuracy"], "loss": terms["loss"], "predictions": predictions,
            "confusion": confusion_matrix(labels, predictions)}


def confusion_matrix(labels: torch.Tensor, predictions: torch.Tensor, n_classes: int = 10) -> np.ndarray:
    """Counts [true, predicted]."""
    flat = labels.long() * n_classes + predictions.long()
    return torch.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes).numpy()


# ---------------------------------------------------------------- results tables

def update_row(path: str | Path, row: dict, key: str = "dataset", order: tuple = ("mnist", "fmnist", "combined")) -> pd.DataFrame:
    """Replace (or add) the row of ``path`` whose ``key`` equals ``row[key]``; other rows are kept."""
    return update_rows(path, pd.DataFrame([row]), key, order)


# ---------------------------------------------------------------- figures

def plot_history(history: pd.DataFrame, title: str = ""):
    """Training curve: train and validation loss per epoch, restarts and LR decreases marked;
    for a VAE also the NLL and KL terms (unscaled)."""
    terms = [t for t in ("loss", "nll", "kl", "accuracy") if f"val_{t}" in history]
    fig, axes = plt.subplots(1, len(terms), figsize=(4.2 * len(terms), 3.2), squeeze=False)
    for ax, term in zip(axes[0], terms):
        ax.plot(history["epoch"], history[f"train_{term}"], label="train (dropout on)")
        ax.plot(history["epoch"], history[f"val_{term}"], label="validation")
        events = history["event"].fillna("").astype(str)
        for epoch in history["epoch"][events.str.contains("restart")]:
            ax.axvline(epoch, color="grey", lw=0.8, ls=":")
        for epoch in history["epoch"][events.str.contains("lr=")]:
            ax.axvline(epoch, color="red", lw=0.8, ls="--")
        ax.set(xlabel="epoch", title=term)
    axes[0][0].legend(fontsize=8, title="dotted: restart, dashed: LR lowered", title_fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_confusion(confusion: np.ndarray, class_names: list[str], title: str = ""):
    """Row-normalised confusion matrix (true class in rows), counts annotated off the diagonal."""
    import seaborn as sns

    rates = confusion / confusion.sum(axis=1, keepdims=True).clip(min=1)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    labels = np.where(np.eye(len(confusion), dtype=bool) | (confusion == 0), "", confusion.astype(str))
    sns.heatmap(rates, annot=labels, fmt="", cmap="Blues", vmin=0, vmax=1, ax=ax, cbar_kws={"label": "fraction of true class"},
                xticklabels=class_names, yticklabels=class_names, annot_kws={"fontsize": 7})
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.tight_layout()
    return fig
