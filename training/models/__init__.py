"""The three architectures of the paper, in a registry: ``resnet34``, ``fasterrcnn_resnet34``, ``maskrcnn_resnet34``.

All models take images in [0, 1]: the classifier normalises with the ImageNet statistics inside its
forward, the detectors inside their GeneralizedRCNNTransform.

ImageNet ResNet-34 weights are read from ``--weights PATH`` or
``$TORCH_HOME/hub/checkpoints/resnet34-b627a593.pth`` (``~/.cache/torch`` when TORCH_HOME is unset);
nothing is ever downloaded. Without them the backbone starts from random init, with a warning.
The detector heads always train from scratch (torchvision has no ResNet-34 detection weights).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from generator import NUM_CLASSES

if TYPE_CHECKING:
    from torch import nn

# torch is imported inside the functions that build or load models: the sweep planner, the CLI and
# the results site read the registry below without it.


@dataclass(frozen=True)
class ArchSpec:
    """Every fact about an architecture besides its factory (the function it decorates)."""

    name: str
    label: str
    """How charts and tables name it."""
    detector: bool
    """A torchvision detector (boxes from the lesion mask, detections -> class scores) rather than a
    classifier; detectors re-batch their inputs internally."""
    needs_masks: bool
    """Its training targets need the lesion masks (the detectors derive their boxes from them)."""
    mask_head: bool
    """It also trains on the lesion mask itself (Mask R-CNN's mask branch)."""
    channels_last: bool
    """Run in channels-last memory format on CUDA: a gain for plain convolutions, while a detector's
    transform re-batches its inputs into contiguous tensors, which would convert them straight back."""


ARCHITECTURES: dict[str, ArchSpec] = {}
"""The architecture registry, in the order of the paper's tables (the classifier first)."""
MODELS: dict[str, Callable[..., nn.Module]] = {}
"""Architecture name -> factory. A factory put here without a spec (a test's stand-in model) is a
plain classifier: the trait helpers below answer False for it."""
IMAGENET_FILE = "resnet34-b627a593.pth"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def register(spec: ArchSpec):
    """Decorator adding an architecture: its spec and its factory, one entry."""
    if not isinstance(spec, ArchSpec):
        raise TypeError(f"register takes an ArchSpec, got {spec!r}")

    def wrap(factory):
        ARCHITECTURES[spec.name] = spec
        MODELS[spec.name] = factory
        return factory

    return wrap


def list_models() -> list[str]:
    return list(MODELS)


def list_architectures() -> list[str]:
    return list(ARCHITECTURES)


def is_detector(arch: str) -> bool:
    spec = ARCHITECTURES.get(arch)
    return bool(spec and spec.detector)


def needs_masks(arch: str) -> bool:
    spec = ARCHITECTURES.get(arch)
    return bool(spec and spec.needs_masks)


def has_mask_head(arch: str) -> bool:
    spec = ARCHITECTURES.get(arch)
    return bool(spec and spec.mask_head)


def uses_channels_last(arch: str, device_type: str) -> bool:
    """The one channels-last rule of training and prediction: CUDA, and an architecture that gains."""
    spec = ARCHITECTURES.get(arch)
    return device_type == "cuda" and bool(spec and spec.channels_last)


def arch_label(arch: str) -> str:
    spec = ARCHITECTURES.get(arch)
    return spec.label if spec else arch


def default_weights_path() -> Path:
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "torch"
    )
    return Path(torch_home) / "hub" / "checkpoints" / IMAGENET_FILE


def resolve_weights(weights: str | os.PathLike | None) -> Path | None:
    """The ImageNet checkpoint to use: an explicit path (must exist), else the torch hub cache, else None."""
    from generator.errors import UserError

    if weights:
        path = Path(weights)
        if not path.is_file():
            raise UserError(f"--weights: {path} not found")
        return path
    path = default_weights_path()
    if path.is_file():
        return path
    warnings.warn(
        f"ImageNet ResNet-34 weights not found at {path} (pass --weights PATH or place the file there); "
        "training from random initialisation",
        stacklevel=2,
    )
    return None


def _imagenet_state(path: Path | None) -> dict | None:
    if path is None:
        return None
    from training.models.checkpoints import load_checkpoint

    return load_checkpoint(path, remedy="pass --weights with an intact resnet34-b627a593.pth, or none")


