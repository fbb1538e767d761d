"""`generate`: variant contents, common random numbers, determinism, shards, resume, bad inputs."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers.variants import make_source

from generator import CLASSES
from generator.cli import main
from generator.errors import UserError
from generator.variants import VARIANTS
from generator.variants.build import generate
from generator.variants.manifest import MANIFEST_NAME, content_digest, sha256_file, verify_dir
from generator.variants.store import VariantReader, decode_image

SEED = 3
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return make_source(tmp_path_factory.mktemp("src"))


@pytest.fixture(scope="module")
def built(source, tmp_path_factory):
    out = tmp_path_factory.mktemp("built") / "data"
    manifest = generate(source, out, seed=SEED, workers=1, progress=False)
    return out, manifest


def _readers(out):
    return {name: VariantReader(out / f"{name}.h5") for name in VARIANTS}


def _shas(out):
    return {p.name: sha256_file(p) for p in sorted(Path(out).glob("*.h5"))}


def test_output_is_complete_and_verifies(built):
    out, manifest = built
    assert [e["variant"] for e in manifest["files"]] == list(VARIANTS)
    assert verify_dir(out) == []
    assert not (out / ".cache").exists()
    assert not list(out.glob(".*partial"))
    assert sorted(p.name for p in (out / "examples").glob("*.png"))  # one side-by-side per kind
    for entry in manifest["files"]:
        with VariantReader(out / entry["name"]) as r:
            assert entry["rows"] == len(r)
            assert entry["n_artefact"] == int(r.has_artefact.sum())
            assert entry["class_counts"] == {c: int((r.labels == i).sum()) for i, c in enumerate(CLASSES)}
            assert sum(entry["artefact_counts"].values()) == entry["n_artefact"]
            assert r.attrs["variant"]["name"] == entry["variant"]
            assert r.attrs["seed"] == SEED


def test_manifest_content_digest_matches_decoding_the_file(built):
    out, manifest = built
    for entry in manifest["files"][::5]:
        assert content_digest(out / entry["name"]) == entry["content_digest"]


def test_counts_nesting_stratification_and_only_the_named_class_modified(built):
    out, _ = built
    readers = _readers(out)
    for split in ("train", "test"):
        none = readers[f"{split}_none"]
        assert not none.has_artefact.any()
        assert readers[f"{split}_all"].has_artefact.all()
        for label, cls in enumerate(CLASSES):
            r = readers[f"{split}_{cls}"]
            assert r.image_ids == none.image_ids
            assert np.array_equal(r.has_artefact, r.labels == label)
            for i in np.flatnonzero(~r.has_artefact):  # every other image is the clean row, byte for byte
                assert r.image_bytes(i) == none.image_bytes(i)
                assert not r.artefact_mask(i).any()
    previous = np.zeros(len(readers["test_none"]), bool)
    labels = readers["test_none"].labels
    for pct in (20, 40, 60, 80):
        chosen = readers[f"test_{pct}"].has_artefact
        assert not (previous & ~chosen).any()
        for c in range(len(CLASSES)):
            assert chosen[labels == c].sum() == (pct * (labels == c).sum() + 50) // 100
        previous = chosen


def test_an_image_carries_identical_artefact_pixels_in_every_variant(built):
    out, _ = built
    readers = _readers(out)
    for split in ("train", "test"):
        full = readers[f"{split}_all"]
        none = readers[f"{split}_none"]
        for name, r in readers.items():
            if VARIANTS[name].split != split:
                continue
            for i in np.flatnonzero(r.has_artefact):
                assert r.image_bytes(i) == full.image_bytes(i), (name, r.image_ids[i])
                assert np.array_equal(r.artefact_mask(i), full.artefact_mask(i))
                assert r.record(i) == full.record(i)
        for i in range(len(full)):
            # Artefacted rows differ from the clean row only inside the artefact mask (no re-encoding traces).
            clean, dirty, mask = none.image(i), full.image(i), full.artefact_mask(i).astype(bool)
            assert np.array_equal(clean[~mask], dirty[~mask])
            assert full.artefact_mask(i).any()


def test_clean_rows_keep_the_source_jpeg_bytes(built, source):
    out, _ = built
    with VariantReader(out / "train_none.h5") as r:
        for i in (0, len(r) - 1):
            path = source / "HAM10000_images_part_1" / f"{r.image_ids[i]}.jpg"
            assert r.image_bytes(i) == path.read_bytes()


def test_resized_clean_rows_are_png(source, tmp_path):
    out = tmp_path / "small"
    generate(source, out, seed=SEED, size=(32, 24), variants=["test_none", "test_20"], progress=False)
    with VariantReader(out / "test_20.h5") as r:
        assert all(r.image_bytes(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in range(len(r)))
        assert r.image(0).shape == (24, 32, 3)
    assert verify_dir(out) == []


def test_rerun_skips_finished_files(built, source):
    out, manifest = built
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("*.h5")}
    again = generate(source, out, seed=SEED, workers=1, progress=False)
    assert again == manifest
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.h5")} == mtimes


def test_bytes_identical_with_two_workers(built, source, tmp_path):
    out, _ = built
    out2 = tmp_path / "w2"
    generate(source, out2, seed=SEED, workers=2, progress=False)
    assert _shas(out2) == _shas(out)


def test_shards_then_merge_equal_a_single_run(built, source, tmp_path):
    out, _ = built
    sharded = tmp_path / "sharded"
    assert generate(source, sharded, seed=SEED, shard=(1, 2), progress=False) is None
    assert not (sharded / MANIFEST_NAME).exists()
    assert verify_dir(sharded) != []
    with pytest.raises(UserError, match="--merge"):
        generate(source, sharded, seed=SEED, merge=True, progress=False)
    # The last shard to finish writes the variant files from all parts.
    assert generate(source, sharded, seed=SEED, shard=(0, 2), progress=False, keep_cache=True) is not None
    assert _shas(sharded) == _shas(out)
    assert verify_dir(sharded) == []
    # An explicit merge from the kept parts gives the same bytes again.
    shutil.rmtree(sharded / ".cache" / "done")
    for p in sharded.glob("*.h5"):
        p.unlink()
    assert (
        main(
            [
                "generate",
                "--source",
                str(source),
                "--out",
                str(sharded),
                "--seed",
                str(SEED),
                "--merge",
                "--quiet",
            ]
        )
        == 0
    )
    assert _shas(sharded) == _shas(out)
    assert not (sharded / ".cache").exists()


def test_verify_cli_catches_a_flipped_byte(built, tmp_path, capsys):
    out, manifest = built
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    assert main(["verify", str(copy), "--quiet"]) == 0
    victim = copy / "test_40.h5"
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["verify", str(copy), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "test_40.h5" in err and "test_20.h5" not in err
    (copy / "train_bcc.h5").unlink()
    assert main(["verify", str(copy), "--quiet"]) == 1
    assert "train_bcc.h5: missing" in capsys.readouterr().err
    assert main(["verify", str(tmp_path / "nowhere")]) == 2


def _run_and_kill(cmd, out: Path, ready) -> bool:
    """Start ``cmd``, SIGKILL it as soon as ``ready(out)``; True if it was killed mid-run."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        if ready(out):
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.005)
    proc.wait()
    return False


