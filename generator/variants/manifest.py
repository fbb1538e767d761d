"""manifest.json of an output folder: checksums, counts and content digests; verification.

Two digests per file:

* ``sha256`` of the bytes: exact, but changes with the zlib/libjpeg/HDF5 versions that wrote it.
* ``content_digest``: SHA-256 over what a reader gets back -- the decoded pixels, both masks,
  labels, image ids and artefact kinds, row by row. It is stable across compression-library
  versions, so the repository's golden ``data_manifest.json`` survives library upgrades.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from .. import CLASSES
from ..errors import UserError
from ..userio import printable

if TYPE_CHECKING:
    import numpy as np

FORMAT = "ham-artefacts-manifest/1"
MANIFEST_NAME = "manifest.json"
CONTENT_DIGEST_VERSION = b"ham-artefacts-content/1\n"
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
"""A SHA-256 as the manifest writes it: 64 lowercase hex digits (use ``fullmatch``)."""

_TOP_KEYS: dict[str, type | tuple[type, ...]] = {
    "format": str,
    "generator_version": str,
    "seed": int,
    "source_fingerprint": str,
    "templates": str,
    "image_size": (list, type(None)),
    "synthetic": bool,
    "base_url": (str, type(None)),
    "licence": str,
    "citation": str,
    "files": list,
}
_FILE_KEYS: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "variant": str,
    "split": str,
    "description": str,
    "sha256": str,
    "bytes": int,
    "rows": int,
    "class_counts": dict,
    "artefact_counts": dict,
    "n_artefact": int,
    "content_digest": str,
}


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    """Hex SHA-256 of a file's bytes, read in ``chunk``-byte blocks (the project's one file hash)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


# --- content digest ---------------------------------------------------------------------------


def row_digest(image: np.ndarray, lesion_mask: np.ndarray, artefact_mask: np.ndarray) -> bytes:
    """32-byte digest of one row's decoded pixels (uint8 HxWx3) and 0/1 masks."""
    import numpy as np  # here: fetch, info and publish read manifests without numpy

    h = hashlib.sha256()
    for array in (
        np.asarray(image, np.uint8),
        (np.asarray(lesion_mask) > 0),
        (np.asarray(artefact_mask) > 0),
    ):
        array = np.ascontiguousarray(array.astype(np.uint8))
        h.update(repr(array.shape).encode())
        h.update(array.tobytes())
    return h.digest()


def content_digest_of_rows(rows: Iterable[tuple[bytes, str, int, bool, str]]) -> str:
    """Digest from (row_digest, image_id, label, has_artefact, kind) tuples, in file order."""
    h = hashlib.sha256(CONTENT_DIGEST_VERSION)
    h.update(("\t".join(CLASSES) + "\n").encode())
    for digest, image_id, label, has_artefact, kind in rows:
        h.update(digest)
        h.update(f"{image_id}\t{int(label)}\t{int(bool(has_artefact))}\t{kind}\n".encode())
    return h.hexdigest()


def content_digest(path: str | os.PathLike) -> str:
    """Content digest of a variant file, decoding every row (slow: use for verification)."""
    from .store import VariantReader

    with VariantReader(path) as reader:
        rows = (
            (
                row_digest(reader.image(i), reader.lesion_mask(i), reader.artefact_mask(i)),
                reader.image_ids[i],
                int(reader.labels[i]),
                bool(reader.has_artefact[i]),
                reader.artefact_kinds[i],
            )
            for i in range(len(reader))
        )
        return content_digest_of_rows(rows)


# --- entries ----------------------------------------------------------------------------------


def file_entry(
    path: str | os.PathLike,
    spec,
    labels: Iterable[int],
    artefact_kinds: Iterable[str],
    digest: str,
    known_kinds: Iterable[str] = (),
) -> dict:
    """The manifest entry of the written variant file ``path`` of ``spec`` (a VariantSpec): ``labels``
    of every row, ``artefact_kinds`` of every row carrying an artefact, its content ``digest``;
    ``known_kinds`` are counted even when no row has them (the kinds the build draws from)."""
    labels = [int(label) for label in labels]
    artefact_counts = {kind: 0 for kind in known_kinds}
    n_artefact = 0
    for kind in artefact_kinds:
        artefact_counts[kind] = artefact_counts.get(kind, 0) + 1
        n_artefact += 1
    return {
        "name": Path(path).name,
        "variant": spec.name,
        "split": spec.split,
        "description": spec.description,
        "sha256": sha256_file(path),
        "bytes": Path(path).stat().st_size,
        "rows": len(labels),
        "class_counts": {c: labels.count(i) for i, c in enumerate(CLASSES)},
        "artefact_counts": artefact_counts,
        "n_artefact": n_artefact,
        "content_digest": digest,
    }


def entry_of_file(path: str | os.PathLike) -> dict:
    """The manifest entry of a variant file written outside ``generate`` (the small files of tests and
    benchmarks), read back from the file: its variant (a registry name) is its file name's stem."""
    from . import VARIANTS
    from .store import VariantReader

    path = Path(path)
    if path.stem not in VARIANTS:
        raise UserError(f"{path}: {path.stem!r} is not a variant name")
    with VariantReader(path) as reader:
        labels = reader.labels.tolist()
        kinds = [kind for kind, has in zip(reader.artefact_kinds, reader.has_artefact, strict=True) if has]
    return file_entry(path, VARIANTS[path.stem], labels, kinds, content_digest(path))


