"""The annotation tool (paper section 3 and Fig. 5): an ipywidgets app for Jupyter (or Voila).

An annotator types a name, picks a dataset, studies a priming screen of training examples per class
(the paper's annotators "were primed on the training dataset"), then labels one image at a time with
the four options. Every answer is written to the SQLite store at once, so closing the browser loses
nothing and the next session resumes at the annotator's first unlabelled image.

Keyboard: stock ipywidgets cannot capture keys globally, so the tool has a small key box that keeps
the focus: typing 1-4 answers, b goes back, s skips (each key acts at once, no Enter needed).

``AnnotationSession`` holds the logic (order, resume, answer, back, skip, progress) and knows no
widgets; ``AnnotatorApp`` only draws it, so both are testable without a browser.
"""

from __future__ import annotations

import io
import sqlite3
import time
import zlib

import ipywidgets as w
import numpy as np
from PIL import Image

from .study_batch import Batch
from .study_store import LABELS, AnnotationStore, check_annotator, check_label

KEYS = {str(i + 1): label for i, label in enumerate(LABELS)}
DESCRIPTIONS = {
    "not novel or creative": "looks like an ordinary example of the training data shown on the priming screen",
    "novel but not creative": "new, unlike the training examples, but not meaningful: noise, broken or garbled shapes",
    "creative": "new and meaningful: a plausible symbol or object that is not simply one of the training classes",
    "inconclusive": "you cannot decide",
}


class AnnotationSession:
    """One annotator working through one batch.

    The images come in an order of their own for each annotator (a fixed shuffle seeded by the name), so
    position effects such as fatigue do not line up with particular images across the panel.
    """

    def __init__(self, store: AnnotationStore, batch: Batch, annotator: str, clock=time.monotonic):
        self.store, self.batch, self.clock = store, batch, clock
        self.annotator = check_annotator(annotator)
        rng = np.random.default_rng(zlib.crc32(self.annotator.encode()))
        self.order = [batch.sample_ids[i] for i in rng.permutation(len(batch))]
        self.labels = store.labels_of(self.annotator, batch.name)
        self.phase = "priming"
        self.history: list[int] = []
        self.position = self._next_unlabelled(-1)
        self.shown_at = clock()

    def _next_unlabelled(self, after: int) -> int | None:
        """Index of the first unlabelled image after ``after`` (wrapping round), or None when all are done."""
        n = len(self.order)
        for step in range(1, n + 1):
            i = (after + step) % n
            if self.order[i] not in self.labels:
                return i
        return None

    def begin(self) -> None:
        """Leave the priming screen."""
        self.phase = "annotate" if self.position is not None else "done"
        self.shown_at = self.clock()

    @property
    def current(self) -> str | None:
        return None if self.position is None else self.order[self.position]

    @property
    def progress(self) -> tuple[int, int]:
        return len(self.labels), len(self.order)

    def _move(self, position: int | None) -> None:
        if self.position is not None:
            self.history.append(self.position)
        self.position = position
        self.phase = "done" if position is None else "annotate"
        self.shown_at = self.clock()

    def answer(self, label: str) -> None:
        """Store ``label`` for the current image (replacing an earlier answer) and go to the next unlabelled."""
        if self.phase != "annotate":
            raise RuntimeError(f"cannot answer in the {self.phase!r} phase")
        sample = self.current
        self.store.annotate(self.annotator, sample, check_label(label), seconds=self.clock() - self.shown_at)
        self.labels[sample] = label
        self._move(self._next_unlabelled(self.position))

    def skip(self) -> None:
        """Leave the current image unlabelled for now; it comes round again after the others."""
        if self.phase == "annotate":
            following = self._next_unlabelled(self.position)
            if following != self.position:
                self._move(following)

    def back(self) -> None:
        """Return to the image shown before this one (its answer can then be changed)."""
        if self.history:
            self.position = self.history.pop()
            self.phase = "annotate"
            self.shown_at = self.clock()


