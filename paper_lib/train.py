"""One training loop for the VAE and the classifier (section 8.3).

Adam, batch 128, the best-validation model kept, restarts from the best after ``restart_patience``
epochs without improvement and the step size lowered after ``lr_patience`` such epochs. The paper used
200-400 epochs with patiences 10 and 20; our epoch budgets are far smaller, so the patiences scale with
the budget (``scaled_patience``: 10 and 20 at 300 epochs, never below 2 and 4).

The stall counter is the number of epochs since the last improvement and is not reset by a restart,
so at ``lr_patience`` the model restarts from the best with a halved learning rate.

Interruption: after every epoch the whole training state (weights, Adam moments, best weights, history,
random states) is written atomically to ``<checkpoint>.last.pt``. A rerun with the same settings resumes
from it and ends with the same checkpoint an uninterrupted run gives; a rerun with other settings
starts afresh. The finished checkpoint is written once, atomically, at the end, and the state file is
then removed.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .checkpoints import build_model, checkpoint_is_current, load_into, load_state, model_path, save_checkpoint
from .config import Profile, check_dataset, device, get_profile, seed_everything
from .data import load_split
from .io import save_csv, save_torch
from .models import VAE, Classifier, elbo_terms

# The paper scales the combined dataset's reconstruction NLL by 1000 (section 8.3).
RECON_SCALE = {"mnist": 1.0, "fmnist": 1.0, "combined": 1000.0}
CLASSIFIER_DATASETS = ("mnist", "fmnist")


def scaled_patience(epochs: int) -> tuple[int, int]:
    """(restart, lr) patiences: the paper's 10 and 20 at 300 epochs, scaled to ``epochs``."""
    restart = max(2, round(epochs * 10 / 300))
    return restart, 2 * restart


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation knobs; the paper fixes Adam and batch 128, the rest is our choice."""

    epochs: int
    batch_size: int = 128
    lr: float = 1e-3
    lr_factor: float = 0.5
    min_lr: float = 1e-5
    restart_patience: int | None = None  # None: scaled_patience(epochs)
    lr_patience: int | None = None
    seed: int = 0

    def patience(self) -> tuple[int, int]:
        restart, lr = scaled_patience(self.epochs)
        return self.restart_patience or restart, self.lr_patience or lr


# ---------------------------------------------------------------- per-batch objectives

class VAEObjective:
    """Negative ELBO per example: ``nll * recon_scale + kl`` (section 4; scale from section 8.3).

    In training z is sampled with the global generator (reparameterisation trick). In evaluation one
    z per example is drawn from a seeded generator, so validation and test losses are single-sample
    estimates of the negative ELBO that do not change between calls.
    """

    names = ("loss", "nll", "kl")

    def __init__(self, recon_scale: float = 1.0):
        self.recon_scale = recon_scale

    def __call__(self, model: VAE, x, y=None, generator: torch.Generator | None = None):
        mu, logvar = model.encode(x)
        if generator is None:
            z = model.reparameterize(mu, logvar)
        else:
            eps = torch.randn(mu.shape, generator=generator).to(mu.device)
            z = mu + eps * torch.exp(0.5 * logvar)
        nll, kl = elbo_terms(model.decode(z), x, mu, logvar)
        loss = nll * self.recon_scale + kl
        return loss.mean(), {"loss": loss.sum(), "nll": nll.sum(), "kl": kl.sum()}


class ClassifierObjective:
    """Cross-entropy, with accuracy reported beside it."""

    names = ("loss", "accuracy")
    recon_scale = None

    def __call__(self, model: Classifier, x, y, generator=None):
        logits = model(x)
        loss = F.cross_entropy(logits, y, reduction="sum")
        correct = (logits.argmax(dim=1) == y).sum()
        return loss / len(x), {"loss": loss, "accuracy": correct}


@torch.no_grad()
def evaluate(model, objective, x: torch.Tensor, y: torch.Tensor | None = None, batch: int = 1024, seed: int = 0) -> dict:
    """Per-example means of the objective's terms over ``x`` (eval mode, no dropout)."""
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    totals = dict.fromkeys(objective.names, 0.0)
    for start in range(0, len(x), batch):
        xb = x[start : start + batch].to(dev)
        yb = None if y is None else y[start : start + batch].to(dev)
        _, sums = objective(model, xb, yb, generator=generator)
        for name in totals:
            totals[name] += float(sums[name])
    model.train(was_training)
    return {name: total / len(x) for name, total in totals.items()}


