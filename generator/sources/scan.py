"""Finding the files of a HAM10000 folder, and fingerprinting their content.

The walk follows folder links (image folders may be links to elsewhere) but enters each real folder
once, so a link back into the source (a loop) or a second link to one folder is skipped with a
warning instead of walking forever. A FIFO, socket, device or broken link where a table, image or
mask belongs is refused (reading a FIFO would block). An image id found twice (``part_1`` and
``part_2``, or a ``.jpg`` and a ``.jpeg``) is accepted when both files are identical, as Dataverse
re-uploads can be, and refused when they differ.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from ..variants.manifest import sha256_file
from .layout import (
    IMAGE_NAME,
    MASK_NAME,
    METADATA_STEM,
    TABLE_SUFFIXES,
    TEST_IMAGES_DIR_PREFIX,
    TEST_TABLE_PREFIX,
)

logger = logging.getLogger(__name__)

FINGERPRINT_VERSION = b"ham10000-source/2\n"  # /1 hashed file names and sizes only


@dataclass
class Inventory:
    """The files of a source folder by role; images and masks by image id."""

    metadata: list[Path] = field(default_factory=list)
    test_tables: list[Path] = field(default_factory=list)
    train_images: dict[str, Path] = field(default_factory=dict)
    test_images: dict[str, Path] = field(default_factory=dict)
    masks: dict[str, Path] = field(default_factory=dict)
    n_files: int = 0


class ContentDigests:
    """SHA-256 of files, each read once per load (duplicates, records and the fingerprint share them)."""

    def __init__(self) -> None:
        self._known: dict[Path, str] = {}

    def __call__(self, path: Path) -> str:
        if path not in self._known:
            try:
                self._known[path] = sha256_file(path)
            except OSError as exc:
                raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from None
        return self._known[path]


def _table_name_matches(name: str, prefix: str) -> bool:
    if not name.startswith(prefix):
        return False
    suffix = name[len(prefix) :]
    if prefix == METADATA_STEM:
        return suffix.lower() in TABLE_SUFFIXES
    return Path(name).suffix.lower() in TABLE_SUFFIXES


def _folder_key(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _require_regular(path: Path) -> None:
    """UserError unless ``path`` is (a link to) a regular file."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise UserError(f"{path}: broken link (its target does not exist)") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
        raise UserError(f"{path}: not a regular file ({kind}); put the file itself there")


def _walk(root: Path) -> Iterable[tuple[Path, list[str]]]:
    """(folder, sorted visible file names) for each real folder below ``root`` once, in sorted order."""
    visited = {_folder_key(root)}

    def unreadable(exc: OSError) -> None:
        logger.warning(f"{exc.filename}: cannot read this folder ({exc.strerror or exc}); skipped")

    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=unreadable):
        here = Path(dirpath)
        keep = []
        for name in sorted(d for d in dirnames if not d.startswith(".")):
            key = _folder_key(here / name)
            if key is not None and key in visited:
                logger.warning(
                    f"{here / name}: links to a folder already scanned ({os.path.realpath(here / name)}); skipped"
                )
                continue
            visited.add(key)
            keep.append(name)
        dirnames[:] = keep
        yield here, sorted(n for n in filenames if not n.startswith("."))


def scan(root: Path, digest: ContentDigests) -> Inventory:
    inv = Inventory()
    found: dict[str, dict[str, list[Path]]] = {"train": {}, "test": {}, "mask": {}}
    for here, names in _walk(root):
        in_test = any(p.startswith(TEST_IMAGES_DIR_PREFIX) for p in here.relative_to(root).parts)
        for name in names:
            inv.n_files += 1
            path = here / name
            if _table_name_matches(name, METADATA_STEM):
                _require_regular(path)
                inv.metadata.append(path)
            elif _table_name_matches(name, TEST_TABLE_PREFIX) and not in_test:
                _require_regular(path)
                inv.test_tables.append(path)
            elif m := IMAGE_NAME.match(name):
                _require_regular(path)
                found["test" if in_test else "train"].setdefault(m.group(1), []).append(path)
            elif m := MASK_NAME.match(name):
                _require_regular(path)
                found["mask"].setdefault(m.group(1), []).append(path)
    inv.train_images = _one_per_id(found["train"], digest)
    inv.test_images = _one_per_id(found["test"], digest)
    inv.masks = _one_per_id(found["mask"], digest)
    return inv


def _one_per_id(candidates: dict[str, list[Path]], digest: ContentDigests) -> dict[str, Path]:
    """The first file (in sorted walk order) per id; UserError when two files of one id differ."""
    chosen = {}
    for image_id, paths in candidates.items():
        for other in paths[1:]:
            if digest(other) != digest(paths[0]):
                raise UserError(
                    f"{paths[0]} and {other}: two different files for {image_id} (keep the right one)"
                )
        chosen[image_id] = paths[0]
    return chosen


def fingerprint(
    tables: Iterable[Path | None], records: Iterable, synthetic: bool, digest: ContentDigests
) -> str:
    """SHA-256 over the content of everything a build reads: the tables, every record's image and mask
    (with their split and names) and whether the folder is marked synthetic."""
    h = hashlib.sha256(FINGERPRINT_VERSION)
    for table in tables:
        h.update((digest(table) if table else "-").encode() + b"\n")
    for rec in records:
        mask = f"{rec.mask_path.name}:{rec.mask_sha256}" if rec.mask_path else "-"
        h.update(f"{rec.split}:{rec.image_path.name}:{rec.image_sha256}:{mask}\n".encode())
    h.update(b"synthetic\n" if synthetic else b"real\n")
    return h.hexdigest()
