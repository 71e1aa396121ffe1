"""Annotation batches: the blind pool of images the human study shows (paper sections 5 and 8.5).

The paper had 9 annotators label a pool of about 500 samples per dataset, drawn from low-active,
non-specific low-active, noisy, random and regular decoding, "also randomly mixed in a portion of
generated examples that passed a creativity filter" (8.5), with the decoding scheme hidden.

Our draw (choices where the paper is silent, all parameters):
- ``filter_share`` (20%) of the batch comes from samples that passed the creativity filter, split evenly
  between the schemes in ``filter_schemes`` (low-active and non-specific, the two the paper reports
  with a "(filter)" row in Table 8); if a scheme has too few passing samples, the shortfall is drawn
  unfiltered from the same scheme;
- the rest is split evenly across the five schemes, drawn uniformly (a fair sample of each scheme);
- every sample comes from a different z: notebook 04 decodes all schemes from the same z, and showing
  the regular and noisy decoding of one z side by side would hint at the scheme;
- the pool is shuffled and each image gets an opaque id, a hash of its content and origin, so a batch
  rebuilt from regenerated samples can never be mistaken for the one that was annotated.

A batch is two files under ``annotations_dir(profile)``: ``batches/<name>.pt`` (uint8 images, ids and
the priming examples: all the tool reads) and ``keys/<name>.csv`` (id -> scheme, source index,
filtered), which only the analysis reads.
"""

from __future__ import annotations

import hashlib
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .config import Profile, check_dataset, get_profile, results_path
from .data import CLASS_NAMES, load_split
from .io import load_torch, save_csv, save_torch
from .study_store import AnnotationStore, annotations_dir, default_store_path

STUDY_SCHEMES = ("low_active", "nonspecific", "noisy", "random", "regular")
FILTER_SCHEMES = ("low_active", "nonspecific")
KEY_COLUMNS = ["sample_id", "scheme", "source_index", "filtered"]


class BatchLockedError(RuntimeError):
    """An existing batch already holds annotations and a different batch would replace it."""


@dataclass
class Batch:
    """What the annotation tool shows: images in shuffled order, each with an opaque id."""

    name: str
    dataset: str
    sample_ids: list[str]
    images: torch.Tensor  # uint8 [N, 784]
    priming_images: torch.Tensor  # uint8 [M, 784], training examples
    priming_names: list[str]  # class name of each priming image

    def __len__(self) -> int:
        return len(self.sample_ids)

    def image(self, sample_id: str) -> np.ndarray:
        """One sample as a 28 x 28 uint8 array."""
        return self.images[self.sample_ids.index(sample_id)].view(28, 28).numpy()


def batch_name(dataset: str, profile: str | Profile) -> str:
    return f"{check_dataset(dataset)}_{profile.name if isinstance(profile, Profile) else profile}"


def batch_paths(name: str, profile: str | Profile) -> tuple[Path, Path]:
    """(images file, key file) of batch ``name``."""
    root = annotations_dir(profile)
    return root / "batches" / f"{name}.pt", root / "keys" / f"{name}.csv"


