"""Consumers open a variant file only through its manifest entry.

``train``, ``predict``, ``gradcam`` and :class:`training.datasets.HAMArtefacts` read the frozen files through
:func:`open_checked`: the file must be the one ``manifest.json`` lists -- its size, its SHA-256, its row
count and its class counts -- or the consumer stops with one line naming the file and what differs.

The cost is designed, not assumed (``benchmarks/verify_cost.py`` measures it): the size, the row count and
the class counts are checked on every open (microseconds); the full SHA-256 is computed the first time a
file is opened and then trusted while its identity on disk stands -- device, inode, size and modification
time in nanoseconds, the way ``git`` and ``make`` trust a file they have seen. The trusted digests live in
one small JSON file in the user's cache folder (``$XDG_CACHE_HOME/ham-artefacts``, else
``~/.cache/ham-artefacts``), never in the data folder, which may be read-only or shared. A replaced or
rewritten file gets a new inode or mtime and is hashed again; flipping bytes in place without changing the
mtime is the one thing the cache cannot see, which is what ``ham-artefacts verify`` is for.

Every run records what it read (:func:`data_record`: the manifest's SHA-256 and each file's SHA-256) in its
``config.json``, and a resumed run refuses data that differs (:func:`refuse_other_data`).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .. import CLASSES
from ..errors import UserError
from .manifest import MANIFEST_NAME, load_manifest, sha256_file

if TYPE_CHECKING:
    from .store import VariantReader

logger = logging.getLogger(__name__)

CACHE_FILE = "sha256-trusted.json"
CACHE_LIMIT = 4096  # entries kept; the oldest are dropped first


@dataclass(frozen=True)
class CheckedFile:
    """A variant file that matched its manifest entry."""

    path: Path
    variant: str
    sha256: str
    rows: int
    content_digest: str
    reader: VariantReader = field(compare=False, repr=False)
    """The file opened for reading (its small columns already read), for the consumer to keep."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ham-artefacts"


