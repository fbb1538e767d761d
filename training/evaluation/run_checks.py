"""What ``evaluate`` accepts: finished runs whose prediction tables agree with each other and with the data.

A missing row, a missing table, a y_true or image_id that disagrees with test_none's for the same image, or
a flipped has_artefact each move the metrics without a word (one deleted row moved a run's test_all PR-AUC
from 0.285 to 0.225), so each is refused here with one line naming the run, the table and the first bad
row. The has_artefact column is checked against the variant's own definition (the registry's
``VariantSpec.selection``): none for test_none, every image for test_all, one class for test_<cls>,
round(p * n_c) images of every class for test_<p>, nested (test_20 within test_40 within ...); which images
of a class a percentage variant picks depends on the build's seed, which only the data knows. An
artefact_kind is named exactly where has_artefact is 1.

With the data folder at hand (``evaluate --data``) the tables are also checked against the frozen files,
each opened through its manifest entry (generator.variants.verified): every table's image ids, y_true,
has_artefact and artefact_kind against its own variant file, row by row. The prediction tables carry no
lesion ids; what is checked of them is that every test variant file gives each image the lesion id
test_none's file gives it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np
import pandas as pd

from generator import CLASSES
from generator.errors import UserError
from generator.variants import CLEAN_TEST, VARIANTS, list_variants
from training.run.config import DONE_NAME

logger = logging.getLogger(__name__)

"""The marker ``train`` writes into a run folder once its predictions are complete."""
DATA_COLUMNS = ("image_id", "y_true", "has_artefact", "artefact_kind")
"""The prediction-table columns that come from the variant file, not from the model."""


class _RunFolder(Protocol):
    @property
    def path(self) -> Path: ...


RunT = TypeVar("RunT", bound=_RunFolder)


def split_finished(runs: Sequence[RunT], include_unfinished: bool = False) -> tuple[list[RunT], list[RunT]]:
    """(runs to evaluate, unfinished runs skipped): a run is finished when its DONE marker exists.

    ``runs``: anything with a ``path`` (the run folder)."""
    if include_unfinished:
        return list(runs), []
    finished: list[RunT] = []
    unfinished: list[RunT] = []
    for run in runs:
        (finished if (Path(run.path) / DONE_NAME).is_file() else unfinished).append(run)
    return finished, unfinished


def _percent_variants() -> list[str]:
    """The percentage test variants, smallest share first (the order they nest in)."""
    names = [v for v in list_variants("test") if VARIANTS[v].rule == "percent"]
    return sorted(names, key=lambda v: int(VARIANTS[v].percent or 0))


def _shown(value: object) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _align(where: str, ids: np.ndarray, reference: np.ndarray, reference_name: str) -> np.ndarray:
    """Where each row's image is in ``reference`` (rows of a table hold distinct images); UserError
    naming the first row whose image the reference lacks, or the first reference image without a row."""
    positions = pd.Index(reference).get_indexer(ids)
    if (positions < 0).any():
        i = int(np.flatnonzero(positions < 0)[0])
        raise UserError(f"{where}: row {i + 2} is image {ids[i]}, which {reference_name} does not have")
    if len(ids) != len(reference):
        present = np.zeros(len(reference), bool)
        present[positions] = True
        j = int(np.flatnonzero(~present)[0])
        raise UserError(
            f"{where}: {len(ids)} rows, {reference_name} has {len(reference)}: no row for image {reference[j]}"
        )
    return positions


def _agree(where: str, ids: np.ndarray, column: str, got: np.ndarray, want: np.ndarray, source: str) -> None:
    """UserError naming the first row (file order) where ``got`` differs from ``want``."""
    if (got != want).any():
        i = int(np.flatnonzero(got != want)[0])
        raise UserError(
            f"{where}: row {i + 2} ({ids[i]}): {column} {_shown(got[i])}, {source} says {_shown(want[i])}"
        )


def check_run(
    run_label: str, tables: Mapping[str, pd.DataFrame], data: Mapping[str, dict] | None = None
) -> None:
    """One run's tables: every test variant, exactly test_none's images and labels, has_artefact as defined.

    ``tables``: {test_variant: table in its file's row order}, so that the rows named are the file's;
    ``data`` (optional): :func:`frozen_columns` of the data folder, each table then checked against its
    variant's file too. UserError naming the run, the table and the first bad row.
    """
    test_variants = list_variants("test")
    unknown = sorted(set(tables) - set(test_variants))
    if unknown:
        raise UserError(
            f"{run_label}/predictions/{unknown[0]}.csv: not a test variant (the registry's are "
            f"{', '.join(test_variants)})"
        )
    missing = [v for v in test_variants if v not in tables]
    if missing:
        raise UserError(f"{run_label}: no prediction table for {', '.join(missing)} (predict the run again)")
    clean = tables[CLEAN_TEST]
    clean_ids, clean_y = clean["image_id"].to_numpy(), clean["y_true"].to_numpy()
    in_clean_order: dict[str, np.ndarray] = {}  # has_artefact per variant, in test_none's row order
    rows_of: dict[str, np.ndarray] = {}  # each variant's row of test_none's k-th image
    for variant in test_variants:
        table, where = tables[variant], f"{run_label}/predictions/{variant}.csv"
        ids = table["image_id"].to_numpy()
        # Against the frozen file first: a table that matches its file but not test_none's blames the data.
        if data is not None:
            frozen = data[variant]
            in_file = _align(where, ids, np.asarray(frozen["image_id"]), frozen["file"])
            for column in DATA_COLUMNS[1:]:
                want = np.asarray(frozen[column])[in_file]
                _agree(where, ids, column, table[column].to_numpy(), want, frozen["file"])
        at = _align(where, ids, clean_ids, f"{CLEAN_TEST}.csv")
        _agree(where, ids, "y_true", table["y_true"].to_numpy(), clean_y[at], f"{CLEAN_TEST}.csv")
        _check_has_artefact(
            where, variant, table, VARIANTS[variant].selection(clean_y.tolist(), list(clean_ids), 0)[at]
        )
        has = table["has_artefact"].to_numpy()
        named = table["artefact_kind"].to_numpy() != ""
        if (named != has.astype(bool)).any():
            i = int(np.flatnonzero(named != has.astype(bool))[0])
            raise UserError(
                f"{where}: row {i + 2} ({ids[i]}): artefact_kind {_shown(table['artefact_kind'].iloc[i])} "
                f"with has_artefact {has[i]}"
            )
        in_clean_order[variant] = np.empty(len(has), bool)
        in_clean_order[variant][at] = has.astype(bool)
        rows_of[variant] = np.empty(len(at), np.int64)
        rows_of[variant][at] = np.arange(len(at))
    smaller = None
    for variant in _percent_variants():  # nested by construction: test_20 within test_40 within ...
        has = in_clean_order[variant]
        if smaller is not None and (in_clean_order[smaller] & ~has).any():
            k = int(np.flatnonzero(in_clean_order[smaller] & ~has)[0])
            raise UserError(
                f"{run_label}/predictions/{variant}.csv: row {rows_of[variant][k] + 2} ({clean_ids[k]}) has no "
                f"artefact, but it has one in {smaller}"
            )
        smaller = variant


def _check_has_artefact(where: str, variant: str, table: pd.DataFrame, defined: np.ndarray) -> None:
    """``defined``: the registry's selection for the table's rows. Of a percentage variant only the
    per-class counts are seed-free (which images of a class: the data's seed, checked with ``data``)."""
    ids, has = table["image_id"].to_numpy(), table["has_artefact"].to_numpy()
    if VARIANTS[variant].rule != "percent":
        _agree(where, ids, "has_artefact", has, defined.astype(np.int64), f"{variant}'s definition")
        return
    y_true = table["y_true"].to_numpy()
    for label, cls in enumerate(CLASSES):
        got, want = int(has[y_true == label].sum()), int(defined[y_true == label].sum())
        if got != want:
            raise UserError(f"{where}: {got} {cls} images have an artefact, {variant} puts one on {want}")


def frozen_columns(data_dir: str | Path) -> dict[str, dict]:
    """{test_variant: {file, image_id, y_true, has_artefact, artefact_kind}} of ``data_dir``, each file
    read through its manifest entry; UserError where a file's lesion ids disagree with test_none's."""
    from generator.variants.verified import manifest_of, open_checked

    manifest = manifest_of(data_dir)  # read once for all 13 files
    out = {}
    lesions: dict[str, str] = {}
    clean_name = ""
    clean_first = [CLEAN_TEST, *(v for v in list_variants("test") if v != CLEAN_TEST)]
    for variant in clean_first:
        with open_checked(data_dir, variant, manifest).reader as reader:
            out[variant] = {
                "file": str(reader.path),
                "image_id": np.asarray(reader.image_ids, dtype=object),
                "y_true": reader.labels,
                "has_artefact": reader.has_artefact.astype(np.int64),
                "artefact_kind": np.asarray(reader.artefact_kinds, dtype=object),
            }
            if variant == CLEAN_TEST:
                lesions = dict(zip(reader.image_ids, reader.lesion_ids, strict=True))
                clean_name = reader.path.name
                continue
            for row, (image, lesion) in enumerate(zip(reader.image_ids, reader.lesion_ids, strict=True)):
                if lesions.get(image, lesion) != lesion:
                    raise UserError(
                        f"{reader.path}: row {row}: image {image} has lesion {lesion}, "
                        f"{clean_name} says {lesions[image]}"
                    )
    return {v: out[v] for v in list_variants("test")}
