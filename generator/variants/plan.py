"""What a build will write: the plan (records in the global order, which rows each image needs, the
configuration that identifies finished files) and a lower bound of the bytes it needs on disk."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from ..artefacts.kinds import DEFAULT_FAMILIES
from ..errors import UserError
from . import VariantSpec

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


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


def plan_families(plan: Plan) -> tuple[str, ...]:
    return tuple(plan.config.get("families", DEFAULT_FAMILIES))


# --- disk space -------------------------------------------------------------------------------


class RowBytes:
    """A lower bound of the bytes each image's stored rows take (encoded image only; masks and HDF5's
    own overhead come on top): a clean row at source size keeps the source file's bytes, any other
    row is an uncompressed PNG, 3 bytes a pixel (``store.encode_png_stored``). Image sizes come from
    the files' headers (about 0.1 ms each)."""

    def __init__(self, plan: Plan):
        self.plan = plan
        size = plan.config["image_size"]
        self.resized = bool(size)
        self._fixed = size[1] * (3 * size[0] + 1) if size else 0
        self._png: dict[int, int] = {}
        self._clean: dict[int, int] = {}

    def png(self, k: int) -> int:
        if self.resized:
            return self._fixed
        if k not in self._png:
            from ..images import opened_image

            path = Path(self.plan.records[k].image_path)
            with opened_image(path, path) as im:
                w, h = im.size
            self._png[k] = h * (3 * w + 1)
        return self._png[k]

    def clean(self, k: int) -> int:
        if self.resized:
            return self._fixed
        if k not in self._clean:
            try:
                self._clean[k] = Path(self.plan.records[k].image_path).stat().st_size
            except OSError:
                self._clean[k] = 0
        return self._clean[k]

    def part(self, shard: tuple[int, int]) -> int:
        """Cache part ``shard``: each image's clean and/or artefacted row, as the variants need them."""
        i, n = shard
        plan = self.plan
        return sum(
            (self.clean(k) if plan.need_clean[k] else 0) + (self.png(k) if plan.need_art[k] else 0)
            for k in range(i, len(plan.records), n)
        )

    def variants(self, specs: Sequence[VariantSpec]) -> int:
        """The variant files of ``specs``."""
        total = 0
        for spec in specs:
            chosen = self.plan.selections[spec.name]
            for k, artefact in zip(self.plan.split_index[spec.split], chosen, strict=True):
                total += self.png(int(k)) if artefact else self.clean(int(k))
        return total
