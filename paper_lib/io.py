"""Atomic file writes: an interrupted run never leaves a half-written file that looks finished."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import torch


@contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; results are meant to be read by everyone
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_torch(obj, path: str | Path) -> Path:
    """``torch.save`` through a temporary file (tensors, dicts of tensors and plain values only)."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def load_torch(path: str | Path, what: str = "file", fix: str = "rerun the notebook that writes it"):
    """``torch.load(weights_only=True)`` with an error that names the missing file and the fix."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} not found at {path}: {fix}")
    return torch.load(path, map_location="cpu", weights_only=True)


def save_csv(df: pd.DataFrame, path: str | Path, **kwargs) -> Path:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, **kwargs)
    return Path(path)


def save_text(text: str, path: str | Path) -> Path:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)
    return Path(path)
