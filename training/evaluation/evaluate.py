"""The ``evaluate`` step: prediction tables of a runs folder -> every result table of a results folder."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from generator import CLASSES, __version__
from generator.atomic import write_json_atomic
from generator.seeding import derive_seed
from generator.userio import refuse_non_folder

from . import TABLES, aggregate, bias, controls, curves, effects, flips, metrics, remedy, significance
from .bootstrap import DEFAULT_B, bootstrap_metrics
from .output import write_table
from .predictions import (
    SCORE_COLUMNS,
    TEST_VARIANTS,
    TRAINING_CONDITIONS,
    PredictionTables,
    RunKey,
    detect_synthetic,
    load_runs,
)

METRIC_COLUMNS = [
    "arch",
    "train_variant",
    "fold",
    "test_variant",
    "metric",
    "class",
    "value",
    "boot_lo",
    "boot_hi",
]

DEFINITIONS = {
    "pr_auc": "Average precision (sklearn.metrics.average_precision_score), one class vs the rest on that "
    "class's score; macro = unweighted mean over classes present in the test set.",
    "precision": "TP / (TP + FP) per class; undefined (empty) when the class is never predicted.",
    "recall": "TP / (TP + FN) per class; undefined when the class has no test image.",
    "fpr": "FP / (FP + TN) per class.",
    "fnr": "FN / (TP + FN) = 1 - recall per class.",
    "accuracy": "Share of test images predicted correctly; a detector's no-detection counts as wrong.",
    "balanced_accuracy": "Mean recall over the classes present in the test set.",
    "boot_ci": "Percentile bootstrap over test images (2.5th-97.5th percentile of B resamples).",
    "ci": "Across folds: mean +/- t(0.975, k-1) sd/sqrt(k); with one fold, the bootstrap CI.",
    "mcnemar": "Edwards-corrected McNemar test on paired correct/incorrect predictions of one model, "
    "test_none vs the test variant; n10 = correct clean, wrong with artefact. Holm correction "
    "within each (arch, train_variant, fold) family.",
    "flips": "Share of artefacted images whose predicted class differs from the same image in test_none.",
    "bias_shift": "Change in the share of predictions going to the biased class, vs train_none.",
    "effects": "Within-model artefact effect: the same model on test_X vs test_none, paired per image_id, over "
    "images with an artefact in test_X whose true class is not the reference class (the biased "
    "class of train_<c>, else nv). shift_pp = % predicted as the reference class with artefact "
    "minus clean (= pct_to - pct_away); exact McNemar on 'predicts the reference class' and on "
    "correctness; did_pp = shift_pp minus train_none's shift (same arch, fold, images, reference "
    "class); intervals: percentile bootstrap over images.",
    "effects_summary": "Effects across training runs (each fold is one run): mean with a t-interval across "
    "runs when there are >= 2, else the single run's image-bootstrap interval (see "
    "'interval'); per-run values in *_runs.",
    "effects_by_kind": "The 'effects' measures on test_all, split by the artefact kind each image carries "
    "(one row per run and kind): which kinds move a model toward its reference class, and "
    "which it cannot see; did_pp against train_none on the same images.",
    "effects_by_kind_summary": "effects_by_kind across training runs, as effects_summary.",
    "drops": "The paper's robustness measure per training condition and test variant: each run's macro PR-AUC "
    "on the test variant minus on test_none (negative: artefacts cost PR-AUC); mean with a t-interval "
    "across runs when there are >= 2 (none with one run), per-run drops in drop_runs (fold order).",
    "remedy": "The remedy experiment (artefacts as a training augmentation): each run of an augmented condition "
    "X+aug (class-independent artefacts inserted on the fly into a share of the training images) "
    "against the plain X run of the same arch and fold, on the same images and reference class as "
    "'effects'. remedy_pp = shift_pp of X+aug minus plain_shift_pp of X (negative: augmentation "
    "reduced the shift toward the reference class); interval: percentile bootstrap over images.",
    "remedy_summary": "The remedy table across training runs: mean with a t-interval across runs when there are "
    ">= 2, else the single run's image-bootstrap interval (see 'interval').",
    "controls": f"Positive control: train_nv on test_all (passes when the mean did_pp over runs >= "
    f"{controls.ACCEPTANCE['positive_min_did_pp']:g} and exact McNemar p < "
    f"{controls.ACCEPTANCE['positive_max_p']:g} in every run). Negative control: train_none on "
    f"test_all (passes when |mean shift_pp| <= {controls.ACCEPTANCE['negative_max_abs_shift_pp']:g}). "
    "Identity control: test_none against itself, exactly 0 (checked in code).",
}


MetricsJob = tuple[RunKey, np.ndarray, np.ndarray, np.ndarray, int, int]
"""One prediction table's work for :func:`metrics_table`: key, y_true, scores, y_pred, B, seed."""


def _table_metrics(item: MetricsJob) -> list[tuple]:
    (arch, train, fold, test), y_true, scores, y_pred, n_boot, seed = item
    results = bootstrap_metrics(
        y_true, scores, y_pred, n_boot=n_boot, seed=derive_seed(seed, "bootstrap", arch, train, fold, test)
    )
    return [
        (arch, train, fold, test, metric, cls, value, lo, hi)
        for (metric, cls), (value, lo, hi) in results.items()
    ]


