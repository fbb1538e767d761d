"""Joint image / lesion mask / box transforms (torchvision.transforms.v2), as in the paper.

Training: random resized crop, rotation, horizontal and vertical flips (geometry applied to the image,
the mask and the box together), then colour jitter (the image only: v2's ColorJitter passes masks and
boxes through untouched). Evaluation: a plain resize, no test-time augmentation.

The box handed to the models is always recomputed from the *transformed* mask: v2 rotates a box by
enclosing its rotated corners, which overstates the lesion extent, while the mask stays exact.
"""

from __future__ import annotations

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

# The lesion must stay in view for the diagnosis label to mean anything, hence the crop floor of 35 %
# of the image area (torchvision's default, 8 %, often crops the lesion away on dermoscopy images).
CROP_SCALE = (0.35, 1.0)
ROTATION_DEGREES = 180.0  # dermoscopy has no canonical orientation
COLOUR_JITTER = {"brightness": 0.2, "contrast": 0.2, "saturation": 0.2, "hue": 0.04}


def _size(image_size) -> tuple[int, int]:
    if isinstance(image_size, int):
        return (image_size, image_size)
    height, width = image_size
    return (int(height), int(width))


def box_from_mask(mask: torch.Tensor) -> torch.Tensor:
    """Tight (x0, y0, x1, y1) float box around the non-zero pixels of an HxW mask.

    x1/y1 are exclusive pixel edges, so a one-pixel lesion has a box of width 1 (detectors reject
    zero-area boxes). An empty mask (the lesion cropped away) gives the whole image: the diagnosis
    still applies to the picture, and a detector target always needs one box.
    """
    height, width = mask.shape[-2:]
    mask2d = mask.reshape(height, width) > 0
    rows = torch.nonzero(mask2d.any(dim=1)).flatten()
    cols = torch.nonzero(mask2d.any(dim=0)).flatten()
    if rows.numel() == 0:
        return torch.tensor([0.0, 0.0, float(width), float(height)])
    return torch.tensor([float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)])


class JointTransform:
    """Apply a v2 pipeline to (image uint8 CxHxW, mask HxW) and return (image float [0,1], mask, box).

    The pipeline sees tv_tensors Image / Mask / BoundingBoxes, so geometric transforms move all three
    together and photometric ones touch the image only.
    """

    def __init__(self, pipeline: v2.Transform):
        self.pipeline = pipeline
        self.to_float = v2.ToDtype(torch.float32, scale=True)

    def __call__(self, image: torch.Tensor, mask: torch.Tensor | None = None):
        """With ``mask=None`` only the image is transformed (the same random draws): (image, None, None)."""
        if mask is None:
            image = self.pipeline(tv_tensors.Image(image)).as_subclass(torch.Tensor)
            return self.to_float(image).contiguous(), None, None
        height, width = image.shape[-2:]
        box = tv_tensors.BoundingBoxes(box_from_mask(mask)[None], format="XYXY", canvas_size=(height, width))
        image, mask, box = self.pipeline(tv_tensors.Image(image), tv_tensors.Mask(mask), box)
        mask = mask.as_subclass(torch.Tensor)
        # contiguous: a reduced-size decode hands over a channels-last view (see training.data)
        image = self.to_float(image.as_subclass(torch.Tensor)).contiguous()
        return image, mask, box_from_mask(mask)

    def __repr__(self) -> str:
        return f"JointTransform({self.pipeline!r})"


def train_transform(image_size) -> JointTransform:
    size = _size(image_size)
    return JointTransform(v2.Compose([
        v2.RandomResizedCrop(size, scale=CROP_SCALE, antialias=True),
        v2.RandomRotation(ROTATION_DEGREES),
        v2.RandomHorizontalFlip(),
        v2.RandomVerticalFlip(),
        v2.ColorJitter(**COLOUR_JITTER),
    ]))


def eval_transform(image_size) -> JointTransform:
    """Resize only (no test-time augmentation)."""
    return JointTransform(v2.Resize(_size(image_size), antialias=True))
