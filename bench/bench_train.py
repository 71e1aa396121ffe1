"""Training cost (section 8.3 models): one epoch of each of the five models on its full training split,
validation included, and the paper profile's training time projected from it.

Target: the five models' training (vae_epochs and classifier_epochs of the paper profile) within
20 minutes, so that ``make all`` fits in about an hour on a 2-core CPU. Writes only to a temporary folder.

    .venv/bin/python bench/bench_train.py [--models vae_mnist,classifier_fmnist] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from paper_lib.checkpoints import build_model
from paper_lib.config import device, get_profile, seed_everything
from paper_lib.data import load_split
from paper_lib.train import RECON_SCALE, ClassifierObjective, TrainSettings, VAEObjective, fit

MODELS = ("vae_mnist", "vae_fmnist", "vae_combined", "classifier_mnist", "classifier_fmnist")
TARGET_S = 20 * 60


def epoch_seconds(name: str, folder: Path) -> tuple[float, float]:
    """Wall and process CPU seconds of one epoch (CPU time is less sensitive to other load on the machine)."""
    kind, dataset = name.split("_")
    train, val = load_split(dataset, "train"), load_split(dataset, "val")
    labels = kind == "classifier"
    objective = ClassifierObjective() if labels else VAEObjective(RECON_SCALE[dataset])
    seed_everything(0)
    model = build_model(kind, dataset)
    start, cpu_start = time.perf_counter(), time.process_time()
    fit(model, objective, (train.images, train.labels if labels else None), (val.images, val.labels if labels else None),
        TrainSettings(epochs=1), folder / f"{name}.pt", {"kind": kind, "dataset": dataset}, progress=False)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start, time.process_time() - cpu_start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated subset of {','.join(MODELS)}")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    names = args.models.split(",")
    if unknown := set(names) - set(MODELS):
        parser.error(f"unknown models {sorted(unknown)}: choose from {list(MODELS)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    paper = get_profile("paper")
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # first use imports torch._dynamo: not training time
    print(f"device {device()}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    total = 0.0
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            seconds, cpu = epoch_seconds(name, Path(folder))
            kind, dataset = name.split("_")
            epochs = paper.vae_epochs[dataset] if kind == "vae" else paper.classifier_epochs
            total += seconds * epochs
            print(f"{name:18s} {seconds:6.1f} s/epoch (CPU {cpu:6.1f} s) x {epochs:3d} epochs = {seconds * epochs / 60:5.1f} min")
    print(f"projected training of these models in the paper profile: {total / 60:.1f} min (target <= {TARGET_S / 60:.0f})")
    if set(names) == set(MODELS) and total > TARGET_S:
        sys.exit(1)


if __name__ == "__main__":
    main()
