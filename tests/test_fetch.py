"""fetch: download over a real local HTTP server, resume, verification, hostile manifests, CLI."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from helpers.distribution import build_dataset, cli_main, serve
from hypothesis import given, settings
from hypothesis import strategies as st

from generator.distribution.cards import CARD_NAME, CROISSANT_NAME
from generator.distribution.fetch import (
    FetchError,
    check_plain_name,
    fetch,
    fetchable_entries,
    read_manifest,
    verify_files,
)
from generator.errors import UserError
from generator.variants import ALL_TEST, CLEAN_TRAIN
from generator.variants.manifest import MANIFEST_NAME, sha256_file

FAST = {"backoff": 0.01, "timeout": 10, "progress": False}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    manifest = build_dataset(root)
    return root, manifest


def _manifest_copy(dataset, tmp_path: Path, **changes) -> Path:
    root, manifest = dataset
    data = json.loads(json.dumps(manifest))
    data.update(changes)
    path = tmp_path / "m" / MANIFEST_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def test_full_download_verifies(dataset, tmp_path):
    root, manifest = dataset
    with serve(root) as server:
        m = _manifest_copy(dataset, tmp_path, base_url=server.url)
        outcomes = fetch(m, tmp_path / "out", workers=3, **FAST)
    assert sorted(o.status for o in outcomes) == ["downloaded"] * 3
    for entry in manifest["files"]:
        got = tmp_path / "out" / entry["name"]
        assert sha256_file(got) == entry["sha256"]
        assert got.read_bytes() == (root / entry["name"]).read_bytes()
    assert not list((tmp_path / "out").glob("*.part"))
    assert verify_files(tmp_path / "out") == []
    assert sorted(p.rsplit("/", 1)[-1] for p in server.paths()) == sorted(
        f["name"] for f in manifest["files"]
    )


def test_fetch_writes_the_dataset_cards_of_the_files_it_holds(dataset, tmp_path):
    """The card and Croissant are derived from the manifest, not downloaded: they list exactly the
    fetched variants, by relative path, with the manifest's licence."""
    from generator.distribution.cards import CARD_NAME, CROISSANT_NAME

    root, manifest = dataset
    chosen = manifest["files"][0]
    with serve(root) as server:
        m = _manifest_copy(dataset, tmp_path, base_url=server.url)
        fetch(m, tmp_path / "out", variants=[chosen["variant"]], **FAST)
        served = server.paths()
    assert not any(p.endswith((CARD_NAME, CROISSANT_NAME)) for p in served)
    card = (tmp_path / "out" / CARD_NAME).read_text()
    assert [line.strip() for line in card.splitlines() if line.strip().startswith("path:")] == [
        f'path: "{chosen["name"]}"'
    ]
    assert manifest["licence"] in card
    croissant = json.loads((tmp_path / "out" / CROISSANT_NAME).read_text())
    files = [d for d in croissant["distribution"] if d.get("@type") == "cr:FileObject"]
    assert [(d["contentUrl"], d["sha256"]) for d in files] == [(chosen["name"], chosen["sha256"])]


@pytest.mark.parametrize("name", [MANIFEST_NAME, CARD_NAME, CROISSANT_NAME])
def test_a_folder_where_fetch_writes_its_own_file_is_refused_before_any_download(
    dataset, tmp_path, capsys, name
):
    root, _ = dataset
    out = tmp_path / "out"
    (out / name).mkdir(parents=True)
    with serve(root) as server:
        m = _manifest_copy(dataset, tmp_path, base_url=server.url)
        assert cli_main(["fetch", "--manifest", str(m), "--out", str(out), "--no-progress"]) == 2
        assert server.requests == []
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(out / name) in err and "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == [name]  # nothing fetched, nothing half-written


def test_present_file_is_not_downloaded_again(dataset, tmp_path):
    root, manifest = dataset
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(root / f"{ALL_TEST}.h5", out / f"{ALL_TEST}.h5")
    with serve(root) as server:
        m = _manifest_copy(dataset, tmp_path, base_url=server.url)
        outcomes = fetch(m, out, variants=[ALL_TEST], **FAST)
    assert [o.status for o in outcomes] == ["present"]
    assert server.requests == []


def test_interrupted_download_resumes_with_range(dataset, tmp_path):
    root, manifest = dataset
    name = f"{CLEAN_TRAIN}.h5"
    size = (root / name).stat().st_size
    with serve(root) as server:
        server.cut_once.add(name)
        m = _manifest_copy(dataset, tmp_path, base_url=server.url)
        outcomes = fetch(m, tmp_path / "out", variants=[CLEAN_TRAIN], **FAST)
    assert [o.status for o in outcomes] == ["resumed"]
    ranges = server.range_requests(name)
    assert ranges == [f"bytes={size // 2}-"]  # resumed exactly where the cut left it
    assert sha256_file(tmp_path / "out" / name) == manifest["files"][0]["sha256"]


