"""The annotation tool's logic, driven headless: priming -> annotate -> back/skip -> resume; button clicks."""

import itertools

import pytest
import torch

from paper_lib.annotator_ui import KEYS, AnnotationSession, AnnotatorApp
from paper_lib.study_batch import Batch
from paper_lib.study_store import LABELS, AnnotationStore


@pytest.fixture
def batch():
    ids = [f"mnist-{i:03d}" for i in range(5)]
    images = torch.arange(5 * 784).reshape(5, 784).remainder(256).to(torch.uint8)
    return Batch("mnist_test", "mnist", ids, images, torch.zeros(4, 784, dtype=torch.uint8), ["0", "0", "1", "1"])


@pytest.fixture
def store(tmp_path, batch):
    store = AnnotationStore(tmp_path / "a.sqlite")
    store.register_samples(batch.name, batch.dataset, batch.sample_ids)
    return store


def test_session_priming_annotate_back_skip_resume(store, batch):
    ticks = itertools.count()
    session = AnnotationSession(store, batch, " ada ", clock=lambda: float(next(ticks)))
    assert session.phase == "priming" and session.annotator == "ada" and sorted(session.order) == batch.sample_ids
    with pytest.raises(RuntimeError, match="priming"):
        session.answer("creative")
    session.begin()
    first = session.current
    session.answer("creative")
    assert store.labels_of("ada", batch.name) == {first: "creative"} and session.progress == (1, 5)
    assert store.annotations()["seconds"].iloc[0] > 0

    skipped = session.current
    session.skip()
    session.back()
    assert session.current == skipped
    session.back()
    assert session.current == first
    session.answer("inconclusive")  # changing an answer updates the row
    assert store.labels_of("ada", batch.name)[first] == "inconclusive" and session.progress == (1, 5)
    assert session.current == skipped

    session.answer("not novel or creative")
    resumed = AnnotationSession(store, batch, "ada")  # a new session picks up at the first unlabelled image
    resumed.begin()
    assert resumed.progress == (2, 5) and resumed.current not in (first, skipped)
    assert resumed.order == session.order
    while resumed.phase == "annotate":
        resumed.answer("creative")
    assert resumed.phase == "done" and resumed.current is None and resumed.progress == (5, 5)
    resumed.back()
    assert resumed.phase == "annotate" and resumed.current is not None

    other = AnnotationSession(store, batch, "bob")
    assert other.progress == (0, 5) and other.order != session.order  # own order per annotator


def test_session_refuses_empty_name(store, batch):
    with pytest.raises(ValueError, match="annotator name is empty"):
        AnnotationSession(store, batch, "")


def test_app_clicks_and_keys(store, batch):
    app = AnnotatorApp(store, {"mnist": batch})
    app.start_button.click()
    assert "annotator name is empty" in app.message.value and app.session is None
    app.name.value = "ada"
    app.start_button.click()
    assert app.session.phase == "priming" and app.ready_button in app.widget.children[0].children
    app.ready_button.click()
    assert app.image in app.widget.children and "0 / 5" in app.progress.value
    assert app.image.value[:4] == b"\x89PNG"

    shown = app.session.current
    app.label_buttons[2].click()
    assert store.labels_of("ada", "mnist_test") == {shown: LABELS[2]} and "1 / 5" in app.progress.value
    app.keys.value = "b"
    assert app.session.current == shown and app.keys.value == ""
    assert app.label_buttons[2].button_style == "info"  # the earlier answer is highlighted
    app.keys.value = "1"
    assert store.labels_of("ada", "mnist_test") == {shown: KEYS["1"]}
    app.keys.value = "s"
    app.keys.value = "x"  # other keys do nothing
    for _ in range(4):
        app.keys.value = "4"
    assert app.session.phase == "done" and "5 / 5" in app.progress.value


def test_app_reports_a_failed_write_and_stays_on_the_image(store, batch, monkeypatch):
    import sqlite3

    app = AnnotatorApp(store, {"mnist": batch})
    app.name.value = "ada"
    app.start_button.click()
    app.ready_button.click()
    shown = app.session.current

    def locked(*args, **kwargs):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(store, "annotate", locked)
    app.label_buttons[0].click()
    assert "not saved (database is locked)" in app.message.value
    assert app.session.current == shown and app.session.progress == (0, 5)
