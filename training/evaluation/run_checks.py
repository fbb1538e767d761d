"""What ``evaluate`` accepts: finished runs whose prediction tables agree with each other and with the data.

A missing row, a missing table, a y_true or image_id that disagrees with test_none's for the same image, or
a flipped has_artefact each move the metrics without a word (one deleted row moved a run's test_all PR-AUC
from 0.285 to 0.225), so each is refused here with one line naming the run, the table and the first bad
row. The has_artefact column is checked against the variant's own definition (generator.variants): none
for test_none, every image for test_all, one class for test_<cls>, round(p * n_c) images of every class
for test_<p> (nested: test_20 within test_40 within ...). With the data folder at hand the tables are also
checked against the frozen files themselves: the image ids and labels of test_none, and each variant's
has_artefact column, read through their manifest entries (generator.variants.verified).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from generator import CLASSES
from generator.errors import UserError
from generator.variants import CLEAN_TEST, PERCENTAGES, VARIANTS, list_variants

logger = logging.getLogger(__name__)

DONE_NAME = "DONE"


def split_finished(runs: Sequence, include_unfinished: bool = False) -> tuple[list, list]:
    """(runs to evaluate, unfinished runs skipped): a run is finished when its DONE marker exists."""
    finished = [run for run in runs if (Path(run.path) / DONE_NAME).is_file()]
    unfinished = [run for run in runs if not (Path(run.path) / DONE_NAME).is_file()]
    if include_unfinished:
        return list(runs), []
    return finished, unfinished


def _first_difference(expected: np.ndarray, got: np.ndarray) -> int:
    return int(np.flatnonzero(expected != got)[0])


def expected_artefacts(variant: str, y_true: np.ndarray) -> np.ndarray | None:
    """has_artefact as the variant defines it, where the labels alone decide it (None for test_<p>)."""
    spec = VARIANTS[variant]
    if spec.rule == "none":
        return np.zeros(len(y_true), np.int64)
    if spec.rule == "all":
        return np.ones(len(y_true), np.int64)
    if spec.rule == "class":
        return (y_true == CLASSES.index(str(spec.target_class))).astype(np.int64)
    return None


def _check_percent(where: str, variant: str, y_true: np.ndarray, has: np.ndarray) -> None:
    percent = int(VARIANTS[variant].percent or 0)
    for label, cls in enumerate(CLASSES):
        members = y_true == label
        want = (percent * int(members.sum()) + 50) // 100  # the registry's round-half-up
        if int(has[members].sum()) != want:
            raise UserError(
                f"{where}: {int(has[members].sum())} {cls} images have an artefact, {variant} puts one on {want}"
            )


def check_run(
    run_label: str, tables: Mapping[str, pd.DataFrame], data: Mapping[str, dict] | None = None
) -> None:
    """One run's tables: every test variant, exactly test_none's images and labels, has_artefact as defined.

    ``data`` (optional): {test_variant: {"image_id", "y_true", "has_artefact"}} read from the frozen files.
    """
    missing = [v for v in list_variants("test") if v not in tables]
    if missing:
        raise UserError(f"{run_label}: no prediction table for {', '.join(missing)} (predict the run again)")
    clean = tables[CLEAN_TEST]
    ids, y_true = clean["image_id"].to_numpy(), clean["y_true"].to_numpy()
    if data is not None:
        _against_data(f"{run_label}/predictions/{CLEAN_TEST}.csv", clean, data[CLEAN_TEST])
    for variant in list_variants("test"):
        table = tables[variant]
        where = f"{run_label}/predictions/{variant}.csv"
        if len(table) != len(clean):
            extra = sorted(set(table["image_id"]) ^ set(ids))
            raise UserError(
                f"{where}: {len(table)} rows, {CLEAN_TEST}.csv has {len(clean)} (first differing image {extra[0]})"
            )
        these = table["image_id"].to_numpy()
        if (these != ids).any():
            i = _first_difference(ids, these)
            raise UserError(f"{where}: row {i + 2} is image {these[i]}, {CLEAN_TEST}.csv has {ids[i]}")
        labels = table["y_true"].to_numpy()
        if (labels != y_true).any():
            i = _first_difference(y_true, labels)
            raise UserError(
                f"{where}: row {i + 2} ({ids[i]}): y_true {labels[i]}, {CLEAN_TEST}.csv says {y_true[i]}"
            )
        has = table["has_artefact"].to_numpy()
        expected = expected_artefacts(variant, y_true)
        if expected is not None and (has != expected).any():
            i = _first_difference(expected, has)
            raise UserError(
                f"{where}: row {i + 2} ({ids[i]}): has_artefact {has[i]}, {variant} defines {expected[i]}"
            )
        if expected is None:
            _check_percent(where, variant, y_true, has)
        if data is not None:
            _against_data(where, table, data[variant])
    previous = None
    for percent in PERCENTAGES:  # nested by construction: test_20 within test_40 within ...
        has = tables[f"test_{percent}"]["has_artefact"].to_numpy().astype(bool)
        if previous is not None and (previous & ~has).any():
            i = int(np.flatnonzero(previous & ~has)[0])
            raise UserError(
                f"{run_label}/predictions/test_{percent}.csv: row {i + 2} ({ids[i]}) has no artefact, "
                "but it has one in the smaller percentage variant"
            )
        previous = has


def _against_data(where: str, table: pd.DataFrame, frozen: dict) -> None:
    for column in ("image_id", "y_true", "has_artefact"):
        ours, theirs = table[column].to_numpy(), np.asarray(frozen[column])
        if len(ours) != len(theirs):
            raise UserError(f"{where}: {len(ours)} rows, the data's file has {len(theirs)}")
        if (ours != theirs).any():
            i = _first_difference(theirs, ours)
            raise UserError(f"{where}: row {i + 2}: {column} {ours[i]}, the data's file says {theirs[i]}")


def frozen_columns(data_dir: str | Path) -> dict[str, dict]:
    """{test_variant: image_id / y_true / has_artefact, sorted by image_id}, read through the manifest."""
    from generator.variants.store import VariantReader
    from generator.variants.verified import open_checked

    out = {}
    for variant in list_variants("test"):
        reader = VariantReader(open_checked(data_dir, variant).path)
        order = np.argsort(np.asarray(reader.image_ids, dtype=object), kind="stable")
        out[variant] = {
            "image_id": np.asarray(reader.image_ids, dtype=object)[order],
            "y_true": reader.labels[order],
            "has_artefact": reader.has_artefact[order].astype(np.int64),
        }
    return out
