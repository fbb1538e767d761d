"""Cross-validation folds: StratifiedGroupKFold grouped by lesion_id, stratified by dx.

Folds are computed once from the image ids of ``train_none`` (every training variant holds the same
images, only with or without artefacts), so all 9 training variants share one assignment and a model
trained on any variant is validated on the same held-out lesions.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from generator.errors import UserError

N_FOLDS = 5
REFERENCE_VARIANT = "train_none"


def make_folds(image_ids, lesion_ids, dx, n_folds: int = N_FOLDS, seed: int = 0) -> pd.DataFrame:
    """A table image_id, lesion_id, dx, fold (0..n_folds-1), sorted by image_id.

    The input is sorted by image_id first, so the assignment depends only on the set of images and
    the seed, never on row order.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    table = pd.DataFrame({"image_id": list(image_ids), "lesion_id": list(lesion_ids), "dx": list(dx)})
    if table["image_id"].duplicated().any():
        raise UserError("folds: duplicate image ids")
    table = table.sort_values("image_id", kind="stable").reset_index(drop=True)
    n_groups = table["lesion_id"].nunique()
    if n_groups < n_folds:
        raise UserError(f"folds: {n_groups} lesions cannot fill {n_folds} folds")
    table["fold"] = -1
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    import warnings

    with warnings.catch_warnings():
        # Tiny demo data has classes with fewer lesions than folds; the split is still valid.
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        for fold, (_, held_out) in enumerate(splitter.split(table, table["dx"], groups=table["lesion_id"])):
            table.loc[held_out, "fold"] = fold
    table["fold"] = table["fold"].astype(int)
    return table


def folds_for_data(
    data_dir: str | os.PathLike,
    n_folds: int = N_FOLDS,
    seed: int = 0,
    variant_path: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Folds of the reference variant (``train_none.h5``) in ``data_dir``, opened through its manifest
    entry (``generator.variants.verified.open_checked``).

    Falls back to ``variant_path`` only when the data folder has no train_none file.
    """
    from generator.variants.verified import open_checked

    reference = Path(data_dir) / f"{REFERENCE_VARIANT}.h5"
    path = reference if reference.is_file() else variant_path
    if path is None:
        raise UserError(f"{reference}: not found (folds are computed on train_none)")
    reader = open_checked(Path(path).parent, Path(path).stem).reader
    try:
        return make_folds(reader.image_ids, reader.lesion_ids, reader.metadata["dx"], n_folds, seed)
    finally:
        reader.close()


def fold_indices(folds: pd.DataFrame, image_ids, fold: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (into a variant with these ``image_ids``) for training and for the held-out fold."""
    assignment = dict(zip(folds["image_id"], folds["fold"], strict=True))
    missing = [i for i in image_ids if i not in assignment]
    if missing:
        raise UserError(f"folds: {len(missing)} images are not in train_none (e.g. {missing[0]})")
    fold_of = np.array([assignment[i] for i in image_ids])
    if not 0 <= fold < int(folds["fold"].max()) + 1:
        raise UserError(f"--fold: {fold} is outside 0..{int(folds['fold'].max())}")
    return np.flatnonzero(fold_of != fold), np.flatnonzero(fold_of == fold)
