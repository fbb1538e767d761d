"""Train / validate / checkpoint / resume one run (arch x training variant x fold), on CPU, one GPU or DDP.

Read :func:`train` top to bottom: every file the run will read is checked against the data folder's
manifest first (:func:`~training.run.inputs.open_inputs`), the run folder's lock is taken (one writer per
folder), :func:`setup` builds the run (device, data, model, optimizer, schedule; resumed from
``last.pt`` when there is one), then each epoch is :func:`train_one_epoch` and
:func:`validate`, the :class:`~training.run.checkpoint.Checkpointer` keeps best.pt, last.pt and the log,
and the best weights predict every test variant at the end.

Under ``torchrun`` (WORLD_SIZE > 1) it joins the process group, shards the data with
DistributedSampler, and only rank 0 writes; otherwise it is a plain single-process loop. Everything
random is seeded from ``config.seed`` per epoch (augmentations per epoch and image), so a run stopped
at an epoch boundary and resumed from ``last.pt`` ends with exactly the weights of an uninterrupted
run on CPU. On CUDA that holds only within a tolerance: cuDNN's autotuned kernels and roi_align's
backward (atomic adds) are not deterministic.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from generator import NUM_CLASSES
from generator.errors import RunFailed
from generator.seeding import derive_seed
from training.data.batches import training_targets
from training.data.datasets import HAMArtefacts
from training.data.folds import fold_indices
from training.data.transforms import eval_transform, train_transform
from training.models import build_model, is_detector, needs_masks, resolve_weights
from training.run.checkpoint import (
    Checkpointer,
    StopRequest,
    TrainState,
    finished_summary,
    resume_from,
    run_folder_lock,
)
from training.run.config import DATA_RECORD, RUN_LOCK_WAIT_S, TrainConfig, run_dir_for
from training.run.distributed import Dist, gather_predictions, init_distributed, pick_device, unwrap
from training.run.inference import amp_scope, channels_last_model, predict_loader
from training.run.inputs import RunInputs, open_inputs
from training.run.loaders import (
    SampleSeeds,
    check_epoch,
    drops_last_batch,
    expected_images,
    loader_seed,
    subsample,
    train_loader,
    validation_loader,
)
from training.run.metrics import macro_pr_auc, prior_pr_auc
from training.run.optim import make_optimizer, make_scheduler
from training.run.steps import SYNC_EVERY_STEPS, LossTracker, train_step, training_loss

# Names the tests, benchmarks and users import from here, wherever they live now.
__all__ = [
    "SYNC_EVERY_STEPS",
    "Checkpointer",
    "Dist",
    "LossTracker",
    "SampleSeeds",
    "StopRequest",
    "TrainConfig",
    "TrainState",
    "amp_scope",
    "check_epoch",
    "expected_images",
    "finished_summary",
    "gather_predictions",
    "init_distributed",
    "loader_seed",
    "macro_pr_auc",
    "make_optimizer",
    "make_scheduler",
    "prior_pr_auc",
    "resume_from",
    "run_dir_for",
    "setup",
    "train",
    "train_loader",
    "train_one_epoch",
    "train_step",
    "training_loss",
    "validate",
]

logger = logging.getLogger(__name__)


# --- setup ------------------------------------------------------------------------------------


@dataclass
class Run:
    """Everything :func:`setup` builds for one run; the loop reads it and updates ``state``."""

    config: TrainConfig
    checkpoints: Checkpointer
    dist: Dist
    device: torch.device
    amp: bool
    """bf16 autocast (CUDA only)."""
    model: torch.nn.Module
    """Wrapped in DistributedDataParallel under torchrun (:func:`unwrap` gives the model)."""
    channels_last: bool
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    train_loader: DataLoader
    train_sampler: SampleSeeds
    drop_last: bool
    val_loader: DataLoader
    val_labels: np.ndarray
    """Labels of every row of the variant file (validation rows are looked up by row index)."""
    state: TrainState

    @property
    def where(self) -> str:
        """How errors name the run."""
        config = self.config
        return f"{self.checkpoints.run_dir} ({config.arch} {config.train_variant} fold {config.fold})"


def setup(config: TrainConfig, run_dir: str | os.PathLike, inputs: RunInputs | None = None) -> Run:
    """The device, the fold's data, the model, optimizer and schedule of ``config``, with config.json and
    folds.csv written and the state of ``last.pt`` loaded when the run was interrupted before.
    ``inputs``: the checked files (:func:`~training.run.inputs.open_inputs` of ``config`` by default)."""
    inputs = inputs or open_inputs(config)
    dist = init_distributed(config.device)
    if config.threads:
        torch.set_num_threads(int(config.threads))
    device = pick_device(config.device, dist)
    data_dir = Path(config.data)
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

    # Folds: once, from train_none, identical for every training variant.
    folds = inputs.folds
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
    train_idx = subsample(train_idx, config.max_train_images, config.seed, "train")
    val_idx = subsample(val_idx, config.max_val_images, config.seed, "val")
    train_ds = Subset(variant, train_idx.tolist())
    val_variant = HAMArtefacts(
        data_dir,
        config.train_variant,
        target_types=training_targets(),
        transforms=eval_transform(config.image_size, float_output=False),
        decode_size=config.image_size,
    )
    val_ds = Subset(val_variant, val_idx.tolist())

    checkpoints = Checkpointer(run_dir, dist)
    checkpoints.begin(
        {**asdict(config), **resolved, DATA_RECORD: inputs.record},
        folds.to_csv(index=False, lineterminator="\n"),
    )

    torch.manual_seed(derive_seed(config.seed, "init"))
    model = build_model(
        config.arch, NUM_CLASSES, config.image_size, weights, detector_options=config.detector_options
    ).to(device)
    model, channels_last = channels_last_model(model, config.arch, device)
    optimizer = make_optimizer(config, model)
    scheduler = make_scheduler(config, optimizer)
    state = checkpoints.resume(model, optimizer, scheduler, device)
    if dist.enabled:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    loader, sampler = train_loader(train_ds, config, device, dist)
    return Run(
        config=config,
        checkpoints=checkpoints,
        dist=dist,
        device=device,
        amp=amp,
        model=model,
        channels_last=channels_last,
        optimizer=optimizer,
        scheduler=scheduler,
        train_loader=loader,
        train_sampler=sampler,
        drop_last=drops_last_batch(len(train_ds), config.batch_size, dist),
        val_loader=validation_loader(val_ds, config, device, dist),
        val_labels=val_variant.labels,
        state=state,
    )


# --- one epoch --------------------------------------------------------------------------------


def train_one_epoch(run: Run, epoch: int, progress: bool = True) -> dict:
    """Train ``epoch`` (0-based) and step the schedule; returns its ``train_loss``, ``images`` (this
    rank's), ``seconds`` and the ``lr`` it trained with. RunFailed when a loss was not finite or the
    loader stopped early."""
    from tqdm import tqdm

    config = run.config
    # Per-epoch seeds: shuffling (without DDP) and the model's randomness depend only on
    # (seed, epoch, rank), augmentations on (seed, epoch, row): a resumed run replays exactly
    # the epochs it missed.
    run.train_sampler.set_epoch(epoch)
    torch.manual_seed(derive_seed(config.seed, "augment", epoch, run.dist.rank))
    run.model.train()
    t0 = time.time()
    n_images = 0
    tracker = LossTracker(run.device, SYNC_EVERY_STEPS, f"{run.where} epoch {epoch + 1}")
    bar = tqdm(
        run.train_loader,
        desc=f"{config.arch} {config.train_variant} fold{config.fold} epoch {epoch + 1}",
        leave=False,
        disable=not (progress and run.dist.is_main),
    )
    for batch in bar:
        loss = train_step(
            run.model,
            config.arch,
            batch,
            run.optimizer,
            run.device,
            run.amp,
            run.channels_last,
            config.grad_clip,
        )
        n_images += len(batch["label"])
        running = tracker.add(loss)  # a host sync (and the finiteness check) every SYNC_EVERY_STEPS
        if running is not None:
            bar.set_postfix(loss=f"{running:.3f}")
    train_loss = tracker.mean()  # raises if any loss of the epoch was not finite
    seconds = time.time() - t0
    expected = expected_images(len(run.train_sampler), config.batch_size, run.drop_last)
    check_epoch(run.checkpoints.run_dir, epoch, n_images, expected)
    lr = run.optimizer.param_groups[0]["lr"]
    run.scheduler.step()
    return {"train_loss": train_loss, "images": n_images, "seconds": seconds, "lr": lr}


def validate(run: Run, epoch: int) -> dict:
    """Score the validation fold (every rank's shard, merged); returns ``val_macro_pr_auc`` (what picks
    the best epoch), ``val_accuracy`` and ``val_prior_pr_auc`` (the class-prior baseline)."""
    indices, scores, y_pred = gather_predictions(
        run.dist,
        *predict_loader(
            unwrap(run.model), run.config.arch, run.val_loader, run.device, run.amp, run.channels_last
        ),
    )
    y_true = run.val_labels[indices]
    if not np.isfinite(scores).all():
        raise RunFailed(
            f"{run.checkpoints.run_dir}: non-finite validation scores after epoch {epoch + 1} "
            "(the model diverged; lower --lr)"
        )
    return {
        "val_macro_pr_auc": macro_pr_auc(y_true, scores),
        "val_accuracy": float((y_pred == y_true).mean()) if len(y_true) else None,
        "val_prior_pr_auc": prior_pr_auc(y_true) if len(y_true) else None,
    }


# --- the loop ---------------------------------------------------------------------------------


def train(
    config: TrainConfig,
    run_dir: str | os.PathLike,
    *,
    progress: bool = True,
    stop_after_epochs: int | None = None,
    wait: float = RUN_LOCK_WAIT_S,
) -> dict:
    """Train one run into ``run_dir`` (resuming from ``last.pt`` when present); returns the summary.

    Every input is checked (:func:`~training.run.inputs.open_inputs`) before the folder is touched; then
    the folder's lock is held to the end (another process writing it is waited for ``wait`` seconds,
    then :class:`~training.run.checkpoint.RunFolderBusy` names it).

    Writes config.json, folds.csv, log.jsonl, last.pt (every ``checkpoint_every`` epochs, at the end,
    and when SIGTERM/SIGINT stop the run at an epoch boundary), best.pt, predictions/ and, last, DONE
    once all 13 prediction tables are complete (so never with ``predict=False``). A run whose DONE
    exists is not retrained; an epoch that lost data or diverged raises RunFailed.
    ``stop_after_epochs`` stops after that many epochs of this call without writing DONE (a
    controlled interruption, for tests and benchmarks).
    """
    config.validate()
    summary = finished_summary(config, run_dir)
    if summary is None:
        inputs = open_inputs(config)
        with run_folder_lock(run_dir, wait):
            # finished by the process this one waited for: never trained twice
            summary = finished_summary(config, run_dir)
            if summary is None:
                return _train(config, run_dir, inputs, progress, stop_after_epochs)
    logger.debug("%s: finished earlier (DONE)", run_dir)
    return summary


def _train(
    config: TrainConfig,
    run_dir: str | os.PathLike,
    inputs: RunInputs,
    progress: bool,
    stop_after_epochs: int | None,
) -> dict:
    """:func:`train`'s loop, with the inputs checked and the run folder's lock held."""
    run = setup(config, run_dir, inputs)
    state, checkpoints = run.state, run.checkpoints

    def save_last() -> None:
        checkpoints.save_last(run.model, run.optimizer, run.scheduler, run.device, state)

    start = time.time()
    epochs_this_call = 0
    stopped_early = False
    with StopRequest() as stop:
        for epoch in range(state.epoch, config.epochs):
            if state.epochs_without_improvement >= config.patience:
                stopped_early = True
                break
            epoch_start = time.time()
            trained = train_one_epoch(run, epoch, progress)
            scores = validate(run, epoch)
            improved = state.end_epoch(scores["val_macro_pr_auc"])
            if improved:
                checkpoints.save_best(run.model)
            record = {
                "epoch": state.epoch,
                "train_loss": trained["train_loss"],
                **scores,
                "lr": trained["lr"],
                "train_images_per_s": trained["images"] * run.dist.world_size / max(trained["seconds"], 1e-9),
                "seconds": time.time() - epoch_start,
                "best": improved,
            }
            checkpoints.log_epoch(record)
            logger.debug("%s epoch %d: %s", run.where, state.epoch, record)
            epochs_this_call += 1
            stopping = stop.requested(run.dist, run.device)
            interrupted = stop_after_epochs is not None and epochs_this_call >= stop_after_epochs
            if stopping or interrupted or state.epoch % config.checkpoint_every == 0:
                save_last()
            run.dist.barrier()
            if stopping:
                stop.resend()
            if interrupted and state.epoch < config.epochs:
                return {"interrupted": True, **asdict(state)}
    if checkpoints.saved_epoch != state.epoch:  # the last epoch, or the one before an early stop
        save_last()
    run.dist.barrier()

    summary = {
        "arch": config.arch,
        "train_variant": config.train_variant,
        "fold": config.fold,
        "epochs_run": state.epoch,
        "best_epoch": state.best_epoch,
        "best_val_macro_pr_auc": state.best_metric,
        "stopped_early": stopped_early,
        "train_seconds": time.time() - start,
    }
    if config.predict:
        from training.run.predict import predict_after_training

        summary.update(
            predict_after_training(config, checkpoints, run.model, run.device, run.amp, run.dist, progress)
        )
        checkpoints.mark_done(summary)
    run.dist.barrier()
    return summary
