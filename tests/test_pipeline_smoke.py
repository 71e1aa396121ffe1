"""One smoke run of every notebook, in Makefile order, through papermill with PROFILE=smoke.

The notebook list is read from the Makefile's `$(call notebook,...)` lines, so adding a notebook there
adds it here. Artefacts go to a temporary results folder.
"""

import re

import pandas as pd
import papermill as pm

from paper_lib import config

MAKEFILE = config.REPO_ROOT / "Makefile"


def pipeline() -> list[tuple[str, list[str]]]:
    """(notebook, datasets) in run order; datasets == [] for notebooks run once."""
    calls = re.findall(r"^\$\(eval \$\(call notebook,([^,]+),([^,]+),", MAKEFILE.read_text(), re.M)
    return [(name, [] if sets.strip() == "-" else sets.split()) for name, sets in calls]


def run_notebook(name: str, parameters: dict, out) -> None:
    pm.execute_notebook(str(config.REPO_ROOT / "notebooks" / f"{name}.ipynb"), str(out), parameters=parameters,
                        kernel_name="paper-lib", cwd=str(config.REPO_ROOT / "notebooks"), progress_bar=False)


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
            run_notebook(name, params, out)
            assert out.exists()
    run_notebook("annotate", {"profile": "smoke", "dataset": "mnist"}, tmp_path / "annotate.ipynb")

    tables = results_tmp / "tables"
    assert len(pd.read_csv(tables / "vae_losses.csv")) == 3
    assert len(pd.read_csv(tables / "classifier_accuracy.csv")) == 2
    assert len(pd.read_csv(tables / "neuron_counts.csv")) == 9  # 3 decoder layers x 3 datasets
    for dataset in config.DATASETS:
        sweep = pd.read_csv(tables / f"novelty_sweep_{dataset}.csv")
        assert {"loact", "rand", "noise", "2interp"} <= set(sweep["approach"])
        assert (tables / f"human_labels_{dataset}_SIMULATED.csv").exists()  # no real annotators in a test
    report = (results_tmp / "REPORT.md").read_text()
    assert "## Claims" in report and "SIMULATED" in report
    for figure in ("fig01d_cluster_class_activation", "fig02d_regular_vs_low_active", "fig05_annotation_tool",
                   "fig09_regen_dist", "fig12_interpolation"):
        assert (results_tmp / "figures" / f"{figure}.png").exists(), figure