def write_manifest_of_files(
    folder: str | os.PathLike, seed: int = 0, source_fingerprint: str = "none", templates: str = "none"
) -> dict:
    """Write ``<folder>/manifest.json`` listing the variant files already there (:func:`entry_of_file`,
    registry order), as ``generate`` would for them; returns it. For the small synthetic folders of
    tests and benchmarks: the consumers read a folder only through its manifest."""
    from .. import __version__
    from ..atomic import write_json_atomic
    from ..licences import MANIFEST_CITATION, SYNTHETIC_LICENCE
    from . import VARIANTS

    folder = Path(folder)
    files = [entry_of_file(folder / f"{name}.h5") for name in VARIANTS if (folder / f"{name}.h5").is_file()]
    manifest = {
        "format": FORMAT,
        "generator_version": __version__,
        "seed": int(seed),
        "source_fingerprint": source_fingerprint,
        "templates": templates,
        "image_size": None,
        "synthetic": True,
        "base_url": None,
        "licence": SYNTHETIC_LICENCE,
        "citation": MANIFEST_CITATION,
        "files": files,
    }
    validate_manifest(manifest, str(folder / MANIFEST_NAME))
    write_json_atomic(folder / MANIFEST_NAME, manifest)
    return manifest


# --- loading and verification -----------------------------------------------------------------


def load_manifest(path_or_dir: str | os.PathLike) -> dict:
    """Read and validate a manifest (a file, or a folder holding manifest.json); UserError if malformed."""
    path = Path(path_or_dir)
    if path.is_dir():
        path = path / MANIFEST_NAME
    if not path.is_file():
        raise UserError(f"{path}: manifest not found")
    from ..userio import read_json

    manifest = read_json(path)
    validate_manifest(manifest, str(path))
    return manifest


def _check_keys(obj: dict, spec: dict, where: str) -> None:
    """Every key of ``spec`` present in ``obj`` with its type (a bool is not an int here)."""
    for key, kind in spec.items():
        if key not in obj:
            raise UserError(f"{where}: missing key {key!r}")
        if not isinstance(obj[key], kind) or (kind is int and isinstance(obj[key], bool)):
            raise UserError(f"{where}: {key!r} has the wrong type")


def validate_manifest(manifest, where: str = "manifest") -> None:
    if not isinstance(manifest, dict):
        raise UserError(f"{where}: top level must be an object")
    _check_keys(manifest, _TOP_KEYS, where)
    if manifest["format"] != FORMAT:
        raise UserError(f"{where}: format {printable(repr(manifest['format']))} is not {FORMAT!r}")
    names = set()
    for i, entry in enumerate(manifest["files"]):
        at = f"{where}: files[{i}]"
        if not isinstance(entry, dict):
            raise UserError(f"{at}: must be an object")
        _check_keys(entry, _FILE_KEYS, at)
        for key in ("sha256", "content_digest"):
            if not SHA256_HEX.fullmatch(entry[key]):
                raise UserError(f"{at}: {key!r} is not 64 hex digits")
        name = entry["name"]
        if "/" in name or "\\" in name or name.startswith(".") or not name.endswith(".h5"):
            raise UserError(f"{at}: bad file name {printable(repr(name))}")
        if name in names:
            raise UserError(f"{at}: duplicate file {printable(repr(name))}")
        names.add(name)


def check_entry(folder: Path, entry: dict, content: bool = False) -> str | None:
    """None if the file matches its manifest entry, else a one-line problem naming the file."""
    path = Path(folder) / entry["name"]
    if not path.is_file():
        return f"{entry['name']}: missing"
    size = path.stat().st_size
    if size != entry["bytes"]:
        return f"{entry['name']}: {size} bytes, manifest says {entry['bytes']}"
    if sha256_file(path) != entry["sha256"]:
        return f"{entry['name']}: SHA-256 does not match the manifest"
    if content:
        try:
            digest = content_digest(path)
        except Exception as exc:  # noqa: BLE001 - any decoding failure is a verification failure
            return f"{entry['name']}: unreadable ({exc})"
        if digest != entry["content_digest"]:
            return f"{entry['name']}: content digest does not match the manifest"
    return None


def verify_dir(folder: str | os.PathLike, content: bool = False, progress: bool = False) -> list[str]:
    """Problems found in an output folder (empty list: complete and intact).

    UserError only when ``folder`` is not a folder; a missing or malformed manifest is a problem,
    since that is what an interrupted run leaves behind.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: not a folder")
    try:
        manifest = load_manifest(folder / MANIFEST_NAME)
    except UserError as exc:
        return [f"{MANIFEST_NAME}: {exc}"]
    if not manifest["files"]:
        return [f"{MANIFEST_NAME}: lists no files"]
    entries = manifest["files"]
    if progress:
        from tqdm import tqdm

        entries = tqdm(entries, desc="verify", unit="file")
    return [p for entry in entries if (p := check_entry(folder, entry, content)) is not None]