def png(image: np.ndarray, scale: int) -> bytes:
    """A uint8 image enlarged by pixel repetition (crisp at any size) as PNG bytes."""
    big = np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)
    buffer = io.BytesIO()
    Image.fromarray(big).save(buffer, format="PNG")
    return buffer.getvalue()


def montage(images: np.ndarray) -> np.ndarray:
    """[k, 784] uint8 images side by side, separated by a 2-pixel white gap."""
    tiles = [np.pad(im.reshape(28, 28), ((0, 0), (0, 2)), constant_values=255) for im in images]
    return np.concatenate(tiles, axis=1)


class AnnotatorApp:
    """The widgets around an ``AnnotationSession``; display ``app.widget`` in a notebook."""

    def __init__(self, store: AnnotationStore, batches: dict[str, Batch], image_scale: int = 14):
        if not batches:
            raise ValueError("no annotation batch to show: build one with paper_lib.study_batch.ensure_batch")
        self.store, self.batches, self.scale = store, batches, image_scale
        self.session: AnnotationSession | None = None
        self.name = w.Text(description="Your name", placeholder="the same name every time")
        self.dataset = w.Dropdown(options=list(batches), description="Dataset")
        self.start_button = w.Button(description="Start", button_style="primary")
        self.message = w.HTML()
        self.ready_button = w.Button(description="I have studied the examples: start", button_style="primary",
                                     layout=w.Layout(width="auto"))
        self.label_buttons = [w.Button(description=f"{key} · {label}", tooltip=DESCRIPTIONS[label],
                                       layout=w.Layout(width="220px", height="48px")) for key, label in KEYS.items()]
        self.back_button = w.Button(description="b · back", icon="arrow-left")
        self.skip_button = w.Button(description="s · skip", icon="arrow-right")
        self.keys = w.Text(placeholder="click here, then type 1-4, b, s", continuous_update=True,
                           description="Keys", layout=w.Layout(width="330px"))
        self.progress = w.HTML()
        self.image = w.Image(format="png", layout=w.Layout(border="1px solid #ccc"))
        self.widget = w.VBox()

        self.start_button.on_click(lambda _: self.start())
        self.ready_button.on_click(lambda _: self._act(self.session.begin))
        for button, label in zip(self.label_buttons, LABELS):
            button.on_click(lambda _, label=label: self._act(self.session.answer, label))
        self.back_button.on_click(lambda _: self._act(self.session.back))
        self.skip_button.on_click(lambda _: self._act(self.session.skip))
        self.keys.observe(self._on_key, names="value")
        self._show_login()

    def _show_login(self) -> None:
        self.widget.children = [w.HTML("<h3>Creativity annotation</h3>"), self.name, self.dataset,
                                self.start_button, self.message]

    def start(self) -> None:
        """Open (or resume) the session of the typed name on the chosen dataset."""
        try:
            self.session = AnnotationSession(self.store, self.batches[self.dataset.value], self.name.value)
        except ValueError as error:
            self.message.value = f"<b style='color:#b00'>{error}</b>"
            return
        self.message.value = ""
        self.render()

    def _act(self, action, *args) -> None:
        try:
            action(*args)
            self.message.value = ""
        except sqlite3.Error as error:  # e.g. the store stayed locked past the busy timeout: say so, keep going
            self.message.value = f"<b style='color:#b00'>not saved ({error}); please answer again</b>"
        self.render()

    def _on_key(self, change) -> None:
        typed = change["new"].strip().lower()
        if not typed or self.session is None:
            return
        self.keys.value = ""  # clears the box; this observer then sees "" and returns
        key = typed[-1]
        if self.session.phase != "annotate":
            return
        if key in KEYS:
            self._act(self.session.answer, KEYS[key])
        elif key in "bs":
            self._act(self.session.back if key == "b" else self.session.skip)

    def render(self) -> None:
        session = self.session
        if session.phase == "priming":
            self.widget.children = [self._priming_view()]
            return
        done, total = session.progress
        self.progress.value = f"<b>{session.annotator}</b> · {session.batch.dataset}: {done} / {total} labelled"
        if session.phase == "done":
            self.widget.children = [self.progress, w.HTML("<h3>All images are labelled. Thank you!</h3>"),
                                    self.back_button]
            return
        self.image.value = png(session.batch.image(session.current), self.scale)
        previous = session.labels.get(session.current)
        for button, label in zip(self.label_buttons, LABELS):
            button.button_style = "info" if label == previous else ""
        self.widget.children = [self.progress, self.image, w.HBox(self.label_buttons),
                                w.HBox([self.back_button, self.skip_button, self.keys]), self.message]

    def _priming_view(self) -> w.Widget:
        batch = self.session.batch
        names = list(dict.fromkeys(batch.priming_names))
        images = batch.priming_images.numpy()
        rows = []
        for name in names:
            picks = images[[i for i, n in enumerate(batch.priming_names) if n == name]]
            rows.append(w.HBox([w.HTML(f"<b>{name}</b>", layout=w.Layout(width="110px")),
                                w.Image(value=png(montage(picks), 3), format="png")]))
        options = "".join(f"<li><b>{key} · {label}</b>: {DESCRIPTIONS[label]}</li>" for key, label in KEYS.items())
        intro = w.HTML(f"<h3>Training examples of {batch.dataset}</h3><p>Study what the training data looks like. "
                       f"Then you will see generated images one at a time; choose:</p><ul>{options}</ul>")
        return w.VBox([intro, *rows, self.ready_button])