# ---------------------------------------------------------------- the loop

def _rng_state(shuffle: torch.Generator) -> dict:
    state = {"torch": torch.get_rng_state(), "shuffle": shuffle.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict, shuffle: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    shuffle.set_state(state["shuffle"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _run_epoch(model, objective, optimizer, x, y, settings: TrainSettings, shuffle: torch.Generator, bar) -> dict:
    """One pass over the training data in shuffled batches; running means shown on ``bar``."""
    model.train()
    order = torch.randperm(len(x), generator=shuffle).to(x.device)
    totals, seen = dict.fromkeys(objective.names, 0.0), 0
    for step, start in enumerate(range(0, len(x), settings.batch_size), start=1):
        idx = order[start : start + settings.batch_size]
        loss, sums = objective(model, x[idx], None if y is None else y[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        for name in totals:
            totals[name] += sums[name].detach()  # stays on the device: no sync per batch
        seen += len(idx)
        bar.update(len(idx))
        if step % 50 == 0:
            bar.set_postfix({name: f"{float(total) / seen:.4g}" for name, total in totals.items()}, refresh=False)
    return {name: float(total) / len(x) for name, total in totals.items()}


def _terms(terms: dict) -> str:
    return " ".join(f"{name} {value:.1f}" if abs(value) >= 100 else f"{name} {value:.4g}" for name, value in terms.items())


def fit(model, objective, train: tuple, val: tuple, settings: TrainSettings, path: str | Path, meta: dict,
        progress: bool = True) -> pd.DataFrame:
    """Train ``model`` in place and write the best-validation checkpoint to ``path``.

    ``train`` and ``val`` are ``(x, y)`` pairs (``y`` None for the VAE). Returns the per-epoch
    history (train_* and val_* terms, lr, restart flag), also saved as ``<name>_history.csv``.
    """
    path = Path(path)
    state_path = path.with_suffix(".last.pt")
    seed_everything(settings.seed)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    dev = device()
    model.to(dev, memory_format=torch.channels_last)  # ~10% faster CPU convolutions; no-op for the VAE
    x, y = (t.to(dev) if t is not None else None for t in train)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    shuffle = torch.Generator().manual_seed(settings.seed)
    restart_patience, lr_patience = settings.patience()
    meta = {**meta, "settings": asdict(settings)}

    run = {"epoch": 0, "lr": settings.lr, "stall": 0, "best_val": math.inf, "best_epoch": 0, "history": []}
    best = {"model": copy.deepcopy(model.state_dict()), "optimizer": copy.deepcopy(optimizer.state_dict())}
    resumed = load_state(state_path, meta)
    if resumed is not None:
        model.load_state_dict(resumed["model"])
        optimizer.load_state_dict(resumed["optimizer"])
        best, run = resumed["best"], resumed["run"]
        _set_rng_state(resumed["rng"], shuffle)
        print(f"resuming {path.name} after epoch {run['epoch']} of {settings.epochs}")

    epochs = tqdm(range(run["epoch"], settings.epochs), desc=path.stem, unit="epoch",
                  initial=run["epoch"], total=settings.epochs, disable=not progress)
    bar = tqdm(total=len(x), unit="ex", leave=False, disable=not progress)  # reused: one bar per epoch
    for epoch in epochs:
        for group in optimizer.param_groups:
            group["lr"] = run["lr"]
        bar.reset()
        bar.set_description(f"epoch {epoch + 1}")
        train_terms = _run_epoch(model, objective, optimizer, x, y, settings, shuffle, bar)
        val_terms = evaluate(model, objective, *val, seed=settings.seed)
        row = {"epoch": epoch + 1, **{f"train_{k}": v for k, v in train_terms.items()},
               **{f"val_{k}": v for k, v in val_terms.items()}, "lr": run["lr"], "event": ""}

        if val_terms["loss"] < run["best_val"]:
            run.update(best_val=val_terms["loss"], best_epoch=epoch + 1, stall=0)
            best = {"model": copy.deepcopy(model.state_dict()), "optimizer": copy.deepcopy(optimizer.state_dict())}
            row["event"] = "best"
        else:
            run["stall"] += 1
            events = []
            if run["stall"] % restart_patience == 0:
                model.load_state_dict(best["model"])
                optimizer.load_state_dict(best["optimizer"])
                events.append("restart")
            if run["stall"] % lr_patience == 0 and run["lr"] > settings.min_lr:
                run["lr"] = max(settings.min_lr, run["lr"] * settings.lr_factor)
                events.append(f"lr={run['lr']:.2g}")
            row["event"] = " ".join(events)
        run["history"].append(row)
        run["epoch"] = epoch + 1
        epochs.set_postfix(train=f"{train_terms['loss']:.4g}", val=f"{val_terms['loss']:.4g}",
                           best=f"{run['best_val']:.4g}", lr=f"{run['lr']:.2g}")
        if progress:  # a plain log line survives in executed notebooks and HTML exports
            print(f"epoch {epoch + 1:3d}/{settings.epochs}  train " + _terms(train_terms) + "  |  val "
                  + _terms(val_terms) + f"  |  lr {row['lr']:.2g} {row['event']}")
        save_torch({"meta": meta, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "best": best, "run": run, "rng": _rng_state(shuffle)}, state_path)

    bar.close()
    model.load_state_dict(best["model"])
    model.eval()
    history = pd.DataFrame(run["history"])
    save_csv(history, history_path(path))
    save_checkpoint(path, model, {**meta, "epochs": run["epoch"], "best_epoch": run["best_epoch"],
                                  "best_val_loss": run["best_val"]})
    state_path.unlink(missing_ok=True)
    return history


def history_path(checkpoint: str | Path) -> Path:
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(f"{checkpoint.stem}_history.csv")


# ---------------------------------------------------------------- the paper's two models

def _train_or_load(kind: str, dataset: str, profile: str | Profile, objective, epochs: int, retrain: bool,
                   progress: bool, extra_meta: dict, **settings) -> tuple[torch.nn.Module, pd.DataFrame]:
    """Train unless a finished checkpoint with the same settings exists (and ``retrain`` is False)."""
    profile = _profile(profile)
    seed_everything(profile.seed)  # the initial weights depend on the seed only
    model = build_model(kind, dataset)
    settings = TrainSettings(epochs=epochs, seed=profile.seed, **settings)
    path = model_path(kind, dataset, profile)
    meta = {"kind": kind, "dataset": dataset, "config": model.config(), "profile": profile.name,
            "train_subset": profile.train_subset, "eval_subset": profile.eval_subset, **extra_meta}
    if not retrain and checkpoint_is_current(path, {**meta, "settings": asdict(settings)}):
        print(f"{path} is up to date; skipping training (retrain=True trains again)")
        load_into(model, path, kind, dataset, profile.name)
        return model.to(device()).eval(), pd.read_csv(history_path(path))
    train, val = (load_split(dataset, split, subset, seed=profile.seed)
                  for split, subset in (("train", profile.train_subset), ("val", profile.eval_subset)))
    labels = kind == "classifier"
    history = fit(model, objective, (train.images, train.labels if labels else None),
                  (val.images, val.labels if labels else None), settings, path, meta, progress)
    return model, history


def train_vae(dataset: str, profile: str | Profile, retrain: bool = False, recon_scale: float | None = None,
              epochs: int | None = None, progress: bool = True, **settings) -> tuple[VAE, pd.DataFrame]:
    """Train (or load the finished) VAE for ``dataset`` under ``profile``; returns (model, history).

    ``recon_scale`` defaults to the paper's (1000 for combined, 1 otherwise); ``epochs`` to the
    profile's; ``settings`` override ``TrainSettings`` fields (lr, patiences, ...).
    """
    check_dataset(dataset)
    recon_scale = RECON_SCALE[dataset] if recon_scale is None else float(recon_scale)
    epochs = epochs or _profile(profile).vae_epochs[dataset]
    return _train_or_load("vae", dataset, profile, VAEObjective(recon_scale), epochs, retrain, progress,
                          {"recon_scale": recon_scale}, **settings)


def train_classifier(dataset: str, profile: str | Profile, retrain: bool = False, epochs: int | None = None,
                     progress: bool = True, **settings) -> tuple[Classifier, pd.DataFrame]:
    """Train (or load the finished) in-domain classifier for ``dataset`` ("mnist" | "fmnist")."""
    if dataset not in CLASSIFIER_DATASETS:
        raise ValueError(f"classifiers exist for {list(CLASSIFIER_DATASETS)} only (section 8.1), not {dataset!r}")
    epochs = epochs or _profile(profile).classifier_epochs
    return _train_or_load("classifier", dataset, profile, ClassifierObjective(), epochs, retrain, progress, {}, **settings)


def _profile(profile: str | Profile) -> Profile:
    return profile if isinstance(profile, Profile) else get_profile(profile)
