"""Every decoding scheme on a hand-built layer whose right answer is known (section 4, Algorithms 1-2, 8.2, 8.10),
the hook that applies them to any model, and the second (convolutional) generator."""

from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from paper_lib.conv_decoder import ConvVAE
from paper_lib.decoding import (PAPER_NAMES, SCHEMES, draw_distinct_classes, generate, interpolate, load_samples,
                                make_edit, output_is_private, save_samples)
from paper_lib.hooks import edit_layer, layer_output, record_layer
from paper_lib.neurons import NeuronStats, class_entropy, layer_stats
from paper_lib.schemes import apply_plan, low_active_pool, nonspecific_pool

# A 10-unit layer. Unit 0 is dead. Percent activations, training max (= j + 1) and mean (= (j + 1) / 2).
A = torch.tensor([0, 0.02, 0.03, 0.05, 0.06, 0.30, 0.50, 0.70, 0.80, 0.90])
P = len(A)
PAIRS = {(1, 2): 0.9, (1, 3): 0.5, (1, 4): -0.2, (1, 5): 0.1, (2, 3): 0.3, (2, 4): 0.8, (2, 5): -0.4, (3, 4): 0.6,
         (3, 5): 0.7, (4, 5): 0.2, (1, 7): -0.6, (2, 7): 0.4, (3, 7): -0.1, (4, 7): 0.3, (6, 7): 0.5, (8, 7): -0.3,
         (1, 9): 0.2, (2, 9): -0.5, (3, 9): 0.1, (4, 9): 0.6, (6, 9): -0.2, (8, 9): 0.35, (6, 5): -0.7, (8, 5): 0.45,
         (5, 7): 0.25, (5, 9): -0.15, (7, 9): 0.55, (1, 6): 0.05, (1, 8): 0.15, (2, 6): 0.12, (2, 8): -0.05,
         (3, 6): 0.65, (3, 8): 0.22, (4, 6): -0.33, (4, 8): 0.01, (6, 8): 0.42}
CLASS_ACTIVE = torch.tensor([[0, .02, .05, .10, .06, .30, .5, .9, .8, .9], [0, .02, .01, 0, .06, .30, .5, .5, .8, .9]])
CLUSTERS = torch.tensor([-1, 0, 0, 0, 1, 1, 1, 2, 2, 2])
SAMPLE = torch.tensor([0, 0, 0, 0, 0, 1.0, 0, 2.0, 0, 3.0])  # on: 5, 7, 9; off: 1, 2, 3, 4, 6, 8; 0 dead
ON, OFF = {5, 7, 9}, {1, 2, 3, 4, 6, 8}


def hand_stats(layer: str = "layer", fingerprint: str = "") -> NeuronStats:
    corr = torch.eye(P)
    for (i, j), r in PAIRS.items():
        corr[i, j] = corr[j, i] = r
    corr[0, 0] = 0
    return NeuronStats(
        layer=layer, units=P, tau=1e-7, n_samples=100, percent_active=A, dead=A == 0,
        max=torch.arange(1.0, P + 1), mean=torch.arange(1.0, P + 1) / 2, std=torch.full((P,), 0.5), corr=corr,
        class_percent_active=CLASS_ACTIVE, class_entropy=class_entropy(CLASS_ACTIVE).float(), cluster=CLUSTERS,
        group_counts=torch.tensor([50, 50]), off_mean=0.0, off_std=0.0, pool="none", n_clusters=3, affinity="shift",
        fingerprint=fingerprint,
    )


def rows(n: int, sample: torch.Tensor = SAMPLE) -> torch.Tensor:
    return sample.repeat(n, 1)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def run(scheme: str, h: torch.Tensor, seed: int = 0, stats: NeuronStats | None = None, **kwargs):
    """(plan, edited h) of one scheme; the edit applied by the hook equals the plan it selects."""
    stats = stats or hand_stats()
    plan = make_edit(stats, scheme, generator=gen(seed), **kwargs).select(h)
    out = make_edit(stats, scheme, generator=gen(seed), **kwargs)(h)
    torch.testing.assert_close(out, apply_plan(h, plan))
    return plan, out


