"""The experiment grid: 3 architectures x 9 training variants x 5 folds = 135 jobs.

``plan`` writes every job to ``<runs>/jobs.jsonl`` (one JSON object a line: index, arch,
train_variant, fold, run_dir, config); ``run_job`` runs one line (``sweep run --index K`` from a SLURM
array or any scheduler); ``run_all`` runs them in order and skips jobs whose DONE marker exists.

Profiles hold the training settings:

* ``paper``: 224 px classifier input, 448 px detector input, up to 50 epochs with early stopping
  (patience 10), SGD + cosine, batch 32 (16 for the detectors), all 9 training variants, 5 folds.
* ``showcase``: the published study on the calibrated synthetic twin (``make showcase``): 64 px,
  ResNet-34 x (train_none, train_nv) x 3 runs and x (train_all, train_mel) x 1, Faster and Mask R-CNN
  x (train_none, train_nv) x 1; a run is a cross-validation fold (its own split and seed). Sized for
  at most 2 hours on 2 CPU cores; ``--device cuda`` runs the same jobs in minutes.
* ``tiny``: the demo / CI profile: 64 px, 4 epochs on a seeded subsample (128 images for the classifier,
  48 for the detectors, with smaller RoI heads), 2 CPU threads, fold 0 of train_none and train_nv (the
  demo site's nv-biased model) for the three architectures: 6 runs. With prediction on the 13 test
  variants they take ~350 CPU-seconds (under 4 minutes on 2 free cores) and beat the class-prior
  PR-AUC baseline.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from generator.errors import UserError

from .models import ARCHITECTURES

ARCHS = tuple(ARCHITECTURES)

_TINY_DETECTOR = {
    "epochs": 4, "batch_size": 8, "lr": 0.02, "optimizer": "sgd", "max_train_images": 48,
    # Far fewer proposals and sampled RoIs than torchvision's defaults (2000 / 512): one lesion per
    # image, and the box / mask heads dominate CPU time at 64 px.
    "detector_options": {
        "rpn_pre_nms_top_n_train": 200, "rpn_post_nms_top_n_train": 50,
        "rpn_pre_nms_top_n_test": 100, "rpn_post_nms_top_n_test": 20,
        "rpn_batch_size_per_image": 64, "box_batch_size_per_image": 16, "box_detections_per_img": 20,
        # Smaller RoI heads (training.models.HEAD_OPTIONS): torchvision's 1024-wide box MLP and four
        # 256-channel convolutions on 14x14 mask RoIs made Mask R-CNN ~5x slower than Faster R-CNN.
        "box_representation_size": 256, "mask_roi_size": 7, "mask_head_layers": 2,
    },
}
_SHOWCASE_DETECTOR = {
    **_TINY_DETECTOR, "epochs": 12, "batch_size": 8, "lr": 0.02, "max_train_images": 400,
}
PROFILES: dict[str, dict] = {
    "showcase": {
        "common": {"image_size": 64, "workers": 0, "threads": 2, "patience": 100, "schedule": "cosine",
                   "eval_batch_size": 64},
        "resnet34": {"epochs": 30, "batch_size": 32, "optimizer": "adamw", "lr": 2e-3, "weight_decay": 1e-4},
        "fasterrcnn_resnet34": _SHOWCASE_DETECTOR,
        "maskrcnn_resnet34": _SHOWCASE_DETECTOR,
        # Not the full 3 x 9 x 5 grid: the runs the study's controls need, replicated where run-to-run
        # variance matters (train_none vs train_nv of the classifier).
        "grid": (
            ("resnet34", "train_none", (0, 1, 2)), ("resnet34", "train_nv", (0, 1, 2)),
            ("resnet34", "train_all", (0,)), ("resnet34", "train_mel", (0,)),
            ("fasterrcnn_resnet34", "train_none", (0,)), ("fasterrcnn_resnet34", "train_nv", (0,)),
            ("maskrcnn_resnet34", "train_none", (0,)), ("maskrcnn_resnet34", "train_nv", (0,)),
        ),
    },
    "tiny": {
        "common": {"image_size": 64, "workers": 0, "threads": 2, "patience": 100, "max_val_images": 32,
                   "schedule": "cosine", "eval_batch_size": 32},
        "resnet34": {"epochs": 4, "batch_size": 16, "optimizer": "adamw", "lr": 1e-3, "weight_decay": 1e-4,
                     "max_train_images": 128},
        "fasterrcnn_resnet34": _TINY_DETECTOR,
        "maskrcnn_resnet34": _TINY_DETECTOR,
        # train_nv: the nv-biased model of the demo site's bias page
        "train_variants": ("train_none", "train_nv"),
        "folds": (0,),
    },
    "paper": {
        "common": {"epochs": 50, "patience": 10, "optimizer": "sgd", "lr": 0.01, "schedule": "cosine",
                   "workers": 8},
        "resnet34": {"image_size": 224, "batch_size": 32},
        "fasterrcnn_resnet34": {"image_size": 448, "batch_size": 16},
        "maskrcnn_resnet34": {"image_size": 448, "batch_size": 16},
        "train_variants": None,  # all 9
        "folds": (0, 1, 2, 3, 4),
    },
}


def profile_config(profile: str, arch: str) -> dict:
    """TrainConfig fields of ``arch`` under ``profile``."""
    if profile not in PROFILES:
        raise UserError(f"--profile: unknown profile {profile!r} (choose from {', '.join(PROFILES)})")
    spec = PROFILES[profile]
    return {**spec["common"], **spec[arch], "profile": profile}


def profile_grid(profile: str, archs=None, train_variants=None, folds=None) -> list[tuple[str, str, int]]:
    """(arch, train_variant, fold) of every job of ``profile``, narrowed by the selectors: the
    profile's own job list when it has one (``grid``), else archs x train variants x folds."""
    spec = PROFILES[profile]
    if "grid" in spec:
        keep_folds = {int(f) for f in folds} if folds is not None and len(folds) else None
        return [(arch, variant, fold) for arch, variant, grid_folds in spec["grid"] for fold in grid_folds
                if (not archs or arch in archs) and (not train_variants or variant in train_variants)
                and (keep_folds is None or fold in keep_folds)]
    archs = list(archs or ARCHS)
    train_variants = list(train_variants or spec["train_variants"] or _train_variant_names())
    folds = [int(f) for f in (folds if folds is not None and len(folds) else spec["folds"])]
    return [(arch, variant, fold) for arch in archs for variant in train_variants for fold in folds]


