"""Consensus, agreement, significance tests, Tables 1/2/4 and the creativity classifier, on small cases."""

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.inter_rater import fleiss_kappa

from paper_lib.study_analysis import (batch_samples, consensus, creativity_classifier, fleiss, independence_tests,
                                      label_fractions, label_table, metrics_by_label, side_by_side, vote_counts)
from paper_lib.study_batch import STUDY_SCHEMES
from paper_lib.study_sim import simulate_panel, study_panel
from paper_lib.study_store import LABELS, AnnotationStore

NOT_NOVEL, NOVEL, CREATIVE, INCONCLUSIVE = LABELS


def counts_frame(rows):
    return pd.DataFrame(rows, columns=list(LABELS), index=[f"s{i}" for i in range(len(rows))])


def test_consensus_rule_on_hand_cases():
    counts = counts_frame([[5, 2, 1, 1], [3, 3, 3, 0], [4, 4, 1, 0], [2, 2, 2, 3], [2, 2, 2, 2], [0, 0, 3, 1]])
    assert consensus(counts).tolist() == [NOT_NOVEL, None, None, INCONCLUSIVE, None, CREATIVE]
    assert consensus(counts, min_votes=4).tolist() == [NOT_NOVEL, None, None, None, None, None]


def test_vote_counts_from_annotation_rows():
    rows = pd.DataFrame({"annotator": ["a", "b", "c", "a"], "sample_id": ["x", "x", "x", "y"],
                         "label": [CREATIVE, CREATIVE, NOVEL, INCONCLUSIVE]})
    counts = vote_counts(rows, ["x", "y", "z"])
    assert counts.loc["x"].tolist() == [0, 1, 2, 0] and counts.loc["y"].tolist() == [0, 0, 0, 1]
    assert counts.loc["z"].sum() == 0 and list(counts.columns) == list(LABELS)


def test_fleiss_kappa_hand_computed_and_statsmodels():
    # P_i = 1, 1, 0 -> P = 2/3; p_j = 4/9, 4/9, 1/9, 0 -> Pe = 33/81; kappa = (2/3 - 33/81) / (1 - 33/81) = 7/16
    result = fleiss(counts_frame([[3, 0, 0, 0], [0, 3, 0, 0], [1, 1, 1, 0]]))
    assert result["kappa"] == pytest.approx(7 / 16) and result["samples"] == 3 and result["raters_per_sample"] == 3
    rng = np.random.default_rng(0)
    table = rng.multinomial(9, [0.4, 0.3, 0.2, 0.1], size=50)
    assert fleiss(counts_frame(table))["kappa"] == pytest.approx(fleiss_kappa(table))
    partial = np.vstack([table, [[1, 1, 0, 0]]])  # a sample only 2 annotators reached is left out
    assert fleiss(counts_frame(partial))["samples"] == 50
    with pytest.raises(ValueError, match="at least 2 samples"):
        fleiss(counts_frame([[3, 0, 0, 0]]))


def test_chi2_and_g_on_a_known_table():
    counts = pd.DataFrame([[10, 10, 20, 0], [20, 10, 10, 0]], index=["low_active", "regular"],
                          columns=["L1", "L2", "L3", "L4"])
    row = independence_tests(counts, baselines=("regular",)).iloc[0]
    # empty L4 column dropped; expected 15, 10, 15 in each row
    assert row["dof"] == 2
    assert row["chi2"] == pytest.approx(4 * 25 / 15) and row["chi2_p"] == pytest.approx(np.exp(-row["chi2"] / 2))
    g = 2 * (20 * np.log(10 / 15) + 40 * np.log(20 / 15))
    assert row["g"] == pytest.approx(g) and row["g_p"] == pytest.approx(np.exp(-g / 2))


def synthetic_study(n_per_scheme=40, seed=0):
    """A key and per-sample metrics where creative decoding yields larger D_r and kNS, as in the paper."""
    rng = np.random.default_rng(seed)
    shift = {"low_active": 2.5, "nonspecific": 2.0, "random": 2.0, "noisy": 0.3, "regular": 0.0}
    per_sample = pd.concat([pd.DataFrame({
        "scheme": s, "index": np.arange(n_per_scheme),
        "regen_dist": 1.5 + shift[s] + rng.normal(0, 0.5, n_per_scheme),
        "latent_5nn_norm": 1.1 + 0.1 * shift[s] + rng.normal(0, 0.05, n_per_scheme),
        "latent_1nn": rng.normal(3, 1, n_per_scheme),
        "ice_mnist": np.abs(rng.normal(0.2, 0.1, n_per_scheme)),
        "ice_fmnist": np.nan,
        "oc_score": rng.normal(450 - 20 * shift[s], 30, n_per_scheme),
        "passes_filter": rng.random(n_per_scheme) < 0.2 * shift[s]}) for s in STUDY_SCHEMES], ignore_index=True)
    key = per_sample[["scheme", "index"]].rename(columns={"index": "source_index"}).copy()
    key["filtered"] = per_sample["passes_filter"].to_numpy() & key["scheme"].eq("low_active").to_numpy() \
        & (key["source_index"] % 2 == 0).to_numpy()
    key.insert(0, "sample_id", [f"mnist-{i:05d}" for i in range(len(key))])
    return key, per_sample


