"""Mean and 95% CI of each metric across folds, and deltas against the reference model/test variant.

CI across folds: mean +/- t(0.975, k-1) * sd / sqrt(k) over the k folds where the metric is defined.
With a single fold there is no spread to use, so that fold's bootstrap CI (over images) is reported.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from generator.variants import CLEAN_TEST, CLEAN_TRAIN

SUMMARY_KEYS = ["arch", "train_variant", "test_variant", "metric", "class"]
SUMMARY_COLUMNS = [
    *SUMMARY_KEYS,
    "mean",
    "ci_lo",
    "ci_hi",
    "n_folds",
    "delta_vs_test_none",
    "delta_vs_train_none",
]


def t_interval(values, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, lo, hi) of the t-based CI of the mean of ``values`` (NaN ignored; lo = hi = NaN for < 2)."""
    from scipy import stats

    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return (float("nan"),) * 3
    mean = float(values.mean())
    if len(values) < 2:
        return mean, float("nan"), float("nan")
    half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return mean, float(mean - half), float(mean + half)


def summarise(metrics: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """metrics_summary table from the per-fold metrics table (columns of ``metrics.csv``)."""
    from scipy import stats

    defined = metrics.dropna(subset=["value"])
    grouped = defined.groupby(SUMMARY_KEYS, sort=False)
    summary = grouped["value"].agg(mean="mean", sd="std", n_folds="count").reset_index()
    single = grouped[["boot_lo", "boot_hi"]].first().reset_index()
    summary = summary.merge(single, on=SUMMARY_KEYS, how="left")
    many = summary["n_folds"] >= 2
    dof = np.maximum(summary["n_folds"].to_numpy() - 1, 1)
    half = (
        stats.t.ppf(0.5 + level / 2, dof) * summary["sd"].fillna(0).to_numpy() / np.sqrt(summary["n_folds"])
    )
    summary["ci_lo"] = np.where(many, summary["mean"] - half, summary["boot_lo"])
    summary["ci_hi"] = np.where(many, summary["mean"] + half, summary["boot_hi"])
    # Keys whose metric is undefined in every fold (e.g. recall of a class absent from the test set).
    everything = metrics[SUMMARY_KEYS].drop_duplicates()
    summary = everything.merge(summary, on=SUMMARY_KEYS, how="left")
    summary["n_folds"] = summary["n_folds"].fillna(0).astype(int)

    ref_test = summary[summary["test_variant"] == CLEAN_TEST][
        ["arch", "train_variant", "metric", "class", "mean"]
    ].rename(columns={"mean": "_ref_test"})
    ref_train = summary[summary["train_variant"] == CLEAN_TRAIN][
        ["arch", "test_variant", "metric", "class", "mean"]
    ].rename(columns={"mean": "_ref_train"})
    summary = summary.merge(ref_test, on=["arch", "train_variant", "metric", "class"], how="left")
    summary = summary.merge(ref_train, on=["arch", "test_variant", "metric", "class"], how="left")
    summary["delta_vs_test_none"] = summary["mean"] - summary["_ref_test"]
    summary["delta_vs_train_none"] = summary["mean"] - summary["_ref_train"]
    return summary[SUMMARY_COLUMNS].reset_index(drop=True)


DROP_COLUMNS = [
    "arch",
    "train_variant",
    "test_variant",
    "n_runs",
    "folds",
    "test_none_mean",
    "variant_mean",
    "drop_mean",
    "drop_lo",
    "drop_hi",
    "drop_runs",
]


def drops_table(metrics: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """drops: the paper's robustness measure per training condition and test variant, over runs.

    Each run's drop is its own macro PR-AUC on the test variant minus on ``test_none`` (negative:
    artefacts cost PR-AUC); the row gives their mean with a t-interval across runs (none with one
    run) and the per-run drops in fold order (``drop_runs``). ``metrics_summary``'s
    ``delta_vs_test_none`` is the same mean without the interval. Rows keep the order of ``metrics``
    (the evaluation's order of conditions)."""
    macro = metrics[(metrics["metric"] == "pr_auc") & (metrics["class"] == "macro")].dropna(subset=["value"])
    run = ["arch", "train_variant", "fold"]
    clean = macro.loc[macro["test_variant"] == CLEAN_TEST, [*run, "value"]].rename(columns={"value": "clean"})
    # an inner merge keeps the left order: runs without a test_none value drop out
    paired = macro[macro["test_variant"] != CLEAN_TEST].merge(clean, on=run)
    rows = []
    for (arch, condition, test), group in paired.groupby(
        ["arch", "train_variant", "test_variant"], sort=False
    ):
        drops = (group["value"] - group["clean"]).to_numpy(dtype=float)
        mean, lo, hi = t_interval(drops, level)
        rows.append(
            {
                "arch": arch,
                "train_variant": condition,
                "test_variant": test,
                "n_runs": len(drops),
                "folds": ";".join(str(int(f)) for f in group["fold"]),
                "test_none_mean": float(group["clean"].mean()),
                "variant_mean": float(group["value"].mean()),
                "drop_mean": mean,
                "drop_lo": lo,
                "drop_hi": hi,
                "drop_runs": ";".join(f"{d:.6g}" for d in drops),
            }
        )
    return pd.DataFrame(rows, columns=DROP_COLUMNS)


def run_groups(table: pd.DataFrame, keys: list[str]) -> Iterator[tuple[dict, pd.DataFrame]]:
    """Per group of ``keys`` (in table order): the row it starts (its keys, n_runs and the folds, in
    fold order) and its runs, sorted by fold; each fold is one training run."""
    for key, group in table.groupby(keys, sort=False):
        group = group.sort_values("fold")
        row = dict(zip(keys, key, strict=True))
        row["n_runs"] = len(group)
        row["folds"] = ";".join(str(int(f)) for f in group["fold"])
        yield row, group


def over_runs(group: pd.DataFrame, measure: str, level: float) -> tuple[np.ndarray, float, float, float, str]:
    """(per-run values, mean, lo, hi, label) of ``<measure>_pp`` over a group's runs: a t-interval
    across the runs that have a value, or with one such run its image bootstrap interval
    (``<measure>_lo`` / ``_hi``)."""
    values = group[f"{measure}_pp"].to_numpy(dtype=float)
    defined = np.isfinite(values)
    mean, lo, hi = t_interval(values, level)
    label = f"t across {defined.sum()} runs"
    if defined.sum() == 1:  # one run: fall back to its image bootstrap
        one = group[defined].iloc[0]
        lo, hi = float(one[f"{measure}_lo"]), float(one[f"{measure}_hi"])
        label = "1 run: bootstrap over images" if np.isfinite(lo) else "1 run: no interval"
    return values, mean, lo, hi, label


def runs_text(values) -> str:
    """Per-run values as one cell ("a;b;c", 6 significant digits; an undefined run is empty)."""
    return ";".join("" if pd.isna(v) else f"{v:.6g}" for v in values)
