"""Annotation batches: a blind, deterministic draw that never replaces an annotated batch."""

import numpy as np
import pandas as pd
import pytest
import torch

from paper_lib.study_batch import (KEY_COLUMNS, STUDY_SCHEMES, BatchLockedError, commit_batch, load_batch, load_key,
                                   make_batch, split_evenly)
from paper_lib.study_store import AnnotationStore

N = 200  # samples per scheme, paired by z as notebook 04 saves them


@pytest.fixture
def sources():
    gen = torch.Generator().manual_seed(0)
    sets = {s: torch.rand(N, 784, generator=gen) for s in STUDY_SCHEMES}
    rng = np.random.default_rng(0)
    flags = {s: rng.random(N) < (0.3 if s == "low_active" else 0.02) for s in STUDY_SCHEMES}
    return sets, flags


PRIMING = (torch.zeros(4, 784, dtype=torch.uint8), ["0", "0", "1", "1"])


@pytest.fixture
def annotations_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("PAPER_LIB_ANNOTATIONS", str(tmp_path / "annotations"))
    return tmp_path / "annotations"


def test_draw_is_blind_balanced_and_deterministic(sources):
    sets, flags = sources
    batch, key = make_batch("mnist_test", "mnist", sets, flags, n=60, seed=3, priming=PRIMING)
    again, key_again = make_batch("mnist_test", "mnist", sets, flags, n=60, seed=3, priming=PRIMING)
    assert batch.sample_ids == again.sample_ids and key.equals(key_again)
    assert len(set(batch.sample_ids)) == 60 and all(s.startswith("mnist-") for s in batch.sample_ids)
    assert not any(scheme in sid for sid in batch.sample_ids for scheme in STUDY_SCHEMES)
    assert key["source_index"].is_unique  # every sample from its own z
    filtered = key[key["filtered"]]
    assert all(flags[s][i] for s, i in zip(filtered["scheme"], filtered["source_index"]))
    # 12 filtered: low_active has plenty; nonspecific has ~4 passing, so its shortfall is drawn unfiltered
    assert (filtered["scheme"] == "low_active").sum() == 6
    assert (filtered["scheme"] == "nonspecific").sum() == min(6, flags["nonspecific"].sum())
    assert key.groupby("scheme").size().to_dict() == {s: n for s, n in zip(STUDY_SCHEMES, [16, 16, 10, 9, 9])}
    # images are the uint8 renderings of the drawn samples
    s, i = key.loc[5, ["scheme", "source_index"]]
    assert torch.equal(batch.images[5], (sets[s][i] * 255).round().to(torch.uint8))
    assert batch.images.dtype == torch.uint8 and batch.images.shape == (60, 784)
    reseeded, _ = make_batch("mnist_test", "mnist", sets, flags, n=60, seed=4, priming=PRIMING)
    assert reseeded.sample_ids != batch.sample_ids


def test_bad_requests_are_refused(sources):
    sets, flags = sources
    with pytest.raises(ValueError, match="distinct z"):
        make_batch("m", "mnist", sets, flags, n=N + 1, seed=0, priming=PRIMING)
    with pytest.raises(ValueError, match="missing for scheme"):
        make_batch("m", "mnist", {"regular": sets["regular"]}, flags, n=10, seed=0, priming=PRIMING)
    assert split_evenly(10, 3) == [4, 3, 3]


