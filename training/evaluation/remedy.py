"""The remedy experiment: artefacts as a training augmentation, the paper's proposed remedy (issue 14).

``remedy``: per run of an augmented condition ``X+aug`` and artefacted test variant, its shift beside
that of the plain ``X`` model of the same arch and fold on the same images and reference class
(:mod:`.paired`), and remedy_pp = the augmented model's shift minus the plain model's (negative:
augmentation reduced the shift toward the reference class), with an image bootstrap interval.
``remedy_summary`` summarises it over runs like ``effects_summary``.
"""

from __future__ import annotations

import pandas as pd

from generator.seeding import derive_seed
from training.data.conditions import base_variant, is_augmented

from .aggregate import over_runs, run_groups, runs_text
from .paired import compare, paired_indicators, reference_class, reference_delta
from .predictions import PredictionTables, clean_pairs, sort_by_registry

REMEDY_COLUMNS = [
    "arch",
    "train_variant",
    "plain_variant",
    "fold",
    "test_variant",
    "reference_class",
    "n",
    "shift_pp",
    "plain_shift_pp",
    "remedy_pp",
    "remedy_lo",
    "remedy_hi",
]
REMEDY_SUMMARY_COLUMNS = [
    "arch",
    "train_variant",
    "plain_variant",
    "test_variant",
    "reference_class",
    "n_runs",
    "folds",
    "interval",
    "shift_mean",
    "plain_shift_mean",
    "remedy_mean",
    "remedy_lo",
    "remedy_hi",
    "remedy_runs",
]


def remedy_table(tables: PredictionTables, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """remedy table: each augmented run (``X+aug``) against the plain ``X`` run of its arch and fold."""
    rows = []
    for key, clean, table in clean_pairs(tables):
        arch, train, fold, test = key
        if not is_augmented(train):
            continue
        reference, _ = reference_class(train)
        ind = paired_indicators(clean, table, reference)
        plain = base_variant(train)
        compared = compare(
            tables,
            ind,
            key._replace(train_variant=plain),
            reference,
            n_boot,
            derive_seed(seed, "effects-remedy", arch, train, fold, test),
        )
        if not len(ind["ref_clean"]) or compared is None:
            continue
        plain_shift, remedy, lo, hi = compared
        rows.append(
            {
                "arch": arch,
                "train_variant": train,
                "plain_variant": plain,
                "fold": fold,
                "test_variant": test,
                "reference_class": reference,
                "n": len(ind["ref_clean"]),
                "shift_pp": float(reference_delta(ind).mean()),
                "plain_shift_pp": plain_shift,
                "remedy_pp": remedy,
                "remedy_lo": lo,
                "remedy_hi": hi,
            }
        )
    if not rows:
        return pd.DataFrame(columns=REMEDY_COLUMNS)
    return sort_by_registry(pd.DataFrame(rows)[REMEDY_COLUMNS])


def summarise_remedy(remedy: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """remedy_summary: the remedy table over training runs, with the same interval rule as
    :func:`.effects.summarise_effects` (t across >= 2 runs, else the one run's image bootstrap)."""
    rows = []
    keys = ["arch", "train_variant", "plain_variant", "test_variant", "reference_class"]
    for row, group in run_groups(remedy, keys):
        values, mean, lo, hi, interval = over_runs(group, "remedy", level)
        rows.append(
            {
                **row,
                "interval": interval,
                "shift_mean": float(group["shift_pp"].mean()),
                "plain_shift_mean": float(group["plain_shift_pp"].mean()),
                "remedy_mean": mean,
                "remedy_lo": lo,
                "remedy_hi": hi,
                "remedy_runs": runs_text(values),
            }
        )
    if not rows:
        return pd.DataFrame(columns=REMEDY_SUMMARY_COLUMNS)
    return pd.DataFrame(rows)[REMEDY_SUMMARY_COLUMNS]
