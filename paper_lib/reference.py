"""The paper's published numbers (Tables 1-9 and the scalars of sections 5, 6, 8.3, 8.11) as DataFrames.

The CSV files live in ``paper_lib/reference/``; its README records how they were transcribed (captions
below tables, OCR repairs). ``table("table5")`` etc. return tidy frames: one row per printed row and
dataset, empty cells as NaN. ``sweep()`` stacks Tables 5-7 with a ``dataset`` column.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

FOLDER = Path(__file__).resolve().parent / "reference"
SWEEP_TABLES = {"mnist": "table5", "fmnist": "table6", "combined": "table7"}
TEXT_COLUMNS = ("section", "value", "note", "meaning")
SWEEP_METRICS = ["oc_score", "input_1nn", "input_5nn", "input_1nn_norm", "input_5nn_norm",
                 "regen_dist", "latent_1nn", "latent_5nn"]


def names() -> list[str]:
    """Every table this module can load."""
    return sorted(path.stem for path in FOLDER.glob("*.csv"))


@lru_cache(maxsize=None)
def _read(name: str) -> pd.DataFrame:
    path = FOLDER / f"{name}.csv"
    if not path.exists():
        raise KeyError(f"no reference table {name!r}: choose one of {names()}")
    frame = pd.read_csv(path, keep_default_na=False, na_values=[""], dtype={c: str for c in TEXT_COLUMNS})
    for column in set(TEXT_COLUMNS) & set(frame.columns):
        frame[column] = frame[column].fillna("")
    return frame


def table(name: str) -> pd.DataFrame:
    """The paper's table ``name`` (e.g. "table1", "table5", "inception_scores"), a fresh copy."""
    return _read(name).copy()


def sweep(dataset: str | None = None) -> pd.DataFrame:
    """Tables 5-7 stacked (columns ``dataset, n_on, approach`` and the metrics); one dataset if given."""
    if dataset is not None and dataset not in SWEEP_TABLES:
        raise ValueError(f"unknown dataset {dataset!r}: choose one of {list(SWEEP_TABLES)}")
    chosen = [dataset] if dataset else list(SWEEP_TABLES)
    return pd.concat([table(SWEEP_TABLES[d]) for d in chosen], ignore_index=True)


def setting(name: str) -> float | str:
    """One constant of the paper's protocol from ``settings.csv`` (a number where it is one)."""
    settings = _read("settings").set_index("name")["value"]
    if name not in settings.index:
        raise KeyError(f"no paper setting {name!r}: choose one of {sorted(settings.index)}")
    value = settings[name]
    try:
        return float(value)
    except ValueError:
        return value


def d_r(dataset: str, table_name: str = "table4") -> pd.Series:
    """Mean reconstruction distance D_r of each scheme (Table 4 includes non-specific; Table 1 does not)."""
    frame = table(table_name)
    if dataset not in set(frame["dataset"]):
        raise ValueError(f"unknown dataset {dataset!r}: choose one of {sorted(set(frame['dataset']))}")
    return frame[frame["dataset"] == dataset].set_index("scheme")["D_r"]
