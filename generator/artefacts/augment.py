"""Artefacts as an on-the-fly training augmentation (numpy only; the torch transform is
:class:`training.data.augment.RandomArtefact`).

:class:`ArtefactAugmenter` maps (image, optional lesion mask, seed) to (image, artefact mask, record).
It only decides *whether* and *which kind*; the insertion itself is the engine of the frozen
variants (:func:`generator.artefacts.realize` then :func:`generator.artefacts.render`), so the
returned record replays byte-identically with ``render``, exactly like a frozen row's record.

Draws, all from one ``np.random.Generator``: apply (``random() < p``), the kind (by weight), then a
63-bit seed for ``realize`` (stored in the record). Without a lesion mask, the lesion is found by
:func:`generator.sources.segmentation.segment_lesion`, only for images that get an artefact.

Parameters are validated when the augmenter is made and inputs on every call; bad ones raise a
ValueError naming the parameter (as imagecorruptions does), never an error deep in OpenCV.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping

import numpy as np

from ..errors import UserError
from .kinds import DEFAULT_FAMILIES, FAMILIES, KINDS
from .templates import TemplateBank

TEMPLATE_REFERENCE_HW = (450, 600)
"""(H, W) of the HAM10000 images the template banks were cut from: ``template_scale="auto"`` scales
templates by the image's size relative to it, so artefacts keep their relative size at any resolution."""

SEED_LIMIT = 2**63 - 1
"""Exclusive upper bound of the per-insertion seed drawn for ``realize`` (fits torch's int64)."""


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_probability(p) -> float:
    if not _is_real(p) or not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"p: expected a probability in [0, 1], got {p!r}")
    return float(p)


def check_template_scale(template_scale) -> float | str:
    if template_scale == "auto":
        return "auto"
    if not _is_real(template_scale) or not math.isfinite(float(template_scale)) or float(template_scale) <= 0:
        raise ValueError(f"template_scale: expected 'auto' or a positive number, got {template_scale!r}")
    return float(template_scale)


def load_bank(templates) -> TemplateBank:
    """``"builtin"``, a template directory (str or path) or a TemplateBank; ValueError naming ``templates``."""
    if isinstance(templates, TemplateBank):
        return templates
    if not isinstance(templates, str | os.PathLike):
        raise ValueError(
            f"templates: expected 'builtin', a template directory or a TemplateBank, got {templates!r}"
        )
    try:
        return TemplateBank.load(os.fspath(templates))
    except UserError as exc:
        raise ValueError(f"templates: {exc}") from None


def kind_weights(kinds, bank: TemplateBank) -> dict[str, float]:
    """Normalised ``{kind: probability}`` (zero weights dropped) from a ``kinds`` argument.

    ``None``: a family uniformly among the paper's three (:data:`generator.kinds.DEFAULT_FAMILIES`,
    those the bank holds; every family of a bank that holds none of them), then a kind uniformly
    within it (the default variants' scheme, :func:`generator.artefacts.realize_random`). A name or a sequence of
    names: equal weights. A mapping: ``{name: weight}``. A name is a kind or a family; a family's
    weight is shared equally by its kinds that the bank holds.
    """
    present = bank.kinds()
    if kinds is None:
        held = [family for family, members in FAMILIES.items() if set(members) & set(present)]
        kinds = {family: 1.0 for family in ([f for f in held if f in DEFAULT_FAMILIES] or held)}
        if not kinds:
            raise ValueError(f"templates: the template bank {bank.source} holds no templates")
    elif isinstance(kinds, str):
        kinds = {kinds: 1.0}
    elif isinstance(kinds, Mapping):
        kinds = dict(kinds)
    else:
        try:
            names = list(kinds)
        except TypeError:
            raise ValueError(
                f"kinds: expected None, a name, a list of names or a {{name: weight}} mapping, got {kinds!r}"
            ) from None
        kinds = {}
        for name in names:
            kinds[name] = kinds.get(name, 0.0) + 1.0
    if not kinds:
        raise ValueError("kinds: no kind given")
    weights: dict[str, float] = {}
    for name, weight in kinds.items():
        if not _is_real(weight) or not math.isfinite(float(weight)) or float(weight) < 0:
            raise ValueError(f"kinds: the weight of {name!r} must be a finite number >= 0, got {weight!r}")
        members: tuple[str, ...]
        if name in KINDS:
            members = (name,)
        elif name in FAMILIES:
            members = tuple(k for k in FAMILIES[name] if k in present)
        else:
            raise ValueError(
                f"kinds: unknown kind or family {name!r}; kinds: {', '.join(KINDS)}; "
                f"families: {', '.join(FAMILIES)}"
            )
        missing = [k for k in members if k not in present] or ([] if members else [name])
        if missing and float(weight) > 0:
            raise ValueError(f"kinds: the template bank {bank.source} has no {missing[0]!r} templates")
        for member in members:
            weights[member] = weights.get(member, 0.0) + float(weight) / len(members)
    total = sum(weights.values())
    if total <= 0:
        raise ValueError("kinds: all weights are zero")
    # registry order, so the draw does not depend on the order the caller listed the kinds in
    return {k: weights[k] / total for k in KINDS if weights.get(k, 0.0) > 0}


