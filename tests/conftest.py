"""Shared fixtures: every test writes its artefacts into a temporary results folder."""

import pytest


@pytest.fixture
def results_tmp(tmp_path, monkeypatch):
    """Point ``config.results_dir`` at a fresh temporary folder for the span of one test."""
    path = tmp_path / "results"
    monkeypatch.setenv("PAPER_LIB_RESULTS", str(path))
    return path
