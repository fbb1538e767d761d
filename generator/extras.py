"""Which optional extra provides a missing module, for a one-line "install this" error.

The extras themselves are declared once, in pyproject.toml; they are read from the installed
package's metadata (or from pyproject.toml in a source checkout). Only the import names that differ
from their distribution names are listed here.
"""

from __future__ import annotations

import re
from pathlib import Path

DISTRIBUTION = "ham-artefacts"
# import name -> distribution name, where they differ
IMPORT_TO_DISTRIBUTION = {
    "sklearn": "scikit-learn",
    "yaml": "pyyaml",
    "pytorch_grad_cam": "grad-cam",
    "cv2": "opencv-python-headless",
    "PIL": "pillow",
    "vl_convert": "vl-convert-python",
    "material": "mkdocs-material",
}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements() -> list[str]:
    """Requirement strings with their ``extra == "..."`` markers (PEP 508)."""
    from importlib import metadata

    try:
        requires = metadata.requires(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        requires = None
    if requires:
        return requires
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    if not pyproject.is_file():
        return []
    import tomllib

    project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
    found = list(project.get("dependencies", []))
    for extra, reqs in project.get("optional-dependencies", {}).items():
        found += [f'{r}; extra == "{extra}"' for r in reqs]
    return found


def extras_providing(module: str) -> list[str] | None:
    """The extras that install ``module`` ([] for a core dependency, None if not ours at all)."""
    top = module.split(".")[0]
    wanted = _normalise(IMPORT_TO_DISTRIBUTION.get(top, top))
    extras, core = [], False
    for requirement in _requirements():
        name = _normalise(re.split(r"[\s;<>=!~\[(]", requirement.strip(), maxsplit=1)[0])
        if name != wanted:
            continue
        marker = re.search(r"""extra\s*==\s*["']([^"']+)["']""", requirement)
        if marker:
            if marker.group(1) not in ("all",) and marker.group(1) not in extras:
                extras.append(marker.group(1))
        else:
            core = True
    if core:
        return []
    return extras or None


def missing_module_message(module: str) -> str:
    """One line naming the missing module and what to install."""
    extras = extras_providing(module)
    if extras is None:
        return f"the Python module {module!r} is not installed"
    target = f"{DISTRIBUTION}[{extras[0]}]" if extras else DISTRIBUTION
    others = "".join(f" (or [{e}])" for e in extras[1:])
    return f"the Python module {module!r} is missing: install it with pip install '{target}'{others}"
