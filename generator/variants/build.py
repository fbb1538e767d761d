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

Reliability: every file is written under a temporary name and renamed; ``manifest.json`` is
removed at the start of any run that will change the folder and written last, so an
interrupted run never leaves a folder that ``verify`` accepts. A re-run reuses cache parts and
variant files already finished (their SHA-256 re-checked against a sidecar record).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import sys
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from ..artefacts.kinds import DEFAULT_FAMILIES, family_kinds, resolve_families
from ..errors import UserError
from ..licences import (
    MANIFEST_CITATION,
    SYNTHETIC_LICENCE,
    SYNTHETIC_WITH_REAL_TEMPLATES_LICENCE,
    VARIANT_FILE_LICENCE,
)
from ..userio import refuse_non_folder
from . import VariantSpec, resolve_variants
from .manifest import FORMAT as MANIFEST_FORMAT
from .manifest import MANIFEST_NAME, check_entry, content_digest_of_rows, load_manifest, row_digest
from .store import RowCache, encode_png_stored

CACHE_DIR = ".cache"
_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


# --- argument parsing -------------------------------------------------------------------------


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """'i/n' (0 <= i < n) -> (i, n); UserError when malformed."""
    if text is None:
        return None
    m = _SHARD.match(str(text))
    if not m:
        raise UserError(f"--shard: {text!r} is not of the form i/n (e.g. 0/4)")
    i, n = int(m.group(1)), int(m.group(2))
    if n < 1 or not 0 <= i < n:
        raise UserError(f"--shard: {text!r} needs n >= 1 and 0 <= i < n")
    return i, n


# --- the image list ---------------------------------------------------------------------------


@dataclass
class Plan:
    """Everything that fixes the output bytes, and which rows each image needs."""

    records: list  # SourceRecord, global order: train sorted by image_id, then test
    specs: list[VariantSpec]
    selections: dict[str, np.ndarray]  # variant -> bool over its split's images
    split_index: dict[str, np.ndarray]  # split -> global indices, in file row order
    need_clean: np.ndarray
    need_art: np.ndarray
    config: dict  # seed, source fingerprint, templates, image size, version
    config_key: str  # digest of config: identifies finished variant files
    part_key: str  # digest of config + needs: identifies cache parts


