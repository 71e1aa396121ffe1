"""Surrogate novelty metrics (paper sections 3, 6, 8.4, 8.5), one function each.

- D_r, reconstruction distance (section 3): :func:`reconstruction_distance`;
- kNN novelty and kNS in input and latent space (section 3): :mod:`paper_lib.knn`;
- ICE, in-domain classifier entropy in bits (section 3): :func:`entropy_bits` of :func:`classifier_outputs`;
- IS, the one-class SVM in-domain score (sections 3 and 8.2): :class:`OneClassScore`;
- FID in a classifier's feature space (section 8.4): :func:`frechet_distance`, :func:`gaussian_stats`;
- inception score (section 6): :func:`inception_score`;
- the creativity filter (section 8.5): :func:`filter_thresholds`, :func:`passes_filter`;
- bootstrap confidence intervals of means: :func:`bootstrap_ci`, :func:`summarise`.

Every function refuses empty, non-finite or mis-shaped input with an error that names the problem.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from sklearn.svm import OneClassSVM

from .knn import check_points
from .models import IMAGE_DIM


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def reconstruction_distance(vae, images, batch: int = 2048) -> torch.Tensor:
    """D_r = min_z ||x - E[p(x|z)]||_2 (section 3), with the minimiser taken to be the posterior mean
    mu(x) of the encoder (the amortised estimate): ||x - decode(mu(x))||_2 on [0, 1] pixels, [N]."""
    images = check_points(images, "images", IMAGE_DIM)
    vae.eval()
    dev = _device(vae)
    out = [(x - vae.decode(vae.encode(x.to(dev))[0]).cpu()).norm(dim=1) for x in images.split(batch)]
    return torch.cat(out)


@torch.no_grad()
def classifier_outputs(classifier, images, batch: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """One pass of an in-domain classifier (eval mode): softmax outputs p(y|x) [N, classes] and its
    200-unit layer [N, 200], the feature space of FID (section 8.4)."""
    images = check_points(images, "images", IMAGE_DIM)
    classifier.eval()
    dev = _device(classifier)
    probs, feats = [], []
    for x in images.split(batch):
        f = classifier.features(x.to(dev))
        probs.append(classifier.out(f).softmax(1).cpu())  # dropout is the identity in eval mode
        feats.append(f.cpu())
    return torch.cat(probs), torch.cat(feats)


def _check_probabilities(p, name: str = "probabilities") -> torch.Tensor:
    p = check_points(p, name).double()
    if (p < 0).any() or not torch.allclose(p.sum(1), torch.ones(len(p), dtype=p.dtype), atol=1e-4):
        raise ValueError(f"{name} must be non-negative rows that sum to 1 (softmax outputs)")
    return p


def entropy_bits(p) -> torch.Tensor:
    """ICE = -sum_i p_i log2 p_i per row (section 3), in bits; 0 log 0 = 0. [N]."""
    p = _check_probabilities(p)
    return -(p * torch.log2(p.clamp_min(1e-300))).sum(1).float()


def inception_score(p) -> float:
    """exp(E_x KL(p(y|x) || p(y))) with p(y) the mean of p(y|x) over the set (Salimans et al., section 6).

    Ranges from 1 (every image gets the same prediction) to the number of classes (confident
    predictions spread evenly over the classes). One score over the whole set (no splits).
    """
    p = _check_probabilities(p)
    marginal = p.mean(0, keepdim=True)
    kl = (p * (torch.log(p.clamp_min(1e-300)) - torch.log(marginal.clamp_min(1e-300)))).sum(1)
    return float(torch.exp(kl.mean()))


def gaussian_stats(features) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean [D] and covariance [D, D] (float64) of a feature set, the Gaussian FID compares (section 8.4)."""
    f = check_points(features, "features").double()
    if len(f) < 2:
        raise ValueError("FID needs at least 2 samples per set to estimate a covariance")
    return f.mean(0), torch.cov(f.T).reshape(f.shape[1], f.shape[1])


