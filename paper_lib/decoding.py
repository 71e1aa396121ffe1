"""Creative decoding on any generator (paper section 4, Algorithms 1 and 2, sections 8.2 and 8.10).

    stats = NeuronStats.load(stats_path(profile, "mnist", "decoder.relu3"), model=vae)   # paper_lib.neurons
    images = generate(vae, stats, "low_active", z, n_on=5, generator=torch.Generator().manual_seed(0))

A scheme (see :mod:`paper_lib.schemes`) is a pure edit of one layer's output; :func:`edit_layer` applies any
edit to any ``nn.Module`` layer by dotted name for the span of a ``with`` block. The layer comes from
``stats.layer``, and statistics computed for another model or layer are refused.

Baselines of section 8.10: :func:`interpolate` decodes the mean of k training encodings of k different
classes (k = 2: "2interp", the mid-point of a linear interpolation; k = 6: "6interp").
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .hooks import edit_layer, get_module
from .io import load_torch, save_torch
from .neurons import NeuronStats, model_device
from .schemes import OPTIONS, SCHEMES, Plan, SchemeEdit, apply_plan  # noqa: F401

PAPER_NAMES = {
    "regular": "regular",
    "noisy": "noise",
    "random": "rand",
    "low_active": "loact",
    "nonspecific": "ent",
    "correlation": "cor",
    "cluster": "clust",
    "multi_cluster": "3clust",
}
INTERPOLATIONS = {"2interp": 2, "6interp": 6}


def make_edit(stats: NeuronStats, scheme: str, n_on: int | float = 5, lam: float = 2.0, stat: str = "max",
              generator: torch.Generator | None = None, **options) -> SchemeEdit:
    """The edit ``h -> h'`` of ``scheme`` for the layer ``stats`` describes (options: ``schemes.OPTIONS``)."""
    return SchemeEdit(stats, scheme, n_on, lam, stat, generator, **options)


def _decoder(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    return model.decode if hasattr(model, "decode") else model


ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh)


def output_is_private(model: nn.Module, layer: str) -> bool:
    """True when, without autograd, ``layer``'s output is a new tensor that only the next layer reads: a
    non-inplace activation module with no other hooks. An edit may then write into it instead of copying
    it (a copy of a 10,000 x 1,000 batch costs about 2% of decoding it on a CPU)."""
    module = get_module(model, layer)
    return (isinstance(module, ACTIVATIONS) and not getattr(module, "inplace", False) and not module._forward_hooks
            and not module._forward_pre_hooks and not nn.modules.module._global_forward_hooks)


@torch.no_grad()
def decode_batches(model: nn.Module, z: torch.Tensor, batch: int = 4096) -> torch.Tensor:
    """``model.decode`` (or ``model``) of ``z`` in batches, flattened per sample, as CPU float32 [B, pixels]."""
    decode, device = _decoder(model), model_device(model)
    out = [decode(chunk.to(device)).reshape(len(chunk), -1).float().cpu() for chunk in z.split(batch)]
    return torch.cat(out) if out else torch.empty(0, 0)


def generate(model: nn.Module, stats: NeuronStats, scheme: str, z: torch.Tensor, n_on: int | float = 5,
             lam: float = 2.0, stat: str = "max", generator: torch.Generator | None = None, batch: int = 4096,
             **options) -> torch.Tensor:
    """Decode ``z`` with ``scheme`` applied at ``stats.layer``: images [B, pixels] (CPU float32).

    ``n_on`` units per sample (or a fraction), on value ``lam`` x the training ``stat`` ("max" | "mean").
    ``model`` is any generator with ``decode(z)`` (else ``model(z)``) in eval mode.
    """
    if model.training:
        raise ValueError("the model is in training mode (dropout would randomise decoding): call model.eval()")
    stats.check(model)
    edit = make_edit(stats, scheme, n_on, lam, stat, generator, **options)
    edit.inplace = output_is_private(model, stats.layer)  # decoding runs without autograd
    with edit_layer(model, stats.layer, edit):
        return decode_batches(model, z, batch)


def draw_distinct_classes(groups: torch.Tensor, k: int, n: int, generator: torch.Generator) -> torch.Tensor:
    """Indices [n, k]: per row, one random example from each of k different groups."""
    labels, counts = torch.unique(groups, return_counts=True)
    if k > len(labels):
        raise ValueError(f"interpolation between k={k} different classes needs k <= {len(labels)} classes "
                         f"(the groups hold {labels.tolist()})")
    by_group = torch.argsort(groups, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    chosen = torch.rand(n, len(labels), generator=generator).topk(k, dim=1).indices
    offset = torch.floor(torch.rand(n, k, generator=generator) * counts[chosen]).long()
    return by_group[starts[chosen] + offset]


def interpolation_classes(split) -> torch.Tensor:
    """Classes for the interpolation baselines: the digit or fashion class, kept apart across the two sources
    of the combined data (so "different classes" never pairs digit 3 with fashion class 3 as the same)."""
    return split.labels + 10 * split.source


@torch.no_grad()
def interpolate(vae: nn.Module, mu: torch.Tensor, groups: torch.Tensor, k: int, n: int,
                generator: torch.Generator | None = None, batch: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """The 2interp / 6interp baselines (8.10): decode the mean of k training encodings ``mu`` of k different
    classes (``groups``), n times. Returns (images [n, pixels], z [n, z_dim])."""
    if len(mu) != len(groups):
        raise ValueError(f"mu ({len(mu)}) and groups ({len(groups)}) must have one row per training example")
    if k < 2 or n < 1:
        raise ValueError(f"need k >= 2 encodings to interpolate and n >= 1 samples, got k={k}, n={n}")
    generator = generator if generator is not None else torch.default_generator
    z = mu[draw_distinct_classes(torch.as_tensor(groups).cpu(), k, n, generator)].mean(1)
    return decode_batches(vae, z, batch), z


@torch.no_grad()
def interpolation_path(vae: nn.Module, z_from: torch.Tensor, z_to: torch.Tensor, steps: int = 8) -> torch.Tensor:
    """Images along the straight line from ``z_from`` to ``z_to`` (Fig. 12): [steps, pixels]."""
    t = torch.linspace(0, 1, steps).unsqueeze(1)
    return decode_batches(vae, (1 - t) * z_from.cpu() + t * z_to.cpu())


def save_samples(path: str | Path, images: torch.Tensor, z: torch.Tensor, **meta) -> Path:
    """A sample set: images [N, pixels], z [N, z_dim] (both float32) and metadata (plain values: scheme,
    n_on, lam, layer, seed, ...), written atomically."""
    if len(images) != len(z):
        raise ValueError(f"images ({len(images)}) and z ({len(z)}) must pair up row by row")
    reserved = {"images", "z"} & set(meta)
    if reserved:
        raise ValueError(f"metadata keys {sorted(reserved)} are reserved")
    return save_torch({"images": images.detach().cpu().float(), "z": z.detach().cpu().float(), "meta": meta}, path)


def load_samples(path: str | Path) -> dict:
    """``dict(images float32 [N, pixels], z [N, z_dim], **meta)`` as written by :func:`save_samples`."""
    payload = load_torch(path, "sample set", "run notebooks/04_creative_decoding.ipynb")
    return {"images": payload["images"].float(), "z": payload["z"], **payload["meta"]}


__all__ = ["SCHEMES", "PAPER_NAMES", "OPTIONS", "INTERPOLATIONS", "make_edit", "edit_layer", "generate",
           "decode_batches", "draw_distinct_classes", "interpolation_classes", "interpolate", "interpolation_path",
           "save_samples", "load_samples", "Plan", "apply_plan"]
