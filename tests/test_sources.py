"""The ham10000 adapter: layouts, both ground-truth formats, delimiters, and every bad input."""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers.sources import private_copy, synthetic_folder
from PIL import Image

from generator import CLASSES
from generator.errors import UserError
from generator.sources import (
    EXPECTED_COUNTS,
    Source,
    SourceRecord,
    expected_counts_report,
    load_source,
    read_image,
    read_mask,
)
from generator.sources.synth import class_counts

META = "HAM10000_metadata.csv"
GT = "ISIC2018_Task3_Test_GroundTruth.csv"


@pytest.fixture
def small_source_dir(tmp_path_factory, tmp_path) -> Path:
    return private_copy(tmp_path_factory, tmp_path)


def _read_rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def _write_rows(path: Path, rows, delimiter=",", quoting=csv.QUOTE_MINIMAL) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f, delimiter=delimiter, quoting=quoting, lineterminator="\n").writerows(rows)


def _summary(source: Source):
    return [
        (r.image_id, r.lesion_id, r.dx, r.label, r.split, r.image_path.name, r.metadata)
        for r in [*source.train, *source.test]
    ]


# --- reading a good folder --------------------------------------------------------------------


def test_loads_synthetic_layout_with_onehot_ground_truth(small_source_dir):
    source = load_source(small_source_dir)
    assert source.synthetic is True
    assert source.ground_truth_format == "onehot"
    assert source.class_counts("train") == class_counts(0.01, "train")
    assert source.class_counts("test") == class_counts(0.01, "test")
    assert all(r.label == CLASSES.index(r.dx) for r in [*source.train, *source.test])
    assert all(r.split == "train" and r.mask_path is not None for r in source.train)
    assert all(r.split == "test" and r.mask_path is None for r in source.test)  # test set has no masks
    assert set(source.train[0].metadata) == {"dx", "dx_type", "age", "sex", "localization", "dataset"}
    assert {r.image_id for r in source.train}.isdisjoint(r.image_id for r in source.test)
    # Training images are found in both Dataverse part folders.
    assert {r.image_path.parent.name for r in source.train} == {
        "HAM10000_images_part_1",
        "HAM10000_images_part_2",
    }
    assert re.fullmatch(r"[0-9a-f]{64}", source.fingerprint)


def test_ham_format_ground_truth_gives_the_same_test_set(tmp_path_factory):
    onehot = load_source(synthetic_folder(tmp_path_factory, "onehot"))
    ham = load_source(synthetic_folder(tmp_path_factory, "ham"))
    assert ham.ground_truth_format == "ham"
    assert [(r.image_id, r.dx) for r in ham.test] == [(r.image_id, r.dx) for r in onehot.test]
    assert all(r.lesion_id.startswith("HAM_") for r in ham.test)  # the HAM format carries lesion ids
    assert all(r.lesion_id == "" for r in onehot.test)  # the one-hot table has none


def test_tab_delimited_quoted_metadata_without_extension(small_source_dir):
    reference = load_source(small_source_dir)
    rows = _read_rows(small_source_dir / META)
    (small_source_dir / META).unlink()
    _write_rows(small_source_dir / "HAM10000_metadata", rows, delimiter="\t", quoting=csv.QUOTE_ALL)
    source = load_source(small_source_dir)
    assert source.metadata_path.name == "HAM10000_metadata"
    assert _summary(source) == _summary(reference)


def test_quoted_comma_values_and_empty_age(small_source_dir):
    rows = _read_rows(small_source_dir / META)
    header = rows[0]
    rows[1][header.index("localization")] = "lower extremity, left"  # needs quoting in a CSV
    rows[1][header.index("age")] = ""
    _write_rows(small_source_dir / META, rows, quoting=csv.QUOTE_NONNUMERIC)
    source = load_source(small_source_dir)
    rec = next(r for r in source.train if r.image_id == rows[1][header.index("image_id")])
    assert rec.metadata["localization"] == "lower extremity, left"
    assert rec.metadata["age"] == ""


def test_fingerprint_is_stable_and_tracks_inputs(small_source_dir):
    first = load_source(small_source_dir).fingerprint
    assert load_source(small_source_dir).fingerprint == first
    image = load_source(small_source_dir).train[0].image_path
    image.write_bytes(image.read_bytes() + b"\0")  # a different file size
    assert load_source(small_source_dir).fingerprint != first


def test_fingerprint_is_of_content_not_names_and_sizes(small_source_dir):
    """Issue 24, case 4: the same names and byte sizes with other bytes are another source."""
    source = load_source(small_source_dir)
    mask = source.train[0].mask_path
    data = bytearray(mask.read_bytes())
    data[-20] ^= 0xFF  # one byte inside the PNG: same name, same size
    mask.write_bytes(bytes(data))
    changed = load_source(small_source_dir).fingerprint
    assert changed != source.fingerprint
    (small_source_dir / "SYNTHETIC.txt").unlink()  # the licence the build writes depends on it
    assert load_source(small_source_dir).fingerprint != changed


