"""Read the evaluation result tables (written by training.evaluation) and check their columns."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from generator.errors import UserError
from training.models import ARCHITECTURES

from ..evaluation.controls import CONTROL_COLUMNS
from ..evaluation.predictions import TRAINING_CONDITIONS
from ..evaluation.remedy import REMEDY_COLUMNS, REMEDY_SUMMARY_COLUMNS

# Table stem -> required columns. Tables marked optional may be absent (e.g. Grad-CAM not run).
SCHEMAS: dict[str, tuple[str, ...]] = {
    "metrics": (
        "arch",
        "train_variant",
        "fold",
        "test_variant",
        "metric",
        "class",
        "value",
        "boot_lo",
        "boot_hi",
    ),
    "metrics_summary": (
        "arch",
        "train_variant",
        "test_variant",
        "metric",
        "class",
        "mean",
        "ci_lo",
        "ci_hi",
        "n_folds",
        "delta_vs_test_none",
        "delta_vs_train_none",
    ),
    # The PR-AUC drop per training condition (training/evaluation/aggregate.py); absent in older results folders.
    "drops": (
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
    ),
    "curves": ("arch", "train_variant", "pct_artefact", "class", "mean", "ci_lo", "ci_hi"),
    "mcnemar": (
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
    ),
    "bias": (
        "arch",
        "train_variant",
        "biased_class",
        "test_variant",
        "class",
        "metric",
        "value",
        "baseline",
        "shift",
    ),
    "bias_shift": (
        "arch",
        "train_variant",
        "biased_class",
        "test_variant",
        "share_biased",
        "share_baseline",
        "shift",
    ),
    "flips": ("arch", "train_variant", "test_variant", "kind", "n", "n_flipped", "share"),
    # Within-model effects and controls (training/evaluation/effects.py); absent in older results folders.
    "effects": (
        "arch",
        "train_variant",
        "fold",
        "test_variant",
        "reference_class",
        "n",
        "pct_ref_clean",
        "pct_ref_artefact",
        "shift_pp",
        "pct_to",
        "pct_away",
        "p_mcnemar_ref",
        "p_mcnemar_correct",
        "did_pp",
        "did_lo",
        "did_hi",
    ),
    "effects_summary": (
        "arch",
        "train_variant",
        "test_variant",
        "reference_class",
        "n_runs",
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
    ),
    "effects_by_kind": (
        "arch",
        "train_variant",
        "fold",
        "test_variant",
        "kind",
        "reference_class",
        "n",
        "shift_pp",
        "pct_to",
        "pct_away",
        "p_mcnemar_ref",
        "did_pp",
        "did_lo",
        "did_hi",
    ),
    "effects_by_kind_summary": (
        "arch",
        "train_variant",
        "test_variant",
        "kind",
        "reference_class",
        "n_runs",
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
    ),
    "controls": tuple(CONTROL_COLUMNS),
    # The remedy experiment (augmented conditions X+aug against X); absent in older results folders.
    "remedy": tuple(REMEDY_COLUMNS),
    "remedy_summary": tuple(REMEDY_SUMMARY_COLUMNS),
    "gradcam/index": (
        "arch",
        "train_variant",
        "image_id",
        "dx",
        "kind",
        "clean_png",
        "artefact_png",
        "attention_clean",
        "attention_artefact",
    ),
    "gradcam/attention": (
        "arch",
        "train_variant",
        "n",
        "attention_mean",
        "attention_ci_lo",
        "attention_ci_hi",
    ),
}
ARCH_ORDER = tuple(ARCHITECTURES)
REQUIRED = ("metrics_summary", "curves", "mcnemar", "bias", "bias_shift")

# Columns read as text even when they look numeric (class codes, image ids).
_STRING_COLUMNS = (
    "arch",
    "train_variant",
    "test_variant",
    "metric",
    "class",
    "biased_class",
    "kind",
    "image_id",
    "dx",
    "family",
    "clean_png",
    "artefact_png",
    "control",
    "reference_class",
    "reference_from",
    "interval",
    "rule",
    "status",
    "folds",
    "shift_runs",
    "did_runs",
    "p_mcnemar_ref_runs",
    "plain_variant",
    "remedy_runs",
    "drop_runs",
)


@dataclass
class Results:
    """The result tables of one results folder, each a DataFrame keyed by its stem."""

    root: Path
    info: dict
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    def __getitem__(self, stem: str) -> pd.DataFrame:
        return self.tables[stem]

    def has(self, stem: str) -> bool:
        return stem in self.tables and not self.tables[stem].empty

    def _listed_archs(self) -> set[str]:
        listed = self.info.get("archs")
        if not (isinstance(listed, list) and listed):
            listed = self.tables["metrics_summary"]["arch"].unique()
        return {str(a) for a in listed}

    @property
    def archs(self) -> list[str]:
        """Architectures with results, in the paper's order (classifier first), unknown ones after.

        An architecture that results.json lists but no table row mentions (not trained in this run)
        is left out here and reported by ``missing_archs``.
        """
        names = self._listed_archs()
        with_rows = set(self.tables["metrics_summary"]["arch"])
        if with_rows:
            names &= with_rows
        return _arch_sorted(names)

    @property
    def missing_archs(self) -> list[str]:
        """Architectures results.json lists (or the paper compares) that have no results in this run."""
        return _arch_sorted((self._listed_archs() | set(ARCH_ORDER)) - set(self.archs))

    def train_variants(self, arch: str | None = None) -> list[str]:
        """Training variants with results (of one architecture, or of any), in registry order."""
        summary = self.tables["metrics_summary"]
        if arch is not None:
            summary = summary[summary["arch"] == arch]
        present = set(summary["train_variant"])
        return [v for v in TRAINING_CONDITIONS if v in present] + sorted(present - set(TRAINING_CONDITIONS))

    @property
    def n_folds(self) -> int:
        """Number of cross-validation folds with results (0 when metrics.csv is absent or empty)."""
        if not self.has("metrics"):
            return 0
        return int(self.tables["metrics"]["fold"].nunique())


def _arch_sorted(names) -> list[str]:
    return sorted(names, key=lambda a: (ARCH_ORDER.index(a) if a in ARCH_ORDER else len(ARCH_ORDER), a))


def read_table(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """Read one CSV; UserError naming the file if it is unreadable or lacks a column."""
    try:
        frame = pd.read_csv(
            path, dtype={c: str for c in _STRING_COLUMNS}, keep_default_na=False, na_values=["", "NaN", "nan"]
        )
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise UserError(f"{path}: cannot read table ({exc})") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)}")
    for column in _STRING_COLUMNS:
        if column in frame.columns:
            frame[column] = frame[column].fillna("").astype(str)
    return frame


def load_results(root: str | Path) -> Results:
    """Load results.json and every known table under ``root``; required tables must exist."""
    root = Path(root)
    info_path = root / "results.json"
    if not info_path.is_file():
        raise UserError(f"{info_path}: not found (is --results an evaluation output folder?)")
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{info_path}: not valid JSON ({exc})") from None
    if not isinstance(info, dict):
        raise UserError(f"{info_path}: top level must be an object")
    if "synthetic" in info and not isinstance(info["synthetic"], bool):
        raise UserError(f"{info_path}: 'synthetic' must be true or false")
    results = Results(root=root, info=info)
    for stem, columns in SCHEMAS.items():
        path = root / f"{stem}.csv"
        if not path.is_file():
            if stem in REQUIRED:
                raise UserError(f"{path}: required result table not found")
            continue
        results.tables[stem] = read_table(path, columns)
    return results
