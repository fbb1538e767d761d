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
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..atomic import write_json_atomic
from ..errors import UserError
from ..lock import DEFAULT_WAIT_S, folder_lock
from ..userio import parse_json, printable, refuse_non_folder

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT_PREFIX = "ham-artefacts-manifest/"
PART_SUFFIX = ".part"
CHUNK = 1 << 20
MAX_MANIFEST_BYTES = 16 << 20
USER_AGENT = f"ham-artefacts/{__version__} (+urllib)"

# A plain file name: starts with a letter or digit, then letters, digits, dot, dash, underscore.
# This alone excludes separators, absolute paths, NUL and control characters, and '.'/'..'.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_RETRY_HTTP_CODES = {408, 425, 429, 500, 502, 503, 504}
# A transfer slower than MIN_SPEED bytes/s over SPEED_WINDOW_S seconds is cut and retried (resuming):
# the per-read timeout alone never trips on a server that drips one byte a second.
MIN_SPEED = 1024
SPEED_WINDOW_S = 30.0


@dataclass(frozen=True)
class _Limits:
    """How long a transfer may take, and the flag that stops every worker after a Ctrl-C."""

    min_speed: float = MIN_SPEED
    window: float = SPEED_WINDOW_S
    stop: threading.Event | None = None


class FetchError(UserError):
    """One or more files could not be fetched or failed verification (CLI exit code 2)."""


@dataclass(frozen=True)
class FileEntry:
    name: str
    variant: str
    sha256: str
    bytes: int


@dataclass(frozen=True)
class FetchOutcome:
    name: str
    path: Path
    status: str  # "present" | "downloaded" | "resumed"
    bytes: int


# --- manifest: reading and validation ---------------------------------------------------------


def check_plain_name(name, where: str) -> str:
    """Return ``name`` if it is a safe plain file name, else raise UserError naming ``where``."""
    if not isinstance(name, str):
        raise UserError(f"{where}: file name must be a string, got {type(name).__name__}")
    shown = printable(repr(name))  # a hostile name may be 10,000 characters of terminal escapes
    if "\x00" in name:
        raise UserError(f"{where}: file name contains a NUL byte")
    if "/" in name or "\\" in name:
        raise UserError(f"{where}: file name {shown} contains a path separator")
    if ".." in name:
        raise UserError(f"{where}: file name {shown} contains '..'")
    if os.path.isabs(name):
        raise UserError(f"{where}: file name {shown} is absolute")
    if not _PLAIN_NAME.fullmatch(name):
        raise UserError(
            f"{where}: file name {shown} is not a plain name "
            "(letters, digits, '.', '-', '_'; starting with a letter or digit; at most 200 chars)"
        )
    if name.endswith(PART_SUFFIX) or name == MANIFEST_NAME:
        raise UserError(f"{where}: file name {shown} is reserved")
    return name


def url_scheme(location, where: str | None = None) -> str:
    """The lower-case scheme of ``location`` ("" for a plain path); UserError for a malformed URL
    such as ``http://[127.0.0.1/`` (urlsplit's ValueError)."""
    try:
        parts = urllib.parse.urlsplit(str(location))
        parts.port  # noqa: B018 - a non-numeric or out-of-range port raises here
    except ValueError as exc:
        raise UserError(f"{where or printable(location)}: malformed URL ({exc})") from None
    return parts.scheme.lower()


def check_base_url(url, where: str) -> str | None:
    """A manifest base_url must be null or an http(s)/file URL."""
    if url is None:
        return None
    if not isinstance(url, str) or not url:
        raise UserError(f"{where}: base_url must be a non-empty string or null")
    scheme = url_scheme(url, f"{where} {printable(url)}")
    if scheme not in ("http", "https", "file"):
        raise UserError(
            f"{where}: base_url {printable(repr(url))} must be an http://, https:// or file:// URL"
        )
    return url


def fetchable_entries(manifest, where: str = "manifest") -> list[FileEntry]:
    """The file entries of a manifest from an untrusted place, once every field fetch relies on is
    checked (no I/O, no network).

    The safety checks (plain names, sizes, hashes, base_url) run first, then the one schema check,
    ``generator.variants.manifest.validate_manifest``.
    """
    entries = _check_safety(manifest, where)
    from ..variants.manifest import validate_manifest as validate_schema

    validate_schema(manifest, where)
    return entries


