"""``RandomArtefact``: artefact insertion as a torchvision ``transforms.v2`` transform.

It follows v2's contract for custom transforms: ``make_params`` draws the insertion (one 63-bit seed
from torch's default generator, ``torch.randint``, handed to
:meth:`generator.artefacts.augment.ArtefactAugmenter.draw`, which returns the JSON-serialisable
record: kind, template ids, flips, scales, angles, centres), and ``transform`` paints that record
onto the image (:func:`generator.artefacts.render`). DataLoader workers seed torch's generator per
worker from the loader's own, so a seeded loader gives the same artefacts on every run (for a given
number of workers), and ``ArtefactAugmenter(...)(image, mask, seed)`` reproduces any single call.

The artefact is painted over the pixels; geometry is unchanged, so lesion masks
(``tv_tensors.Mask``) and boxes (``tv_tensors.BoundingBoxes``) pass through untouched and stay
consistent. The first ``Mask`` in the sample is taken as the lesion mask (placement avoids the
lesion, circles go round it); without one, the lesion is segmented automatically.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import PIL.Image
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from generator.artefacts import render
from generator.artefacts.augment import SEED_LIMIT, ArtefactAugmenter, check_image, check_lesion_mask


def _is_plain_tensor(inpt: Any) -> bool:
    return isinstance(inpt, torch.Tensor) and not isinstance(inpt, tv_tensors.TVTensor)


def _image_of(flat_inputs: list[Any]) -> Any:
    """The image of a flattened sample, by v2's rule: the first ``tv_tensors.Image`` or PIL image,
    else the first plain tensor (other plain tensors, labels say, pass through)."""
    for inpt in flat_inputs:
        if isinstance(inpt, tv_tensors.Image | PIL.Image.Image):
            return inpt
    for inpt in flat_inputs:
        if _is_plain_tensor(inpt):
            return inpt
    raise TypeError("RandomArtefact: the sample holds no image (a PIL image or a uint8 3xHxW tensor)")


def _to_pixels(image) -> np.ndarray:
    """uint8 HxWx3 numpy pixels of a PIL RGB image or a uint8 3xHxW tensor (a view where possible)."""
    if isinstance(image, PIL.Image.Image):
        if image.mode != "RGB":
            raise ValueError(f"image: RandomArtefact needs an RGB PIL image, got mode {image.mode!r}")
        return np.asarray(image)
    if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(
            f"image: RandomArtefact needs a uint8 3xHxW tensor, got {image.dtype} {tuple(image.shape)} "
            "(put it before ToDtype)"
        )
    return image.as_subclass(torch.Tensor).permute(1, 2, 0).numpy()


def _to_mask(mask: tv_tensors.Mask) -> np.ndarray:
    """HxW numpy view of an HxW or 1xHxW Mask."""
    array = mask.as_subclass(torch.Tensor)
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2:
        raise ValueError(
            f"lesion_mask: RandomArtefact needs an HxW or 1xHxW Mask, got shape {tuple(mask.shape)}"
        )
    return array.numpy()


def _leaves(sample: Any) -> list[Any]:
    """The leaves of a (nested) tuple / list / dict sample, depth first: the order v2 flattens in."""
    if isinstance(sample, tuple | list):
        return [leaf for item in sample for leaf in _leaves(item)]
    if isinstance(sample, dict):
        return [leaf for item in sample.values() for leaf in _leaves(item)]
    return [sample]


def _changed_pixels(before: Any, after: Any) -> tv_tensors.Mask:
    """uint8 0/1 HxW Mask of the pixels where ``after`` differs from ``before`` in any channel."""
    if after is before:  # left clean: ``transform`` hands the very input back
        height, width = v2.functional.get_size(before)
        return tv_tensors.Mask(torch.zeros((height, width), dtype=torch.uint8))
    if isinstance(before, PIL.Image.Image):
        changed = torch.from_numpy((np.asarray(after) != np.asarray(before)).any(axis=2))
    else:
        changed = (after.as_subclass(torch.Tensor) != before.as_subclass(torch.Tensor)).any(dim=0)
    return tv_tensors.Mask(changed.to(torch.uint8))


def _append_artefact_mask(transform: RandomArtefact, inputs: tuple, outputs: Any) -> Any:
    """Forward hook of ``return_artefact_mask=True``: appends the artefact mask to the output.

    v2's ``forward`` returns the structure it was given, and a transform must not override it; a
    forward hook (public ``nn.Module`` API) may replace the output. The artefact is exactly the set
    of pixels that ``render`` changed, so the mask is read off the image before and after."""
    if not transform.return_artefact_mask:
        return outputs
    sample = inputs if len(inputs) > 1 else inputs[0]
    artefact_mask = _changed_pixels(_image_of(_leaves(sample)), _image_of(_leaves(outputs)))
    return (*outputs, artefact_mask) if len(inputs) > 1 else (outputs, artefact_mask)


class RandomArtefact(v2.Transform):
    """Insert a random artefact (bubbles, ruler, ink marking) with probability ``p``.

    ``kinds``: None (family uniformly, then kind: the frozen variants' scheme), a name, a list of
    names or ``{name: weight}``; names are kinds or families (:mod:`generator.artefacts.kinds`).
    ``templates``: ``"builtin"``, a template directory or a ``TemplateBank``. ``template_scale``:
    ``"auto"`` keeps artefacts at their relative size in HAM10000's 600x450 images whatever the
    input size. ``return_artefact_mask=True`` appends the artefact mask (``tv_tensors.Mask``,
    uint8 0/1, HxW) to the output: ``image -> (image, artefact_mask)``,
    ``(image, mask, boxes) -> (image, mask, boxes, artefact_mask)``.

    Works on RGB PIL images and uint8 3xHxW tensors (put it before ``ToDtype``; before the
    geometric augmentations, so that they move the artefact with the image).
    """

    def __init__(
        self,
        p: float = 0.5,
        kinds=None,
        templates="builtin",
        template_scale="auto",
        return_artefact_mask: bool = False,
    ):
        super().__init__()
        self.augmenter = ArtefactAugmenter(
            p=p, kinds=kinds, templates=templates, template_scale=template_scale
        )
        self.return_artefact_mask = bool(return_artefact_mask)
        self.register_forward_hook(_append_artefact_mask)

    @property
    def p(self) -> float:
        return self.augmenter.p

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        """The insertion record (None: the image stays clean), drawn from one torch-drawn seed."""
        seed = int(torch.randint(SEED_LIMIT, (1,)).item())
        image = _image_of(flat_inputs)
        pixels = check_image(_to_pixels(image))
        lesion = next((inpt for inpt in flat_inputs if isinstance(inpt, tv_tensors.Mask)), None)
        lesion_mask = check_lesion_mask(None if lesion is None else _to_mask(lesion), pixels.shape[:2])
        record = self.augmenter.draw(pixels.shape[:2], lesion_mask, seed, pixels)
        return {"image": image, "pixels": pixels, "record": record, "seed": seed}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if inpt is not params["image"] or params["record"] is None:
            return inpt  # masks and boxes, and the image when it stays clean
        out, _ = render(params["pixels"], params["record"], self.augmenter.bank)
        if isinstance(inpt, PIL.Image.Image):
            return PIL.Image.fromarray(out)
        # a channels-last view, as training.data.decode decodes: torch's uint8 resize is fastest on it
        pixels = torch.from_numpy(out).permute(2, 0, 1)
        return tv_tensors.wrap(pixels, like=inpt) if isinstance(inpt, tv_tensors.Image) else pixels

    def extra_repr(self) -> str:
        augmenter = self.augmenter
        weights = ", ".join(f"{k}: {w:.3g}" for k, w in augmenter.weights.items())
        return (
            f"p={augmenter.p}, kinds={{{weights}}}, templates={augmenter.bank.source!r}, "
            f"template_scale={augmenter.template_scale!r}, return_artefact_mask={self.return_artefact_mask}"
        )
