"""Discover runs in a runs folder and load their prediction tables, validating every column.

This module holds the prediction-table contract (:data:`COLUMNS`), which ``training.run.predict`` writes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from generator import CLASSES
from generator.errors import UserError
from generator.variants import CLEAN_TEST, list_variants
from training.data.conditions import with_augmented

from .run_checks import check_run, frozen_columns, split_finished

logger = logging.getLogger(__name__)

SCORE_COLUMNS = tuple(f"score_{c}" for c in CLASSES)
COLUMNS = ("image_id", "y_true", *SCORE_COLUMNS, "y_pred", "has_artefact", "artefact_kind")
"""A prediction table's columns, in order (rows sorted by image_id)."""
TEST_VARIANTS = tuple(list_variants("test"))
TRAINING_CONDITIONS = with_augmented(tuple(list_variants("train")))
"""What a run can be trained on: each frozen training variant followed by its augmented condition
(``X+aug``, :mod:`training.data.conditions`), the order tables and pages list runs in."""
NO_DETECTION = -1  # y_pred of a detector that found nothing: counted as a wrong prediction
_FOLD_DIR = re.compile(r"^fold(\d+)$")


class RunKey(NamedTuple):
    """Which prediction table: one run (architecture, training condition, fold) on one test variant."""

    arch: str
    train_variant: str
    fold: int
    test_variant: str


PredictionTables = dict[RunKey, pd.DataFrame]
"""Every prediction table of a runs folder, as :func:`load_runs` returns them."""


@dataclass(frozen=True)
class Run:
    """One trained model: an architecture, a training variant and a cross-validation fold."""

    arch: str
    train_variant: str
    fold: int
    path: Path


