"""Train / validate / checkpoint / resume one run (arch x training variant x fold), on CPU, one GPU or DDP.

One entry point, :func:`train`. Under ``torchrun`` (WORLD_SIZE > 1) it joins the process group,
shards the data with DistributedSampler, and only rank 0 writes; otherwise it is a plain
single-process loop. Everything random is seeded from ``config.seed`` per epoch, so a run killed at any
point and resumed from ``last.pt`` ends with exactly the weights of an uninterrupted run.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, RandomSampler, SequentialSampler
from torchvision.transforms.v2.functional import to_dtype

from generator.atomic import atomic_path, write_json_atomic, write_text_atomic
from generator.errors import RunFailed, UserError
from generator.seeding import derive_seed

from .data import HDF5VariantDataset, collate, worker_init_fn
from .detector_scores import boxes_only, image_scores
from .folds import fold_indices, folds_for_data
from .models import build_model, is_detector, resolve_weights
from .transforms import eval_transform, train_transform

NUM_CLASSES = 7


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

    # Settings of the machine rather than the experiment: a resume may change them (bit-exact resume
    # needs the same ones). ``workers`` is not among them: with workers, augmentations draw from
    # per-worker generators instead of the main process's, so it changes the run.
    RUNTIME_FIELDS = ("threads", "device", "predict", "eval_batch_size")

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserError(f"config: unknown fields {', '.join(unknown)}")
        return cls(**values)

    def validate(self) -> None:
        from .models import MODELS

        if self.arch not in MODELS:
            raise UserError(f"--arch: unknown architecture {self.arch!r} (choose from {', '.join(MODELS)})")
        if self.optimizer not in ("sgd", "adamw"):
            raise UserError(f"--optimizer: {self.optimizer!r} is not sgd or adamw")
        if self.schedule not in ("cosine", "step"):
            raise UserError(f"--schedule: {self.schedule!r} is not cosine or step")
        if not 0 <= self.fold < self.n_folds:
            raise UserError(f"--fold: {self.fold} is outside 0..{self.n_folds - 1}")
        if not 0.0 <= self.augment_artefacts <= 1.0:
            raise UserError(f"--augment-artefacts: {self.augment_artefacts} is not a probability in [0, 1]")
        if self.augment_templates != "builtin" and not Path(self.augment_templates).is_dir():
            raise UserError(f"--augment-templates: {self.augment_templates!r} is neither 'builtin' nor a folder")
        if self.augment_artefacts > 0 and self.augment_templates != "builtin":
            from generator.templates import TemplateBank

            TemplateBank.load(self.augment_templates)  # a UserError naming the bad file, before any output
        for name in ("epochs", "batch_size", "image_size"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')}: must be at least 1")


def run_dir_for(runs: str | os.PathLike, arch: str, train_variant: str, fold: int) -> Path:
    """``<runs>/<arch>/<train_variant>/fold<k>`` (the layout evaluation reads)."""
    return Path(runs) / arch / train_variant / f"fold{fold}"


# --- distributed helpers ----------------------------------------------------------------------

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


def init_distributed() -> Dist:
    """Join the torchrun process group when WORLD_SIZE > 1 (nccl on CUDA, gloo on CPU)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Dist()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


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
        parts = [None] * dist.world_size
        torch.distributed.all_gather_object(parts, (indices, scores, y_pred))
        indices = np.concatenate([p[0] for p in parts])
        scores = np.concatenate([p[1] for p in parts])
        y_pred = np.concatenate([p[2] for p in parts])
    indices, first = np.unique(indices, return_index=True)
    return indices, scores[first], y_pred[first]


# --- metrics ----------------------------------------------------------------------------------

