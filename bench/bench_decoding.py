"""Creative decoding overhead (paper section 8.2, "Complexity"): low-active decoding of 10,000 samples,
n = 5, against regular decoding of the same z at the same layer, with precomputed statistics.

Target: at most 1.1x the time of regular decoding, read on process CPU time on a CPU machine (wall time
swings with other load there; both are printed) and on wall time on a GPU. Uses the trained VAE when its
checkpoint exists, else a freshly initialised one (the cost does not depend on the weights, only on the
size of the low-active pool).

    .venv/bin/python bench/bench_decoding.py [--dataset mnist] [--profile smoke] [--samples 10000]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from paper_lib.checkpoints import load_vae
from paper_lib.config import device, seed_everything
from paper_lib.decoding import decode_batches, generate
from paper_lib.models import VAE, Z_DIM
from paper_lib.neurons import layer_stats


def timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--profile", default="paper")
    parser.add_argument("--layer", default="decoder.relu3")
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=7)
    # One thread by default: on a small machine shared with other work, a second OpenMP thread turns each of
    # the edit's small tensor ops into a wait for a busy core, and the timing measures the wait, not the work.
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    seed_everything(0)
    try:
        vae, source = load_vae(args.dataset, args.profile), f"trained {args.dataset} VAE ({args.profile})"
    except (FileNotFoundError, ValueError):
        vae, source = VAE(Z_DIM[args.dataset]).to(device()).eval(), "freshly initialised VAE"
    stats = layer_stats(vae, args.layer, torch.randn(5_000, vae.z_dim), forward=vae.decode, progress=False)
    z = torch.randn(args.samples, vae.z_dim)
    batch = args.samples  # one batch: the hook runs once, as a 10k-sample decode would
    regular = lambda: decode_batches(vae, z, batch)  # noqa: E731
    creative = lambda: generate(vae, stats, "low_active", z, n_on=5, batch=batch,  # noqa: E731
                                generator=torch.Generator().manual_seed(1))
    regular(), creative()  # warm-up (and the cached model fingerprint)
    times = {"regular": [], "creative": []}
    for _ in range(args.repeats):  # interleaved, so other load on the machine hits both alike
        times["regular"].append(timed(regular))
        times["creative"].append(timed(creative))
    print(f"{source}, layer {args.layer}, {args.samples} samples, {args.repeats} repeats, "
          f"{torch.get_num_threads()} threads, device {device()}")
    best = {}
    for name, label in (("regular", "regular decoding  "), ("creative", "low-active, n = 5 ")):
        wall, cpu = zip(*times[name])
        best[name] = (min(wall), min(cpu))
        print(f"{label}  wall best {min(wall) * 1e3:8.1f} ms, median {statistics.median(wall) * 1e3:8.1f} ms | "
              f"CPU best {min(cpu) * 1e3:8.1f} ms")
    wall_ratio = best["creative"][0] / best["regular"][0]
    cpu_ratio = best["creative"][1] / best["regular"][1]
    # On a shared CPU machine wall time swings with other load; process CPU time does not (on a GPU it is
    # host time only, so there the wall ratio is the one to read).
    ratio = wall_ratio if torch.cuda.is_available() else cpu_ratio
    print(f"ratio low-active / regular: {cpu_ratio:.3f}x CPU time, {wall_ratio:.3f}x wall time (best of "
          f"{args.repeats}); target <= 1.1x: {'met' if ratio <= 1.1 else 'NOT met'}")

if __name__ == "__main__":
    main()