def test_read_image_refuses_bytes_changed_since_the_fingerprint(small_source_dir):
    rec = load_source(small_source_dir).train[2]
    data = bytearray(rec.image_path.read_bytes())
    data[len(data) // 2] ^= 0x01
    rec.image_path.write_bytes(bytes(data))
    with pytest.raises(UserError, match=rf"{re.escape(str(rec.image_path))}: changed since the source"):
        read_image(rec)


def test_read_image_keeps_jpeg_bytes_only_without_resize(small_source_dir):
    rec = load_source(small_source_dir).train[0]
    rgb, data = read_image(rec)
    assert rgb.shape == (48, 64, 3) and rgb.dtype == np.uint8
    assert data == rec.image_path.read_bytes()
    same, data_same = read_image(rec, size=(64, 48))
    assert data_same == data and np.array_equal(same, rgb)
    small, none = read_image(rec, size=(32, 24))
    assert small.shape == (24, 32, 3) and none is None


def test_read_mask_provided_resized_and_auto(small_source_dir):
    source = load_source(small_source_dir)
    rec = source.train[0]
    mask, origin = read_mask(rec, (48, 64, 3))
    png = np.asarray(Image.open(rec.mask_path))
    assert origin == "provided" and mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 1}
    assert np.array_equal(mask, (png > 127).astype(np.uint8))
    half, _ = read_mask(rec, (24, 32))
    assert half.shape == (24, 32) and set(np.unique(half)) <= {0, 1}
    test_rec = source.test[0]
    auto, origin = read_mask(test_rec, (48, 64))
    assert origin == "auto" and auto.shape == (48, 64) and auto.sum() > 0


def test_expected_counts_report_only_for_full_sets(tmp_path):
    def fake(split, counts):
        return [
            SourceRecord(f"ISIC_{split}{c}{i}", "HAM_x", c, CLASSES.index(c), split, tmp_path, None, {})
            for c, n in counts.items()
            for i in range(n)
        ]

    full = Source(
        tmp_path,
        fake("train", EXPECTED_COUNTS["train"]),
        fake("test", EXPECTED_COUNTS["test"]),
        "0" * 64,
        False,
        tmp_path / META,
    )
    text = expected_counts_report(full)
    assert "train: 10015 images" in text and "test: 1511 images" in text and "differs" not in text
    short = dict(EXPECTED_COUNTS["train"], df=100)
    off = Source(tmp_path, fake("train", short), [], "0" * 64, False, tmp_path / META)
    assert "df 100 (expected 115)" in expected_counts_report(off)
    tiny = Source(tmp_path, fake("train", {"nv": 5}), [], "0" * 64, False, tmp_path / META)
    assert expected_counts_report(tiny) is None


# --- bad inputs: each a UserError naming the file (and row) ----------------------------------


def _edit_metadata(folder: Path, edit) -> Path:
    rows = _read_rows(folder / META)
    edit(rows)
    _write_rows(folder / META, rows)
    return folder / META


def test_missing_folder_and_empty_folder(tmp_path):
    with pytest.raises(UserError, match="no such folder"):
        load_source(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"empty.*empty folder"):
        load_source(tmp_path / "empty")


def test_no_metadata(small_source_dir):
    (small_source_dir / META).unlink()
    with pytest.raises(UserError, match="no HAM10000_metadata"):
        load_source(small_source_dir)


def test_missing_required_columns(small_source_dir):
    def drop(rows):
        i = rows[0].index("localization")
        for r in rows:
            del r[i]

    path = _edit_metadata(small_source_dir, drop)
    with pytest.raises(
        UserError, match=rf"{re.escape(str(path))}: missing required column\(s\) localization"
    ):
        load_source(small_source_dir)


def test_unknown_dx_names_the_row(small_source_dir):
    def bad(rows):
        rows[3][2] = "melanoma"

    path = _edit_metadata(small_source_dir, bad)
    with pytest.raises(UserError, match=rf"{re.escape(str(path))}, row 4 .*unknown dx 'melanoma'"):
        load_source(small_source_dir)


def test_duplicate_image_id(small_source_dir):
    path = _edit_metadata(small_source_dir, lambda rows: rows.append(list(rows[2])))
    with pytest.raises(
        UserError,
        match=rf"{re.escape(str(path))}, row \d+: duplicate image_id ISIC_\d+ "
        r"\(first listed at row 3\)",
    ):
        load_source(small_source_dir)


def test_non_numeric_age(small_source_dir):
    def bad(rows):
        rows[5][4] = "old"

    _edit_metadata(small_source_dir, bad)
    with pytest.raises(UserError, match=r"row 6: age 'old'"):
        load_source(small_source_dir)