def _config_key(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def make_plan(
    source,
    specs: Sequence[VariantSpec],
    seed: int,
    size,
    templates_label: str,
    families: tuple[str, ...] | None = None,
) -> Plan:
    """``families`` is recorded (config, manifest, file attributes) only when it is not the default,
    so that the paper's build keeps its bytes."""
    train = sorted(source.train, key=lambda r: r.image_id)
    test = sorted(source.test, key=lambda r: r.image_id)
    records = train + test
    split_index = {"train": np.arange(len(train)), "test": np.arange(len(train), len(records))}
    need_clean = np.zeros(len(records), bool)
    need_art = np.zeros(len(records), bool)
    selections = {}
    for spec in specs:
        idx = split_index[spec.split]
        if len(idx) == 0:
            raise UserError(f"{source.root}: the source has no {spec.split} images (needed by {spec.name})")
        chosen = spec.selection([records[k].label for k in idx], [records[k].image_id for k in idx], seed)
        selections[spec.name] = chosen
        need_art[idx[chosen]] = True
        need_clean[idx[~chosen]] = True
    config = {
        "generator_version": __version__,
        "seed": int(seed),
        "source_fingerprint": source.fingerprint,
        "templates": templates_label,
        "image_size": list(size) if size else None,
    }
    if families is not None and families != DEFAULT_FAMILIES:
        config["families"] = list(families)
    config_key = _config_key(config)
    part_key = _config_key(
        [config, np.packbits(need_clean).tobytes().hex(), np.packbits(need_art).tobytes().hex()]
    )[:20]
    return Plan(
        records, list(specs), selections, split_index, need_clean, need_art, config, config_key, part_key
    )


# --- per-image work (runs in worker processes) ------------------------------------------------

_ZERO_MASKS: dict[tuple[int, int], bytes] = {}


def _zero_mask_png(shape: tuple[int, int]) -> bytes:
    """The all-zero artefact mask of clean rows, encoded once per image shape."""
    from .store import encode_mask

    if shape not in _ZERO_MASKS:
        _ZERO_MASKS[shape] = encode_mask(np.zeros(shape, np.uint8))
    return _ZERO_MASKS[shape]


_WORKER: dict = {}


def _init_worker(templates: str, seed: int, size, families: tuple[str, ...]) -> None:
    from ..artefacts.templates import TemplateBank

    _WORKER.update(
        bank=TemplateBank.load(templates, seed=seed).for_families(families, strict=False),
        seed=seed,
        size=size,
    )


def _process_image(task) -> dict:
    """Encode the clean and/or artefacted row of one image; called once per image."""
    from ..artefacts import realize_random, render
    from ..seeding import image_seed
    from ..sources import read_image, read_mask
    from .store import encode_mask

    k, rec, need_clean, need_art = task
    rgb, jpeg = read_image(rec, _WORKER["size"])
    mask, mask_source = read_mask(rec, rgb.shape[:2], rgb=rgb)
    mask = (np.asarray(mask) > 0).astype(np.uint8)
    out = {
        "k": k,
        "image_id": rec.image_id,
        "lesion_id": rec.lesion_id,
        "label": int(rec.label),
        "mask_source": mask_source,
        "meta": json.dumps(rec.metadata, sort_keys=True),
        "lesion_mask": encode_mask(mask),
        "clean_image": b"",
        "clean_mask": b"",
        "clean_digest": "",
        "art_image": b"",
        "art_mask": b"",
        "art_digest": "",
        "kind": "",
        "record": "",
    }
    if need_clean:
        zero = np.zeros(mask.shape, np.uint8)
        out["clean_image"] = jpeg if jpeg is not None else encode_png_stored(rgb)
        out["clean_mask"] = _zero_mask_png(zero.shape)  # type: ignore[arg-type]  # 2-D: the mask's shape
        out["clean_digest"] = row_digest(rgb, mask, zero).hex()
    if need_art:
        bank = _WORKER["bank"]
        record = realize_random(bank, rgb.shape, mask, image_seed(_WORKER["seed"], rec.image_id))
        image, art_mask = render(rgb, record, bank)
        out["art_image"] = encode_png_stored(image)
        out["art_mask"] = encode_mask(art_mask)
        out["art_digest"] = row_digest(image, mask, art_mask).hex()
        out["kind"] = str(record["kind"])
        out["record"] = json.dumps(record, sort_keys=True, separators=(",", ":"))
    return out


@contextlib.contextmanager
def _worker_pool(workers: int, initializer=None, initargs: tuple = ()):
    """A process pool (None for one worker). Linux forks, so workers inherit the imported modules
    and the loaded template bank; create it before opening any HDF5 file for writing."""
    if workers <= 1:
        if initializer is not None:
            initializer(*initargs)
        yield None
        return
    import multiprocessing

    ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    with ctx.Pool(workers, initializer=initializer, initargs=initargs) as pool:
        yield pool


def _ordered_results(pool, func, tasks: list, workers: int) -> Iterator:
    """Results of ``func`` over ``tasks`` in task order, with at most a few tasks in flight."""
    if pool is None:
        for task in tasks:
            yield func(task)
        return
    pending: deque = deque()
    it = iter(tasks)
    for task in it:
        pending.append(pool.apply_async(func, (task,)))
        if len(pending) >= 4 * workers:
            break
    while pending:
        yield pending.popleft().get()
        for task in it:
            pending.append(pool.apply_async(func, (task,)))
            break


def build_part(
    plan: Plan, part_path: Path, shard: tuple[int, int], workers: int, templates: str, progress: bool
) -> None:
    """Write cache part ``shard`` = (i, n): one row record per image with k % n == i."""
    from tqdm import tqdm

    from .. import artefacts, sources  # noqa: F401 - imported once, before workers fork
    from . import store  # noqa: F401
    from .store import write_cache_part

    i, n = shard
    ks = list(range(i, len(plan.records), n))
    tasks = [(k, plan.records[k], bool(plan.need_clean[k]), bool(plan.need_art[k])) for k in ks]
    size = tuple(plan.config["image_size"]) if plan.config["image_size"] else None
    init_args = (templates, plan.config["seed"], size, _families(plan))
    attrs = {"part_key": plan.part_key, "shard": json.dumps([i, n])}
    with (
        _worker_pool(min(workers, len(tasks)), _init_worker, init_args) as pool,
        write_cache_part(part_path, len(ks), attrs) as append,
    ):
        bar = tqdm(
            total=len(ks),
            desc=f"images {i}/{n}" if n > 1 else "images",
            unit="img",
            disable=not progress,
            file=sys.stderr,
        )
        for local, result in enumerate(_ordered_results(pool, _process_image, tasks, workers)):
            assert result["k"] == ks[local]
            append(result)
            bar.update(1)
        bar.close()


# --- writing one variant file (runs in worker processes) --------------------------------------


def _write_one_variant(task) -> dict:
    """Stream one variant's rows from the cache into its HDF5 file; return its manifest entry."""
    from .manifest import file_entry
    from .store import write_variant

    spec, part_paths, indices, chosen, path, attrs, kinds = task
    cache = RowCache(part_paths)
    try:
        write_variant(path, cache.rows(indices, chosen), len(indices), attrs)
        digest = content_digest_of_rows(
            (
                cache.digest(int(k), bool(a)),
                cache.texts[k % cache.n]["image_id"][k // cache.n],
                int(cache.labels[k % cache.n][k // cache.n]),
                bool(a),
                cache.texts[k % cache.n]["kind"][k // cache.n] if a else "",
            )
            for k, a in zip(indices, chosen, strict=True)
        )
        labels = [int(cache.labels[k % cache.n][k // cache.n]) for k in indices]
        row_kinds = [
            cache.texts[k % cache.n]["kind"][k // cache.n] for k, a in zip(indices, chosen, strict=True) if a
        ]
    finally:
        cache.close()
    return file_entry(path, spec, labels, row_kinds, digest, kinds)


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
    from tqdm import tqdm

    from ..atomic import write_json_atomic

    log = (lambda msg: print(msg, file=sys.stderr)) if progress else (lambda msg: None)
    cache_dir = out / CACHE_DIR
    if shard is None:
        _remove_stale_partials(out)
    reusable = _reusable_entries(out, plan)
    todo = [s for s in plan.specs if s.name not in reusable]
    manifest_path = out / MANIFEST_NAME
    if not todo and manifest_path.is_file():
        with contextlib.suppress(UserError):
            manifest = load_manifest(manifest_path)
            if [e["variant"] for e in manifest["files"]] == [s.name for s in plan.specs]:
                log(f"{out}: all {len(plan.specs)} variant files are already complete and verified")
                _write_dataset_cards(out, manifest)  # folders built before the cards existed get them too
                return manifest
    # From here on the folder changes: it must not look complete until the new manifest exists.
    with contextlib.suppress(FileNotFoundError):
        manifest_path.unlink()

    parts = None
    if todo:
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
                build_part(plan, part_path, (i, n), workers, templates, progress)
            parts = _complete_parts(cache_dir, plan.part_key)
            if parts is None:
                if merge:
                    raise UserError(f"{cache_dir}: --merge: shard parts of {n} are still missing")
                log(
                    f"shard {i}/{n} done; the variant files are written once all {n} parts exist "
                    "(re-run any shard or use --merge)"
                )
                return None

    kinds = _known_kinds(bank)
    if todo:
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
        with _worker_pool(min(workers, len(tasks))) as pool:
            for entry in _ordered_results(pool, _write_one_variant, tasks, workers):
                write_json_atomic(
                    cache_dir / "done" / f"{entry['variant']}.json",
                    {"config_key": plan.config_key, "entry": entry},
                )
                reusable[entry["variant"]] = entry
                bar.update(1)
        bar.close()

    _write_examples(out, plan, bank, templates)
    _write_label_csvs(out, [s.name for s in plan.specs], progress)
    manifest = {
        "format": MANIFEST_FORMAT,
        **plan.config,
        "synthetic": bool(getattr(src, "synthetic", False)),
        "base_url": None,
        "licence": _licence(src, plan.config["templates"]),
        "citation": MANIFEST_CITATION,
        "files": [reusable[s.name] for s in plan.specs],
    }
    manifest = {
        k: manifest[k]
        for k in (
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
        if k in manifest
    }
    _write_dataset_cards(out, manifest)
    write_json_atomic(manifest_path, manifest)
    if not keep_cache:
        shutil.rmtree(cache_dir, ignore_errors=True)
    log(f"{out}: wrote {len(todo)} variant file(s), reused {len(plan.specs) - len(todo)}; manifest written")
    return manifest


def _licence(src, templates: str) -> str:
    if not getattr(src, "synthetic", False):
        return VARIANT_FILE_LICENCE
    if str(templates).split("@")[0] == "builtin":
        return SYNTHETIC_LICENCE
    # Synthetic skin, but artefact templates cut from HAM10000 images: their licence travels with them.
    return SYNTHETIC_WITH_REAL_TEMPLATES_LICENCE


def _families(plan: Plan) -> tuple[str, ...]:
    return tuple(plan.config.get("families", DEFAULT_FAMILIES))


def _known_kinds(bank) -> list[str]:
    """The kinds counted in the manifest: those of the families the build draws from."""
    return family_kinds(bank.families or DEFAULT_FAMILIES)


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