def _resnet34_classifier(num_classes: int) -> nn.Module:
    import torch
    from torchvision.models.resnet import BasicBlock, ResNet

    class ResNet34Classifier(ResNet):
        """torchvision ResNet-34 with a ``num_classes`` fc layer, normalising [0, 1] inputs itself.

        Its state dict is a plain torchvision ResNet's (``conv1``, ``layer4``, ``fc``...), so ImageNet
        checkpoints load by key and Grad-CAM can target ``model.layer4[-1]``.
        """

        def __init__(self, num_classes: int):
            super().__init__(BasicBlock, [3, 4, 6, 3], num_classes=num_classes)
            self.register_buffer("input_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
            self.register_buffer("input_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return super().forward((x - self.input_mean) / self.input_std)

    return ResNet34Classifier(num_classes)


@register(
    ArchSpec("resnet34", "ResNet-34", detector=False, needs_masks=False, mask_head=False, channels_last=True)
)
def build_resnet34(
    num_classes: int = NUM_CLASSES,
    image_size: int = 224,
    weights=None,
    pretrained_layout=None,
    detector_options=None,
) -> nn.Module:
    model = _resnet34_classifier(num_classes)
    state = _imagenet_state(weights)
    if state is not None:
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        missing, unexpected = model.load_state_dict(state, strict=False)
        if set(missing) != {"fc.weight", "fc.bias"} or unexpected:
            raise ValueError(
                f"{weights}: not a ResNet-34 checkpoint (missing {missing[:3]}, unexpected {unexpected[:3]})"
            )
    return model


def _detector_backbone(weights: Path | None, pretrained_layout: bool | None):
    """ResNet-34 FPN backbone, set up as torchvision does for its own detectors.

    With ImageNet weights: frozen BatchNorm and the first layers frozen (3 trainable stages). Without:
    ordinary BatchNorm and every stage trainable, since frozen identity BN would cripple a network
    trained from scratch. ``pretrained_layout`` forces one layout (rebuilding a trained model
    without the ImageNet file, e.g. for Grad-CAM).
    """
    from torch import nn
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
    from torchvision.ops import misc as misc_nn_ops

    pretrained = weights is not None if pretrained_layout is None else bool(pretrained_layout)
    backbone = resnet_fpn_backbone(
        backbone_name="resnet34",
        weights=None,
        norm_layer=misc_nn_ops.FrozenBatchNorm2d if pretrained else nn.BatchNorm2d,
        trainable_layers=3 if pretrained else 5,
    )
    state = _imagenet_state(weights)
    if state is not None:
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        missing, unexpected = backbone.body.load_state_dict(state, strict=False)
        if unexpected or any(not k.endswith("num_batches_tracked") for k in missing):
            raise ValueError(f"{weights}: not a ResNet-34 checkpoint")
    return backbone


def _anchor_generator(image_size: int):
    """Anchors scaled to the image: lesions are large, centred objects (1/8 .. 2x the image side)."""
    from torchvision.models.detection.anchor_utils import AnchorGenerator

    side = int(image_size)
    sizes = tuple((max(4, int(round(side * f))),) for f in (0.125, 0.25, 0.5, 1.0, 2.0))
    return AnchorGenerator(sizes, ((0.5, 1.0, 2.0),) * len(sizes))


# Head-size options (not torchvision keyword arguments): they build smaller RoI heads, for the tiny CPU
# profile, where torchvision's defaults (a 12544 -> 1024 box MLP, four 256-channel convolutions on
# 14x14 mask RoIs) cost far more than the ResNet-34 backbone at 64 px.
HEAD_OPTIONS = ("box_representation_size", "mask_roi_size", "mask_head_layers")


def _heads(num_classes: int, options: dict, mask: bool) -> dict:
    """torchvision head modules for the HEAD_OPTIONS present in ``options`` (none: torchvision's own)."""
    from torchvision.ops import MultiScaleRoIAlign

    kwargs = {}
    if options.get("box_representation_size"):
        from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead

        size = int(options["box_representation_size"])
        kwargs["box_head"] = TwoMLPHead(256 * 7 * 7, size)  # 256 FPN channels, 7x7 box RoIs
        kwargs["box_predictor"] = FastRCNNPredictor(size, num_classes)
    if mask and (options.get("mask_roi_size") or options.get("mask_head_layers")):
        from torchvision.models.detection.mask_rcnn import MaskRCNNHeads

        kwargs["mask_roi_pool"] = MultiScaleRoIAlign(
            ["0", "1", "2", "3"], int(options.get("mask_roi_size") or 14), 2
        )
        kwargs["mask_head"] = MaskRCNNHeads(256, [256] * int(options.get("mask_head_layers") or 4), 1)
    if mask and "box_predictor" in kwargs:
        # torchvision takes num_classes only when it builds both predictors itself
        from torchvision.models.detection.mask_rcnn import MaskRCNNPredictor

        kwargs["mask_predictor"] = MaskRCNNPredictor(256, 256, num_classes)
    return kwargs


def _detector_kwargs(image_size: int, num_classes: int, options: dict | None, mask: bool = False) -> dict:
    """min_size = max_size = the training resolution (no upscaling to torchvision's default 800 px),
    box_score_thresh=0 (every class keeps its detections), plus ``options``: torchvision FasterRCNN
    keyword arguments such as rpn_post_nms_top_n_train or box_batch_size_per_image (the tiny CPU
    profile lowers the proposal and RoI counts; they change no weights) and the HEAD_OPTIONS."""
    options = dict(options or {})
    kwargs = {
        "min_size": int(image_size),
        "max_size": int(image_size),
        "box_score_thresh": 0.0,
        "rpn_anchor_generator": _anchor_generator(image_size),
        **_heads(num_classes, options, mask),
    }
    kwargs.update({k: v for k, v in options.items() if k not in HEAD_OPTIONS})
    if "box_predictor" in kwargs:
        return kwargs | {"num_classes": None}
    return kwargs | {"num_classes": num_classes}


@register(
    ArchSpec(
        "fasterrcnn_resnet34",
        "Faster R-CNN",
        detector=True,
        needs_masks=True,
        mask_head=False,
        channels_last=False,
    )
)
def build_fasterrcnn_resnet34(
    num_classes: int = NUM_CLASSES,
    image_size: int = 224,
    weights=None,
    pretrained_layout=None,
    detector_options=None,
) -> nn.Module:
    from torchvision.models.detection import FasterRCNN

    # +1: class 0 is the detector's background.
    return FasterRCNN(
        _detector_backbone(weights, pretrained_layout),
        **_detector_kwargs(image_size, num_classes + 1, detector_options),
    )


@register(
    ArchSpec(
        "maskrcnn_resnet34",
        "Mask R-CNN",
        detector=True,
        needs_masks=True,
        mask_head=True,
        channels_last=False,
    )
)
def build_maskrcnn_resnet34(
    num_classes: int = NUM_CLASSES,
    image_size: int = 224,
    weights=None,
    pretrained_layout=None,
    detector_options=None,
) -> nn.Module:
    from torchvision.models.detection import MaskRCNN

    return MaskRCNN(
        _detector_backbone(weights, pretrained_layout),
        **_detector_kwargs(image_size, num_classes + 1, detector_options, mask=True),
    )


def build_model(
    arch: str,
    num_classes: int = NUM_CLASSES,
    image_size: int = 224,
    weights=None,
    pretrained_layout: bool | None = None,
    detector_options: dict | None = None,
) -> nn.Module:
    """Build ``arch`` from the registry. ``weights``: an ImageNet ResNet-34 state-dict file, or None.

    ``pretrained_layout`` (detectors only) picks the frozen-BN layout used with ImageNet weights even
    when ``weights`` is None; :func:`load_trained` sets it from the run's config.
    """
    from generator.errors import UserError

    if arch not in MODELS:
        raise UserError(f"--arch: unknown architecture {arch!r} (choose from {', '.join(MODELS)})")
    weights = Path(weights) if weights else None
    return MODELS[arch](
        num_classes=num_classes,
        image_size=image_size,
        weights=weights,
        pretrained_layout=pretrained_layout,
        detector_options=detector_options,
    )


def load_trained(
    run_dir: str | os.PathLike, checkpoint: str = "best.pt", map_location="cpu"
) -> tuple[nn.Module, dict]:
    """Rebuild a trained model from ``<run_dir>/config.json`` and load ``checkpoint`` (weights_only)."""
    from generator.userio import read_json

    run_dir = Path(run_dir)
    config = read_json(run_dir / "config.json")
    if (
        not isinstance(config, dict)
        or not isinstance(config.get("arch"), str)
        or not isinstance(config.get("image_size"), int)
    ):
        from generator.errors import UserError

        raise UserError(f"{run_dir / 'config.json'}: not a run configuration (needs arch and image_size)")
    model = build_model(
        config["arch"],
        num_classes=NUM_CLASSES,
        image_size=config["image_size"],
        pretrained_layout=config.get("pretrained", False),
        detector_options=config.get("detector_options"),
    )
    from training.models.checkpoints import load_checkpoint

    state = load_checkpoint(run_dir / checkpoint, map_location=map_location)
    model.load_state_dict(state)
    model.eval()
    return model, config