def test_killed_run_is_rejected_then_resumed(built, source, tmp_path):
    out, _ = built
    target = tmp_path / "killed"
    cmd = [
        sys.executable,
        "-m",
        "generator",
        "generate",
        "--source",
        str(source),
        "--out",
        str(target),
        "--seed",
        str(SEED),
        "--quiet",
    ]
    stages = [
        lambda o: any((o / ".cache").glob(".rows-*.partial")),  # while rendering into the row cache
        lambda o: len(list(o.glob("*.h5"))) >= 8,  # part-way through the variant files
    ]
    kills = 0
    for ready in stages:
        if _run_and_kill(cmd, target, ready):
            kills += 1
            assert verify_dir(target) != []
            assert main(["verify", str(target), "--quiet"]) == 1
    assert kills >= 2
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert verify_dir(target) == []
    assert _shas(target) == _shas(out)
    assert not list(target.glob(".*partial")) and not (target / ".cache").exists()


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--shard", "2/2"], "--shard"),
        (["--shard", "a/b"], "--shard"),
        (["--shard", "0/0"], "--shard"),
        (["--size", "64"], "--size"),
        (["--variants", "test_99"], "test_99"),
        (["--workers", "0"], "--workers"),
        (["--merge"], "--merge"),
    ],
)
def test_bad_arguments_exit_2_without_outputs(source, tmp_path, capsys, args, needle):
    out = tmp_path / "out"
    code = main(["generate", "--source", str(source), "--out", str(out), "--quiet", *args])
    err = capsys.readouterr().err.strip()
    assert code == 2 and needle in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_bad_sources_and_outputs_exit_2_without_outputs(source, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    broken = tmp_path / "broken"
    shutil.copytree(source, broken)
    victim = sorted((broken / "ISIC2018_Task3_Test_Images").glob("*.jpg"))[-1]
    victim.write_bytes(victim.read_bytes()[: len(victim.read_bytes()) // 2])
    cases = [
        (empty, tmp_path / "o1", "empty"),
        (tmp_path / "missing", tmp_path / "o2", "missing"),
        (source, blocker / "sub", "a_file"),  # output below a regular file: not writable
        (source, blocker, "a_file"),
        (broken, tmp_path / "o3", victim.name),  # truncated JPEG, found while rendering
    ]
    for src, out, needle in cases:
        code = main(["generate", "--source", str(src), "--out", str(out), "--quiet"])
        err = capsys.readouterr().err.strip()
        assert code == 2 and needle in err and len(err.splitlines()) == 1, err
    for name in ("o1", "o2", "o3"):
        assert not (tmp_path / name).exists()
    assert blocker.read_text() == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only folders")
def test_read_only_output_exits_2(source, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert main(["generate", "--source", str(source), "--out", str(ro / "x"), "--quiet"]) == 2
    finally:
        ro.chmod(0o755)


def test_decoded_artefact_rows_are_lossless(built):
    out, _ = built
    with VariantReader(out / "test_all.h5") as r:
        data = r.image_bytes(0)
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert decode_image(data).dtype == np.uint8


def test_stored_png_round_trips_exactly():
    from generator.variants.store import encode_png_stored

    rng = np.random.default_rng(1)
    for shape in [(1, 1, 3), (45, 60, 3), (3, 700, 3)]:
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        assert np.array_equal(decode_image(encode_png_stored(image)), image)