def _train_variant_names() -> list[str]:
    from generator.variants import list_variants

    return list_variants("train")


def _check_selection(archs, train_variants, folds) -> None:
    for arch in archs or ():
        if arch not in ARCHS:
            raise UserError(f"--archs: unknown architecture {arch!r} (choose from {', '.join(ARCHS)})")
    for name in train_variants or ():
        if name not in _train_variant_names():
            raise UserError(f"--train-variants: unknown training variant {name!r}")
    for fold in folds or ():
        if not 0 <= int(fold) < 5:
            raise UserError(f"--folds: {fold} is outside 0..4")


def plan(data_dir, runs_dir, profile: str = "paper", archs=None, train_variants=None, folds=None,
         seed: int = 0, overrides: dict | None = None) -> Path:
    """Write ``<runs_dir>/jobs.jsonl``; returns its path. Selectors narrow the grid; by default the
    profile's grid (paper: 3 x 9 x 5 = 135 jobs)."""
    from generator.atomic import write_text_atomic

    from .engine import TrainConfig, run_dir_for

    _check_selection(archs, train_variants, folds)
    if profile not in PROFILES:
        raise UserError(f"--profile: unknown profile {profile!r} (choose from {', '.join(PROFILES)})")
    data_dir = Path(data_dir).resolve()
    if not data_dir.is_dir():
        raise UserError(f"--data: {data_dir} is not a folder")
    runs_dir = Path(runs_dir).resolve()
    lines = []
    for arch, variant, fold in profile_grid(profile, archs, train_variants, folds):
        values = {**profile_config(profile, arch), **(overrides or {}),
                  "arch": arch, "data": str(data_dir), "train_variant": variant, "fold": fold, "seed": seed}
        config = TrainConfig.from_dict(values)
        config.validate()
        lines.append({"index": len(lines), "arch": arch, "train_variant": variant, "fold": fold,
                      "run_dir": str(run_dir_for(runs_dir, arch, variant, fold)),
                      "config": values})
    if not lines:
        raise UserError(f"sweep plan: the selection leaves no job of profile {profile!r}")
    jobs = runs_dir / "jobs.jsonl"
    write_text_atomic(jobs, "".join(json.dumps(line, sort_keys=True) + "\n" for line in lines))
    return jobs