def test_analysis_on_a_simulated_panel(tmp_path):
    key, per_sample = synthetic_study()
    samples = batch_samples(key, per_sample)
    store = AnnotationStore(tmp_path / "a.sqlite")
    store.register_samples("mnist_test", "mnist", key["sample_id"])
    store.annotate("ada", key["sample_id"][0], CREATIVE)
    annotations, simulated = study_panel(store, "mnist_test", samples, seed=1)
    assert simulated and annotations["annotator"].nunique() == 9
    assert annotations.equals(simulate_panel(samples, seed=1))  # deterministic
    counts = vote_counts(annotations, key["sample_id"])
    assert (counts.sum(axis=1) == 9).all()
    labels = consensus(counts)

    table = label_fractions(key, labels, per_sample)
    assert table["scheme"].tolist() == ["low_active", "low_active", "nonspecific", "noisy", "random", "regular"]
    assert table["filtered"].tolist() == [False, True, False, False, False, False]
    assert table["paper_scheme"].tolist()[:2] == ["Low-active", "Low-active(filter)"]
    assert np.allclose(table[["L1", "L2", "L3", "L4"]].sum(axis=1), 1.0)
    assert (table["n_consensus"] <= table["n_samples"]).all() and table["n_samples"].sum() == len(key)
    regular = per_sample[per_sample["scheme"] == "regular"]["regen_dist"].mean()
    fractions = table[~table["filtered"]].set_index("scheme")
    assert fractions.loc["regular", "D_r"] == pytest.approx(regular)
    # the simulated panel follows the metrics: the high-novelty scheme gets fewer "not novel" labels
    assert fractions.loc["low_active", "L3"] < fractions.loc["regular", "L3"]

    tests = independence_tests(label_table(key, labels))
    assert tests["baseline"].tolist() == ["noisy", "random", "regular"]
    assert tests.set_index("baseline").loc["regular", "chi2_p"] < 0.05

    by_label = metrics_by_label(samples, labels)
    assert by_label["code"].tolist() == ["L1", "L2", "L3", "L4"]
    assert "ICE_F" not in by_label and by_label["n"].sum() == labels.notna().sum()
    assert by_label.set_index("code").loc["L3", "D_r"] < by_label.set_index("code").loc["L2", "D_r"]

    kappa = fleiss(counts)
    assert -1 <= kappa["kappa"] <= 1 and kappa["samples"] == len(key)


def test_creativity_classifier_beats_single_metrics_on_a_two_metric_rule():
    rng = np.random.default_rng(0)
    n = 200
    samples = pd.DataFrame({"sample_id": [f"s{i}" for i in range(n)], "regen_dist": rng.normal(size=n),
                            "oc_score": rng.normal(size=n), "latent_1nn": rng.normal(size=n), "ice_fmnist": np.nan})
    creative = samples["regen_dist"] - samples["oc_score"] > 0  # needs both metrics
    labels = pd.Series(np.where(creative, CREATIVE, np.where(rng.random(n) < 0.5, NOVEL, NOT_NOVEL)),
                       index=samples["sample_id"])
    result = creativity_classifier(samples, labels).set_index("model")
    assert result.index[0] == "all metrics (L1 logistic)" and "single: ice_fmnist" not in result.index
    best_single = result.filter(like="single:", axis=0)["cv_accuracy"].max()
    assert result.loc["all metrics (L1 logistic)", "cv_accuracy"] > best_single + 0.1
    assert result["folds"].iloc[0] == 10 and result["n"].iloc[0] == n
    three = creativity_classifier(samples, labels, target="three_class")
    assert three["target"].eq("three_class").all()
    with pytest.raises(ValueError, match=">= 2 samples in each"):
        creativity_classifier(samples.head(3), labels)


def test_side_by_side_keeps_our_order_and_adds_paper_only_rows():
    ours = pd.DataFrame({"scheme": ["low_active", "nonspecific", "noisy"], "L1": [0.5, 0.4, 0.1]})
    paper = pd.DataFrame({"scheme": ["noisy", "low_active", "random"], "L1": [0.17, 0.39, 0.24], "D_r": 1.0})
    table = side_by_side(ours, paper, "scheme", ["L1", "D_r"])
    assert list(table.columns) == ["scheme", "L1", "L1_paper"]
    assert table["scheme"].tolist() == ["low_active", "nonspecific", "noisy", "random"]
    assert table["L1_paper"].tolist()[:1] == [0.39] and np.isnan(table["L1_paper"][1]) and np.isnan(table["L1"][3])
