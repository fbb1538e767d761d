"""Distribution: Bissoto-format labels, the INFO registry and its CLI, publish, the HAMArtefacts dataset."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pandas as pd
import pytest
from helpers.distribution import build_dataset, cli_main, serve

from generator import CLASSES
from generator.distribution.cards import CARD_NAME
from generator.distribution.fetch import fetch
from generator.distribution.info import bare_info, build_info, variant_info
from generator.distribution.publish import publish
from generator.errors import UserError
from generator.variants import ALL_TEST, CLEAN_TEST, CLEAN_TRAIN
from generator.variants.labels import ARTEFACT_COLUMNS, BISSOTO_COLUMNS, bissoto_column, write_label_csvs
from generator.variants.manifest import MANIFEST_NAME, sha256_file
from generator.variants.store import VariantReader

BISSOTO_HEADER = "image;dark_corner;hair;gel_border;gel_bubble;ruler;ink;patches;label;label_string"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    build_dataset(root)
    return root


# --- labels ----------------------------------------------------------------------------------


def test_bissoto_csv_round_trips_through_pandas(data_dir, tmp_path):
    written = write_label_csvs(data_dir, progress=False)
    manifest = json.loads((data_dir / MANIFEST_NAME).read_text())
    assert sorted(p.name for p in written) == sorted(
        f"{f['variant']}_{s}.csv" for f in manifest["files"] for s in ("bissoto", "artefacts")
    )
    for f in manifest["files"]:
        path = data_dir / "labels" / f"{f['variant']}_bissoto.csv"
        assert path.read_text().splitlines()[0] == BISSOTO_HEADER
        frame = pd.read_csv(path, sep=";")
        assert tuple(frame.columns) == BISSOTO_COLUMNS
        assert len(frame) == f["rows"]
        flags = frame[list(BISSOTO_COLUMNS[1:8])]
        assert set(np.unique(flags.to_numpy())) <= {0, 1}
        counts = f["artefact_counts"]
        assert frame["gel_bubble"].sum() == counts.get("bubble", 0)
        assert frame["ruler"].sum() == sum(v for k, v in counts.items() if k.startswith("ruler"))
        assert frame["ink"].sum() == sum(v for k, v in counts.items() if k.startswith("marking"))
        for never in ("dark_corner", "hair", "gel_border", "patches"):
            assert frame[never].sum() == 0
        assert flags.sum(axis=1).sum() == f["n_artefact"]  # one artefact per image at most
        with VariantReader(data_dir / f["name"]) as reader:
            assert list(frame["image"]) == reader.image_ids
            assert list(frame["label"]) == list(reader.labels)
            assert list(frame["label_string"]) == [CLASSES[y] for y in reader.labels]
            assert list(flags.sum(axis=1)) == [int(h) for h in reader.has_artefact]
        assert {c: int((frame["label_string"] == c).sum()) for c in CLASSES} == f["class_counts"]


def test_rich_artefact_csv_has_kind_template_and_placement(data_dir):
    write_label_csvs(data_dir, variants=["test_40"], progress=False)
    frame = pd.read_csv(data_dir / "labels" / "test_40_artefacts.csv", keep_default_na=False)
    assert tuple(frame.columns) == ARTEFACT_COLUMNS
    with VariantReader(data_dir / "test_40.h5") as reader:
        assert list(frame["has_artefact"]) == [int(h) for h in reader.has_artefact]
        assert list(frame["lesion_id"]) == reader.lesion_ids
        for i, row in frame.iterrows():
            if row["has_artefact"]:
                record = reader.record(i)
                assert row["kind"] == record["kind"] == reader.artefact_kinds[i]
                instances = record["instances"]
                assert row["template_set"] == record["template_set"] and row["n_instances"] == len(instances)
                assert row["template"].split("|") == [inst["template"] for inst in instances]
                assert json.loads(row["position"]) == [inst["centre"] for inst in instances]
                assert [t["angle"] for t in json.loads(row["transform"])] == [
                    inst["angle"] for inst in instances
                ]
                assert json.loads(row["record"]) == record
                assert row["bissoto_column"] == bissoto_column(row["kind"])
            else:
                assert row["kind"] == row["template"] == row["record"] == "" and row["n_instances"] == 0


def test_bissoto_kind_mapping():
    assert [
        bissoto_column(k)
        for k in ("bubble", "ruler_horizontal", "ruler_vertical", "marking_circle", "marking_spot", "")
    ] == ["gel_bubble", "ruler", "ruler", "ink", "ink", ""]
    assert [bissoto_column(k) for k in ("hair", "dark_corner", "gel_border", "patches")] == [
        "hair",
        "dark_corner",
        "gel_border",
        "patches",
    ]
    # every Bissoto artefact column is reachable from some registered kind
    from generator.artefacts.kinds import KINDS
    from generator.variants.labels import BISSOTO_ARTEFACT_COLUMNS

    assert {spec.bissoto_column for spec in KINDS.values()} == set(BISSOTO_ARTEFACT_COLUMNS)
    with pytest.raises(ValueError):
        bissoto_column("hairs")


# --- INFO registry and its CLI ----------------------------------------------------------------


def test_info_registry_without_and_with_manifest(data_dir):
    bare = bare_info()
    assert len(bare) == 22 and list(bare)[:2] == [CLEAN_TRAIN, "train_all"]
    for entry in bare.values():
        assert entry["classes"] == list(CLASSES)
        assert "CC BY-NC-SA 4.0" in entry["attribution"] and "HAM10000" in entry["citation"]
        assert "sha256" not in entry
    manifest = json.loads((data_dir / MANIFEST_NAME).read_text())
    info = build_info(data_dir)
    for f in manifest["files"]:
        entry = info[f["variant"]]
        assert (entry["rows"], entry["sha256"], entry["class_counts"]) == (
            f["rows"],
            f["sha256"],
            f["class_counts"],
        )
        assert entry["artefact_counts"] == f["artefact_counts"]
    with pytest.raises(UserError, match="no_such"):
        variant_info("no_such", data_dir)


def test_list_and_info_cli(data_dir, capsys):
    assert cli_main(["list", "--manifest", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert len(out.strip().splitlines()) == 1 + 22 and "test_40" in out
    assert cli_main(["info", ALL_TEST, "--manifest", str(data_dir / MANIFEST_NAME), "--json"]) == 0
    entry = json.loads(capsys.readouterr().out)
    assert entry["sha256"] == sha256_file(data_dir / f"{ALL_TEST}.h5") and entry["rows"] == 11
    assert cli_main(["info", ALL_TEST, "--manifest", str(data_dir)]) == 0
    text = capsys.readouterr().out
    assert "CC BY-NC-SA 4.0" in text and entry["sha256"] in text


# --- publish ---------------------------------------------------------------------------------


def test_publish_then_fetch_from_the_upload_folder(data_dir, tmp_path):
    out = tmp_path / "upload"
    assert (
        cli_main(
            [
                "publish",
                "--data",
                str(data_dir),
                "--out",
                str(out),
                "--base-url",
                "https://example.org/ham",
                "--no-progress",
            ]
        )
        == 0
    )
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["base_url"] == "https://example.org/ham/"
    for f in manifest["files"]:
        assert sha256_file(out / f["name"]) == f["sha256"]
        if os.stat(out / f["name"]).st_ino == os.stat(data_dir / f["name"]).st_ino:
            assert os.stat(out / f["name"]).st_nlink >= 2  # hard link, not a copy
        assert pd.read_csv(out / "labels" / f"{f['variant']}_bissoto.csv", sep=";").shape == (f["rows"], 10)
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~mask  # not mkdtemp's 0700
    assert stat.S_IMODE((out / CARD_NAME).stat().st_mode) == 0o666 & ~mask
    readme = (out / CARD_NAME).read_text()
    for needle in (
        "CC BY-NC-SA 4.0",
        "Tschandl",
        "Katsch",
        "doi:10.1038/sdata.2018.161",
        f"https://example.org/ham/{MANIFEST_NAME}",
        manifest["files"][0]["sha256"],
        "Synthetic",
    ):
        assert needle in readme
    assert not list(tmp_path.glob(".upload.*"))  # no temporary folder left behind
    # the upload folder is a working source: serve it and fetch with a base-url override
    with serve(out) as server:
        fetch(out / MANIFEST_NAME, tmp_path / "got", base_url=server.url, progress=False, backoff=0.01)
    for f in manifest["files"]:
        assert sha256_file(tmp_path / "got" / f["name"]) == f["sha256"]


def test_publish_refuses_bad_targets(data_dir, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep me")
    assert (
        cli_main(
            [
                "publish",
                "--data",
                str(data_dir),
                "--out",
                str(tmp_path / "full"),
                "--base-url",
                "https://example.org/",
            ]
        )
        == 2
    )
    assert (tmp_path / "full" / "x").read_text() == "keep me"
    assert (
        cli_main(
            [
                "publish",
                "--data",
                str(data_dir),
                "--out",
                str(tmp_path / "o"),
                "--base-url",
                "ftp://example.org/",
            ]
        )
        == 2
    )
    assert not (tmp_path / "o").exists()


def test_publish_rejects_a_file_that_no_longer_matches(tmp_path):
    data = tmp_path / "d"
    build_dataset(data, variants=((CLEAN_TEST, "test", 7, 0.0),))
    with open(data / f"{CLEAN_TEST}.h5", "r+b") as fh:
        fh.seek(-1, 2)
        last = fh.read(1)
        fh.seek(-1, 2)
        fh.write(bytes([last[0] ^ 1]))
    with pytest.raises(UserError, match="does not match"):
        publish(data, tmp_path / "o", "https://example.org/", progress=False)
    assert not (tmp_path / "o").exists() and not list(tmp_path.glob(".o.*"))


# --- the dataset class -----------------------------------------------------------------------


def test_dataset_download_fetches_then_loads(data_dir, tmp_path):
    import torch
    from PIL import Image

    from training.data.datasets import HAMArtefacts

    root = tmp_path / "ds"
    with pytest.raises(UserError, match="download=True"):
        HAMArtefacts(root, "test_40")
    with serve(data_dir) as server:
        url = server.url + "manifest.json"
        ds = HAMArtefacts(root, "test_40", download=True, manifest=url, progress=False)
        fetched = [p for p in server.paths() if p.endswith(".h5")]
        assert fetched == ["/files/test_40.h5"]
        again = HAMArtefacts(root, "test_40", download=True, manifest=url, progress=False)
        assert [p for p in server.paths() if p.endswith(".h5")] == fetched  # intact: not fetched twice
    assert sha256_file(root / "test_40.h5") == sha256_file(data_dir / "test_40.h5")
    assert len(ds) == len(again) == 10
    image, label = ds[3]
    with VariantReader(data_dir / "test_40.h5") as reader:
        assert image.dtype == torch.uint8 and np.array_equal(image.permute(1, 2, 0).numpy(), reader.image(3))
        assert label == reader.labels[3]
        n_art = int(reader.has_artefact.sum())
    assert ds[-1][1] == ds[9][1]
    with pytest.raises(IndexError):
        ds[10]
    assert sum(1 for _ in ds) == 10

    info = ds.info
    assert info["sha256"] == sha256_file(root / "test_40.h5")
    assert info["n_artefact"] == n_art and sum(info["class_counts"].values()) == 10
    assert info["classes"] == list(CLASSES) and "CC BY-NC-SA 4.0" in info["attribution"]
    assert info["citation"] == "test citation" and info["split"] == "test"
    assert "doi:10.1038/sdata.2018.161" in info["ham10000_citation"]

    grid = ds.montage(5, seed=1, size=20)
    assert isinstance(grid, Image.Image) and grid.size == (3 * 22 + 2, 2 * 22 + 2)
    assert np.array_equal(np.asarray(ds.montage(5, seed=1, size=20)), np.asarray(grid))
    assert not np.array_equal(np.asarray(ds.montage(5, seed=2, size=20)), np.asarray(grid))


def test_dataset_transforms_and_torch_loader(data_dir):
    import torch

    from training.data.datasets import HAMArtefacts

    ds = HAMArtefacts(
        data_dir,
        "train_none",
        target_types=("label", "meta"),
        transform=lambda image: image.permute(1, 2, 0).float(),
        target_transform=lambda target: (target[0] + 100, target[1]),
    )
    assert isinstance(ds, torch.utils.data.Dataset)
    images, (labels, meta) = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert images.shape == (4, 24, 32, 3) and labels.tolist() == [100, 101, 102, 103]
    assert meta["has_artefact"].tolist() == [False] * 4 and meta["index"].tolist() == [0, 1, 2, 3]


def test_real_engine_records_are_summarised():
    artefacts = pytest.importorskip("generator.artefacts")
    from generator.artefacts.templates import TemplateBank
    from generator.variants.labels import BISSOTO_ARTEFACT_COLUMNS, summarise_record

    bank = TemplateBank.load("builtin", seed=0)
    for seed in range(6):
        record = artefacts.realize_random(bank, (60, 80), None, seed)
        summary = summarise_record(record)
        assert summary["template"].split("|") == [inst["template"] for inst in record["instances"]]
        assert json.loads(summary["position"]) == [inst["centre"] for inst in record["instances"]]
        assert json.loads(summary["record"]) == record
        assert bissoto_column(record["kind"]) in BISSOTO_ARTEFACT_COLUMNS


def test_distribution_modules_import_light():
    import subprocess
    import sys

    code = (
        "import sys, generator.cli_distribution, generator.distribution.fetch, generator.distribution.info, generator.variants.labels, "
        "generator.distribution.publish; heavy = {'torch', 'h5py', 'pandas', 'numpy'} & set(sys.modules); "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_dataset_default_manifest_is_the_packaged_one(data_dir, tmp_path, monkeypatch):
    import generator.distribution.info
    from training.data.datasets import HAMArtefacts

    packaged = tmp_path / "pkg" / "data_manifest.json"
    packaged.parent.mkdir()
    manifest = json.loads((data_dir / "manifest.json").read_text())
    packaged.write_text(json.dumps(manifest))  # base_url null: nothing published yet
    monkeypatch.setattr(generator.distribution.info, "default_manifest_path", lambda: packaged)
    with pytest.raises(UserError, match="base_url"):
        HAMArtefacts(tmp_path / "a", "test_all", download=True)
    with serve(data_dir) as server:
        packaged.write_text(json.dumps(dict(manifest, base_url=server.url)))
        ds = HAMArtefacts(tmp_path / "b", "test_all", download=True, progress=False)
    assert len(ds) == 11 and ds.info["url"] == server.url + "test_all.h5"
    assert cli_main(["info", "test_all"]) == 0  # the CLI reads the same packaged manifest
