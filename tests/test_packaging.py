"""The wheel is what users install: it must carry the packaged manifest, so `list` shows counts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(args, cwd, env=None, timeout=300):
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


@pytest.mark.slow
def test_wheel_carries_the_manifest_and_list_shows_counts(tmp_path):
    pytest.importorskip("setuptools")
    # Build from a copy: an in-tree build would leave build/ and *.egg-info in the checkout.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE", "data_manifest.json"):
        shutil.copy2(REPO / name, src / name)
    for package in ("generator", "training"):
        shutil.copytree(REPO / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--quiet",
            "-w",
            str(tmp_path / "dist"),
            str(src),
        ],
        cwd=tmp_path,
    )
    (wheel,) = (tmp_path / "dist").glob("ham_artefacts-*.whl")
    from generator import __version__

    assert wheel.name.startswith(f"ham_artefacts-{__version__}-")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        zf.extractall(tmp_path / "installed")
    assert "generator/data_manifest.json" in names
    # the top-level data_manifest.json is the one file; the package carries it through a link
    assert (tmp_path / "installed" / "generator" / "data_manifest.json").read_bytes() == (
        REPO / "data_manifest.json"
    ).read_bytes()

    # The unpacked wheel alone on the path, run from an empty folder (the checkout is not importable).
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "installed")}
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    code = (
        "import generator, sys; print(generator.__file__); sys.argv[0] = 'ham-artefacts'; "
        "from generator.cli import main; sys.exit(main(['list']))"
    )
    out = _run([sys.executable, "-c", code], cwd=empty, env=env)
    where, listing = out.split("\n", 1)
    assert Path(where).is_relative_to(tmp_path / "installed")
    rows = [line.split() for line in listing.splitlines()[1:]]
    assert len(rows) == 22 and all(row[2].isdigit() and int(row[2]) > 0 for row in rows), listing
    # the same listing as from the checkout
    assert listing == _run(
        [sys.executable, "-c", code.replace("print(generator.__file__); ", "")],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
