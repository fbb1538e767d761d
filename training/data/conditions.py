"""Training conditions: a training variant, plain or with on-the-fly artefact augmentation.

A condition label names what a run was trained on. It is the training variant itself for a plain run
and ``<train_variant>+aug`` for a run trained with ``augment_artefacts > 0`` (class-independent
artefacts inserted on the fly, :class:`training.data.augment.RandomArtefact`), so the two never share a
run folder (``<runs>/<arch>/<condition>/fold<k>``). Evaluation reads the label back from that folder
name as the run's ``train_variant``; :func:`base_variant` recovers the frozen training variant
(``train_nv+aug`` was trained on train_nv's images, so it is biased toward nv like train_nv).

Pure string functions (no torch): the engine, the sweep and the evaluation all derive the label here.
"""

from __future__ import annotations

AUGMENTED_SUFFIX = "+aug"


def condition_label(train_variant: str, augment_artefacts: float = 0.0) -> str:
    """``train_variant``, or ``train_variant + "+aug"`` when artefacts are added on the fly."""
    return (
        f"{train_variant}{AUGMENTED_SUFFIX}" if augment_artefacts and augment_artefacts > 0 else train_variant
    )


def base_variant(condition: str) -> str:
    """The frozen training variant of a condition label (``train_nv+aug`` -> ``train_nv``)."""
    return condition.removesuffix(AUGMENTED_SUFFIX)


def is_augmented(condition: str) -> bool:
    return condition.endswith(AUGMENTED_SUFFIX)


def with_augmented(train_variants) -> tuple[str, ...]:
    """Every variant followed by its augmented condition: the order tables and pages list runs in."""
    return tuple(name for variant in train_variants for name in (variant, f"{variant}{AUGMENTED_SUFFIX}"))
