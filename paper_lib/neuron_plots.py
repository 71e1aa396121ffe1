"""Figures and tables of the neuron statistics (section 4, 8.2, 8.3; Fig. 1D) for notebook 03."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from . import reference
from .neurons import NeuronStats


def plot_percent_active(ax, stats: NeuronStats, percentiles=(1, 15)) -> None:
    """Histogram of a_j over the alive units, with the low-active band of Algorithm 1 shaded."""
    a = stats.percent_active[stats.alive].numpy()
    ax.hist(a, bins=40, color="0.4")
    lo, hi = np.percentile(a, percentiles)
    ax.axvspan(lo, hi, color="tab:orange", alpha=0.3, label=f"{percentiles[0]}-{percentiles[1]}th percentile")
    ax.set_xlabel("percent activation $a_j$")
    ax.set_ylabel("units")
    ax.set_title(f"{stats.layer}: {stats.units} units, {stats.n_dead} dead")
    ax.legend(fontsize=8)


def cluster_order(stats: NeuronStats) -> torch.Tensor:
    """Alive units sorted by cluster, then by decreasing a_j within a cluster."""
    alive = stats.alive.nonzero().squeeze(1)
    key = stats.cluster[alive].double() * 2 - stats.percent_active[alive].double()  # a_j <= 1 keeps clusters apart
    return alive[key.argsort()]


def plot_correlation(ax, stats: NeuronStats) -> None:
    """The layer correlation matrix R of the alive units, ordered by spectral cluster, cluster edges marked."""
    order = cluster_order(stats)
    image = ax.imshow(stats.corr[order][:, order].numpy(), cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    edges = torch.nonzero(stats.cluster[order].diff()).squeeze(1).numpy() + 0.5
    for edge in edges:
        ax.axhline(edge, color="k", lw=0.5)
        ax.axvline(edge, color="k", lw=0.5)
    ax.set_title(f"R of {stats.layer}, alive units by cluster")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.figure.colorbar(image, ax=ax, fraction=0.046)


def cluster_class_activation(stats: NeuronStats, class_names: list[str]) -> pd.DataFrame:
    """Mean per-class percent activation of each cluster's units (clusters x classes): Fig. 1D."""
    rows = {f"cluster {c} ({int(members.sum())})": stats.class_percent_active[:, members].mean(1).numpy()
            for c in range(stats.n_clusters) for members in [stats.cluster == c]}
    return pd.DataFrame(rows, index=class_names).T


def plot_cluster_class_activation(ax, table: pd.DataFrame) -> None:
    image = ax.imshow(table.to_numpy(), cmap="viridis", aspect="auto", vmin=0)
    ax.set_xticks(range(table.shape[1]), table.columns, rotation=45, ha="right")
    ax.set_yticks(range(table.shape[0]), table.index)
    ax.set_title("class activation of neuronal clusters (cf. Fig. 1D)")
    ax.figure.colorbar(image, ax=ax, label="mean percent activation")


def counts_next_to_paper(dataset: str, stats_by_layer: dict[str, NeuronStats]) -> pd.DataFrame:
    """Our dead and off counts per decoder layer (from z outwards) beside section 8.3's layer 1, 2, 3 values."""
    dead = reference.table("dead_neurons").query("dataset == @dataset").set_index("paper_layer")["dead"]
    off = reference.table("off_neurons").query("dataset == @dataset").set_index("paper_layer")
    rows = []
    for number, (layer, stats) in enumerate(stats_by_layer.items(), start=1):
        paper_off = (f"{off.loc[number, 'off_mean']:.0f} ± {off.loc[number, 'off_std']:.0f}"
                     if number in off.index else "")
        rows.append({"layer": layer, "units": stats.units, "dead": stats.n_dead,
                     "off (mean ± std)": f"{stats.off_mean:.1f} ± {stats.off_std:.1f}", "paper layer": number,
                     "paper dead": dead.get(number, np.nan), "paper off": paper_off})
    return pd.DataFrame(rows)


def layer_matching_paper_off(dataset: str, stats_by_layer: dict[str, NeuronStats]) -> tuple[str, float, float]:
    """(our layer whose mean off count is closest to the paper's "layer 2" value, ours, the paper's)."""
    paper = float(reference.table("off_neurons").query("dataset == @dataset")["off_mean"].iloc[0])
    layer = min(stats_by_layer, key=lambda name: abs(stats_by_layer[name].off_mean - paper))
    return layer, stats_by_layer[layer].off_mean, paper
