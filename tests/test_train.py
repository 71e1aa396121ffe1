"""The training loop and checkpoints: determinism, best-validation model, restarts, resuming after an
interrupt, atomic writes, weights-only loading with clear mismatch errors."""

import pandas as pd
import pytest
import torch

import paper_lib.io
import paper_lib.train as train_module
from paper_lib.checkpoints import (CheckpointMismatch, encode_split, load_classifier, load_into, load_vae,
                                   model_path, read_checkpoint, save_checkpoint)
from paper_lib.config import get_profile, with_overrides
from paper_lib.evaluate import paper_accuracy, paper_vae_losses, update_row
from paper_lib.models import VAE, Z_DIM
from paper_lib.train import TrainSettings, VAEObjective, fit, history_path, scaled_patience, train_vae

TINY = dict(z_dim=4, hidden=(32, 16, 8))


@pytest.fixture
def data():
    gen = torch.Generator().manual_seed(1)
    images = (torch.rand(320, 784, generator=gen) < torch.linspace(0.05, 0.6, 784)).float()
    return (images[:256], None), (images[256:], None)


@pytest.fixture(autouse=True)
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("PAPER_LIB_RESULTS", str(tmp_path / "results"))
    return tmp_path / "results"


def tiny_fit(data, path, epochs=3, seed=0, **settings):
    torch.manual_seed(seed)
    model = VAE(**TINY)
    history = fit(model, VAEObjective(), *data, TrainSettings(epochs=epochs, batch_size=64, seed=seed, **settings),
                  path, {"kind": "vae", "dataset": "tiny", "config": model.config()}, progress=False)
    return model, history


def states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_scaled_patience():
    assert scaled_patience(300) == (10, 20)  # the paper's, section 8.3
    assert scaled_patience(40) == (2, 4)
    assert scaled_patience(1) == (2, 4)


def test_same_seed_same_checkpoint(data, tmp_path):
    a, history_a = tiny_fit(data, tmp_path / "a.pt")
    b, history_b = tiny_fit(data, tmp_path / "b.pt")
    c, _ = tiny_fit(data, tmp_path / "c.pt", seed=1)
    assert states_equal(torch.load(tmp_path / "a.pt", weights_only=True)["state_dict"],
                        torch.load(tmp_path / "b.pt", weights_only=True)["state_dict"])
    pd.testing.assert_frame_equal(history_a, history_b)
    assert not states_equal(a.state_dict(), c.state_dict())
    assert history_a["val_loss"].iloc[-1] < history_a["val_loss"].iloc[0]  # it learns
    assert pd.read_csv(history_path(tmp_path / "a.pt")).shape == history_a.shape


def test_keeps_best_model_restarts_and_lowers_lr(data, tmp_path, monkeypatch):
    """Scripted validation losses: restart from the best after each stall, halve lr every 2nd stall,
    and end with the weights of the best epoch (section 8.3)."""
    losses, snapshots = iter([3.0, 4.0, 5.0, 2.0, 6.0]), []

    def scripted(model, objective, x, y=None, batch=1024, seed=0):
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        return {"loss": next(losses), "nll": 0.0, "kl": 0.0}

    monkeypatch.setattr(train_module, "evaluate", scripted)
    model, history = tiny_fit(data, tmp_path / "m.pt", epochs=5, restart_patience=1, lr_patience=2)
    assert list(history["event"].fillna("")) == ["best", "restart", "restart lr=0.0005", "best", "restart"]
    assert list(history["lr"]) == [1e-3, 1e-3, 1e-3, 5e-4, 5e-4]
    assert states_equal(model.state_dict(), snapshots[3])
    meta = read_checkpoint(tmp_path / "m.pt", "vae", "tiny")["meta"]
    assert meta["best_epoch"] == 4 and meta["epochs"] == 5 and meta["best_val_loss"] == 2.0