def frechet_distance(features_a, features_b) -> float:
    """FID = ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) between Gaussians fitted to two
    feature sets (section 8.4); see :func:`frechet_from_stats`."""
    a = check_points(features_a, "features_a")
    return frechet_from_stats(*gaussian_stats(a), *gaussian_stats(check_points(features_b, "features_b", a.shape[1])))


def frechet_from_stats(mu_a, cov_a, mu_b, cov_b) -> float:
    """FID from two (mean, covariance) pairs. Tr((S_a S_b)^(1/2)) is the sum of square roots of the
    eigenvalues of S_a^(1/2) S_b S_a^(1/2), a symmetric positive semi-definite matrix (float64)."""
    if mu_a.shape != mu_b.shape or cov_a.shape != cov_b.shape:
        raise ValueError(f"feature sizes differ: {tuple(mu_a.shape)} vs {tuple(mu_b.shape)}")
    vals, vecs = torch.linalg.eigh(cov_a)
    root_a = vecs @ torch.diag(vals.clamp_min(0).sqrt()) @ vecs.T
    cross = torch.linalg.eigvalsh(root_a @ cov_b @ root_a).clamp_min(0).sqrt().sum()
    fid = (mu_a - mu_b).pow(2).sum() + torch.trace(cov_a) + torch.trace(cov_b) - 2 * cross
    return float(fid.clamp_min(0))


class OneClassScore:
    """IS, the in-domain score (sections 3 and 8.2): a one-class SVM (RBF, gamma = 0.1, nu = 0.15, the
    15% outlier fraction) fitted on training encodings; a sample's score is the signed distance of its
    encoding from the separating surface. Lower means more of an outlier.

    scikit-learn's ``decision_function`` is ``sum_i alpha_i K(z, sv_i) - rho`` with sum_i alpha_i = nu * n
    (libsvm's unnormalised dual), so its scale grows with the fit size n: fitted on the 55,000 training
    encodings it reads in the hundreds, as the paper's oc scores do (Tables 2, 5-9). When the SVM is
    fitted on a random subset of m encodings (to save time), we multiply by ``n_reference / m`` so the
    score estimates the full-fit value on the paper's scale; with m = n the factor is 1.
    """

    def __init__(self, gamma: float = 0.1, nu: float = 0.15):
        if gamma <= 0 or not 0 < nu <= 1:
            raise ValueError(f"need gamma > 0 and 0 < nu <= 1, got gamma={gamma}, nu={nu}")
        self.svm = OneClassSVM(kernel="rbf", gamma=gamma, nu=nu)
        self.scale = None

    def fit(self, encodings, fit_size: int | None = None, seed: int = 0) -> "OneClassScore":
        """Fit on ``fit_size`` encodings drawn at random (all of them when None or larger)."""
        z = check_points(encodings, "training encodings")
        m = len(z) if fit_size is None else min(fit_size, len(z))
        if m < 2:
            raise ValueError(f"the one-class SVM needs at least 2 training encodings, got fit_size={fit_size}")
        chosen = torch.randperm(len(z), generator=torch.Generator().manual_seed(seed))[:m]
        self.svm.fit(z[chosen].double().numpy())
        self.dim, self.scale, self.fit_size = z.shape[1], len(z) / m, m
        return self

    def score(self, encodings) -> torch.Tensor:
        """Signed in-domain score of each encoding [N] (positive: inside the training support)."""
        if self.scale is None:
            raise RuntimeError("fit the one-class SVM first: OneClassScore().fit(training_encodings)")
        z = check_points(encodings, "encodings", self.dim)
        return torch.from_numpy(self.svm.decision_function(z.double().numpy()) * self.scale).float()


