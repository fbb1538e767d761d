"""The experiment grid: 3 architectures x 9 training variants x 5 folds = 135 jobs.

``plan`` writes every job to ``<runs>/jobs.jsonl`` (one JSON object a line: index, arch,
train_variant, condition (training.data.conditions), fold, run_dir, config); ``run_job`` runs one line (``sweep run --index K`` from a SLURM
array or any scheduler); ``run_all`` runs them in order and skips jobs whose DONE marker exists or
whose run folder another process holds (its lock: machines sharing the runs folder never train a job
twice).

Profiles hold the training settings, one TOML file each in ``training/run/profiles/`` (:data:`PROFILES`):

* ``paper``: the paper's protocol, 3 architectures x 9 training variants x 5 folds;
* ``showcase``: the published study on the calibrated synthetic twin (``make showcase``), its own job grid;
* ``tiny``: the demo / CI profile (``make demo``), 6 runs.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from generator.errors import UserError
from generator.variants import CLEAN_TEST
from training.models import ARCHITECTURES
from training.run.config import DONE_NAME, RUN_LOCK_WAIT_S

logger = logging.getLogger(__name__)

ARCHS = tuple(ARCHITECTURES)

PROFILE_FOLDER = "profiles"
"""Beside this module: ``<name>.toml`` for each profile."""
UNLIMITED = "all"
"""How a profile file writes None (TOML has no null): no limit, every image, every training variant."""


def _from_toml(value):
    """A profile value as the sweep uses it: arrays as tuples, :data:`UNLIMITED` as None."""
    if isinstance(value, list):
        return tuple(_from_toml(v) for v in value)
    if isinstance(value, dict):
        return {k: _from_toml(v) for k, v in value.items()}
    return None if value == UNLIMITED else value


def load_profiles() -> dict[str, dict]:
    """Every profile file, by name: ``common`` (settings of every architecture), one table per architecture
    (its own settings, over ``common``), and either ``grid`` (the profile's own job list) or
    ``train_variants`` and ``folds`` (the default selection of the archs x variants x folds grid)."""
    import tomllib

    return {
        path.stem: _from_toml(tomllib.loads(path.read_text(encoding="utf-8")))
        for path in sorted((Path(__file__).parent / PROFILE_FOLDER).glob("*.toml"))
    }


PROFILES: dict[str, dict] = load_profiles()


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
    from training.run.config import TrainConfig, run_dir_for

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
    return (Path(job["run_dir"]) / DONE_NAME).is_file()


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
    from training.run.config import TrainConfig
    from training.run.engine import train

    return train(TrainConfig.from_dict(job["config"]), job["run_dir"], progress=progress)


def run_index(
    jobs_file, index: int, progress: bool = True, wait: float = RUN_LOCK_WAIT_S
) -> tuple[dict, dict]:
    """Run job ``index`` (its run folder's lock held: another process writing it is waited for ``wait``
    seconds, then RunFolderBusy names it)."""
    from training.run.checkpoint import run_folder_lock

    jobs = load_jobs(jobs_file)
    if not 0 <= index < len(jobs):
        raise UserError(f"--index: {index} is outside 0..{len(jobs) - 1}")
    with run_folder_lock(jobs[index]["run_dir"], wait):
        return jobs[index], run_job(jobs[index], progress)


def run_all(
    jobs_file, archs=None, train_variants=None, folds=None, progress: bool = True
) -> list[tuple[dict, dict]]:
    """Run the selected jobs in order, skipping finished ones and those another process is training
    (their run folder's lock is held: several machines sharing the runs folder each take the jobs no
    other holds, and none is trained twice); returns (job, summary) pairs, a skipped job's summary
    with ``skipped`` (finished) or ``busy`` (held elsewhere).

    Logs one line per finished run with the elapsed time and an ETA for the rest: the mean seconds of
    the runs of that architecture finished so far (of any, for an architecture not yet seen)."""
    import time

    from training.run.checkpoint import RunFolderBusy, finished_summary, run_folder_lock
    from training.run.config import TrainConfig

    results = []
    selected = select(load_jobs(jobs_file), archs, train_variants, folds)
    seconds: dict[str, list[float]] = {}
    started = time.perf_counter()
    for k, job in enumerate(selected, 1):
        try:
            with run_folder_lock(job["run_dir"], wait=0):
                summary = finished_summary(TrainConfig.from_dict(job["config"]), job["run_dir"])
                if summary is None:
                    t0 = time.perf_counter()
                    summary = run_job(job, progress)
                    seconds.setdefault(job["arch"], []).append(time.perf_counter() - t0)
                    trained = True
                else:
                    trained = False
        except RunFolderBusy as exc:
            results.append((job, {"busy": str(exc)}))
            logger.info("[%d/%d] %s", k, len(selected), exc)
            continue
        if not trained:
            results.append((job, summary | {"skipped": True}))
            logger.info(
                "[%d/%d] %s %s fold%s: done earlier",
                k,
                len(selected),
                job["arch"],
                _condition(job),
                job["fold"],
            )
            continue
        results.append((job, summary))
        logger.info(
            "[%d/%d] %s %s fold%s: %.0f s, best val macro PR-AUC %.3f; elapsed %.0f s, ETA %.0f s",
            k,
            len(selected),
            job["arch"],
            _condition(job),
            job["fold"],
            seconds[job["arch"]][-1],
            results[-1][1].get("best_val_macro_pr_auc", float("nan")),
            time.perf_counter() - started,
            _eta(selected[k:], seconds),
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


def chance_check(run_dir, test_variant: str = CLEAN_TEST) -> dict:
    """Macro PR-AUC of a run's predictions on ``test_variant`` against the class-prior baseline."""
    from training.run.metrics import macro_pr_auc, prior_pr_auc
    from training.run.predict import SCORE_COLUMNS, read_predictions

    table = read_predictions(Path(run_dir) / "predictions" / f"{test_variant}.csv")
    y_true = table["y_true"].to_numpy()
    return {
        "macro_pr_auc": macro_pr_auc(y_true, table[list(SCORE_COLUMNS)].to_numpy()),
        "prior_pr_auc": prior_pr_auc(y_true),
    }
