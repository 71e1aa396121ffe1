"""REPORT.md pieces that do not need a pipeline run: run times from papermill metadata, missing tables."""

import json

from paper_lib import report


def _executed(folder, name, start, seconds):
    folder.mkdir(parents=True, exist_ok=True)
    meta = {"metadata": {"papermill": {"start_time": start, "duration": seconds}}, "cells": []}
    (folder / f"{name}.ipynb").write_text(json.dumps(meta))


def test_run_times_in_run_order_with_sum_and_span(results_tmp):
    notebooks = results_tmp / "notebooks"
    _executed(notebooks, "01_train_vae_mnist", "2026-01-01T10:00:00", 600)
    _executed(notebooks, "00_data", "2026-01-01T09:59:00", 60)
    _executed(notebooks, "05_novelty_metrics_mnist", "2026-01-01T10:20:00", 300)
    _executed(notebooks, "05_novelty_metrics_fmnist.partial", "2026-01-01T10:25:00", 999)  # still running: left out

    text = report.section_times(report.notebook_times("paper"))

    rows = [line.split(" | ")[0].strip("| ") for line in text.splitlines() if line.startswith("| 0")]
    assert rows == ["00_data", "01_train_vae_mnist", "05_novelty_metrics_mnist"]
    assert "**16.0 minutes** of compute" in text  # 1 + 10 + 5
    assert "26.0 minutes from the first start" in text  # 09:59 to 10:25
    assert "(10:25)" in text


def test_why_cut_states_this_runs_training_minutes(results_tmp):
    notebooks = results_tmp / "notebooks"
    _executed(notebooks, "00_data", "2026-01-01T09:59:00", 60)
    _executed(notebooks, "01_train_vae_mnist", "2026-01-01T10:00:00", 600)
    _executed(notebooks, "02_train_classifiers_mnist", "2026-01-01T10:10:00", 300)
    _executed(notebooks, "05_novelty_metrics_mnist", "2026-01-01T10:15:00", 240)

    text = report.section_profile("paper", report.notebook_times("paper"))

    assert "| vae_epochs |" in text and "Why these cuts" in text
    assert "training (notebooks 01 and 02) took 15.0 of the 20.0 minutes of notebook compute" in text


def test_why_cut_without_a_run_leaves_out_the_minutes(results_tmp):
    text = report.why_cut(report.notebook_times("paper"))
    assert text.startswith("Why these cuts") and "In this run" not in text


def test_run_times_without_executed_notebooks(results_tmp):
    assert "No executed notebooks" in report.section_times(report.notebook_times("paper"))


def test_report_names_what_is_missing(results_tmp):
    text = report.build("paper")
    assert "_not produced in this run: `results/tables/vae_losses.csv`_" in text
    assert "The paper's Table 9" in text
