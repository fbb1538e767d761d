"""McNemar tests (Edwards continuity correction) of each model on test_none against each other test
variant, with Holm correction within each family.

Pairing: the same model's predictions for the same image_id on test_none and on the test variant.
Cells: n_ij counts images whose prediction is i on test_none and j on the variant, 1 = correct and
0 = incorrect (a detector's "no detection" is incorrect). So n10 = right when clean, wrong with the
artefact; n01 = the reverse.

statistic = (|n01 - n10| - 1)^2 / (n01 + n10) (statsmodels ``mcnemar(exact=False, correction=True)``),
p_value from chi-square with 1 df; p_exact = exact two-sided binomial p (``exact=True``) when
n01 + n10 < 25, else NaN. With no discordant pair at all there is no evidence of a difference:
statistic 0, p 1 (statsmodels would divide by zero).

Family = (arch, train_variant, fold): the tests of one model against all its test variants. Holm
(``multipletests(method="holm")``, not its Holm-Sidak default) adjusts p_value within a family;
significant = p_holm < 0.05.
"""

from __future__ import annotations

import gc

import numpy as np
import pandas as pd

from .predictions import PredictionTables, clean_pairs, pair_rows

EXACT_BELOW = 25
ALPHA = 0.05
MCNEMAR_COLUMNS = [
    "arch",
    "train_variant",
    "fold",
    "test_variant",
    "n00",
    "n01",
    "n10",
    "n11",
    "statistic",
    "p_value",
    "p_exact",
    "p_holm",
    "significant",
    "family",
]


def contingency(correct_clean: np.ndarray, correct_variant: np.ndarray) -> tuple[int, int, int, int]:
    """(n00, n01, n10, n11) of paired correct (1) / incorrect (0) outcomes."""
    a = np.asarray(correct_clean, dtype=bool)
    b = np.asarray(correct_variant, dtype=bool)
    return int((~a & ~b).sum()), int((~a & b).sum()), int((a & ~b).sum()), int((a & b).sum())


def exact_mcnemar(n01: int, n10: int) -> float:
    """Exact two-sided McNemar p-value from the two discordant counts (statsmodels; 1 when both are 0);
    the concordant cells do not enter it."""
    from statsmodels.stats.contingency_tables import mcnemar

    return float(mcnemar([[0, n01], [n10, 0]], exact=True).pvalue)


def mcnemar_test(n00: int, n01: int, n10: int, n11: int) -> tuple[float, float, float]:
    """(statistic, p_value, p_exact) for one 2x2 table; p_exact NaN when n01 + n10 >= 25."""
    from statsmodels.stats.contingency_tables import mcnemar

    table = [[n00, n01], [n10, n11]]
    discordant = n01 + n10
    if discordant == 0:
        return 0.0, 1.0, 1.0
    result = mcnemar(table, exact=False, correction=True)
    p_exact = exact_mcnemar(n01, n10) if discordant < EXACT_BELOW else float("nan")
    return float(result.statistic), float(result.pvalue), p_exact


def holm(p_values) -> np.ndarray:
    """Holm step-down adjusted p-values."""
    from statsmodels.stats.multitest import multipletests

    p_values = np.asarray(p_values, dtype=float)
    if len(p_values) == 0:
        return p_values
    return multipletests(p_values, alpha=ALPHA, method="holm")[1]


def mcnemar_table(tables: PredictionTables) -> pd.DataFrame:
    """mcnemar table for every run with a test_none table, against each of its other test variants."""
    rows = []
    for (arch, train, fold, test), clean, table in clean_pairs(tables):
        i, j = pair_rows(clean, table)
        correct_clean = clean["y_pred"].to_numpy()[i] == clean["y_true"].to_numpy()[i]
        n00, n01, n10, n11 = contingency(
            correct_clean, table["y_pred"].to_numpy()[j] == table["y_true"].to_numpy()[j]
        )
        statistic, p_value, p_exact = mcnemar_test(n00, n01, n10, n11)
        rows.append(
            {
                "arch": arch,
                "train_variant": train,
                "fold": fold,
                "test_variant": test,
                "n00": n00,
                "n01": n01,
                "n10": n10,
                "n11": n11,
                "statistic": statistic,
                "p_value": p_value,
                "p_exact": p_exact,
                "family": f"{arch}/{train}/fold{fold}",
            }
        )
    out = pd.DataFrame(rows, columns=[c for c in MCNEMAR_COLUMNS if c not in ("p_holm", "significant")])
    out["p_holm"] = np.nan
    # statsmodels' Holm branch calls gc.collect() on every call, which costs time proportional to the
    # whole heap (all loaded tables); freezing the existing objects makes those collections cheap.
    gc.freeze()
    try:
        for _, index in out.groupby("family", sort=False).groups.items():
            out.loc[index, "p_holm"] = holm(out.loc[index, "p_value"].to_numpy())
    finally:
        gc.unfreeze()
    out["significant"] = out["p_holm"] < ALPHA
    return out[MCNEMAR_COLUMNS]
