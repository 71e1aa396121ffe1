"""The annotation store: round trip, UPSERT, two processes writing at once, refusal of bad input, CSV."""

import multiprocessing as mp

import pandas as pd
import pytest

from paper_lib.study_store import LABELS, AnnotationStore

SAMPLES = [f"mnist-{i:04d}" for i in range(60)]


@pytest.fixture
def store(tmp_path):
    store = AnnotationStore(tmp_path / "annotations.sqlite")
    store.register_samples("mnist_test", "mnist", SAMPLES)
    return store


def test_round_trip_and_upsert(store):
    store.annotate("ada", SAMPLES[0], "creative", seconds=2.5)
    store.annotate("bob", SAMPLES[0], "inconclusive")
    store.annotate("ada", SAMPLES[0], "novel but not creative")  # answering again replaces the row
    table = store.annotations(batch="mnist_test")
    assert len(table) == 2
    assert table.set_index("annotator").loc["ada", "label"] == "novel but not creative"
    assert store.labels_of("ada", "mnist_test") == {SAMPLES[0]: "novel but not creative"}
    assert store.annotators("mnist_test") == ["ada", "bob"]
    assert list(table.columns) == ["annotator", "sample_id", "dataset", "label", "answered_at", "seconds"]


def test_refuses_bad_input(store):
    with pytest.raises(ValueError, match="choose one of") as error:
        store.annotate("ada", SAMPLES[0], "garbage")
    assert all(label in str(error.value) for label in LABELS)
    with pytest.raises(KeyError, match="unknown sample"):
        store.annotate("ada", "mnist-nope", "creative")
    with pytest.raises(ValueError, match="annotator name is empty"):
        store.annotate("  ", SAMPLES[0], "creative")
    with pytest.raises(ValueError, match="already belongs to batch"):
        store.register_samples("other_batch", "mnist", SAMPLES[:1])
    assert store.annotations().empty


def test_reregistering_forgets_only_unlabelled_samples(store):
    store.annotate("ada", SAMPLES[0], "creative")
    store.register_samples("mnist_test", "mnist", SAMPLES[100:])
    kept = set(store.sample_ids("mnist_test"))
    assert SAMPLES[0] in kept and SAMPLES[1] not in kept and set(SAMPLES[100:]) <= kept


def _write_many(path, annotator, barrier):
    store = AnnotationStore(path)
    barrier.wait()
    for i, sample in enumerate(SAMPLES):
        store.annotate(annotator, sample, LABELS[i % 4])
        store.annotate("shared", sample, LABELS[(i + len(annotator)) % 4])  # both processes hit the same rows


def test_two_processes_writing_at_once_lose_nothing(store):
    context = mp.get_context("fork")
    barrier = context.Barrier(2)
    workers = [context.Process(target=_write_many, args=(store.path, name, barrier)) for name in ("ada", "bobby")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    table = store.annotations()
    assert len(table) == 3 * len(SAMPLES)  # ada, bobby, and one "shared" row per sample
    for name in ("ada", "bobby"):
        mine = table[table["annotator"] == name].set_index("sample_id")["label"]
        assert mine.to_dict() == {s: LABELS[i % 4] for i, s in enumerate(SAMPLES)}
    shared = table[table["annotator"] == "shared"]["label"]
    assert shared.isin(LABELS).all() and shared.size == len(SAMPLES)
    assert not (store.path.parent / "annotations.sqlite-wal").exists()  # checkpointed once writers close


def test_csv_round_trip_and_merge(store, tmp_path):
    store.annotate("ada", SAMPLES[0], "creative", answered_at="2024-01-01T10:00:00.000+00:00", seconds=1.0)
    store.annotate("ada", SAMPLES[1], "inconclusive", answered_at="2024-01-01T10:00:01.000+00:00")
    path = store.export_csv(tmp_path / "out.csv")
    copy = AnnotationStore(tmp_path / "copy.sqlite")
    copy.register_samples("mnist_test", "mnist", SAMPLES)
    assert copy.import_csv(path) == 2
    pd.testing.assert_frame_equal(copy.annotations(), store.annotations())

    merged = pd.read_csv(path)
    merged.loc[0, ["label", "answered_at"]] = ["not novel or creative", "2023-01-01T00:00:00.000+00:00"]  # older
    merged.loc[1, ["label", "answered_at"]] = ["creative", "2025-01-01T00:00:00.000+00:00"]  # newer
    merged.to_csv(tmp_path / "merge.csv", index=False)
    copy.import_csv(tmp_path / "merge.csv")
    assert copy.labels_of("ada", "mnist_test") == {SAMPLES[0]: "creative", SAMPLES[1]: "creative"}


def test_import_refuses_bad_rows_atomically(store, tmp_path):
    rows = pd.DataFrame({"annotator": ["ada", "ada"], "sample_id": [SAMPLES[0], SAMPLES[1]],
                         "label": ["creative", "garbage"], "answered_at": ["2024", "2024"]})
    rows.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match="row 3 has invalid label 'garbage'"):
        store.import_csv(tmp_path / "bad.csv")
    rows.loc[1, ["sample_id", "label"]] = ["mnist-nope", "creative"]
    rows.to_csv(tmp_path / "unknown.csv", index=False)
    with pytest.raises(KeyError, match="unknown sample"):
        store.import_csv(tmp_path / "unknown.csv")
    assert store.annotations().empty
