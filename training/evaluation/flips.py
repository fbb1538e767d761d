"""Prediction flips: how often adding the artefact changes a model's predicted class.

For each model and artefacted test variant, images are paired by image_id with test_none; only the
images that carry an artefact in the variant count. Counts are pooled over folds. kind "all" pools
every artefact kind; the other rows split by the kind inserted.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .predictions import PredictionTables, clean_pairs, pair_rows

FLIP_COLUMNS = ["arch", "train_variant", "test_variant", "kind", "n", "n_flipped", "share"]


def flips_table(tables: PredictionTables) -> pd.DataFrame:
    pieces = []
    for (arch, train, _, test), clean, table in clean_pairs(tables):
        i, j = pair_rows(clean, table)
        artefacted = table["has_artefact"].to_numpy()[j] == 1
        i, j = i[artefacted], j[artefacted]
        if len(j) == 0:
            continue
        flipped = (clean["y_pred"].to_numpy()[i] != table["y_pred"].to_numpy()[j]).astype(int)
        kind = table["artefact_kind"].to_numpy()[j]
        frame = pd.DataFrame(
            {
                "arch": arch,
                "train_variant": train,
                "test_variant": test,
                "kind": np.where(kind == "", "unknown", kind),
                "flipped": flipped,
            }
        )
        pieces.append(frame)
        pieces.append(frame.assign(kind="all"))
    if not pieces:
        return pd.DataFrame(columns=FLIP_COLUMNS)
    pooled = (
        pd.concat(pieces, ignore_index=True)
        .groupby(["arch", "train_variant", "test_variant", "kind"], sort=False)["flipped"]
        .agg(n="count", n_flipped="sum")
        .reset_index()
    )
    pooled["share"] = pooled["n_flipped"] / pooled["n"]
    return pooled[FLIP_COLUMNS]
