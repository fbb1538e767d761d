"""Template banks: the meta.json layout, the builtin procedural bank, extraction and galleries."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from generator.artefacts.kinds import DEFAULT_FAMILIES, KINDS
from generator.artefacts.templates import TemplateBank
from generator.errors import UserError

REPO = Path(__file__).resolve().parents[1]
REAL_TEMPLATES = REPO.parent / "shared" / "artefact-templates"


def _png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _write_layout(root: Path) -> dict:
    """A miniature bank in the original layout: pairs in all three naming styles, stamps (RGB and RGBA)."""
    rng = np.random.default_rng(0)
    base = rng.integers(60, 200, (20, 24, 3), dtype=np.uint8)
    with_a = base.copy()
    with_a[5:9, 6:12] += 40
    with_b = base.copy()
    with_b[2:4, 3:5] -= 50
    _png(root / "src/B1/B1_with_03.png", with_a)
    _png(root / "src/B1/B1_without_03.png", base)
    _png(root / "src/B1/B1_07_with.png", with_b)
    _png(root / "src/B1/B1_07_without.png", base)
    _png(root / "src/R1/R1_with.png", with_a)
    _png(root / "src/R1/R1_without.png", base)
    stamp = np.full((30, 40, 3), 255, np.uint8)
    stamp[10:20, 5:25] = (120, 60, 150)
    _png(root / "src/M1/M1_03.png", stamp)
    rgba = np.zeros((16, 16, 4), np.uint8)  # transparent paper, an opaque violet dot
    rgba[4:8, 4:8] = (100, 40, 140, 255)
    _png(root / "src/C1/C1_01.png", rgba)
    meta = {
        "_comment": "test",
        "artefacts": [
            {
                "class": "bubble",
                "preprocessor": "difference",
                "psd_file": "src/B1.psd",
                "original_file": "x.jpg",
                "name": "B1",
                "artefact_folder": "src/B1",
            },
            {
                "class": "ruler",
                "subclass": "horizontal",
                "preprocessor": "difference",
                "name": "R1",
                "artefact_folder": "src/R1",
            },
            {"class": "marking", "subclass": "spot", "name": "M1", "artefact_folder": "src/M1"},
            {"class": "marking", "subclass": "circle", "name": "C1", "artefact_folder": "src/C1"},
        ],
    }
    (root / "meta.json").write_text(json.dumps(meta))
    return {"base": base, "with_a": with_a, "with_b": with_b, "stamp": stamp}


def test_directory_bank_reads_pairs_and_stamps(tmp_path):
    images = _write_layout(tmp_path)
    bank = TemplateBank.from_directory(tmp_path)
    assert bank.counts() == {
        "bubble": 1,
        "ruler_horizontal": 1,
        "ruler_vertical": 0,
        "marking_circle": 1,
        "marking_spot": 1,
        "hair": 0,
        "dark_corner": 0,
        "gel_border": 0,
        "patches": 0,
    }
    assert bank.template_counts()["bubble"] == 2
    assert bank.kinds() == ["bubble", "ruler_horizontal", "marking_circle", "marking_spot"]
    pair = bank.template("B1/B1_03").pixels
    expected = (images["with_a"].astype(np.int16) - images["base"].astype(np.int16))[5:9, 6:12]
    assert np.array_equal(pair, expected) and pair.dtype == np.int16
    negative = bank.template("B1/B1_07").pixels
    assert negative.shape == (2, 2, 3) and np.all(negative == -50)
    spot = bank.template("M1/M1_03").pixels
    assert spot.shape == (10, 20, 3) and np.array_equal(spot[0, 0], [120 - 255, 60 - 255, 150 - 255])
    circle = bank.template("C1/C1_01").pixels  # transparency counts as white paper
    assert circle.shape == (4, 4, 3) and np.array_equal(circle[0, 0], [100 - 255, 40 - 255, 140 - 255])


def test_fingerprint_is_stable_and_content_sensitive(tmp_path):
    images = _write_layout(tmp_path)
    first = TemplateBank.from_directory(tmp_path).fingerprint
    assert first == TemplateBank.from_directory(tmp_path).fingerprint
    changed = images["with_a"].copy()
    changed[6, 7] += 1
    _png(tmp_path / "src/B1/B1_with_03.png", changed)
    assert TemplateBank.from_directory(tmp_path).fingerprint != first
    assert TemplateBank.load(str(tmp_path)).fingerprint != first  # the load cache notices the change


def test_directory_bank_errors_name_the_problem(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        TemplateBank.from_directory(tmp_path / "missing")
    with pytest.raises(UserError, match="meta.json"):
        TemplateBank.from_directory(tmp_path)
    with pytest.raises(UserError, match="neither 'builtin' nor an existing directory"):
        TemplateBank.load(str(tmp_path / "nope"))
    _write_layout(tmp_path)
    (tmp_path / "src/R1/R1_without.png").unlink()
    with pytest.raises(UserError, match="R1_with.png: no matching 'without' image"):
        TemplateBank.from_directory(tmp_path)
    (tmp_path / "meta.json").write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        TemplateBank.from_directory(tmp_path)
    (tmp_path / "meta.json").write_text(
        json.dumps({"artefacts": [{"class": "beard", "artefact_folder": "x"}]})
    )
    with pytest.raises(UserError, match="unknown class"):
        TemplateBank.from_directory(tmp_path)


def test_builtin_bank_covers_every_kind_deterministically():
    bank = TemplateBank.builtin(0)
    assert bank.kinds() == list(KINDS)
    assert all(count >= 4 for count in bank.counts().values())
    assert TemplateBank.load("builtin").fingerprint == bank.fingerprint
    assert TemplateBank.builtin(1).fingerprint != bank.fingerprint
    from generator.artefacts.procedural import builtin_sets

    again = builtin_sets(0)  # regenerated from scratch: same pixels
    for set_name, _, templates in again[:6]:
        for name, pixels in templates:
            from generator.artefacts.templates import crop_to_content

            assert np.array_equal(crop_to_content(pixels), bank.template(f"{set_name}/{name}").pixels)


def test_builtin_templates_have_the_expected_character():
    bank = TemplateBank.builtin(0)
    for template_set in bank.sets["bubble"]:
        for template in template_set.templates:
            assert template.pixels.max() > 80 and template.pixels.min() < -10  # bright rim, dark edge
    for kind in ("marking_circle", "marking_spot"):
        for template_set in bank.sets[kind]:
            pixels = template_set.templates[0].pixels.reshape(-1, 3)
            ink = pixels[np.any(pixels != 0, axis=1)]
            assert np.all(ink <= 0)
            # violet/purple: green darkened most, blue least
            assert ink[:, 1].mean() < ink[:, 0].mean() < ink[:, 2].mean()
            # uneven density: a wide spread of darkness
            assert np.std(ink[:, 1]) > 20
    for kind in ("ruler_horizontal", "ruler_vertical"):
        for template_set in bank.sets[kind]:
            pixels = template_set.templates[0].pixels
            columns = np.any(pixels != 0, axis=(0, 2))
            assert pixels.shape[1] > 4 * pixels.shape[0] and columns.mean() > 0.9
            # ticks: many separate dark runs off the base line, with major ticks longer than minor ones
            dark = np.any(pixels < -30, axis=2)
            ticks = dark[dark.mean(axis=1) < 0.8]
            lengths = ticks.sum(axis=0)
            runs = np.count_nonzero(np.diff((lengths > 0).astype(int)) == 1)
            assert runs > 20, runs
            assert lengths.max() > 1.8 * np.median(lengths[lengths > 0])


@pytest.mark.skipif(not (REAL_TEMPLATES / "meta.json").is_file(), reason="real templates not available")
def test_real_bank_counts_and_fingerprint():
    bank = TemplateBank.load(str(REAL_TEMPLATES))
    assert sum(bank.counts().values()) == 51
    # the seed study's templates: the paper's three families (the other kinds are builtin only)
    assert bank.kinds() == [k for k, spec in KINDS.items() if spec.family in DEFAULT_FAMILIES]
    assert bank.for_families(DEFAULT_FAMILIES).fingerprint == bank.fingerprint
    assert (
        len(bank.fingerprint) == 16
        and bank.fingerprint == TemplateBank.from_directory(REAL_TEMPLATES).fingerprint
    )


def test_extract_from_pair_round_trips(tmp_path):
    from generator.artefacts.extract import extract_template

    rng = np.random.default_rng(2)
    without = rng.integers(40, 200, (60, 80, 3), dtype=np.uint8)
    with_image = without.copy()
    with_image[20:30, 30:50] = np.clip(with_image[20:30, 30:50].astype(int) - 70, 0, 255)
    _png(tmp_path / "w.png", with_image)
    _png(tmp_path / "wo.png", without)
    entry = extract_template(
        tmp_path / "bank",
        "marking_spot",
        with_path=tmp_path / "w.png",
        without_path=tmp_path / "wo.png",
        name="mine",
    )
    assert (
        entry["class"] == "marking" and entry["subclass"] == "spot" and entry["preprocessor"] == "difference"
    )
    bank = TemplateBank.from_directory(tmp_path / "bank")
    (template,) = bank.sets["marking_spot"][0].templates
    expected = with_image.astype(np.int16) - without.astype(np.int16)
    assert np.array_equal(template.pixels, expected[20:30, 30:50])
    # a second extraction into the same bank appends another pair to the set
    extract_template(
        tmp_path / "bank",
        "marking_spot",
        with_path=tmp_path / "w.png",
        without_path=tmp_path / "wo.png",
        name="mine",
    )
    extract_template(
        tmp_path / "bank",
        "bubble",
        with_path=tmp_path / "w.png",
        without_path=tmp_path / "wo.png",
        name="other",
    )
    bank = TemplateBank.from_directory(tmp_path / "bank")
    assert bank.template_counts()["marking_spot"] == 2 and bank.counts()["bubble"] == 1


def test_extract_from_image_and_mask_uses_inpainting(tmp_path):
    from generator.artefacts.extract import extract_template

    y, x = np.mgrid[0:64, 0:96]
    smooth = np.stack([120 + x, 100 + y, 90 + 0 * x], axis=2).astype(np.uint8)
    marked = smooth.copy()
    marked[28:34, 20:70] = (90, 30, 120)  # an ink stroke
    artefact = np.zeros((64, 96), np.uint8)
    artefact[27:35, 19:71] = 255
    _png(tmp_path / "img.png", marked)
    _png(tmp_path / "art.png", artefact)
    extract_template(
        tmp_path / "bank",
        "marking_spot",
        image_path=tmp_path / "img.png",
        artefact_mask_path=tmp_path / "art.png",
        name="stroke",
    )
    bank = TemplateBank.from_directory(tmp_path / "bank")
    (template,) = bank.sets["marking_spot"][0].templates
    assert template.shape[0] <= 8 + 2 * 3 and template.shape[1] <= 52 + 2 * 3
    # the difference is the ink minus the inpainted skin: strongly negative in green
    assert template.pixels[:, :, 1].min() < -60
    with pytest.raises(UserError, match="does not match the image size"):
        _png(tmp_path / "small.png", artefact[:10])
        extract_template(
            tmp_path / "bank",
            "marking_spot",
            image_path=tmp_path / "img.png",
            artefact_mask_path=tmp_path / "small.png",
        )


def test_gallery_png_has_a_row_per_kind(tmp_path):
    from generator.artefacts.gallery import demo_image, write_gallery

    bank = TemplateBank.builtin(0)
    path = write_gallery([("builtin", bank)], tmp_path / "g.png")
    with Image.open(path) as img:
        assert img.width > 600 and img.height > len(KINDS) * 100
    image, mask = demo_image(0)
    assert image.shape == (450, 600, 3) and mask.shape == (450, 600) and 0.03 < mask.mean() < 0.4