def saved_batches(profile: str | Profile) -> list[str]:
    """Names of the batches saved for ``profile``'s annotation folder."""
    return sorted(path.stem for path in (annotations_dir(profile) / "batches").glob("*.pt"))


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    return (images.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu()


def draw_key(sample_sets: dict[str, torch.Tensor], passes_filter: dict[str, np.ndarray], n: int,
             rng: np.random.Generator, filter_share: float = 0.2,
             filter_schemes: tuple[str, ...] = FILTER_SCHEMES) -> pd.DataFrame:
    """Which (scheme, source index) go into the batch, shuffled; columns scheme, source_index, filtered."""
    missing = [s for s in STUDY_SCHEMES if s not in sample_sets]
    if missing:
        raise ValueError(f"sample sets missing for scheme(s) {missing}: the study draws from {list(STUDY_SCHEMES)}")
    size = min(len(sample_sets[s]) for s in STUDY_SCHEMES)
    if n > size:
        raise ValueError(f"batch of {n} needs {n} distinct z but the sample sets hold {size}: lower study_samples")
    order = rng.permutation(size)  # one random order of z shared by every draw; taken z are never reused
    used = np.zeros(size, bool)
    rows = []

    def take(scheme, count, filtered):
        ok = ~used[order] & (passes_filter[scheme][order] if filtered else True)
        chosen = order[ok][:count]
        used[chosen] = True
        rows.extend((scheme, int(i), filtered) for i in chosen)
        return len(chosen)

    n_filter = int(round(filter_share * n))
    filtered_got = {s: take(s, k, True) for s, k in zip(filter_schemes, split_evenly(n_filter, len(filter_schemes)))}
    plain = dict(zip(STUDY_SCHEMES, split_evenly(n - n_filter, len(STUDY_SCHEMES))))
    for scheme, wanted in zip(filter_schemes, split_evenly(n_filter, len(filter_schemes))):
        plain[scheme] += wanted - filtered_got[scheme]  # too few passed the filter: fill unfiltered
    for scheme, count in plain.items():
        take(scheme, count, False)
    key = pd.DataFrame(rows, columns=["scheme", "source_index", "filtered"])
    return key.iloc[rng.permutation(len(key))].reset_index(drop=True)


def split_evenly(total: int, parts: int) -> list[int]:
    return [total // parts + (i < total % parts) for i in range(parts)]


def sample_id(dataset: str, scheme: str, index: int, image: torch.Tensor) -> str:
    """Opaque id: a hash of the image bytes and its origin (unique, reveals nothing about the scheme)."""
    digest = hashlib.sha1(f"{dataset}|{scheme}|{index}|".encode() + image.numpy().tobytes()).hexdigest()
    return f"{dataset}-{digest[:12]}"


def priming_examples(dataset: str, per_class: int, seed: int) -> tuple[torch.Tensor, list[str]]:
    """``per_class`` training images of every class (both datasets' classes for ``combined``): what the
    paper's annotators were "primed on" before labelling."""
    train = load_split(dataset, "train")
    if dataset == "combined":
        group = train.source * 10 + train.labels
        names = [f"MNIST {c}" for c in CLASS_NAMES["mnist"]] + CLASS_NAMES["fmnist"]
    else:
        group, names = train.labels, CLASS_NAMES[dataset]
    gen = torch.Generator().manual_seed(seed)
    picks = [torch.nonzero(group == g).flatten() for g in range(len(names))]
    picks = [p[torch.randperm(len(p), generator=gen)[:per_class]] for p in picks]
    index = torch.cat(picks)
    return to_uint8(train.images[index]), [names[g] for g, p in enumerate(picks) for _ in p]


def make_batch(name: str, dataset: str, sample_sets: dict[str, torch.Tensor], passes_filter: dict[str, np.ndarray],
               n: int, seed: int, priming: tuple[torch.Tensor, list[str]],
               **draw_options) -> tuple[Batch, pd.DataFrame]:
    """A batch and its key, drawn deterministically from ``seed`` (and the dataset name)."""
    rng = np.random.default_rng([seed, zlib.crc32(dataset.encode())])
    key = draw_key(sample_sets, passes_filter, n, rng, **draw_options)
    images = torch.stack([to_uint8(sample_sets[s][i]) for s, i in zip(key["scheme"], key["source_index"])])
    origins = zip(key["scheme"], key["source_index"], images)
    key.insert(0, "sample_id", [sample_id(dataset, s, i, im) for s, i, im in origins])
    batch = Batch(name, dataset, list(key["sample_id"]), images, priming[0], list(priming[1]))
    return batch, key


def save_batch(batch: Batch, key: pd.DataFrame, profile: str | Profile) -> None:
    images_path, key_path = batch_paths(batch.name, profile)
    save_csv(key[KEY_COLUMNS], key_path)
    save_torch({"name": batch.name, "dataset": batch.dataset, "sample_ids": batch.sample_ids, "images": batch.images,
                "priming_images": batch.priming_images, "priming_names": batch.priming_names}, images_path)


def load_batch(name: str, profile: str | Profile) -> Batch:
    saved = load_torch(batch_paths(name, profile)[0], f"annotation batch {name!r}",
                       "build it with notebooks/annotate.ipynb or paper_lib.study_batch.ensure_batch")
    return Batch(saved["name"], saved["dataset"], list(saved["sample_ids"]), saved["images"],
                 saved["priming_images"], list(saved["priming_names"]))


def load_key(name: str, profile: str | Profile) -> pd.DataFrame:
    path = batch_paths(name, profile)[1]
    if not path.exists():
        raise FileNotFoundError(f"key of batch {name!r} not found at {path}: it is written with the batch")
    return pd.read_csv(path, dtype={"sample_id": str, "scheme": str})


def load_sources(dataset: str, profile: Profile) -> tuple[dict[str, torch.Tensor], dict[str, np.ndarray]]:
    """The sample sets of notebook 04 and the creativity-filter flags of notebook 05, per study scheme.

    Only samples notebook 05 scored can be drawn (it may score the first ``metric_samples`` of each set)."""
    from .decoding import load_samples  # the decoding module is only needed when building from results

    metrics = load_per_sample_metrics(dataset, profile)
    sets, flags = {}, {}
    for scheme in STUDY_SCHEMES:
        images = load_samples(results_path(profile, "samples", dataset, f"{scheme}.pt"))["images"]
        scored = metrics[metrics["scheme"] == scheme].set_index("index")["passes_filter"].sort_index()
        if not scored.index.equals(pd.RangeIndex(len(scored))) or len(scored) > len(images):
            raise ValueError(f"per-sample metrics of {scheme!r} do not cover samples 0..{len(scored) - 1} of its "
                             f"{len(images)}: rerun notebook 05 on the current samples")
        sets[scheme], flags[scheme] = images[:len(scored)], scored.to_numpy(bool)
    return sets, flags


def load_per_sample_metrics(dataset: str, profile: Profile) -> pd.DataFrame:
    """Notebook 05's per-sample metrics, with scheme names as in ``paper_lib.decoding.SCHEMES``."""
    from .decoding import PAPER_NAMES

    path = results_path(profile, "metrics", f"per_sample_{dataset}.csv.gz")
    if not path.exists():
        raise FileNotFoundError(f"per-sample metrics not found at {path}: run notebooks/05_novelty_metrics.ipynb "
                                f"with dataset={dataset!r} profile={profile.name!r}")
    table = pd.read_csv(path)
    table["scheme"] = table["scheme"].replace({paper: ours for ours, paper in PAPER_NAMES.items()})
    return table


def ensure_batch(dataset: str, profile: str | Profile, store: AnnotationStore | None = None,
                 per_class: int = 8, on_conflict: str = "reuse", **draw_options) -> Batch:
    """The study batch of ``dataset`` for ``profile``, built from the results if needed, registered in the store.

    Building is deterministic, so a rebuild from the same results reproduces the saved batch. A batch that
    already holds annotations is never overwritten (see ``commit_batch``). Where the results of notebooks
    04 and 05 are absent (an annotator's fresh clone), the saved batch is used as it is.
    """
    profile = get_profile(profile) if isinstance(profile, str) else profile
    store = store or AnnotationStore(default_store_path(profile))
    name = batch_name(dataset, profile)
    try:
        sets, flags = load_sources(dataset, profile)
    except FileNotFoundError:
        if not batch_paths(name, profile)[0].exists():
            raise
        batch = load_batch(name, profile)
        store.register_samples(batch.name, batch.dataset, batch.sample_ids)
        return batch
    fresh, key = make_batch(name, dataset, sets, flags, profile.study_samples, profile.seed,
                            priming_examples(dataset, per_class, profile.seed), **draw_options)
    return commit_batch(fresh, key, profile, store, on_conflict)


def commit_batch(fresh: Batch, key: pd.DataFrame, profile: str | Profile, store: AnnotationStore,
                 on_conflict: str = "reuse") -> Batch:
    """Save ``fresh`` and register it, unless a different batch of that name already holds annotations:
    then keep that one (``on_conflict="reuse"``, with a warning) or raise BatchLockedError (``"error"``)."""
    if on_conflict not in ("reuse", "error"):
        raise ValueError(f"on_conflict={on_conflict!r}: choose 'reuse' or 'error'")
    if batch_paths(fresh.name, profile)[0].exists():
        existing = load_batch(fresh.name, profile)
        labelled = store.annotations(batch=fresh.name)
        if existing.sample_ids == fresh.sample_ids:  # the same draw: keep the files as they are
            store.register_samples(existing.name, existing.dataset, existing.sample_ids)
            return existing
        if len(labelled):
            message = (f"batch {fresh.name!r} differs from a fresh build (were the samples regenerated?) but holds "
                       f"{len(labelled)} annotations by {labelled['annotator'].nunique()} annotator(s)")
            if on_conflict == "error":
                raise BatchLockedError(f"{message}: refusing to overwrite it; export the annotations "
                                       "(AnnotationStore.export_csv) and build under a new batch name")
            warnings.warn(f"{message}: keeping the annotated batch", stacklevel=2)
            store.register_samples(existing.name, existing.dataset, existing.sample_ids)
            return existing
    save_batch(fresh, key, profile)
    store.register_samples(fresh.name, fresh.dataset, fresh.sample_ids)
    return fresh