def test_resume_from_left_over_part_file(dataset, tmp_path):
    root, manifest = dataset
    name = "test_40.h5"
    out = tmp_path / "out"
    out.mkdir()
    data = (root / name).read_bytes()
    (out / (name + ".part")).write_bytes(data[:100])
    with serve(root) as server:
        m = _manifest_copy(dataset, tmp_path, base_url=server.url)
        fetch(m, out, variants=[name], **FAST)
    assert server.range_requests(name) == ["bytes=100-"]
    assert (out / name).read_bytes() == data


def test_server_ignoring_range_restarts_cleanly(dataset, tmp_path):
    root, _ = dataset
    name = "test_40.h5"
    out = tmp_path / "out"
    out.mkdir()
    data = (root / name).read_bytes()
    (out / (name + ".part")).write_bytes(b"x" * 50)  # garbage, replaced because the server sends 200
    with serve(root) as server:
        server.ignore_range = True
        m = _manifest_copy(dataset, tmp_path, base_url=server.url)
        fetch(m, out, variants=["test_40"], **FAST)
    assert (out / name).read_bytes() == data


def test_flipped_byte_is_rejected_and_deleted(dataset, tmp_path):
    root, _ = dataset
    name = f"{ALL_TEST}.h5"
    out = tmp_path / "out"
    with serve(root) as server:
        server.corrupt.add(name)
        m = _manifest_copy(dataset, tmp_path, base_url=server.url)
        with pytest.raises(FetchError, match="SHA-256 mismatch"):
            fetch(m, out, workers=2, **FAST)
        # the CLI face reports it as an error and exits 2
        assert (
            cli_main(
                [
                    "fetch",
                    "--manifest",
                    str(m),
                    "--out",
                    str(tmp_path / "out2"),
                    "--variants",
                    ALL_TEST,
                    "--no-progress",
                ]
            )
            == 2
        )
    assert not (out / name).exists()
    assert not (out / (name + ".part")).exists()
    assert not (tmp_path / "out2" / name).exists()
    # the healthy files still arrived and verify
    assert (out / f"{CLEAN_TRAIN}.h5").is_file() and (out / "test_40.h5").is_file()


HOSTILE_NAMES = [
    "../x",
    "/etc/x",
    "a/b",
    "..",
    ".",
    "a\\b",
    "x\x00.h5",
    "",
    ".hidden",
    "ok.h5.part",
    MANIFEST_NAME,
    "C:evil",
]


@pytest.mark.parametrize("bad_name", HOSTILE_NAMES)
def test_hostile_names_refused_before_any_request(dataset, tmp_path, bad_name):
    root, manifest = dataset
    with serve(root) as server:
        data = json.loads(json.dumps(manifest))
        data["files"][1]["name"] = bad_name
        data["base_url"] = server.url
        path = tmp_path / MANIFEST_NAME
        path.write_text(json.dumps(data))
        with pytest.raises(UserError, match=r"files\[1\]\.name"):
            fetch(path, tmp_path / "out", **FAST)
        assert server.requests == []
    assert not (tmp_path / "out").exists()
    assert not Path("/etc/x.part").exists()


@pytest.mark.parametrize(
    "field,value",
    [
        ("bytes", -1),
        ("bytes", "12"),
        ("bytes", 1.5),
        ("bytes", True),
        ("sha256", "ABC"),
        ("sha256", "G" * 64),
        ("sha256", "A" * 64),
        ("sha256", None),
    ],
)
def test_malformed_sizes_and_hashes_refused(dataset, field, value):
    _, manifest = dataset
    data = json.loads(json.dumps(manifest))
    data["files"][0][field] = value
    with pytest.raises(UserError, match=rf"files\[0\]\.{field}"):
        fetchable_entries(data)


def test_bad_base_url_and_format_refused(dataset):
    _, manifest = dataset
    for change, pattern in [
        ({"base_url": "ftp://x/"}, "base_url"),
        ({"format": "other/1"}, "format"),
        ({"files": {"a": 1}}, "files"),
    ]:
        data = dict(manifest, **change)
        with pytest.raises(UserError, match=pattern):
            fetchable_entries(data)


def test_local_folder_and_file_url_sources(dataset, tmp_path):
    root, manifest = dataset
    # manifest read from the folder itself: files come from beside it
    fetch(root, tmp_path / "a", variants=["test_40"], **FAST)
    assert sha256_file(tmp_path / "a" / "test_40.h5") == manifest["files"][2]["sha256"]
    # file:// manifest, file:// base URL override
    m = _manifest_copy(dataset, tmp_path, base_url="http://127.0.0.1:9/never-used/")
    fetch(m.as_uri(), tmp_path / "b", variants=[ALL_TEST], base_url=root.as_uri(), **FAST)
    assert (tmp_path / "b" / f"{ALL_TEST}.h5").read_bytes() == (root / f"{ALL_TEST}.h5").read_bytes()
    # the written manifest lists what the folder holds, so `verify` checks exactly the fetched files
    written, _ = read_manifest(tmp_path / "b")
    assert [f["name"] for f in written["files"]] == [f"{ALL_TEST}.h5"]
    fetch(m.as_uri(), tmp_path / "b", variants=["test_40"], base_url=root.as_uri(), **FAST)
    written, _ = read_manifest(tmp_path / "b")
    assert [f["name"] for f in written["files"]] == [f"{ALL_TEST}.h5", "test_40.h5"]


