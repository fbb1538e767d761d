"""Effect of class-biased training (train_<cls>: artefacts only on class <cls> in training).

Each biased model is compared with the unbiased train_none model of the same architecture and fold,
on test_none and test_all, then averaged over the folds both exist for:

- bias table: per-class recall, FPR and FNR of the biased model (value), of train_none (baseline),
  and shift = value - baseline;
- bias_shift table: share_biased = share of test images the biased model predicts as <cls>,
  share_baseline = the same share for train_none, shift = the difference ("shift toward the
  biased class").
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from generator import CLASSES
from generator.variants import ALL_TEST, CLEAN_TEST, CLEAN_TRAIN
from training.data.conditions import base_variant

from .predictions import PredictionTables

BIAS_TESTS = (CLEAN_TEST, ALL_TEST)
BIAS_METRICS = ("recall", "fpr", "fnr")
BIAS_COLUMNS = [
    "arch",
    "train_variant",
    "biased_class",
    "test_variant",
    "class",
    "metric",
    "value",
    "baseline",
    "shift",
]
SHIFT_COLUMNS = [
    "arch",
    "train_variant",
    "biased_class",
    "test_variant",
    "share_biased",
    "share_baseline",
    "shift",
]


def biased_class(train_variant: str) -> str | None:
    """The class a training variant (or condition: ``train_nv+aug`` is train_nv's images plus
    class-independent artefacts) is biased toward, or None (train_none, train_all, unknown)."""
    code = base_variant(train_variant).removeprefix("train_")
    return code if code in CLASSES else None


def bias_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """bias table from the per-fold metrics table."""
    keys = ["arch", "fold", "test_variant", "metric", "class"]
    rows = metrics[metrics["metric"].isin(BIAS_METRICS) & metrics["test_variant"].isin(BIAS_TESTS)]
    baseline = rows[rows["train_variant"] == CLEAN_TRAIN][[*keys, "value"]].rename(
        columns={"value": "baseline"}
    )
    biased = rows[rows["train_variant"].map(biased_class).notna()]
    merged = biased.merge(baseline, on=keys, how="inner")
    merged["shift"] = merged["value"] - merged["baseline"]
    out = (
        merged.groupby(["arch", "train_variant", "test_variant", "class", "metric"], sort=False)[
            ["value", "baseline", "shift"]
        ]
        .mean()
        .reset_index()
    )
    out["biased_class"] = out["train_variant"].map(biased_class)
    return out[BIAS_COLUMNS].reset_index(drop=True)


def bias_shift_table(tables: PredictionTables) -> pd.DataFrame:
    """bias_shift table from the prediction tables."""
    rows = []
    for key, table in tables.items():
        arch, train, _, test = key
        code = biased_class(train)
        baseline = tables.get(key._replace(train_variant=CLEAN_TRAIN))
        if code is None or test not in BIAS_TESTS or baseline is None:
            continue
        label = CLASSES.index(code)
        rows.append(
            {
                "arch": arch,
                "train_variant": train,
                "biased_class": code,
                "test_variant": test,
                "share_biased": float(np.mean(table["y_pred"] == label)),
                "share_baseline": float(np.mean(baseline["y_pred"] == label)),
            }
        )
    if not rows:
        return pd.DataFrame(columns=SHIFT_COLUMNS)
    out = (
        pd.DataFrame(rows)
        .groupby(["arch", "train_variant", "biased_class", "test_variant"], sort=False)[
            ["share_biased", "share_baseline"]
        ]
        .mean()
        .reset_index()
    )
    out["shift"] = out["share_biased"] - out["share_baseline"]
    return out[SHIFT_COLUMNS]
