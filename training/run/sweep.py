"""The experiment grid: 3 architectures x 9 training variants x 5 folds = 135 jobs.

``plan`` writes every job to ``<runs>/jobs.jsonl`` (one JSON object a line: index, arch,
train_variant, condition (training.data.conditions), fold, run_dir, config); ``run_job`` runs one line (``sweep run --index K`` from a SLURM
array or any scheduler); ``run_all`` runs them in order and skips jobs whose DONE marker exists.

Profiles hold the training settings:

* ``paper``: 224 px classifier input, 448 px detector input, up to 50 epochs with early stopping
  (patience 10), SGD + cosine, batch 32 (16 for the detectors), all 9 training variants, 5 folds.
* ``showcase``: the published study on the calibrated synthetic twin (``make showcase``): 64 px,
  ResNet-34 x (train_none, train_nv) x 3 runs, x (train_all, train_mel) x 1 and x (train_none+aug,
  train_nv+aug) x 2 (the remedy: on-the-fly artefacts, p = 0.5), Faster and Mask R-CNN
  x (train_none, train_nv) x 1; a run is a cross-validation fold (its own split and seed). Sized for
  at most 2 hours on 2 CPU cores (ResNet-34 trains 24 epochs, the detectors 9 epochs of 600 images;
  about 114 min); ``--device cuda``
  runs the same jobs in minutes.
* ``tiny``: the demo / CI profile: 64 px; the classifier trains 14 epochs on its whole fold with
  the dihedral augmentation, the detectors 4 epochs on a seeded subsample of 48 images with smaller
  RoI heads (smoke runs: the site labels them so when they do not learn); 2 CPU threads, fold 0 of
  train_none and train_nv (the demo site's nv-biased model) for the three architectures: 6 runs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from generator.errors import UserError
from training.models import ARCHITECTURES

ARCHS = tuple(ARCHITECTURES)

_TINY_DETECTOR = {
    "epochs": 4,
    "batch_size": 8,
    "lr": 0.02,
    "optimizer": "sgd",
    "max_train_images": 48,
    # Far fewer proposals and sampled RoIs than torchvision's defaults (2000 / 512): one lesion per
    # image, and the box / mask heads dominate CPU time at 64 px.
    "detector_options": {
        "rpn_pre_nms_top_n_train": 200,
        "rpn_post_nms_top_n_train": 50,
        "rpn_pre_nms_top_n_test": 100,
        "rpn_post_nms_top_n_test": 20,
        "rpn_batch_size_per_image": 64,
        "box_batch_size_per_image": 16,
        "box_detections_per_img": 20,
        # Smaller RoI heads (training.models.HEAD_OPTIONS): torchvision's 1024-wide box MLP and four
        # 256-channel convolutions on 14x14 mask RoIs made Mask R-CNN ~5x slower than Faster R-CNN.
        "box_representation_size": 256,
        "mask_roi_size": 7,
        "mask_head_layers": 2,
    },
}
AUGMENTED = {"augment_artefacts": 0.5, "augment_templates": "builtin"}
"""Overrides of the showcase's augmented conditions (``<train_variant>+aug``)."""
# 9 epochs of 600 images: the time the 2-hour CPU budget leaves after the classifier's runs. At 10 epochs
# of 300 images both detectors were still learning when training stopped (README, "Showcase results").
_SHOWCASE_DETECTOR = {
    **_TINY_DETECTOR,
    "epochs": 9,
    "batch_size": 8,
    "lr": 0.02,
    "max_train_images": 600,
}
PROFILES: dict[str, dict] = {
    "showcase": {
        "common": {
            "image_size": 64,
            "workers": 0,
            "threads": 2,
            "patience": 100,
            "schedule": "cosine",
            "eval_batch_size": 64,
            "augment": "dihedral",
        },
        # 24 epochs of the ~1,200 images of a fold: the most the 2-hour CPU budget allows (README, "Tiers"),
        # because the artefact shortcut needs training steps; the twin's difficulty is calibrated under it
        "resnet34": {"epochs": 24, "batch_size": 32, "optimizer": "adamw", "lr": 2e-3, "weight_decay": 1e-4},
        "fasterrcnn_resnet34": _SHOWCASE_DETECTOR,
        "maskrcnn_resnet34": _SHOWCASE_DETECTOR,
        # Not the full 3 x 9 x 5 grid: the runs the study's controls need, replicated where run-to-run
        # variance matters (train_none vs train_nv of the classifier). A job may carry a 4th element:
        # TrainConfig overrides for that job alone.
        "grid": (
            ("resnet34", "train_none", (0, 1, 2)),
            ("resnet34", "train_nv", (0, 1, 2)),
            ("resnet34", "train_all", (0,)),
            ("resnet34", "train_mel", (0,)),
            # The remedy experiment (issue 14): class-independent on-the-fly artefacts (built-in
            # templates) on half of the training images. 2 runs each, not 3 like their plain
            # counterparts: an augmented 24-epoch run takes ~8 min on 2 cores and the whole showcase
            # measured 103 min (114 with the detectors' later budget), so 2 more would not fit. Their DiD
            # pairs them with train_none of the same folds (0, 1).
            ("resnet34", "train_none", (0, 1), AUGMENTED),
            ("resnet34", "train_nv", (0, 1), AUGMENTED),
            ("fasterrcnn_resnet34", "train_none", (0,)),
            ("fasterrcnn_resnet34", "train_nv", (0,)),
            ("maskrcnn_resnet34", "train_none", (0,)),
            ("maskrcnn_resnet34", "train_nv", (0,)),
        ),
    },
    "tiny": {
        "common": {
            "image_size": 64,
            "workers": 0,
            "threads": 2,
            "patience": 100,
            "max_val_images": 32,
            "schedule": "cosine",
            "eval_batch_size": 32,
        },
        # every training image of the fold (~400 in the demo), dihedral augmentation as in the showcase;
        # the best epoch is chosen on the whole validation fold: on 32 images a poor early epoch won.
        # 14 epochs: the time `make demo`'s 10-minute budget leaves, with a minute's margin (README, "Tiers")
        "resnet34": {
            "epochs": 14,
            "batch_size": 16,
            "optimizer": "adamw",
            "lr": 2e-3,
            "weight_decay": 1e-4,
            "augment": "dihedral",
            "max_val_images": None,
        },
        "fasterrcnn_resnet34": _TINY_DETECTOR,
        "maskrcnn_resnet34": _TINY_DETECTOR,
        # train_nv: the nv-biased model of the demo site's bias page
        "train_variants": ("train_none", "train_nv"),
        "folds": (0,),
    },
    "paper": {
        "common": {
            "epochs": 50,
            "patience": 10,
            "optimizer": "sgd",
            "lr": 0.01,
            "schedule": "cosine",
            "workers": 8,
        },
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


def profile_grid(
    profile: str, archs=None, train_variants=None, folds=None
) -> list[tuple[str, str, int, dict]]:
    """(arch, train_variant, fold, job overrides) of every job of ``profile``: its own job list when it
    has one (``grid``, whole: :func:`plan` narrows it with :func:`select`; an entry's optional 4th
    element is its overrides), else archs x train variants x folds from the selectors or the profile's
    defaults (no overrides)."""
    spec = PROFILES[profile]
    if "grid" in spec:
        return [
            (arch, variant, fold, dict(extra[0]) if extra else {})
            for arch, variant, grid_folds, *extra in spec["grid"]
            for fold in grid_folds
        ]
    archs = list(archs or ARCHS)
    train_variants = list(train_variants or spec["train_variants"] or _train_variant_names())
    folds = [int(f) for f in (folds if folds is not None and len(folds) else spec["folds"])]
    return [(arch, variant, fold, {}) for arch in archs for variant in train_variants for fold in folds]


def _train_variant_names() -> list[str]:
    from generator.variants import list_variants

    return list_variants("train")


def _check_selection(archs, train_variants, folds) -> None:
    for arch in archs or ():
        if arch not in ARCHS:
            raise UserError(f"--archs: unknown architecture {arch!r} (choose from {', '.join(ARCHS)})")
    from training.data.conditions import base_variant

    for name in train_variants or ():
        if base_variant(name) not in _train_variant_names():
            raise UserError(f"--train-variants: unknown training variant {name!r}")
    for fold in folds or ():
        if not 0 <= int(fold) < 5:
            raise UserError(f"--folds: {fold} is outside 0..4")


def plan(
    data_dir,
    runs_dir,
    profile: str = "paper",
    archs=None,
    train_variants=None,
    folds=None,
    seed: int = 0,
    overrides: dict | None = None,
) -> Path:
    """Write ``<runs_dir>/jobs.jsonl``; returns its path. Selectors narrow the grid; by default the
    profile's grid (paper: 3 x 9 x 5 = 135 jobs)."""
    from generator.atomic import write_text_atomic
    from training.run.engine import TrainConfig, run_dir_for

    _check_selection(archs, train_variants, folds)
    if profile not in PROFILES:
        raise UserError(f"--profile: unknown profile {profile!r} (choose from {', '.join(PROFILES)})")
    data_dir = Path(data_dir).resolve()
    if not data_dir.is_dir():
        raise UserError(f"--data: {data_dir} is not a folder")
    runs_dir = Path(runs_dir).resolve()
    lines: list[dict] = []
    seen: dict[Path, int] = {}
    for arch, variant, fold, job_overrides in profile_grid(profile, archs, train_variants, folds):
        # command-line overrides last: they apply to every job, the grid's only to its own
        values = {
            **profile_config(profile, arch),
            **job_overrides,
            **(overrides or {}),
            "arch": arch,
            "data": str(data_dir),
            "train_variant": variant,
            "fold": fold,
            "seed": seed,
        }
        config = TrainConfig.from_dict(values)
        config.validate()
        run_dir = run_dir_for(runs_dir, arch, variant, fold, config.augment_artefacts)
        if run_dir in seen:
            raise UserError(
                f"sweep plan: jobs {seen[run_dir]} and {len(lines)} would share {run_dir} (an override "
                f"such as --augment-artefacts made a plain and an augmented job the same condition)"
            )
        seen[run_dir] = len(lines)
        lines.append(
            {
                "index": len(lines),
                "arch": arch,
                "train_variant": variant,
                "condition": run_dir.parent.name,
                "fold": fold,
                "run_dir": str(run_dir),
                "config": values,
            }
        )
    if "grid" in PROFILES[profile]:  # selectors narrow a profile's own job list (select's rule)
        lines = [{**line, "index": i} for i, line in enumerate(select(lines, archs, train_variants, folds))]
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
    jobs = [
        parse_json(line, f"{path}: line {n}") for n, line in enumerate(text.splitlines(), 1) if line.strip()
    ]
    if not jobs:
        raise UserError(f"{path}: lists no jobs (run `ham-artefacts sweep plan` again)")
    for n, job in enumerate(jobs):
        if (
            not isinstance(job, dict)
            or not {"run_dir", "config", "arch", "train_variant", "fold"} <= set(job)
            or not isinstance(job["config"], dict)
        ):
            raise UserError(f"{path}: job {n} is not a job object (run `ham-artefacts sweep plan` again)")
    return jobs


def is_done(job: dict) -> bool:
    return (Path(job["run_dir"]) / "DONE").is_file()


def select(jobs: list[dict], archs=None, train_variants=None, folds=None) -> list[dict]:
    _check_selection(archs, train_variants, folds)
    folds = {int(f) for f in folds} if folds else None
    return [
        j
        for j in jobs
        if (not archs or j["arch"] in archs)
        and (
            not train_variants
            or j["train_variant"] in train_variants
            or j.get("condition", j["train_variant"]) in train_variants
        )
        and (folds is None or j["fold"] in folds)
    ]


def run_job(job: dict, progress: bool = True) -> dict:
    from training.run.engine import TrainConfig, train

    return train(TrainConfig.from_dict(job["config"]), job["run_dir"], progress=progress)


def run_index(jobs_file, index: int, progress: bool = True) -> tuple[dict, dict]:
    jobs = load_jobs(jobs_file)
    if not 0 <= index < len(jobs):
        raise UserError(f"--index: {index} is outside 0..{len(jobs) - 1}")
    return jobs[index], run_job(jobs[index], progress)


def run_all(
    jobs_file, archs=None, train_variants=None, folds=None, progress: bool = True, report=None
) -> list[tuple[dict, dict]]:
    """Run the selected jobs in order, skipping finished ones; returns (job, summary) pairs.

    ``report(line)`` (e.g. ``print``) gets one line per finished run with the elapsed time and an ETA
    for the rest: the mean seconds of the runs of that architecture finished so far (of any, for an
    architecture not yet seen)."""
    import time

    from training.run.engine import TrainConfig, finished_summary

    results = []
    selected = select(load_jobs(jobs_file), archs, train_variants, folds)
    seconds: dict[str, list[float]] = {}
    started = time.perf_counter()
    for k, job in enumerate(selected, 1):
        summary = finished_summary(TrainConfig.from_dict(job["config"]), job["run_dir"])
        if summary is not None:
            results.append((job, summary | {"skipped": True}))
            if report:
                report(
                    f"[{k}/{len(selected)}] {job['arch']} {_condition(job)} fold{job['fold']}: done earlier"
                )
            continue
        t0 = time.perf_counter()
        results.append((job, run_job(job, progress)))
        seconds.setdefault(job["arch"], []).append(time.perf_counter() - t0)
        if report:
            report(
                f"[{k}/{len(selected)}] {job['arch']} {_condition(job)} fold{job['fold']}: "
                f"{seconds[job['arch']][-1]:.0f} s, best val macro PR-AUC "
                f"{results[-1][1].get('best_val_macro_pr_auc', float('nan')):.3f}; elapsed "
                f"{time.perf_counter() - started:.0f} s, ETA {_eta(selected[k:], seconds):.0f} s"
            )
    return results


def _condition(job: dict) -> str:
    """The job's condition label (job files written before it was recorded: the training variant)."""
    return job.get("condition", job["train_variant"])


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
    from training.run.engine import macro_pr_auc, prior_pr_auc
    from training.run.predict import SCORE_COLUMNS, read_predictions

    table = read_predictions(Path(run_dir) / "predictions" / f"{test_variant}.csv")
    y_true = table["y_true"].to_numpy()
    return {
        "macro_pr_auc": macro_pr_auc(y_true, table[list(SCORE_COLUMNS)].to_numpy()),
        "prior_pr_auc": prior_pr_auc(y_true),
    }