def discover_runs(runs_dir: str | Path) -> list[Run]:
    """Every ``<arch>/<train_variant>/fold<k>/`` under ``runs_dir`` that holds prediction tables, sorted."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise UserError(f"{runs_dir}: runs folder not found")
    runs = []
    for pred_dir in sorted(runs_dir.glob("*/*/fold*/predictions")):
        fold_dir = pred_dir.parent
        match = _FOLD_DIR.match(fold_dir.name)
        if not match or not pred_dir.is_dir() or not any(pred_dir.glob("*.csv")):
            continue
        runs.append(Run(fold_dir.parent.parent.name, fold_dir.parent.name, int(match.group(1)), fold_dir))
    if not runs:
        raise UserError(f"{runs_dir}: no <arch>/<train_variant>/fold<k>/predictions/*.csv found")
    return sorted(runs, key=lambda r: (r.arch, _order(r.train_variant, TRAINING_CONDITIONS), r.fold))


def _order(name: str, names: tuple[str, ...]) -> tuple[int, str]:
    return (names.index(name) if name in names else len(names), name)


def load_predictions(path: str | Path) -> pd.DataFrame:
    """One prediction table, validated, rows sorted by image_id; UserError naming the file and the column
    on any problem."""
    return _by_image_id(_read_validated(Path(path)))


def _by_image_id(table: pd.DataFrame) -> pd.DataFrame:
    order = np.argsort(table["image_id"].to_numpy(), kind="stable")
    return table if (order == np.arange(len(order))).all() else table.iloc[order].reset_index(drop=True)


def _read_validated(path: Path) -> pd.DataFrame:
    """A prediction table in its file's row order (so that errors can name the file's rows), validated."""
    try:
        table = pd.read_csv(path, dtype={"image_id": str, "artefact_kind": str}, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read prediction table ({exc})") from exc
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)}")
    if table.empty:
        raise UserError(f"{path}: no rows")
    if table["image_id"].duplicated().any():
        dup = table.loc[table["image_id"].duplicated(), "image_id"].iloc[0]
        raise UserError(f"{path}: image_id {dup} appears more than once")
    columns = {
        "image_id": table["image_id"].to_numpy(dtype=object),
        "artefact_kind": table["artefact_kind"].fillna("").astype(str).to_numpy(dtype=object),
    }
    for column, low, high in (
        ("y_true", 0, len(CLASSES) - 1),
        ("y_pred", NO_DETECTION, len(CLASSES) - 1),
        ("has_artefact", 0, 1),
    ):
        values = _numeric(table[column])
        bad = ~np.isfinite(values) | (values != np.round(values)) | (values < low) | (values > high)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise UserError(
                f"{path}: row {row + 2}: {column} must be an integer in [{low}, {high}], "
                f"got {table[column].iloc[row]!r}"
            )
        columns[column] = values.astype(np.int64)
    for column in SCORE_COLUMNS:
        values = _numeric(table[column])
        if not np.isfinite(values).all():
            row = int(np.flatnonzero(~np.isfinite(values))[0])
            raise UserError(f"{path}: row {row + 2}: {column} must be a finite number")
        columns[column] = values
    return pd.DataFrame({c: columns[c] for c in COLUMNS})


def _numeric(column: pd.Series) -> np.ndarray:
    """float64 values; anything unparsable becomes NaN (reported by the caller with its row)."""
    if column.dtype.kind in "iuf":
        return column.to_numpy(dtype=np.float64)
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)


def load_runs(
    runs_dir: str | Path,
    progress: bool = False,
    include_unfinished: bool = False,
    data_dir: str | Path | None = None,
) -> PredictionTables:
    """{RunKey: table} for every prediction table of every finished run (its ``DONE`` written).

    Unfinished runs are skipped with one warning line naming them (``include_unfinished`` reads them
    too); none finished is a UserError. Each run's tables are checked before any is used
    (:func:`~training.evaluation.run_checks.check_run`: all test variants, test_none's images and labels,
    has_artefact as each variant defines it), and against the frozen files of ``data_dir`` when given.
    """
    from tqdm import tqdm

    found = discover_runs(runs_dir)
    runs, unfinished = split_finished(found, include_unfinished)
    if unfinished:
        names = ", ".join(f"{run.arch}/{run.train_variant}/fold{run.fold}" for run in unfinished)
        if not runs:
            raise UserError(
                f"{runs_dir}: none of its {len(found)} run(s) is finished (no DONE: {names}); "
                "wait for them, or pass --include-unfinished"
            )
        logger.warning(
            "skipping %d unfinished run(s) (no DONE; --include-unfinished reads them): %s",
            len(unfinished),
            names,
        )
    frozen = frozen_columns(data_dir) if data_dir is not None else None
    tables: PredictionTables = {}
    for run in tqdm(runs, desc="loading predictions", unit="run", disable=not progress):
        as_written = {
            csv.stem: _read_validated(csv) for csv in sorted((run.path / "predictions").glob("*.csv"))
        }
        check_run(str(run.path), as_written, frozen)
        for test_variant, table in as_written.items():
            tables[RunKey(run.arch, run.train_variant, run.fold, test_variant)] = _by_image_id(table)
    return tables


def clean_pairs(tables: PredictionTables) -> Iterator[tuple[RunKey, pd.DataFrame, pd.DataFrame]]:
    """(key, the run's clean table, its table on ``key.test_variant``) for every artefacted test table
    whose run also has :data:`~generator.variants.CLEAN_TEST`, in the order of ``tables``: the pairs
    every within-model comparison (clean against artefacted, same model) is made on."""
    for key, table in tables.items():
        if key.test_variant == CLEAN_TEST:
            continue
        clean = tables.get(key._replace(test_variant=CLEAN_TEST))
        if clean is not None:
            yield key, clean, table


def sort_by_registry(table: pd.DataFrame) -> pd.DataFrame:
    """Rows in the registries' order of training conditions and test variants (then architecture and
    fold; a stable sort, unknown names last)."""
    order = {
        "train_variant": {v: i for i, v in enumerate(TRAINING_CONDITIONS)},
        "test_variant": {v: i for i, v in enumerate(TEST_VARIANTS)},
    }

    def rank(col: pd.Series) -> pd.Series:
        if col.name not in order:
            return col
        ranks = order[str(col.name)]
        return col.map(lambda v: ranks.get(v, len(ranks)))

    return table.sort_values(
        ["arch", "train_variant", "fold", "test_variant"], kind="stable", key=rank
    ).reset_index(drop=True)


def pair_rows(first: pd.DataFrame, second: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Row positions (i, j) such that first.image_id[i] == second.image_id[j], for every shared image_id."""
    _, i, j = np.intersect1d(
        first["image_id"].to_numpy(), second["image_id"].to_numpy(), assume_unique=True, return_indices=True
    )
    return i, j


def detect_synthetic(runs_dir: str | Path) -> bool | None:
    """Whether the runs were trained on synthetic data, from the first config.json that says so.

    Looks for a top-level ``synthetic`` flag, else a ``data`` folder whose manifest.json has one.
    None when no config tells.
    """
    import json

    from generator.variants.manifest import MANIFEST_NAME

    for config_path in sorted(Path(runs_dir).glob("*/*/fold*/config.json")):
        try:
            config = json.loads(config_path.read_text())
        except (OSError, ValueError, RecursionError):
            continue
        if not isinstance(config, dict):
            continue
        if isinstance(config.get("synthetic"), bool):
            return config["synthetic"]
        data = config.get("data") or config.get("data_dir")
        if isinstance(data, str):
            manifest = Path(data) / MANIFEST_NAME
            try:
                flag = json.loads(manifest.read_text()).get("synthetic")
            except (OSError, ValueError, RecursionError, AttributeError):
                flag = None
            if isinstance(flag, bool):
                return flag
    return None
