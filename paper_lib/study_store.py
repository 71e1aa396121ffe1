"""The annotation store of the human study (paper section 3, "Human Evaluation of Creativity"; 8.7).

One SQLite file holds the samples of every annotation batch and one row per (annotator, sample) with
the label, the time of the answer and the seconds the annotator looked at the image. Answering again
updates that row (an UPSERT), so the store always holds each annotator's latest judgement. The file is
opened in WAL mode with a busy timeout and every write is one short ``BEGIN IMMEDIATE`` transaction,
so several annotators (processes) writing at the same time lose nothing.

The labels are the four options of the paper's tool, in the order the tool shows them; the paper's
tables code them L1 (creative), L2 (novel but not creative), L3 (not novel or creative), L4 (inconclusive).
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing, contextmanager
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from .config import REPO_ROOT, Profile, results_dir
from .io import save_csv

LABELS = ("not novel or creative", "novel but not creative", "creative", "inconclusive")
PAPER_CODES = {"creative": "L1", "novel but not creative": "L2", "not novel or creative": "L3", "inconclusive": "L4"}
CSV_COLUMNS = ["annotator", "sample_id", "dataset", "label", "answered_at", "seconds"]
BUSY_TIMEOUT_S = 60.0

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS samples (
    sample_id TEXT PRIMARY KEY,
    dataset   TEXT NOT NULL,
    batch     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS annotations (
    annotator   TEXT NOT NULL,
    sample_id   TEXT NOT NULL REFERENCES samples(sample_id),
    label       TEXT NOT NULL CHECK (label IN ({", ".join(repr(label) for label in LABELS)})),
    answered_at TEXT NOT NULL,
    seconds     REAL,
    PRIMARY KEY (annotator, sample_id)
);
"""


def annotations_dir(profile: str | Profile = "paper") -> Path:
    """Where batches and the store live: ``data/annotations/`` for the paper profile (committed with the
    repository), ``results/<profile>/annotations/`` otherwise, so smoke runs never touch real annotations.
    ``PAPER_LIB_ANNOTATIONS`` overrides both."""
    name = profile.name if isinstance(profile, Profile) else profile
    if "PAPER_LIB_ANNOTATIONS" in os.environ:
        return Path(os.environ["PAPER_LIB_ANNOTATIONS"])
    return REPO_ROOT / "data" / "annotations" if name == "paper" else results_dir(name) / "annotations"


def default_store_path(profile: str | Profile = "paper") -> Path:
    return annotations_dir(profile) / "annotations.sqlite"


def check_label(label: str) -> str:
    if label not in LABELS:
        raise ValueError(f"invalid label {label!r}: choose one of {list(LABELS)}")
    return label


