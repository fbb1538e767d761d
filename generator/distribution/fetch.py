"""Download the variant files a manifest lists, safely: validate first, resume, verify, rename.

The engine uses the standard library only (``urllib``), so fetching needs no extra dependency.

Order of operations for one file ``NAME`` (into ``--out``):

1. The whole manifest is validated before any file request is made: file names must be plain
   names (no separators, no ``..``, not absolute, no control characters), sizes non-negative
   integers and hashes 64 lowercase hex digits. A hostile manifest never reaches the network.
2. ``NAME`` already present with the right size and SHA-256: nothing to do.
3. Bytes go to ``NAME.part``; an existing ``.part`` is resumed with an HTTP ``Range`` request
   (or a seek, for local sources). Transient failures (cut connections, timeouts, 5xx) are
   retried with exponential backoff, resuming each time.
4. The ``.part`` file's SHA-256 is checked; only then is it renamed onto ``NAME`` (atomic).
   A mismatch deletes the ``.part`` and is reported (one fresh retry if the bytes came from a
   resumed download, since a stale ``.part`` may belong to an older file).

Sources: ``http(s)://`` URLs, ``file://`` URLs and local folders, both for the manifest and for
the files (``base_url`` in the manifest, ``--base-url`` to override it, else the folder the
manifest came from).

Step 1 lives in ``untrusted``, steps 2-4 (one file) in ``transfer``; this module runs them for every
selected file in parallel and writes the folder's own manifest and dataset card.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

from ..atomic import write_json_atomic
from ..errors import UserError
from ..lock import DEFAULT_WAIT_S, folder_lock
from ..userio import refuse_non_folder
from ..variants.manifest import MANIFEST_NAME
from .transfer import MIN_SPEED, SPEED_WINDOW_S, FetchError, FetchOutcome, Limits, Source, fetch_one
from .untrusted import FileEntry, check_plain_name, fetchable_entries, read_manifest, select_entries


def fetch(
    manifest: str | os.PathLike | dict,
    out: str | os.PathLike,
    variants: Iterable[str] | None = None,
    base_url: str | None = None,
    workers: int = 4,
    retries: int = Limits.retries,
    backoff: float = Limits.backoff,
    timeout: float = Limits.timeout,
    progress: bool = True,
    min_speed: float = MIN_SPEED,
    speed_window: float = SPEED_WINDOW_S,
    lock_wait: float = DEFAULT_WAIT_S,
) -> list[FetchOutcome]:
    """Download (or find present) and verify the files of ``manifest`` into ``out``.

    ``manifest`` is a URL, a path to a manifest file or a folder holding ``manifest.json``, or
    an already-loaded dict (then ``base_url`` or the manifest's own ``base_url`` must say
    where the files are). Raises FetchError (a UserError) listing every file that failed; the
    files that succeeded stay in place. Writes ``out/manifest.json`` when all succeed, listing
    the files fetched now and those of an earlier fetch still intact there (what ``verify`` checks),
    and, derived from it, the dataset card ``README.md`` and ``croissant.json``.

    ``timeout`` bounds each network read; a transfer below ``min_speed`` bytes/s over
    ``speed_window`` seconds is cut and resumed (at most ``retries`` times). Another fetch or
    generate writing into ``out`` is waited for up to ``lock_wait`` seconds, then refused.
    """
    if workers < 1:
        raise UserError(f"--workers: must be at least 1, got {workers}")
    if retries < 0:
        raise UserError(f"--retries: must be at least 0, got {retries}")
    if not timeout > 0 or not min_speed >= 0 or not speed_window > 0:
        raise UserError(
            f"--timeout: must be positive, got {timeout}"
            if not timeout > 0
            else f"--min-speed: must be non-negative, got {min_speed}"
        )
    if isinstance(manifest, dict):
        data, default_base = manifest, None
        entries = fetchable_entries(data)
    else:
        data, default_base = read_manifest(manifest, timeout=timeout)
        entries = fetchable_entries(data, where=os.fspath(manifest))
    selected = select_entries(entries, variants)
    base = base_url or data.get("base_url") or default_base
    if not base:
        raise UserError("--base-url: the manifest has no base_url; say where the files are")
    source = Source.parse(base)

    out_path = Path(out).expanduser()
    refuse_non_folder(out_path)
    out_path.mkdir(parents=True, exist_ok=True)
    out_path = out_path.resolve()
    from .cards import CARD_NAME, CROISSANT_NAME

    # Checked before any download: a folder where fetch writes its own files would otherwise fail
    # only after every transfer had finished.
    for name in (MANIFEST_NAME, CARD_NAME, CROISSANT_NAME):
        if (out_path / name).is_dir():
            raise UserError(f"{out_path / name}: is a folder where fetch writes its {name}; move it away")

    with folder_lock(out_path, "fetch", wait=lock_wait):
        bar_factory = _bar_factory(progress, workers)
        outcomes, failures = [], []
        limits = Limits(retries, backoff, timeout, min_speed, speed_window, threading.Event())
        with ThreadPoolExecutor(max_workers=min(workers, max(1, len(selected)))) as pool:
            futures = [pool.submit(fetch_one, e, out_path, source, bar_factory, limits) for e in selected]
            try:
                # Timed waits: a blocking result() would not see a Ctrl-C until some download ended.
                pending = set(futures)
                while pending:
                    _, pending = wait(pending, timeout=0.2)
                for entry, future in zip(selected, futures, strict=True):
                    try:
                        outcomes.append(future.result())
                    except UserError as exc:
                        failures.append(str(exc))
                    except OSError as exc:  # disk full, permissions, a folder in the way
                        failures.append(f"{entry.name}: {exc.strerror or exc}")
            except KeyboardInterrupt:
                # Workers stop at their next chunk (keeping their .part files) instead of finishing
                # their downloads while the user waits; queued files never start.
                if limits.stop is not None:
                    limits.stop.set()
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        if failures:
            raise FetchError(f"{len(failures)} of {len(selected)} file(s) failed: " + " | ".join(failures))
        local = dict(data)
        local["files"] = _files_held(data, out_path, {e.name for e in selected})
        if local.get("base_url") is None and source.kind == "http":
            local["base_url"] = source.base
        write_json_atomic(out_path / MANIFEST_NAME, local)
        # The dataset card and Croissant are derived from the manifest (generator.distribution.cards),
        # so they are written here, for the files held, rather than downloaded: paths relative, as
        # generate writes them, since the files lie beside them.
        from .cards import write_cards

        write_cards(out_path, {**local, "base_url": None})
    return outcomes


def _files_held(manifest: dict, out: Path, fetched: set[str]) -> list[dict]:
    """The manifest's file entries that ``out`` holds: the ones just fetched, plus those an earlier
    fetch recorded in ``out/manifest.json`` with the same SHA-256 and that are still there at that
    size (a partial fetch must not make ``verify`` report the other variants as missing)."""
    earlier: dict[str, str] = {}
    previous = out / MANIFEST_NAME
    if previous.is_file():
        with contextlib.suppress(UserError):
            earlier = {f["name"]: f["sha256"] for f in read_manifest(previous)[0]["files"]}
    held = []
    for f in manifest["files"]:
        path = out / f["name"]
        if f["name"] in fetched or (
            earlier.get(f["name"]) == f["sha256"] and path.is_file() and path.stat().st_size == f["bytes"]
        ):
            held.append(f)
    return held


def _bar_factory(progress: bool, workers: int):
    """Per-file tqdm bars on stderr (one line per worker slot), or no bars."""
    import threading

    lock = threading.Lock()
    free_slots = list(range(workers))

    @contextlib.contextmanager
    def factory(entry: FileEntry):
        if not progress:
            yield None
            return
        from tqdm import tqdm

        with lock:
            slot = free_slots.pop(0) if free_slots else 0
        bar = tqdm(
            total=entry.bytes,
            desc=entry.name,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            position=slot,
            leave=False,
            dynamic_ncols=True,
        )
        try:
            yield bar
        finally:
            bar.close()
            with lock:
                free_slots.append(slot)

    return factory


def verify_files(
    out: str | os.PathLike,
    manifest: dict | None = None,
    variants: Iterable[str] | None = None,
    content: bool = False,
) -> list[str]:
    """Problems (missing, wrong size, wrong SHA-256) of the selected files in ``out``; [] when good."""
    from ..variants.manifest import check_entry

    out = Path(out)
    if manifest is None:
        manifest, _ = read_manifest(out)
    selected = {e.name for e in select_entries(fetchable_entries(manifest), variants)}
    return [
        p
        for f in manifest["files"]
        if f["name"] in selected and (p := check_entry(out, f, content=content)) is not None
    ]


__all__ = [
    "MIN_SPEED",
    "SPEED_WINDOW_S",
    "FetchError",
    "FetchOutcome",
    "FileEntry",
    "check_plain_name",
    "fetch",
    "read_manifest",
    "fetchable_entries",
    "select_entries",
    "verify_files",
]
