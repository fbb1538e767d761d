"""Consumers open a variant file only through its manifest entry (generator.variants.verified)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from generator.errors import UserError
from generator.variants import CLEAN_TRAIN, verified
from generator.variants.manifest import MANIFEST_NAME


def _build(folder: Path, scale: float) -> Path:
    from generator.sources.synth import synthesize_ham10000
    from generator.variants.build import generate

    source = synthesize_ham10000(
        folder / "src", scale=scale, test_scale=0.02, size=(64, 48), seed=0, progress=False
    )
    generate(source, folder / "data", seed=0, workers=1, progress=False, variants=[CLEAN_TRAIN, "train_nv"])
    return folder / "data"


@pytest.fixture(scope="module")
def builds(tmp_path_factory) -> tuple[Path, Path]:
    """Two builds of the same seed at different scales: the files of one are not the other's."""
    root = tmp_path_factory.mktemp("verified")
    return _build(root / "a", 0.01), _build(root / "b", 0.015)


@pytest.fixture
def data(builds, tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return Path(shutil.copytree(builds[0], tmp_path / "data"))


def test_a_good_file_opens_and_its_digest_is_trusted_until_the_file_changes(data, monkeypatch):
    calls = []
    real = verified.sha256_file
    monkeypatch.setattr(verified, "sha256_file", lambda p: calls.append(p) or real(p))
    first = verified.open_checked(data, "train_nv")
    entry = next(
        e for e in json.loads((data / MANIFEST_NAME).read_text())["files"] if e["variant"] == "train_nv"
    )
    assert (first.sha256, first.rows, first.content_digest) == (
        entry["sha256"],
        entry["rows"],
        entry["content_digest"],
    )
    assert verified.open_checked(data, "train_nv") == first
    assert len(calls) == 1  # the second open trusted the recorded digest
    os.utime(data / "train_nv.h5")  # touched: hashed again
    verified.open_checked(data, "train_nv")
    assert len(calls) == 2


def test_a_file_from_another_build_is_refused_naming_it(data, builds):
    shutil.copyfile(builds[1] / "train_nv.h5", data / "train_nv.h5")
    with pytest.raises(UserError, match=r"train_nv\.h5: \d+ bytes, manifest.json says \d+"):
        verified.open_checked(data, "train_nv")


def test_flipped_bytes_of_the_same_size_are_refused(data):
    path = data / "train_nv.h5"
    verified.open_checked(data, "train_nv")  # trusted once ...
    raw = bytearray(path.read_bytes())
    for i in range(20):
        raw[len(raw) // 2 + i * 97] ^= 0xFF
    path.write_bytes(bytes(raw))  # ... rewritten in place: new mtime, hashed again
    with pytest.raises(UserError, match=r"train_nv\.h5: SHA-256 .* differs from manifest.json"):
        verified.open_checked(data, "train_nv")


def test_no_manifest_missing_file_and_unlisted_variant_are_one_line_errors(data):
    with pytest.raises(UserError, match="lists no variant 'test_all'"):
        verified.open_checked(data, "test_all")
    (data / "train_nv.h5").unlink()
    with pytest.raises(UserError, match=r"train_nv\.h5: missing"):
        verified.open_checked(data, "train_nv")
    (data / MANIFEST_NAME).unlink()
    with pytest.raises(UserError, match="no manifest"):
        verified.open_checked(data, CLEAN_TRAIN)


def test_a_damaged_cache_is_ignored(data):
    verified.cache_dir().mkdir(parents=True)
    (verified.cache_dir() / verified.CACHE_FILE).write_text("{not json")
    assert verified.open_checked(data, CLEAN_TRAIN).rows > 0
    assert str((data / f"{CLEAN_TRAIN}.h5").resolve()) in json.loads(
        (verified.cache_dir() / verified.CACHE_FILE).read_text()
    )


def test_image_lists_of_one_split_must_agree():
    ids = ["ISIC_1", "ISIC_2", "ISIC_3"]
    verified.check_same_images(ids, list(ids), Path("b.h5"), Path("a.h5"))
    with pytest.raises(UserError, match=r"b\.h5: row 1 is image ISIC_9, a\.h5 has ISIC_2"):
        verified.check_same_images(ids, ["ISIC_1", "ISIC_9", "ISIC_3"], Path("b.h5"), Path("a.h5"))
    with pytest.raises(UserError, match=r"b\.h5: 2 images, a\.h5 has 3"):
        verified.check_same_images(ids, ids[:2], Path("b.h5"), Path("a.h5"))


def test_a_resumed_run_refuses_other_data(data):
    files = [verified.open_checked(data, v) for v in (CLEAN_TRAIN, "train_nv")]
    record = verified.data_record(data, files)
    assert set(record["files"]) == {CLEAN_TRAIN, "train_nv"} and len(record["manifest_sha256"]) == 64
    verified.refuse_other_data(record, record, "runs/x")
    verified.refuse_other_data(None, record, "runs/x")  # a run from before data records
    other = {**record, "files": {**record["files"], "train_nv": "0" * 64}}
    with pytest.raises(UserError, match=r"runs/x: started on other data \(train_nv differ"):
        verified.refuse_other_data(other, record, "runs/x")
