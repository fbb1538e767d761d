"""Registry of artefact kinds: what each kind is, which family it belongs to and how it is varied.

Adding a kind is one ``register_kind(KindSpec(...))`` entry here (its family and Bissoto column
included), a procedural template generator in :mod:`generator.artefacts.procedural`, plus a placement strategy
in :mod:`generator.artefacts.placement` if none of the existing ones fits.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UserError


@dataclass(frozen=True)
class KindSpec:
    """One artefact kind. Probabilities follow the reference tool (thisismexp/artefact_insertion)."""

    name: str
    family: str
    description: str
    placement: str
    """Name of the placement strategy in ``generator.artefacts.placement.PLACEMENTS``."""
    meta_class: str
    """``class`` field of the original meta.json layout."""
    bissoto_column: str
    """The column of Bissoto et al.'s ISIC artefact annotations this kind is labelled in
    (``generator.variants.labels.BISSOTO_ARTEFACT_COLUMNS``)."""
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
    rotate_step: int = 1
    """Angles are multiples of this many degrees (90: an edge strip turned to one of the four sides)."""
    single_instance: bool = False
    """Place exactly one template of the set (circle markings)."""
    fill_image: bool = False
    """Scale the template to the largest size that fits the image (a field-of-view vignette)."""


KINDS: dict[str, KindSpec] = {}
"""All registered kinds, in registration order (the order used in tables and galleries)."""

FAMILIES: dict[str, tuple[str, ...]] = {}
"""Family name -> kinds in that family, e.g. ``{"ruler": ("ruler_horizontal", "ruler_vertical")}``."""

DEFAULT_FAMILIES = ("bubble", "ruler", "marking")
"""The paper's three families: what artefacted rows draw from unless ``generate --families`` says otherwise."""

FAMILY_NOUNS = {
    "bubble": "bubbles",
    "ruler": "rulers",
    "marking": "ink markings",
    "hair": "hair",
    "dark_corner": "dark corners",
    "gel_border": "gel borders",
    "patches": "patches",
}
"""Family -> how attributions and cards name it in running text (a test checks that every family has one)."""


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


def resolve_families(families=None, kinds=None) -> tuple[str, ...]:
    """The families artefacted rows draw from, in registry order (:data:`DEFAULT_FAMILIES` when both are None).

    ``kinds`` names kinds instead; each brings in its whole family (a row draws a family, then a kind in it).
    """
    if families is not None and kinds is not None:
        raise UserError("--families and --kinds: give one of them, not both")
    if families is None and kinds is None:
        return DEFAULT_FAMILIES
    chosen = set()
    for name in families if families is not None else ():
        if name not in FAMILIES:
            raise UserError(
                f"--families: unknown artefact family {name!r}; valid families: {', '.join(FAMILIES)}"
            )
        chosen.add(name)
    for name in kinds if kinds is not None else ():
        if name not in KINDS:
            raise UserError(f"--kinds: unknown artefact kind {name!r}; valid kinds: {', '.join(KINDS)}")
        chosen.add(KINDS[name].family)
    if not chosen:
        raise UserError("--families: name at least one artefact family")
    return tuple(family for family in FAMILIES if family in chosen)


def family_kinds(families) -> list[str]:
    """The kinds of ``families``, in registry order."""
    return [name for name, spec in KINDS.items() if spec.family in set(families)]


def kind_for_meta(meta_class: str, meta_subclass: str | None) -> str | None:
    """Map a meta.json (class, subclass) pair to a kind name, or None when no kind matches."""
    for spec in KINDS.values():
        if spec.meta_class == meta_class and (
            spec.meta_subclass is None or spec.meta_subclass == meta_subclass
        ):
            return spec.name
    return None


@kind(
    name="bubble",
    family="bubble",
    placement="scatter",
    meta_class="bubble",
    bissoto_column="gel_bubble",
    remove_prob=0.1,
    replicate_prob=0.8,
)
def _bubble():
    """Air bubbles trapped under the dermatoscope's contact plate: bright rims and highlights."""


