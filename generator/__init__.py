"""ham-artefacts data generator: artefact insertion, sources, variant HDF5 files, manifests.

This package never imports torch; heavy dependencies are imported lazily by the functions
that need them so ``import generator`` stays fast.
"""

__version__ = "0.2.0"

CLASSES: tuple[str, ...] = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
"""HAM10000 diagnosis codes, in the order used for integer labels everywhere."""
NUM_CLASSES = len(CLASSES)


def __getattr__(name):
    # Lazy public API so `import generator` does not pay for numpy/scipy/PIL up front.
    if name in {"insert_artefact", "realize", "realize_random", "render"}:
        from . import artefacts

        return getattr(artefacts, name)
    if name == "ArtefactAugmenter":
        from .artefacts.augment import ArtefactAugmenter

        return ArtefactAugmenter
    if name == "TemplateBank":
        from .artefacts.templates import TemplateBank

        return TemplateBank
    if name in {"KINDS", "FAMILIES", "list_kinds"}:
        from .artefacts import kinds

        return getattr(kinds, name)
    raise AttributeError(f"module 'generator' has no attribute {name!r}")
