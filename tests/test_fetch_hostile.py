"""fetch against a hostile server on 127.0.0.1 (issue 13): drip-feed, stale .part files, permanent
failures, concurrent runs into one folder, terminal escapes and long names, partial fetch + verify.

Every server behaviour is bounded (tests/helpers/distribution.py) and every fetch here runs with short
timeouts, so the file takes seconds.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from helpers.distribution import DEFAULT_VARIANTS, build_dataset, cli_main, serve

from generator.distribution.fetch import FetchError, fetch, verify_files
from generator.errors import UserError
from generator.lock import LOCK_NAME, folder_lock
from generator.variants import ALL_TEST
from generator.variants.manifest import MANIFEST_NAME, sha256_file

FAST = {"backoff": 0.01, "timeout": 2, "progress": False}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    return root, build_dataset(root)


def _manifest(dataset, tmp_path: Path, **changes) -> Path:
    _, manifest = dataset
    data = {**json.loads(json.dumps(manifest)), **changes}
    path = tmp_path / "m" / MANIFEST_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def _entry(dataset, name: str) -> dict:
    return next(f for f in dataset[1]["files"] if f["name"] == name)


def test_drip_feed_is_cut_and_resumed(dataset, tmp_path):
    """A server sending one byte every 50 ms (about 20 B/s) is cut after the speed window and the
    download resumes with a Range request, instead of waiting for hours."""
    name = "test_40.h5"
    with serve(dataset[0]) as server:
        server.drip_once.add(name)
        m = _manifest(dataset, tmp_path, base_url=server.url)
        outcomes = fetch(m, tmp_path / "out", variants=["test_40"], min_speed=1000, speed_window=0.3, **FAST)
    assert [o.status for o in outcomes] == ["resumed"]
    assert sha256_file(tmp_path / "out" / name) == _entry(dataset, name)["sha256"]
    ranges = server.range_requests(name)
    assert len(ranges) == 1 and int(ranges[0].removeprefix("bytes=").rstrip("-")) > 0


def test_drip_feed_forever_gives_up_in_bounded_time_and_keeps_the_part(dataset, tmp_path):
    name = "test_40.h5"
    with serve(dataset[0]) as server:
        server.drip[name] = 0.05
        m = _manifest(dataset, tmp_path, base_url=server.url)
        start = time.monotonic()
        with pytest.raises(FetchError, match=r"too slow .* gave up after 2 retries; \d+ bytes kept"):
            fetch(
                m, tmp_path / "out", variants=["test_40"], retries=2, min_speed=1000, speed_window=0.3, **FAST
            )
        elapsed = time.monotonic() - start
    # 3 attempts of ~0.3 s each; a per-read timeout alone would wait for the whole file (minutes)
    assert elapsed < 8, elapsed
    part = tmp_path / "out" / (name + ".part")
    assert part.is_file() and part.stat().st_size > 0  # kept to resume from
    assert len(server.paths()) == 3


def test_stale_full_size_part_gets_one_fresh_download(dataset, tmp_path):
    """A full-size .part one byte off (left by an older file version) used to be deleted with no
    request at all; now it costs exactly one fresh download, without a Range header."""
    root, _ = dataset
    name = f"{ALL_TEST}.h5"
    data = bytearray((root / name).read_bytes())
    data[-1] ^= 0xFF
    out = tmp_path / "out"
    out.mkdir()
    (out / (name + ".part")).write_bytes(bytes(data))
    with serve(root) as server:
        m = _manifest(dataset, tmp_path, base_url=server.url)
        fetch(m, out, variants=[ALL_TEST], **FAST)
    assert sha256_file(out / name) == _entry(dataset, name)["sha256"]
    assert [p.rsplit("/", 1)[-1] for p in server.paths()] == [name]
    assert server.range_requests(name) == []
    assert not (out / (name + ".part")).exists()


@pytest.mark.parametrize("how", ["404", "refused redirect"])
def test_permanent_failure_leaves_no_empty_part(dataset, tmp_path, how):
    out = tmp_path / "out"
    with serve(dataset[0]) as server:
        if how == "404":
            m = _manifest(dataset, tmp_path, base_url=server.url.replace("/files/", "/nowhere/"))
        else:  # a redirect to file:// (urllib refuses to follow it)
            server.redirect["test_40.h5"] = f"file://{dataset[0]}/test_40.h5"
            m = _manifest(dataset, tmp_path, base_url=server.url)
        with pytest.raises(FetchError, match="HTTP (404|302)"):
            fetch(m, out, variants=["test_40"], **FAST)
    assert len(server.paths()) == 1  # permanent: not retried
    assert sorted(p.name for p in out.iterdir()) == []  # no empty .part, no lock file


def test_folder_in_the_way_is_one_clear_error(dataset, tmp_path, capsys):
    out = tmp_path / "out"
    (out / "test_40.h5").mkdir(parents=True)
    with serve(dataset[0]) as server:
        m = _manifest(dataset, tmp_path, base_url=server.url)
        code = cli_main(
            ["fetch", "--manifest", str(m), "--out", str(out), "--variants", "test_40", "--no-progress"]
        )
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "Traceback" not in err
    assert "test_40.h5: a folder is in the way" in err
    assert server.paths() == []  # refused before downloading


def test_concurrent_fetches_into_one_folder(dataset, tmp_path):
    """While one fetch holds the folder, a second one with no patience is refused with a clear
    message (and changes nothing); a patient one waits, then finds every file present."""
    out = tmp_path / "out"
    results: dict[str, object] = {}
    with serve(dataset[0]) as server:
        server.hold = threading.Event()
        m = _manifest(dataset, tmp_path, base_url=server.url)

        def run(key, **kwargs):
            try:
                results[key] = fetch(m, out, **FAST, **kwargs)
            except Exception as exc:  # noqa: BLE001 - recorded for the assertions below
                results[key] = exc

        first = threading.Thread(target=run, args=("first",))
        first.start()
        for _ in range(200):  # the first fetch is inside the lock once its requests arrive
            if server.requests:
                break
            time.sleep(0.02)
        assert server.requests, "the first fetch never reached the server"
        with pytest.raises(UserError, match=r"in use by process \d+ \(a fetch run is writing into it\)"):
            fetch(m, out, lock_wait=0, **FAST)
        second = threading.Thread(target=run, args=("second",), kwargs={"lock_wait": 20})
        second.start()
        time.sleep(0.2)
        server.hold.set()
        first.join(timeout=30)
        second.join(timeout=30)
    assert not first.is_alive() and not second.is_alive()
    assert sorted(o.status for o in results["first"]) == ["downloaded"] * 3, results["first"]
    assert sorted(o.status for o in results["second"]) == ["present"] * 3, results["second"]
    assert verify_files(out) == []
    assert not list(out.glob("*.part")) and not (out / LOCK_NAME).exists()
    assert len(server.paths()) == 3  # the files were downloaded once


def test_lock_is_exclusive_across_processes_and_released_on_exit(tmp_path):
    """The advisory lock holds against another process, and its file is gone once released."""
    import subprocess
    import sys

    code = (
        "import sys, time; from generator.lock import folder_lock\n"
        "with folder_lock(sys.argv[1], 'generate', wait=0):\n"
        "    print('held', flush=True); time.sleep(3)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        assert child.stdout.readline().strip() == "held"
        with pytest.raises(UserError, match=rf"in use by process {child.pid} \(a generate run"):
            with folder_lock(tmp_path, "fetch", wait=0.2):
                pass
    finally:
        child.wait(timeout=20)
    with folder_lock(tmp_path, "fetch", wait=0):
        assert (tmp_path / LOCK_NAME).is_file()
    assert not (tmp_path / LOCK_NAME).exists()


def test_partial_fetch_then_verify_checks_only_what_was_fetched(dataset, tmp_path, capsys):
    out = tmp_path / "out"
    assert (
        cli_main(
            [
                "fetch",
                "--manifest",
                str(dataset[0]),
                "--out",
                str(out),
                "--variants",
                ALL_TEST,
                "--no-progress",
            ]
        )
        == 0
    )
    capsys.readouterr()
    from generator.cli import main

    assert main(["verify", str(out), "--quiet"]) == 0
    (out / f"{ALL_TEST}.h5").write_bytes(b"tampered")
    assert main(["verify", str(out), "--quiet"]) == 1
    assert f"{ALL_TEST}.h5" in capsys.readouterr().err


def test_terminal_escapes_and_long_names_are_neutralised(dataset, tmp_path, capsys):
    """list/info print manifest text with control characters escaped; errors echo long URLs shortened."""
    evil = "\x1b]0;pwned\x07\x1b[2J\u202e"
    m = _manifest(dataset, tmp_path, licence=f"CC BY {evil}", base_url=None)
    data = json.loads(m.read_text())
    data["files"][1]["description"] = f"all {evil} rows"
    m.write_text(json.dumps(data))
    assert cli_main(["list", "--manifest", str(m)]) == 0
    assert cli_main(["info", ALL_TEST, "--manifest", str(m)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "\\x1b]0;pwned" in out and "\\u202e" in out

    long_url = "http://127.0.0.1:9/" + "a" * 10_000 + "/"
    assert (
        cli_main(
            [
                "fetch",
                "--manifest",
                str(m),
                "--base-url",
                long_url,
                "--out",
                str(tmp_path / "o"),
                "--variants",
                "test_40",
                "--retries",
                "0",
                "--timeout",
                "1",
                "--no-progress",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) < 1500 and "a" * 200 not in err, err[:300]


def test_interrupt_keeps_the_part_and_exits_130(dataset, tmp_path, capsys, monkeypatch):
    """Ctrl-C during a download: exit 130, one line, the .part kept for the next run to resume."""
    import generator.distribution.transfer as transfer

    real_copy = transfer._copy_capped

    def interrupted(src, dst, remaining, bar, *args):
        dst.write(src.read(100))
        raise KeyboardInterrupt

    out = tmp_path / "out"
    with serve(dataset[0]) as server:
        m = _manifest(dataset, tmp_path, base_url=server.url)
        monkeypatch.setattr(transfer, "_copy_capped", interrupted)
        code = cli_main(
            [
                "fetch",
                "--manifest",
                str(m),
                "--out",
                str(out),
                "--variants",
                "test_40",
                "--workers",
                "1",
                "--no-progress",
            ]
        )
        err = capsys.readouterr().err.strip()
        assert code == 130 and "\n" not in err and "interrupted" in err and "Traceback" not in err
        assert (out / "test_40.h5.part").stat().st_size == 100
        assert not (out / LOCK_NAME).exists()
        monkeypatch.setattr(transfer, "_copy_capped", real_copy)
        assert [o.status for o in fetch(m, out, variants=["test_40"], **FAST)] == ["resumed"]
    assert server.range_requests("test_40.h5") == ["bytes=100-"]


def test_generate_into_a_folder_in_use_is_refused_and_changes_nothing(tmp_path, capsys):
    """generate takes the same folder lock as fetch: a second writer is refused, the folder untouched."""
    from helpers.variants import make_source

    from generator.cli import main

    source = make_source(tmp_path / "src", train_per_class=(1,) * 7, test_per_class=(1,) * 7)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("first run's file")
    with folder_lock(out, "fetch", wait=0):
        code = main(["generate", "--source", str(source), "--out", str(out), "--wait", "0", "--quiet"])
        err = capsys.readouterr().err.strip()
        assert code == 2 and "\n" not in err and "in use by process" in err and "a fetch run" in err
        assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME, "keep.txt"]


def test_ctrl_c_stops_every_worker_promptly(dataset, tmp_path, capsys, sigint_raises):
    """Ctrl-C while several files drip in: the workers stop at their next chunk instead of finishing
    their downloads (each would take the server's full 10 s), the .part files stay for a resume."""
    import _thread

    out = tmp_path / "out"
    with serve(dataset[0]) as server:
        for variant, *_ in DEFAULT_VARIANTS:
            server.drip[f"{variant}.h5"] = 0.01
        m = _manifest(dataset, tmp_path, base_url=server.url)
        timer = threading.Timer(0.8, _thread.interrupt_main)
        start = time.monotonic()
        timer.start()
        try:
            code = cli_main(
                [
                    "fetch",
                    "--manifest",
                    str(m),
                    "--out",
                    str(out),
                    "--workers",
                    "3",
                    "--min-speed",
                    "0",
                    "--timeout",
                    "2",
                    "--no-progress",
                ]
            )
        finally:
            timer.cancel()
        elapsed = time.monotonic() - start
    err = capsys.readouterr().err.strip()
    assert code == 130 and "\n" not in err and "interrupted" in err
    assert elapsed < 5, elapsed
    parts = sorted(out.glob("*.part"))
    assert len(parts) == 3 and all(p.stat().st_size > 0 for p in parts)
    assert not (out / LOCK_NAME).exists()


@pytest.mark.parametrize("field", ["name", "variant", "sha256"])
def test_a_10000_character_hostile_field_is_echoed_short_and_escaped(dataset, tmp_path, capsys, field):
    m = _manifest(dataset, tmp_path)
    data = json.loads(m.read_text())
    data["files"][0][field] = "\x1b[2J" + "n" * 10_000
    m.write_text(json.dumps(data))
    assert cli_main(["fetch", "--manifest", str(m), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) < 1000 and "\x1b" not in err and f"files[0].{field}" in err, err
    assert not (tmp_path / "o").exists()