def test_interrupted_run_resumes_to_the_same_checkpoint(data, tmp_path, monkeypatch, capsys):
    reference, _ = tiny_fit(data, tmp_path / "ref.pt", epochs=4)
    calls, run_epoch = [], train_module._run_epoch

    def interrupt_third_epoch(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return run_epoch(*args)

    path = tmp_path / "run.pt"
    monkeypatch.setattr(train_module, "_run_epoch", interrupt_third_epoch)
    with pytest.raises(KeyboardInterrupt):
        tiny_fit(data, path, epochs=4)
    assert not path.exists() and path.with_suffix(".last.pt").exists()
    assert not list(tmp_path.glob(".*.tmp"))
    monkeypatch.setattr(train_module, "_run_epoch", run_epoch)
    resumed, history = tiny_fit(data, path, epochs=4)
    assert "resuming run.pt after epoch 2" in capsys.readouterr().out
    assert states_equal(resumed.state_dict(), reference.state_dict()) and len(history) == 4
    assert not path.with_suffix(".last.pt").exists()


def test_state_from_other_settings_is_not_resumed(data, tmp_path, capsys):
    path = tmp_path / "m.pt"
    tiny_fit(data, path, epochs=1)
    state = {"meta": {"kind": "vae", "settings": {"epochs": 99}}}
    torch.save(state, path.with_suffix(".last.pt"))
    _, history = tiny_fit(data, path, epochs=2)
    assert "saved with other settings" in capsys.readouterr().out and len(history) == 2


def test_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    def crash(obj, f):
        open(f, "wb").write(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(paper_lib.io.torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path / "m.pt", VAE(**TINY), {"kind": "vae"})
    assert list(tmp_path.iterdir()) == []


def test_checkpoint_round_trip_and_mismatch_errors():
    vae = VAE(Z_DIM["mnist"])
    meta = {"kind": "vae", "dataset": "mnist", "config": vae.config(), "profile": "smoke"}
    save_checkpoint(model_path("vae", "mnist", "smoke"), vae, meta)
    loaded = load_vae("mnist", "smoke")
    assert not loaded.training and states_equal(loaded.cpu().state_dict(), vae.state_dict())

    with pytest.raises(FileNotFoundError, match="01_train_vae.ipynb"):
        load_vae("fmnist", "smoke")
    save_checkpoint(model_path("vae", "combined", "smoke"), vae, meta)  # an mnist VAE in combined's place
    with pytest.raises(CheckpointMismatch, match="dataset 'mnist'.*'combined' was asked for"):
        load_vae("combined", "smoke")
    save_checkpoint(model_path("vae", "combined", "smoke"), vae, {**meta, "dataset": "combined"})
    with pytest.raises(CheckpointMismatch, match="architecture .*'z_dim': 50.* combined uses .*'z_dim': 100"):
        load_vae("combined", "smoke")
    save_checkpoint(model_path("classifier", "mnist", "smoke"), vae, {**meta, "kind": "vae"})
    with pytest.raises(CheckpointMismatch, match="kind 'vae'"):
        load_classifier("mnist", "smoke")
    with pytest.raises(ValueError, match="'mnist' and 'fmnist' only"):
        load_classifier("combined", "smoke")
    other = VAE(Z_DIM["mnist"], hidden=(64, 32, 16))
    with pytest.raises(CheckpointMismatch, match="architecture"):
        load_into(other, model_path("vae", "mnist", "smoke"), "vae", "mnist")


def test_train_vae_skips_a_current_checkpoint(capsys):
    profile = with_overrides(get_profile("smoke"), train_subset=128, eval_subset=64, vae_epochs={"mnist": 1})
    first, _ = train_vae("mnist", profile, progress=False)
    again, history = train_vae("mnist", profile, progress=False)
    assert "up to date" in capsys.readouterr().out and len(history) == 1
    assert states_equal(first.state_dict(), again.state_dict())
    _, history = train_vae("mnist", profile, epochs=2, progress=False)  # other settings: trains
    assert "up to date" not in capsys.readouterr().out and len(history) == 2


def test_encode_split_gives_posterior_means():
    vae = VAE(**TINY)
    x = torch.rand(10, 784)
    mu = encode_split(vae, x, batch=3)
    assert mu.shape == (10, 4) and not mu.requires_grad and vae.training
    vae.eval()
    assert torch.allclose(mu, vae.encode(x)[0])


def test_update_row_keeps_other_datasets(results):
    path = results / "tables" / "t.csv"
    update_row(path, {"dataset": "combined", "loss": 3.0})
    update_row(path, {"dataset": "mnist", "loss": 1.0})
    table = update_row(path, {"dataset": "combined", "loss": 4.0})
    assert list(table["dataset"]) == ["mnist", "combined"] and list(table["loss"]) == [1.0, 4.0]
    pd.testing.assert_frame_equal(pd.read_csv(path), table)


def test_paper_numbers():
    combined = paper_vae_losses("combined")  # Table 3: the combined terms carry the 1000x NLL scale
    assert combined["loss"] == pytest.approx(combined["nll"] + combined["kl"], abs=0.05)
    assert paper_vae_losses("mnist") == {"loss": 110.0, "nll": 96.3, "kl": 13.7}
    assert (paper_accuracy("mnist"), paper_accuracy("fmnist")) == (0.9928, 0.9299)
