"""Shared test configuration: paths to the optional real artefact templates."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_TEMPLATES = REPO.parent / "shared" / "artefact-templates"


@pytest.fixture(scope="session")
def real_templates_dir() -> Path:
    """The seed study's template sets; tests using them skip cleanly when ../shared is absent."""
    if not (SHARED_TEMPLATES / "meta.json").is_file():
        pytest.skip(f"real artefact templates not found at {SHARED_TEMPLATES}")
    return SHARED_TEMPLATES


@pytest.fixture(autouse=True)
def _no_torch_home_downloads(monkeypatch, tmp_path_factory):
    # Tests never download: point TORCH_HOME at an empty folder unless a test sets its own.
    if "HAM_ARTEFACTS_TEST_TORCH_HOME" not in os.environ:
        monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.getbasetemp() / "torch_home"))
