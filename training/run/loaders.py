"""The training and validation loaders of a run, seeded so that a resumed run replays its epochs exactly.

Shuffling depends only on (seed, epoch, rank) and each image's augmentation on (seed, epoch, row), so
neither depends on the process that draws an image, the number of workers, or where a run resumed.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler, Sampler, SequentialSampler

from generator.errors import RunFailed
from generator.seeding import derive_seed
from training.run.config import TrainConfig
from training.run.distributed import Dist
from training.run.inference import make_loader


def subsample(indices: np.ndarray, limit: int | None, seed: int, key: str) -> np.ndarray:
    """A seeded, sorted subsample of ``limit`` of ``indices`` (all of them when there are no more)."""
    if limit is None or len(indices) <= limit:
        return indices
    rng = np.random.default_rng(derive_seed(seed, "subsample", key))
    return np.sort(rng.choice(indices, size=limit, replace=False))


class SampleSeeds(Sampler):
    """Wraps a sampler: yields ``(position, seed)`` with the seed a function of (seed, epoch, position).

    The augmentation of an image then depends on neither the process that draws it (main process
    or any persistent worker, whose own generators run on across epochs) nor the number of ranks:
    under DDP each rank's DistributedSampler holds other positions, so ranks draw different
    augmentations, and a resumed run replays exactly the epochs it missed.

    ``shuffle``: the generator of the wrapped RandomSampler (single process), seeded by
    :meth:`set_epoch` from (seed, epoch, rank). It must not be the DataLoader's own generator: a new
    loader iterator draws its workers' base seed from that one before the sampler draws, while a
    persistent loader's later epochs do not, so sharing it would shuffle a resumed epoch differently.
    """

    def __init__(self, sampler, seed: int, rank: int = 0, shuffle: torch.Generator | None = None):
        self.sampler = sampler
        self.seed = seed
        self.rank = rank
        self.shuffle = shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if self.shuffle is not None:
            self.shuffle.manual_seed(loader_seed(self.seed, epoch, self.rank))
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self):
        for position in self.sampler:
            yield int(position), derive_seed(self.seed, "sample", self.epoch, int(position))


class SeededItems(Dataset):
    """Reads ``dataset[position]`` with torch's CPU generator seeded from the key's seed (the v2
    transforms draw from it), restoring the generator afterwards so that the caller's stream
    (dropout with ``workers=0``) does not depend on the data."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        position, seed = key
        state = torch.get_rng_state()
        torch.default_generator.manual_seed(seed)  # the CPU generator only: CUDA's stays the model's
        try:
            return self.dataset[position]
        finally:
            torch.set_rng_state(state)


def loader_seed(seed: int, epoch: int, rank: int) -> int:
    """Seed of one rank's shuffling generator in one epoch (without DDP; DistributedSampler shuffles
    from (seed, epoch) itself, identically on every rank, and hands each rank other rows)."""
    return derive_seed(seed, "loader", epoch, rank)


def drops_last_batch(n_rows: int, batch_size: int, dist: Dist) -> bool:
    """Whether training drops a short last batch: BatchNorm needs batches > 1, so whenever a rank
    holds more than one batch."""
    return n_rows // dist.world_size > batch_size


def train_loader(
    dataset,
    config: TrainConfig,
    device: torch.device,
    dist: Dist | None = None,
    drop_last: bool | None = None,
) -> tuple[DataLoader, SampleSeeds]:
    """(loader, sampler) for training: augmentations seeded per (seed, epoch, row), workers persistent.
    Call ``sampler.set_epoch(epoch)`` before iterating each epoch."""
    dist = dist or Dist()
    shuffle = None
    base: Sampler
    if dist.enabled:
        from torch.utils.data.distributed import DistributedSampler

        base = DistributedSampler(
            dataset,
            num_replicas=dist.world_size,
            rank=dist.rank,
            shuffle=True,
            seed=config.seed,
            drop_last=True,
        )
    else:
        shuffle = torch.Generator()
        base = RandomSampler(dataset, generator=shuffle)
    sampler = SampleSeeds(base, config.seed, dist.rank, shuffle)
    if drop_last is None:
        drop_last = drops_last_batch(len(dataset), config.batch_size, dist)
    # The loader's own generator only seeds the workers' generators, which draw nothing now.
    workers_generator = torch.Generator().manual_seed(derive_seed(config.seed, "workers", dist.rank))
    loader = make_loader(
        SeededItems(dataset),
        config.batch_size,
        config.workers,
        device,
        sampler,
        workers_generator,
        drop_last,
        persistent=True,
    )
    return loader, sampler


def validation_loader(dataset, config: TrainConfig, device: torch.device, dist: Dist) -> DataLoader:
    """The validation images in order (each rank a shard under DDP), the same loader every epoch."""
    sampler: Sampler
    if dist.enabled:
        from torch.utils.data.distributed import DistributedSampler

        sampler = DistributedSampler(dataset, shuffle=False)
    else:
        sampler = SequentialSampler(dataset)
    # its own generator: a persistent loader draws its workers' base seed once, from the global RNG otherwise
    return make_loader(
        dataset,
        config.eval_batch_size or config.batch_size,
        config.workers,
        device,
        sampler,
        generator=torch.Generator().manual_seed(derive_seed(config.seed, "val-loader")),
        persistent=True,
    )


def expected_images(sampler_length: int, batch_size: int, drop_last: bool) -> int:
    """Images one rank's epoch must train on: all its sampler holds, less a dropped last batch."""
    return sampler_length // batch_size * batch_size if drop_last else sampler_length


def check_epoch(run_dir, epoch: int, n_images: int, expected: int) -> None:
    """Refuse an epoch that silently lost data (a loader that stopped early). A diverged epoch is
    refused earlier, by :class:`training.run.engine.LossTracker` (its mean raises on a non-finite loss)."""
    if n_images != expected:
        raise RunFailed(
            f"{run_dir}: epoch {epoch + 1} trained on {n_images} of {expected} images "
            "(the data loader stopped early)"
        )
