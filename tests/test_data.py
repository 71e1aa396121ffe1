"""Offline data: checksums, the paper's 55k/5k/10k splits (section 8.1) and the MNIST + FMNIST union."""

import shutil

import pytest
import torch

from paper_lib import config, data


@pytest.fixture
def data_copy(tmp_path, monkeypatch):
    """A private copy of the raw files, so a test can corrupt or delete one."""
    shutil.copytree(config.data_dir() / "raw", tmp_path / "raw")
    monkeypatch.setenv("PAPER_LIB_DATA", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("dataset, sizes", [
    ("mnist", (55_000, 5_000, 10_000)),
    ("fmnist", (55_000, 5_000, 10_000)),
    ("combined", (110_000, 10_000, 20_000)),
])
def test_split_shapes_dtypes_and_ranges(dataset, sizes):
    for split, n in zip(data.SPLITS, sizes):
        x = data.load_split(dataset, split)
        assert x.images.shape == (n, 784) and x.images.dtype == torch.float32
        assert x.labels.shape == (n,) and x.labels.dtype == torch.int64
        assert 0.0 <= x.images.min() and x.images.max() <= 1.0
        assert set(x.labels.unique().tolist()) == set(range(10))


def test_label_counts_match_the_official_test_sets():
    mnist = torch.bincount(data.load_split("mnist", "test").labels).tolist()
    assert mnist == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    fmnist = torch.bincount(data.load_split("fmnist", "test").labels).tolist()
    assert fmnist == [1000] * 10


def test_train_and_val_partition_the_60k_training_set():
    idx = data.split_indices()
    together = torch.cat([idx["train"], idx["val"]])
    assert len(idx["train"]) == 55_000 and len(idx["val"]) == 5_000
    assert torch.equal(together.sort().values, torch.arange(60_000))


def test_splits_are_identical_when_rebuilt_from_the_seed(data_copy):
    assert not (data_copy / "splits.pt").exists()
    rebuilt = data.split_indices()
    assert (data_copy / "splits.pt").exists()
    first = data.load_split("mnist", "val")
    second = data.load_split("mnist", "val")
    assert torch.equal(first.images, second.images)
    perm = torch.randperm(60_000, generator=torch.Generator().manual_seed(data.SPLIT_SEED))
    assert torch.equal(rebuilt["val"], perm[: data.N_VAL].sort().values)


def test_combined_keeps_source_and_class_labels():
    combined = data.load_split("combined", "test")
    mnist, fmnist = data.load_split("mnist", "test"), data.load_split("fmnist", "test")
    assert torch.equal(combined.source, torch.cat([torch.zeros(10_000), torch.ones(10_000)]).long())
    assert torch.equal(combined.labels, torch.cat([mnist.labels, fmnist.labels]))
    assert torch.equal(combined.images[10_000:], fmnist.images)
    assert torch.equal(combined.groups, combined.source)
    assert torch.equal(mnist.groups, mnist.labels)


def test_subset_is_fixed_and_sized():
    a = data.load_split("fmnist", "train", subset=100, seed=3)
    b = data.load_split("fmnist", "train", subset=100, seed=3)
    assert len(a) == 100 and torch.equal(a.images, b.images)
    assert len(data.load_split("fmnist", "val", subset=10**9)) == 5_000


def test_corrupt_file_is_refused_with_a_clear_error(data_copy):
    path = data.raw_dir("MNIST") / "t10k-labels-idx1-ubyte"
    payload = bytearray(path.read_bytes())
    payload[100] ^= 0xFF
    path.write_bytes(bytes(payload))
    with pytest.raises(data.DataError) as err:
        data.load_split("mnist", "test")
    message = str(err.value)
    assert "t10k-labels-idx1-ubyte" in message and "27ae3e4e09519cfbb04c329615203637" in message
    assert "make data" in message


def test_missing_file_is_named(data_copy):
    (data.raw_dir("FashionMNIST") / "train-images-idx3-ubyte").unlink()
    with pytest.raises(data.DataError, match="missing data file .*train-images-idx3-ubyte.*make data"):
        data.verify("FashionMNIST")


def test_install_refuses_wrong_bytes_and_writes_nothing(tmp_path):
    with pytest.raises(data.DataError, match="expected 27ae3e4e"):
        data._install("MNIST", "t10k-labels-idx1-ubyte", b"not an idx file", tmp_path)
    assert not (data.raw_dir("MNIST", tmp_path) / "t10k-labels-idx1-ubyte").exists()


def test_install_from_an_idx_folder_writes_the_four_verified_files(tmp_path):
    data._install_idx_dir("MNIST", config.data_dir() / "raw" / "MNIST" / "raw", tmp_path)
    installed = data.raw_dir("MNIST", tmp_path)
    assert sorted(p.name for p in installed.iterdir()) == sorted(data.MD5["MNIST"])
    data.verify("MNIST", tmp_path)


def test_bad_names_list_the_valid_choices():
    with pytest.raises(ValueError, match="mnist.*fmnist.*combined"):
        data.load_split("cifar", "train")
    with pytest.raises(ValueError, match="train.*val.*test"):
        data.load_split("mnist", "validation")
