"""The study's controls, each with its verdict under :data:`ACCEPTANCE`.

- positive: train_nv on test_all must move toward nv beyond train_none (difference in differences);
- negative: train_none on test_all must not move toward nv;
- identity: test_none against itself, which must be exactly zero and is checked.

The numbers are the within-model effects (:mod:`.effects`, :mod:`.paired`) of those runs.
"""

from __future__ import annotations

import pandas as pd

from generator.variants import ALL_TEST, CLEAN_TEST, CLEAN_TRAIN

from .paired import DEFAULT_REFERENCE, effect_counts, paired_indicators
from .predictions import PredictionTables, RunKey

POSITIVE_CONTROL = ("train_nv", ALL_TEST)
NEGATIVE_CONTROL = (CLEAN_TRAIN, ALL_TEST)
IDENTITY_CONTROL = (CLEAN_TRAIN, CLEAN_TEST)
# The study's acceptance rule (issue 11), fixed before any result was seen; never tuned.
ACCEPTANCE = {
    "positive_min_did_pp": 15.0,  # train_nv's shift toward nv beyond train_none's, percentage points
    "positive_max_p": 0.01,  # exact McNemar on "predicts nv", in every run
    "negative_max_abs_shift_pp": 5.0,  # train_none's own shift toward nv
}

CONTROL_COLUMNS = [
    "control",
    "arch",
    "train_variant",
    "test_variant",
    "reference_class",
    "n_runs",
    "n_images",
    "interval",
    "shift_pp",
    "shift_lo",
    "shift_hi",
    "did_pp",
    "did_lo",
    "did_hi",
    "p_mcnemar_ref_max",
    "rule",
    "status",
    "passed",
]


def identity_check(tables: PredictionTables) -> dict:
    """test_none against itself for every train_none run: must be exactly zero (raises otherwise).

    An identity: a model's prediction of an image cannot differ from itself, so any non-zero value
    means the pairing or the counting is broken, and every other effect would be wrong too.
    """
    n_images, n_runs = 0, 0
    for (arch, train, fold, test), table in tables.items():
        if (train, test) != IDENTITY_CONTROL:
            continue
        counts = effect_counts(paired_indicators(table, table, DEFAULT_REFERENCE, artefacted_only=False))
        bad = (counts["n_to"], counts["n_away"], counts["n_correct_to_wrong"], counts["n_wrong_to_correct"])
        if any(bad) or counts["p_mcnemar_ref"] != 1.0 or counts["p_mcnemar_correct"] != 1.0:
            raise RuntimeError(
                f"identity control failed for {arch}/{train}/fold{fold}: test_none against itself "
                f"moved (to, away, correct->wrong, wrong->correct) = {bad}"
            )
        n_images += counts["n"]
        n_runs += 1
    return {"n_runs": n_runs, "n_images": n_images, "shift_pp": 0.0 if n_runs else float("nan")}


def controls_table(tables: PredictionTables, summary: pd.DataFrame) -> pd.DataFrame:
    """controls table: positive, negative and identity control per architecture, with verdicts.

    status is "pass", "fail" or "not available" (the variant was not trained or not tested);
    passed is True/False, or empty when not available.
    """
    rows: list[dict[str, object]] = []
    archs = sorted({key[0] for key in tables})
    rule_positive = (
        f"did_pp >= {ACCEPTANCE['positive_min_did_pp']:g} and exact McNemar p < "
        f"{ACCEPTANCE['positive_max_p']:g} in every run"
    )
    rule_negative = f"|shift_pp| <= {ACCEPTANCE['negative_max_abs_shift_pp']:g}"
    for arch in archs:
        identity = identity_check({k: t for k, t in tables.items() if k[0] == arch})
        for control, (train, test), rule in (
            ("positive", POSITIVE_CONTROL, rule_positive),
            ("negative", NEGATIVE_CONTROL, rule_negative),
        ):
            match = (
                summary[
                    (summary["arch"] == arch)
                    & (summary["train_variant"] == train)
                    & (summary["test_variant"] == test)
                ]
                if not summary.empty
                else summary
            )
            row: dict[str, object] = {
                "control": control,
                "arch": arch,
                "train_variant": train,
                "test_variant": test,
                "reference_class": DEFAULT_REFERENCE,
                "rule": rule,
            }
            if match.empty:
                rows.append({**row, "n_runs": 0, "status": "not available", "passed": None})
                continue
            s = match.iloc[0]
            n_images = [
                len(
                    paired_indicators(
                        tables[RunKey(arch, train, int(f), CLEAN_TEST)],
                        tables[RunKey(arch, train, int(f), test)],
                        DEFAULT_REFERENCE,
                    )["ref_clean"]
                )
                for f in s["folds"].split(";")
            ]
            row.update(
                n_runs=int(s["n_runs"]),
                n_images=int(max(n_images)),
                interval=s["interval"],
                shift_pp=s["shift_mean"],
                shift_lo=s["shift_lo"],
                shift_hi=s["shift_hi"],
                did_pp=s["did_mean"],
                did_lo=s["did_lo"],
                did_hi=s["did_hi"],
                p_mcnemar_ref_max=s["p_mcnemar_ref_max"],
            )
            if control == "positive":
                if pd.isna(s["did_mean"]):
                    rows.append({**row, "status": "not available", "passed": None})
                    continue
                passed = bool(
                    s["did_mean"] >= ACCEPTANCE["positive_min_did_pp"]
                    and s["p_mcnemar_ref_max"] < ACCEPTANCE["positive_max_p"]
                )
            else:
                passed = bool(abs(s["shift_mean"]) <= ACCEPTANCE["negative_max_abs_shift_pp"])
            rows.append({**row, "status": "pass" if passed else "fail", "passed": passed})
        row = {
            "control": "identity",
            "arch": arch,
            "train_variant": IDENTITY_CONTROL[0],
            "test_variant": IDENTITY_CONTROL[1],
            "reference_class": DEFAULT_REFERENCE,
            "rule": "test_none against itself: shift exactly 0 (checked in code)",
        }
        if identity["n_runs"]:
            rows.append(
                {
                    **row,
                    "n_runs": identity["n_runs"],
                    "n_images": identity["n_images"],
                    "interval": "identity",
                    "shift_pp": 0.0,
                    "shift_lo": 0.0,
                    "shift_hi": 0.0,
                    "p_mcnemar_ref_max": 1.0,
                    "status": "pass",
                    "passed": True,
                }
            )
        else:
            rows.append({**row, "n_runs": 0, "status": "not available", "passed": None})
    if not rows:
        return pd.DataFrame(columns=CONTROL_COLUMNS)
    return pd.DataFrame(rows).reindex(columns=CONTROL_COLUMNS)