def check_only_chosen_changed(h, out, plan):
    chosen = torch.zeros_like(h, dtype=torch.bool)
    for b, units in enumerate(plan.chosen()):
        chosen[b, units] = True
    assert torch.equal(out[~chosen], h[~chosen])
    assert not chosen[:, 0].any(), "a dead unit was touched"
    return chosen


def test_regular_is_the_identity():
    h = rows(4)
    assert make_edit(hand_stats(), "regular")(h) is h


def test_random_turns_on_n_off_units_to_lambda_times_max():
    h = rows(300)
    plan, out = run("random", h, n_on=3, lam=2.0)
    chosen = check_only_chosen_changed(h, out, plan)
    assert chosen.sum(1).eq(3).all()
    assert set().union(*map(set, plan.chosen())) == OFF  # every off unit can be drawn, no other
    j = chosen.nonzero()[:, 1]
    assert torch.equal(out[chosen], 2.0 * (j + 1).float())
    _, out = run("random", h, n_on=3, lam=3.0, stat="mean")
    assert torch.equal(out[chosen], 3.0 * (j + 1).float() / 2)  # same generator seed: same units


def test_noisy_adds_gaussian_noise_to_n_alive_units():
    h = rows(2000)
    plan, out = run("noisy", h, n_on=2, noise_scale=2.0)
    chosen = check_only_chosen_changed(h, out, plan)
    assert chosen.sum(1).eq(2).all() and set().union(*map(set, plan.chosen())) == ON | OFF
    noise = plan.value[plan.valid] / (2.0 * 0.5)  # scale x the unit's training std
    assert abs(float(noise.mean())) < 0.1 and abs(float(noise.std()) - 1) < 0.1


def test_low_active_pool_uses_percentiles_of_the_alive_units():
    stats = hand_stats()
    alive = A[1:].double().numpy()
    lo, hi = np.percentile(alive, [1, 15])
    expected = [j for j in range(1, P) if lo <= A[j] <= hi]
    assert low_active_pool(stats).nonzero().squeeze(1).tolist() == expected == [2]
    assert low_active_pool(stats, (0, 50)).nonzero().squeeze(1).tolist() == [1, 2, 3, 4, 5]


def test_low_active_is_a_random_seed_plus_its_most_correlated_pool_units():
    """Algorithm 1 with the pool {1..5}; in the sample unit 5 is on, so S = {1, 2, 3, 4}."""
    expected = {1: {1, 2, 3}, 2: {2, 1, 4}, 3: {3, 4, 1}, 4: {4, 2, 3}}  # seed -> seed + 2 most correlated in S
    h = rows(200)
    plan, out = run("low_active", h, n_on=3, percentiles=(0, 50))
    seeds = plan.index[:, 0].tolist()
    assert set(seeds) == {1, 2, 3, 4}
    for seed, units in zip(seeds, plan.chosen()):
        assert set(units) == expected[seed]
    chosen = check_only_chosen_changed(h, out, plan)
    assert torch.equal(out[chosen], 2.0 * (chosen.nonzero()[:, 1] + 1).float())


def test_low_active_fraction_of_the_pool():
    h = torch.zeros(3, P)  # all off: |S| = 5 pool units
    plan = make_edit(hand_stats(), "low_active", n_on=0.5, generator=gen(), percentiles=(0, 50)).select(h)
    assert [len(units) for units in plan.chosen()] == [2, 2, 2]  # floor(0.5 * 5)


def test_a_sample_short_of_candidates_gets_all_it_has_and_one_warning():
    short = SAMPLE.clone()
    short[[1, 2]] = 5.0  # only 3 and 4 remain off in the pool
    h = torch.stack([SAMPLE, short])
    edit = make_edit(hand_stats(), "low_active", n_on=4, generator=gen(), percentiles=(0, 50))
    with pytest.warns(UserWarning, match="fewer than n_on=4"):
        plan = edit.select(h)
    assert len(plan.chosen()[0]) == 4 and set(plan.chosen()[1]) == {3, 4}
    with pytest.warns(UserWarning, match="fewer than n_on=4"):
        assert set(edit.select(short.unsqueeze(0)).chosen()[0]) == {3, 4}
    with pytest.raises(ValueError, match="n_on <= 5"):
        make_edit(hand_stats(), "low_active", n_on=6, percentiles=(0, 50))


