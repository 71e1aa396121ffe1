"""Model checkpoints: where they live, what they record, and loading them safely.

A checkpoint is ``{"format", "meta", "state_dict"}`` written atomically; ``meta`` records the kind
("vae" | "classifier"), dataset, architecture config, profile, epochs and training settings.
Everything loads with ``torch.load(weights_only=True)``, and a checkpoint whose kind, dataset or
architecture differs from what is asked for is refused with an error that says how to rebuild it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .config import Profile, device, results_path
from .io import load_torch, save_torch
from .models import VAE, Z_DIM, Classifier

FORMAT = 1
NOTEBOOK = {"vae": "notebooks/01_train_vae.ipynb", "classifier": "notebooks/02_train_classifiers.ipynb"}
# Fields written once training ends; they do not decide whether a checkpoint is current.
OUTCOME_FIELDS = ("epochs", "best_epoch", "best_val_loss", "finished")


class CheckpointMismatch(ValueError):
    """A checkpoint holds a different kind of model, dataset or architecture than the one asked for."""


def model_path(kind: str, dataset: str, profile: str | Profile) -> Path:
    """``results/<profile>/models/<kind>_<dataset>.pt``."""
    if kind not in NOTEBOOK:
        raise ValueError(f"unknown model kind {kind!r}: choose one of {list(NOTEBOOK)}")
    return results_path(profile, "models", f"{kind}_{dataset}.pt")


def _fix(kind: str, dataset: str, profile: str) -> str:
    return f"run {NOTEBOOK[kind]} with -p dataset {dataset} -p profile {profile} (or make all PROFILE={profile})"


def build_model(kind: str, dataset: str) -> torch.nn.Module:
    """The paper's architecture for ``kind`` and ``dataset`` (section 8.3), freshly initialised."""
    if dataset not in Z_DIM:
        raise ValueError(f"unknown dataset {dataset!r}: choose one of {list(Z_DIM)}")
    if kind == "vae":
        return VAE(Z_DIM[dataset])
    if kind == "classifier":
        return Classifier()
    raise ValueError(f"unknown model kind {kind!r}: choose one of {list(NOTEBOOK)}")


def save_checkpoint(path: str | Path, model: torch.nn.Module, meta: dict) -> Path:
    """Write weights (on the CPU) and ``meta`` atomically."""
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    return save_torch({"format": FORMAT, "meta": {**meta, "finished": True}, "state_dict": state}, path)


def read_checkpoint(path: str | Path, kind: str, dataset: str, profile: str = "paper") -> dict:
    """The checkpoint at ``path``, after checking that it holds a ``kind`` model for ``dataset``."""
    payload = load_torch(path, f"{kind} checkpoint for {dataset}", _fix(kind, dataset, profile))
    meta = payload.get("meta", {}) if isinstance(payload, dict) else {}
    if payload.get("format") != FORMAT or not meta.get("finished"):
        raise CheckpointMismatch(f"{path} is not a finished checkpoint of format {FORMAT}: delete it and "
                                 + _fix(kind, dataset, profile))
    for field, wanted in (("kind", kind), ("dataset", dataset)):
        if meta.get(field) != wanted:
            raise CheckpointMismatch(f"{path} holds {field} {meta.get(field)!r}, but {wanted!r} was asked for: "
                                     f"delete it and {_fix(kind, dataset, profile)}")
    return payload


def load_into(model: torch.nn.Module, path: str | Path, kind: str, dataset: str, profile: str = "paper") -> dict:
    """Load the checkpoint's weights into ``model``; refuse a different architecture. Returns its meta."""
    payload = read_checkpoint(path, kind, dataset, profile)
    stored, expected = payload["meta"].get("config"), model.config()
    if stored != expected:
        raise CheckpointMismatch(f"{path} holds a {kind} with architecture {stored}, but {dataset} uses {expected}: "
                                 f"delete it and {_fix(kind, dataset, profile)}")
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise CheckpointMismatch(f"{path} does not fit the {kind} architecture ({exc}); delete it and "
                                 f"{_fix(kind, dataset, profile)}") from exc
    return payload["meta"]


def load_model(kind: str, dataset: str, profile: str | Profile) -> torch.nn.Module:
    """The trained ``kind`` model for ``dataset`` under ``profile``, in eval mode on ``config.device()``."""
    name = profile.name if isinstance(profile, Profile) else profile
    model = build_model(kind, dataset)
    load_into(model, model_path(kind, dataset, profile), kind, dataset, name)
    return model.to(device()).eval()


def load_vae(dataset: str, profile: str | Profile) -> VAE:
    """The trained VAE for ``dataset`` ("mnist" | "fmnist" | "combined"), eval mode, on the device."""
    return load_model("vae", dataset, profile)


def load_classifier(dataset: str, profile: str | Profile) -> Classifier:
    """The trained in-domain classifier for ``dataset`` ("mnist" | "fmnist"), eval mode, on the device."""
    if dataset not in ("mnist", "fmnist"):
        raise ValueError(f"classifiers exist for 'mnist' and 'fmnist' only (section 8.1), not {dataset!r}")
    return load_model("classifier", dataset, profile)


def _same(meta: dict, expected: dict) -> bool:
    return all(meta.get(key) == value for key, value in expected.items() if key not in OUTCOME_FIELDS)


def checkpoint_is_current(path: str | Path, expected_meta: dict) -> bool:
    """True when ``path`` is a finished checkpoint trained with exactly ``expected_meta``."""
    try:
        payload = load_torch(path)
    except Exception:  # missing or unreadable: not current
        return False
    return payload.get("format") == FORMAT and payload["meta"].get("finished", False) and _same(payload["meta"], expected_meta)


def load_state(path: str | Path, expected_meta: dict) -> dict | None:
    """An interrupted run's training state saved with the same ``expected_meta``, else None."""
    if not Path(path).exists():
        return None
    try:
        state = load_torch(path)
    except Exception as exc:  # an unreadable state file is not worth resuming from
        print(f"ignoring unreadable training state {path} ({exc}); starting afresh")
        return None
    if not _same(state.get("meta", {}), expected_meta):
        print(f"ignoring training state {path}: it was saved with other settings; starting afresh")
        return None
    return state


@torch.no_grad()
def encode_split(vae: VAE, images: torch.Tensor, batch: int = 1024) -> torch.Tensor:
    """Posterior means ``mu`` of ``images`` [N, 784] (eval mode, no grad), as a CPU float32 tensor [N, z]."""
    was_training = vae.training
    vae.eval()
    dev = next(vae.parameters()).device
    out = [vae.encode(images[i : i + batch].to(dev))[0].cpu() for i in range(0, len(images), batch)]
    vae.train(was_training)
    return torch.cat(out) if out else torch.empty(0, vae.z_dim)
