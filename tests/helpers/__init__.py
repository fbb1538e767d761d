"""Builders of the suite's synthetic inputs (data folders, runs, results, sources, servers), imported by the
tests as ``from helpers.training import write_synthetic_data``. Pytest fixtures live in conftest.py."""
