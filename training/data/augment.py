"""``RandomArtefact``: artefact insertion as a torchvision ``transforms.v2`` transform.

A thin wrapper around the numpy :class:`generator.artefacts.augment.ArtefactAugmenter`: the only randomness
it draws is one 63-bit seed from torch's default generator (``torch.randint``), handed to the
augmenter. DataLoader workers seed torch's generator per worker from the loader's own, so a seeded
loader gives the same artefacts on every run (for a given number of workers), and
``ArtefactAugmenter(...)(image, mask, seed)`` reproduces any single call.

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
from torch.utils._pytree import tree_flatten, tree_unflatten
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2._utils import is_pure_tensor

from generator.artefacts.augment import SEED_LIMIT, ArtefactAugmenter


def _image_index(flat_inputs: list[Any]) -> int:
    """Position of the image in the flattened sample, by v2's rule: the first ``tv_tensors.Image``
    or PIL image, else the first plain tensor (other plain tensors, labels say, pass through)."""
    for index, inpt in enumerate(flat_inputs):
        if isinstance(inpt, tv_tensors.Image | PIL.Image.Image):
            return index
    for index, inpt in enumerate(flat_inputs):
        if is_pure_tensor(inpt):
            return index
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

    @property
    def p(self) -> float:
        return self.augmenter.p

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        seed = int(torch.randint(SEED_LIMIT, (1,)).item())
        image = flat_inputs[_image_index(flat_inputs)]
        lesion = next((inpt for inpt in flat_inputs if isinstance(inpt, tv_tensors.Mask)), None)
        pixels = _to_pixels(image)
        out, artefact_mask, record = self.augmenter(
            pixels, None if lesion is None else _to_mask(lesion), seed
        )
        return {
            "image": image,
            "out": out if record is not None else None,
            "artefact_mask": artefact_mask,
            "record": record,
            "seed": seed,
        }

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if inpt is not params["image"] or params["out"] is None:
            return inpt  # masks, and the image when it stays clean
        out = params["out"]
        if isinstance(inpt, PIL.Image.Image):
            return PIL.Image.fromarray(out)
        # a channels-last view, as training.data.variant_dataset decodes: torch's uint8 resize is fastest on it
        pixels = torch.from_numpy(out).permute(2, 0, 1)
        return tv_tensors.wrap(pixels, like=inpt) if isinstance(inpt, tv_tensors.Image) else pixels

    def forward(self, *inputs: Any) -> Any:
        # v2.Transform.forward, plus the artefact mask when asked for (make_params computes it)
        flat_inputs, spec = tree_flatten(inputs if len(inputs) > 1 else inputs[0])
        self.check_inputs(flat_inputs)
        image_index = _image_index(flat_inputs)
        needs_transform = [
            index == image_index or isinstance(inpt, tv_tensors.Mask)
            for index, inpt in enumerate(flat_inputs)
        ]
        params = self.make_params(
            [inpt for inpt, needed in zip(flat_inputs, needs_transform, strict=True) if needed]
        )
        outputs = tree_unflatten(
            [
                self.transform(inpt, params) if needed else inpt
                for inpt, needed in zip(flat_inputs, needs_transform, strict=True)
            ],
            spec,
        )
        if not self.return_artefact_mask:
            return outputs
        artefact_mask = tv_tensors.Mask(torch.from_numpy(params["artefact_mask"].view(np.uint8)))
        return (*outputs, artefact_mask) if len(inputs) > 1 else (outputs, artefact_mask)

    def extra_repr(self) -> str:
        augmenter = self.augmenter
        weights = ", ".join(f"{k}: {w:.3g}" for k, w in augmenter.weights.items())
        return (
            f"p={augmenter.p}, kinds={{{weights}}}, templates={augmenter.bank.source!r}, "
            f"template_scale={augmenter.template_scale!r}, return_artefact_mask={self.return_artefact_mask}"
        )
