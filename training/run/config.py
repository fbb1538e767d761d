"""The training configuration: one :class:`TrainConfig` per run, each field documented where it is declared.

A field's metadata holds its help text, its choices (a function returning the names of the registry
the value comes from) and whether ``train`` / ``sweep`` expose it as an override flag; the command
line (training.cli) is generated from them, and :meth:`TrainConfig.validate` checks every field with
the same facts. No torch here: the CLI builds its parser from this module.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from generator.errors import UserError
from generator.variants import CLEAN_TRAIN

DEVICES = ("auto", "cpu", "cuda")
"""Device names a run accepts; ``cuda:N`` picks one GPU (under torchrun each rank takes its LOCAL_RANK)."""
_CUDA_INDEX = re.compile(r"cuda:\d+")


def check_device(spec: str) -> str:
    """``spec`` when it names a device (:data:`DEVICES` or ``cuda:N``), else a UserError."""
    if spec not in DEVICES and not _CUDA_INDEX.fullmatch(spec):
        raise UserError(f"--device: {spec!r} is not {', '.join(DEVICES)} or cuda:N")
    return spec


def _architectures() -> list[str]:
    from training.models import MODELS

    return list(MODELS)


def _train_variants() -> list[str]:
    from generator.variants import list_variants

    return list_variants("train")


def _optimizers() -> list[str]:
    from training.run.optim import OPTIMIZERS

    return list(OPTIMIZERS)


def _schedules() -> list[str]:
    from training.run.optim import SCHEDULES

    return list(SCHEDULES)


def _augment_policies() -> list[str]:
    from training.data.transforms import AUGMENT_POLICIES

    return list(AUGMENT_POLICIES)


def _setting(
    default: Any = MISSING,
    help: str = "",
    *,
    default_factory: Any = MISSING,
    choices: Callable[[], Sequence[str]] | None = None,
    override: bool = False,
    minimum: float | None = None,
) -> Any:
    """A TrainConfig field and its metadata: ``help``; ``choices``, a function returning the allowed names
    (called only when needed: most registries import torch); ``override``, whether the ``train`` and
    ``sweep`` commands offer it as a flag that overrides the profile; ``minimum``, its lowest valid value."""
    metadata = {"help": help, "choices": choices, "override": override, "minimum": minimum}
    return field(default=default, default_factory=default_factory, metadata=metadata)


@dataclass
class TrainConfig:
    """Everything that decides what one run (arch x training variant x fold) trains, and how."""

    arch: str = _setting(help="the architecture", choices=_architectures)
    data: str = _setting(help="folder of <variant>.h5 files")
    train_variant: str = _setting(CLEAN_TRAIN, "the training variant", choices=_train_variants)
    fold: int = _setting(0, "the cross-validation fold validated on (0..n_folds-1)")
    n_folds: int = _setting(5, "cross-validation folds, grouped by lesion", minimum=2)
    seed: int = _setting(0, "seeds the folds, the initialisation, the shuffling and every augmentation")
    image_size: int = _setting(224, "model input size in pixels (square)", override=True, minimum=1)
    epochs: int = _setting(30, "most epochs to train", override=True, minimum=1)
    batch_size: int = _setting(32, "training batch size (per rank under torchrun)", override=True, minimum=1)
    optimizer: str = _setting(
        "sgd", "the optimizer (SGD with momentum, or AdamW)", choices=_optimizers, override=True
    )
    lr: float = _setting(0.01, "initial learning rate", override=True)
    momentum: float = _setting(0.9, "SGD momentum")
    weight_decay: float = _setting(1e-4, "weight decay")
    schedule: str = _setting(
        "cosine",
        "learning-rate schedule, stepped once an epoch: cosine annealing to 0 over --epochs, or step "
        "(x gamma every step_size epochs)",
        choices=_schedules,
        override=True,
    )
    step_size: int = _setting(10, "epochs between two decays of the step schedule", minimum=1)
    gamma: float = _setting(0.1, "decay factor of the step schedule")
    patience: int = _setting(
        10, "early stopping: epochs without a better validation macro PR-AUC", override=True, minimum=1
    )
    grad_clip: float | None = _setting(10.0, "clip the gradient norm to this (None: no clipping)")
    max_train_images: int | None = _setting(
        None, "train on a seeded subsample of this many images of the fold", override=True, minimum=1
    )
    max_val_images: int | None = _setting(
        None, "validate on a seeded subsample of this many images of the fold", minimum=1
    )
    workers: int = _setting(
        2, "data-loader worker processes (0: load in the main process)", override=True, minimum=0
    )
    threads: int | None = _setting(None, "CPU threads of torch (default: torch's choice)", override=True)
    device: str = _setting("auto", "auto (a GPU when there is one), cpu, cuda or cuda:N", override=True)
    amp: bool = _setting(True, "bf16 autocast on CUDA", override=True)
    weights: str | None = _setting(
        None,
        "ImageNet ResNet-34 weights file (default: $TORCH_HOME/hub/checkpoints/resnet34-b627a593.pth, "
        "random initialisation without it)",
        override=True,
    )
    detector_options: dict = _setting(
        help="torchvision R-CNN settings and head sizes (training.models.HEAD_OPTIONS)",
        default_factory=dict,
    )
    eval_batch_size: int | None = _setting(
        None, "batch size of validation and prediction (default: --batch-size)", minimum=1
    )
    predict: bool = _setting(True, "test-variant predictions by best.pt after training")
    profile: str = _setting("custom", "the profile the settings came from (recorded, not read)")
    augment_artefacts: float = _setting(
        0.0,
        "probability of an on-the-fly artefact on each training image, whatever its class (the run "
        "folder is then <train_variant>+aug)",
        override=True,
    )
    augment_templates: str = _setting(
        "builtin", "template bank of those artefacts: builtin or a folder", override=True
    )
    augment: str = _setting("paper", "training augmentation policy", choices=_augment_policies, override=True)
    # A ResNet-34 checkpoint with SGD momentum is 170 MB, a noticeable share of a 4 s GPU epoch.
    checkpoint_every: int = _setting(
        5,
        "write last.pt every this many epochs (and at the end, and when SIGTERM/SIGINT stop the run at "
        "an epoch boundary)",
        minimum=1,
    )

    # Settings of the machine rather than the experiment: a resume may change them (bit-exact resume
    # needs the same ones). ``workers`` is among them: every image's augmentation is seeded by
    # (seed, epoch, row), whichever process draws it.
    RUNTIME_FIELDS = ("threads", "device", "predict", "eval_batch_size", "workers", "checkpoint_every")
    # Resolved values recorded in config.json that describe the machine, not the experiment: a run
    # started on CPU may resume on a GPU (its AMP dtype then changes with it).
    RESOLVED_RUNTIME_FIELDS = ("device", "amp_dtype", "torch", "weights_file")

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserError(f"config: unknown fields {', '.join(unknown)}")
        return cls(**values)

    def validate(self) -> None:
        """UserError naming the first invalid field (as its command-line flag), before any work."""
        for name in FIELDS:
            check_value(name, getattr(self, name))
        if not 0 <= self.fold < self.n_folds:
            raise UserError(f"--fold: {self.fold} is outside 0..{self.n_folds - 1}")
        if self.augment_artefacts > 0 and self.augment_templates != "builtin":
            from generator.artefacts.templates import TemplateBank

            TemplateBank.load(self.augment_templates)  # a UserError naming the bad file, before any output


FIELDS = {f.name: f for f in fields(TrainConfig)}


def flag_of(name: str) -> str:
    """The command-line flag of a TrainConfig field (``max_train_images`` -> ``--max-train-images``)."""
    return "--" + name.replace("_", "-")


def choices_of(name: str) -> list[str] | None:
    """The allowed values of a field, from its registry (None: any value of its type)."""
    choices = FIELDS[name].metadata["choices"]
    return list(choices()) if choices else None


def check_value(name: str, value: Any) -> None:
    """UserError when ``value`` is not valid for the field ``name`` on its own (cross-field rules are
    :meth:`TrainConfig.validate`'s); the CLI checks its overrides with it before any work."""
    flag = flag_of(name)
    choices = choices_of(name)
    if choices is not None and value not in choices:
        raise UserError(f"{flag}: {value!r} is not one of {', '.join(choices)}")
    minimum = FIELDS[name].metadata["minimum"]
    if minimum is not None and value is not None and value < minimum:
        raise UserError(f"{flag}: must be at least {minimum}")
    if name == "device":
        check_device(value)
    elif name == "augment_artefacts" and not 0.0 <= value <= 1.0:
        raise UserError(f"{flag}: {value} is not a probability in [0, 1]")
    elif name == "augment_templates" and value != "builtin" and not Path(value).is_dir():
        raise UserError(f"{flag}: {value!r} is neither 'builtin' nor a folder")


RUN_LOCK_WAIT_S = 10.0
"""How long ``train``, ``predict`` and ``sweep run --index`` wait for another process writing the run
folder before they stop (``--wait``)."""

DATA_RECORD = "data_record"
"""The config.json key of what a run read (generator.variants.verified.data_record: the manifest's and
each variant file's SHA-256). Not a setting: a resumed run compares it on its own (other data is
refused with the files named), and runs recorded before it existed stay the same runs."""


def comparable(record: dict) -> dict:
    """A config.json record without the machine's settings and the data record: what must match for a
    run to be the same."""
    ignored = (*TrainConfig.RUNTIME_FIELDS, *TrainConfig.RESOLVED_RUNTIME_FIELDS, DATA_RECORD)
    return {k: v for k, v in record.items() if k not in ignored}


# A run folder holds this marker once every prediction table is complete ("ready for evaluation").
DONE_NAME = "DONE"


def run_dir_for(
    runs: str | os.PathLike, arch: str, train_variant: str, fold: int, augment_artefacts: float = 0.0
) -> Path:
    """``<runs>/<arch>/<condition>/fold<k>`` (the layout evaluation reads); the condition is the
    training variant, or ``<train_variant>+aug`` with on-the-fly artefacts (training.data.conditions)."""
    from training.data.conditions import condition_label

    return Path(runs) / arch / condition_label(train_variant, augment_artefacts) / f"fold{fold}"
