"""Small synthetic HAM10000 folders shared by the sources / synth / segmentation tests.

Each distinct (scale, seed, size, test_format) is synthesised once per test session and then
copied, so tests may damage their copy freely.
"""

from __future__ import annotations

import shutil
from pathlib import Path

_CACHE: dict[tuple, Path] = {}

SMALL = {"scale": 0.01, "seed": 7, "size": (64, 48)}


def synthetic_folder(tmp_path_factory, test_format: str = "onehot", **params) -> Path:
    """Path of a pristine (read-only by convention) synthetic folder; built once per session."""
    from generator.sources.synth import synthesize_ham10000

    p = {**SMALL, **params}
    key = (p["scale"], p["seed"], tuple(p["size"]), test_format)
    if key not in _CACHE:
        out = tmp_path_factory.mktemp("synth") / "ham"
        synthesize_ham10000(
            out, scale=p["scale"], seed=p["seed"], size=p["size"], test_format=test_format, progress=False
        )
        _CACHE[key] = out
    return _CACHE[key]


def private_copy(tmp_path_factory, tmp_path: Path, test_format: str = "onehot", **params) -> Path:
    """A copy of a small synthetic folder that the calling test may modify."""
    dst = tmp_path / "ham"
    shutil.copytree(synthetic_folder(tmp_path_factory, test_format, **params), dst)
    return dst
