"""One training step and the epoch's loss: the per-batch part of the loop in :mod:`training.run.engine`.

A step never reads a value back to the host, so the CPU queues the next steps while the GPU works;
:class:`LossTracker` reads the losses back in bulk and refuses a non-finite one.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from generator.errors import RunFailed
from training.models import has_mask_head, is_detector
from training.run.inference import amp_scope, to_device

# Training steps between two reads of the loss on the host. Each read waits for the GPU to drain its
# queue; once per 50 steps keeps the queue full while still catching a diverged run within seconds.
SYNC_EVERY_STEPS = 50


def training_loss(
    model, arch: str, batch: dict, device: torch.device, amp: bool, channels_last: bool = False
) -> torch.Tensor:
    """Loss of one batch: cross-entropy for the classifier, the summed R-CNN losses for the detectors.

    Detector targets: one object per image, the lesion-mask box, the diagnosis (+1, 0 is background)
    as its label and, for Mask R-CNN, the lesion mask as its mask.
    """
    images, labels = to_device(batch, device, channels_last)
    with amp_scope(model, arch, device.type, amp and device.type == "cuda"):
        if not is_detector(arch):
            return F.cross_entropy(model(images).float(), labels)
        non_blocking = device.type == "cuda"
        boxes = batch["box"].to(device, non_blocking=non_blocking)
        masks = batch["lesion_mask"].to(device, non_blocking=non_blocking) if has_mask_head(arch) else None
        targets = []
        for i in range(len(images)):
            target = {"boxes": boxes[i : i + 1], "labels": labels[i : i + 1] + 1}
            if masks is not None:
                target["masks"] = masks[i : i + 1]
            targets.append(target)
        losses = model(list(images), targets)
        return sum(loss.float() for loss in losses.values())


def train_step(
    model,
    arch: str,
    batch: dict,
    optimizer,
    device: torch.device,
    amp: bool,
    channels_last: bool = False,
    grad_clip: float | None = None,
) -> torch.Tensor:
    """One optimisation step of the training loop; returns the detached loss, still on the device.

    Nothing here reads a value back to the host (no ``.item()``, no ``if`` on a tensor), so the CPU
    can queue the next steps while the GPU works; :class:`LossTracker` checks the losses in bulk.
    """
    loss = training_loss(model, arch, batch, device, amp, channels_last)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return loss.detach()


class LossTracker:
    """Sums step losses on the device and reads the sum back every ``sync_every`` steps and at
    :meth:`mean` (the host syncs of an epoch), raising there if any loss so far was not finite.

    A non-finite loss is caught up to ``sync_every`` steps late: the weights it touched are never
    checkpointed, since the error ends the epoch before its checkpoint.
    """

    def __init__(self, device: torch.device, sync_every: int = SYNC_EVERY_STEPS, what: str = "training"):
        self.total = torch.zeros((), dtype=torch.float64, device=device)
        self.sync_every = max(1, int(sync_every))
        self.what = what
        self.steps = 0
        self.checked = 0  # steps whose losses are known finite

    def add(self, loss: torch.Tensor) -> float | None:
        """Add one step's loss; every ``sync_every`` steps returns the running mean (after the check)."""
        self.total += loss
        self.steps += 1
        return self.mean() if self.steps % self.sync_every == 0 else None

    def mean(self) -> float:
        """The mean loss of the steps so far (one host sync); raises if it is not finite."""
        if self.steps == 0:
            return float("nan")
        value = float(self.total.item())
        if not math.isfinite(value):
            raise RunFailed(
                f"{self.what}: non-finite loss at step {self.checked + 1}..{self.steps}; lower --lr"
            )
        self.checked = self.steps
        return value / self.steps
