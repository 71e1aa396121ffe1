"""Atomic file writes: an interrupted run never leaves a half-written file that looks finished."""

from __future__ import annotations

import fcntl
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


@contextmanager
def locked_folder(folder: str | Path):
    """Hold an exclusive lock on ``folder`` (no lock file is left behind) for a read-modify-write."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def update_rows(path: str | Path, rows: pd.DataFrame, key: str = "dataset",
                order: tuple = ("mnist", "fmnist", "combined")) -> pd.DataFrame:
    """Replace the rows of the CSV ``path`` whose ``key`` appears in ``rows``; keep the others.

    Notebooks run per dataset each own their rows of a shared table; the read-modify-write happens under
    a lock on the folder and the write is atomic, so parallel runs lose no row.
    """
    path = Path(path)
    with locked_folder(path.parent):
        old = pd.read_csv(path) if path.exists() else rows.iloc[:0]
        table = pd.concat([old[~old[key].isin(rows[key])], rows], ignore_index=True)
        rank = {name: i for i, name in enumerate(order)}
        table = table.sort_values(key, key=lambda col: col.map(lambda v: rank.get(v, len(rank))), kind="stable")
        save_csv(table.reset_index(drop=True), path)
    return table.reset_index(drop=True)
