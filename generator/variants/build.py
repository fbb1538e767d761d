"""`generate`: one pass over the images, then every variant file streamed from a row cache.

Work done once per image (decoding, the artefact realization, rendering, PNG encoding, the
content digest of the decoded row) goes into an on-disk row cache, ``<out>/.cache/rows-*.h5``.
Each variant file is then a selection of cached rows (clean or artefacted), streamed into
``generator.variants.store.write_variant``; nothing is rendered or encoded per variant, and memory stays
bounded by a few rows per process whatever the dataset size.

Sharding: images are split by their position ``k`` in the global order (train sorted by
image_id, then test) as ``k % n == i``. Shard ``i`` writes cache part ``i`` of ``n``; once all
parts exist (or with ``--merge``) the variant files are written from them, byte-identical to a
single run, because a single run is exactly the one-part case.

Reliability: every file is written under a temporary name and renamed; ``manifest.json`` and
the dataset cards beside it are removed at the start of any run that will change the folder, and
written last, so an interrupted run never leaves a folder that ``verify`` accepts, nor cards
without a manifest. A re-run reuses cache parts and variant files already finished (their SHA-256
re-checked against a sidecar record) only when the configuration is the same, the source
fingerprint included: that is of the source's content (``generator.sources.scan``), so a changed
image is rebuilt. Free space is checked against a lower bound of the bytes to write
(``plan.RowBytes``) before the long writes, and a full disk is one error naming the file
(``generator.atomic``), after which the same command resumes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from ..artefacts.kinds import DEFAULT_FAMILIES, family_kinds, resolve_families
from ..atomic import require_free_space
from ..errors import UserError
from ..licences import (
    MANIFEST_CITATION,
    SYNTHETIC_LICENCE,
    SYNTHETIC_WITH_REAL_TEMPLATES_LICENCE,
    VARIANT_FILE_LICENCE,
)
from ..userio import refuse_non_folder
from . import resolve_variants
from .manifest import FORMAT as MANIFEST_FORMAT
from .manifest import MANIFEST_NAME, check_entry, load_manifest
from .plan import Plan, RowBytes, make_plan, parse_shard
from .rows import build_part, ordered_results, worker_pool, write_one_variant
from .store import HDF5_HEADROOM

__all__ = ["CACHE_DIR", "generate", "make_plan", "parse_shard"]

logger = logging.getLogger(__name__)

CACHE_DIR = ".cache"
_HEADROOM_NOTE = f" (with the {HDF5_HEADROOM >> 20} MiB that HDF5 writes keep free)"


# --- the command ------------------------------------------------------------------------------


def _prepare_output(out: Path) -> bool:
    """Create ``out`` if needed and check it is writable; returns whether it was created."""
    refuse_non_folder(out)
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        if created:
            with contextlib.suppress(OSError):
                out.rmdir()
        raise UserError(f"{out}: output folder is not writable ({exc.strerror or exc})") from None
    return created


def _complete_parts(cache_dir: Path, part_key: str) -> list[Path] | None:
    """Paths of a complete set of cache parts for ``part_key`` (smallest n), or None."""
    by_n: dict[int, dict[int, Path]] = {}
    for p in cache_dir.glob(f"rows-{part_key}-*of*.h5"):
        m = re.match(rf"rows-{part_key}-(\d+)of(\d+)\.h5$", p.name)
        if m:
            by_n.setdefault(int(m.group(2)), {})[int(m.group(1))] = p
    for n in sorted(by_n):
        if len(by_n[n]) == n:
            return [by_n[n][i] for i in range(n)]
    return None


def _reusable_entries(out: Path, plan: Plan) -> dict[str, dict]:
    """Manifest entries of variant files already finished by an earlier run with the same config."""
    found: dict[str, dict] = {}
    with contextlib.suppress(UserError):
        manifest = load_manifest(out / MANIFEST_NAME)
        if all(manifest.get(k) == v for k, v in plan.config.items()):
            found.update({e["variant"]: e for e in manifest["files"]})
    done_dir = out / CACHE_DIR / "done"
    for spec in plan.specs:
        sidecar = done_dir / f"{spec.name}.json"
        if spec.name not in found and sidecar.is_file():
            with contextlib.suppress(ValueError, KeyError, OSError):
                record = json.loads(sidecar.read_text())
                if record["config_key"] == plan.config_key:
                    found[spec.name] = record["entry"]
    wanted = {s.name for s in plan.specs}
    return {name: e for name, e in found.items() if name in wanted and check_entry(out, e) is None}


def _templates_label(spec: str, bank) -> str:
    name = "builtin" if spec == "builtin" else Path(spec).resolve().name
    return f"{name}@{bank.fingerprint}"


def _remove_stale_partials(out: Path) -> None:
    for folder in (out, out / CACHE_DIR, out / CACHE_DIR / "done", out / "examples"):
        if folder.is_dir():
            for p in folder.glob(".*.partial"):
                with contextlib.suppress(OSError):
                    p.unlink()


def generate(
    source: str | os.PathLike,
    out: str | os.PathLike,
    *,
    seed: int = 0,
    workers: int = 1,
    size: tuple[int, int] | None = None,
    templates: str = "builtin",
    variants: Sequence[str] | None = None,
    shard: tuple[int, int] | None = None,
    merge: bool = False,
    progress: bool = True,
    keep_cache: bool = False,
    lock_wait: float | None = None,
    families=None,
    kinds=None,
) -> dict | None:
    """Write the requested variant files and ``manifest.json`` to ``out``.

    ``families`` (or ``kinds``, each bringing in its family) is what artefacted rows draw from; by
    default the paper's three (``generator.artefacts.kinds.DEFAULT_FAMILIES``).

    Returns the manifest, or None when only a shard's cache part was written and other parts are
    still missing. A run without ``shard`` holds ``out``'s folder lock (generator.lock): a second
    generate or fetch into ``out`` waits up to ``lock_wait`` seconds, then is refused. Shards run
    in parallel by design (each writes its own cache part), so they take no lock.
    """
    from ..artefacts.templates import TemplateBank
    from ..lock import DEFAULT_WAIT_S, folder_lock
    from ..sources import load_source

    out = Path(out)
    if workers < 1:
        raise UserError(f"--workers: {workers} must be at least 1")
    if seed < 0:
        raise UserError(f"--seed: {seed} must be non-negative")
    specs = resolve_variants(variants)
    source_dir = Path(source)
    if not source_dir.is_dir():
        raise UserError(f"{source_dir}: source folder not found")
    src = load_source(source_dir)
    if not src.train and not src.test:
        raise UserError(f"{source_dir}: the source lists no images")
    chosen = resolve_families(families, kinds)
    # named families must have templates; the default takes those of the paper's three that the bank has
    explicit = families is not None or kinds is not None
    bank = TemplateBank.load(templates, seed=seed).for_families(chosen, strict=explicit)
    if not bank.kinds():
        raise UserError(
            f"--templates: {bank.source} has no templates of the families {', '.join(chosen)} "
            "(name others with --families)"
        )
    plan = make_plan(src, specs, seed, size, _templates_label(templates, bank), chosen)
    created = _prepare_output(out)
    try:
        with (
            folder_lock(out, "generate", DEFAULT_WAIT_S if lock_wait is None else lock_wait)
            if shard is None
            else contextlib.nullcontext()
        ):
            return _generate(plan, out, src, bank, workers, templates, shard, merge, progress, keep_cache)
    except BaseException:
        # Empty folders this run left behind are removed again (rmdir fails on non-empty ones).
        for folder in (
            (out / CACHE_DIR / "done", out / CACHE_DIR, out)
            if created
            else (out / CACHE_DIR / "done", out / CACHE_DIR)
        ):
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


def _generate(
    plan: Plan, out: Path, src, bank, workers, templates, shard, merge, progress, keep_cache
) -> dict | None:
    if shard is None:
        _remove_stale_partials(out)
    reusable = _reusable_entries(out, plan)
    todo = [s for s in plan.specs if s.name not in reusable]
    manifest_path = out / MANIFEST_NAME
    if not todo and manifest_path.is_file():
        with contextlib.suppress(UserError):
            manifest = load_manifest(manifest_path)
            if [e["variant"] for e in manifest["files"]] == [s.name for s in plan.specs]:
                logger.info(f"{out}: all {len(plan.specs)} variant files are already complete and verified")
                _write_dataset_cards(out, manifest)  # folders built before the cards existed get them too
                return manifest
    # From here on the folder changes: it must not look complete, nor keep the dataset cards of a
    # manifest that is gone, until the new manifest exists.
    for stale in (manifest_path, *_card_paths(out)):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
    try:
        return _build(
            plan, out, src, bank, workers, templates, shard, merge, progress, keep_cache, reusable, todo
        )
    except BaseException:
        if not manifest_path.is_file():  # cards written just before a manifest that failed
            for card in _card_paths(out):
                with contextlib.suppress(FileNotFoundError):
                    card.unlink()
        if shard is None:  # files of workers stopped mid-write (this run holds the folder's lock)
            _remove_stale_partials(out)
        raise


def _build(
    plan: Plan, out: Path, src, bank, workers, templates, shard, merge, progress, keep_cache, reusable, todo
) -> dict | None:
    from tqdm import tqdm

    from ..atomic import write_json_atomic

    cache_dir = out / CACHE_DIR
    row_bytes = RowBytes(plan) if todo else None
    parts = None
    if todo:
        assert row_bytes is not None
        parts = _complete_parts(cache_dir, plan.part_key) if cache_dir.is_dir() else None
        if parts is None:
            if merge and shard is None:
                have = (
                    sorted(p.name for p in cache_dir.glob(f"rows-{plan.part_key}-*.h5"))
                    if cache_dir.is_dir()
                    else []
                )
                raise UserError(
                    f"{cache_dir}: --merge needs every shard's part for these settings; "
                    f"found {len(have)} ({', '.join(have) or 'none'})"
                )
            i, n = shard or (0, 1)
            part_path = cache_dir / f"rows-{plan.part_key}-{i}of{n}.h5"
            if not part_path.is_file():
                need = row_bytes.part((i, n)) + (row_bytes.variants(todo) if shard is None else 0)
                need += HDF5_HEADROOM
                require_free_space(
                    out,
                    need,
                    "the row cache" + (" and the variant files" if shard is None else "") + _HEADROOM_NOTE,
                )
                build_part(plan, part_path, (i, n), workers, templates, progress)
            parts = _complete_parts(cache_dir, plan.part_key)
            if parts is None:
                if merge:
                    raise UserError(f"{cache_dir}: --merge: shard parts of {n} are still missing")
                logger.info(
                    f"shard {i}/{n} done; the variant files are written once all {n} parts exist "
                    "(re-run any shard or use --merge)"
                )
                return None

    kinds = _known_kinds(bank)
    if todo:
        assert row_bytes is not None
        require_free_space(
            out, row_bytes.variants(todo) + HDF5_HEADROOM, f"{len(todo)} variant file(s){_HEADROOM_NOTE}"
        )
        attrs_common = {
            "seed": plan.config["seed"],
            "source_fingerprint": plan.config["source_fingerprint"],
            "templates": plan.config["templates"],
            "licence": _licence(src, plan.config["templates"]),
        }
        if "families" in plan.config:
            attrs_common["families"] = plan.config["families"]
        tasks = []
        for spec in todo:
            idx = plan.split_index[spec.split]
            attrs = dict(attrs_common, variant=spec.to_dict(), split=spec.split)
            tasks.append(
                (spec, parts, idx, plan.selections[spec.name], out / f"{spec.name}.h5", attrs, kinds)
            )
        bar = tqdm(total=len(tasks), desc="variant files", unit="file", disable=not progress, file=sys.stderr)
        with worker_pool(min(workers, len(tasks))) as pool:
            for entry in ordered_results(pool, write_one_variant, tasks, workers):
                write_json_atomic(
                    cache_dir / "done" / f"{entry['variant']}.json",
                    {"config_key": plan.config_key, "entry": entry},
                )
                reusable[entry["variant"]] = entry
                bar.update(1)
        bar.close()

    _write_examples(out, plan, bank, templates)
    _write_label_csvs(out, [s.name for s in plan.specs], progress)
    manifest = _manifest(plan, src, [reusable[s.name] for s in plan.specs])
    _write_dataset_cards(out, manifest)
    write_json_atomic(out / MANIFEST_NAME, manifest)
    if not keep_cache:
        shutil.rmtree(cache_dir, ignore_errors=True)
    logger.info(
        f"{out}: wrote {len(todo)} variant file(s), reused {len(plan.specs) - len(todo)}; manifest written"
    )
    return manifest


_MANIFEST_KEYS = (
    "format",
    "generator_version",
    "seed",
    "source_fingerprint",
    "templates",
    "families",
    "image_size",
    "synthetic",
    "base_url",
    "licence",
    "citation",
    "files",
)


def _manifest(plan: Plan, src, entries: list[dict]) -> dict:
    manifest = {
        "format": MANIFEST_FORMAT,
        **plan.config,
        "synthetic": bool(getattr(src, "synthetic", False)),
        "base_url": None,
        "licence": _licence(src, plan.config["templates"]),
        "citation": MANIFEST_CITATION,
        "files": entries,
    }
    return {k: manifest[k] for k in _MANIFEST_KEYS if k in manifest}


def _licence(src, templates: str) -> str:
    if not getattr(src, "synthetic", False):
        return VARIANT_FILE_LICENCE
    if str(templates).split("@")[0] == "builtin":
        return SYNTHETIC_LICENCE
    # Synthetic skin, but artefact templates cut from HAM10000 images: their licence travels with them.
    return SYNTHETIC_WITH_REAL_TEMPLATES_LICENCE


def _known_kinds(bank) -> list[str]:
    """The kinds counted in the manifest: those of the families the build draws from."""
    return family_kinds(bank.families or DEFAULT_FAMILIES)


def _card_paths(out: Path) -> tuple[Path, ...]:
    from ..distribution.cards import CARD_NAME, CROISSANT_NAME

    return out / CARD_NAME, out / CROISSANT_NAME


def _write_dataset_cards(out: Path, manifest: dict) -> None:
    """README.md (Hugging Face dataset card) and croissant.json beside the files; paths relative."""
    from ..distribution.cards import write_cards

    write_cards(out, manifest)


def _write_examples(out: Path, plan: Plan, bank, templates: str) -> None:
    """<out>/examples/<kind>.png: the first image clean | with one artefact of that kind."""
    from ..artefacts.gallery import insert_artefact_pair
    from ..atomic import write_bytes_atomic
    from ..seeding import derive_seed
    from ..sources import read_image, read_mask
    from .store import encode_png

    rec = plan.records[int(plan.split_index["test"][0])] if len(plan.split_index["test"]) else plan.records[0]
    size = tuple(plan.config["image_size"]) if plan.config["image_size"] else None
    rgb, _ = read_image(rec, size)
    mask, _ = read_mask(rec, rgb.shape[:2], rgb=rgb)
    for kind in bank.kinds():
        pair = insert_artefact_pair(
            rgb,
            mask,
            kind,
            bank,
            derive_seed(plan.config["seed"], "example", kind),
            gap=max(2, rgb.shape[1] // 50),
        )
        write_bytes_atomic(out / "examples" / f"{kind}.png", encode_png(pair))


def _write_label_csvs(out: Path, variants: list[str], progress: bool) -> None:
    from .labels import write_label_csvs

    write_label_csvs(out, variants=variants, progress=progress)
