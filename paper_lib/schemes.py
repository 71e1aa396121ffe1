"""The creative decoding schemes as pure, batch-vectorised edits of one layer's activations (paper section 4,
Algorithms 1 and 2, section 8.2).

A scheme sees only a layer output h (B x p, or B x C x H x W for a conv layer, whose units are channels),
the layer's :class:`~paper_lib.neurons.NeuronStats` and a ``torch.Generator``; it never knows the model.
Each sample's off units are those with d_jz <= tau; dead units are never touched. A unit turned on is set
to o_j = lam * s_j, s the training max (default) or mean (section 4, "Neuron flipping"); for a conv layer
the whole channel map is set to the constant o_j, so the channel's pooled activation becomes o_j.

Per-sample selection is tensor work over the scheme's candidate units (random keys + top-k, gathers of
precomputed correlation rows), never a Python loop over samples: the overhead is O(p log p) per sample at
worst, as section 8.2 ("Complexity") argues.

Choices where the paper is silent (parameters, with defaults):

- ``n_on``: an int n (default 5 in :func:`~paper_lib.decoding.generate`) or a fraction rho in (0, 1):
  rho times the scheme's reference set, floored per sample (Algorithm 1: the sample's pool |S|;
  Algorithm 2: the active set |A|; noisy: the alive units; random and clusters: the off units |D|).
- A sample whose candidates (pool units off in that sample) are fewer than n gets all of them, and a
  warning (shown once) says so; n larger than the scheme's whole pool, which no sample could meet, is a
  ValueError that names the pool size.
- noisy: Gaussian noise of std ``noise_scale`` x (the unit's training std) added to n random alive units
  (on or off); on a conv layer the same noise value is added to the whole channel map.
- low_active: the pool is the alive units whose a_j lies between the 1st and 15th percentiles
  (``percentiles=(1, 15)``) of a_j over the *alive* units (dead units would otherwise fill the low
  percentiles); the seed unit and the n-1 pool units most correlated with it must be off in the sample.
- nonspecific: the pool is the alive units with per-class percent activation < ``max_class_active`` (15%) in
  every class and class entropy in the top ``entropy_top`` (30%) of the alive units. Section 8.2 first says
  "entropy below a threshold" and then "high entropy (in the top 30%)"; we follow the latter, which is the
  number given. A layer denser than the paper's can leave this pool nearly empty; then the per-class
  threshold is raised until the pool holds ``min_pool`` (25) units, with a warning (``min_pool=0``: strict).
  Selection inside the pool is the low-active one (seed, then most correlated).
- correlation: the seed is drawn among the ``kappa`` |D| (default 15%, at least one) off units with the
  smallest gamma; ``turn_off=True`` also sets to 0 as many active units, those with the largest gamma
  (most correlated with the sample's active group).
- cluster / multi_cluster: clusters are ranked per sample by the share of their alive units that are on
  (ties broken at random); units are drawn uniformly from the off units of the least active cluster
  (``clusters_on`` = 1) or of the union of the 3 least active clusters, spilling over to the next
  clusters when these hold fewer than n off units.
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass

import torch

from .neurons import NeuronStats, unit_activations

SCHEMES = ("regular", "noisy", "random", "low_active", "nonspecific", "correlation", "cluster", "multi_cluster")
OPTIONS = {
    "regular": {},
    "noisy": {"noise_scale": 1.0},
    "random": {},
    "low_active": {"percentiles": (1.0, 15.0)},
    "nonspecific": {"max_class_active": 0.15, "entropy_top": 0.30, "min_pool": 25},
    "correlation": {"kappa": 0.15, "turn_off": False},
    "cluster": {"clusters_on": 1},
    "multi_cluster": {"clusters_on": 3},
}
STATISTICS = ("max", "mean")


@dataclass
class Plan:
    """Per sample, the units an edit changes: ``index`` [B, k], ``valid`` [B, k] and the new ``value`` (or,
    when ``add``, the increment)."""

    index: torch.Tensor
    valid: torch.Tensor
    value: torch.Tensor
    add: bool = False

    def chosen(self) -> list[list[int]]:
        """The changed units of each sample (for inspection and tests)."""
        return [row[ok].tolist() for row, ok in zip(self.index.cpu(), self.valid.cpu())]


def apply_plan(h: torch.Tensor, plan: Plan, inplace: bool = False) -> torch.Tensor:
    """A copy of ``h`` (or ``h`` itself, ``inplace``) with the plan's units set (or incremented); a conv
    channel's whole map changes.

    A plan's units are distinct within a sample, so one scatter writes them all (invalid entries rewrite
    the value they already hold)."""
    spatial = [1] * (h.dim() - 2)
    shape = (*plan.index.shape, *h.shape[2:])
    index = plan.index.view(*plan.index.shape, *spatial).expand(shape)
    current = h.gather(1, index)
    value = plan.value.to(h.dtype).view(*plan.index.shape, *spatial)
    new = torch.where(plan.valid.view(*plan.index.shape, *spatial), current + value if plan.add else value, current)
    return h.scatter_(1, index, new) if inplace else h.scatter(1, index, new)


def low_active_pool(stats: NeuronStats, percentiles=(1.0, 15.0)) -> torch.Tensor:
    """Alive units whose a_j lies between the given percentiles of a_j over alive units (Algorithm 1)."""
    lo, hi = percentiles
    if not 0 <= lo <= hi <= 100:
        raise ValueError(f"percentiles must satisfy 0 <= low <= high <= 100, got {percentiles}")
    a = stats.percent_active.double()
    q = torch.quantile(a[stats.alive], torch.tensor([lo, hi], dtype=torch.float64) / 100)
    return stats.alive & (a >= q[0]) & (a <= q[1])


def nonspecific_pool(stats: NeuronStats, max_class_active: float = 0.15, entropy_top: float = 0.30,
                     min_pool: int = 25) -> torch.Tensor:
    """Alive units below ``max_class_active`` in every class and in the top ``entropy_top`` class entropy (8.2).

    When fewer than ``min_pool`` units pass, the per-class threshold is raised just enough: the pool becomes
    the ``min_pool`` high-entropy units with the lowest maximum per-class activation (with a warning that
    gives the threshold reached). 25 is the largest n of the paper's sweep (section 8.9); 0 keeps the
    paper's criterion strictly.
    """
    if not 0 < entropy_top <= 1:
        raise ValueError(f"entropy_top must be in (0, 1], got {entropy_top}")
    entropy = stats.class_entropy.double()
    high = stats.alive & (entropy >= torch.quantile(entropy[stats.alive], 1 - entropy_top))
    peak = stats.class_percent_active.amax(0).double()
    pool = high & (peak < max_class_active)
    if int(pool.sum()) < min_pool:
        ranked = torch.where(high, peak, torch.inf).argsort(stable=True)[:min(min_pool, int(high.sum()))]
        widened = torch.zeros_like(pool)
        widened[ranked] = True
        warnings.warn(f"non-specific pool of {stats.layer!r}: {int(pool.sum())} units are below "
                      f"{max_class_active:.0%} in every class; widened to the {int(widened.sum())} high-entropy units "
                      f"with the lowest per-class activation (up to {float(peak[ranked].max()):.1%})")
        pool = widened
    return pool


class SchemeEdit:
    """``edit(h) -> h'`` for one scheme; ``select(h)`` returns the :class:`Plan` it applies.

    ``edit(h)`` returns a new tensor; with ``inplace = True`` it writes into ``h`` instead (for a caller that
    knows nobody else holds ``h``, see :func:`paper_lib.decoding.generate`).
    """

    inplace = False

    def __init__(self, stats: NeuronStats, scheme: str, n_on: int | float = 5, lam: float = 2.0, stat: str = "max",
                 generator: torch.Generator | None = None, **options):
        if scheme not in SCHEMES:
            raise ValueError(f"unknown scheme {scheme!r}: choose one of {list(SCHEMES)}")
        unknown = set(options) - set(OPTIONS[scheme])
        if unknown:
            raise TypeError(f"scheme {scheme!r} has no option(s) {sorted(unknown)}; "
                            f"its options: {OPTIONS[scheme] or 'none'}")
        if stat not in STATISTICS:
            raise ValueError(f"unknown stat {stat!r}: choose one of {list(STATISTICS)}")
        if not (isinstance(lam, (int, float)) and math.isfinite(lam) and lam >= 0):
            raise ValueError(f"lam scales the training {stat} to the on value (section 4): it must be >= 0, got {lam}")
        fraction = isinstance(n_on, float) and 0 < n_on < 1
        whole = isinstance(n_on, numbers.Real) and float(n_on).is_integer() and n_on >= 1
        if isinstance(n_on, bool) or not (fraction or whole):
            raise ValueError(f"n_on must be an int >= 1 or a fraction in (0, 1), got {n_on!r}")
        self.stats, self.scheme, self.lam, self.stat = stats, scheme, float(lam), stat
        self.n_on = n_on if fraction else int(n_on)
        self.generator = generator if generator is not None else torch.default_generator
        self.options = {**OPTIONS[scheme], **options}
        self._check_options()
        self.pool = self._pool()
        if scheme != "regular":
            size = int(self.pool.sum())
            if size == 0:
                raise ValueError(f"scheme {scheme!r} finds no candidate units in {stats.layer!r} with options "
                                 f"{self.options}: widen the pool or choose another scheme")
            if not fraction and self.n_on > size:
                raise ValueError(f"scheme {scheme!r} can choose among {size} units of {stats.layer!r} but n_on={n_on}: "
                                 f"use n_on <= {size} or widen the pool (options {self.options})")
        self._static: dict = {}

    def _check_options(self) -> None:
        o = self.options
        in_range = {
            "noise_scale": lambda v: v >= 0, "kappa": lambda v: 0 < v <= 1, "clusters_on": lambda v: v >= 1,
            "min_pool": lambda v: v >= 0, "max_class_active": lambda v: 0 < v <= 1,
        }
        for name, ok in in_range.items():
            if name in o and not ok(o[name]):
                raise ValueError(f"option {name}={o[name]!r} of scheme {self.scheme!r} is out of range "
                                 "(noise_scale >= 0, 0 < kappa <= 1, clusters_on >= 1, min_pool >= 0, "
                                 "0 < max_class_active <= 1)")

    def _pool(self) -> torch.Tensor:
        if self.scheme == "low_active":
            return low_active_pool(self.stats, self.options["percentiles"])
        if self.scheme == "nonspecific":
            return nonspecific_pool(self.stats, **self.options)
        return self.stats.alive.clone()

    def _on(self, device: torch.device) -> dict:
        """The scheme's static tensors (pool columns, their correlations, on values) on ``device``, cached."""
        if device not in self._static:
            s = self.stats
            cols = self.pool.nonzero().squeeze(1)
            source = s.max if self.stat == "max" else s.mean
            self._static[device] = {
                "cols": cols.to(device),
                "corr": s.corr[cols][:, cols].to(device),
                "on": (self.lam * source[cols]).to(device),
                "std": s.std[cols].to(device),
                "cluster": s.cluster[cols].to(device),
            }
        return self._static[device]

    def _rand(self, *shape: int, device: torch.device, normal: bool = False) -> torch.Tensor:
        draw = torch.randn if normal else torch.rand
        return draw(shape, generator=self.generator, device=self.generator.device).to(device)

    def _limit(self, reference: torch.Tensor) -> torch.Tensor:
        """Units to change per sample: n, or floor(rho * |reference set|)."""
        if isinstance(self.n_on, int):
            return torch.full_like(reference, self.n_on)
        return torch.floor(self.n_on * reference.double()).long()

    def _top(self, score: torch.Tensor, limit: torch.Tensor, available: torch.Tensor, largest: bool = True):
        """The ``limit`` best-scoring candidates per sample (non-candidates score -inf / +inf); checks shortfall."""
        k = min(int(limit.max()), score.shape[1]) if len(limit) else 0
        vals, idx = score.topk(k, dim=1, largest=largest)
        valid = vals.isfinite() & (torch.arange(k, device=score.device) < limit.unsqueeze(1))
        if bool((available < limit).any()):
            warnings.warn(f"scheme {self.scheme!r}: some samples have fewer than n_on={self.n_on} candidate units "
                          f"in {self.stats.layer!r}; all of theirs are changed")
        return idx, valid

    def _check(self, h: torch.Tensor) -> None:
        if h.dim() < 2 or h.shape[1] != self.stats.units:
            raise ValueError(f"these statistics describe {self.stats.units} units of {self.stats.layer!r}, but the "
                             f"layer output has shape {tuple(h.shape)}: use statistics computed for this layer")

    def select(self, h: torch.Tensor) -> Plan:
        """Which units of each sample change, and to what (see the module docstring)."""
        self._check(h)
        st = self._on(h.device)
        u = unit_activations(h, "mean" if self.stats.pool == "none" else self.stats.pool).index_select(1, st["cols"])
        off = u <= self.stats.tau
        pick = getattr(self, f"_{self.scheme}")
        idx, valid, value, add = pick(u, off, st)
        return Plan(st["cols"][idx], valid, value, add)

    def __call__(self, h: torch.Tensor) -> torch.Tensor:
        if self.scheme == "regular":
            self._check(h)
            return h
        return apply_plan(h, self.select(h), self.inplace)

    # -- the schemes: each returns (index into the pool columns, valid, value, additive) --------------------------

    def _regular(self, u, off, st):
        empty = torch.zeros(len(u), 0, dtype=torch.long, device=u.device)
        return empty, empty.bool(), empty.float(), False

    def _random_choice(self, candidates: torch.Tensor, count: torch.Tensor, limit: torch.Tensor):
        keys = torch.where(candidates, self._rand(*candidates.shape, device=candidates.device), -torch.inf)
        return self._top(keys, limit, count)

    def _noisy(self, u, off, st):
        alive = torch.ones_like(off)
        count = torch.full((len(u),), u.shape[1], device=u.device)
        idx, valid = self._random_choice(alive, count, self._limit(count))
        noise = self._rand(*idx.shape, device=u.device, normal=True)
        return idx, valid, self.options["noise_scale"] * st["std"][idx] * noise, True

    def _random(self, u, off, st):
        count = off.sum(1)
        idx, valid = self._random_choice(off, count, self._limit(count))
        return idx, valid, st["on"][idx], False

    def _correlated_with_seed(self, seed, candidates, count, limit, corr):
        """The seed and the candidates most correlated with it (Algorithm 1, line 4; Algorithm 2, line 3)."""
        score = corr[seed].masked_fill_(~candidates, -torch.inf)
        score.scatter_(1, seed.unsqueeze(1), 2.0)  # above any correlation: the seed comes first
        idx, valid = self._top(score, limit, count)
        return idx, valid & (count > 0).unsqueeze(1)

    def _random_member(self, candidates: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
        """One uniformly drawn candidate per sample (any index where a sample has none)."""
        target = torch.floor(self._rand(len(candidates), device=candidates.device) * count).long()
        position = torch.searchsorted(candidates.cumsum(1), (target + 1).unsqueeze(1))  # the (target+1)-th candidate
        return position.squeeze(1).clamp_max(candidates.shape[1] - 1)

    def _low_active(self, u, off, st):
        """Algorithm 1: a random off pool unit, then the n-1 off pool units most correlated with it."""
        count = off.sum(1)
        seed = self._random_member(off, count)
        idx, valid = self._correlated_with_seed(seed, off, count, self._limit(count), st["corr"])
        return idx, valid, st["on"][idx], False

    _nonspecific = _low_active

    def _correlation(self, u, off, st):
        """Algorithm 2: gamma_j = (1/|A|) sum_{h in A} R_jh d_h; seed among the kappa|D| smallest gamma."""
        on = ~off
        n_active, n_off = on.sum(1), off.sum(1)
        gamma = ((u * on) @ st["corr"]) / n_active.clamp_min(1).unsqueeze(1)
        order = gamma.masked_fill(on, torch.inf).argsort(1)
        m = torch.floor(self.options["kappa"] * n_off.double()).long().clamp_min(1)
        r = torch.floor(self._rand(len(u), device=u.device) * m).long()
        seed = order.gather(1, r.unsqueeze(1)).squeeze(1)
        idx, valid = self._correlated_with_seed(seed, off, n_off, self._limit(n_active), st["corr"])
        value = st["on"][idx]
        if self.options["turn_off"]:
            count = valid.sum(1)
            k = min(int(count.max()), u.shape[1]) if len(u) else 0
            vals, down = gamma.masked_fill(off, -torch.inf).topk(k, dim=1)
            keep = vals.isfinite() & (torch.arange(k, device=u.device) < count.unsqueeze(1))
            idx, valid = torch.cat([idx, down], 1), torch.cat([valid, keep], 1)
            value = torch.cat([value, torch.zeros_like(vals)], 1)
        return idx, valid, value, False

    def _cluster(self, u, off, st):
        """Section 8.2: off units of the sample's least active cluster(s), spilling over to the next."""
        labels, n_clusters = st["cluster"], self.stats.n_clusters
        members = torch.nn.functional.one_hot(labels, n_clusters).to(u.dtype)
        share_on = ((~off).to(u.dtype) @ members) / members.sum(0).clamp_min(1)
        shuffled = self._rand(len(u), n_clusters, device=u.device).argsort(1)
        order = shuffled.gather(1, share_on.gather(1, shuffled).argsort(dim=1, stable=True))
        rank = torch.empty_like(order).scatter_(1, order, torch.arange(n_clusters, device=u.device).expand_as(order))
        tier = (rank.gather(1, labels.expand(len(u), -1)) - (self.options["clusters_on"] - 1)).clamp_min(0)
        keys = torch.where(off, tier + self._rand(*off.shape, device=u.device), torch.inf)
        count = off.sum(1)
        idx, valid = self._top(keys, self._limit(count), count, largest=False)
        return idx, valid, st["on"][idx], False

    _multi_cluster = _cluster
