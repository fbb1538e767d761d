"""Train / validate / checkpoint / resume one run (arch x training variant x fold), on CPU, one GPU or DDP.

One entry point, :func:`train`. Under ``torchrun`` (WORLD_SIZE > 1) it joins the process group,
shards the data with DistributedSampler, and only rank 0 writes; otherwise it is a plain
single-process loop. Everything random is seeded from ``config.seed`` per epoch (augmentations per
epoch and image), so a run stopped at an epoch boundary and resumed from ``last.pt`` ends with exactly
the weights of an uninterrupted run on CPU. On CUDA that holds only within a tolerance: cuDNN's
autotuned kernels and roi_align's backward (atomic adds) are not deterministic.
"""

from __future__ import annotations

import json
import math
import os
import signal
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, RandomSampler, Sampler, SequentialSampler, Subset

from generator import NUM_CLASSES
from generator.atomic import atomic_path, write_json_atomic, write_text_atomic
from generator.errors import RunFailed, UserError
from generator.seeding import derive_seed
from training.data.batches import training_targets
from training.data.datasets import HAMArtefacts
from training.data.folds import fold_indices, folds_for_data
from training.data.transforms import eval_transform, train_transform
from training.models import build_model, has_mask_head, is_detector, needs_masks, resolve_weights
from training.run.distributed import Dist, gather_predictions, init_distributed, pick_device, unwrap
from training.run.inference import amp_scope, channels_last_model, make_loader, predict_loader, to_device

# Training steps between two reads of the loss on the host. Each read waits for the GPU to drain its
# queue; once per 50 steps keeps the queue full while still catching a diverged run within seconds.
SYNC_EVERY_STEPS = 50