def test_save_load_and_never_overwrite_annotated(sources, annotations_tmp):
    sets, flags = sources
    store = AnnotationStore(annotations_tmp / "annotations.sqlite")
    batch, key = make_batch("mnist_smoke", "mnist", sets, flags, n=30, seed=0, priming=PRIMING)
    commit_batch(batch, key, "smoke", store)
    loaded = load_batch("mnist_smoke", "smoke")
    assert loaded.sample_ids == batch.sample_ids and torch.equal(loaded.images, batch.images)
    assert loaded.priming_names == PRIMING[1]
    pd.testing.assert_frame_equal(load_key("mnist_smoke", "smoke"), key[KEY_COLUMNS])
    assert set(store.sample_ids("mnist_smoke")) == set(batch.sample_ids)
    assert (annotations_tmp / "batches" / "mnist_smoke.pt").stat().st_size < 30 * 784 + 20_000

    other, other_key = make_batch("mnist_smoke", "mnist", sets, flags, n=30, seed=1, priming=PRIMING)
    commit_batch(other, other_key, "smoke", store)  # no annotations yet: replacing is harmless
    assert load_batch("mnist_smoke", "smoke").sample_ids == other.sample_ids
    assert set(store.sample_ids("mnist_smoke")) == set(other.sample_ids)

    store.annotate("ada", other.sample_ids[0], "creative")
    with pytest.raises(BatchLockedError, match="refusing to overwrite"):
        commit_batch(batch, key, "smoke", store, on_conflict="error")
    with pytest.warns(UserWarning, match="keeping the annotated batch"):
        kept = commit_batch(batch, key, "smoke", store)
    assert kept.sample_ids == other.sample_ids == load_batch("mnist_smoke", "smoke").sample_ids
    assert commit_batch(other, other_key, "smoke", store).sample_ids == other.sample_ids  # same batch: reused


def test_ensure_batch_from_saved_results(sources, results_tmp, annotations_tmp, monkeypatch):
    from paper_lib import study_batch
    from paper_lib.config import results_path
    from paper_lib.decoding import save_samples

    sets, flags = sources
    z = torch.randn(N, 50, generator=torch.Generator().manual_seed(1))
    for scheme, images in sets.items():
        save_samples(results_path("smoke", "samples", "mnist", f"{scheme}.pt"), images, z, scheme=scheme, n_on=5)
    scored = 150  # notebook 05 may score only the first samples of each set
    per_sample = pd.concat([pd.DataFrame({"scheme": name, "index": range(scored), "regen_dist": 1.0,
                                          "passes_filter": flags[scheme][:scored]})
                            for scheme, name in zip(STUDY_SCHEMES, ["loact", "ent", "noise", "rand", "regular"])])
    per_sample.to_csv(results_path("smoke", "metrics", "per_sample_mnist.csv.gz"), index=False)
    monkeypatch.setattr(study_batch, "priming_examples", lambda dataset, per_class, seed: PRIMING)

    store = AnnotationStore(annotations_tmp / "annotations.sqlite")
    batch = study_batch.ensure_batch("mnist", "smoke", store)  # smoke profile: study_samples = 60
    assert len(batch) == 60 and batch.name == "mnist_smoke"
    expected, key = make_batch("mnist_smoke", "mnist", {s: x[:scored] for s, x in sets.items()},
                               {s: f[:scored] for s, f in flags.items()}, n=60, seed=0, priming=PRIMING)
    assert batch.sample_ids == expected.sample_ids  # the paper-named metric rows were matched to their schemes
    assert key["source_index"].max() < scored
    assert study_batch.ensure_batch("mnist", "smoke", store).sample_ids == batch.sample_ids
    gap = per_sample[per_sample["index"] != 3]
    gap.to_csv(results_path("smoke", "metrics", "per_sample_mnist.csv.gz"), index=False)
    with pytest.raises(ValueError, match="do not cover samples"):
        study_batch.ensure_batch("mnist", "smoke", store)
    assert set(store.sample_ids("mnist_smoke")) == set(batch.sample_ids)
    per_sample[per_sample["index"] != 3].to_csv(results_path("smoke", "metrics", "per_sample_mnist.csv.gz"), index=False)
    with pytest.raises(ValueError, match="do not cover samples"):
        study_batch.ensure_batch("mnist", "smoke", store)

    for path in (results_tmp / "samples" / "mnist").glob("*.pt"):  # an annotator's clone: batch but no results
        path.unlink()
    assert study_batch.ensure_batch("mnist", "smoke", AnnotationStore(annotations_tmp / "b.sqlite")).sample_ids \
        == batch.sample_ids
    with pytest.raises(FileNotFoundError, match="05_novelty_metrics"):
        study_batch.ensure_batch("fmnist", "smoke", store)
