"""Issue 24 on the generator side: each hostile input or environment of cases 4-8 is one line naming
the file (UserError, exit 2 through the CLI) or the documented warning, with nothing silently lost.

4 a source changed in content only; 5 walks that end (link loops, FIFOs); 6 a full disk; 7 bad files
(decompression bombs, tiny images, damaged variant files); 8 silent acceptances (ages, degenerate
masks, conflicting duplicates, stale cards).
"""

from __future__ import annotations

import errno
import io
import logging
import os
import shutil
import struct
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from helpers.variants import make_source
from PIL import Image

from generator.cli import main
from generator.errors import UserError
from generator.sources import load_source, read_image, read_mask
from generator.variants import ALL_TEST, CLEAN_TEST, CLEAN_TRAIN
from generator.variants.build import generate
from generator.variants.manifest import MANIFEST_NAME, verify_dir
from generator.variants.store import VariantReader

PART_1, PART_2 = "HAM10000_images_part_1", "HAM10000_images_part_2"
MASKS, TEST_IMAGES = "HAM10000_segmentations_lesion_tschandl", "ISIC2018_Task3_Test_Images"
FEW = [CLEAN_TEST, ALL_TEST]  # two small variant files: enough to exercise the whole build


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    return make_source(tmp_path_factory.mktemp("pristine") / "src")


@pytest.fixture
def source(pristine, tmp_path) -> Path:
    """A private copy of the small source that the test may damage."""
    return Path(shutil.copytree(pristine, tmp_path / "src"))


def _cli_generate(source: Path, out: Path, capsys, *extra: str) -> tuple[int, list[str]]:
    capsys.readouterr()
    code = main(["generate", "--source", str(source), "--out", str(out), "--quiet", *extra])
    return code, capsys.readouterr().err.strip().splitlines()


def _first(folder: Path, pattern: str = "*.jpg") -> Path:
    return sorted(folder.glob(pattern))[0]


# --- 4: a source fingerprint of content -------------------------------------------------------


def _same_size_rotated(path: Path) -> None:
    """Replace the JPEG at ``path`` by its 180-degree rotation, re-encoded to exactly the same byte size
    (zero padding after the end marker, which decoders ignore)."""
    original = path.read_bytes()
    rotated = Image.open(path).rotate(180)
    for quality in range(95, 5, -1):
        buffer = io.BytesIO()
        rotated.save(buffer, format="JPEG", quality=quality)
        if len(buffer.getvalue()) <= len(original):
            break
    data = buffer.getvalue()
    path.write_bytes(data + b"\0" * (len(original) - len(data)))
    assert path.stat().st_size == len(original) and path.read_bytes() != original


def test_a_same_size_re_encode_of_a_source_image_is_rebuilt_not_already_complete(source, tmp_path, caplog):
    out = tmp_path / "data"
    first = generate(source, out, variants=FEW, progress=False)
    victim = _first(source / TEST_IMAGES)
    _same_size_rotated(victim)
    caplog.set_level(logging.INFO)
    second = generate(source, out, variants=FEW, progress=False)
    assert "already complete" not in caplog.text
    assert second["source_fingerprint"] != first["source_fingerprint"]
    with VariantReader(out / f"{CLEAN_TEST}.h5") as reader:
        row = reader.index_of(victim.stem)
        assert reader.image_bytes(row) == victim.read_bytes()  # the new pixels, not the stale ones
    assert verify_dir(out) == []


# --- 5: walks that end ----------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_link_loops_in_the_source_are_skipped_with_a_warning(source, caplog):
    reference = [(r.image_id, r.image_path.name) for r in load_source(source).train]
    os.symlink(".", source / "loop_a")
    os.symlink("..", source / PART_1 / "loop_b")
    caplog.set_level(logging.WARNING)
    found = load_source(source)
    assert [(r.image_id, r.image_path.name) for r in found.train] == reference
    assert "loop_a: links to a folder already scanned" in caplog.text
    assert "loop_b: links to a folder already scanned" in caplog.text


def test_an_image_folder_linked_from_outside_the_source_is_still_read(source, tmp_path):
    reference = [r.image_id for r in load_source(source).train]
    outside = tmp_path / "elsewhere"
    shutil.move(source / PART_1, outside)
    os.symlink(outside, source / PART_1)
    assert [r.image_id for r in load_source(source).train] == reference