@kind(
    name="ruler_horizontal",
    family="ruler",
    placement="below_lesion",
    meta_class="ruler",
    bissoto_column="ruler",
    meta_subclass="horizontal",
    remove_prob=0.0,
    replicate_prob=0.0,
    flip_prob=0.0,
    rotate_prob=1.0,
    rotate_range=(-20, 20),
)
def _ruler_horizontal():
    """Ruler scale below the lesion, roughly horizontal (rotated by at most 20 degrees)."""


@kind(
    name="ruler_vertical",
    family="ruler",
    placement="periphery",
    meta_class="ruler",
    bissoto_column="ruler",
    meta_subclass="vertical",
    remove_prob=0.0,
    replicate_prob=0.0,
    rotate_prob=1.0,
)
def _ruler_vertical():
    """Long ruler scale in the periphery of the image (often a corner), at any angle, avoiding the lesion."""


@kind(
    name="marking_circle",
    family="marking",
    placement="lesion_centre",
    meta_class="marking",
    bissoto_column="ink",
    meta_subclass="circle",
    remove_prob=0.0,
    replicate_prob=0.0,
    resize_prob=0.8,
    resize_range=(0.8, 1.4),
    rotate_prob=0.9,
    single_instance=True,
)
def _marking_circle():
    """Violet surgical-pen circle drawn around the lesion, centred on the lesion's centre of mass."""


@kind(
    name="marking_spot",
    family="marking",
    placement="scatter",
    meta_class="marking",
    meta_subclass="spot",
    bissoto_column="ink",
    remove_prob=0.3,
    replicate_prob=0.8,
)
def _marking_spot():
    """Violet surgical-pen spots and strokes scattered next to the lesion."""


# Beyond the paper: the rest of Bissoto et al.'s vocabulary. Their placements follow how each artefact
# looks in real dermatoscopic images (ISIC archive, HAM10000).
@kind(
    name="hair",
    family="hair",
    placement="anywhere",
    meta_class="hair",
    bissoto_column="hair",
    remove_prob=0.2,
    replicate_prob=0.6,
    resize_prob=0.0,
    rotate_prob=1.0,
    rotate_range=(0, 270),
    rotate_step=90,
)
def _hair():
    """Thin dark curved hair strands, anywhere in the image and over the lesion too (hair is not shaved
    around lesions), at any angle (each template is drawn at its own angle; insertion flips and
    quarter-turns it, so thin strands are never resampled)."""


@kind(
    name="dark_corner",
    family="dark_corner",
    placement="image_centre",
    meta_class="dark_corner",
    bissoto_column="dark_corner",
    remove_prob=0.0,
    replicate_prob=0.0,
    flip_prob=0.5,
    resize_prob=0.0,
    rotate_prob=0.0,
    single_instance=True,
    fill_image=True,
)
def _dark_corner():
    """Dark circular vignette: the round field of view of the dermatoscope's lens, centred on the image,
    leaves the corners black; its radius and edge hardness vary between devices."""


@kind(
    name="gel_border",
    family="gel_border",
    placement="edge",
    meta_class="gel_border",
    bissoto_column="gel_border",
    remove_prob=0.0,
    replicate_prob=0.0,
    flip_prob=0.0,
    resize_range=(0.8, 1.2),
    rotate_prob=1.0,
    rotate_range=(0, 270),
    rotate_step=90,
    single_instance=True,
)
def _gel_border():
    """Bright, uneven rim of immersion gel (or oil) along one edge of the image, where the gel layer under
    the contact plate ends; the strip is turned to face one of the four edges."""


@kind(
    name="patches",
    family="patches",
    placement="periphery",
    meta_class="patches",
    bissoto_column="patches",
    remove_prob=0.3,
    replicate_prob=0.2,
    resize_range=(0.8, 1.25),
    rotate_prob=1.0,
)
def _patches():
    """Coloured calibration stickers or patches (round dots, small colour charts) near the image border,
    away from the lesion."""
