"""The repository's data_manifest.json is the manifest of the embedded-default (demo) build,
i.e. of `make demo`'s demo/data/manifest.json.

It is regenerated here from scratch and compared: content digests always (they survive
compression-library upgrades), SHA-256 too when the libraries that wrote the bytes are the
versions recorded in tests/data_manifest_versions.json.

To refresh both files after an intended change to synth, segmentation or the artefact engine::

    .venv/bin/python tests/test_generate_golden.py --write

which is the same as::

    ham-artefacts synth-ham10000 --out SRC --scale 0.05 --test-scale 0.15 --difficulty easy --size 128x96 --seed 0
    ham-artefacts generate --source SRC --out DATA --seed 0
    cp DATA/manifest.json data_manifest.json
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "data_manifest.json"
VERSIONS = Path(__file__).resolve().parent / "data_manifest_versions.json"
SCALE, TEST_SCALE, DIFFICULTY, SIZE, SEED = 0.05, 0.15, "easy", (128, 96), 0
COMPARED = (
    "name",
    "variant",
    "split",
    "rows",
    "class_counts",
    "artefact_counts",
    "n_artefact",
    "content_digest",
)


def library_versions() -> dict:
    """Versions of everything that writes bytes or pixels of the demo build."""
    import cv2
    import h5py
    import numpy
    import PIL
    import scipy
    from PIL import features

    return {
        "pillow": PIL.__version__,
        "zlib": features.version("zlib"),
        "libjpeg": features.version("jpg"),
        "h5py": h5py.__version__,
        "hdf5": h5py.version.hdf5_version,
        "numpy": numpy.__version__,
        "opencv": cv2.__version__,
        "scipy": scipy.__version__,
    }


def build_demo(folder: Path, workers: int = 2) -> dict:
    from generator.sources.synth import synthesize_ham10000
    from generator.variants.build import generate

    source = synthesize_ham10000(
        folder / "src",
        scale=SCALE,
        test_scale=TEST_SCALE,
        difficulty=DIFFICULTY,
        seed=SEED,
        size=SIZE,
        workers=workers,
        progress=False,
    )
    # As `make demo`: the source is already 128x96, so generate keeps it (and the JPEG bytes) as is.
    return generate(source, folder / "data", seed=SEED, workers=workers, progress=False)


@pytest.fixture(scope="module")
def demo_build(tmp_path_factory) -> dict:
    return build_demo(tmp_path_factory.mktemp("golden"))


def test_demo_build_matches_data_manifest(demo_build):
    from generator.variants.manifest import load_manifest

    golden = load_manifest(GOLDEN)
    built = demo_build
    for key in ("seed", "source_fingerprint", "templates", "image_size", "synthetic", "generator_version"):
        assert built[key] == golden[key], key
    assert [e["name"] for e in built["files"]] == [e["name"] for e in golden["files"]]
    for mine, theirs in zip(built["files"], golden["files"], strict=True):
        assert {k: mine[k] for k in COMPARED} == {k: theirs[k] for k in COMPARED}, mine["name"]
    test_rows = [e for e in golden["files"] if e["split"] == "test"]
    assert all(all(e["class_counts"][c] > 0 for c in e["class_counts"]) for e in test_rows)


def test_demo_build_bytes_match_data_manifest(demo_build):
    """SHA-256 of the files: only meaningful with the library versions that wrote the golden bytes."""
    from generator.variants.manifest import load_manifest

    recorded = json.loads(VERSIONS.read_text())
    here = library_versions()
    if recorded != here:
        differ = ", ".join(
            f"{k} {recorded.get(k)} -> {here.get(k)}"
            for k in sorted(set(recorded) | set(here))
            if recorded.get(k) != here.get(k)
        )
        pytest.skip(
            f"byte comparison needs the libraries recorded in {VERSIONS.name} ({differ}); "
            "the content digests are compared regardless"
        )
    golden = load_manifest(GOLDEN)
    assert [e["sha256"] for e in demo_build["files"]] == [e["sha256"] for e in golden["files"]]


if __name__ == "__main__":  # regenerate the golden files
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/test_generate_golden.py --write")
    from generator.atomic import write_json_atomic

    with tempfile.TemporaryDirectory() as tmp:
        manifest = build_demo(Path(tmp))
    write_json_atomic(GOLDEN, manifest)
    write_json_atomic(VERSIONS, library_versions())
    print(f"wrote {GOLDEN} and {VERSIONS}")