def test_base_url_override_wins_over_manifest(dataset, tmp_path):
    root, _ = dataset
    with serve(root) as server:
        m = _manifest_copy(dataset, tmp_path, base_url="http://127.0.0.1:9/wrong/")
        assert (
            cli_main(
                [
                    "fetch",
                    "--manifest",
                    str(m),
                    "--out",
                    str(tmp_path / "o"),
                    "--variants",
                    "test_40",
                    "--base-url",
                    server.url,
                    "--no-progress",
                ]
            )
            == 0
        )
    assert server.paths() == ["/files/test_40.h5"]


def test_retries_back_off_exponentially_then_give_up(dataset, tmp_path, monkeypatch):
    import generator.distribution.transfer

    delays = []
    monkeypatch.setattr(
        generator.distribution.transfer, "_backoff_wait", lambda seconds, stop: delays.append(seconds)
    )
    m = _manifest_copy(dataset, tmp_path, base_url="http://127.0.0.1:9/")  # discard port: refused
    with pytest.raises(FetchError, match="gave up after 3 retries"):
        fetch(m, tmp_path / "o", variants=["test_40"], retries=3, backoff=0.5, progress=False, timeout=5)
    assert delays == [0.5, 1.0, 2.0]
    assert not list((tmp_path / "o").glob("*.part"))  # nothing received: no empty .part left


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=0, max_size=40))
def test_any_accepted_name_stays_directly_inside_out(name):
    out = Path("/srv/out")
    try:
        check_plain_name(name, "name")
    except UserError:
        return
    target = Path(os.path.normpath(out / name))
    assert target.parent == out and target.name == name and ".." not in name


@pytest.mark.parametrize(
    "argv",
    [
        ["fetch", "--manifest", f"/nonexistent/{MANIFEST_NAME}", "--out", "OUT"],
        ["fetch", "--manifest", "MANIFEST", "--out", "OUT", "--variants", "no_such_variant"],
        ["fetch", "--manifest", "MANIFEST", "--out", "OUT", "--workers", "0"],
        ["info", "no_such_variant"],
    ],
)
def test_cli_errors_exit_2(dataset, tmp_path, capsys, argv):
    root, _ = dataset
    argv = [
        a.replace("MANIFEST", str(root / MANIFEST_NAME)).replace("OUT", str(tmp_path / "o")) for a in argv
    ]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error" in err[0]


def test_links_in_out_never_lead_outside(dataset, tmp_path):
    root, manifest = dataset
    out = tmp_path / "out"
    out.mkdir()
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"precious")
    (out / "test_40.h5.part").symlink_to(outside)
    with pytest.raises(FetchError, match="not a regular file"):
        fetch(root, out, variants=["test_40"], **FAST)
    (out / "test_40.h5.part").unlink()
    (out / "test_40.h5").symlink_to(outside)  # a wrong file at the target: replaced, not written through
    (out / f"{ALL_TEST}.h5.part").hardlink_to(outside)  # appending would change the outside file
    fetch(root, out, variants=["test_40", ALL_TEST], **FAST)
    assert outside.read_bytes() == b"precious"
    assert not (out / "test_40.h5").is_symlink()
    assert sha256_file(out / "test_40.h5") == manifest["files"][2]["sha256"]
    assert sha256_file(out / f"{ALL_TEST}.h5") == manifest["files"][1]["sha256"]


def test_part_longer_than_server_file_restarts(dataset, tmp_path):
    root, _ = dataset
    name = "test_40.h5"
    data = (root / name).read_bytes()
    served = tmp_path / "served"
    served.mkdir()
    (served / name).write_bytes(data)
    out = tmp_path / "out"
    out.mkdir()
    (out / (name + ".part")).write_bytes(data[:50])
    with serve(served) as server:
        (served / name).write_bytes(data[:40])  # the server's copy shrank under us: 416 for bytes=50-
        m = _manifest_copy(dataset, tmp_path, base_url=server.url)
        with pytest.raises(FetchError):
            fetch(m, out, variants=[name], retries=2, **FAST)
        assert server.range_requests(name)[0] == "bytes=50-"
        assert server.requests[1][1].get("Range") is None  # the 416 dropped the .part: restart from 0
        (served / name).write_bytes(data)
        fetch(m, out, variants=[name], **FAST)
    assert (out / name).read_bytes() == data
