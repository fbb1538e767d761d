"""Forward passes shared by training (validation) and prediction: the data loader, moving a batch to
the device, bf16 autocast, the channels-last rule, and scoring every image a loader yields.

training.run.engine (training) and training.run.predict (test-variant tables) both build on this module, so
neither imports the other's internals.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict

import numpy as np
import torch
from torch.utils.data import DataLoader
from torchvision.transforms.v2.functional import to_dtype

from generator import NUM_CLASSES
from training.data.batches import collate, worker_init_fn
from training.models import is_detector, uses_channels_last
from training.models.detector_scores import boxes_only, image_scores
from training.run.distributed import unwrap


def channels_last_model(model, arch: str, device: torch.device):
    """(model, channels_last): the model in the memory format :func:`training.models.uses_channels_last`
    picks for ``arch`` on ``device``; batches must then go through :func:`to_device` with the same flag
    (a contiguous model would convert channels-last inputs straight back)."""
    channels_last = uses_channels_last(arch, device.type)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model, channels_last


@contextlib.contextmanager
def amp_scope(model, arch: str, device_type: str, enabled: bool):
    """bf16 autocast (no loss scaling needed) over the classifier, or over a detector's backbone only.

    A detector's RPN and RoI heads stay in float32: under autocast their linear layers would hand
    bf16 box deltas to the box coder, and bf16 quantises coordinates of a 448 px image to 2-4 px
    (and far coarser after batched_nms's per-class coordinate offsets). The ResNet-34 + FPN backbone
    holds most of the FLOPs, so the heads in float32 cost little. The engine enables it on CUDA only
    (bf16 on most CPUs is slower than float32).
    """
    if not enabled:
        yield
        return
    if not is_detector(arch):
        with torch.autocast(device_type, dtype=torch.bfloat16):
            yield
        return
    backbone = unwrap(model).backbone
    original = backbone.forward

    def forward(images):
        with torch.autocast(device_type, dtype=torch.bfloat16):
            features = original(images)
        return OrderedDict((name, value.float()) for name, value in features.items())

    backbone.forward = forward  # an instance attribute: the state dict and module tree are unchanged
    try:
        yield
    finally:
        del backbone.forward


def to_device(batch: dict, device: torch.device, channels_last: bool):
    non_blocking = device.type == "cuda"
    images = batch["image"].to(device, non_blocking=non_blocking)
    if images.dtype == torch.uint8:  # the loaders hand over uint8 (a quarter of the bytes): scale here
        images = to_dtype(images, torch.float32, scale=True)  # torchvision's arithmetic, bit for bit
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    labels = batch["label"].to(device, non_blocking=non_blocking)
    return images, labels


@torch.no_grad()
def predict_loader(
    model,
    arch: str,
    loader,
    device: torch.device,
    amp: bool,
    channels_last: bool = False,
    progress: bool = False,
    desc: str = "predict",
):
    """(row indices, scores N x 7, y_pred) of every image the loader yields. Scores: softmax
    probabilities (classifier) or the detector rule of :mod:`training.models.detector_scores`."""
    from tqdm import tqdm

    model.eval()
    all_indices, all_scores, all_pred = [], [], []
    with boxes_only(model):
        for batch in tqdm(loader, desc=desc, leave=False, disable=not progress):
            images, _ = to_device(batch, device, channels_last)
            with amp_scope(model, arch, device.type, amp and device.type == "cuda"):
                if is_detector(arch):
                    scores, y_pred = image_scores(model(list(images)), NUM_CLASSES)
                else:
                    probs = torch.softmax(model(images).float(), dim=1).cpu().numpy().astype(np.float64)
                    scores, y_pred = probs, probs.argmax(axis=1)
            all_indices.append(batch["index"].numpy())
            all_scores.append(scores)
            all_pred.append(y_pred)
    if not all_indices:
        return np.zeros(0, np.int64), np.zeros((0, NUM_CLASSES)), np.zeros(0, np.int64)
    return np.concatenate(all_indices), np.concatenate(all_scores), np.concatenate(all_pred)


def make_loader(
    dataset,
    batch_size: int,
    workers: int,
    device: torch.device,
    sampler=None,
    generator=None,
    drop_last: bool = False,
    persistent: bool = False,
) -> DataLoader:
    """``persistent``: keep the workers between epochs (forking 8-14 workers, each importing torch and
    opening the HDF5 file, costs seconds an epoch); for loaders iterated more than once."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=device.type == "cuda",
        drop_last=drop_last,
        generator=generator,
        worker_init_fn=worker_init_fn if workers > 0 else None,
        persistent_workers=persistent and workers > 0,
        prefetch_factor=4 if workers > 0 else None,
    )
