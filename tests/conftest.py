"""Shared test configuration: the optional real artefact templates, the session-wide built sites, and
temporary folders for what the code would keep in the user's home (torch weights, the digest cache)."""

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


@pytest.fixture
def sigint_raises():
    """Python's own SIGINT handler (KeyboardInterrupt) for the test's duration: a suite started in the
    background of a non-interactive shell inherits SIGINT ignored, and then neither a raised SIGINT nor
    ``_thread.interrupt_main`` reaches the code under test."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture(autouse=True)
def _no_torch_home_downloads(monkeypatch, tmp_path_factory):
    # Tests never download: point TORCH_HOME at an empty folder unless a test sets its own.
    if "HAM_ARTEFACTS_TEST_TORCH_HOME" not in os.environ:
        monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.getbasetemp() / "torch_home"))


@pytest.fixture(scope="session", autouse=True)
def _digest_cache_in_tmp(tmp_path_factory):
    # The consumers' trusted SHA-256 digests (generator.variants.verified) live in the user cache:
    # tests keep theirs in the session's temporary folder, never in ~/.cache. Session-wide, so that
    # module-scoped fixtures (which train and predict) see it too.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "xdg_cache"))
        yield


@pytest.fixture(scope="session")
def built_site(tmp_path_factory) -> Path:
    """One exported + built demo site project per test session (the build and browser tests share it)."""
    from helpers import site as fx

    return fx.export_and_build(tmp_path_factory.mktemp("site-shared"))


@pytest.fixture(scope="session")
def partial_site(tmp_path_factory) -> Path:
    """A built project from a partial grid (see helpers.site.build_partial_site)."""
    from helpers import site as fx

    return fx.build_partial_site(tmp_path_factory.mktemp("site-partial"))