def load_jobs(jobs_file: str | os.PathLike) -> list[dict]:
    path = Path(jobs_file)
    if not path.is_file():
        raise UserError(f"{path}: jobs file not found (run `ham-artefacts sweep plan` first)")
    from generator.userio import parse_json

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read the jobs file ({exc})") from None
    jobs = [parse_json(line, f"{path}: line {n}") for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not jobs:
        raise UserError(f"{path}: lists no jobs (run `ham-artefacts sweep plan` again)")
    for n, job in enumerate(jobs):
        if not isinstance(job, dict) or not {"run_dir", "config", "arch", "train_variant", "fold"} <= set(job) \
                or not isinstance(job["config"], dict):
            raise UserError(f"{path}: job {n} is not a job object (run `ham-artefacts sweep plan` again)")
    return jobs


def is_done(job: dict) -> bool:
    return (Path(job["run_dir"]) / "DONE").is_file()


def select(jobs: list[dict], archs=None, train_variants=None, folds=None) -> list[dict]:
    _check_selection(archs, train_variants, folds)
    folds = {int(f) for f in folds} if folds else None
    return [j for j in jobs
            if (not archs or j["arch"] in archs)
            and (not train_variants or j["train_variant"] in train_variants)
            and (folds is None or j["fold"] in folds)]


def run_job(job: dict, progress: bool = True) -> dict:
    from .engine import TrainConfig, train

    return train(TrainConfig.from_dict(job["config"]), job["run_dir"], progress=progress)


def run_index(jobs_file, index: int, progress: bool = True) -> tuple[dict, dict]:
    jobs = load_jobs(jobs_file)
    if not 0 <= index < len(jobs):
        raise UserError(f"--index: {index} is outside 0..{len(jobs) - 1}")
    return jobs[index], run_job(jobs[index], progress)


def run_all(jobs_file, archs=None, train_variants=None, folds=None, progress: bool = True,
            report=None) -> list[tuple[dict, dict]]:
    """Run the selected jobs in order, skipping finished ones; returns (job, summary) pairs.

    ``report(line)`` (e.g. ``print``) gets one line per finished run with the elapsed time and an ETA
    for the rest: the mean seconds of the runs of that architecture finished so far (of any, for an
    architecture not yet seen)."""
    import time

    results = []
    selected = select(load_jobs(jobs_file), archs, train_variants, folds)
    seconds: dict[str, list[float]] = {}
    started = time.perf_counter()
    for k, job in enumerate(selected, 1):
        if is_done(job):
            results.append((job, json.loads((Path(job["run_dir"]) / "DONE").read_text()) | {"skipped": True}))
            if report:
                report(f"[{k}/{len(selected)}] {job['arch']} {job['train_variant']} fold{job['fold']}: done earlier")
            continue
        t0 = time.perf_counter()
        results.append((job, run_job(job, progress)))
        seconds.setdefault(job["arch"], []).append(time.perf_counter() - t0)
        if report:
            report(f"[{k}/{len(selected)}] {job['arch']} {job['train_variant']} fold{job['fold']}: "
                   f"{seconds[job['arch']][-1]:.0f} s, best val macro PR-AUC "
                   f"{results[-1][1].get('best_val_macro_pr_auc', float('nan')):.3f}; elapsed "
                   f"{time.perf_counter() - started:.0f} s, ETA {_eta(selected[k:], seconds):.0f} s")
    return results


def _eta(remaining: list[dict], seconds: dict[str, list[float]]) -> float:
    """Seconds the ``remaining`` unfinished jobs should take, from the mean time per architecture."""
    every = [s for values in seconds.values() for s in values]
    if not every:
        return float("nan")
    mean = {arch: sum(v) / len(v) for arch, v in seconds.items()}
    overall = sum(every) / len(every)
    return sum(mean.get(job["arch"], overall) for job in remaining if not is_done(job))


def chance_check(run_dir, test_variant: str = "test_none") -> dict:
    """Macro PR-AUC of a run's predictions on ``test_variant`` against the class-prior baseline."""
    from .engine import macro_pr_auc, prior_pr_auc
    from .predict import SCORE_COLUMNS, read_predictions

    table = read_predictions(Path(run_dir) / "predictions" / f"{test_variant}.csv")
    y_true = table["y_true"].to_numpy()
    return {"macro_pr_auc": macro_pr_auc(y_true, table[list(SCORE_COLUMNS)].to_numpy()),
            "prior_pr_auc": prior_pr_auc(y_true)}
