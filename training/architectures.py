"""The architecture registry: every fact about an architecture except how to build it.

This module imports nothing heavy (no torch), so the sweep planner, the CLI and the results site
read the list of architectures, their labels and traits from here; ``training.models`` attaches a
factory to each entry. Adding an architecture is one ``register_architecture(ArchSpec(...))``
entry here plus its ``@register(name)`` factory in training/models.py.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ArchSpec:
    name: str
    label: str
    """How charts and tables name it."""
    detector: bool
    """A torchvision detector (boxes from the lesion mask, one detection -> class scores) rather than
    a classifier; detectors re-batch their inputs internally."""
    needs_masks: bool
    """Its training targets need the lesion masks (detectors derive their boxes from them)."""
    channels_last: bool
    """Run in channels-last memory format on CUDA (a gain for plain convolutions; the detectors'
    transform re-batches inputs into contiguous tensors, which would convert them straight back)."""


ARCHITECTURES: dict[str, ArchSpec] = {}
"""Registry, in the order of the paper's tables (the classifier first)."""


def register_architecture(spec: ArchSpec) -> ArchSpec:
    ARCHITECTURES[spec.name] = spec
    return spec


register_architecture(ArchSpec("resnet34", "ResNet-34", detector=False, needs_masks=False, channels_last=True))
register_architecture(ArchSpec("fasterrcnn_resnet34", "Faster R-CNN", detector=True, needs_masks=True,
                               channels_last=False))
register_architecture(ArchSpec("maskrcnn_resnet34", "Mask R-CNN", detector=True, needs_masks=True,
                               channels_last=False))


def list_architectures() -> list[str]:
    return list(ARCHITECTURES)


def is_detector(arch: str) -> bool:
    spec = ARCHITECTURES.get(arch)
    return bool(spec and spec.detector)


def uses_channels_last(arch: str, device_type: str) -> bool:
    """The one channels-last rule of training and prediction: CUDA, and an architecture that gains."""
    spec = ARCHITECTURES.get(arch)
    return device_type == "cuda" and bool(spec and spec.channels_last)


def arch_label(arch: str) -> str:
    spec = ARCHITECTURES.get(arch)
    return spec.label if spec else arch
