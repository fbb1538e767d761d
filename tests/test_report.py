"""training.evaluation.report: which numbers the site shows and what it says about them."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from helpers.site import baseline_summary

from generator.variants import ALL_TEST, CLEAN_TEST, CLEAN_TRAIN, list_variants
from training.evaluation import report
from training.evaluation.formats import fmt_interval, fmt_pp, number, text, two_digits
from training.models import ARCHITECTURES, arch_label

ARCHS = list(ARCHITECTURES)


@pytest.mark.parametrize(
    "baseline, smoke",
    [
        (None, False),  # no number: nothing to call a smoke run
        (0.0, True),
        (report.LEARNED_PR_AUC - 1e-9, True),  # just below the bar
        (report.LEARNED_PR_AUC, False),  # the bar itself counts as learnt
        (report.LEARNED_PR_AUC + 1e-9, False),
        (0.93, False),
    ],
)
def test_the_smoke_run_rule_at_and_around_its_bar(baseline, smoke):
    assert report.is_smoke_run(baseline) is smoke
    if baseline is not None:
        assert (ARCHS[0] in report.smoke_archs(baseline_summary({ARCHS[0]: baseline}), ARCHS[:1])) is smoke


def test_smoke_sentence_names_each_smoke_run_with_three_decimals():
    smoke = report.smoke_archs(baseline_summary({ARCHS[0]: 0.71, ARCHS[1]: 0.499, ARCHS[2]: 0.2}), ARCHS)
    assert list(smoke) == ARCHS[1:]  # the architectures' order, the learnt one left out
    sentence = report.smoke_sentence(smoke)
    assert sentence.startswith(
        f"{arch_label(ARCHS[1])} (0.499), {arch_label(ARCHS[2])} (0.200) did not learn"
    )
    assert f"`{CLEAN_TRAIN}` on `{CLEAN_TEST}` below 0.50" in sentence
    assert report.smoke_sentence({}) == ""


@pytest.mark.parametrize(
    "lo, hi, verdict",
    [
        (-3.0, -0.5, "the interval lies below zero: with augmentation the model moved less"),
        (0.5, 4.0, "the interval lies above zero: with augmentation the model moved more"),
        (-2.0, 2.0, "the interval includes zero: no difference this study can detect"),
        (-2.0, 0.0, "the interval includes zero"),  # touching zero is not excluding it
        (0.0, 2.0, "the interval includes zero"),
        (None, 2.0, "no interval could be computed, so this run cannot tell"),
        (None, None, "no interval could be computed, so this run cannot tell"),
    ],
)
def test_remedy_verdict_wording_below_above_inconclusive_and_missing(lo, hi, verdict):
    assert report.remedy_verdict(lo, hi).startswith(verdict)


def _controls(positive: dict | None, negative: dict | None, arch: str = ARCHS[0]) -> pd.DataFrame:
    rows = []
    for control, train, values in (("positive", "train_nv", positive), ("negative", CLEAN_TRAIN, negative)):
        row = dict(
            control=control, arch=arch, train_variant=train, test_variant=ALL_TEST, reference_class="nv"
        )
        row.update(values or {"n_runs": 0, "status": "not available"})
        rows.append(row)
    return pd.DataFrame(rows)


def test_controls_sentence_states_each_verdict_with_its_rule():
    positive = dict(
        n_runs=3,
        status="pass",
        shift_pp=31.25,
        did_pp=27.5,
        did_lo=20.0,
        did_hi=35.0,
        interval="t across 3 runs",
        p_mcnemar_ref_max=3.2e-7,
    )
    negative = dict(n_runs=3, status="fail", shift_pp=-6.25)
    sentence = report.controls_sentence(_controls(positive, negative), ARCHS, synthetic=True)
    assert "by +31.2 pp (difference in differences vs train_none +27.5 pp, 95% CI [+20.0, +35.0]" in sentence
    assert "t across 3 runs; exact McNemar p ≤ 3.20e-07 in every run" in sentence
    assert "train_none's own share moved -6.2 pp" in sentence
    assert (
        "positive control **pass** (difference in differences ≥ +15 pp with p < 0.01), "
        "negative control **fail** (|shift| ≤ 5 pp)."
    ) in sentence
    assert sentence.endswith("These results are from **synthetic data**, not HAM10000.")
    one_run = report.controls_sentence(_controls({**positive, "n_runs": 1}, negative), ARCHS, synthetic=False)
    assert "exact McNemar p = 3.20e-07)" in one_run and one_run.endswith("These results are from HAM10000.")


def test_controls_sentence_without_controls_or_verdicts():
    missing = report.controls_sentence(_controls(None, None), ARCHS, synthetic=False)
    assert f"positive control is not available for {arch_label(ARCHS[0])}" in missing
    assert "the negative control (train_none on test_all) is not available" in missing
    assert "positive control **not available**" in missing and "negative control **not available**" in missing
    empty = report.controls_sentence(_controls(None, None).iloc[0:0], ARCHS, synthetic=False)
    assert empty.startswith("No controls could be computed for this run. The paper")


def test_paper_sentence_rounds_half_up_as_a_reader_would():
    sentence = report.paper_sentence()
    assert "baseline macro PR-AUC 0.80/0.72/0.72 for ResNet-34/" in sentence
    assert "cost 0.22/0.13/0.16 in recall" in sentence  # 0.155 -> 0.16, not binary 0.15
    assert two_digits(0.155) == "0.16" and two_digits(0.145) == "0.15"


def test_headline_gaps_name_what_is_missing_for_whom():
    numbers = report.headline_numbers(baseline_summary({ARCHS[0]: 0.8}), ARCHS[:2])
    assert numbers[ARCHS[0]].baseline == 0.8 and numbers[ARCHS[0]].drop_all is None
    gaps = report.headline_gaps(numbers)
    labels = f"{arch_label(ARCHS[0])}, {arch_label(ARCHS[1])}"
    assert gaps == [
        f"train_none was not evaluated on test_none ({arch_label(ARCHS[1])})",
        f"train_none was not evaluated on test_all ({labels})",
        f"the nv-biased training variant train_nv was not trained in this run ({labels})",
    ]


def test_coverage_notes_say_what_the_run_did_not_train():
    every = list_variants("train")
    assert report.coverage_notes([], every, 5) == []
    notes = report.coverage_notes(["maskrcnn_resnet34"], [CLEAN_TRAIN, "train_nv"], 1)
    assert notes[0] == "Not trained in this run: Mask R-CNN."
    assert notes[1] == "Only 1 of 7 class-biased training variants were trained (`train_nv`)."
    assert notes[2] == "`train_all` (artefacts on every training image) was not trained."
    assert notes[3].startswith("1 cross-validation fold instead of the paper's 5: confidence intervals")
    assert (
        "No class-biased training variants (`train_akiec` … `train_vasc`)"
        in report.coverage_notes([], [CLEAN_TRAIN, "train_all"], 3)[0]
    )


def test_instrument_verdict():
    assert report.instrument_verdict(True).startswith("**Passed**")
    assert "cannot be trusted" in report.instrument_verdict(False)


def test_remedy_sentence_when_the_plain_runs_cannot_be_paired():
    summary = pd.DataFrame(
        [
            dict(
                arch=ARCHS[0],
                train_variant="train_nv+aug",
                test_variant=ALL_TEST,
                reference_class="nv",
                n_runs=1,
                shift_mean=4.0,
                shift_lo=float("nan"),
                shift_hi=float("nan"),
            )
        ]
    )
    sentence = report.remedy_sentence(summary, None, ARCHS[0], "train_nv+aug")
    assert sentence == (
        f"On `test_all`, {arch_label(ARCHS[0])} `train_nv+aug` (1 run) moved the share of non-nv images it "
        "calls nv by +4.0 pp no interval; `train_nv` of the same folds is missing, so the two cannot be paired."
    )
    absent = report.remedy_sentence(summary, None, ARCHS[1], "train_nv+aug")
    assert absent.endswith("`train_nv+aug` has no within-model effect on `test_all` in this run.")


def test_cells_become_numbers_or_nothing():
    assert number(np.float64(0.25)) == 0.25 and number(np.int64(3)) == 3.0 and number(True) == 1.0
    for empty in (float("nan"), None, "0.5", pd.NA):
        assert number(empty) is None
    assert text(float("nan")) == "" and text("t across 2 runs") == "t across 2 runs"
    assert fmt_pp(np.float64(-0.04)) == "-0.0 pp" and fmt_pp(float("nan")) == "—"
    assert fmt_interval(-1.25, 2.0) == "[-1.2, +2.0]" and fmt_interval(1.0, math.nan) == "no interval"