def snapshot_figure(profile, dataset: str = "mnist"):
    """Figure 5: the tool's two screens for ``dataset``'s saved batch, drawn with matplotlib from the same
    batch and session logic the widgets use (priming examples; then one image, the four choices, progress).

    A drawing of the screens' content rather than a browser screenshot: ipywidgets need a live kernel.
    """
    import textwrap

    import matplotlib.pyplot as plt

    from .study_batch import batch_name, load_batch

    batch = load_batch(batch_name(dataset, profile), profile)
    names = list(dict.fromkeys(batch.priming_names))
    images = batch.priming_images.numpy()
    rows = [montage(images[[i for i, n in enumerate(batch.priming_names) if n == name]]) for name in names]
    width = max(r.shape[1] for r in rows)
    priming = np.concatenate([np.pad(r, ((0, 2), (0, width - r.shape[1])), constant_values=255) for r in rows])

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 6.5), gridspec_kw={"width_ratios": [1.2, 1]})
    left.imshow(priming, cmap="gray", interpolation="nearest")
    left.set_yticks([30 * i + 14 for i in range(len(names))], names)
    left.set_xticks([])
    left.set_title("1. priming screen: training examples per class")
    right.imshow(batch.images[0].view(28, 28).numpy(), cmap="gray", interpolation="nearest",
                 extent=(0, 28, 10, 38))
    for i, (key, label) in enumerate(KEYS.items()):
        x = 7 * i
        right.add_patch(plt.Rectangle((x + 0.2, 1), 6.6, 7, fill=False, lw=1.2))
        right.text(x + 3.5, 4.5, f"{key}\n" + textwrap.fill(label, 12, break_long_words=False), ha="center", va="center", fontsize=8)
    right.text(0, 40, f"annotator · {batch.dataset}: 0 / {len(batch)} labelled", fontsize=10, weight="bold")
    right.text(0, -1.5, "b · back    s · skip    Keys: type 1-4, b, s", fontsize=9, va="top")
    right.set_xlim(-0.5, 28.5)
    right.set_ylim(-4, 42)
    right.axis("off")
    right.set_title("2. one image at a time, four choices")
    fig.suptitle("Figure 5: the annotation tool (notebooks/annotate.ipynb)")
    return fig
