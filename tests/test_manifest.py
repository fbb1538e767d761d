"""Manifest schema validation, content digests that survive re-compression, verify_dir."""

import copy
import json

import numpy as np
import pytest

from generator.errors import UserError
from generator.variants.manifest import (
    content_digest,
    load_manifest,
    sha256_file,
    validate_manifest,
    verify_dir,
)
from generator.variants.store import Row, encode_mask, write_variant

GOOD_ENTRY = {
    "name": "test_none.h5",
    "variant": "test_none",
    "split": "test",
    "description": "clean",
    "sha256": "a" * 64,
    "bytes": 10,
    "rows": 2,
    "class_counts": {"nv": 2},
    "artefact_counts": {},
    "n_artefact": 0,
    "content_digest": "b" * 64,
}
GOOD = {
    "format": "ham-artefacts-manifest/1",
    "generator_version": "0.1.0",
    "seed": 0,
    "source_fingerprint": "x",
    "templates": "builtin@0",
    "image_size": None,
    "synthetic": True,
    "base_url": None,
    "licence": "CC0",
    "citation": "c",
    "files": [GOOD_ENTRY],
}


def _broken(mutate):
    manifest = copy.deepcopy(GOOD)
    mutate(manifest)
    return manifest


@pytest.mark.parametrize(
    "mutate, needle",
    [
        (lambda m: m.pop("files"), "files"),
        (lambda m: m.update(format="other/1"), "format"),
        (lambda m: m.update(seed="0"), "seed"),
        (lambda m: m.update(seed=True), "seed"),
        (lambda m: m["files"][0].update(sha256="xyz"), "sha256"),
        (lambda m: m["files"][0].pop("rows"), "rows"),
        (lambda m: m["files"][0].update(name="../evil.h5"), "name"),
        (lambda m: m["files"].append(dict(GOOD_ENTRY)), "duplicate"),
    ],
)
def test_malformed_manifests_are_rejected_naming_the_field(mutate, needle):
    validate_manifest(copy.deepcopy(GOOD))
    with pytest.raises(UserError, match=needle):
        validate_manifest(_broken(mutate))


def test_load_manifest_names_the_file(tmp_path):
    path = tmp_path / "manifest.json"
    path.write_text("{not json")
    with pytest.raises(UserError, match="manifest.json"):
        load_manifest(tmp_path)
    path.write_text(json.dumps(GOOD))
    assert load_manifest(tmp_path) == GOOD
    with pytest.raises(UserError, match="not found"):
        load_manifest(tmp_path / "nowhere")


def _rows(level: int, rng_seed: int = 0):
    from io import BytesIO

    from PIL import Image

    rng = np.random.default_rng(rng_seed)
    for i in range(4):
        image = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
        buf = BytesIO()
        Image.fromarray(image).save(buf, format="PNG", compress_level=level)
        mask = np.zeros((12, 16), np.uint8)
        mask[2:5, 3:9] = 1
        yield Row(
            image_id=f"ISIC_{i:07d}",
            lesion_id=f"HAM_{i:07d}",
            label=i % 7,
            image_bytes=buf.getvalue(),
            lesion_mask_bytes=encode_mask(mask),
            artefact_mask_bytes=encode_mask(mask * 0),
        )


def test_content_digest_ignores_compression_but_not_pixels(tmp_path):
    attrs = {
        "variant": {"name": "t"},
        "split": "test",
        "seed": 0,
        "source_fingerprint": "x",
        "templates": "t",
    }
    fast = write_variant(tmp_path / "fast.h5", _rows(0), 4, attrs)
    small = write_variant(tmp_path / "small.h5", _rows(9), 4, attrs)
    other = write_variant(tmp_path / "other.h5", _rows(9, rng_seed=1), 4, attrs)
    assert sha256_file(fast) != sha256_file(small)
    assert content_digest(fast) == content_digest(small)
    assert content_digest(other) != content_digest(small)


def test_verify_dir_reports_missing_manifest_and_rejects_non_folders(tmp_path):
    assert verify_dir(tmp_path) and "manifest.json" in verify_dir(tmp_path)[0]
    with pytest.raises(UserError):
        verify_dir(tmp_path / "absent")