def _check_safety(manifest, where: str) -> list[FileEntry]:
    if not isinstance(manifest, dict):
        raise UserError(f"{where}: top level must be a JSON object")
    fmt = manifest.get("format")
    if not isinstance(fmt, str) or not fmt.startswith(MANIFEST_FORMAT_PREFIX):
        raise UserError(
            f"{where}: format must start with {MANIFEST_FORMAT_PREFIX!r}, got {printable(repr(fmt))}"
        )
    check_base_url(manifest.get("base_url"), f"{where}: base_url")
    files = manifest.get("files")
    if not isinstance(files, list):
        raise UserError(f"{where}: files must be a list")
    entries, seen = [], set()
    for i, item in enumerate(files):
        at = f"{where}: files[{i}]"
        if not isinstance(item, dict):
            raise UserError(f"{at}: must be an object")
        name = check_plain_name(item.get("name"), f"{at}.name")
        if name in seen:
            raise UserError(f"{at}.name: duplicate file name {printable(repr(name))}")
        seen.add(name)
        size = item.get("bytes")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise UserError(f"{at}.bytes: must be a non-negative integer, got {printable(repr(size))}")
        digest = item.get("sha256")
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise UserError(f"{at}.sha256: must be 64 lowercase hex digits, got {printable(repr(digest))}")
        variant = item.get("variant", name.rsplit(".", 1)[0])
        if not isinstance(variant, str) or not _PLAIN_NAME.fullmatch(variant):
            raise UserError(f"{at}.variant: must be a plain name, got {printable(repr(variant))}")
        entries.append(FileEntry(name=name, variant=variant, sha256=digest, bytes=size))
    return entries


def _is_url(location: str) -> bool:
    return url_scheme(location) in ("http", "https", "file")


def _file_url_to_path(url: str) -> Path:
    url_scheme(url)
    parts = urllib.parse.urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise UserError(f"{printable(url)}: file:// URLs must name a local path")
    return Path(urllib.request.url2pathname(parts.path))


