"""The optimizers and learning-rate schedules a run may use: two registries, name -> builder.

``TrainConfig.optimizer`` and ``TrainConfig.schedule`` name an entry; the command line offers their keys
as choices.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

import torch


class Settings(Protocol):
    """The fields of :class:`training.run.config.TrainConfig` the builders read (a Protocol: the config
    module names these registries for its choices, so it is not imported here)."""

    optimizer: str
    lr: float
    momentum: float
    weight_decay: float
    schedule: str
    epochs: int
    step_size: int
    gamma: float


OPTIMIZERS: dict[str, Callable[[Iterable[torch.nn.Parameter], Settings], torch.optim.Optimizer]] = {
    "sgd": lambda params, config: torch.optim.SGD(
        params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    ),
    "adamw": lambda params, config: torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay),
}
SCHEDULES: dict[str, Callable[[torch.optim.Optimizer, Settings], torch.optim.lr_scheduler.LRScheduler]] = {
    "cosine": lambda optimizer, config: torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=config.epochs
    ),
    "step": lambda optimizer, config: torch.optim.lr_scheduler.StepLR(
        optimizer, step_size=config.step_size, gamma=config.gamma
    ),
}


def make_optimizer(config: Settings, model: torch.nn.Module) -> torch.optim.Optimizer:
    """The optimizer of ``config`` over the model's trainable parameters (a detector's frozen stem is not)."""
    return OPTIMIZERS[config.optimizer]([p for p in model.parameters() if p.requires_grad], config)


def make_scheduler(
    config: Settings, optimizer: torch.optim.Optimizer
) -> torch.optim.lr_scheduler.LRScheduler:
    """The learning-rate schedule of ``config``; the loop steps it once per epoch."""
    return SCHEDULES[config.schedule](optimizer, config)