@dataclass
class TrainConfig:
    arch: str
    data: str
    train_variant: str = "train_none"
    fold: int = 0
    n_folds: int = 5
    seed: int = 0
    image_size: int = 224
    epochs: int = 30
    batch_size: int = 32
    optimizer: str = "sgd"  # sgd (momentum 0.9) | adamw
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: str = "cosine"  # cosine | step
    step_size: int = 10
    gamma: float = 0.1
    patience: int = 10  # early stopping: epochs without a better validation macro PR-AUC
    grad_clip: float | None = 10.0
    max_train_images: int | None = None  # a seeded subsample (tiny profile), None = the whole fold
    max_val_images: int | None = None
    workers: int = 2
    threads: int | None = None
    device: str = "auto"
    amp: bool = True  # bf16 autocast, CUDA only
    weights: str | None = None
    detector_options: dict = field(default_factory=dict)
    eval_batch_size: int | None = None
    predict: bool = True
    profile: str = "custom"
    augment_artefacts: float = 0.0  # probability of an on-the-fly artefact per training image (any class)
    augment_templates: str = "builtin"  # template bank of those artefacts: builtin or a directory
    augment: str = "paper"  # training augmentation policy (training.data.transforms.AUGMENT_POLICIES)
    # last.pt every this many epochs, plus at the end and when SIGTERM/SIGINT stop the run at an epoch
    # boundary: a ResNet-34 checkpoint with SGD momentum is 170 MB, a noticeable share of a 4 s GPU epoch.
    checkpoint_every: int = 5

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
        from training.models import MODELS

        if self.arch not in MODELS:
            raise UserError(f"--arch: unknown architecture {self.arch!r} (choose from {', '.join(MODELS)})")
        if self.optimizer not in ("sgd", "adamw"):
            raise UserError(f"--optimizer: {self.optimizer!r} is not sgd or adamw")
        if self.schedule not in ("cosine", "step"):
            raise UserError(f"--schedule: {self.schedule!r} is not cosine or step")
        if not 0 <= self.fold < self.n_folds:
            raise UserError(f"--fold: {self.fold} is outside 0..{self.n_folds - 1}")
        from training.data.transforms import AUGMENT_POLICIES

        if self.augment not in AUGMENT_POLICIES:
            raise UserError(f"--augment: {self.augment!r} is not one of {', '.join(AUGMENT_POLICIES)}")
        if not 0.0 <= self.augment_artefacts <= 1.0:
            raise UserError(f"--augment-artefacts: {self.augment_artefacts} is not a probability in [0, 1]")
        if self.augment_templates != "builtin" and not Path(self.augment_templates).is_dir():
            raise UserError(
                f"--augment-templates: {self.augment_templates!r} is neither 'builtin' nor a folder"
            )
        if self.augment_artefacts > 0 and self.augment_templates != "builtin":
            from generator.artefacts.templates import TemplateBank

            TemplateBank.load(self.augment_templates)  # a UserError naming the bad file, before any output
        for name in ("epochs", "batch_size", "image_size", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')}: must be at least 1")


def run_dir_for(
    runs: str | os.PathLike, arch: str, train_variant: str, fold: int, augment_artefacts: float = 0.0
) -> Path:
    """``<runs>/<arch>/<condition>/fold<k>`` (the layout evaluation reads); the condition is the
    training variant, or ``<train_variant>+aug`` with on-the-fly artefacts (training.data.conditions)."""
    from training.data.conditions import condition_label

    return Path(runs) / arch / condition_label(train_variant, augment_artefacts) / f"fold{fold}"


def macro_pr_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Mean one-vs-rest average precision over the classes present in ``y_true``."""
    from sklearn.metrics import average_precision_score

    y_true = np.asarray(y_true)
    values = [
        average_precision_score(y_true == c, scores[:, c])
        for c in range(scores.shape[1])
        if (y_true == c).any()
    ]
    return float(np.mean(values)) if values else float("nan")


def prior_pr_auc(y_true: np.ndarray, num_classes: int = NUM_CLASSES) -> float:
    """Macro PR-AUC of a chance scorer: the mean prevalence of the classes present (the baseline to beat)."""
    y_true = np.asarray(y_true)
    return float(np.mean([(y_true == c).mean() for c in range(num_classes) if (y_true == c).any()]))


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


# --- building blocks --------------------------------------------------------------------------


def make_optimizer(config: TrainConfig, model) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


def make_scheduler(config: TrainConfig, optimizer):
    """Stepped once per epoch."""
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.step_size, gamma=config.gamma)


def _subsample(indices: np.ndarray, limit: int | None, seed: int, key: str) -> np.ndarray:
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
):
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


def _save(obj, path: Path) -> None:
    with atomic_path(path, suffix=".pt.partial") as tmp:
        torch.save(obj, tmp)


def _rng_state(device: torch.device) -> dict:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, device: torch.device) -> None:
    # torch.set_rng_state / torch.cuda.set_rng_state take CPU ByteTensors only (TypeError otherwise),
    # whatever device a checkpoint's tensors were mapped to.
    torch.set_rng_state(state["torch"].cpu())
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)


def resume_from(path: Path, model, optimizer, scheduler, device: torch.device) -> dict:
    """Load ``last.pt`` into the model, optimizer, scheduler and RNGs; returns the loop state.

    Everything loads to the CPU first (the RNG states must stay there; load_state_dict copies the
    weights and the optimizer state onto their parameters' device), so a checkpoint written on any
    device resumes on any other.
    """
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    _set_rng_state(checkpoint["rng"], device)
    return {k: checkpoint[k] for k in ("epoch", "best_metric", "best_epoch", "epochs_without_improvement")}


def _comparable(config: dict) -> dict:
    ignored = (*TrainConfig.RUNTIME_FIELDS, *TrainConfig.RESOLVED_RUNTIME_FIELDS)
    return {k: v for k, v in config.items() if k not in ignored}


def _refuse_other_configuration(run_dir: Path, what: str, changed: list[str]) -> None:
    """UserError naming the fields in which the run in ``run_dir`` differs, if any."""
    if changed:
        raise UserError(
            f"{run_dir}: holds {what} with another configuration ({', '.join(changed)}; "
            "remove the run folder, or write the runs to another folder)"
        )


def finished_summary(config: TrainConfig, run_dir: str | os.PathLike) -> dict | None:
    """DONE's summary when ``run_dir`` holds a finished run of ``config``, None when it holds no finished
    run; UserError when the finished run had another configuration (its config.json differs in a field
    of the experiment), so that a resumed sweep or showcase whose profile changed never mixes old runs
    into new results."""
    from generator.userio import read_json

    run_dir = Path(run_dir)
    done_file = run_dir / "DONE"
    if not done_file.is_file():
        return None
    config_file = run_dir / "config.json"
    if config_file.exists():  # a bare DONE marker (no record at all) still counts as finished, as before
        if not config_file.is_file():
            raise UserError(f"{config_file}: not a file beside DONE; remove the run folder to train it again")
        recorded = read_json(config_file)
        wanted = json.loads(json.dumps(_comparable(asdict(config))))  # as config.json stores it
        # only the TrainConfig fields: config.json also records resolved ones (pretrained, world_size)
        changed = sorted(
            k for k, v in wanted.items() if not isinstance(recorded, dict) or recorded.get(k) != v
        )
        _refuse_other_configuration(run_dir, "a finished run", changed)
    summary = read_json(done_file)
    if not isinstance(summary, dict):
        raise UserError(f"{done_file}: not a run summary (remove the run folder to train it again)")
    return summary


class StopRequest:
    """SIGTERM / SIGINT ask the loop to stop at the next epoch boundary (checkpoint first) instead of
    killing it mid-epoch: a cluster's SIGTERM before the kill then loses no finished epoch although
    last.pt is not written every epoch. :meth:`resend` then delivers the signal as it would have been
    (SIGINT: KeyboardInterrupt; SIGTERM: the default handler ends the process). A second signal acts
    at once. Handlers are installed only in the main thread (Python's rule)."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.signum = None
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _handle(self, signum, frame):
        if self.signum is not None:  # a second signal: act at once
            self.__exit__()
            signal.raise_signal(signum)
            return
        self.signum = signum

    def requested(self, dist: Dist, device: torch.device) -> bool:
        """Whether any rank was asked to stop (one small collective per epoch under DDP)."""
        flag = self.signum is not None
        if dist.enabled:
            on = device if torch.distributed.get_backend() == "nccl" else torch.device("cpu")
            tensor = torch.tensor([int(flag)], device=on)
            torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.MAX)
            flag = bool(tensor.item())
        return flag

    def resend(self) -> None:
        signum = self.signum or signal.SIGTERM
        self.__exit__()
        signal.raise_signal(signum)


# --- the loop ---------------------------------------------------------------------------------


def train(
    config: TrainConfig,
    run_dir: str | os.PathLike,
    *,
    progress: bool = True,
    stop_after_epochs: int | None = None,
) -> dict:
    """Train one run into ``run_dir`` (resuming from ``last.pt`` when present); returns the summary.

    Writes config.json, folds.csv, log.jsonl, last.pt (every ``checkpoint_every`` epochs, at the end,
    and when SIGTERM/SIGINT stop the run at an epoch boundary), best.pt, predictions/ and, last, DONE
    once all 13 prediction tables are complete (so never with ``predict=False``). A run whose DONE
    exists is not retrained; an epoch that lost data or diverged raises RunFailed.
    ``stop_after_epochs`` stops after that many epochs of this call without writing DONE (a
    controlled interruption, for tests and benchmarks).
    """
    from tqdm import tqdm

    config.validate()
    run_dir = Path(run_dir)
    done_file = run_dir / "DONE"
    summary = finished_summary(config, run_dir)
    if summary is not None:
        return summary
    dist = init_distributed(config.device)
    if config.threads:
        torch.set_num_threads(int(config.threads))
    device = pick_device(config.device, dist)
    data_dir = Path(config.data)
    variant_path = data_dir / f"{config.train_variant}.h5"
    if not variant_path.is_file():
        raise UserError(f"{variant_path}: training variant file not found")
    detector = is_detector(config.arch)
    amp = config.amp and device.type == "cuda"
    # cuDNN autotuning pays off for the classifier's fixed input shape; the detectors' RoI heads see
    # a new shape almost every step, and each new shape would be autotuned again.
    torch.backends.cudnn.benchmark = device.type == "cuda" and not detector

    weights = resolve_weights(config.weights)
    resolved = {
        "pretrained": weights is not None,
        "weights_file": str(weights) if weights else None,
        "device": str(device),
        "world_size": dist.world_size,
        "amp_dtype": "bfloat16" if amp else None,
        "torch": torch.__version__,
    }
    config_record = {**asdict(config), **resolved}

    # Folds: once, from train_none, identical for every training variant.
    folds = folds_for_data(data_dir, config.n_folds, config.seed, variant_path)
    # Masks and boxes are detector targets only: the classifier and validation read images alone.
    variant = HAMArtefacts(
        data_dir,
        config.train_variant,
        target_types=training_targets(with_masks=needs_masks(config.arch)),
        transforms=train_transform(
            config.image_size,
            float_output=False,
            augment_artefacts=config.augment_artefacts,
            artefact_templates=config.augment_templates,
            policy=config.augment,
        ),
        decode_size=config.image_size,
    )
    train_idx, val_idx = fold_indices(folds, variant.reader.image_ids, config.fold)
    train_idx = _subsample(train_idx, config.max_train_images, config.seed, "train")
    val_idx = _subsample(val_idx, config.max_val_images, config.seed, "val")
    train_ds = Subset(variant, train_idx.tolist())
    val_variant = HAMArtefacts(
        data_dir,
        config.train_variant,
        target_types=training_targets(),
        transforms=eval_transform(config.image_size, float_output=False),
        decode_size=config.image_size,
    )
    val_ds = Subset(val_variant, val_idx.tolist())

    last_file = run_dir / "last.pt"
    if dist.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        config_file = run_dir / "config.json"
        if last_file.is_file() and config_file.is_file():
            previous, current = _comparable(json.loads(config_file.read_text())), _comparable(config_record)
            changed = sorted(k for k in previous.keys() | current.keys() if previous.get(k) != current.get(k))
            _refuse_other_configuration(run_dir, "a run", changed)
        write_json_atomic(config_file, config_record)
        write_text_atomic(run_dir / "folds.csv", folds.to_csv(index=False, lineterminator="\n"))
    dist.barrier()

    torch.manual_seed(derive_seed(config.seed, "init"))
    model = build_model(
        config.arch, NUM_CLASSES, config.image_size, weights, detector_options=config.detector_options
    ).to(device)
    model, channels_last = channels_last_model(model, config.arch, device)
    optimizer = make_optimizer(config, model)
    scheduler = make_scheduler(config, optimizer)
    state: dict[str, Any] = {
        "epoch": 0,
        "best_metric": -math.inf,
        "best_epoch": -1,
        "epochs_without_improvement": 0,
    }
    if last_file.is_file():
        state = resume_from(last_file, model, optimizer, scheduler, device)
        if dist.is_main:
            _truncate_log(run_dir / "log.jsonl", state["epoch"])
    saved_epoch = state["epoch"]
    if dist.enabled:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )

    batch_size = config.batch_size
    train_loader_, train_sampler = train_loader(train_ds, config, device, dist)
    val_sampler: Sampler
    if dist.enabled:
        from torch.utils.data.distributed import DistributedSampler

        val_sampler = DistributedSampler(val_ds, shuffle=False)
    else:
        val_sampler = SequentialSampler(val_ds)
    # its own generator: a persistent loader draws its workers' base seed once, from the global RNG otherwise
    val_loader = make_loader(
        val_ds,
        config.eval_batch_size or batch_size,
        config.workers,
        device,
        val_sampler,
        generator=torch.Generator().manual_seed(derive_seed(config.seed, "val-loader")),
        persistent=True,
    )
    val_labels = val_variant.labels
    where = f"{run_dir} ({config.arch} {config.train_variant} fold {config.fold})"

    def save_last():
        nonlocal saved_epoch
        if dist.is_main:
            _save(
                {
                    "model": unwrap(model).state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "rng": _rng_state(device),
                    **state,
                },
                last_file,
            )
        saved_epoch = state["epoch"]

    start = time.time()
    epochs_this_call = 0
    stopped_early = False
    with StopRequest() as stop:
        for epoch in range(state["epoch"], config.epochs):
            if state["epochs_without_improvement"] >= config.patience:
                stopped_early = True
                break
            # Per-epoch seeds: shuffling (without DDP) and the model's randomness depend only on
            # (seed, epoch, rank), augmentations on (seed, epoch, row): a resumed run replays exactly
            # the epochs it missed.
            train_sampler.set_epoch(epoch)
            torch.manual_seed(derive_seed(config.seed, "augment", epoch, dist.rank))
            model.train()
            t0 = time.time()
            n_images = 0
            tracker = LossTracker(device, SYNC_EVERY_STEPS, f"{where} epoch {epoch + 1}")
            bar = tqdm(
                train_loader_,
                desc=f"{config.arch} {config.train_variant} fold{config.fold} epoch {epoch + 1}",
                leave=False,
                disable=not (progress and dist.is_main),
            )
            for batch in bar:
                loss = train_step(
                    model, config.arch, batch, optimizer, device, amp, channels_last, config.grad_clip
                )
                n_images += len(batch["label"])
                running = tracker.add(loss)  # a host sync (and the finiteness check) every SYNC_EVERY_STEPS
                if running is not None:
                    bar.set_postfix(loss=f"{running:.3f}")
            train_loss = tracker.mean()  # raises if any loss of the epoch was not finite
            train_seconds = time.time() - t0
            check_epoch(
                run_dir,
                epoch,
                n_images,
                expected_images(
                    len(train_sampler), batch_size, drops_last_batch(len(train_ds), batch_size, dist)
                ),
            )
            lr = optimizer.param_groups[0]["lr"]
            scheduler.step()

            indices, scores, y_pred = gather_predictions(
                dist, *predict_loader(unwrap(model), config.arch, val_loader, device, amp, channels_last)
            )
            y_true = val_labels[indices]
            if not np.isfinite(scores).all():
                raise RunFailed(
                    f"{run_dir}: non-finite validation scores after epoch {epoch + 1} "
                    "(the model diverged; lower --lr)"
                )
            metric = macro_pr_auc(y_true, scores)
            improved = metric > state["best_metric"]
            state["epoch"] = epoch + 1
            if improved:
                state.update(best_metric=metric, best_epoch=epoch + 1, epochs_without_improvement=0)
            else:
                state["epochs_without_improvement"] += 1
            if dist.is_main:
                if improved:
                    _save(unwrap(model).state_dict(), run_dir / "best.pt")
                record = {
                    "epoch": epoch + 1,
                    "train_loss": train_loss,
                    "val_macro_pr_auc": metric,
                    "val_accuracy": float((y_pred == y_true).mean()) if len(y_true) else None,
                    "val_prior_pr_auc": prior_pr_auc(y_true) if len(y_true) else None,
                    "lr": lr,
                    "train_images_per_s": n_images * dist.world_size / max(train_seconds, 1e-9),
                    "seconds": time.time() - t0,
                    "best": improved,
                }
                with open(run_dir / "log.jsonl", "a", encoding="utf-8") as log:
                    log.write(json.dumps(record) + "\n")
            epochs_this_call += 1
            stopping = stop.requested(dist, device)
            interrupted = stop_after_epochs is not None and epochs_this_call >= stop_after_epochs
            if stopping or interrupted or state["epoch"] % config.checkpoint_every == 0:
                save_last()
            dist.barrier()
            if stopping:
                stop.resend()
            if interrupted and state["epoch"] < config.epochs:
                return {"interrupted": True, **state}
    if saved_epoch != state["epoch"]:  # the last epoch, or the one before an early stop
        save_last()
    dist.barrier()

    summary = {
        "arch": config.arch,
        "train_variant": config.train_variant,
        "fold": config.fold,
        "epochs_run": state["epoch"],
        "best_epoch": state["best_epoch"],
        "best_val_macro_pr_auc": state["best_metric"],
        "stopped_early": stopped_early,
        "train_seconds": time.time() - start,
    }
    if config.predict:
        from training.run.predict import check_predictions, predict_variants

        best = torch.load(run_dir / "best.pt", map_location=device, weights_only=True)
        unwrap(model).load_state_dict(best)
        t0 = time.time()
        written = predict_variants(
            unwrap(model),
            config.arch,
            data_dir,
            run_dir / "predictions",
            config.image_size,
            device=device,
            batch_size=config.eval_batch_size or batch_size,
            workers=config.workers,
            amp=amp,
            dist=dist,
            progress=progress,
        )
        summary.update(predictions=len(written), predict_seconds=time.time() - t0)
    if dist.is_main and config.predict:
        # DONE means "ready for evaluation": every test variant predicted, one row per test image
        check_predictions(run_dir / "predictions", data_dir)
        write_json_atomic(done_file, summary)
    dist.barrier()
    return summary


def expected_images(sampler_length: int, batch_size: int, drop_last: bool) -> int:
    """Images one rank's epoch must train on: all its sampler holds, less a dropped last batch."""
    return sampler_length // batch_size * batch_size if drop_last else sampler_length


def check_epoch(run_dir, epoch: int, n_images: int, expected: int) -> None:
    """Refuse an epoch that silently lost data (a loader that stopped early). A diverged epoch is
    refused earlier, by :class:`LossTracker` (its mean raises on a non-finite loss)."""
    if n_images != expected:
        raise RunFailed(
            f"{run_dir}: epoch {epoch + 1} trained on {n_images} of {expected} images "
            "(the data loader stopped early)"
        )


def _truncate_log(path: Path, epochs_done: int) -> None:
    """Drop log lines of epochs the checkpoint does not hold (written just before a kill)."""
    if not path.is_file():
        return
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    kept = [line for line in lines if json.loads(line).get("epoch", 0) <= epochs_done]
    if len(kept) != len(lines):
        write_text_atomic(path, "".join(line + "\n" for line in kept))
