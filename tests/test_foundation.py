"""Project-level promises: import boundaries, start-up cost, CLI wiring, layout."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

import generator
from generator.cli import build_parser, main

REPO = Path(__file__).resolve().parents[1]


def _run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)


def test_generator_never_imports_torch():
    modules = [
        m.name
        for m in pkgutil.walk_packages(generator.__path__, "generator.")
        if not m.name.endswith("__main__")
    ]
    assert len(modules) > 5
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        "bad = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))\n"
        "print(','.join(bad))\n"
    )
    out = _run_python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"generator pulled in torch: {out.stdout[:200]}"


def test_import_plus_one_insertion_is_fast():
    code = (
        "import time; t0 = time.perf_counter()\n"
        "import numpy as np\n"
        "import generator\n"
        "from generator.artefacts.templates import TemplateBank\n"
        "from generator.artefacts import insert_artefact\n"
        "img = np.full((450, 600, 3), 180, np.uint8)\n"
        "out, amask, rec = insert_artefact(img, None, 'bubble', TemplateBank.builtin(0), 1)\n"
        "print(time.perf_counter() - t0)\n"
    )
    out = _run_python(code)
    assert out.returncode == 0, out.stderr
    # The promise is < 1 s on an idle machine; allow headroom for a loaded 2-core CI box.
    assert float(out.stdout.strip().splitlines()[-1]) < 2.0


def test_cli_lists_every_command_group():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    expected = {
        "insert",
        "templates",
        "synth-ham10000",
        "generate",
        "verify",
        "fetch",
        "list",
        "info",
        "publish",
        "train",
        "predict",
        "sweep",
        "evaluate",
        "gradcam",
        "export",
    }
    missing = expected - set(sub.choices)
    assert not missing, f"subcommands not wired: {sorted(missing)}"


def test_cli_without_command_exits_2(capsys):
    assert main([]) == 2


def test_layout_and_pins():
    assert not (REPO / "site" / "__init__.py").exists(), "site/ must never be a Python package"
    for path in [
        "pyproject.toml",
        "mkdocs.yml",
        "data_manifest.json",
        "README.md",
        "Makefile",
        ".ci/run",
        "LICENSE",
        "CITATION.cff",
    ]:
        assert (REPO / path).is_file(), path
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    train = project["project"]["optional-dependencies"]["train"]
    # ranges, from the oldest pair tested on a GPU machine to the newest tested here
    from packaging.requirements import Requirement

    ranges = {r.name: r.specifier for r in map(Requirement, train)}
    for torch_version, torchvision_version in (("2.11.0", "0.26.0"), ("2.14.1", "0.29.1")):
        assert ranges["torch"].contains(torch_version) and ranges["torchvision"].contains(torchvision_version)
    assert not ranges["torch"].contains("2.15.0") and not ranges["torchvision"].contains("0.30.0")
    # one version source: pyproject reads generator.__version__; CITATION.cff states the same
    from generator import __version__

    assert "version" in project["project"]["dynamic"] and "version" not in project["project"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "generator.__version__"}
    assert f"\nversion: {__version__}\n" in (REPO / "CITATION.cff").read_text()
    assert project["project"]["scripts"]["ham-artefacts"] == "generator.cli:main"
    assert "make test" in (REPO / ".ci" / "run").read_text()
