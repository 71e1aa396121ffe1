"""One smoke run of every notebook, in Makefile order, through papermill with PROFILE=smoke.

The notebook list is read from the Makefile's `$(call notebook,...)` lines, so adding a notebook there
adds it here. Artefacts go to a temporary results folder.
"""

import re

import papermill as pm
import pytest

from paper_lib import config

MAKEFILE = config.REPO_ROOT / "Makefile"


def pipeline() -> list[tuple[str, list[str]]]:
    """(notebook, datasets) in run order; datasets == [] for notebooks run once."""
    calls = re.findall(r"^\$\(eval \$\(call notebook,([^,]+),([^,]+),", MAKEFILE.read_text(), re.M)
    return [(name, [] if sets.strip() == "-" else sets.split()) for name, sets in calls]


def test_makefile_lists_the_notebooks_in_order():
    names = [name for name, _ in pipeline()]
    assert names and names == sorted(names) and names[0] == "00_data"
    for name in names:
        assert (config.REPO_ROOT / "notebooks" / f"{name}.ipynb").exists(), name



def test_every_notebook_runs_in_the_smoke_profile(results_tmp, tmp_path):
    for name, datasets in pipeline():
        for dataset in datasets or [None]:
            params = {"profile": "smoke"} | ({"dataset": dataset} if dataset else {})
            out = tmp_path / f"{name}_{dataset or 'all'}.ipynb"
            pm.execute_notebook(
                str(config.REPO_ROOT / "notebooks" / f"{name}.ipynb"), str(out),
                parameters=params, kernel_name="paper-lib", cwd=str(config.REPO_ROOT / "notebooks"),
                progress_bar=False,
            )
            assert out.exists()
    assert (results_tmp / "figures" / "data_examples.png").exists()
