"""Each surrogate metric on inputs whose answer is known, bad input, and the notebook-05 pieces on tiny models."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.neighbors import NearestNeighbors
from torch import nn

from paper_lib import claims, metrics, novelty, reference
from paper_lib.knn import NeighbourIndex, check_points
from paper_lib.models import VAE, Classifier
from paper_lib.neurons import layer_stats
from paper_lib.sweep import SWEEP_COLUMNS, run_sweep, side_by_side

torch.set_num_threads(1)


def rand(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- kNN novelty

def test_knn_matches_sklearn_and_finds_training_points():
    ref, queries = rand(400, 12), rand(60, 12, seed=1)
    index = NeighbourIndex(ref, device="cpu")
    dist, idx = index.search(queries, 5)
    sk = NearestNeighbors(n_neighbors=5, algorithm="brute").fit(ref.numpy())
    sk_dist, sk_idx = sk.kneighbors(queries.numpy())
    np.testing.assert_array_equal(idx.numpy(), sk_idx)
    np.testing.assert_allclose(dist.numpy(), sk_dist, atol=1e-5)
    # a query equal to a training point is at distance exactly 0 from it
    dist, idx = index.search(ref[[3, 17]], 1)
    assert dist.flatten().tolist() == [0.0, 0.0] and idx.flatten().tolist() == [3, 17]
    # a training point's own neighbours exclude itself, as sklearn's kneighbors() without X does
    own_dist, own_idx = sk.kneighbors(n_neighbors=5)
    np.testing.assert_allclose(index.own_distances(torch.arange(400)).numpy(), own_dist, atol=1e-5)


def test_knn_novelty_by_hand():
    """Reference points 0, 1, 3, 7 on a line; query 1.2 (see the kNS definition in paper_lib.knn)."""
    index = NeighbourIndex(torch.tensor([[0.0], [1.0], [3.0], [7.0]]), max_k=2, device="cpu")
    scores = index.novelty(torch.tensor([[1.2]]), ks=(1, 2))
    assert scores["1nn"].item() == pytest.approx(0.2)
    assert scores["1nn_norm"].item() == pytest.approx(0.2 / 1.0)  # d(1.2, 1) / d(1, 0)
    assert scores["2nn"].item() == pytest.approx((0.2 + 1.2) / 2)
    # the 2nd nearest neighbour of 1.2 is 0, and D_2(0) = (1 + 3) / 2 (its neighbours 1 and 3)
    assert scores["2nn_norm"].item() == pytest.approx(0.7 / 2.0)


def test_knn_bad_input():
    index = NeighbourIndex(rand(50, 4), device="cpu")
    with pytest.raises(ValueError, match="4"):
        index.search(rand(3, 5), 1)
    with pytest.raises(ValueError, match="empty"):
        index.search(torch.empty(0, 4), 1)
    nan = rand(3, 4)
    nan[1, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        index.novelty(nan)
    with pytest.raises(ValueError, match="2-D"):
        check_points(torch.ones(4), "x")
    with pytest.raises(ValueError, match="k must be"):
        index.search(rand(3, 4), 9)


# ---------------------------------------------------------------- classifier metrics

def test_entropy_bits():
    uniform = torch.full((4, 10), 0.1)
    assert metrics.entropy_bits(uniform).tolist() == pytest.approx([math.log2(10)] * 4)
    assert metrics.entropy_bits(torch.eye(10)).tolist() == pytest.approx([0.0] * 10)
    assert metrics.entropy_bits(torch.tensor([[0.5, 0.5, 0.0]])).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="sum to 1"):
        metrics.entropy_bits(torch.ones(2, 3))


def test_classifier_outputs_match_the_model():
    torch.manual_seed(0)
    clf = Classifier().eval()
    x = rand(5, 784)
    p, f = metrics.classifier_outputs(clf, x, batch=2)
    torch.testing.assert_close(p, clf(x).softmax(1))
    torch.testing.assert_close(f, clf.features(x))
    assert f.shape == (5, 200)


def test_inception_score():
    assert metrics.inception_score(torch.eye(10).repeat(5, 1)) == pytest.approx(10.0)
    assert metrics.inception_score(torch.eye(10)[[3] * 20]) == pytest.approx(1.0)
    assert metrics.inception_score(torch.full((7, 10), 0.1)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="empty"):
        metrics.inception_score(torch.empty(0, 10))


def test_frechet_distance():
    a = torch.randn(500, 6, generator=torch.Generator().manual_seed(0))
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    shift = torch.tensor([1.0, 2.0, 0.0, 0.0, 0.0, 0.0])
    assert metrics.frechet_distance(a, a + shift) == pytest.approx(5.0, rel=1e-6)  # same covariance
    # a vs 2a: means mu and 2mu, covariances S and 4S, so FID = |mu|^2 + Tr(S + 4S - 2 * 2S) = |mu|^2 + Tr(S)
    a64 = a.double()
    expected = float(a64.mean(0).pow(2).sum() + torch.trace(torch.cov(a64.T)))
    assert metrics.frechet_distance(a, 2 * a) == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="features"):
        metrics.frechet_distance(a, a[:, :5])
    with pytest.raises(ValueError, match="at least 2"):
        metrics.frechet_distance(a[:1], a)


# ---------------------------------------------------------------- D_r, one-class SVM

class ConstantVAE(nn.Module):
    """encode -> 0, decode -> a grey image: D_r = ||x - 0.5||."""

    def __init__(self):
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1))

    def encode(self, x):
        return torch.zeros(len(x), 2), torch.zeros(len(x), 2)

    def decode(self, z):
        return torch.full((len(z), 784), 0.5)


def test_reconstruction_distance():
    x = torch.zeros(3, 784)
    x[1] = 1.0
    d = metrics.reconstruction_distance(ConstantVAE(), x)
    assert d.tolist() == pytest.approx([0.5 * 28, 0.5 * 28, 0.5 * 28])
    with pytest.raises(ValueError, match="784"):
        metrics.reconstruction_distance(ConstantVAE(), torch.zeros(3, 10))


def test_one_class_score_separates_outliers_and_scales_with_fit_size():
    z = torch.randn(2000, 5, generator=torch.Generator().manual_seed(0))
    outliers = z[:50] * 0 + 6.0
    full = metrics.OneClassScore().fit(z)
    assert full.scale == 1.0
    assert full.score(z[:200]).mean() > 0 > full.score(outliers).max()
    half = metrics.OneClassScore().fit(z, fit_size=1000)
    assert half.scale == 2.0
    # the rescaled score of a half-size fit estimates the full-fit score
    assert half.score(z[:200]).mean().item() == pytest.approx(full.score(z[:200]).mean().item(), rel=0.15)
    with pytest.raises(RuntimeError, match="fit"):
        metrics.OneClassScore().score(z)
    with pytest.raises(ValueError, match="5"):
        full.score(torch.zeros(4, 3))


# ---------------------------------------------------------------- filter and intervals

def test_filter_on_a_constructed_case():
    regular = pd.DataFrame({"d": [1.0, 2.0, 3.0, 4.0, 5.0]})
    thresholds = metrics.filter_thresholds(regular, ["d"])
    assert thresholds == {"d": pytest.approx(3 + 1.75 * (4 - 2))}
    samples = pd.DataFrame({"d": [7.0, 7.0, 6.0, 7.0], "h": [0.5, 0.05, 0.5, 2.0]})
    flags = metrics.passes_filter(samples, thresholds, "h", entropy_low=0.1, entropy_high=1.0)
    assert flags.tolist() == [True, False, False, False]
    with pytest.raises(ValueError, match="entropy window"):
        metrics.passes_filter(samples, thresholds, "h", 1.0, 0.1)
    with pytest.raises(ValueError, match="missing"):
        metrics.filter_thresholds(regular, ["nope"])


def test_creativity_filter_on_per_sample_table():
    rows = []
    for scheme, d, h in (("regular", [1, 2, 3, 4, 5], 0.3), ("test", [1] * 5, 0.1), ("random_images", [9] * 5, 2.0),
                         ("low_active", [8, 8, 1, 8, 8], 1.0)):
        for i, v in enumerate(d):
            rows.append({"scheme": scheme, "index": i, "input_1nn": v, "latent_1nn": v, "regen_dist": v,
                         "ice_mnist": h if i != 4 else 3.0, "ice_fmnist": float("nan")})
    frame = pd.DataFrame(rows)
    flags, used = novelty.creativity_filter(frame)
    assert used["entropy_low"] == pytest.approx((0.1 * 4 + 3.0) / 5)  # the test set's mean entropy
    assert used["input_1nn"] == pytest.approx(3 + 1.75 * (4 - 2))
    assert flags[frame["scheme"] == "low_active"].tolist() == [True, True, False, True, False]


def test_bootstrap_ci():
    rng = np.random.default_rng(0)
    values = np.column_stack([rng.normal(3.0, 1.0, 400), np.full(400, 2.0), np.full(400, np.nan)])
    (mean, lo, hi) = metrics.bootstrap_ci(values, n_boot=500)
    assert lo[0] < mean[0] < hi[0] and hi[0] - lo[0] == pytest.approx(2 * 1.96 / 20, rel=0.25)
    assert lo[1] == mean[1] == hi[1] == 2.0
    assert np.isnan([mean[2], lo[2], hi[2]]).all()
    with pytest.raises(ValueError, match="partly NaN"):
        metrics.bootstrap_ci(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="non-empty"):
        metrics.bootstrap_ci(np.empty(0))
    table = metrics.summarise(pd.DataFrame({"s": ["a"] * 3 + ["b"] * 2, "x": [1.0, 2, 3, 5, 5]}), "s", ["x"], n_boot=50)
    assert table.columns.tolist() == ["s", "n", "x", "x_lo", "x_hi"]
    assert table.set_index("s").loc["b", ["x", "x_lo", "x_hi"]].tolist() == [5.0, 5.0, 5.0]


# ---------------------------------------------------------------- the suite and the sweep on tiny models

@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    vae = VAE(z_dim=3, hidden=(32, 24, 16)).eval()
    train = rand(300, 784, seed=2)
    classes = torch.arange(300) % 10
    suite = novelty.MetricSuite(vae, {"mnist": Classifier().eval()}, train, classes, ocsvm_fit_size=150,
                                fid_reference_size=200)
    stats = layer_stats(vae, "decoder.relu3", suite.train_encodings, classes, forward=vae.decode, n_clusters=3,
                        progress=False)
    return suite, stats, train


def test_suite_columns_and_known_values(tiny):
    suite, _, train = tiny
    result = suite.evaluate(torch.cat([train[:5], rand(20, 784, seed=3)]))
    frame = result.per_sample
    assert frame.columns.tolist() == novelty.METRIC_COLUMNS
    assert frame["input_1nn"].iloc[:5].tolist() == [0.0] * 5  # training images are their own nearest neighbour
    assert frame["ice_fmnist"].isna().all() and frame["ice_mnist"].between(0, math.log2(10) + 1e-6).all()
    assert set(result.scores) == {"inception_mnist", "fid_mnist"}
    assert suite.one_class.scale == 2.0
    with pytest.raises(ValueError, match="784"):
        suite.evaluate(torch.zeros(4, 100))


def test_sweep_on_tiny_model(tiny):
    suite, stats, _ = tiny
    z = torch.randn(16, 3, generator=torch.Generator().manual_seed(1))
    sweep = run_sweep(suite, stats, z, ns=(1, 2), schemes=("low_active", "random"))
    assert sweep.columns.tolist()[:len(SWEEP_COLUMNS)] == SWEEP_COLUMNS
    assert sweep[["approach", "n_on"]].values.tolist() == [["2interp", 0], ["6interp", 0], ["loact", 1],
                                                           ["loact", 2], ["rand", 1], ["rand", 2]]
    assert (sweep["n_samples"] == 16).all() and sweep[SWEEP_COLUMNS[2:]].notna().all(axis=None)
    again = run_sweep(suite, stats, z, ns=(1, 2), schemes=("low_active", "random"))
    pd.testing.assert_frame_equal(sweep, again)  # same z and seed: the same numbers
    table = side_by_side(sweep, "mnist", "regen_dist")
    assert table.loc["loact", 1].endswith("(3.08)")


# ---------------------------------------------------------------- claims

def test_claims_hold_on_the_papers_numbers():
    for dataset in ("mnist", "fmnist", "combined"):
        table = claims.check_claims(dataset)
        assert (table["paper_result"] == "PASS").all(), table[table["paper_result"] != "PASS"]
        assert (table["result"] == "N/A").all()  # nothing of ours given


def test_claims_on_our_numbers():
    paper = reference.sweep("mnist")
    ours = paper[paper["approach"] != "test"].copy()
    main = pd.DataFrame({"scheme": ["low_active", "random", "noisy", "regular"], "regen_dist": [4.0, 4.5, 1.5, 1.4]})
    scores = pd.DataFrame({"scheme": ["test", "low_active", "random_images"], "inception_mnist": [9.5, 7.0, 1.5]})
    table = claims.check_claims("mnist", main, ours, scores).set_index("claim")
    assert table.loc["D_r: low-active > random", "result"] == "FAIL"
    assert table.loc["D_r: low-active > random", "ours"] == "4.00 > 4.50"
    assert table.loc["D_r: low-active > noisy", "result"] == "PASS"
    assert table.loc["regen_dist levels off near n=20", "result"] == "PASS"
    assert table.loc["inception score: test > low-active > random images", "ours"] == "9.50 > 7.00 > 1.50"
    # a scheme with empty sweep cells (pool too small) is left out of the flipping means, not fatal
    ours.loc[ours["approach"] == "ent", "regen_dist"] = float("nan")
    partial = claims.check_claims("mnist", main, ours, scores).set_index("claim")
    assert partial.loc["regen_dist grows with n (flipping mean, n=1 -> 20)", "result"] == "PASS"
    assert partial.loc["regen_dist grows with n (flipping mean, n=1 -> 20)", "ours"] == "2.74 -> 4.82"
    markdown = claims.to_markdown(table.reset_index()[["claim", "result"]])
    assert markdown.splitlines()[1] == "| --- | --- |" and "FAIL" in markdown