def _stat_key(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"dev": st.st_dev, "ino": st.st_ino, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _read_cache() -> dict[str, dict]:
    try:
        data = json.loads((cache_dir() / CACHE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # no cache yet, or a damaged one: hash again (the cache is only ever a shortcut)
    return data if isinstance(data, dict) else {}


def _write_cache(cache: dict[str, dict]) -> None:
    from ..atomic import write_json_atomic

    if len(cache) > CACHE_LIMIT:
        cache = dict(list(cache.items())[-CACHE_LIMIT:])
    try:
        cache_dir().mkdir(parents=True, exist_ok=True)
        write_json_atomic(cache_dir() / CACHE_FILE, cache)
    except OSError as exc:  # a read-only home costs a re-hash next time, never a failed run
        logger.debug("could not write the digest cache %s: %s", cache_dir() / CACHE_FILE, exc)


def trusted_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of ``path``, computed once and then trusted while its device, inode, size and mtime stand."""
    path = Path(path).resolve()
    key = _stat_key(path)
    cache = _read_cache()
    hit = cache.get(str(path))
    if (
        isinstance(hit, dict)
        and all(hit.get(k) == v for k, v in key.items())
        and isinstance(hit.get("sha256"), str)
    ):
        return hit["sha256"]
    digest = sha256_file(path)
    if _stat_key(path) == key:  # not rewritten while we read it
        cache.pop(str(path), None)
        cache[str(path)] = {**key, "sha256": digest}
        _write_cache(cache)
    return digest


def _entry(manifest: dict, variant: str, where: Path) -> dict:
    for entry in manifest["files"]:
        if entry["variant"] == variant:
            return entry
    listed = ", ".join(e["variant"] for e in manifest["files"]) or "none"
    raise UserError(f"{where}: lists no variant {variant!r} (it lists {listed})")


def manifest_of(data_dir: str | os.PathLike) -> dict:
    """The manifest of ``data_dir``; UserError naming it when there is none or it is malformed."""
    manifest_path = Path(data_dir) / MANIFEST_NAME
    if not Path(data_dir).is_dir():
        raise UserError(f"{data_dir}: data folder not found")
    if not manifest_path.is_file():
        raise UserError(
            f"{manifest_path}: no manifest: a data folder is read only through its manifest "
            "(generate or fetch it again)"
        )
    return load_manifest(manifest_path)


def listed_variants(manifest: dict) -> list[str]:
    """The variants a manifest lists, in its order."""
    return [entry["variant"] for entry in manifest["files"]]


def open_checked(data_dir: str | os.PathLike, variant: str, manifest: dict | None = None) -> CheckedFile:
    """The variant file of ``data_dir`` if it is the one its ``manifest.json`` lists; UserError otherwise."""
    from .store import VariantReader

    data_dir = Path(data_dir)
    manifest_path = data_dir / MANIFEST_NAME
    if manifest is None:
        manifest = manifest_of(data_dir)
    entry = _entry(manifest, variant, manifest_path)
    path = data_dir / entry["name"]
    fix = f"run `ham-artefacts verify {data_dir}`, then fetch or generate the folder again"
    if not path.is_file():
        raise UserError(f"{path}: missing (manifest.json lists it; {fix})")
    size = path.stat().st_size
    if size != entry["bytes"]:
        raise UserError(
            f"{path}: {size} bytes, manifest.json says {entry['bytes']} (not the file it lists; {fix})"
        )
    digest = trusted_sha256(path)
    if digest != entry["sha256"]:
        raise UserError(
            f"{path}: SHA-256 {digest[:12]}… differs from manifest.json's {entry['sha256'][:12]}… "
            f"(damaged, or from another build; {fix})"
        )
    reader = VariantReader(path)
    if len(reader) != entry["rows"]:
        raise UserError(f"{path}: {len(reader)} rows, manifest.json says {entry['rows']} ({fix})")
    counts = {cls: int((reader.labels == i).sum()) for i, cls in enumerate(CLASSES)}
    if counts != {cls: int(entry["class_counts"].get(cls, 0)) for cls in CLASSES}:
        raise UserError(
            f"{path}: class counts {counts} differ from manifest.json's {entry['class_counts']} ({fix})"
        )
    return CheckedFile(path, variant, digest, entry["rows"], entry["content_digest"], reader)


def open_split(
    data_dir: str | os.PathLike, variants: Iterable[str], reference: str, manifest: dict | None = None
) -> dict[str, CheckedFile]:
    """``reference`` and each of ``variants`` through :func:`open_checked`, by name (the reference first);
    each must hold the reference's images in its order (the variants of a split differ only in
    which images carry an artefact), else UserError naming the first file that differs."""
    manifest = manifest if manifest is not None else manifest_of(data_dir)
    files = {reference: open_checked(data_dir, reference, manifest)}
    base = files[reference]
    for name in variants:
        if name not in files:
            files[name] = opened = open_checked(data_dir, name, manifest)
            check_same_images(base.reader.image_ids, opened.reader.image_ids, opened.path, base.path)
    return files


def check_same_images(
    reference: Sequence[str], other: Sequence[str], path: Path, reference_path: Path
) -> None:
    """Every variant of a split holds the same images in the same order; name the first that differs."""
    if list(reference) == list(other):
        return
    for i, (a, b) in enumerate(zip(reference, other, strict=False)):
        if a != b:
            raise UserError(
                f"{path}: row {i} is image {b}, {reference_path.name} has {a} (files of different builds)"
            )
    raise UserError(
        f"{path}: {len(other)} images, {reference_path.name} has {len(reference)} (files of different builds)"
    )


def data_record(data_dir: str | os.PathLike, files: Iterable[CheckedFile]) -> dict:
    """What a run read, for its config.json: the manifest's SHA-256 and each file's SHA-256."""
    manifest_path = Path(data_dir) / MANIFEST_NAME
    return {
        "manifest_sha256": sha256_file(manifest_path),
        "files": {f.variant: f.sha256 for f in sorted(files, key=lambda f: f.variant)},
    }


def refuse_other_data(recorded: dict | None, current: dict, run_dir: str | os.PathLike) -> None:
    """A resumed run reads the data it started on: UserError naming the files that differ."""
    if not recorded:
        return  # a run from before data records: nothing to compare
    before = recorded.get("files", {})
    # the files both read: a resume may predict where the start did not (predict is a machine setting)
    differ = sorted(
        name for name in set(before) & set(current["files"]) if before[name] != current["files"][name]
    )
    if differ:
        raise UserError(
            f"{run_dir}: started on other data ({', '.join(differ)} differ from what config.json records); "
            "resume it on the data it started on, or train into another folder"
        )
