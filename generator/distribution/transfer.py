"""Downloading one file of a manifest: resume, retry, verify, rename.

Bytes go to ``NAME.part``; an existing ``.part`` is resumed with an HTTP ``Range`` request (or a
seek, for local sources). Transient failures (cut connections, timeouts, 5xx, transfers slower than
``MIN_SPEED``) are retried with exponential backoff, resuming each time. The ``.part`` file's SHA-256
is checked; only then is it renamed onto ``NAME`` (atomic). A mismatch deletes the ``.part`` and is
reported (one fresh retry if the bytes came from a resumed download, since a stale ``.part`` may
belong to an older file).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from ..userio import printable
from ..variants.manifest import sha256_file
from .untrusted import PART_SUFFIX, PLAIN_NAME, USER_AGENT, FileEntry, file_url_to_path, is_url, url_scheme

CHUNK = 1 << 20
_RETRY_HTTP_CODES = {408, 425, 429, 500, 502, 503, 504}
# A transfer slower than MIN_SPEED bytes/s over SPEED_WINDOW_S seconds is cut and retried (resuming):
# the per-read timeout alone never trips on a server that drips one byte a second.
MIN_SPEED = 1024
SPEED_WINDOW_S = 30.0


@dataclass(frozen=True)
class Limits:
    """How often a transfer is retried and how long it may take, and the flag that stops every worker
    after a Ctrl-C."""

    retries: int = 4
    backoff: float = 1.0
    """Seconds before the first retry; doubled for each further one."""
    timeout: float = 60.0
    """Seconds one network read may take."""
    min_speed: float = MIN_SPEED
    window: float = SPEED_WINDOW_S
    stop: threading.Event | None = None


class FetchError(UserError):
    """One or more files could not be fetched or failed verification (CLI exit code 2)."""


@dataclass(frozen=True)
class FetchOutcome:
    name: str
    path: Path
    status: str  # "present" | "downloaded" | "resumed"
    bytes: int


# --- sources ----------------------------------------------------------------------------------


class _Transient(Exception):
    """A failure worth retrying (resuming from what is already in the .part file)."""


class _RangeRefused(_Transient):
    """The server would not continue where the .part file ends: retry from byte 0."""


class _Permanent(Exception):
    """A failure retrying cannot fix (404, a short local file...)."""


@dataclass(frozen=True)
class Source:
    """Where the files are: an http(s) base URL or a local folder."""

    kind: str  # "http" | "local"
    base: str

    @classmethod
    def parse(cls, base: str) -> Source:
        scheme = url_scheme(base) if is_url(base) else ""
        if scheme in ("http", "https"):
            return cls("http", base if base.endswith("/") else base + "/")
        path = file_url_to_path(base) if scheme == "file" else Path(base)
        if not path.is_dir():
            raise UserError(f"{printable(base)}: base is not a folder")
        return cls("local", str(path.resolve()))

    def describe(self, name: str) -> str:
        return self.base + urllib.parse.quote(name) if self.kind == "http" else str(Path(self.base) / name)

    def copy_into(self, name: str, fh, offset: int, expected: int, bar, limits: Limits = Limits()) -> int:
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
                urllib.request.Request(url, headers=headers), timeout=limits.timeout
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


def _copy_capped(src, dst, remaining: int, bar, limits: Limits = Limits()) -> None:
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
    if not PLAIN_NAME.fullmatch(name) or ".." in name:
        raise UserError(f"{printable(repr(name))}: not a plain file name")
    target = out / name
    if target.parent != out or os.path.dirname(os.path.normpath(target)) != str(out):
        raise UserError(f"{printable(name)}: would be written outside {out}")
    return target


def fetch_one(
    entry: FileEntry, out: Path, source: Source, bar_factory, limits: Limits = Limits()
) -> FetchOutcome:
    """Make ``out/NAME`` the manifest's file: kept if already right, else downloaded (resuming)."""
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
        return _download(entry, dest, part, source, bar_factory, limits)
    except BaseException:
        # nothing half-written: an empty .part is no resume point (a non-empty one is kept for resume)
        with contextlib.suppress(OSError):
            if part.is_file() and not part.is_symlink() and part.stat().st_size == 0:
                part.unlink()
        raise


def _download(
    entry: FileEntry, dest: Path, part: Path, source: Source, bar_factory, limits: Limits
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
                        started = source.copy_into(entry.name, fh, offset, entry.bytes, bar, limits)
                    resumed = resumed or started > 0
            except _Transient as exc:
                if part.exists() and (part.stat().st_size == 0 or isinstance(exc, _RangeRefused)):
                    part.unlink()
                attempt += 1
                if attempt > limits.retries:
                    kept = part.stat().st_size if part.exists() else 0
                    hint = f"; {kept} bytes kept in {part.name}, run fetch again to resume" if kept else ""
                    raise FetchError(
                        f"{entry.name}: {exc}; gave up after {limits.retries} retries{hint}"
                    ) from None
                _backoff_wait(limits.backoff * 2 ** (attempt - 1), limits.stop)
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