def read_manifest(location: str | os.PathLike, timeout: float = 30.0) -> tuple[dict, str]:
    """Load and validate a manifest from a URL, a file or a folder holding ``manifest.json``.

    Returns ``(manifest, default_base)``: the base the files are fetched from when neither
    ``--base-url`` nor the manifest's ``base_url`` says otherwise (the manifest's own folder).
    """
    location = os.fspath(location)
    shown = printable(location)
    scheme = url_scheme(location) if _is_url(location) else ""
    if scheme in ("http", "https"):
        try:
            req = urllib.request.Request(location, headers={"User-Agent": USER_AGENT})
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                data = resp.read(MAX_MANIFEST_BYTES + 1)
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            raise UserError(f"{shown}: cannot read manifest ({printable(exc)})") from None
        default_base = location.rsplit("/", 1)[0] + "/"
    else:
        path = _file_url_to_path(location) if scheme == "file" else Path(location)
        if path.is_dir():
            path = path / MANIFEST_NAME
        if not path.is_file():
            raise UserError(f"{shown}: manifest not found")
        try:
            with open(path, "rb") as fh:
                data = fh.read(MAX_MANIFEST_BYTES + 1)
        except OSError as exc:
            raise UserError(f"{shown}: cannot read manifest ({exc.strerror or exc})") from None
        default_base = str(path.resolve().parent)
    if len(data) > MAX_MANIFEST_BYTES:
        raise UserError(f"{shown}: manifest larger than {MAX_MANIFEST_BYTES} bytes")
    manifest = parse_json(data, f"{shown}: manifest")
    fetchable_entries(manifest, where=shown)
    return manifest, default_base


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file (generator.variants.manifest's: one definition for the project)."""
    from ..variants.manifest import sha256_file as shared

    return shared(path)


# --- sources ----------------------------------------------------------------------------------


class _Transient(Exception):
    """A failure worth retrying (resuming from what is already in the .part file)."""


class _RangeRefused(_Transient):
    """The server would not continue where the .part file ends: retry from byte 0."""


class _Permanent(Exception):
    """A failure retrying cannot fix (404, a short local file...)."""


@dataclass(frozen=True)
class _Source:
    """Where the files are: an http(s) base URL or a local folder."""

    kind: str  # "http" | "local"
    base: str

    @classmethod
    def parse(cls, base: str) -> _Source:
        scheme = url_scheme(base) if _is_url(base) else ""
        if scheme in ("http", "https"):
            return cls("http", base if base.endswith("/") else base + "/")
        path = _file_url_to_path(base) if scheme == "file" else Path(base)
        if not path.is_dir():
            raise UserError(f"{printable(base)}: base is not a folder")
        return cls("local", str(path.resolve()))

    def describe(self, name: str) -> str:
        return self.base + urllib.parse.quote(name) if self.kind == "http" else str(Path(self.base) / name)

    def copy_into(
        self, name: str, fh, offset: int, expected: int, timeout: float, bar, limits: _Limits = _Limits()
    ) -> int:
        """Append bytes ``offset..expected`` of ``name`` to ``fh``; return the new offset written from.

        Returns the offset the bytes actually started at (0 if the server ignored the Range).
        """
        if self.kind == "local":
            src = Path(self.base) / name
            try:
                with open(src, "rb") as sf:
                    sf.seek(offset)
                    _copy_capped(sf, fh, expected - offset, bar, limits)
            except FileNotFoundError as exc:
                raise _Permanent(f"{printable(src)}: not found") from exc
            except IsADirectoryError as exc:
                raise _Permanent(f"{printable(src)}: is a folder, not a file") from exc
            except _Transient as exc:
                raise _Permanent(f"{src}: shorter than the manifest's {expected} bytes") from exc
            return offset
        url = self.describe(name)
        shown = printable(url)
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        try:
            with urllib.request.urlopen(
                urllib.request.Request(url, headers=headers), timeout=timeout
            ) as resp:
                start = 0
                if offset and resp.status == 206:
                    content_range = resp.headers.get("Content-Range", "")
                    if not content_range.startswith(f"bytes {offset}-"):
                        raise _RangeRefused(f"unexpected Content-Range {content_range!r}")
                    start = offset
                elif resp.status != 200:
                    raise _Transient(f"unexpected HTTP status {resp.status}")
                if start == 0 and offset:
                    # The server ignored the Range: start again from byte 0.
                    fh.seek(0)
                    fh.truncate()
                    if bar is not None:
                        bar.reset(total=expected)
                _copy_capped(resp, fh, expected - start, bar, limits)
                return start
        except urllib.error.HTTPError as exc:
            if exc.code == 416:
                raise _RangeRefused(f"HTTP 416 from {shown}") from exc
            if exc.code in _RETRY_HTTP_CODES:
                raise _Transient(f"HTTP {exc.code} from {shown}") from exc
            raise _Permanent(f"HTTP {exc.code} from {shown}") from exc
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as exc:
            raise _Transient(f"{shown}: {printable(getattr(exc, 'reason', exc))}") from exc
        except ValueError as exc:  # a URL urllib cannot even parse (e.g. a bad port)
            raise _Permanent(f"{shown}: malformed URL ({exc})") from exc


def _copy_capped(src, dst, remaining: int, bar, limits: _Limits = _Limits()) -> None:
    """Copy at most ``remaining`` bytes; a source that ends early, or that delivers fewer than
    ``limits.min_speed`` bytes/s over a ``limits.window``-second stretch, is a transient failure."""
    min_speed, window = limits.min_speed, limits.window
    # read1: whatever one receive brings; read(n) would block until all n bytes arrived, so a
    # drip-feeding server would never be measured (nor trip the per-read timeout).
    read = getattr(src, "read1", src.read)
    window_start, window_bytes = time.monotonic(), 0
    while remaining > 0:
        if limits.stop is not None and limits.stop.is_set():
            raise KeyboardInterrupt  # the main thread was interrupted: keep the .part, stop here
        chunk = read(min(CHUNK, remaining))
        if not chunk:
            raise _Transient(f"connection ended with {remaining} bytes missing")
        dst.write(chunk)
        remaining -= len(chunk)
        window_bytes += len(chunk)
        if bar is not None:
            bar.update(len(chunk))
        elapsed = time.monotonic() - window_start
        if elapsed >= window:
            if window_bytes < min_speed * elapsed:
                raise _Transient(
                    f"too slow ({window_bytes / elapsed:.0f} bytes/s over {elapsed:.0f} s, "
                    f"minimum {min_speed:.0f})"
                )
            window_start, window_bytes = time.monotonic(), 0


def _backoff_wait(seconds: float, stop: threading.Event | None) -> None:
    """Wait before a retry; a Ctrl-C in the main thread (``stop``) ends the wait and the download."""
    if stop is None:
        time.sleep(seconds)
    elif stop.wait(seconds):
        raise KeyboardInterrupt


# --- one file ---------------------------------------------------------------------------------


def _safe_target(out: Path, name: str) -> Path:
    """``out/name``, guaranteed to be directly inside ``out`` (defence in depth after validation)."""
    if not _PLAIN_NAME.fullmatch(name) or ".." in name:
        raise UserError(f"{printable(repr(name))}: not a plain file name")
    target = out / name
    if target.parent != out or os.path.dirname(os.path.normpath(target)) != str(out):
        raise UserError(f"{printable(name)}: would be written outside {out}")
    return target


def _fetch_one(
    entry: FileEntry,
    out: Path,
    source: _Source,
    *,
    retries: int,
    backoff: float,
    timeout: float,
    bar_factory,
    limits: _Limits = _Limits(),
) -> FetchOutcome:
    dest = _safe_target(out, entry.name)
    part = _safe_target(out, entry.name + PART_SUFFIX)
    if dest.is_dir() and not dest.is_symlink():  # (a symlink at dest is replaced, never written through)
        raise FetchError(f"{dest}: a folder is in the way; remove it")
    if (
        dest.is_file()
        and not dest.is_symlink()
        and dest.stat().st_size == entry.bytes
        and sha256_file(dest) == entry.sha256
    ):
        return FetchOutcome(entry.name, dest, "present", entry.bytes)
    if part.is_symlink() or (part.exists() and not part.is_file()):
        raise FetchError(f"{part}: exists and is not a regular file; remove it")
    if part.exists() and part.stat().st_nlink > 1:
        part.unlink()  # a hard link would let appends change a file elsewhere: start afresh
    try:
        return _download(
            entry,
            dest,
            part,
            source,
            retries=retries,
            backoff=backoff,
            timeout=timeout,
            bar_factory=bar_factory,
            limits=limits,
        )
    except BaseException:
        # nothing half-written: an empty .part is no resume point (a non-empty one is kept for resume)
        with contextlib.suppress(OSError):
            if part.is_file() and not part.is_symlink() and part.stat().st_size == 0:
                part.unlink()
        raise


def _download(
    entry: FileEntry,
    dest: Path,
    part: Path,
    source: _Source,
    *,
    retries: int,
    backoff: float,
    timeout: float,
    bar_factory,
    limits: _Limits,
) -> FetchOutcome:
    # A .part found on disk may belong to an older version of the file: if it fails the hash, one
    # fresh download is due, even when it was already full size (so no request was made for it).
    resumed = part.exists() and part.stat().st_size > 0
    fresh_retry_left = True
    attempt = 0
    with bar_factory(entry) as bar:
        while True:
            offset = part.stat().st_size if part.exists() else 0
            if offset > entry.bytes:
                part.unlink()
                offset = 0
            if bar is not None:
                bar.reset(total=entry.bytes)
                bar.update(offset)
            try:
                if offset < entry.bytes or not part.exists():
                    with open(part, "ab") as fh:
                        started = source.copy_into(entry.name, fh, offset, entry.bytes, timeout, bar, limits)
                    resumed = resumed or started > 0
            except _Transient as exc:
                if part.exists() and (part.stat().st_size == 0 or isinstance(exc, _RangeRefused)):
                    part.unlink()
                attempt += 1
                if attempt > retries:
                    kept = part.stat().st_size if part.exists() else 0
                    hint = f"; {kept} bytes kept in {part.name}, run fetch again to resume" if kept else ""
                    raise FetchError(f"{entry.name}: {exc}; gave up after {retries} retries{hint}") from None
                _backoff_wait(backoff * 2 ** (attempt - 1), limits.stop)
                continue
            except _Permanent as exc:
                raise FetchError(f"{entry.name}: {exc}") from None
            digest = sha256_file(part)
            if digest == entry.sha256:
                os.replace(part, dest)
                return FetchOutcome(entry.name, dest, "resumed" if resumed else "downloaded", entry.bytes)
            part.unlink()
            if resumed and fresh_retry_left:
                # The kept .part may belong to an older version of the file: one clean attempt.
                fresh_retry_left = False
                resumed = False
                continue
            raise FetchError(
                f"{entry.name}: SHA-256 mismatch (expected {entry.sha256}, got {digest}); "
                "corrupt download deleted"
            )


# --- the public entry point -------------------------------------------------------------------


def select_entries(entries: list[FileEntry], variants: Iterable[str] | None) -> list[FileEntry]:
    """Entries whose variant or file name is in ``variants`` (all when None)."""
    if not variants:
        return list(entries)
    wanted = list(dict.fromkeys(variants))
    by_key = {}
    for e in entries:
        by_key[e.variant] = e
        by_key[e.name] = e
    unknown = [v for v in wanted if v not in by_key]
    if unknown:
        known = ", ".join(e.variant for e in entries)
        raise UserError(
            f"--variants: unknown {printable(', '.join(unknown))} (manifest lists: {printable(known, 400)})"
        )
    return list(dict.fromkeys(by_key[v] for v in wanted))


def fetch(
    manifest: str | os.PathLike | dict,
    out: str | os.PathLike,
    variants: Iterable[str] | None = None,
    base_url: str | None = None,
    workers: int = 4,
    retries: int = 4,
    backoff: float = 1.0,
    timeout: float = 60.0,
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
    source = _Source.parse(base)

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
        limits = _Limits(min_speed, speed_window, threading.Event())
        with ThreadPoolExecutor(max_workers=min(workers, max(1, len(selected)))) as pool:
            futures = [
                pool.submit(
                    _fetch_one,
                    e,
                    out_path,
                    source,
                    retries=retries,
                    backoff=backoff,
                    timeout=timeout,
                    bar_factory=bar_factory,
                    limits=limits,
                )
                for e in selected
            ]
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
    "FetchError",
    "FetchOutcome",
    "FileEntry",
    "check_plain_name",
    "fetch",
    "read_manifest",
    "fetchable_entries",
    "select_entries",
    "sha256_file",
    "verify_files",
]