def test_listed_image_missing(small_source_dir):
    rec = load_source(small_source_dir).train[4]
    rec.image_path.unlink()
    with pytest.raises(UserError, match=rf"{META}, row \d+: image {rec.image_id} is listed but .* not found"):
        load_source(small_source_dir)


def test_test_image_missing_names_ground_truth_row(small_source_dir):
    rec = load_source(small_source_dir).test[2]
    rec.image_path.unlink()
    with pytest.raises(UserError, match=rf"{GT}, row \d+: image {rec.image_id} is listed"):
        load_source(small_source_dir)


def test_onehot_row_with_two_classes(small_source_dir):
    rows = _read_rows(small_source_dir / GT)
    rows[2][1:] = ["1.0", "1.0", "0.0", "0.0", "0.0", "0.0", "0.0"]
    _write_rows(small_source_dir / GT, rows)
    with pytest.raises(UserError, match=rf"{GT}, row 3 .*exactly one class"):
        load_source(small_source_dir)


def test_test_images_without_ground_truth(small_source_dir):
    (small_source_dir / GT).unlink()
    with pytest.raises(UserError, match="no test ground truth"):
        load_source(small_source_dir)


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupt_jpeg_fails_at_read_time(small_source_dir, damage):
    path = load_source(small_source_dir).train[1].image_path
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3] if damage == "truncated" else b"not a jpeg" * 50)
    rec = load_source(small_source_dir).train[1]
    with pytest.raises(UserError, match=rf"{re.escape(str(rec.image_path))}: corrupt or truncated image"):
        read_image(rec)


def test_truncation_by_one_byte_is_detected(small_source_dir):
    path = load_source(small_source_dir).train[1].image_path
    path.write_bytes(path.read_bytes()[:-1])
    rec = load_source(small_source_dir).train[1]
    with pytest.raises(UserError, match="truncated"):
        read_image(rec)


def test_mask_of_wrong_size(small_source_dir):
    mask_path = load_source(small_source_dir).train[0].mask_path
    Image.open(mask_path).resize((32, 24)).save(mask_path)
    rec = load_source(small_source_dir).train[0]
    with pytest.raises(
        UserError,
        match=rf"{re.escape(str(rec.mask_path))}: mask is 32x24 but image "
        rf"{rec.image_id}.jpg is 64x48",
    ):
        read_mask(rec, (48, 64))


def test_bad_input_through_the_cli(small_source_dir, capsys):
    """Any command that loads a source reports the adapter's message on one line with exit code 2."""
    cli = pytest.importorskip("generator.cli")
    pytest.importorskip("generator.cli_data")
    (small_source_dir / META).unlink()
    code = cli.main(
        ["generate", "--source", str(small_source_dir), "--out", str(small_source_dir.parent / "o")]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) >= 1 and "no HAM10000_metadata" in err[-1]


def test_real_layout_with_nested_folders_and_test_table_variants(small_source_dir, tmp_path):
    """Folders nested one level down (as unpacked from Dataverse zips) and a stray unrelated test table."""
    nested = tmp_path / "download"
    nested.mkdir()
    shutil.move(str(small_source_dir), nested / "dataverse_files")
    (nested / "dataverse_files" / "SYNTHETIC.txt").unlink()
    other = nested / "dataverse_files" / "ISIC2018_Task3_Test_NatureMedicine_AI_Interaction_Benefit.csv"
    other.write_text("a,b\n1,2\n")
    source = load_source(nested)
    assert source.synthetic is False
    assert source.ground_truth_path.name == GT
    assert len(source.test) == sum(class_counts(0.01, "test").values())


def test_load_is_quiet_for_subsets(small_source_dir, capsys):
    load_source(small_source_dir)
    assert capsys.readouterr().err == ""


def test_utf8_bom_and_blank_lines(small_source_dir):
    text = (small_source_dir / META).read_text()
    (small_source_dir / META).write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\n\n", 3).encode())
    assert len(load_source(small_source_dir).train) == len(text.strip().splitlines()) - 1


def test_image_shape_matches_mask_for_every_record(small_source_dir):
    source = load_source(small_source_dir)
    for rec in source.train[:10]:
        rgb, _ = read_image(rec)
        mask, _ = read_mask(rec, rgb.shape, rgb)
        assert mask.shape == rgb.shape[:2]


def test_missing_images_with_zips_present_hint_at_unpacking(small_source_dir):
    for part in ("HAM10000_images_part_1", "HAM10000_images_part_2"):
        shutil.rmtree(small_source_dir / part)
    (small_source_dir / "HAM10000_images_part_1.zip").write_bytes(b"PK")
    with pytest.raises(
        UserError, match=r"more images\) was not found .*unpack HAM10000_images_part_1.zip first"
    ):
        load_source(small_source_dir)