@pytest.mark.timeout(60)
def test_a_fifo_where_an_image_belongs_is_refused_not_read(source, tmp_path, capsys):
    victim = _first(source / PART_1)
    victim.unlink()
    os.mkfifo(victim)
    with pytest.raises(UserError, match=rf"{victim}: not a regular file \(a FIFO\)"):
        load_source(source)
    code, err = _cli_generate(source, tmp_path / "out", capsys)
    assert code == 2 and len(err) == 1 and victim.name in err[0] and "FIFO" in err[0]


@pytest.mark.timeout(60)
def test_a_broken_link_where_a_mask_belongs_is_refused(source):
    victim = _first(source / MASKS, "*.png")
    victim.unlink()
    os.symlink(source / "nowhere.png", victim)
    with pytest.raises(UserError, match=rf"{victim}: broken link"):
        load_source(source)


# --- 6: a full disk ---------------------------------------------------------------------------


def _fill_the_disk_while_writing(monkeypatch, exc: BaseException) -> None:
    """Make every variant-file write fail part-way, as a full disk does."""
    from generator.variants.store import writer

    def full(_data):
        raise exc

    monkeypatch.setattr(writer, "_png_or_jpeg_size", full)


@pytest.mark.parametrize(
    "exc",
    [
        OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)),
        # how HDF5 reports it through h5py
        RuntimeError(
            "Can't decrement id ref count (file write failed: time = Tue, filename = 'x.h5.partial', "
            "file descriptor = 6, errno = 28, error message = 'No space left on device')"
        ),
    ],
    ids=["ENOSPC", "hdf5-errno-28"],
)
def test_a_full_disk_during_generate_is_one_line_naming_the_file_then_resumes(
    source, tmp_path, capsys, monkeypatch, exc
):
    out = tmp_path / "data"
    _fill_the_disk_while_writing(monkeypatch, exc)
    code, err = _cli_generate(source, out, capsys, "--variants", *FEW)
    assert code == 2 and len(err) == 1, err
    assert f"{out / CLEAN_TEST}.h5: no space left on device" in err[0]
    assert not (out / MANIFEST_NAME).exists() and not list(out.rglob("*.partial"))
    assert not list(out.glob("*.h5"))  # nothing half-written is left to be accepted
    monkeypatch.undo()
    code, err = _cli_generate(source, out, capsys, "--variants", *FEW)
    assert code == 0 and verify_dir(out) == []


def test_a_full_disk_reported_only_from_an_hdf5_deallocation_still_fails_the_write(tmp_path):
    """h5py cannot raise from a deallocation: it prints the error and goes on. The write must fail anyway."""
    from generator.variants.store import hdf5_output

    class LostFlush:
        def __del__(self):
            raise RuntimeError(
                "Can't decrement id ref count (file write failed: errno = 28, error message = '')"
            )

    target = tmp_path / "x.h5"
    hooks = sys.unraisablehook, sys.excepthook
    with pytest.raises(UserError, match=rf"{target}: no space left on device"):
        with hdf5_output(target) as f:
            f.attrs["a"] = 1
            LostFlush()  # collected at once: its error goes to sys.unraisablehook
    assert not target.exists() and not list(tmp_path.iterdir())
    assert (sys.unraisablehook, sys.excepthook) == hooks  # restored


def test_too_little_free_space_is_refused_before_any_work(source, tmp_path, capsys, monkeypatch):
    from generator import atomic

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(atomic.shutil, "disk_usage", lambda _: usage._replace(free=1000))
    out = tmp_path / "data"
    code, err = _cli_generate(source, out, capsys, "--variants", *FEW)
    assert code == 2 and len(err) == 1
    assert f"{out}: no space left for the row cache and the variant files (with the" in err[0]
    assert "it needs about" in err[0] and "0.0 MB free" in err[0]
    assert not list(out.rglob("*.h5"))