def macro_pr_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Mean one-vs-rest average precision over the classes present in ``y_true``."""
    from sklearn.metrics import average_precision_score

    y_true = np.asarray(y_true)
    values = [average_precision_score(y_true == c, scores[:, c])
              for c in range(scores.shape[1]) if (y_true == c).any()]
    return float(np.mean(values)) if values else float("nan")


def prior_pr_auc(y_true: np.ndarray, num_classes: int = NUM_CLASSES) -> float:
    """Macro PR-AUC of a chance scorer: the mean prevalence of the classes present (the baseline to beat)."""
    y_true = np.asarray(y_true)
    return float(np.mean([(y_true == c).mean() for c in range(num_classes) if (y_true == c).any()]))


# --- forward passes ---------------------------------------------------------------------------

def _autocast(device: torch.device, amp: bool):
    # bf16 needs no loss scaling; on CPU autocast stays off (slower than fp32 on most CPUs).
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda")


def _to_device(batch: dict, device: torch.device, channels_last: bool):
    non_blocking = device.type == "cuda"
    images = batch["image"].to(device, non_blocking=non_blocking)
    if images.dtype == torch.uint8:  # the loaders hand over uint8 (a quarter of the bytes): scale here
        images = to_dtype(images, torch.float32, scale=True)  # torchvision's arithmetic, bit for bit
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    labels = batch["label"].to(device, non_blocking=non_blocking)
    return images, labels


def training_loss(model, arch: str, batch: dict, device: torch.device, amp: bool,
                  channels_last: bool = False) -> torch.Tensor:
    """Loss of one batch: cross-entropy for the classifier, the summed R-CNN losses for the detectors.

    Detector targets: one object per image, the lesion-mask box, the diagnosis (+1, 0 is background)
    as its label and, for Mask R-CNN, the lesion mask as its mask.
    """
    images, labels = _to_device(batch, device, channels_last)
    with _autocast(device, amp):
        if not is_detector(arch):
            return F.cross_entropy(model(images).float(), labels)
        non_blocking = device.type == "cuda"
        boxes = batch["box"].to(device, non_blocking=non_blocking)
        masks = batch["lesion_mask"].to(device, non_blocking=non_blocking) if arch.startswith("mask") else None
        targets = []
        for i in range(len(images)):
            target = {"boxes": boxes[i:i + 1], "labels": labels[i:i + 1] + 1}
            if masks is not None:
                target["masks"] = masks[i:i + 1]
            targets.append(target)
        losses = model(list(images), targets)
        return sum(loss.float() for loss in losses.values())


@torch.no_grad()
def predict_loader(model, arch: str, loader, device: torch.device, amp: bool, channels_last: bool = False,
                   progress: bool = False, desc: str = "predict"):
    """(row indices, scores N x 7, y_pred) of every image the loader yields. Scores: softmax
    probabilities (classifier) or the detector rule of :mod:`training.detector_scores`."""
    from tqdm import tqdm

    model.eval()
    all_indices, all_scores, all_pred = [], [], []
    with boxes_only(model):
        for batch in tqdm(loader, desc=desc, leave=False, disable=not progress):
            images, _ = _to_device(batch, device, channels_last)
            with _autocast(device, amp):
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


# --- building blocks --------------------------------------------------------------------------

def make_optimizer(config: TrainConfig, model) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
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


def _loader(dataset, batch_size: int, workers: int, device: torch.device, sampler=None, generator=None,
            drop_last: bool = False) -> DataLoader:
    return DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=workers, collate_fn=collate,
        pin_memory=device.type == "cuda", drop_last=drop_last, generator=generator,
        worker_init_fn=worker_init_fn if workers > 0 else None,
        persistent_workers=False, prefetch_factor=4 if workers > 0 else None,
    )


def _save(obj, path: Path) -> None:
    with atomic_path(path, suffix=".pt.partial") as tmp:
        torch.save(obj, tmp)


def _rng_state(device: torch.device) -> dict:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _unwrap(model):
    return model.module if hasattr(model, "module") else model


def _comparable(config: dict) -> dict:
    return {k: v for k, v in config.items() if k not in TrainConfig.RUNTIME_FIELDS and k not in ("resolved",)}


# --- the loop ---------------------------------------------------------------------------------

def train(config: TrainConfig, run_dir: str | os.PathLike, *, progress: bool = True,
          stop_after_epochs: int | None = None) -> dict:
    """Train one run into ``run_dir`` (resuming from ``last.pt`` when present); returns the summary.

    Writes config.json, folds.csv, log.jsonl, last.pt (every epoch), best.pt, predictions/ and,
    last, DONE once all 13 prediction tables are complete (so never with ``predict=False``). A run
    whose DONE exists is not retrained; an epoch that lost data or diverged raises RunFailed.
    ``stop_after_epochs`` stops after that many epochs of this call without writing DONE (a
    controlled interruption, for tests).
    """
    from tqdm import tqdm

    config.validate()
    run_dir = Path(run_dir)
    done_file = run_dir / "DONE"
    if done_file.is_file():
        return json.loads(done_file.read_text())
    dist = init_distributed()
    if config.threads:
        torch.set_num_threads(int(config.threads))
    device = pick_device(config.device, dist)
    data_dir = Path(config.data)
    variant_path = data_dir / f"{config.train_variant}.h5"
    if not variant_path.is_file():
        raise UserError(f"{variant_path}: training variant file not found")
    detector = is_detector(config.arch)
    channels_last = device.type == "cuda" and not detector  # detectors re-batch inputs internally
    amp = config.amp and device.type == "cuda"

    weights = resolve_weights(config.weights)
    resolved = {
        "pretrained": weights is not None, "weights_file": str(weights) if weights else None,
        "device": str(device), "world_size": dist.world_size, "amp_dtype": "bfloat16" if amp else None,
        "torch": torch.__version__,
    }
    config_record = {**asdict(config), **resolved}

    # Folds: once, from train_none, identical for every training variant.
    folds = folds_for_data(data_dir, config.n_folds, config.seed, variant_path)
    # Masks and boxes are detector targets only: the classifier and validation read images alone.
    train_ds = HDF5VariantDataset(variant_path, transform=train_transform(config.image_size, float_output=False,
                                                                          augment_artefacts=config.augment_artefacts,
                                                                          artefact_templates=config.augment_templates),
                                  decode_size=(config.image_size, config.image_size), with_masks=detector)
    train_idx, val_idx = fold_indices(folds, train_ds.reader.image_ids, config.fold)
    train_idx = _subsample(train_idx, config.max_train_images, config.seed, "train")
    val_idx = _subsample(val_idx, config.max_val_images, config.seed, "val")
    train_ds.indices = train_idx
    val_ds = HDF5VariantDataset(variant_path, val_idx, transform=eval_transform(config.image_size, float_output=False),
                                decode_size=(config.image_size, config.image_size), with_masks=False)

    last_file = run_dir / "last.pt"
    if dist.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        config_file = run_dir / "config.json"
        if last_file.is_file() and config_file.is_file():
            previous = json.loads(config_file.read_text())
            if _comparable(previous) != _comparable(config_record):
                raise UserError(f"{run_dir}: holds a run with another configuration (remove it or use another --out)")
        write_json_atomic(config_file, config_record)
        write_text_atomic(run_dir / "folds.csv", folds.to_csv(index=False, lineterminator="\n"))
    dist.barrier()

    torch.manual_seed(derive_seed(config.seed, "init"))
    model = build_model(config.arch, NUM_CLASSES, config.image_size, weights,
                        detector_options=config.detector_options).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(config, model)
    scheduler = make_scheduler(config, optimizer)
    state = {"epoch": 0, "best_metric": -math.inf, "best_epoch": -1, "epochs_without_improvement": 0}
    if last_file.is_file():
        checkpoint = torch.load(last_file, map_location=device, weights_only=True)
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        _set_rng_state(checkpoint["rng"], device)
        state = {k: checkpoint[k] for k in state}
        if dist.is_main:
            _truncate_log(run_dir / "log.jsonl", state["epoch"])
    if dist.enabled:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)

    batch_size = config.batch_size
    generator = torch.Generator()
    if dist.enabled:
        from torch.utils.data.distributed import DistributedSampler

        train_sampler = DistributedSampler(train_ds, shuffle=True, seed=config.seed, drop_last=True)
        val_sampler = DistributedSampler(val_ds, shuffle=False)
    else:
        train_sampler = RandomSampler(train_ds, generator=generator)
        val_sampler = SequentialSampler(val_ds)
    drop_last = len(train_ds) // dist.world_size > batch_size  # BatchNorm needs batches > 1
    train_loader = _loader(train_ds, batch_size, config.workers, device, train_sampler, generator, drop_last)
    val_loader = _loader(val_ds, config.eval_batch_size or batch_size, config.workers, device, val_sampler)
    val_labels = val_ds.reader.labels

    start = time.time()
    epochs_this_call = 0
    stopped_early = False
    for epoch in range(state["epoch"], config.epochs):
        if state["epochs_without_improvement"] >= config.patience:
            stopped_early = True
            break
        # Per-epoch seeds: shuffling, worker seeds and (workers=0) augmentations depend only on
        # (seed, epoch, rank), so a resumed run replays exactly the epochs it missed.
        generator.manual_seed(derive_seed(config.seed, "loader", epoch))
        torch.manual_seed(derive_seed(config.seed, "augment", epoch, dist.rank))
        if dist.enabled:
            train_sampler.set_epoch(epoch)
        model.train()
        t0 = time.time()
        losses, n_images = [], 0
        bar = tqdm(train_loader, desc=f"{config.arch} {config.train_variant} fold{config.fold} epoch {epoch + 1}",
                   leave=False, disable=not (progress and dist.is_main))
        for batch in bar:
            loss = training_loss(model, config.arch, batch, device, amp, channels_last)
            if not torch.isfinite(loss):
                raise RunFailed(f"{run_dir}: non-finite loss at epoch {epoch + 1}; lower --lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            losses.append(loss.item())
            n_images += len(batch["label"])
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
        train_seconds = time.time() - t0
        train_loss = float(np.mean(losses)) if losses else float("nan")
        check_epoch(run_dir, epoch, n_images, expected_images(len(train_sampler), batch_size, drop_last), train_loss)
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step()

        indices, scores, y_pred = gather_predictions(
            dist, *predict_loader(_unwrap(model), config.arch, val_loader, device, amp, channels_last))
        y_true = val_labels[indices]
        if not np.isfinite(scores).all():
            raise RunFailed(f"{run_dir}: non-finite validation scores after epoch {epoch + 1} "
                            "(the model diverged; lower --lr)")
        metric = macro_pr_auc(y_true, scores)
        improved = metric > state["best_metric"]
        state["epoch"] = epoch + 1
        if improved:
            state.update(best_metric=metric, best_epoch=epoch + 1, epochs_without_improvement=0)
        else:
            state["epochs_without_improvement"] += 1
        if dist.is_main:
            if improved:
                _save(_unwrap(model).state_dict(), run_dir / "best.pt")
            record = {
                "epoch": epoch + 1, "train_loss": train_loss,
                "val_macro_pr_auc": metric, "val_accuracy": float((y_pred == y_true).mean()) if len(y_true) else None,
                "val_prior_pr_auc": prior_pr_auc(y_true) if len(y_true) else None,
                "lr": lr, "train_images_per_s": n_images * dist.world_size / max(train_seconds, 1e-9),
                "seconds": time.time() - t0, "best": improved,
            }
            with open(run_dir / "log.jsonl", "a", encoding="utf-8") as log:
                log.write(json.dumps(record) + "\n")
            _save({"model": _unwrap(model).state_dict(), "optimizer": optimizer.state_dict(),
                   "scheduler": scheduler.state_dict(), "rng": _rng_state(device), **state}, last_file)
        dist.barrier()
        epochs_this_call += 1
        if stop_after_epochs is not None and epochs_this_call >= stop_after_epochs and state["epoch"] < config.epochs:
            return {"interrupted": True, **state}

    summary = {
        "arch": config.arch, "train_variant": config.train_variant, "fold": config.fold,
        "epochs_run": state["epoch"], "best_epoch": state["best_epoch"],
        "best_val_macro_pr_auc": state["best_metric"], "stopped_early": stopped_early,
        "train_seconds": time.time() - start,
    }
    if config.predict:
        from .predict import check_predictions, predict_variants

        best = torch.load(run_dir / "best.pt", map_location=device, weights_only=True)
        _unwrap(model).load_state_dict(best)
        t0 = time.time()
        written = predict_variants(_unwrap(model), config.arch, data_dir, run_dir / "predictions",
                                   config.image_size, device=device, batch_size=config.eval_batch_size or batch_size,
                                   workers=config.workers, amp=amp, dist=dist, progress=progress)
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


def check_epoch(run_dir, epoch: int, n_images: int, expected: int, train_loss: float) -> None:
    """Refuse an epoch that silently lost data (a loader that stopped early) or diverged."""
    if n_images != expected:
        raise RunFailed(f"{run_dir}: epoch {epoch + 1} trained on {n_images} of {expected} images "
                        "(the data loader stopped early)")
    if not math.isfinite(train_loss):
        raise RunFailed(f"{run_dir}: epoch {epoch + 1} ended with training loss {train_loss}")


def _truncate_log(path: Path, epochs_done: int) -> None:
    """Drop log lines of epochs the checkpoint does not hold (written just before a kill)."""
    if not path.is_file():
        return
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    kept = [line for line in lines if json.loads(line).get("epoch", 0) <= epochs_done]
    if len(kept) != len(lines):
        write_text_atomic(path, "".join(line + "\n" for line in kept))
