"""Joint image / lesion mask / box transforms (torchvision.transforms.v2), as in the paper.

Training: random resized crop, rotation, horizontal and vertical flips (geometry applied to the image,
the mask and the box together), then colour jitter (the image only: v2's ColorJitter passes masks and
boxes through untouched). Evaluation: a plain resize, no test-time augmentation.

The detectors' box is recomputed from the *transformed* mask (:func:`training.data.batches.collate`):
v2 rotates a box by enclosing its rotated corners, which overstates the lesion extent, while the mask
stays exact.
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

# The lesion must stay in view for the diagnosis label to mean anything, hence the crop floor of 35 %
# of the image area (torchvision's default, 8 %, often crops the lesion away on dermoscopy images).
CROP_SCALE = (0.35, 1.0)
ROTATION_DEGREES = 180.0  # dermoscopy has no canonical orientation
COLOUR_JITTER = {"brightness": 0.2, "contrast": 0.2, "saturation": 0.2, "hue": 0.04}
# Training augmentation policies (``TrainConfig.augment``). "dihedral" exists for small from-scratch
# models on the synthetic twin: at 64 px the paper's policy hid the artefacts themselves (a probe that
# only had to tell artefact from clean images stayed near chance loss after 8,000 images with it,
# and learnt with this one; site/study.md, "Can the model see the artefacts?"): crops of 35 % of the area
# drop peripheral artefacts (vertical rulers), and rotations by any angle paint black corners.
AUGMENT_POLICIES = {
    "paper": "random resized crop (35-100 % of the area), rotation by any angle, horizontal and vertical flips, "
    "colour jitter",
    "dihedral": "random resized crop (80-100 % of the area), a rotation by a multiple of 90 degrees and flips "
    "(no black corners), no colour jitter",
}
DIHEDRAL_CROP_SCALE = (0.8, 1.0)


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
    mask2d = mask.reshape(height, width)
    if mask2d.device.type == "cpu":  # the data path: one OpenCV call instead of six small torch ops
        import cv2

        x, y, box_w, box_h = cv2.boundingRect((mask2d.as_subclass(torch.Tensor).numpy() > 0).view(np.uint8))
        if box_w == 0:
            return torch.tensor([0.0, 0.0, float(width), float(height)])
        return torch.tensor([float(x), float(y), float(x + box_w), float(y + box_h)])
    mask2d = mask2d > 0
    rows = torch.nonzero(mask2d.any(dim=1)).flatten()
    cols = torch.nonzero(mask2d.any(dim=0)).flatten()
    if rows.numel() == 0:
        return torch.tensor([0.0, 0.0, float(width), float(height)])
    return torch.tensor([float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)])


class OpenCVColorJitter(v2.ColorJitter):
    """``v2.ColorJitter`` (same parameters, same random draws, same order of the four adjustments)
    computed with OpenCV on uint8 HxWx3 pixels: about 5x cheaper than torchvision's tensor kernels,
    whose hue shift alone (a float HSV round trip in many small ops) costs more than the whole rest
    of the training augmentation. Results agree with torchvision's tensor kernels within 1 grey
    level (tests/test_fast_kernels.py). PIL images and uint8 tensors take this path; anything else
    (float tensors) falls back to torchvision's kernels; masks and boxes pass through untouched.
    """

    def transform(self, inpt, params: dict):
        from PIL import Image

        if isinstance(inpt, Image.Image) and inpt.mode == "RGB":
            return Image.fromarray(jitter_colours(np.asarray(inpt), params))
        if (
            isinstance(inpt, tv_tensors.Image)
            and inpt.dtype == torch.uint8
            and inpt.ndim == 3
            and inpt.shape[0] == 3
        ):
            pixels = jitter_colours(np.ascontiguousarray(inpt.permute(1, 2, 0).numpy()), params)
            return tv_tensors.wrap(torch.from_numpy(pixels).permute(2, 0, 1), like=inpt)
        return super().transform(inpt, params)


def jitter_colours(pixels: np.ndarray, params: dict) -> np.ndarray:
    """Apply the adjustments of a ``ColorJitter`` parameter draw to uint8 HxWx3 RGB, in its order.

    Each step follows torchvision's definition: brightness scales, contrast blends with the mean
    grey level, saturation blends with the grey image, hue rotates the HSV hue (by hue_factor turns).
    """
    import cv2

    for index in params["fn_idx"].tolist():
        if index == 0 and params["brightness_factor"] is not None:
            pixels = cv2.addWeighted(pixels, params["brightness_factor"], pixels, 0.0, 0.0)
        elif index == 1 and params["contrast_factor"] is not None:
            factor = params["contrast_factor"]
            mean = float(cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY).mean())
            pixels = cv2.addWeighted(pixels, factor, pixels, 0.0, mean * (1.0 - factor))
        elif index == 2 and params["saturation_factor"] is not None:
            factor = params["saturation_factor"]
            grey = cv2.cvtColor(cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
            pixels = cv2.addWeighted(pixels, factor, grey, 1.0 - factor, 0.0)
        elif index == 3 and params["hue_factor"] is not None:
            # float32 HSV with the hue in degrees: OpenCV's 8-bit HSV quantises the hue to 256 steps,
            # which moves saturated colours by up to 10 levels
            hsv = cv2.cvtColor(pixels.astype(np.float32) * np.float32(1 / 255), cv2.COLOR_RGB2HSV)
            hue = hsv[..., 0]
            np.add(hue, np.float32(params["hue_factor"] * 360.0), out=hue)
            np.mod(hue, np.float32(360.0), out=hue)
            pixels = cv2.convertScaleAbs(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB), alpha=255.0)
    return pixels


def _is_uint8_planes(inpt) -> bool:
    """A uint8 image (CxHxW) or mask (HxW or 1xHxW) tensor that OpenCV can take as HxWxC pixels."""
    if not isinstance(inpt, tv_tensors.Image | tv_tensors.Mask) or inpt.dtype != torch.uint8:
        return False
    return inpt.ndim == 2 or (inpt.ndim == 3 and inpt.shape[0] <= 4)


def rotate_uint8(planes: torch.Tensor, angle: float) -> torch.Tensor:
    """``F.rotate(planes, angle)`` (counter-clockwise about the centre, same size, nearest, fill 0)
    by one OpenCV warp of the uint8 pixels: CxHxW or HxW in, the same shape out (channels-last)."""
    import cv2

    height, width = planes.shape[-2:]
    pixels = planes.numpy() if planes.ndim == 2 else np.ascontiguousarray(planes.permute(1, 2, 0).numpy())
    matrix = cv2.getRotationMatrix2D(((width - 1) / 2.0, (height - 1) / 2.0), float(angle), 1.0)
    rotated = cv2.warpAffine(
        pixels,
        matrix,
        (width, height),
        flags=cv2.INTER_NEAREST,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    if planes.ndim == 2:
        return torch.from_numpy(rotated)
    return torch.from_numpy(rotated.reshape(height, width, -1)).permute(2, 0, 1)


class OpenCVRandomRotation(v2.RandomRotation):
    """``v2.RandomRotation`` (same angle draw) whose uint8 image and mask kernels are one OpenCV
    warp: torchvision's tensor kernel converts to float and grid-samples (about 2.5 ms for a 224 px
    mask, 0.1 ms here). Boxes, float tensors, PIL images and non-default options (expand, a centre,
    a fill, bilinear) use torchvision's kernels.
    """

    def transform(self, inpt, params: dict):
        nearest = getattr(self.interpolation, "value", self.interpolation) in ("nearest", 0)
        default = not self.expand and self.center is None and nearest and self.fill in (0, None)
        if default and _is_uint8_planes(inpt):
            return tv_tensors.wrap(rotate_uint8(inpt.as_subclass(torch.Tensor), params["angle"]), like=inpt)
        return super().transform(inpt, params)


class JointTransform:
    """A v2 pipeline that hands the image over as a plain float [0, 1] CxHxW tensor (uint8 with
    ``float_output=False``), usable as a dataset's joint ``transforms`` (``(image, target) ->
    (image, target)``, e.g. :class:`training.data.datasets.HAMArtefacts`) or as an image
    ``transform`` (``image -> image``).

    The image is a uint8 CxHxW tensor (a channels-last view is fastest) or a PIL image. The pipeline
    sees it as a tv_tensors Image beside the target's Masks and BoundingBoxes, so geometric
    transforms move them all together and photometric ones touch the image only; the target comes
    back as the pipeline returns it.
    """

    def __init__(self, pipeline: v2.Transform, float_output: bool = True):
        self.pipeline = pipeline
        self.float_output = float_output
        """False: hand the image over as uint8 (0-255), for the consumer to scale on its device
        (``training.run.engine``): a quarter of the bytes through the DataLoader's worker queues and the
        host-to-device copy."""
        self.to_float = v2.ToDtype(torch.float32, scale=True)

    def _finish(self, image) -> torch.Tensor:
        from PIL import Image

        if isinstance(image, Image.Image):
            image = v2.functional.pil_to_tensor(image)
        image = image.as_subclass(torch.Tensor)
        # contiguous: a channels-last view (see training.data.datasets) must not reach the model as such
        return (self.to_float(image) if self.float_output else image).contiguous()

    def __call__(self, image, target=None):
        """``image -> image`` without a target, ``(image, target) -> (image, target)`` with one."""
        from PIL import Image

        if not isinstance(image, Image.Image):
            image = tv_tensors.Image(image)
        if target is None:
            return self._finish(self.pipeline(image))
        image, target = self.pipeline(image, target)
        return self._finish(image), target

    def __repr__(self) -> str:
        return f"JointTransform({self.pipeline!r})"


def train_transform(
    image_size,
    float_output: bool = True,
    augment_artefacts: float = 0.0,
    artefact_templates="builtin",
    policy: str = "paper",
) -> JointTransform:
    """The paper's augmentations, ordered for speed: the crop first (everything after it works on
    the small crop), on a uint8 tensor (torch's antialiased resize, fastest on a channels-last
    view); rotation and colour jitter use OpenCV kernels for uint8 pixels (same parameters and
    random draws as torchvision's). Masks and boxes follow every geometric step.

    ``augment_artefacts`` > 0 first inserts a random artefact with that probability, whatever the
    class (:class:`training.data.augment.RandomArtefact`): before the crop, so the artefact is cropped,
    rotated and colour-jittered like the skin under it, as a frozen variant's artefact is; the
    lesion mask and box are left as they are. ``policy`` is a key of :data:`AUGMENT_POLICIES`."""
    if policy not in AUGMENT_POLICIES:
        raise ValueError(f"augment policy {policy!r} is not one of {', '.join(AUGMENT_POLICIES)}")
    size = _size(image_size)
    artefacts = []
    if augment_artefacts > 0:
        from training.data.augment import RandomArtefact

        artefacts = [RandomArtefact(p=augment_artefacts, templates=artefact_templates)]
    if policy == "dihedral":
        return JointTransform(
            v2.Compose(
                [
                    *artefacts,
                    v2.RandomResizedCrop(size, scale=DIHEDRAL_CROP_SCALE, antialias=True),
                    v2.RandomChoice(
                        [OpenCVRandomRotation((angle, angle)) for angle in (0.0, 90.0, 180.0, 270.0)]
                    ),
                    v2.RandomHorizontalFlip(),
                ]
            ),
            float_output,
        )
    return JointTransform(
        v2.Compose(
            [
                *artefacts,
                v2.RandomResizedCrop(size, scale=CROP_SCALE, antialias=True),
                OpenCVRandomRotation(ROTATION_DEGREES),
                v2.RandomHorizontalFlip(),
                v2.RandomVerticalFlip(),
                OpenCVColorJitter(**COLOUR_JITTER),
            ]
        ),
        float_output,
    )


def eval_transform(image_size, float_output: bool = True) -> JointTransform:
    """Resize only (no test-time augmentation)."""
    return JointTransform(v2.Resize(_size(image_size), antialias=True), float_output)
