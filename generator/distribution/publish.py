"""Prepare an upload folder (Zenodo or any static host) from a generated data folder.

The folder holds the variant files (hard links when the file system allows, else copies), the
manifest with ``base_url`` filled in, the label CSVs, the example images, a README dataset card
(``generator.distribution.cards``: Hugging Face front matter; layout, licence and attribution of HAM10000 and of the artefact
templates, citation) and ``croissant.json`` (MLCommons Croissant, see ``generator.distribution.cards``). It is
built beside the target under a temporary name and renamed into place only when complete.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import urllib.parse
from pathlib import Path

from ..errors import UserError


def _check_publish_url(base_url: str) -> str:
    if not isinstance(base_url, str) or not base_url:
        raise UserError("--base-url: required")
    from ..userio import printable
    from .untrusted import url_scheme

    scheme = url_scheme(base_url, "--base-url")
    parts = urllib.parse.urlsplit(base_url)
    if scheme not in ("http", "https", "file") or (scheme != "file" and not parts.netloc):
        raise UserError(
            f"--base-url: {printable(repr(base_url))} must be an http://, https:// or file:// URL"
        )
    return base_url if base_url.endswith("/") else base_url + "/"


def _link_or_copy(src: Path, dst: Path) -> str:
    try:
        os.link(src, dst)
        return "linked"
    except OSError:
        shutil.copy2(src, dst)
        return "copied"


def _apply_umask(folder: Path) -> None:
    """Give the folder and the files created here (not hard links) the usual umask modes.

    mkdtemp and the atomic writers create 0700 folders / 0600 files; an upload folder is meant to
    be read by a web server or another user.
    """
    mask = os.umask(0)
    os.umask(mask)
    folder.chmod(0o777 & ~mask)
    for path in folder.rglob("*"):
        if path.is_dir():
            path.chmod(0o777 & ~mask)
        elif path.stat().st_nlink == 1:
            path.chmod(0o666 & ~mask)


def publish(
    data_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    base_url: str,
    variants=None,
    verify: bool = True,
    progress: bool = True,
) -> Path:
    """Build the upload folder ``out_dir`` from ``data_dir``; returns ``out_dir``."""
    from tqdm import tqdm

    from ..atomic import write_json_atomic
    from ..variants.labels import LABELS_DIR, write_label_csvs
    from ..variants.manifest import MANIFEST_NAME, sha256_file
    from .cards import write_cards
    from .untrusted import fetchable_entries, read_manifest, select_entries

    base_url = _check_publish_url(base_url)
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise UserError(f"{data_dir}: --data is not a folder")
    manifest, _ = read_manifest(data_dir)
    entries = select_entries(fetchable_entries(manifest, where=str(data_dir / MANIFEST_NAME)), variants)
    out_dir = Path(out_dir)
    if out_dir.resolve() == data_dir.resolve():
        raise UserError(f"{out_dir}: --out must differ from --data")
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise UserError(f"{out_dir}: --out exists and is not an empty folder")
    for e in entries:
        if not (data_dir / e.name).is_file():
            raise UserError(f"{data_dir / e.name}: listed in the manifest but missing")

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".partial", dir=out_dir.parent))
    try:
        modes = set()
        for e in tqdm(entries, desc="publish", unit="file", disable=not progress):
            src = data_dir / e.name
            if src.stat().st_size != e.bytes or (verify and sha256_file(src) != e.sha256):
                raise UserError(f"{src}: does not match its manifest entry (size or SHA-256); regenerate")
            modes.add(_link_or_copy(src, tmp / e.name))
        names = {e.variant for e in entries}
        src_labels = data_dir / LABELS_DIR
        have = {p.name for p in src_labels.glob("*.csv")} if src_labels.is_dir() else set()
        wanted = {f"{v}_{suffix}.csv" for v in names for suffix in ("bissoto", "artefacts")}
        if wanted <= have:
            (tmp / LABELS_DIR).mkdir()
            for name in sorted(wanted):
                shutil.copy2(src_labels / name, tmp / LABELS_DIR / name)
        else:
            write_label_csvs(tmp, variants=names, progress=progress)
        if (data_dir / "examples").is_dir():
            shutil.copytree(data_dir / "examples", tmp / "examples")
        selected = {e.name for e in entries}
        published = dict(manifest, base_url=base_url)
        published["files"] = [f for f in manifest["files"] if f["name"] in selected]
        write_json_atomic(tmp / MANIFEST_NAME, published)
        write_cards(tmp, published, linked="linked" in modes)
        _apply_umask(tmp)
        with contextlib.suppress(FileNotFoundError):
            out_dir.rmdir()  # an empty target folder is replaced
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir
