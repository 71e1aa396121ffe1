"""Per-neuron statistics of one layer over the training encodings (paper section 4 "Preliminaries", 8.2, 8.3).

For layer k and training encodings z_i, with d_ji the output of unit j for z_i:

- percent activation a_j = (1/n) sum_i 1[d_ji > tau], tau = 1e-7 (ReLU); dead units have a_j = 0 and are
  never manipulated;
- each unit's max, mean and std of d_ji, the layer correlation matrix R_jh = C_jh / sqrt(C_jj C_hh);
- per-class percent activation (classes: digits / fashion labels; for the combined data the source dataset)
  and its entropy across classes (bits), used by the non-specific low-active scheme;
- spectral clusters of R (section 8.2, clustering method; Fig. 1D);
- the number of "off" (non-dead, inactive) units per sample, mean and std (section 8.3).

Saved statistics carry a fingerprint of the model's weights: statistics of another model, or of the same
model after more training, are refused (:meth:`NeuronStats.check`), as are statistics of another layer.

Activations are recorded with a forward hook while the inputs stream through in batches; memory holds
only running sums (counts, sums, the p x p sum of outer products, max, per-group counts), never the
activations of the whole set.

Choices where the paper is silent (all parameters of :func:`layer_stats`):

- a unit whose activation is constant over the data (dead units included) has no defined correlation:
  its row and column of R are set to 0 (the diagonal too);
- convolutional layers (output B x C x H x W): the units are channels, and a channel's activation for a
  sample is its spatially pooled map, ``pool="mean"`` by default (``"max"`` optional): a channel is on when
  its pooled activation exceeds tau (for ReLU maps, when some position fires), and max, mean and R are those
  of the pooled activations;
- spectral clustering on the alive units with the precomputed affinity ``(R + 1) / 2``
  (``affinity="shift"``, keeps anti-correlated units apart) or ``|R|`` (``"abs"``), 10 clusters by
  default; clusters are numbered by increasing mean percent activation; dead units get cluster -1.
"""

from __future__ import annotations

import hashlib
import warnings
import weakref
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .config import results_path
from .hooks import get_module, layer_output
from .io import load_torch, save_torch

TAU = 1e-7
POOLS = ("mean", "max")
AFFINITIES = ("shift", "abs")
FORMAT = 1


def unit_activations(h: torch.Tensor, pool: str = "mean") -> torch.Tensor:
    """A layer's output as B x units: dense outputs as they are, conv maps pooled over space per channel."""
    if h.dim() == 2:
        return h
    if h.dim() < 2:
        raise ValueError(f"a layer output needs a batch and a unit dimension, got shape {tuple(h.shape)}")
    if pool not in POOLS:
        raise ValueError(f"unknown pool {pool!r}: choose one of {list(POOLS)}")
    flat = h.flatten(2)
    return flat.mean(2) if pool == "mean" else flat.amax(2)


_FINGERPRINTS: "weakref.WeakKeyDictionary[nn.Module, tuple]" = weakref.WeakKeyDictionary()


def model_fingerprint(model: nn.Module) -> str:
    """sha1 of the model's parameter and buffer names, shapes and values (cached until a tensor changes)."""
    tensors = model.state_dict(keep_vars=True)
    key = tuple((name, t.data_ptr(), t._version, tuple(t.shape)) for name, t in tensors.items())
    cached = _FINGERPRINTS.get(model)
    if cached is not None and cached[0] == key:
        return cached[1]
    digest = hashlib.sha1(type(model).__name__.encode())
    for name, t in tensors.items():
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        digest.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    _FINGERPRINTS[model] = (key, digest.hexdigest())
    return _FINGERPRINTS[model][1]


def model_device(model: nn.Module) -> torch.device:
    """Where the model's weights live (the CPU for a model without any)."""
    tensor = next(model.parameters(), None)
    tensor = tensor if tensor is not None else next(model.buffers(), None)
    return tensor.device if tensor is not None else torch.device("cpu")


