"""Exact k-nearest-neighbour novelty (paper section 3, "k-Novelty score"), batched with torch.

    index = NeighbourIndex(train_images)            # reference set on config.device()
    scores = index.novelty(generated, ks=(1, 5))    # {"1nn", "1nn_norm", "5nn", "5nn_norm"}

Distances are l2. Squared distances come from one matrix product per chunk of queries,
``|x|^2 - 2 x.r + |r|^2``, followed by ``topk``; the k winners' distances are then recomputed
directly from their differences, so an exact duplicate of a reference point gets distance 0
(the matrix-product form loses about 1e-3 to cancellation in float32).

kNS (section 3): "the normalized distance to its kth nearest neighbor (denoted as kNN(.))",
kNS = d(x, kNN(x)) / d(kNN(x), kNN(kNN(x))), where "for k > 1, d accounts for the expected distance
to the kth nearest neighbor". We read kNN(x) as the single k-th nearest reference point n_k(x) and d
as the mean distance to the k nearest reference points:

    kNN distance  D_k(x) = (1/k) sum_{j<=k} d(x, n_j(x))
    kNS           D_k(x) / D_k(n_k(x))      (for a reference point, its neighbours exclude itself)

For k = 1 this is exactly the paper's d(x, 1NN(x)) / d(1NN(x), 1NN(1NN(x))). The reference points'
own D_k are computed only for the points that turn up as some query's n_k, once, and cached.
"""

from __future__ import annotations

import torch

from .config import device as default_device

CHUNK_ELEMENTS = 2**26  # distance-matrix entries per chunk (256 MB of float32)


def check_points(x, name: str, dim: int | None = None) -> torch.Tensor:
    """``x`` as a float32 [N, D] CPU tensor; refuse non-2-D, empty, non-finite or wrong-width input."""
    x = torch.as_tensor(x)
    if x.dim() != 2:
        raise ValueError(f"{name} must be a 2-D array [samples, features], got shape {tuple(x.shape)}")
    if len(x) == 0:
        raise ValueError(f"{name} is empty: at least one sample is needed")
    if dim is not None and x.shape[1] != dim:
        raise ValueError(f"{name} has {x.shape[1]} features per sample but the reference has {dim}: "
                         "compare images with images and encodings with encodings of the same model")
    x = x.detach().float().cpu()
    if not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).any(1).sum())
        raise ValueError(f"{name} holds NaN or infinite values in {bad} of {len(x)} samples")
    return x


def _exclude_self(dist: torch.Tensor, idx: torch.Tensor, self_idx: torch.Tensor, k: int):
    """Drop each row's own index from k + 1 neighbours (the farthest one if the row lacks it)."""
    drop = idx == self_idx[:, None]
    drop[~drop.any(1), -1] = True
    keep = ~drop
    return dist[keep].reshape(len(idx), k), idx[keep].reshape(len(idx), k)


class NeighbourIndex:
    """Exact l2 nearest neighbours of queries among a fixed reference set (e.g. the training images)."""

    def __init__(self, reference, max_k: int = 5, device: torch.device | str | None = None):
        reference = check_points(reference, "reference set")
        if not 1 <= max_k < len(reference):
            raise ValueError(f"max_k must be between 1 and {len(reference) - 1} (reference size - 1), got {max_k}")
        self.device = torch.device(device) if device is not None else default_device()
        self.reference = reference.to(self.device)
        self.sq_norms = self.reference.pow(2).sum(1)
        self.max_k, self.dim = max_k, reference.shape[1]
        # Each reference point's distances to its max_k nearest other reference points (NaN: not yet needed).
        self._own = torch.full((len(reference), max_k), float("nan"))

    def __len__(self) -> int:
        return len(self.reference)

    @torch.no_grad()
    def search(self, queries, k: int, self_index: torch.Tensor | None = None, progress=None):
        """Distances [N, k] (ascending) and indices [N, k] of each query's k nearest reference points.

        ``self_index`` [N]: the reference index each query is (excluded from its own neighbours).
        ``progress``: an optional tqdm bar advanced by the number of queries done.
        """
        queries = check_points(queries, "queries", self.dim)
        if not 1 <= k <= self.max_k:
            raise ValueError(f"k must be between 1 and max_k={self.max_k}, got {k}")
        extra = 0 if self_index is None else 1
        chunk = max(1, CHUNK_ELEMENTS // len(self.reference))
        dists, indices = [], []
        for start in range(0, len(queries), chunk):
            x = queries[start:start + chunk].to(self.device)
            sq = torch.addmm(self.sq_norms, x, self.reference.T, alpha=-2.0)  # |r|^2 - 2 x.r (|x|^2: constant per row)
            idx = sq.topk(k + extra, dim=1, largest=False).indices
            dist = (x[:, None, :] - self.reference[idx]).pow(2).sum(-1).sqrt()
            if extra:
                dist, idx = _exclude_self(dist, idx, self_index[start:start + chunk].to(self.device), k)
            dist, order = dist.sort(dim=1)
            dists.append(dist.cpu())
            indices.append(idx.gather(1, order).cpu())
            if progress is not None:
                progress.update(len(x))
        return torch.cat(dists), torch.cat(indices)

    def own_distances(self, idx: torch.Tensor) -> torch.Tensor:
        """[len(idx), max_k] distances of reference points ``idx`` to their nearest other reference points."""
        idx = torch.as_tensor(idx, dtype=torch.long).cpu()
        missing = torch.unique(idx[torch.isnan(self._own[idx, 0])])
        if len(missing):
            self._own[missing] = self.search(self.reference[missing].cpu(), self.max_k, self_index=missing)[0]
        return self._own[idx]

    def novelty(self, queries, ks=(1, 5), progress=None) -> dict[str, torch.Tensor]:
        """For each k: ``"{k}nn"`` = D_k(x), the mean distance to the k nearest reference points, and
        ``"{k}nn_norm"`` = D_k(x) / D_k(n_k(x)), kNS (module docstring)."""
        if not ks or max(ks) > self.max_k or min(ks) < 1:
            raise ValueError(f"ks must be between 1 and max_k={self.max_k}, got {ks}")
        dist, idx = self.search(queries, max(ks), progress=progress)
        out = {}
        for k in ks:
            d_k = dist[:, :k].mean(1)
            out[f"{k}nn"] = d_k
            denominator = self.own_distances(idx[:, k - 1])[:, :k].mean(1)
            if (denominator == 0).any():
                raise ValueError("the reference set holds exact duplicates, so kNS divides by 0: deduplicate it "
                                 "(torch.unique(reference, dim=0))")
            out[f"{k}nn_norm"] = d_k / denominator
        return out
