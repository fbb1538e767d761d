"""The `insert` and `templates` commands, called in-process through generator.cli.main."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from generator.artefacts import render
from generator.artefacts.kinds import KINDS
from generator.artefacts.templates import TemplateBank
from generator.cli import main

REPO = Path(__file__).resolve().parents[1]
REAL_TEMPLATES = REPO.parent / "shared" / "artefact-templates"


@pytest.fixture()
def inputs(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(80, 220, (120, 160, 3), dtype=np.uint8)
    mask = np.zeros((120, 160), np.uint8)
    mask[40:80, 60:100] = 255
    Image.fromarray(image).save(tmp_path / "img.png")
    Image.fromarray(mask).save(tmp_path / "mask.png")
    Image.fromarray(mask[:60]).save(tmp_path / "small_mask.png")
    return tmp_path, image, mask


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err, err
    assert "Traceback" not in err
    return err


def test_insert_writes_image_mask_and_replayable_record(inputs, capsys):
    tmp, image, mask = inputs
    args = [
        "insert",
        "--image",
        str(tmp / "img.png"),
        "--mask",
        str(tmp / "mask.png"),
        "--kind",
        "bubble",
        "--seed",
        "3",
        "--out",
        str(tmp / "out.png"),
        "--artefact-mask-out",
        str(tmp / "a.png"),
        "--record-out",
        str(tmp / "r.json"),
    ]
    assert main(args) == 0
    out = np.asarray(Image.open(tmp / "out.png"))
    artefact = np.asarray(Image.open(tmp / "a.png")) > 0
    record = json.loads((tmp / "r.json").read_text())
    assert np.array_equal(artefact, np.any(out != image, axis=2)) and artefact.any()
    replayed, _ = render(image, record, TemplateBank.load("builtin"))
    assert replayed.tobytes() == out.tobytes()
    # same command again: byte-identical file
    first = (tmp / "out.png").read_bytes()
    assert main(args) == 0
    assert (tmp / "out.png").read_bytes() == first


def test_insert_without_mask_and_from_grayscale(inputs):
    tmp, image, _ = inputs
    Image.fromarray(image[:, :, 0]).save(tmp / "gray.png")
    assert (
        main(
            [
                "insert",
                "--image",
                str(tmp / "gray.png"),
                "--kind",
                "marking_circle",
                "--seed",
                "1",
                "--out",
                str(tmp / "o.png"),
            ]
        )
        == 0
    )
    assert np.asarray(Image.open(tmp / "o.png")).shape == (120, 160, 3)


def test_missing_image_or_mask_file_exits_2(inputs, capsys):
    tmp, _, _ = inputs
    assert (
        main(["insert", "--image", str(tmp / "nope.png"), "--kind", "bubble", "--out", str(tmp / "o.png")])
        == 2
    )
    assert "nope.png" in _one_line_error(capsys)
    assert (
        main(
            [
                "insert",
                "--image",
                str(tmp / "img.png"),
                "--mask",
                str(tmp / "nomask.png"),
                "--kind",
                "bubble",
                "--out",
                str(tmp / "o.png"),
            ]
        )
        == 2
    )
    assert "nomask.png" in _one_line_error(capsys)
    (tmp / "broken.png").write_bytes(b"not a png")
    assert (
        main(["insert", "--image", str(tmp / "broken.png"), "--kind", "bubble", "--out", str(tmp / "o.png")])
        == 2
    )
    assert "broken.png" in _one_line_error(capsys)
    assert not (tmp / "o.png").exists()


def test_bad_kind_exits_2_listing_valid_kinds(inputs, capsys):
    tmp, _, _ = inputs
    assert (
        main(["insert", "--image", str(tmp / "img.png"), "--kind", "beard", "--out", str(tmp / "o.png")]) == 2
    )
    err = _one_line_error(capsys)
    assert "beard" in err and all(kind in err for kind in KINDS)


def test_mask_of_wrong_size_exits_2(inputs, capsys):
    tmp, _, _ = inputs
    assert (
        main(
            [
                "insert",
                "--image",
                str(tmp / "img.png"),
                "--mask",
                str(tmp / "small_mask.png"),
                "--kind",
                "bubble",
                "--out",
                str(tmp / "o.png"),
            ]
        )
        == 2
    )
    err = _one_line_error(capsys)
    assert "small_mask.png" in err and "160x60" in err and "160x120" in err
    assert not (tmp / "o.png").exists()


def test_bad_templates_dir_exits_2(inputs, capsys):
    tmp, _, _ = inputs
    assert (
        main(
            [
                "insert",
                "--image",
                str(tmp / "img.png"),
                "--kind",
                "bubble",
                "--templates",
                str(tmp / "none"),
                "--out",
                str(tmp / "o.png"),
            ]
        )
        == 2
    )
    assert "none" in _one_line_error(capsys)
    assert main(["templates", "list", "--templates", str(tmp)]) == 2
    assert "meta.json" in _one_line_error(capsys)


def test_templates_list_prints_counts_per_kind(capsys):
    assert main(["templates", "list"]) == 0
    out = capsys.readouterr().out
    counts = TemplateBank.builtin(0).counts()
    for kind, count in counts.items():
        assert any(line.split()[:2] == [kind, str(count)] for line in out.splitlines()), kind


@pytest.mark.skipif(not (REAL_TEMPLATES / "meta.json").is_file(), reason="real templates not available")
def test_templates_list_real_bank(capsys):
    assert main(["templates", "list", "--templates", str(REAL_TEMPLATES)]) == 0
    out = capsys.readouterr().out
    assert any(line.split()[:2] == ["bubble", "11"] for line in out.splitlines())
    assert any(line.split()[:2] == ["total", "51"] for line in out.splitlines())


def test_templates_gallery_and_extract(inputs, capsys):
    tmp, image, _ = inputs
    assert main(["templates", "gallery", "--out", str(tmp / "g.png")]) == 0
    assert Image.open(tmp / "g.png").width > 600
    altered = image.copy()
    altered[10:20, 10:30] = 255
    Image.fromarray(altered).save(tmp / "with.png")
    assert (
        main(
            [
                "templates",
                "extract",
                "--kind",
                "bubble",
                "--out",
                str(tmp / "bank"),
                "--with",
                str(tmp / "with.png"),
                "--without",
                str(tmp / "img.png"),
            ]
        )
        == 0
    )
    assert TemplateBank.load(str(tmp / "bank")).counts()["bubble"] == 1
    assert (
        main(
            [
                "templates",
                "extract",
                "--kind",
                "bubble",
                "--out",
                str(tmp / "bank"),
                "--with",
                str(tmp / "with.png"),
            ]
        )
        == 2
    )
    _one_line_error(capsys)


def test_templates_examples_writes_one_side_by_side_per_kind(tmp_path, capsys):
    assert main(["templates", "examples", "--out", str(tmp_path)]) == 0
    demo = np.asarray(Image.open(tmp_path / "demo.png"))
    for kind in KINDS:
        pair = np.asarray(Image.open(tmp_path / f"{kind}.png"))
        assert pair.shape == (demo.shape[0], 2 * demo.shape[1] + 8, 3)
        assert np.array_equal(pair[:, : demo.shape[1]], demo)
        assert np.any(pair[:, demo.shape[1] + 8 :] != demo)
    assert (
        main(
            [
                "insert",
                "--image",
                str(tmp_path / "demo.png"),
                "--mask",
                str(tmp_path / "demo_mask.png"),
                "--kind",
                "ruler_horizontal",
                "--out",
                str(tmp_path / "o.png"),
            ]
        )
        == 0
    )