def test_nonspecific_pool_is_low_in_every_class_and_high_entropy():
    stats = hand_stats()
    assert nonspecific_pool(stats, min_pool=0).nonzero().squeeze(1).tolist() == [1, 4]
    plan = make_edit(stats, "nonspecific", n_on=2, generator=gen(), min_pool=0).select(rows(20))
    assert all(set(units) == {1, 4} for units in plan.chosen())
    with pytest.raises(ValueError, match="can choose among 2 units"):
        make_edit(stats, "nonspecific", n_on=3, min_pool=0)


def test_a_too_small_nonspecific_pool_is_widened_by_the_per_class_threshold():
    stats = hand_stats()  # high-entropy units 1, 4, 5, 6, 8, 9 with peak class activation .02 .06 .3 .5 .8 .9
    with pytest.warns(UserWarning, match=r"2 units are below 15% .* widened to the 3 .*up to 30.0%"):
        assert nonspecific_pool(stats, min_pool=3).nonzero().squeeze(1).tolist() == [1, 4, 5]
    with pytest.warns(UserWarning, match="widened to the 6"):
        assert nonspecific_pool(stats).sum() == 6  # min_pool 25 > the 6 high-entropy units: all of them


def gamma_by_hand(stats, sample):
    on = sample > 1e-7
    r = stats.corr.double().numpy()
    d = sample.double().numpy()
    return np.array([(r[j, on.numpy()] * d[on.numpy()]).sum() / on.sum().item() for j in range(P)])


def test_correlation_seeds_at_the_smallest_gamma_and_adds_its_correlated_off_units():
    stats = hand_stats()
    gamma = gamma_by_hand(stats, SAMPLE)
    off = sorted(OFF)
    seed = off[int(np.argmin(gamma[off]))]  # kappa |D| = 0.15 * 6 < 1: the single smallest gamma
    r = stats.corr[seed].numpy()
    rest = sorted((j for j in off if j != seed), key=lambda j: -r[j])[:2]
    plan, out = run("correlation", rows(5), n_on=3)
    assert all(units == [seed, *rest] for units in plan.chosen())
    chosen = check_only_chosen_changed(rows(5), out, plan)
    assert chosen.sum(1).eq(3).all()


def test_correlation_can_turn_off_the_active_units_closest_to_the_active_group():
    stats = hand_stats()
    gamma = gamma_by_hand(stats, SAMPLE)
    down = sorted(ON, key=lambda j: -gamma[j])[:2]
    _, out = run("correlation", rows(3), n_on=2, turn_off=True)
    assert (out[:, down] == 0).all() and (out[:, sorted(ON - set(down))] > 0).all()
    assert (out[:, sorted(OFF)] > 0).sum(1).eq(2).all()
    fraction = make_edit(stats, "correlation", n_on=0.7, generator=gen()).select(rows(1))
    assert len(fraction.chosen()[0]) == 2  # floor(0.7 * |A|), |A| = 3


def test_cluster_takes_the_least_active_cluster_then_spills_over():
    stats = hand_stats()  # clusters {1,2,3} (none on), {4,5,6} (5 on), {7,8,9} (7 and 9 on)
    plan = make_edit(stats, "cluster", n_on=2, generator=gen()).select(rows(100))
    assert all(set(units) <= {1, 2, 3} and len(units) == 2 for units in plan.chosen())
    plan = make_edit(stats, "cluster", n_on=4, generator=gen()).select(rows(100))
    assert all({1, 2, 3} < set(units) <= {1, 2, 3, 4, 6} for units in plan.chosen())
    assert {u for units in plan.chosen() for u in units} == {1, 2, 3, 4, 6}


def test_multi_cluster_draws_from_the_union_of_the_least_active_clusters():
    stats = hand_stats()
    plan = make_edit(stats, "multi_cluster", n_on=3, generator=gen(), clusters_on=2).select(rows(300))
    assert {u for units in plan.chosen() for u in units} == {1, 2, 3, 4, 6}
    plan = make_edit(stats, "multi_cluster", n_on=6, generator=gen()).select(rows(2))
    assert all(set(units) == OFF for units in plan.chosen())