def test_hdf5_writes_stop_before_the_disk_can_fill_under_hdf5(tmp_path, monkeypatch):
    """HDF5 crashes when a write inside H5Dwrite meets a full disk: the writer stops first."""
    from generator.variants.store import HDF5_HEADROOM, Row, encode_mask, write_variant, writer

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(writer.shutil, "disk_usage", lambda _: usage._replace(free=HDF5_HEADROOM + 10))
    mask = encode_mask(np.zeros((4, 4), np.uint8))
    rows = [Row(f"ISIC_{i:07d}", "HAM_0000001", 0, b"x" * 100, mask, mask) for i in range(3)]
    target = tmp_path / "v.h5"
    with pytest.raises(UserError, match=rf"^{target}: no space left on device"):
        write_variant(target, rows, 3, {"variant": {}, "split": "test"})
    assert not list(tmp_path.iterdir())


def test_the_space_estimate_is_a_close_lower_bound_of_what_generate_writes(pristine, tmp_path):
    from generator.variants import resolve_variants
    from generator.variants.plan import RowBytes, make_plan

    for size in (None, (32, 24)):
        out = tmp_path / f"data-{size}"
        manifest = generate(pristine, out, variants=FEW, size=size, progress=False)
        specs = resolve_variants(FEW)
        plan = make_plan(load_source(pristine), specs, 0, size, "builtin")
        written = sum(e["bytes"] for e in manifest["files"])
        assert 0.5 * written < RowBytes(plan).variants(specs) <= written, size


