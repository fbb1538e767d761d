"""Registry of artefact kinds: what each kind is, which family it belongs to and how it is varied.

Adding a kind (say ``hair`` or ``dark_corner``) is one ``register_kind(KindSpec(...))`` entry here,
plus a placement strategy in :mod:`generator.placement` if none of the existing ones fits.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import UserError


@dataclass(frozen=True)
class KindSpec:
    """One artefact kind. Probabilities follow the reference tool (thisismexp/artefact_insertion)."""

    name: str
    family: str
    description: str
    placement: str
    """Name of the placement strategy in ``generator.placement.PLACEMENTS``."""
    meta_class: str
    """``class`` field of the original meta.json layout."""
    meta_subclass: str | None = None
    """``subclass`` field of meta.json (None when the class alone names the kind)."""
    remove_prob: float = 0.5
    """Chance that a template of the chosen set is left out (at least one is always kept)."""
    replicate_prob: float = 0.5
    """Chance that a kept template is placed a second time."""
    flip_prob: float = 0.5
    resize_prob: float = 0.5
    resize_range: tuple[float, float] = (0.5, 1.5)
    rotate_prob: float = 0.5
    rotate_range: tuple[int, int] = (0, 359)
    """Inclusive range of whole-degree rotation angles."""
    single_instance: bool = False
    """Place exactly one template of the set (circle markings)."""


KINDS: dict[str, KindSpec] = {}
"""All registered kinds, in registration order (the order used in tables and galleries)."""

FAMILIES: dict[str, tuple[str, ...]] = {}
"""Family name -> kinds in that family, e.g. ``{"ruler": ("ruler_horizontal", "ruler_vertical")}``."""


def register_kind(spec: KindSpec) -> KindSpec:
    """Add ``spec`` to :data:`KINDS` and :data:`FAMILIES`; returns it so it can be used as a decorator value."""
    if spec.name in KINDS:
        raise ValueError(f"artefact kind {spec.name!r} is registered twice")
    KINDS[spec.name] = spec
    FAMILIES[spec.family] = FAMILIES.get(spec.family, ()) + (spec.name,)
    return spec


def kind(**fields):
    """Class-free decorator form: ``@kind(name=..., family=..., ...)`` on a function documenting the kind.

    The decorated function's docstring becomes the kind's description when none is given.
    """

    def decorate(func):
        fields.setdefault("description", (func.__doc__ or "").strip())
        register_kind(KindSpec(**fields))
        return func

    return decorate


def list_kinds() -> list[str]:
    return list(KINDS)


def get_kind(name: str) -> KindSpec:
    """The spec of kind ``name``; a UserError listing the valid kinds for an unknown name."""
    try:
        return KINDS[name]
    except KeyError:
        raise UserError(f"--kind: unknown artefact kind {name!r}; valid kinds: {', '.join(KINDS)}") from None


def kind_for_meta(meta_class: str, meta_subclass: str | None) -> str | None:
    """Map a meta.json (class, subclass) pair to a kind name, or None when no kind matches."""
    for spec in KINDS.values():
        if spec.meta_class == meta_class and (spec.meta_subclass is None or spec.meta_subclass == meta_subclass):
            return spec.name
    return None


@kind(name="bubble", family="bubble", placement="scatter", meta_class="bubble",
      remove_prob=0.1, replicate_prob=0.8)
def _bubble():
    """Air bubbles trapped under the dermatoscope's contact plate: bright rims and highlights."""


@kind(name="ruler_horizontal", family="ruler", placement="below_lesion", meta_class="ruler",
      meta_subclass="horizontal", remove_prob=0.0, replicate_prob=0.0, flip_prob=0.0, rotate_prob=1.0,
      rotate_range=(-20, 20))
def _ruler_horizontal():
    """Ruler scale below the lesion, roughly horizontal (rotated by at most 20 degrees)."""


@kind(name="ruler_vertical", family="ruler", placement="periphery", meta_class="ruler",
      meta_subclass="vertical", remove_prob=0.0, replicate_prob=0.0, rotate_prob=1.0)
def _ruler_vertical():
    """Long ruler scale in the periphery of the image (often a corner), at any angle, avoiding the lesion."""


@kind(name="marking_circle", family="marking", placement="lesion_centre", meta_class="marking",
      meta_subclass="circle", remove_prob=0.0, replicate_prob=0.0, resize_prob=0.8, resize_range=(0.8, 1.4),
      rotate_prob=0.9, single_instance=True)
def _marking_circle():
    """Violet surgical-pen circle drawn around the lesion, centred on the lesion's centre of mass."""


@kind(name="marking_spot", family="marking", placement="scatter", meta_class="marking", meta_subclass="spot",
      remove_prob=0.3, replicate_prob=0.8)
def _marking_spot():
    """Violet surgical-pen spots and strokes scattered next to the lesion."""
