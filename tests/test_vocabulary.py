"""Bissoto et al.'s full artefact vocabulary (hair, dark_corner, gel_border, patches), opt-in families,
and the dataset cards (Hugging Face README front matter, MLCommons Croissant)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers.variants import make_source

from generator.artefacts import insert_artefact, realize, realize_random, render
from generator.artefacts.kinds import DEFAULT_FAMILIES, FAMILIES, KINDS, family_kinds
from generator.artefacts.templates import TemplateBank
from generator.cli import main
from generator.distribution.cards import CARD_NAME, CROISSANT_NAME
from generator.variants import ALL_TEST, CLEAN_TEST
from generator.variants.build import generate
from generator.variants.labels import BISSOTO_ARTEFACT_COLUMNS
from generator.variants.manifest import MANIFEST_NAME, verify_dir
from generator.variants.store import VariantReader

NEW_KINDS = tuple(k for k in KINDS if k not in family_kinds(DEFAULT_FAMILIES))  # beyond the paper
HEIGHT, WIDTH = 240, 320


@pytest.fixture(scope="module")
def bank() -> TemplateBank:
    return TemplateBank.builtin(0)


def central_lesion(height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return ((((y - height / 2) / (height * 0.25)) ** 2 + ((x - width / 2) / (width * 0.22)) ** 2) < 1).astype(
        np.uint8
    )


# --- registry and templates -----------------------------------------------------------------------


def test_every_bissoto_column_has_a_kind_and_every_kind_builtin_templates(bank):
    assert {spec.bissoto_column for spec in KINDS.values()} == set(BISSOTO_ARTEFACT_COLUMNS)
    assert set(bank.kinds()) == set(KINDS)
    for kind in NEW_KINDS:
        assert KINDS[kind].family == kind and FAMILIES[kind] == (kind,)


def test_paper_families_of_the_builtin_bank_keep_their_fingerprint(bank):
    paper = bank.for_families(DEFAULT_FAMILIES)
    assert set(paper.kinds()) == {k for f in DEFAULT_FAMILIES for k in FAMILIES[f]}
    golden = json.loads((Path(__file__).resolve().parents[1] / "data_manifest.json").read_text())
    assert golden["templates"] == f"builtin@{paper.fingerprint}"
    assert paper.fingerprint != bank.fingerprint


@pytest.mark.parametrize("kind", NEW_KINDS)
def test_new_kinds_are_deterministic_and_replay_byte_identically(bank, kind):
    image = np.random.default_rng(1).integers(60, 200, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    mask = central_lesion()
    other = TemplateBank.builtin(0)
    for seed in range(4):
        out, artefact_mask, record = insert_artefact(image, mask, kind, bank, seed)
        assert artefact_mask.any() and record["kind"] == kind
        replayed, replayed_mask = render(image, json.loads(json.dumps(record)), other)
        assert np.array_equal(replayed, out) and np.array_equal(replayed_mask, artefact_mask)
        assert np.array_equal(np.any(out != image, axis=2), artefact_mask)


def _coverage(bank, kind: str, seeds=range(60)) -> tuple[np.ndarray, list]:
    image = np.full((HEIGHT, WIDTH, 3), 128, np.uint8)
    total = np.zeros((HEIGHT, WIDTH))
    records = []
    for seed in seeds:
        _, artefact_mask, record = insert_artefact(image, central_lesion(), kind, bank, seed)
        total += artefact_mask
        records.append(record)
    return total / len(seeds), records


def test_hair_lies_anywhere_including_over_the_lesion(bank):
    coverage, records = _coverage(bank, "hair")
    lesion = central_lesion().astype(bool)
    centres = np.array([inst["centre"] for r in records for inst in r["instances"]])
    # uniform placement: the share of strand centres on the lesion is close to the lesion's area share
    on_lesion = lesion[centres[:, 0], centres[:, 1]].mean()
    assert 0.5 * lesion.mean() < on_lesion < 1.6 * lesion.mean(), (on_lesion, lesion.mean())
    # and every quadrant of the image gets hair
    for rows in (slice(0, HEIGHT // 2), slice(HEIGHT // 2, None)):
        for cols in (slice(0, WIDTH // 2), slice(WIDTH // 2, None)):
            assert coverage[rows, cols].mean() > 0.01
    assert np.mean([len(r["instances"]) for r in records]) >= 3  # several strands per image


def test_dark_corners_are_centred_and_darken_the_corners_not_the_centre(bank):
    image = np.full((HEIGHT, WIDTH, 3), 180, np.uint8)
    for seed in range(20):
        out, artefact_mask, record = insert_artefact(image, central_lesion(), "dark_corner", bank, seed)
        assert [inst["centre"] for inst in record["instances"]] == [[HEIGHT // 2, WIDTH // 2]]
        for corner in ((0, 0), (0, -1), (-1, 0), (-1, -1)):
            assert out[corner].max() < 60, (seed, corner, out[corner])
        assert not artefact_mask[HEIGHT // 4 : 3 * HEIGHT // 4, WIDTH // 4 : 3 * WIDTH // 4].any()
        # centred (up to the lens's small offset): the halves of the image are darkened about alike
        left, right = int(artefact_mask[:, : WIDTH // 2].sum()), int(artefact_mask[:, WIDTH // 2 :].sum())
        top, bottom = int(artefact_mask[: HEIGHT // 2].sum()), int(artefact_mask[HEIGHT // 2 :].sum())
        assert 0.6 < left / right < 1.6 and 0.6 < top / bottom < 1.6, (seed, left, right, top, bottom)


def test_gel_borders_touch_one_image_edge_and_brighten(bank):
    image = np.full((HEIGHT, WIDTH, 3), 120, np.uint8)
    sides = set()
    for seed in range(40):
        out, artefact_mask, record = insert_artefact(image, central_lesion(), "gel_border", bank, seed)
        edges = {
            "top": artefact_mask[0].any(),
            "bottom": artefact_mask[-1].any(),
            "left": artefact_mask[:, 0].any(),
            "right": artefact_mask[:, -1].any(),
        }
        touching = [side for side, hit in edges.items() if hit]
        assert touching, seed
        sides.update(touching)
        rows, cols = np.nonzero(artefact_mask)
        depth = np.minimum.reduce([rows, HEIGHT - 1 - rows, cols, WIDTH - 1 - cols])
        assert np.median(depth) < 0.2 * HEIGHT  # a rim, not a blob inside the image
        assert out[artefact_mask].astype(int).mean() > 120  # mostly brighter than the skin
    assert sides == {"top", "bottom", "left", "right"}


def test_patches_sit_in_the_periphery_off_the_lesion(bank):
    coverage, records = _coverage(bank, "patches", range(80))
    lesion = central_lesion().astype(bool)
    assert coverage.sum() > 0
    assert (coverage * lesion).sum() / coverage.sum() < 0.25 * lesion.mean()
    centres = np.array([inst["centre"] for r in records for inst in r["instances"]])
    # periphery: most centres in the outer band of the image
    outer = (
        (centres[:, 0] < HEIGHT * 0.25)
        | (centres[:, 0] > HEIGHT * 0.75)
        | (centres[:, 1] < WIDTH * 0.25)
        | (centres[:, 1] > WIDTH * 0.75)
    )
    assert outer.mean() > 0.7


def test_new_kinds_can_be_extracted_from_a_with_without_pair(bank, tmp_path):
    from generator.artefacts.extract import extract_template
    from generator.images import save_png

    image = np.random.default_rng(2).integers(90, 200, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    for kind in NEW_KINDS:
        with_image, _, _ = insert_artefact(image, central_lesion(), kind, bank, 5)
        save_png(tmp_path / f"{kind}_with.png", with_image)
        save_png(tmp_path / f"{kind}_without.png", image)
        entry = extract_template(
            tmp_path / "bank",
            kind,
            with_path=tmp_path / f"{kind}_with.png",
            without_path=tmp_path / f"{kind}_without.png",
            name=f"mine_{kind}",
        )
        assert entry["class"] == KINDS[kind].meta_class
    extracted = TemplateBank.load(str(tmp_path / "bank"))
    assert extracted.kinds() == [k for k in KINDS if k in NEW_KINDS]
    for kind in NEW_KINDS:
        out, artefact_mask, _ = insert_artefact(image, central_lesion(), kind, extracted, 3)
        assert artefact_mask.any()


def test_families_restrict_what_random_insertion_draws(bank):
    sub = bank.for_families(("hair", "patches"))
    kinds = {realize_random(sub, (HEIGHT, WIDTH), None, seed)["kind"] for seed in range(30)}
    assert kinds == {"hair", "patches"}
    record = realize("hair", sub, (HEIGHT, WIDTH), None, 0)
    assert record["families"] == ["hair", "patches"] and record["bank"] == sub.fingerprint
    # the whole bank replays a record drawn from a part of it
    image = np.full((HEIGHT, WIDTH, 3), 150, np.uint8)
    assert np.array_equal(render(image, record, sub)[0], render(image, record, bank)[0])


# --- an all-families build ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def all_families(tmp_path_factory):
    source = make_source(tmp_path_factory.mktemp("src"))
    out = tmp_path_factory.mktemp("all") / "data"
    manifest = generate(
        source,
        out,
        seed=4,
        workers=1,
        progress=False,
        families=list(FAMILIES),
        variants=["train_all", CLEAN_TEST, ALL_TEST, "test_40"],
    )
    return out, manifest


def test_all_families_build_verifies_and_records_its_families(all_families):
    out, manifest = all_families
    assert verify_dir(out) == []
    assert manifest["families"] == list(FAMILIES)
    kinds_seen = set()
    for entry in manifest["files"]:
        assert set(entry["artefact_counts"]) == set(KINDS)
        with VariantReader(out / entry["name"]) as reader:
            assert reader.attrs["families"] == list(FAMILIES)
            kinds_seen.update(k for k in reader.artefact_kinds if k)
    assert len(kinds_seen) >= 7  # a family is drawn per row: all seven show up in train_all + test_all
    card = (out / CARD_NAME).read_text()
    assert all(family in card for family in FAMILIES)


def test_bissoto_csv_of_an_all_families_build_matches_the_stored_masks(all_families):
    out, manifest = all_families
    columns_hit = set()
    for entry in manifest["files"]:
        frame = pd.read_csv(out / "labels" / f"{entry['variant']}_bissoto.csv", sep=";", dtype={"image": str})
        with VariantReader(out / entry["name"]) as reader:
            assert list(frame["image"]) == list(reader.image_ids)
            for i in range(len(reader)):
                kind = reader.artefact_kinds[i]
                flags = frame.loc[i, list(BISSOTO_ARTEFACT_COLUMNS)]
                mask_has_pixels = bool(reader.artefact_mask(i).any())
                # exactly one column set, the kind's, exactly where the stored mask is non-empty
                assert int(flags.sum()) == int(mask_has_pixels) == int(bool(reader.has_artefact[i]))
                if kind:
                    assert flags[KINDS[kind].bissoto_column] == 1
                    columns_hit.add(KINDS[kind].bissoto_column)
    assert columns_hit == set(BISSOTO_ARTEFACT_COLUMNS)


def test_default_build_records_no_families_and_counts_only_the_paper_kinds(tmp_path):
    source = make_source(tmp_path / "src", train_per_class=(1,) * 7, test_per_class=(1,) * 7)
    manifest = generate(source, tmp_path / "out", seed=0, progress=False, variants=[ALL_TEST])
    assert "families" not in manifest
    assert set(manifest["files"][0]["artefact_counts"]) == {k for f in DEFAULT_FAMILIES for k in FAMILIES[f]}
    with VariantReader(tmp_path / "out" / f"{ALL_TEST}.h5") as reader:
        assert "families" not in reader.attrs


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--families", "hairs"], "--families"),
        (["--kinds", "beard"], "--kinds"),
        (["--families", "hair", "--kinds", "bubble"], "--families"),
    ],
)
def test_bad_families_exit_2_without_outputs(tmp_path, capsys, args, needle):
    source = make_source(tmp_path / "src", train_per_class=(1,) * 7, test_per_class=(1,) * 7)
    out = tmp_path / "out"
    code = main(["generate", "--source", str(source), "--out", str(out), "--quiet", *args])
    err = capsys.readouterr().err.strip()
    assert code == 2 and needle in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_kinds_bring_in_their_families_in_registry_order():
    from generator.artefacts.kinds import resolve_families

    assert resolve_families() == DEFAULT_FAMILIES == ("bubble", "ruler", "marking")
    assert resolve_families(kinds=["patches", "ruler_vertical"]) == ("ruler", "patches")
    assert resolve_families(families=["hair", "bubble", "hair"]) == ("bubble", "hair")


def test_a_template_folder_without_the_chosen_family_exits_2(tmp_path, capsys, bank):
    from generator.artefacts.extract import extract_template
    from generator.images import save_png

    image = np.full((HEIGHT, WIDTH, 3), 150, np.uint8)
    save_png(tmp_path / "with.png", insert_artefact(image, None, "hair", bank, 0)[0])
    save_png(tmp_path / "without.png", image)
    extract_template(
        tmp_path / "bank", "hair", with_path=tmp_path / "with.png", without_path=tmp_path / "without.png"
    )
    source = make_source(tmp_path / "src", train_per_class=(1,) * 7, test_per_class=(1,) * 7)
    out = tmp_path / "out"
    code = main(
        [
            "generate",
            "--source",
            str(source),
            "--out",
            str(out),
            "--quiet",
            "--templates",
            str(tmp_path / "bank"),
            "--families",
            "hair",
            "bubble",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--families" in err and "'bubble'" in err and len(err.splitlines()) == 1
    assert not out.exists()
    # by default the families of the paper that a folder has are drawn from; here there are none
    code = main(
        [
            "generate",
            "--source",
            str(source),
            "--out",
            str(out),
            "--quiet",
            "--templates",
            str(tmp_path / "bank"),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and "no templates" in err and len(err.splitlines()) == 1


# --- dataset cards -------------------------------------------------------------------------------------


def _front_matter(card: str) -> dict:
    import yaml

    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def test_generate_writes_a_hugging_face_card_and_croissant(all_families):
    out, manifest = all_families
    meta = _front_matter((out / CARD_NAME).read_text())
    assert meta["license"] == "cc0-1.0"  # synthetic images with builtin templates: what the manifest records
    assert manifest["licence"].endswith("CC0-1.0")
    assert meta["task_categories"] == ["image-classification"]
    assert meta["size_categories"] == ["n<1K"]
    assert "synthetic" in meta["tags"]
    assert [c["config_name"] for c in meta["configs"]] == [e["variant"] for e in manifest["files"]]
    assert [c["data_files"][0]["path"] for c in meta["configs"]] == [e["name"] for e in manifest["files"]]
    assert "## Citation" in (out / CARD_NAME).read_text()
    crate = json.loads((out / CROISSANT_NAME).read_text())
    files = {d["name"]: d for d in crate["distribution"]}
    assert {name: d["sha256"] for name, d in files.items()} == {
        e["name"]: e["sha256"] for e in manifest["files"]
    }
    assert all(
        d["encodingFormat"] == "application/x-hdf5" and d["contentUrl"] == name for name, d in files.items()
    )


def test_attributions_name_the_families_a_build_inserted(all_families, tmp_path):
    """The HAM10000 attribution's "Changes:" clause lists the families of the build (card and `info`),
    the paper's three when the manifest names none; every family has a name for running text."""
    from generator.artefacts.kinds import FAMILY_NOUNS
    from generator.distribution.cards import datacard
    from generator.distribution.info import info_from_manifest

    assert set(FAMILY_NOUNS) == set(FAMILIES)
    out, manifest = all_families
    card = (out / CARD_NAME).read_text()
    images_line = next(line for line in card.splitlines() if line.startswith("- **Images**:"))
    changes = images_line.split("Changes: artefacts (", 1)[1].split(")", 1)[0]
    assert changes == ", ".join(FAMILY_NOUNS[f] for f in FAMILIES)
    assert changes in info_from_manifest(manifest)["train_all"]["attribution"]

    paper = {k: v for k, v in manifest.items() if k != "families"}
    assert "artefacts (bubbles, rulers, ink markings) inserted" in datacard(paper)
    assert (
        "artefacts (bubbles, rulers, ink markings) inserted"
        in info_from_manifest(paper)[ALL_TEST]["attribution"]
    )
    hair_only = {**paper, "families": ["hair"]}
    assert "artefacts (hair) inserted" in datacard(hair_only)
    assert "rulers" not in info_from_manifest(hair_only)[ALL_TEST]["attribution"]