def random_images(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """The "random images" reference set of section 6: n images of independent uniform [0, 1] pixels."""
    if n < 1:
        raise ValueError(f"need n >= 1 random images, got {n}")
    return torch.rand(n, IMAGE_DIM, generator=generator)


# ---------------------------------------------------------------- creativity filter (section 8.5)

def filter_thresholds(regular: pd.DataFrame, columns, factor: float = 1.75) -> dict[str, float]:
    """Q2 + factor (Q3 - Q1) of each distance column over regular generation (section 8.5)."""
    missing = [c for c in columns if c not in regular]
    if missing or regular.empty:
        raise ValueError(f"regular-generation metrics need rows and the columns {list(columns)} (missing {missing})")
    values = regular[list(columns)]
    if values.isna().any().any():
        raise ValueError(f"regular-generation metrics hold NaN in {list(values.columns[values.isna().any()])}")
    q1, q2, q3 = (values.quantile(q) for q in (0.25, 0.5, 0.75))
    return (q2 + factor * (q3 - q1)).astype(float).to_dict()


def passes_filter(metrics: pd.DataFrame, thresholds: dict[str, float], entropy: str,
                  entropy_low: float, entropy_high: float) -> np.ndarray:
    """Section 8.5: every distance above its threshold, and classifier entropy strictly between the
    test-set mean (``entropy_low``) and the random-image mean (``entropy_high``). Bool [N]."""
    if not entropy_low < entropy_high:
        raise ValueError(f"the entropy window is empty: test mean {entropy_low} >= random-image mean {entropy_high}")
    missing = [c for c in [*thresholds, entropy] if c not in metrics]
    if missing:
        raise ValueError(f"metrics lack the filter's columns {missing}")
    ok = np.ones(len(metrics), dtype=bool)
    for column, threshold in thresholds.items():
        ok &= metrics[column].to_numpy() > threshold
    h = metrics[entropy].to_numpy()
    return ok & (h > entropy_low) & (h < entropy_high)


# ---------------------------------------------------------------- confidence intervals

def bootstrap_ci(values, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> np.ndarray:
    """Mean and percentile-bootstrap interval of the mean of each column: array [3, columns] (mean, lo, hi).

    ``values`` [N] or [N, C]; a column that is entirely NaN (a metric that does not apply) gives NaN.
    Each resample is stored as counts per sample, so the means are one [n_boot, N] x [N, C] product.
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[:, None] if v.ndim == 1 else v
    if v.ndim != 2 or len(v) == 0:
        raise ValueError(f"bootstrap needs a non-empty [N] or [N, C] array, got shape {np.shape(values)}")
    if not 0 < level < 1 or n_boot < 1:
        raise ValueError(f"need 0 < level < 1 and n_boot >= 1, got level={level}, n_boot={n_boot}")
    nan = np.isnan(v)
    partial = nan.any(0) & ~nan.all(0)
    if partial.any():
        raise ValueError(f"columns {np.flatnonzero(partial).tolist()} are partly NaN: drop or fix those samples")
    filled = np.where(nan, 0.0, v)
    n = len(v)
    draws = np.random.default_rng(seed).integers(0, n, size=(n_boot, n)) + np.arange(n_boot)[:, None] * n
    counts = np.bincount(draws.ravel(), minlength=n_boot * n).reshape(n_boot, n)
    means = counts @ filled / n
    tail = (1 - level) / 2
    out = np.stack([filled.mean(0), *np.quantile(means, [tail, 1 - tail], axis=0)])
    out[:, nan.all(0)] = np.nan
    return out


def summarise(frame: pd.DataFrame, by: str, columns, n_boot: int = 1000, level: float = 0.95,
              seed: int = 0) -> pd.DataFrame:
    """One row per value of ``by``: the mean of each column with ``<column>_lo`` / ``_hi`` bootstrap bounds."""
    rows = []
    for key, group in frame.groupby(by, sort=False):
        stats = bootstrap_ci(group[list(columns)].to_numpy(), n_boot, level, seed)
        row = {by: key, "n": len(group)}
        for j, column in enumerate(columns):
            row[column], row[f"{column}_lo"], row[f"{column}_hi"] = stats[:, j]
        rows.append(row)
    return pd.DataFrame(rows)