# --- 7: bad input files -----------------------------------------------------------------------


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` grey pixels, with almost no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def test_a_mask_claiming_30000_by_30000_pixels_is_one_line_naming_it(source, tmp_path, capsys):
    victim = _first(source / MASKS, "*.png")
    victim.write_bytes(_png_header_only(30000, 30000))
    rec = next(r for r in load_source(source).train if r.mask_path == victim)
    with pytest.raises(UserError, match=rf"{victim}: .*decompression-bomb limit"):
        read_mask(rec, (48, 64))
    code, err = _cli_generate(source, tmp_path / "out", capsys, "--variants", CLEAN_TRAIN)
    assert code == 2 and len(err) == 1 and victim.name in err[0] and "decompression-bomb" in err[0]


def test_an_image_past_pillows_warning_limit_is_one_logged_line_not_a_python_warning(
    source, monkeypatch, caplog
):
    """64x48 = 3072 pixels against a limit of 2000 is what 10000x10000 is against Pillow's default."""
    rec = load_source(source).train[0]
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)
    caplog.set_level(logging.WARNING)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rgb, _ = read_image(rec)
    assert rgb.shape == (48, 64, 3)
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and lines[0].startswith(f"{rec.image_path}: Image size (3072 pixels)")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # past twice the limit: refused
    with pytest.raises(UserError, match=rf"{rec.image_path}: Image size \(3072 pixels\)"):
        read_image(rec)


def test_a_one_pixel_image_without_a_mask_is_segmented_and_built(source, tmp_path):
    victim = _first(source / TEST_IMAGES)
    Image.new("RGB", (1, 1), (120, 80, 60)).save(victim)
    rec = next(r for r in load_source(source).test if r.image_path == victim)
    mask, origin = read_mask(rec, (1, 1))
    assert origin == "auto" and mask.shape == (1, 1)
    generate(source, tmp_path / "data", variants=FEW, progress=False)
    with VariantReader(tmp_path / "data" / f"{ALL_TEST}.h5") as reader:
        assert reader.image(reader.index_of(victim.stem)).shape == (1, 1, 3)


@pytest.fixture(scope="module")
def variant_file(pristine, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("variant") / "data"
    generate(pristine, out, variants=[ALL_TEST], progress=False)
    return out / f"{ALL_TEST}.h5"


def _flipped(data: bytes, offset: int, n: int = 20) -> bytes:
    damaged = bytearray(data)
    for i in range(offset, offset + n):
        damaged[i] ^= 0xFF
    return bytes(damaged)


@pytest.mark.parametrize("damage", ["truncated", "empty", "signature", "object header", "heap"])
def test_a_damaged_variant_file_is_one_line_naming_it(variant_file, tmp_path, damage):
    data = variant_file.read_bytes()
    damaged = {
        "truncated": data[: len(data) // 2],
        "empty": b"",
        "signature": _flipped(data, 0, 4),
        "object header": _flipped(data, 200),  # h5py: KeyError, unable to open object
        "heap": _flipped(data, len(data) - 500),  # h5py: OSError, bad heap index, on reading the records
    }[damage]
    path = tmp_path / variant_file.name
    path.write_bytes(damaged)
    with pytest.raises(UserError, match=rf"^{path}(, .*)?: damaged or not a readable variant file") as info:
        with VariantReader(path) as reader:
            for i in range(len(reader)):
                reader.image(i), reader.lesion_mask(i), reader.artefact_mask(i), reader.record(i)
            reader.records()
    assert "\n" not in str(info.value)


# --- 8: no silent acceptances -------------------------------------------------------------------


def test_implausible_ages_are_stored_as_nan_with_one_counted_warning(source, tmp_path, caplog):
    meta = source / "HAM10000_metadata.csv"
    lines = meta.read_text().splitlines()
    bad = {1: "inf", 2: "-1e308", 3: "-5", 4: "130"}
    for row, age in bad.items():
        fields = lines[row].split(",")
        fields[4] = age
        lines[row] = ",".join(fields)
    kept = lines[5].split(",")
    meta.write_text("\n".join(lines) + "\n")
    caplog.set_level(logging.WARNING)
    generate(source, tmp_path / "data", variants=[CLEAN_TRAIN], progress=False)
    warning = [r.getMessage() for r in caplog.records if "implausible age" in r.getMessage()]
    assert warning == [
        f"{meta}: 4 implausible age(s) (first: row 2, 'inf'; expected 0 to 120) stored as unknown (NaN)"
    ]
    with VariantReader(tmp_path / "data" / f"{CLEAN_TRAIN}.h5") as reader:
        ages = dict(zip(reader.image_ids, reader.metadata["age"], strict=True))
    assert all(np.isnan(ages[lines[row].split(",")[1]]) for row in bad)
    assert ages[kept[1]] == float(kept[4])


def test_degenerate_provided_masks_are_segmented_automatically_and_counted(source, tmp_path, caplog):
    masks = sorted((source / MASKS).glob("*.png"))
    black, white = masks[0], masks[1]
    Image.new("L", (64, 48), 0).save(black)
    Image.new("L", (64, 48), 255).save(white)
    caplog.set_level(logging.WARNING)
    generate(source, tmp_path / "data", variants=[CLEAN_TRAIN], progress=False)
    assert any(
        r.getMessage().startswith("2 provided lesion mask(s) were empty or covered the whole image")
        for r in caplog.records
    )
    with VariantReader(tmp_path / "data" / f"{CLEAN_TRAIN}.h5") as reader:
        for mask in (black, white):
            row = reader.index_of(mask.name.removesuffix("_segmentation.png"))
            assert reader.mask_source[row] == "auto"
            lesion = reader.lesion_mask(row)
            assert lesion.any() and not lesion.all()
        assert reader.mask_source.count("provided") == len(reader) - 2


def test_one_image_id_with_different_pixels_in_both_parts_is_refused(source):
    first = _first(source / PART_1)
    (source / PART_2).mkdir()
    twin = source / PART_2 / first.name
    shutil.copy(first, twin)
    assert load_source(source).train[0].image_path == first  # identical copies: accepted, as before
    _same_size_rotated(twin)
    with pytest.raises(UserError, match=rf"{first} and {twin}: two different files for {first.stem}"):
        load_source(source)


def test_a_failed_rebuild_leaves_no_cards_beside_no_manifest(source, tmp_path, capsys):
    out = tmp_path / "data"
    generate(source, out, variants=FEW, progress=False)
    assert (out / "README.md").is_file() and (out / "croissant.json").is_file()
    victim = _first(source / TEST_IMAGES)
    victim.write_bytes(victim.read_bytes()[:100])  # the rebuild fails while decoding it
    code, err = _cli_generate(source, out, capsys, "--variants", *FEW)
    assert code == 2 and len(err) == 1 and victim.name in err[0]
    assert not (out / MANIFEST_NAME).exists()
    assert not (out / "README.md").exists() and not (out / "croissant.json").exists()