def test_croissant_validates_with_mlcroissant_offline_and_a_broken_one_fails(all_families, tmp_path):
    mlc = pytest.importorskip("mlcroissant", reason="mlcroissant is a dev dependency")
    out, manifest = all_families
    dataset = mlc.Dataset(jsonld=out / CROISSANT_NAME)
    record_sets = {rs.name: rs for rs in dataset.metadata.record_sets}
    assert set(record_sets) == {e["variant"] for e in manifest["files"]}
    fields = {f.name for f in record_sets[ALL_TEST].fields}
    assert {"image", "label", "lesion_mask", "artefact_mask", "artefact_kind", "record"} <= fields
    broken = json.loads((out / CROISSANT_NAME).read_text())
    del broken["distribution"][0]["sha256"]
    broken["distribution"][1]["encodingFormat"] = None
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    with pytest.raises(mlc.ValidationError):
        mlc.Dataset(jsonld=path)


def test_publish_card_licence_follows_the_manifest(all_families, tmp_path):
    from generator.distribution.cards import croissant, front_matter
    from generator.distribution.info import HAM10000_LICENCE_URL
    from generator.distribution.publish import publish

    out, manifest = all_families
    published = publish(out, tmp_path / "up", base_url="https://example.org/data", progress=False)
    meta = _front_matter((published / CARD_NAME).read_text())
    assert meta["license"] == "cc0-1.0"
    crate = json.loads((published / CROISSANT_NAME).read_text())
    assert (
        crate["distribution"][0]["contentUrl"] == "https://example.org/data/" + manifest["files"][0]["name"]
    )
    real = dict(manifest, synthetic=False, licence="Images derived from HAM10000 ...; CC BY-NC-SA 4.0")
    assert "license: cc-by-nc-sa-4.0" in front_matter(real)
    assert croissant(real)["license"] == HAM10000_LICENCE_URL
    assert "synthetic" not in _front_matter(front_matter(real) + "\n")["tags"]


