"""Neuron statistics (section 4 "Preliminaries", 8.2, 8.3) and the layer hooks, on hand-built layers."""

from collections import OrderedDict

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from paper_lib.hooks import edit_layer, get_module, layer_output, record_layer
from paper_lib.io import update_rows
from paper_lib.neurons import (NeuronStats, class_entropy, cluster_units, counts_row, layer_stats, model_fingerprint,
                               off_counts, unit_activations)


def passthrough(units: int) -> nn.Module:
    """A model whose layer ``layer`` outputs its input unchanged, followed by a linear read-out."""
    return nn.Sequential(OrderedDict(layer=nn.Identity(), out=nn.Linear(units, 3))).eval()


def training_activations(n: int = 600, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """ReLU-like activations with a dead unit (0), a constant unit (1) and correlated units; 3 classes."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, 6, generator=g, dtype=torch.float64)
    x = torch.cat([torch.zeros(n, 1, dtype=torch.float64), torch.full((n, 1), 0.7, dtype=torch.float64),
                   base, base[:, :2] * 2 + 0.1 * torch.randn(n, 2, generator=g, dtype=torch.float64)], 1)
    return x.clamp_min(0).float(), torch.randint(0, 3, (n,), generator=g)


def test_streaming_statistics_equal_the_batch_computation():
    x, groups = training_activations()
    model = passthrough(x.shape[1])
    stats = layer_stats(model, "layer", x, groups, batch=97, n_clusters=3, progress=False)
    a = x.numpy().astype(np.float64)
    on = a > 1e-7
    assert stats.units == 10 and stats.n_samples == 600
    np.testing.assert_allclose(stats.percent_active, on.mean(0), atol=1e-7)
    assert stats.dead.tolist() == [True] + [False] * 9
    np.testing.assert_allclose(stats.max, a.max(0), rtol=1e-6)
    np.testing.assert_allclose(stats.mean, a.mean(0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(stats.std, a.std(0), rtol=1e-5, atol=1e-7)
    varying = a.std(0) > 0
    expected = np.corrcoef(a[:, varying], rowvar=False)
    np.testing.assert_allclose(stats.corr[varying][:, varying], expected, atol=1e-5)
    # dead (0) and constant (1) units: zero rows and columns, diagonal included
    assert not stats.corr[:2].any() and not stats.corr[:, :2].any()
    per_class = np.stack([on[groups.numpy() == c].mean(0) for c in range(3)])
    np.testing.assert_allclose(stats.class_percent_active, per_class, atol=1e-6)
    assert stats.group_counts.tolist() == np.bincount(groups.numpy(), minlength=3).tolist()
    off = (~on[:, 1:]).sum(1)  # unit 0 is dead: never counted as off
    assert stats.off_mean == pytest.approx(off.mean()) and stats.off_std == pytest.approx(off.std())
    # the result does not depend on the batch size
    again = layer_stats(model, "layer", x, groups, batch=600, n_clusters=3, progress=False)
    torch.testing.assert_close(again.corr, stats.corr, atol=1e-6, rtol=0)


def test_conv_units_are_spatially_pooled_channels():
    maps = torch.zeros(4, 3, 2, 2)
    maps[0, 0, 1, 1] = 4.0  # channel 0 on only in sample 0 (one position)
    maps[:, 1] = 1.0  # channel 1 always on; channel 2 dead
    assert unit_activations(maps, "mean")[:, 0].tolist() == [1.0, 0, 0, 0]
    assert unit_activations(maps, "max")[:, 0].tolist() == [4.0, 0, 0, 0]
    stats = layer_stats(passthrough_conv(), "layer", maps, batch=3, n_clusters=2, progress=False)
    assert stats.units == 3 and stats.pool == "mean"
    assert stats.percent_active.tolist() == [0.25, 1.0, 0.0] and stats.dead.tolist() == [False, False, True]
    assert stats.max[0] == 1.0  # the max of the pooled (mean) activation


def passthrough_conv() -> nn.Module:
    return nn.Sequential(OrderedDict(layer=nn.Identity(), pool=nn.Flatten())).eval()


def test_class_entropy_in_bits():
    cpa = torch.tensor([[0.5, 0.2, 0.0], [0.5, 0.0, 0.0]])
    assert class_entropy(cpa).tolist() == pytest.approx([1.0, 0.0, 0.0])


def test_spectral_clusters_recover_correlated_blocks():
    block = torch.block_diag(torch.full((3, 3), 0.9), torch.full((4, 4), 0.8))
    corr = block.fill_diagonal_(1.0)
    percent = torch.tensor([0.5] * 3 + [0.1] * 4)
    labels, k = cluster_units(corr, percent, torch.ones(7, dtype=torch.bool), n_clusters=2)
    assert k == 2
    assert labels.tolist() == [1, 1, 1, 0, 0, 0, 0]  # numbered by increasing mean percent activation
    alive = torch.tensor([True] * 6 + [False])
    assert cluster_units(corr, percent, alive, n_clusters=2)[0][6] == -1


def test_save_load_round_trip_and_refusals(tmp_path):
    x, groups = training_activations()
    model = passthrough(x.shape[1])
    stats = layer_stats(model, "layer", x, groups, n_clusters=3, progress=False)
    path = stats.save(tmp_path / "stats.pt")
    loaded = NeuronStats.load(path, model=model, layer="layer")
    torch.testing.assert_close(loaded.corr, stats.corr)
    assert loaded.cluster.tolist() == stats.cluster.tolist() and loaded.off_mean == stats.off_mean
    with pytest.raises(ValueError, match="describe layer 'layer', not 'out'"):
        NeuronStats.load(path, model=model, layer="out")
    other = passthrough(x.shape[1])
    with pytest.raises(ValueError, match="another model"):
        NeuronStats.load(path, model=other)
    with torch.no_grad():
        model.out.weight.add_(1.0)  # the same model, retrained: its old statistics no longer hold
    with pytest.raises(ValueError, match="another model"):
        stats.check(model)
    with pytest.raises(FileNotFoundError, match="03_neuron_stats"):
        NeuronStats.load(tmp_path / "missing.pt")


def test_fingerprint_is_cached_but_follows_weight_changes():
    model = passthrough(4)
    first = model_fingerprint(model)
    assert model_fingerprint(model) == first
    model.load_state_dict({k: v + 1 for k, v in model.state_dict().items()})
    assert model_fingerprint(model) != first


def test_bad_input_is_refused():
    model = passthrough(4)
    with pytest.raises(KeyError, match="valid layer names: layer, out"):
        layer_stats(model, "decoder.relu9", torch.rand(5, 4), progress=False)
    with pytest.raises(ValueError, match="training mode"):
        layer_stats(model.train(), "layer", torch.rand(5, 4), progress=False)
    with pytest.raises(ValueError, match="one per input"):
        layer_stats(model.eval(), "layer", torch.rand(5, 4), torch.zeros(3, dtype=torch.long), progress=False)
    with pytest.raises(ValueError, match="unknown pool"):
        unit_activations(torch.rand(2, 3, 4, 4), "median")


def test_off_counts_of_new_inputs():
    x, groups = training_activations()
    model = passthrough(x.shape[1])
    stats = layer_stats(model, "layer", x, groups, n_clusters=3, progress=False)
    new = torch.tensor([[0.0, 0.7, 1, 0, 0, 0, 0, 0, 0, 0], [0.0, 0.7, 1, 1, 1, 1, 1, 1, 1, 1]])
    assert off_counts(model, stats, new).tolist() == [7, 0]


def test_hooks_edit_record_and_clean_up():
    model = nn.Sequential(OrderedDict(a=nn.Linear(2, 2), relu=nn.ReLU(), b=nn.Linear(2, 1))).eval()
    x = torch.randn(3, 2)
    with edit_layer(model, "relu", lambda h: torch.zeros_like(h)):
        assert torch.allclose(model(x), model.b.bias.expand(3, 1))
    assert not model.relu._forward_hooks
    with pytest.raises(RuntimeError, match="boom"):
        with edit_layer(model, "relu", lambda h: h):
            raise RuntimeError("boom")
    assert not model.relu._forward_hooks
    with pytest.raises(RuntimeError, match="inside the edit"):  # an edit that fails mid-forward
        with edit_layer(model, "relu", lambda h: (_ for _ in ()).throw(RuntimeError("inside the edit"))):
            model(x)
    assert not model.relu._forward_hooks
    with pytest.raises(ValueError, match="shape"):
        with edit_layer(model, "relu", lambda h: h[:1]):
            model(x)
    model.b.register_forward_hook(lambda *args: pytest.fail("the forward pass went past the recorded layer"))
    h = layer_output(model, "relu", x)
    assert torch.allclose(h, torch.relu(model.a(x)))
    with record_layer(model, "a") as record:
        model.a(x)
    assert record.output.shape == (3, 2) and not model.a._forward_hooks
    assert get_module(model, "b") is model.b


def test_counts_table_is_updated_per_dataset(tmp_path):
    x, groups = training_activations()
    stats = layer_stats(passthrough(x.shape[1]), "layer", x, groups, n_clusters=3, progress=False)
    path = tmp_path / "tables" / "neuron_counts.csv"
    update_rows(path, pd.DataFrame([counts_row("fmnist", stats)]))
    update_rows(path, pd.DataFrame([counts_row("mnist", stats)]))
    table = update_rows(path, pd.DataFrame([counts_row("mnist", stats)] * 2))
    assert list(table.columns) == ["dataset", "layer", "units", "dead", "off_mean", "off_std"]
    assert pd.read_csv(path)["dataset"].tolist() == ["mnist", "mnist", "fmnist"]
    assert table["dead"].tolist() == [1, 1, 1]