def test_cluster_ties_are_broken_at_random():
    plan = make_edit(hand_stats(), "cluster", n_on=3, generator=gen()).select(torch.zeros(60, P))
    picked = [frozenset(units) for units in plan.chosen()]
    assert set(picked) == {frozenset({1, 2, 3}), frozenset({4, 5, 6}), frozenset({7, 8, 9})}


def test_conv_channels_are_turned_on_as_whole_maps():
    h = SAMPLE[None, :, None, None].repeat(50, 1, 2, 3) * torch.tensor([[1.0, 3.0, 0.5], [2.0, 1.0, 0.5]])
    plan, out = run("random", h, n_on=2)
    for b, units in enumerate(plan.chosen()):
        assert set(units) <= OFF
        for j in range(P):
            expected = torch.full((2, 3), 2.0 * (j + 1)) if j in units else h[b, j]
            assert torch.equal(out[b, j], expected)


@pytest.mark.filterwarnings("ignore:scheme .* fewer than n_on")
@pytest.mark.parametrize("scheme", SCHEMES)
def test_every_scheme_leaves_dead_units_and_unchosen_units_alone(scheme):
    h = torch.rand(64, P) * (torch.rand(64, P) > 0.6)
    h[:, 0] = 0
    options = {"percentiles": (0, 60)} if scheme == "low_active" else {"min_pool": 0} if scheme == "nonspecific" else {}
    plan, out = run(scheme, h, n_on=2, **options)
    check_only_chosen_changed(h, out, plan)
    assert (out[:, 0] == 0).all()


def test_bad_input_is_refused_with_the_valid_choices():
    stats = hand_stats()
    with pytest.raises(ValueError, match="unknown scheme 'loact'.*low_active"):
        make_edit(stats, "loact")
    with pytest.raises(TypeError, match="no option.*kappa"):
        make_edit(stats, "low_active", kappa=0.1)
    with pytest.raises(ValueError, match="lam .* >= 0"):
        make_edit(stats, "random", lam=-1.0)
    with pytest.raises(ValueError, match="unknown stat 'median'"):
        make_edit(stats, "random", stat="median")
    for n_on in (0, 1.5, True, -2, "5"):
        with pytest.raises(ValueError, match="n_on must be"):
            make_edit(stats, "random", n_on=n_on)
    with pytest.raises(ValueError, match="kappa=0 of scheme 'correlation' is out of range"):
        make_edit(stats, "correlation", kappa=0)
    with pytest.raises(ValueError, match="describe 10 units"):
        make_edit(stats, "random").select(torch.rand(3, 7))
    assert set(PAPER_NAMES) == set(SCHEMES)


def passthrough_decoder(units: int = P) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(OrderedDict(layer=nn.Identity(), out=nn.Linear(units, 4))).eval()


def test_generate_runs_the_edit_inside_any_model():
    model = passthrough_decoder()
    train = torch.rand(400, P) * (torch.rand(400, P) < torch.linspace(0.02, 0.9, P))
    stats = layer_stats(model, "layer", train, n_clusters=3, progress=False)
    z = rows(30)
    images = generate(model, stats, "random", z, n_on=3, generator=gen(7))
    with torch.no_grad():
        expected = model.out(make_edit(stats, "random", n_on=3, generator=gen(7))(z))
    torch.testing.assert_close(images, expected)
    torch.testing.assert_close(generate(model, stats, "regular", z), model(z).detach())
    assert not model.layer._forward_hooks
    other = nn.Sequential(OrderedDict(layer=nn.Identity(), out=nn.Linear(P, 4))).eval()  # other weights
    with pytest.raises(ValueError, match="another model"):
        generate(other, stats, "random", z)
    with pytest.raises(KeyError, match="no layer 'decoder.relu3'.*layer, out"):
        generate(model, hand_stats("decoder.relu3"), "random", z)
    with pytest.raises(ValueError, match="training mode"):
        generate(model.train(), stats, "random", z)