@dataclass
class NeuronStats:
    """Everything the decoding schemes need about one layer, computed once and cached."""

    layer: str
    units: int
    tau: float
    n_samples: int
    percent_active: torch.Tensor  # [p] a_j
    dead: torch.Tensor  # [p] bool, a_j == 0
    max: torch.Tensor  # [p]
    mean: torch.Tensor  # [p]
    std: torch.Tensor  # [p]
    corr: torch.Tensor  # [p, p] R, rows/columns of constant units are 0
    class_percent_active: torch.Tensor  # [G, p]
    class_entropy: torch.Tensor  # [p] bits, entropy of class_percent_active[:, j] normalised over classes
    cluster: torch.Tensor  # [p] int64, -1 for dead units
    group_counts: torch.Tensor  # [G] samples per class
    off_mean: float  # off (non-dead, inactive) units per sample
    off_std: float
    pool: str  # "none" for dense layers, else the spatial pooling of conv channels
    n_clusters: int
    affinity: str
    fingerprint: str  # model_fingerprint of the model the statistics were computed on

    @property
    def alive(self) -> torch.Tensor:
        return ~self.dead

    @property
    def n_dead(self) -> int:
        return int(self.dead.sum())

    def check(self, model: nn.Module, layer: str | None = None) -> "NeuronStats":
        """Refuse statistics computed for another layer or another model (weights), with the fix."""
        if layer is not None and layer != self.layer:
            raise ValueError(f"these statistics describe layer {self.layer!r}, not {layer!r}: compute them for "
                             f"{layer!r} with layer_stats(model, {layer!r}, ...)")
        get_module(model, self.layer)
        if model_fingerprint(model) != self.fingerprint:
            raise ValueError(f"these statistics of {self.layer!r} were computed on another model (fingerprint "
                             f"{self.fingerprint[:10]}, this model {model_fingerprint(model)[:10]}): recompute them "
                             "with layer_stats on this model (rerun notebooks/03_neuron_stats.ipynb)")
        return self

    def save(self, path: str | Path) -> Path:
        return save_torch({"format": FORMAT, **asdict(self)}, path)

    @classmethod
    def load(cls, path: str | Path, model: nn.Module | None = None, layer: str | None = None) -> "NeuronStats":
        """Read saved statistics; with ``model`` (and ``layer``) given, check they belong to it."""
        payload = load_torch(path, "neuron statistics", "run notebooks/03_neuron_stats.ipynb (or layer_stats)")
        names = [f.name for f in fields(cls)]
        if payload.get("format") != FORMAT or set(names) - set(payload):
            raise ValueError(f"{path} is not a neuron-statistics file of format {FORMAT}: delete it and recompute")
        stats = cls(**{name: payload[name] for name in names})
        return stats.check(model, layer) if model is not None else stats


