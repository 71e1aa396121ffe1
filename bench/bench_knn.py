"""kNN novelty speed: 10,000 queries against the 55,000 MNIST training images, torch vs scikit-learn.

Both find the exact 5 nearest neighbours (distances and indices) of the 10,000 MNIST test images;
the torch search runs on config.device(). Target: torch at least 1.5x faster than
NearestNeighbors(algorithm="brute"). Also prints the time of the full novelty metric (k = 1 and 5,
raw and normalised), whose normalisation adds a search for each distinct neighbour.

    python bench/bench_knn.py [--queries 10000]
"""

import argparse
import time

import numpy as np
import torch
from sklearn.neighbors import NearestNeighbors

from paper_lib.config import device
from paper_lib.data import load_split
from paper_lib.knn import NeighbourIndex

TARGET = 1.5


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=10_000)
    args = parser.parse_args()
    train = load_split("mnist", "train").images
    queries = load_split("mnist", "test").images[: args.queries]
    print(f"{len(queries):,} queries x {len(train):,} training images, 784 pixels; torch on {device()}, "
          f"{torch.get_num_threads()} threads")

    index = NeighbourIndex(train)
    (t_dist, t_idx), t_torch = timed(lambda: index.search(queries, 5))
    sk = NearestNeighbors(n_neighbors=5, algorithm="brute").fit(train.numpy())
    (s_dist, s_idx), t_sklearn = timed(lambda: sk.kneighbors(queries.numpy()))

    same = (t_idx.numpy() == s_idx).mean()
    gap = np.abs(t_dist.numpy() - s_dist).max()
    print(f"torch search      {t_torch:7.1f} s")
    print(f"sklearn brute     {t_sklearn:7.1f} s")
    print(f"same neighbours: {same:.4%} of indices, max distance difference {gap:.2e}")
    ratio = t_sklearn / t_torch
    print(f"speed-up torch / sklearn: {ratio:.2f}x (target >= {TARGET}x): {'PASS' if ratio >= TARGET else 'FAIL'}")

    fresh = NeighbourIndex(train)
    _, t_novelty = timed(lambda: fresh.novelty(queries, ks=(1, 5)))
    print(f"full novelty metric (1NN, 5NN, kNS; {int((~torch.isnan(fresh._own[:, 0])).sum()):,} distinct "
          f"neighbours normalised): {t_novelty:.1f} s")


if __name__ == "__main__":
    main()
