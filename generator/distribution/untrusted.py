"""A manifest from an untrusted place: read it, and check every field fetch relies on before any file
request is made.

File names must be plain names (no separators, no ``..``, not absolute, no control characters),
sizes non-negative integers and hashes 64 lowercase hex digits, and ``base_url`` an http(s) or
file URL, so a hostile manifest never reaches the network. Manifests are read from ``http(s)://``
URLs, ``file://`` URLs, files and folders holding ``manifest.json``.
"""

from __future__ import annotations

import http.client
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..errors import UserError
from ..userio import parse_json, printable
from ..variants.manifest import FORMAT, MANIFEST_NAME, SHA256_HEX

MANIFEST_FORMAT_PREFIX = FORMAT.rsplit("/", 1)[0] + "/"  # any version of the manifest format
PART_SUFFIX = ".part"
MAX_MANIFEST_BYTES = 16 << 20
USER_AGENT = f"ham-artefacts/{__version__} (+urllib)"

# A plain file name: starts with a letter or digit, then letters, digits, dot, dash, underscore.
# This alone excludes separators, absolute paths, NUL and control characters, and '.'/'..'.
PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


@dataclass(frozen=True)
class FileEntry:
    name: str
    variant: str
    sha256: str
    bytes: int


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
    if not PLAIN_NAME.fullmatch(name):
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
        if not isinstance(digest, str) or not SHA256_HEX.fullmatch(digest):
            raise UserError(f"{at}.sha256: must be 64 lowercase hex digits, got {printable(repr(digest))}")
        variant = item.get("variant", name.rsplit(".", 1)[0])
        if not isinstance(variant, str) or not PLAIN_NAME.fullmatch(variant):
            raise UserError(f"{at}.variant: must be a plain name, got {printable(repr(variant))}")
        entries.append(FileEntry(name=name, variant=variant, sha256=digest, bytes=size))
    return entries


def is_url(location: str) -> bool:
    return url_scheme(location) in ("http", "https", "file")


def file_url_to_path(url: str) -> Path:
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
    scheme = url_scheme(location) if is_url(location) else ""
    if scheme in ("http", "https"):
        try:
            req = urllib.request.Request(location, headers={"User-Agent": USER_AGENT})
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                data = resp.read(MAX_MANIFEST_BYTES + 1)
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            raise UserError(f"{shown}: cannot read manifest ({printable(exc)})") from None
        default_base = location.rsplit("/", 1)[0] + "/"
    else:
        path = file_url_to_path(location) if scheme == "file" else Path(location)
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