def check_seed(seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        return np.random.default_rng()
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and int(seed) >= 0:
        return np.random.default_rng(int(seed))
    raise ValueError(f"seed: expected a non-negative integer, a numpy Generator or None, got {seed!r}")


def check_image(image) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        described = (
            f"{image.dtype} array of shape {image.shape}"
            if isinstance(image, np.ndarray)
            else type(image).__name__
        )
        raise ValueError(f"image: expected a uint8 HxWx3 RGB array, got {described}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"image: empty image of shape {image.shape}")
    return np.ascontiguousarray(image)


def check_lesion_mask(mask, image_hw: tuple[int, int]) -> np.ndarray | None:
    if mask is None:
        return None
    if (
        not isinstance(mask, np.ndarray)
        or mask.ndim != 2
        or not (mask.dtype == bool or np.issubdtype(mask.dtype, np.integer))
    ):
        described = (
            f"{mask.dtype} array of shape {mask.shape}"
            if isinstance(mask, np.ndarray)
            else type(mask).__name__
        )
        raise ValueError(f"lesion_mask: expected a 2-D bool or integer (0/1 or 0/255) array, got {described}")
    if mask.shape != tuple(image_hw):
        raise ValueError(f"lesion_mask: shape {mask.shape} differs from the image's {tuple(image_hw)}")
    return mask


AUTO_MASK_SIDE = 48
"""Longest side (pixels) at which :func:`auto_lesion_mask` segments. Placement only uses the lesion
blurred over a grid of about 64 cells across the short side, so the mask only has to find where the
lesion is; 48 px (a 47x35 subsample of 600x450) finds it as well as 80 px did (same IoU with the demo
scenes' masks) at about 0.6 ms instead of 0.9 ms, which brings the no-mask path under the 2 ms target
(benchmarks/augment.py)."""


def auto_lesion_mask(image: np.ndarray) -> np.ndarray:
    """0/1 uint8 HxW lesion mask from :func:`generator.sources.segmentation.segment_lesion` run on a strided
    subsample of at most :data:`AUTO_MASK_SIDE` pixels a side, scaled back by nearest neighbour.

    About 0.6 ms for 600x450 instead of 11 ms at segment_lesion's default working size, most of
    which is its area-averaging resize; the frozen variants' masks still come from the default.
    """
    import cv2

    from ..sources.segmentation import segment_lesion

    height, width = image.shape[:2]
    step = max(1, -(-max(height, width) // AUTO_MASK_SIDE))
    small = np.ascontiguousarray(image[::step, ::step])
    mask = segment_lesion(small, work_side=max(small.shape[:2]))
    if mask.shape == (height, width):
        return mask
    return cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)


class ArtefactAugmenter:
    """Insert a random artefact with probability ``p``::

        augment = ArtefactAugmenter(p=0.5, kinds={"ruler": 2, "bubble": 1}, templates="builtin")
        image_out, artefact_mask, record = augment(image, lesion_mask, seed=7)
        # record is None (and image_out is image) when no artefact was drawn; otherwise
        # generator.artefacts.render(image, record, augment.bank) gives image_out byte for byte

    ``kinds``: see :func:`kind_weights`. ``templates``: ``"builtin"``, a template directory or a
    :class:`TemplateBank`. ``template_scale``: a factor on every template scale, or ``"auto"``
    (the image's size relative to 600x450, the size the templates were cut at; 1.0 for HAM10000).
    """

    def __init__(self, p: float = 0.5, kinds=None, templates="builtin", template_scale="auto"):
        self.p = check_probability(p)
        self.templates = templates
        self.bank = load_bank(templates)
        self.weights = kind_weights(kinds, self.bank)
        self.template_scale = check_template_scale(template_scale)
        self._kinds = tuple(self.weights)
        cumulative = np.cumsum(list(self.weights.values()))
        cumulative[-1] = 1.0  # a draw just below 1 must never fall past the last kind
        self._cumulative = cumulative

    def __getstate__(self) -> dict:
        # DataLoader workers started by spawn get the bank's name and load it (cached per process)
        # instead of a pickled copy of every template
        state = dict(self.__dict__)
        if not isinstance(self.templates, TemplateBank):
            state["bank"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if self.bank is None:
            self.bank = load_bank(self.templates)

    def scale_for(self, image_hw) -> float:
        if self.template_scale != "auto":
            return float(self.template_scale)
        return min(image_hw[0] / TEMPLATE_REFERENCE_HW[0], image_hw[1] / TEMPLATE_REFERENCE_HW[1])

    def draw(self, image_hw, lesion_mask=None, seed=None, image=None) -> dict | None:
        """The record of one draw (None: no artefact), without painting. ``image`` is needed only
        when ``lesion_mask`` is None and an artefact is drawn (for the automatic segmentation)."""
        from . import realize

        rng = check_seed(seed)
        if not rng.random() < self.p:
            return None
        kind = self._kinds[
            min(int(np.searchsorted(self._cumulative, rng.random(), side="right")), len(self._kinds) - 1)
        ]
        realize_seed = int(rng.integers(SEED_LIMIT))
        if lesion_mask is None:
            lesion_mask = auto_lesion_mask(image)
        return realize(kind, self.bank, image_hw, lesion_mask, realize_seed, self.scale_for(image_hw))

    def __call__(self, image: np.ndarray, lesion_mask: np.ndarray | None = None, seed=None):
        """``(image_out uint8 HxWx3, artefact_mask bool HxW, record or None)``."""
        from . import render

        image = check_image(image)
        lesion_mask = check_lesion_mask(lesion_mask, image.shape[:2])
        record = self.draw(image.shape[:2], lesion_mask, seed, image)
        if record is None:
            return image, np.zeros(image.shape[:2], dtype=bool), None
        out, artefact_mask = render(image, record, self.bank)
        return out, artefact_mask, record

    def __repr__(self) -> str:
        weights = ", ".join(f"{k}: {w:.3g}" for k, w in self.weights.items())
        return (
            f"ArtefactAugmenter(p={self.p}, kinds={{{weights}}}, templates={self.bank.source!r}, "
            f"template_scale={self.template_scale!r})"
        )