def metrics_table(
    tables: PredictionTables, n_boot: int = DEFAULT_B, seed: int = 0, progress: bool = False, workers: int = 1
) -> pd.DataFrame:
    """metrics table: every metric of every prediction table with its bootstrap CI.

    Each table's resamples use their own seed derived from (seed, arch, train_variant, fold,
    test_variant), so a result depends neither on which other runs are present nor on ``workers``
    (processes sharing the tables; 1 = in this process).
    """
    from tqdm import tqdm

    items: list[MetricsJob] = [
        (key, t["y_true"].to_numpy(), t[list(SCORE_COLUMNS)].to_numpy(), t["y_pred"].to_numpy(), n_boot, seed)
        for key, t in tables.items()
    ]
    bar = tqdm(total=len(items), desc="metrics + bootstrap", unit="table", disable=not progress)
    rows = []
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers) as pool:
            for table_rows in pool.map(_table_metrics, items, chunksize=8):
                rows += table_rows
                bar.update()
    else:
        for item in items:
            rows += _table_metrics(item)
            bar.update()
    bar.close()
    out = pd.DataFrame(rows, columns=METRIC_COLUMNS)
    order = {m: i for i, m in enumerate(metrics.METRICS)}
    cls_order = {c: i for i, c in enumerate((*CLASSES, "macro", "all"))}

    def rank(col: pd.Series) -> pd.Series:
        return col.map(_sort_key(str(col.name), order, cls_order))

    return out.sort_values(
        ["arch", "train_variant", "fold", "test_variant", "metric", "class"], key=rank, kind="stable"
    ).reset_index(drop=True)


def _sort_key(column: str, order: dict, cls_order: dict):
    if column == "train_variant":
        return {v: i for i, v in enumerate(TRAINING_CONDITIONS)}.get
    if column == "test_variant":
        return {v: i for i, v in enumerate(TEST_VARIANTS)}.get
    if column == "metric":
        return order.get
    if column == "class":
        return cls_order.get
    return lambda value: value


def evaluate(
    runs_dir: str | Path,
    out_dir: str | Path,
    n_boot: int = DEFAULT_B,
    seed: int = 0,
    progress: bool = True,
    workers: int = 1,
    include_unfinished: bool = False,
    data_dir: str | Path | None = None,
) -> dict:
    """Compute and write every evaluation table; returns the results.json content.

    Reads the finished runs only (``include_unfinished``: every run), each run's tables checked against
    each other and, with ``data_dir``, against the frozen files (:func:`.predictions.load_runs`)."""
    started = time.perf_counter()
    runs_dir, out_dir = Path(runs_dir), Path(out_dir)
    refuse_non_folder(out_dir)  # before minutes of bootstrap, not after
    tables = load_runs(runs_dir, progress=progress, include_unfinished=include_unfinished, data_dir=data_dir)
    per_fold = metrics_table(tables, n_boot=n_boot, seed=seed, progress=progress, workers=workers)
    summary = aggregate.summarise(per_fold)
    results = {
        "metrics": per_fold,
        "metrics_summary": summary,
        "drops": aggregate.drops_table(per_fold),
        "curves": curves.curves_table(summary),
        "mcnemar": significance.mcnemar_table(tables),
        "bias": bias.bias_table(per_fold),
        "bias_shift": bias.bias_shift_table(tables),
        "flips": flips.flips_table(tables),
    }
    results["effects"] = effects.effects_table(tables, n_boot=n_boot, seed=seed)
    results["effects_summary"] = effects.summarise_effects(results["effects"])
    results["effects_by_kind"] = effects.effects_by_kind_table(tables, n_boot=n_boot, seed=seed)
    results["effects_by_kind_summary"] = effects.summarise_effects(results["effects_by_kind"], by_kind=True)
    results["controls"] = controls.controls_table(tables, results["effects_summary"])
    results["remedy"] = remedy.remedy_table(tables, n_boot=n_boot, seed=seed)
    results["remedy_summary"] = remedy.summarise_remedy(results["remedy"])
    assert tuple(results) == TABLES, "training.evaluation.TABLES lists every table, in order"
    written = []
    for stem, table in results.items():
        written += [p.name for p in write_table(table, out_dir, stem)]
    keys = list(tables)
    info = {
        "synthetic": detect_synthetic(runs_dir),
        "runs": str(runs_dir),
        "generated_by": f"ham-artefacts {__version__}",
        "archs": sorted({k.arch for k in keys}),
        "train_variants": [v for v in TRAINING_CONDITIONS if any(k.train_variant == v for k in keys)],
        "test_variants": [v for v in TEST_VARIANTS if any(k.test_variant == v for k in keys)],
        "folds": sorted({k.fold for k in keys}),
        "n_prediction_tables": len(keys),
        "inputs_checked": {
            "include_unfinished": include_unfinished,
            "data": None if data_dir is None else str(data_dir),
        },
        "classes": list(CLASSES),
        "bootstrap": {"B": n_boot, "seed": seed, "level": 0.95, "method": "percentile, over images"},
        "alpha": significance.ALPHA,
        "acceptance": controls.ACCEPTANCE,
        "definitions": DEFINITIONS,
        "tables": written,
        "seconds": round(time.perf_counter() - started, 2),
    }
    previous = out_dir / "results.json"
    if previous.is_file() and (out_dir / "gradcam" / "index.csv").is_file():
        import json

        # Keep the note of an earlier `gradcam` run, whose tables are still in the folder.
        gradcam_note = json.loads(previous.read_text()).get("gradcam")
        if gradcam_note is not None:
            info["gradcam"] = gradcam_note
    write_json_atomic(previous, info)
    return info