def check_annotator(annotator: str) -> str:
    if not isinstance(annotator, str) or not annotator.strip():
        raise ValueError("annotator name is empty: type a name (the same one each session, so work resumes)")
    return annotator.strip()


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class AnnotationStore:
    """The SQLite annotation store at ``path`` (created on first use).

    Each call opens its own short-lived connection, so a store object is safe to use from any thread
    or process, and the file is left checkpointed (no ``-wal`` side file) when no call is running.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)

    def __repr__(self) -> str:
        return f"AnnotationStore({str(self.path)!r})"

    @contextmanager
    def _connect(self):
        with closing(sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)) as db:
            db.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            db.execute("PRAGMA foreign_keys=ON")
            yield db

    @contextmanager
    def _write(self):
        """One write transaction; taken with BEGIN IMMEDIATE so concurrent writers queue, never deadlock."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def _query(self, sql: str, params=()) -> pd.DataFrame:
        with self._connect() as db:
            return pd.read_sql_query(sql, db, params=params)

    # --- samples -------------------------------------------------------------------------------
    def register_samples(self, batch: str, dataset: str, sample_ids) -> None:
        """Make a batch's samples known to the store (idempotent); only known samples can be labelled.

        Samples the batch held before and no longer holds are forgotten unless someone labelled them."""
        rows = [(str(sid), dataset, batch) for sid in sample_ids]
        with self._write() as db:
            db.execute("CREATE TEMP TABLE incoming (sample_id TEXT PRIMARY KEY)")
            db.executemany("INSERT OR IGNORE INTO incoming VALUES (?)", [r[:1] for r in rows])
            clash = db.execute("SELECT sample_id, batch FROM samples JOIN incoming USING (sample_id) "
                               "WHERE batch != ? LIMIT 1", (batch,)).fetchone()
            if clash:
                raise ValueError(f"sample {clash[0]!r} already belongs to batch {clash[1]!r}, not {batch!r}")
            db.execute("DELETE FROM samples WHERE batch = ? AND sample_id NOT IN (SELECT sample_id FROM incoming) "
                       "AND sample_id NOT IN (SELECT sample_id FROM annotations)", (batch,))
            db.executemany("INSERT OR IGNORE INTO samples (sample_id, dataset, batch) VALUES (?, ?, ?)", rows)

    def sample_ids(self, batch: str | None = None) -> list[str]:
        sql, params = ("SELECT sample_id FROM samples", ()) if batch is None else (
            "SELECT sample_id FROM samples WHERE batch = ?", (batch,))
        with self._connect() as db:
            return [row[0] for row in db.execute(sql + " ORDER BY sample_id", params)]

    # --- annotations ---------------------------------------------------------------------------
    def annotate(self, annotator: str, sample_id: str, label: str, seconds: float | None = None,
                 answered_at: str | None = None) -> None:
        """Record ``annotator``'s label for ``sample_id``; a second answer replaces the first."""
        annotator, label = check_annotator(annotator), check_label(label)
        with self._write() as db:
            self._check_known(db, [sample_id])
            db.execute(
                "INSERT INTO annotations (annotator, sample_id, label, answered_at, seconds) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (annotator, sample_id) DO UPDATE SET "
                "label = excluded.label, answered_at = excluded.answered_at, seconds = excluded.seconds",
                (annotator, sample_id, label, answered_at or now(), seconds),
            )

    def _check_known(self, db, sample_ids) -> None:
        known = {row[0] for row in db.execute(
            f"SELECT sample_id FROM samples WHERE sample_id IN ({','.join('?' * len(sample_ids))})", list(sample_ids))}
        unknown = sorted(set(sample_ids) - known)
        if unknown:
            raise KeyError(f"unknown sample id(s) {unknown[:5]}{' ...' if len(unknown) > 5 else ''}: "
                           "not in any registered batch (build the batch with paper_lib.study_batch.ensure_batch)")

    def annotations(self, batch: str | None = None, dataset: str | None = None) -> pd.DataFrame:
        """All annotations (optionally of one batch / dataset) with columns ``CSV_COLUMNS``."""
        where, params = [], []
        if batch is not None:
            where.append("s.batch = ?"), params.append(batch)
        if dataset is not None:
            where.append("s.dataset = ?"), params.append(dataset)
        sql = ("SELECT a.annotator, a.sample_id, s.dataset, a.label, a.answered_at, a.seconds "
               "FROM annotations a JOIN samples s USING (sample_id)"
               + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY a.annotator, a.answered_at")
        return self._query(sql, params)

    def labels_of(self, annotator: str, batch: str) -> dict[str, str]:
        """``{sample_id: label}`` of one annotator within one batch (what the tool resumes from)."""
        with self._connect() as db:
            rows = db.execute("SELECT a.sample_id, a.label FROM annotations a JOIN samples s USING (sample_id) "
                              "WHERE a.annotator = ? AND s.batch = ?", (annotator, batch)).fetchall()
        return dict(rows)

    def annotators(self, batch: str | None = None) -> list[str]:
        table = self.annotations(batch=batch)
        return sorted(table["annotator"].unique())

    # --- CSV -----------------------------------------------------------------------------------
    def export_csv(self, path: str | Path, batch: str | None = None) -> Path:
        return save_csv(self.annotations(batch=batch)[CSV_COLUMNS], path)

    def import_csv(self, path: str | Path) -> int:
        """Merge a CSV written by ``export_csv`` (e.g. from a remote annotator's copy of the tool).

        All rows are checked first and the whole file is refused if any row has an unknown sample, an
        invalid label or an empty annotator. Where a row meets an existing answer, the later answer wins.
        Returns the number of rows read.
        """
        table = pd.read_csv(path, dtype={"annotator": str, "sample_id": str, "label": str, "answered_at": str})
        missing = [c for c in ("annotator", "sample_id", "label", "answered_at") if c not in table.columns]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing}; expected {CSV_COLUMNS}")
        bad = table[~table["label"].isin(LABELS)]
        if len(bad):
            raise ValueError(f"{path}: row {bad.index[0] + 2} has invalid label {bad['label'].iloc[0]!r}: "
                             f"choose one of {list(LABELS)}")
        annotators = [check_annotator(a) if isinstance(a, str) else check_annotator("") for a in table["annotator"]]
        seconds = table["seconds"] if "seconds" in table.columns else pd.Series([None] * len(table))
        columns = zip(annotators, table["sample_id"], table["label"], table["answered_at"], seconds)
        rows = [(a, s, lab, t, None if pd.isna(sec) else float(sec)) for a, s, lab, t, sec in columns]
        with self._write() as db:
            if rows:
                self._check_known(db, sorted({r[1] for r in rows}))
            db.executemany(
                "INSERT INTO annotations (annotator, sample_id, label, answered_at, seconds) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (annotator, sample_id) DO UPDATE SET "
                "label = excluded.label, answered_at = excluded.answered_at, seconds = excluded.seconds "
                "WHERE excluded.answered_at >= annotations.answered_at",
                rows,
            )
        return len(rows)
