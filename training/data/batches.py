"""The training loop's batches: which targets its datasets read, how a batch is stacked, worker setup.

Items come from :class:`training.data.datasets.HAMArtefacts`; ``training.run`` (engine, prediction)
hands :func:`collate` and :func:`worker_init_fn` to its DataLoaders.
"""

from __future__ import annotations

import torch

from training.data.transforms import box_from_mask


def training_targets(with_masks: bool = False) -> tuple[str, ...]:
    """``target_types`` of the training loop's datasets, as :func:`collate` reads them: the label and
    meta, plus the lesion mask for the detectors (the classifier and every prediction pass read the
    image alone: decoding the mask and moving it through the transforms cost more than the image)."""
    return ("label", "meta", "lesion_mask") if with_masks else ("label", "meta")


def collate(batch: list) -> dict:
    """Stack ``(image, target)`` items of a dataset made with ``target_types=training_targets(...)``
    (all images share one size after the transforms) into the training loop's batch::

        image        N x C x H x W, as the transforms hand it over
        label        int64 N (index into generator.CLASSES)
        image_id     list of N str
        index        int64 N, rows in the file (used to merge predictions across DDP ranks)
        lesion_mask  uint8 N x H x W                                          (with_masks only)
        box          float32 N x 4, x0, y0, x1, y1 around each *transformed* mask (with_masks only)

    The box is computed here, from the transformed mask (:func:`training.data.transforms.box_from_mask`):
    v2 would rotate a box by enclosing its rotated corners, which overstates the lesion extent.
    """
    images = [image for image, _ in batch]
    targets = [target for _, target in batch]
    out = {
        "image": torch.stack(images).as_subclass(torch.Tensor),
        "label": torch.tensor([target[0] for target in targets], dtype=torch.int64),
        "image_id": [target[1]["image_id"] for target in targets],
        "index": torch.tensor([target[1]["index"] for target in targets], dtype=torch.int64),
    }
    if len(targets[0]) > 2:
        masks = [target[2].as_subclass(torch.Tensor) for target in targets]
        out["lesion_mask"] = torch.stack(masks)
        out["box"] = torch.stack([box_from_mask(mask) for mask in masks])
    return out


def worker_init_fn(worker_id: int) -> None:
    """Per-worker setup for DataLoader.

    Randomness needs nothing here: the transforms draw from torch's per-worker generator, which the
    DataLoader seeds from its own (explicitly seeded) ``generator``, and nothing in the data path uses
    numpy's global RNG. One intra-op thread per worker keeps workers from oversubscribing the cores.
    (OpenCV's thread count is left alone: ``cv2.setNumThreads`` in a forked worker can deadlock, and
    its kernels here run on 224 px images, below OpenCV's threshold for going parallel.)
    """
    torch.set_num_threads(1)