@pytest.mark.parametrize("base_url", [None, "https://example.org/ham/"])
def test_results_site_datasets_page_links_the_card_and_croissant(tmp_path, base_url):
    pytest.importorskip("yaml", reason="the site extra")
    from helpers import site as fx

    from generator.distribution.cards import write_cards
    from training.export.site import build_site, export_site

    results = fx.write_results(tmp_path / "results", gradcam=False)
    data = fx.write_data(tmp_path / "data", base_url=base_url)
    write_cards(data, json.loads((data / MANIFEST_NAME).read_text()))
    project = fx.make_site_project(tmp_path / "project")
    export_site(results, data, project / "site", progress=False)
    page = (project / "site" / "datasets.md").read_text()
    if base_url:
        assert (
            "(https://example.org/ham/README.md)" in page
            and "(https://example.org/ham/croissant.json)" in page
        )
    else:
        shipped = project / "site" / "generated" / "data"
        assert "(generated/data/README.md.txt)" in page and "(generated/data/croissant.json)" in page
        assert (shipped / CROISSANT_NAME).read_bytes() == (data / CROISSANT_NAME).read_bytes()
        assert (shipped / "README.md.txt").read_text().startswith("---\nlicense: ")
        # a strict MkDocs build accepts the links (and does not turn the card into a page)
        build_site(project / "mkdocs.yml")
        built = project / "build" / "site" / "generated" / "data"
        assert (built / "README.md.txt").is_file() and (built / CROISSANT_NAME).is_file()
