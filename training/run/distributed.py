"""torchrun / DDP plumbing shared by training and prediction: the process group, the device, and
merging the shards each rank predicted."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from generator.errors import UserError


@dataclass
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            torch.distributed.barrier()


def _wants_cuda(spec: str) -> bool:
    return torch.cuda.is_available() if spec == "auto" else torch.device(spec).type == "cuda"


def init_distributed(device_spec: str = "auto") -> Dist:
    """Join the torchrun process group when WORLD_SIZE > 1: nccl when training on CUDA, gloo otherwise
    (``--device cpu`` on a GPU machine included)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Dist()
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        if _wants_cuda(device_spec):
            # NCCL binds its communicator to the current device: set it before joining, and name it
            # (device_id), or every rank's first collective may land on cuda:0.
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
            dist.init_process_group("nccl", device_id=device)
        else:
            dist.init_process_group("gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), local_rank)


def pick_device(spec: str, dist: Dist) -> torch.device:
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(spec)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError("--device: CUDA requested but no GPU is available")
        device = torch.device("cuda", dist.local_rank if dist.enabled else (device.index or 0))
        torch.cuda.set_device(device)
    return device


def gather_predictions(dist: Dist, indices: np.ndarray, scores: np.ndarray, y_pred: np.ndarray):
    """Merge the shards of all ranks, dropping the duplicates DistributedSampler pads with."""
    if dist.enabled:
        parts: list[Any] = [None] * dist.world_size
        torch.distributed.all_gather_object(parts, (indices, scores, y_pred))
        indices = np.concatenate([p[0] for p in parts])
        scores = np.concatenate([p[1] for p in parts])
        y_pred = np.concatenate([p[2] for p in parts])
    indices, first = np.unique(indices, return_index=True)
    return indices, scores[first], y_pred[first]


# --- metrics ----------------------------------------------------------------------------------


def unwrap(model):
    """The model inside a DistributedDataParallel wrapper (the model itself when not wrapped)."""
    return model.module if hasattr(model, "module") else model
