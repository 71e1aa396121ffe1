"""Every surrogate metric of one dataset's models on any image set (notebook 05).

    suite = MetricSuite.load("mnist", profile)
    result = suite.evaluate(images)          # per-sample metrics + set-level FID and inception score

The suite holds what the metrics compare against, built once: the training images and their
encodings (posterior means) as kNN reference sets, a one-class SVM on the encodings, the in-domain
classifier(s) (mnist and fmnist for the combined data, section 8.1) and the Gaussian of the
training features for FID.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from . import metrics
from .checkpoints import encode_split, load_classifier, load_vae
from .config import Profile, get_profile
from .data import load_split
from .decoding import interpolation_classes
from .knn import NeighbourIndex
from .models import IMAGE_DIM

CLASSIFIERS = {"mnist": ("mnist",), "fmnist": ("fmnist",), "combined": ("mnist", "fmnist")}
METRIC_COLUMNS = ["regen_dist", "input_1nn", "input_5nn", "input_1nn_norm", "input_5nn_norm",
                  "latent_1nn", "latent_5nn", "latent_1nn_norm", "latent_5nn_norm",
                  "ice_mnist", "ice_fmnist", "oc_score"]
PER_SAMPLE_COLUMNS = ["scheme", "index", *METRIC_COLUMNS, "passes_filter"]
FILTER_DISTANCES = ("input_1nn", "latent_1nn", "regen_dist")  # section 8.5: input and latent NN, D_r


@dataclass
class SetResult:
    """Per-sample metrics (``METRIC_COLUMNS``) and set-level scores (``fid_<clf>``, ``inception_<clf>``)."""

    per_sample: pd.DataFrame
    scores: dict


class MetricSuite:
    """The reference sets and models every metric of one dataset needs."""

    def __init__(self, vae, classifiers: dict, train_images: torch.Tensor, train_classes: torch.Tensor | None = None,
                 ocsvm_fit_size: int | None = None, fid_reference_size: int | None = 10_000, seed: int = 0,
                 gamma: float = 0.1, nu: float = 0.15):
        unknown = set(classifiers) - {"mnist", "fmnist"}
        if unknown or not classifiers:
            raise ValueError(f"classifiers must be a non-empty dict with keys 'mnist' and/or 'fmnist', got {sorted(classifiers)}")
        self.vae, self.classifiers = vae.eval(), classifiers
        train_images = metrics.check_points(train_images, "training images", IMAGE_DIM)
        encodings = encode_split(vae, train_images)
        self.input_index = NeighbourIndex(train_images)
        self.latent_index = NeighbourIndex(encodings)
        self.one_class = metrics.OneClassScore(gamma, nu).fit(encodings, ocsvm_fit_size, seed)
        fid_images = train_images[_subset(len(train_images), fid_reference_size, seed)]
        self.fid_reference = {name: metrics.gaussian_stats(metrics.classifier_outputs(clf, fid_images)[1])
                              for name, clf in classifiers.items()}
        self.train_encodings, self.train_classes = encodings, train_classes

    @classmethod
    def load(cls, dataset: str, profile: str | Profile, fid_reference_size: int | None = 10_000) -> "MetricSuite":
        """The suite of ``dataset`` from the trained models and the training split of ``profile``."""
        profile = get_profile(profile) if isinstance(profile, str) else profile
        if dataset not in CLASSIFIERS:
            raise ValueError(f"unknown dataset {dataset!r}: choose one of {list(CLASSIFIERS)}")
        train = load_split(dataset, "train", subset=profile.train_subset, seed=profile.seed)
        classifiers = {name: load_classifier(name, profile) for name in CLASSIFIERS[dataset]}
        return cls(load_vae(dataset, profile), classifiers, train.images, interpolation_classes(train), profile.ocsvm_fit_size,
                   fid_reference_size, profile.seed)

    def per_sample(self, images, with_classifiers: bool = True) -> pd.DataFrame:
        """D_r, input and latent kNN distances and kNS (k = 1, 5), ICE per classifier, one-class score [N rows]."""
        return self.evaluate(images, with_classifiers, set_scores=False).per_sample

    def evaluate(self, images, with_classifiers: bool = True, set_scores: bool = True) -> SetResult:
        """All metrics of one image set; ``set_scores`` adds FID against the training features and the
        inception score, per classifier."""
        images = metrics.check_points(images, "images", self.input_index.dim)
        encodings = encode_split(self.vae, images)
        columns = {"regen_dist": metrics.reconstruction_distance(self.vae, images)}
        for space, index, points in (("input", self.input_index, images), ("latent", self.latent_index, encodings)):
            for name, values in index.novelty(points).items():
                columns[f"{space}_{name}"] = values
        scores = {}
        for name in ("mnist", "fmnist"):
            columns[f"ice_{name}"] = torch.full((len(images),), float("nan"))
            if with_classifiers and name in self.classifiers:
                p, features = metrics.classifier_outputs(self.classifiers[name], images)
                columns[f"ice_{name}"] = metrics.entropy_bits(p)
                if set_scores:
                    scores[f"inception_{name}"] = metrics.inception_score(p)
                    scores[f"fid_{name}"] = metrics.frechet_from_stats(*metrics.gaussian_stats(features),
                                                                       *self.fid_reference[name])
        columns["oc_score"] = self.one_class.score(encodings)
        frame = pd.DataFrame({name: columns[name].numpy() for name in METRIC_COLUMNS})
        return SetResult(frame, scores)


def _subset(n: int, size: int | None, seed: int) -> torch.Tensor:
    if size is None or size >= n:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:size]


def filter_entropy(per_sample: pd.DataFrame) -> pd.Series:
    """The classifier entropy the creativity filter reads: the in-domain ICE, and for the combined data
    (two classifiers) the smaller of the two, i.e. the entropy under the classifier that recognises the
    image best."""
    ice = per_sample[["ice_mnist", "ice_fmnist"]]
    if ice.isna().all(axis=None):
        raise ValueError("the creativity filter needs classifier entropies (ice_mnist / ice_fmnist)")
    return ice.min(axis=1, skipna=True)


def creativity_filter(per_sample: pd.DataFrame, regular: str = "regular", test: str = "test",
                      random: str = "random_images", factor: float = 1.75,
                      distances=FILTER_DISTANCES) -> tuple[np.ndarray, dict]:
    """Section 8.5 on notebook 05's per-sample table (a ``scheme`` column naming each set): distances above
    Q2 + factor (Q3 - Q1) of the ``regular`` set, entropy between the ``test`` and ``random`` set means.
    Returns the flags [rows] and the thresholds used."""
    for name in (regular, test, random):
        if name not in set(per_sample["scheme"]):
            raise ValueError(f"the creativity filter needs the {name!r} set in the per-sample metrics")
    entropy = filter_entropy(per_sample)
    low = float(entropy[per_sample["scheme"] == test].mean())
    high = float(entropy[per_sample["scheme"] == random].mean())
    thresholds = metrics.filter_thresholds(per_sample[per_sample["scheme"] == regular], distances, factor)
    used = {**thresholds, "entropy_low": low, "entropy_high": high}
    if low >= high:
        warnings.warn(f"the classifier is no less sure of random images (mean entropy {high:.3f}) than of test images "
                      f"({low:.3f}): the filter's entropy window is empty and no sample passes", stacklevel=2)
        return np.zeros(len(per_sample), dtype=bool), used
    return metrics.passes_filter(per_sample.assign(filter_entropy=entropy), thresholds, "filter_entropy", low, high), used
