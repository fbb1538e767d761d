"""PR-AUC against the share of test images carrying an artefact (the paper's Figure 4)."""

from __future__ import annotations

import pandas as pd

from generator.variants import ALL_TEST, CLEAN_TEST, VARIANTS

# Nominal share of test images with an artefact in each nested test variant.
PCT_ARTEFACT = {
    CLEAN_TEST: 0,
    **{
        name: spec.percent
        for name, spec in VARIANTS.items()
        if spec.split == "test" and spec.rule == "percent" and spec.percent is not None
    },
    ALL_TEST: 100,
}
CURVE_COLUMNS = ["arch", "train_variant", "pct_artefact", "class", "mean", "ci_lo", "ci_hi"]


def curves_table(summary: pd.DataFrame) -> pd.DataFrame:
    """curves table from metrics_summary: its PR-AUC rows on the nested test variants, by pct_artefact.

    The CI is the summary's: t across folds, or the bootstrap CI when there is one fold.
    """
    rows = summary[(summary["metric"] == "pr_auc") & summary["test_variant"].isin(PCT_ARTEFACT)].copy()
    rows["pct_artefact"] = rows["test_variant"].map(PCT_ARTEFACT).astype(int)
    rows = rows.sort_values(["arch", "train_variant", "class", "pct_artefact"], kind="stable")
    return rows[CURVE_COLUMNS].reset_index(drop=True)