class StreamingMoments:
    """Running sums over batches of unit activations u (B x p) and group ids (B)."""

    def __init__(self, units: int, n_groups: int, tau: float, device: torch.device):
        kw = dict(dtype=torch.float64, device=device)
        self.tau, self.n, self.shift = tau, 0, None
        self.active = torch.zeros(units, **kw)
        self.sum = torch.zeros(units, **kw)  # of u - shift (shifted sums keep float64 cancellation small)
        self.outer = torch.zeros(units, units, **kw)
        self.max = torch.full((units,), -torch.inf, **kw)
        self.group_active = torch.zeros(n_groups, units, **kw)
        self.group_n = torch.zeros(n_groups, **kw)
        self.count_sum = self.count_sq = 0.0  # per-sample number of active units

    def update(self, u: torch.Tensor, groups: torch.Tensor) -> None:
        on = u > self.tau
        u = u.double()
        if self.shift is None:
            self.shift = u.mean(0)
        x = u - self.shift
        self.n += len(u)
        self.sum += x.sum(0)
        self.outer += x.T @ x
        self.max = torch.maximum(self.max, u.amax(0))
        self.active += on.sum(0)
        self.group_active.index_add_(0, groups, on.double())
        self.group_n += torch.bincount(groups, minlength=len(self.group_n)).double()
        counts = on.sum(1).double()
        self.count_sum += float(counts.sum())
        self.count_sq += float((counts * counts).sum())

    def correlation(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(mean, std, R) with population moments; constant units get zero rows and columns in R."""
        m = self.sum / self.n
        cov = self.outer / self.n - torch.outer(m, m)
        var = cov.diagonal().clamp_min(0)
        mean = self.shift + m
        constant = var <= 1e-12 * (var + mean * mean)
        std = var.sqrt()
        scale = torch.where(constant, torch.ones_like(std), std)
        corr = (cov / torch.outer(scale, scale)).clamp(-1, 1)
        corr[constant] = 0
        corr[:, constant] = 0
        corr.diagonal().copy_((~constant).double())
        return mean, std, corr


def class_entropy(class_percent_active: torch.Tensor) -> torch.Tensor:
    """Entropy (bits) of each unit's per-class percent activation normalised to sum 1; 0 for dead units."""
    cpa = class_percent_active.double()
    q = cpa / cpa.sum(0, keepdim=True).clamp_min(1e-300)
    return -(q * torch.log2(q.clamp_min(1e-300))).sum(0)


def cluster_units(corr: torch.Tensor, percent_active: torch.Tensor, alive: torch.Tensor,
                  n_clusters: int = 10, affinity: str = "shift", seed: int = 0) -> tuple[torch.Tensor, int]:
    """Spectral clusters of the alive units' correlation (section 8.2), numbered by increasing mean a_j.

    Returns (labels [p] with -1 for dead units, number of clusters used = min(n_clusters, alive units)).
    """
    if affinity not in AFFINITIES:
        raise ValueError(f"unknown affinity {affinity!r}: choose one of {list(AFFINITIES)}")
    idx = alive.nonzero().squeeze(1)
    labels = torch.full((len(alive),), -1, dtype=torch.long)
    k = min(n_clusters, len(idx))
    if k < n_clusters:
        warnings.warn(f"only {len(idx)} alive units: using {k} clusters instead of {n_clusters}")
    if k == 0:
        return labels, 0
    if k == 1 or k == len(idx):  # one cluster, or one unit per cluster: nothing to cluster
        found = torch.zeros(len(idx), dtype=torch.long) if k == 1 else torch.arange(k)
    else:
        from sklearn.cluster import SpectralClustering  # imported here: decoding alone does not need scikit-learn

        r = corr[idx][:, idx].double().numpy()
        weights = (r + 1) / 2 if affinity == "shift" else np.abs(r)
        np.fill_diagonal(weights, 1.0)
        found = SpectralClustering(k, affinity="precomputed", random_state=seed).fit_predict(weights)
        found = torch.as_tensor(found, dtype=torch.long)
    activity = torch.stack([percent_active[idx][found == c].mean() for c in range(k)])
    rank = torch.empty(k, dtype=torch.long)
    rank[activity.argsort(stable=True)] = torch.arange(k)
    labels[idx] = rank[found]
    return labels, k


@torch.no_grad()
def layer_stats(model: nn.Module, layer: str, inputs: torch.Tensor, groups: torch.Tensor | None = None,
                forward: Callable | None = None, batch: int = 1024, tau: float = TAU, pool: str = "mean",
                n_clusters: int = 10, affinity: str = "shift", seed: int = 0, n_groups: int | None = None,
                progress: bool = True) -> NeuronStats:
    """Statistics of ``layer`` over ``inputs`` streamed in batches through ``forward`` (default ``model``).

    ``groups`` (int64 [N], values 0..G-1) are the classes for the per-class statistics (None: one group).
    For a VAE decoder: ``layer_stats(vae, "decoder.relu3", mu_train, split.groups, forward=vae.decode)``.
    """
    if model.training:
        raise ValueError("the model is in training mode (dropout would randomise the statistics): call model.eval()")
    if len(inputs) == 0:
        raise ValueError("no inputs: pass the training encodings (N x z)")
    groups = torch.zeros(len(inputs), dtype=torch.long) if groups is None else torch.as_tensor(groups).long()
    if len(groups) != len(inputs) or groups.min() < 0:
        raise ValueError(f"groups must be {len(inputs)} ids >= 0, one per input; got {len(groups)} "
                         f"(min {int(groups.min())})")
    n_groups = int(groups.max()) + 1 if n_groups is None else n_groups
    device = model_device(model)
    moments = None
    for start in tqdm(range(0, len(inputs), batch), desc=f"stats {layer}", disable=not progress, leave=False):
        h = layer_output(model, layer, inputs[start:start + batch].to(device), forward)
        u = unit_activations(h, pool)
        if moments is None:
            moments = StreamingMoments(u.shape[1], n_groups, tau, u.device)
        moments.update(u, groups[start:start + batch].to(u.device))
    mean, std, corr = (t.cpu() for t in moments.correlation())
    percent_active = (moments.active / moments.n).cpu()
    dead = moments.active.cpu() == 0
    class_pa = (moments.group_active / moments.group_n.clamp_min(1)[:, None]).cpu()
    labels, k = cluster_units(corr, percent_active, ~dead, n_clusters, affinity, seed)
    count_mean = moments.count_sum / moments.n
    count_var = max(moments.count_sq / moments.n - count_mean**2, 0.0)
    return NeuronStats(
        layer=layer, units=len(dead), tau=tau, n_samples=moments.n,
        percent_active=percent_active.float(), dead=dead, max=moments.max.cpu().float(), mean=mean.float(),
        std=std.float(), corr=corr.float(), class_percent_active=class_pa.float(),
        class_entropy=class_entropy(class_pa).float(), cluster=labels, group_counts=moments.group_n.cpu().long(),
        off_mean=float((~dead).sum()) - count_mean, off_std=count_var**0.5,
        pool="none" if h.dim() == 2 else pool, n_clusters=k, affinity=affinity,
        fingerprint=model_fingerprint(model),
    )


@torch.no_grad()
def off_counts(model: nn.Module, stats: NeuronStats, inputs: torch.Tensor, forward: Callable | None = None,
               batch: int = 4096) -> torch.Tensor:
    """Number of off (non-dead, inactive) units of ``stats.layer`` for each input, e.g. prior samples z ~ N(0, I)."""
    stats.check(model)
    device, alive = model_device(model), stats.alive
    pool = "mean" if stats.pool == "none" else stats.pool
    out = []
    for start in range(0, len(inputs), batch):
        u = unit_activations(layer_output(model, stats.layer, inputs[start:start + batch].to(device), forward), pool)
        out.append(((u.cpu() <= stats.tau) & alive).sum(1))
    return torch.cat(out)


def stats_path(profile, dataset: str, layer: str) -> Path:
    """Where a dataset's statistics of ``layer`` are cached: ``results/<profile>/stats/<dataset>_<layer>.pt``."""
    return results_path(profile, "stats", f"{dataset}_{layer}.pt")


def _same_settings(stats: NeuronStats, n_inputs: int, tau: float = TAU, pool: str = "mean", n_clusters: int = 10,
                   affinity: str = "shift", **_) -> bool:
    return (stats.n_samples == n_inputs and stats.tau == tau and stats.affinity == affinity
            and stats.pool in ("none", pool) and stats.n_clusters == min(n_clusters, int(stats.alive.sum())))


def cached_layer_stats(path: str | Path, model: nn.Module, layer: str, inputs: torch.Tensor,
                       groups: torch.Tensor | None = None, **options) -> NeuronStats:
    """The statistics saved at ``path`` if they belong to this model and layer and were computed from as many
    inputs with the same settings; otherwise :func:`layer_stats` (with ``options``), saved to ``path``."""
    path = Path(path)
    if path.exists():
        try:
            stats = NeuronStats.load(path, model, layer)
            if _same_settings(stats, len(inputs), **options):
                return stats
            print(f"recomputing {path.name}: it was computed with other settings or inputs")
        except ValueError as exc:
            print(f"recomputing {path.name}: {exc}")
    stats = layer_stats(model, layer, inputs, groups, **options)
    stats.save(path)
    return stats


def counts_row(dataset: str, stats: NeuronStats) -> dict:
    """One row of ``neuron_counts.csv``: dataset, layer, units, dead, off_mean, off_std (section 8.3)."""
    return {"dataset": dataset, "layer": stats.layer, "units": stats.units, "dead": stats.n_dead,
            "off_mean": round(stats.off_mean, 2), "off_std": round(stats.off_std, 2)}
