"""Within-model artefact effects and their variance across training runs.

The paper's measures (PR-AUC drop, recall/FPR/FNR shifts between two models) mix the artefact's effect
with the difference between two training runs. The measures here hold the model fixed: the same
model (arch, train_variant, fold) predicts the same image clean (test_none) and with its artefact
(test_X), and the pair is compared (:mod:`.paired`, which also says which reference class each
model is measured toward).

Per run and artefacted test variant (``effects`` table), over the images that carry an artefact in
test_X and whose true class is not the reference class:

- pct_ref_clean / pct_ref_artefact: % of them predicted as the reference class, clean / with artefact;
- shift_pp = pct_ref_artefact - pct_ref_clean (percentage points) = pct_to - pct_away, where pct_to is
  the % whose prediction moves to the reference class and pct_away the % that moves away from it;
- p_mcnemar_ref: exact McNemar (statsmodels ``mcnemar(exact=True)``) on "predicts the reference class";
- p_mcnemar_correct: exact McNemar on correctness (n_correct_to_wrong vs n_wrong_to_correct);
- did_pp = shift_pp - the shift of the train_none model of the same arch and fold on the same images
  with the same reference class (difference in differences); did_lo/did_hi and shift_lo/shift_hi are
  percentile bootstrap intervals over images (pairs resampled jointly for both models).

``effects_summary`` treats each fold as one training run (a replicate): the mean over runs with a
t-interval across runs when there are at least 2, else the single run's image-bootstrap interval,
labelled in ``interval``.

``effects_by_kind`` (and ``effects_by_kind_summary``): the same per-run measures on test_all, split by the
artefact kind each image carries (the prediction tables' artefact_kind), so a reader can see which kinds
carry a shortcut and which the model cannot see at its input size.

The remedy experiment (augmented conditions against their plain counterparts) is :mod:`.remedy`; the
study's controls, with their verdicts, are :mod:`.controls`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from generator.seeding import derive_seed
from generator.variants import ALL_TEST, CLEAN_TRAIN

from .aggregate import over_runs, run_groups, runs_text
from .controls import controls_table
from .paired import (
    Indicators,
    compare,
    effect_counts,
    mean_interval,
    paired_indicators,
    reference_class,
    reference_delta,
)
from .predictions import PredictionTables, RunKey, clean_pairs, load_runs, sort_by_registry

EFFECT_COLUMNS = [
    "arch",
    "train_variant",
    "fold",
    "test_variant",
    "reference_class",
    "reference_from",
    "n",
    "n_ref_clean",
    "n_ref_artefact",
    "pct_ref_clean",
    "pct_ref_artefact",
    "shift_pp",
    "shift_lo",
    "shift_hi",
    "n_to",
    "n_away",
    "pct_to",
    "pct_away",
    "p_mcnemar_ref",
    "n_correct_to_wrong",
    "n_wrong_to_correct",
    "p_mcnemar_correct",
    "baseline_shift_pp",
    "did_pp",
    "did_lo",
    "did_hi",
]
KIND_EFFECT_COLUMNS = [*EFFECT_COLUMNS[:4], "kind", *EFFECT_COLUMNS[4:]]
KIND_TEST_VARIANT = ALL_TEST
"""The test variant split by kind: every image carries one artefact, of a kind drawn at random."""
SUMMARY_COLUMNS = [
    "arch",
    "train_variant",
    "test_variant",
    "reference_class",
    "n_runs",
    "folds",
    "interval",
    "shift_mean",
    "shift_lo",
    "shift_hi",
    "shift_runs",
    "did_mean",
    "did_lo",
    "did_hi",
    "did_runs",
    "p_mcnemar_ref_max",
    "p_mcnemar_ref_runs",
]


def effects_table(tables: PredictionTables, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """effects table: one row per run and artefacted test variant with at least one qualifying image."""
    rows = []
    for key, clean, table in clean_pairs(tables):
        reference, source = reference_class(key.train_variant)
        ind = paired_indicators(clean, table, reference)
        if len(ind["ref_clean"]) == 0:
            continue  # e.g. test_nv: its artefacted images are all of the reference class
        rows.append(
            _effect_row(
                tables,
                key,
                ind,
                reference,
                source,
                n_boot,
                derive_seed(seed, "effects-shift", *key),
                derive_seed(seed, "effects-did", *key),
            )
        )
    if not rows:
        return pd.DataFrame(columns=EFFECT_COLUMNS)
    return sort_by_registry(pd.DataFrame(rows)[EFFECT_COLUMNS])


def _effect_row(
    tables: PredictionTables,
    key: RunKey,
    ind: Indicators,
    reference: str,
    source: str,
    n_boot: int,
    shift_seed: int,
    did_seed: int,
) -> dict:
    """One run's effect on the images of ``ind``: counts, shift with its interval, and the DiD against
    train_none of the same arch and fold on the same images."""
    arch, train, fold, test = key
    row = {
        "arch": arch,
        "train_variant": train,
        "fold": fold,
        "test_variant": test,
        "reference_class": reference,
        "reference_from": source,
        **effect_counts(ind),
    }
    row["shift_lo"], row["shift_hi"] = mean_interval(reference_delta(ind), n_boot, shift_seed)
    row["baseline_shift_pp"] = row["did_pp"] = row["did_lo"] = row["did_hi"] = float("nan")
    if train != CLEAN_TRAIN:
        compared = compare(tables, ind, key._replace(train_variant=CLEAN_TRAIN), reference, n_boot, did_seed)
        if compared is not None:
            row["baseline_shift_pp"], row["did_pp"], row["did_lo"], row["did_hi"] = compared
    return row


def effects_by_kind_table(tables: PredictionTables, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """effects_by_kind: :func:`effects_table`'s row for each run on test_all, once per artefact kind
    (registry order), over the images that carry that kind; the DiD pairs them with train_none's
    shift on the same images."""
    from generator.artefacts.kinds import KINDS

    rows = []
    for key, clean, table in clean_pairs(tables):
        if key.test_variant != KIND_TEST_VARIANT:
            continue
        arch, train, fold, _ = key
        reference, source = reference_class(train)
        ind = paired_indicators(clean, table, reference)
        kind_of = dict(zip(table["image_id"], table["artefact_kind"].astype(str), strict=True))
        kinds = np.array([kind_of[i] for i in ind["image_id"]], dtype=object)
        present = set(kinds)
        for kind in [k for k in KINDS if k in present] + sorted(present - set(KINDS)):
            part = {name: values[kinds == kind] for name, values in ind.items()}
            rows.append(
                {
                    "kind": kind,
                    **_effect_row(
                        tables,
                        key,
                        part,
                        reference,
                        source,
                        n_boot,
                        derive_seed(seed, "kind-shift", arch, train, fold, kind),
                        derive_seed(seed, "kind-did", arch, train, fold, kind),
                    ),
                }
            )
    if not rows:
        return pd.DataFrame(columns=KIND_EFFECT_COLUMNS)
    # a stable sort: the kinds of a run stay in registry order
    return sort_by_registry(pd.DataFrame(rows)[KIND_EFFECT_COLUMNS])


def summarise_effects(effects: pd.DataFrame, level: float = 0.95, by_kind: bool = False) -> pd.DataFrame:
    """effects_summary: mean over training runs (folds) with a t-interval across runs (>= 2 runs).

    With one run the interval is that run's image bootstrap (``interval`` says which was used), or
    NaN without a bootstrap. ``by_kind``: summarise :func:`effects_by_kind_table` (one row per kind).
    """
    rows = []
    keys = ["arch", "train_variant", "test_variant", *(["kind"] if by_kind else []), "reference_class"]
    columns = [*SUMMARY_COLUMNS[:3], "kind", *SUMMARY_COLUMNS[3:]] if by_kind else SUMMARY_COLUMNS
    for row, group in run_groups(effects, keys):
        labels = {}
        for measure in ("shift", "did"):
            values, mean, lo, hi, labels[measure] = over_runs(group, measure, level)
            row[f"{measure}_mean"], row[f"{measure}_lo"], row[f"{measure}_hi"] = mean, lo, hi
            row[f"{measure}_runs"] = runs_text(values)
        # The DiD needs train_none of the same fold; say so when it had fewer runs than the shift.
        row["interval"] = (
            labels["shift"]
            if (labels["did"] == labels["shift"] or group["did_pp"].isna().all())
            else f"{labels['shift']}; DiD: {labels['did']}"
        )
        row["p_mcnemar_ref_max"] = float(group["p_mcnemar_ref"].max())
        row["p_mcnemar_ref_runs"] = runs_text(group["p_mcnemar_ref"])
        rows.append(row)
    if not rows:
        return pd.DataFrame(columns=columns)
    return pd.DataFrame(rows)[columns]


def acceptance(runs_dir: str | Path, n_boot: int = 0, seed: int = 0) -> pd.DataFrame:
    """The controls with their verdicts (:mod:`.controls`), from a runs folder's prediction tables alone."""
    tables = load_runs(runs_dir)
    return controls_table(tables, summarise_effects(effects_table(tables, n_boot=n_boot, seed=seed)))