@pytest.mark.filterwarnings("ignore:scheme .* fewer than n_on")
def test_second_generator_convolutional_decoder():
    """The same schemes, unchanged, on a conv layer whose units are channels (section 8.6's generators)."""
    torch.manual_seed(0)
    vae = ConvVAE(z_dim=8, channels=16).eval()
    z_train, z = torch.randn(400, 8), torch.randn(64, 8)
    with torch.no_grad():  # make channels 0-7 rarely active, as trained conv decoders have (sparse channels)
        peak = layer_output(vae, "decoder.deconv1", z_train, vae.decode).flatten(2).amax(2)
        vae.decoder.deconv1.bias[:8] -= peak[:, :8].quantile(0.9, dim=0)
    stats = layer_stats(vae, "decoder.relu1", z_train, forward=vae.decode, n_clusters=4, progress=False)
    assert stats.units == 16 and stats.pool == "mean"
    regular = generate(vae, stats, "regular", z)
    for scheme in SCHEMES:
        options = {"max_class_active": 0.5, "min_pool": 0} if scheme == "nonspecific" else {}
        images = generate(vae, stats, scheme, z, n_on=2, generator=gen(), **options)
        assert images.shape == (64, 784) and (images >= 0).all() and (images <= 1).all()
        assert scheme == "regular" or not torch.equal(images, regular)
    edit = make_edit(stats, "low_active", n_on=2, generator=gen(3))
    with torch.no_grad(), edit_layer(vae, "decoder.relu1", edit), record_layer(vae, "decoder.relu1") as seen:
        pure = vae.decode(z)
    assert output_is_private(vae, "decoder.relu1")  # generate edits this ReLU's fresh output in place
    torch.testing.assert_close(generate(vae, stats, "low_active", z, n_on=2, generator=gen(3)), pure)
    h = layer_output(vae, "decoder.relu1", z, vae.decode)
    plan = make_edit(stats, "low_active", n_on=2, generator=gen(3)).select(h)
    for b, units in enumerate(plan.chosen()):
        for j in units:  # the whole channel map is set to lam x the channel's training max
            assert torch.allclose(seen.output[b, j], torch.full((14, 14), 2.0 * float(stats.max[j])))


def test_only_a_fresh_activation_output_is_edited_in_place():
    model = nn.Sequential(OrderedDict(fc=nn.Linear(3, 3), relu=nn.ReLU(), inplace=nn.ReLU(inplace=True),
                                      same=nn.Identity()))
    assert output_is_private(model, "relu")
    assert not output_is_private(model, "inplace") and not output_is_private(model, "same")
    with record_layer(model, "relu"):  # another hook could keep the output: copy it
        assert not output_is_private(model, "relu")


def test_interpolation_draws_distinct_classes_and_decodes_their_mean():
    groups = torch.arange(40) % 4
    idx = draw_distinct_classes(groups, 3, 200, gen())
    assert all(len(set(groups[row].tolist())) == 3 for row in idx)
    assert set(idx.flatten().tolist()) == set(range(40))
    mu = torch.randn(40, 5)
    vae = nn.Sequential(nn.Linear(5, 784), nn.Sigmoid()).eval()
    images, z = interpolate(vae, mu, groups, 3, 200, gen())
    torch.testing.assert_close(z, mu[idx].mean(1))
    torch.testing.assert_close(images, vae(z).detach())
    with pytest.raises(ValueError, match="k <= 4 classes"):
        interpolate(vae, mu, groups, 6, 10, gen())


def test_sample_sets_round_trip(tmp_path):
    images, z = torch.rand(6, 784), torch.randn(6, 50)
    save_samples(tmp_path / "low_active.pt", images, z, scheme="low_active", n_on=5, lam=2.0)
    loaded = load_samples(tmp_path / "low_active.pt")
    assert torch.equal(loaded["images"], images) and torch.equal(loaded["z"], z)
    assert loaded["images"].dtype == torch.float32 and loaded["scheme"] == "low_active" and loaded["n_on"] == 5
    with pytest.raises(ValueError, match="pair up"):
        save_samples(tmp_path / "x.pt", images, z[:3])
