"""The 22 frozen variants: which images of a split carry an artefact.

This package is the variant stage: the registry below, the build that writes every variant file
(``build``), the HDF5 layout (``store``, the only module that reads or writes HDF5), manifests
(``manifest``) and the label CSVs (``labels``).

Every variant is a rule over one split (train or test). The artefact an image carries is the
same in every variant that selects it (common random numbers: it depends only on the seed and
the image_id, see ``generator.seeding.image_seed``); a variant only decides *whether* it is on.

=============  =====  ===========================================================================
variant        split  images carrying an artefact
=============  =====  ===========================================================================
train_none     train  none (the clean baseline)
train_all      train  every image
train_<cls>    train  every image of diagnosis <cls> (akiec, bcc, bkl, df, mel, nv, vasc), no other
test_none      test   none
test_all       test   every image
test_<cls>     test   every image of diagnosis <cls>, no other
test_20        test   round(0.2 * n_c) images of every class c (stratified), nested in test_40
test_40        test   round(0.4 * n_c) per class, nested in test_60
test_60        test   round(0.6 * n_c) per class, nested in test_80
test_80        test   round(0.8 * n_c) per class
=============  =====  ===========================================================================

Percentage subsets: within each class the images are ranked by a seeded per-image key
(``derive_seed(seed, "percent-rank", image_id)``) and the first round(p * n_c) (half rounds up)
carry an artefact. Taking a prefix of one fixed ranking makes test_20 ⊂ test_40 ⊂ test_60 ⊂
test_80 hold by construction, and the ranking of an image never depends on the other images.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from .. import CLASSES
from ..errors import UserError
from ..seeding import derive_seed

if TYPE_CHECKING:
    import numpy as np

SPLITS = ("train", "test")
PERCENTAGES = (20, 40, 60, 80)


@dataclass(frozen=True)
class VariantSpec:
    """One variant: its split and the rule choosing the images that carry an artefact.

    rule is "none", "all", "class" (with ``target_class``) or "percent" (with ``percent``).
    """

    name: str
    split: str
    description: str
    rule: str
    target_class: str | None = None
    percent: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def selection(self, labels: Sequence[int], image_ids: Sequence[str], seed: int) -> np.ndarray:
        """Boolean array: True where the image (in the given order) carries an artefact."""
        import numpy as np  # here, not at the top: the registry is read by numpy-free tools (list, info)

        label_array = np.asarray(labels, dtype=np.int64)
        n = len(label_array)
        if len(image_ids) != n:
            raise ValueError("labels and image_ids differ in length")
        if self.rule == "none":
            return np.zeros(n, bool)
        if self.rule == "all":
            return np.ones(n, bool)
        if self.rule == "class":
            return label_array == CLASSES.index(str(self.target_class))
        if self.rule == "percent":
            return _stratified_prefix(label_array, image_ids, seed, int(self.percent or 0))
        raise ValueError(f"unknown rule {self.rule!r}")


def percent_rank_key(seed: int, image_id: str) -> int:
    """Sort key of an image in the percentage subsets (smaller = chosen first)."""
    return derive_seed(seed, "percent-rank", image_id)


def _stratified_prefix(labels: np.ndarray, image_ids: Sequence[str], seed: int, percent: int) -> np.ndarray:
    import numpy as np

    chosen = np.zeros(len(labels), bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        # Integer round-half-up of percent/100 * n avoids float surprises (e.g. 0.6 * 5).
        count = (percent * len(members) + 50) // 100
        ranked = sorted(members, key=lambda i: (percent_rank_key(seed, image_ids[int(i)]), image_ids[int(i)]))
        chosen[ranked[:count]] = True
    return chosen


def _build_registry() -> dict[str, VariantSpec]:
    registry: dict[str, VariantSpec] = {}

    def add(spec: VariantSpec) -> None:
        registry[spec.name] = spec

    for split in SPLITS:
        images = "training" if split == "train" else "test"
        add(VariantSpec(f"{split}_none", split, f"clean {images} images, no artefacts", "none"))
        add(VariantSpec(f"{split}_all", split, f"an artefact on every {images} image", "all"))
        for cls in CLASSES:
            add(
                VariantSpec(
                    f"{split}_{cls}",
                    split,
                    f"an artefact on every {images} image of class {cls}, none elsewhere",
                    "class",
                    target_class=cls,
                )
            )
    for pct in PERCENTAGES:
        add(
            VariantSpec(
                f"test_{pct}",
                "test",
                f"an artefact on {pct}% of the test images of every class (stratified, nested)",
                "percent",
                percent=pct,
            )
        )
    return registry


VARIANTS: dict[str, VariantSpec] = _build_registry()
"""Registry, in the canonical order (train first, then test)."""

# The variants the study's measures are built around, named once: the clean baseline of each split and the
# test variant with an artefact on every image. Code and tests use these names, never the string literals.
CLEAN_TRAIN = "train_none"
CLEAN_TEST = "test_none"
ALL_TEST = "test_all"
assert {CLEAN_TRAIN, CLEAN_TEST, ALL_TEST} <= set(VARIANTS)


def list_variants(split: str | None = None) -> list[str]:
    """Variant names in registry order, optionally only those of one split."""
    if split is not None and split not in SPLITS:
        raise UserError(f"split: {split!r} is not one of {', '.join(SPLITS)}")
    return [name for name, spec in VARIANTS.items() if split is None or spec.split == split]


def resolve_variants(names: Sequence[str] | None) -> list[VariantSpec]:
    """Specs for the requested names (all when None/empty), in registry order; UserError on unknown."""
    if not names:
        return list(VARIANTS.values())
    wanted = set()
    for name in names:
        for part in str(name).split(","):
            part = part.strip()
            if not part:
                continue
            if part not in VARIANTS:
                raise UserError(f"--variants: unknown variant {part!r} (known: {', '.join(VARIANTS)})")
            wanted.add(part)
    if not wanted:
        raise UserError("--variants: no variant named")
    return [spec for name, spec in VARIANTS.items() if name in wanted]
