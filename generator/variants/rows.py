"""The build's two passes, run in worker processes: each image once into the row cache (decoding,
the artefact, rendering, encoding: ``build_part``), then each variant file streamed from the cache
(``write_one_variant``)."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .manifest import content_digest_of_rows, row_digest
from .plan import Plan, plan_families
from .store import RowCache, encode_png_stored

logger = logging.getLogger(__name__)

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
def worker_pool(workers: int, initializer=None, initargs: tuple = ()):
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


def ordered_results(pool, func, tasks: list, workers: int) -> Iterator:
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
    from ..sources.ham10000 import degenerate_mask
    from . import store  # noqa: F401
    from .store import write_cache_part

    i, n = shard
    ks = list(range(i, len(plan.records), n))
    tasks = [(k, plan.records[k], bool(plan.need_clean[k]), bool(plan.need_art[k])) for k in ks]
    size = tuple(plan.config["image_size"]) if plan.config["image_size"] else None
    init_args = (templates, plan.config["seed"], size, plan_families(plan))
    attrs = {"part_key": plan.part_key, "shard": json.dumps([i, n])}
    with (
        worker_pool(min(workers, len(tasks)), _init_worker, init_args) as pool,
        write_cache_part(part_path, len(ks), attrs) as append,
    ):
        bar = tqdm(
            total=len(ks),
            desc=f"images {i}/{n}" if n > 1 else "images",
            unit="img",
            disable=not progress,
            file=sys.stderr,
        )
        replaced = []
        for local, result in enumerate(ordered_results(pool, _process_image, tasks, workers)):
            assert result["k"] == ks[local]
            if degenerate_mask(plan.records[result["k"]], result["mask_source"]):
                replaced.append(plan.records[result["k"]].mask_path)
            append(result)
            bar.update(1)
        bar.close()
    if replaced:
        logger.warning(
            f"{len(replaced)} provided lesion mask(s) were empty or covered the whole image (first: "
            f"{replaced[0]}); segmented automatically instead (mask_source 'auto')"
        )


# --- writing one variant file (runs in worker processes) --------------------------------------


def write_one_variant(task) -> dict:
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
