"""What the results site says: which numbers it shows and the sentences it writes about them.

Everything here is chosen from the evaluation's tables (nothing is recomputed): the headline numbers
beside the paper's, the rule that calls an architecture that did not learn a smoke run, what a run
did not cover, the sentence on the controls and the remedy experiment's verdict. The functions return
plain data or Markdown sentences; ``training.export.pages`` lays them out.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from generator.licences import KATSCH_2022_CITATION
from generator.variants import ALL_TEST, CLEAN_TEST, CLEAN_TRAIN, VARIANTS
from training.data.conditions import base_variant, is_augmented
from training.models import arch_label

from .controls import ACCEPTANCE
from .formats import esc, fmt, fmt_int, fmt_interval, fmt_p, fmt_pp, number, two_digits
from .predictions import TRAINING_CONDITIONS

# Katsch, Rinner & Tschandl 2022 (Dermatol Pract Concept 12(3):e2022126), as reported in the paper.
PAPER = {
    "baseline": {"resnet34": 0.80, "fasterrcnn_resnet34": 0.72, "maskrcnn_resnet34": 0.72},
    "drop_all": {"resnet34": 0.030, "fasterrcnn_resnet34": 0.045, "maskrcnn_resnet34": 0.011},
    "recall_drop_nv": {"resnet34": 0.218, "fasterrcnn_resnet34": 0.129, "maskrcnn_resnet34": 0.155},
}
PAPER_CITATION = KATSCH_2022_CITATION
NV_BIASED = "train_nv"
"""The class-biased training variant of the paper's recall headline and of the positive control."""
ALL_TRAIN = next(name for name, spec in VARIANTS.items() if spec.split == "train" and spec.rule == "all")
BIASED_VARIANTS = tuple(
    name for name, spec in VARIANTS.items() if spec.split == "train" and spec.rule == "class"
)

LEARNED_PR_AUC = 0.50
"""An architecture whose train_none model stays below this test_none macro PR-AUC did not learn within
the run's budget: its pages call it a smoke run, not a result (the study's bar for the detectors)."""


# --- headline numbers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Headline:
    """One architecture's headline numbers, selected from metrics_summary; None: this run has none."""

    baseline: float | None
    baseline_lo: float | None
    baseline_hi: float | None
    drop_all: float | None
    recall_drop_nv: float | None

    def value(self, key: str) -> float | None:
        """The number of a :data:`HEADLINE_ROWS` key (a key of :data:`PAPER`)."""
        return {"baseline": self.baseline, "drop_all": self.drop_all, "recall_drop_nv": self.recall_drop_nv}[
            key
        ]


@dataclass(frozen=True)
class HeadlineRow:
    key: str
    label: str
    how: str
    paper_digits: int
    missing: str
    """Why the number is not available when it is not."""


HEADLINE_ROWS = (
    HeadlineRow(
        "baseline",
        "Baseline PR-AUC (macro)",
        f"{CLEAN_TRAIN} on {CLEAN_TEST}, mean [95% CI]",
        2,
        f"{CLEAN_TRAIN} was not evaluated on {CLEAN_TEST}",
    ),
    HeadlineRow(
        "drop_all",
        "PR-AUC drop, artefacts on all test images",
        f"{CLEAN_TRAIN}: {CLEAN_TEST} − {ALL_TEST}",
        3,
        f"{CLEAN_TRAIN} was not evaluated on {ALL_TEST}",
    ),
    HeadlineRow(
        "recall_drop_nv",
        "Recall drop, nv-biased training",
        f"{ALL_TEST}: {CLEAN_TRAIN} − {NV_BIASED} (mean recall over classes = balanced accuracy)",
        3,
        f"the nv-biased training variant {NV_BIASED} was not trained in this run",
    ),
)


def summary_value(
    summary: pd.DataFrame, arch: str, train: str, test: str, metric: str, column: str, cls: str = "macro"
) -> float | None:
    """One cell of metrics_summary, or None when the row is missing or the cell empty."""
    rows = summary[
        (summary["arch"] == arch)
        & (summary["train_variant"] == train)
        & (summary["test_variant"] == test)
        & (summary["metric"] == metric)
        & (summary["class"] == cls)
    ]
    return None if rows.empty else number(rows.iloc[0][column])


def _mean_recall_delta(summary: pd.DataFrame, arch: str) -> float | None:
    """Mean recall over classes is balanced accuracy; fall back to a "macro" recall row if one exists."""
    for metric, cls in (("balanced_accuracy", "all"), ("recall", "macro")):
        value = summary_value(summary, arch, NV_BIASED, ALL_TEST, metric, "delta_vs_train_none", cls)
        if value is not None:
            return value
    return None


def headline_numbers(summary: pd.DataFrame, archs: list[str]) -> dict[str, Headline]:
    """Our headline numbers, selected from metrics_summary (drops are the sign-flipped deltas)."""
    out = {}
    for arch in archs:
        delta_all = summary_value(summary, arch, CLEAN_TRAIN, ALL_TEST, "pr_auc", "delta_vs_test_none")
        delta_nv = _mean_recall_delta(summary, arch)
        out[arch] = Headline(
            baseline=summary_value(summary, arch, CLEAN_TRAIN, CLEAN_TEST, "pr_auc", "mean"),
            baseline_lo=summary_value(summary, arch, CLEAN_TRAIN, CLEAN_TEST, "pr_auc", "ci_lo"),
            baseline_hi=summary_value(summary, arch, CLEAN_TRAIN, CLEAN_TEST, "pr_auc", "ci_hi"),
            drop_all=None if delta_all is None else -delta_all,
            recall_drop_nv=None if delta_nv is None else -delta_nv,
        )
    return out


def headline_gaps(numbers: dict[str, Headline]) -> list[str]:
    """Why a headline number is missing, per row, naming the architectures without it."""
    notes = []
    for row in HEADLINE_ROWS:
        missing = [arch_label(a) for a, headline in numbers.items() if headline.value(row.key) is None]
        if missing:
            notes.append(f"{row.missing} ({', '.join(missing)})")
    return notes


# --- what a run did not do --------------------------------------------------------------------------


def is_smoke_run(baseline: float | None) -> bool:
    """Whether a baseline macro PR-AUC says the model did not learn (below :data:`LEARNED_PR_AUC`);
    a missing baseline says nothing."""
    return baseline is not None and baseline < LEARNED_PR_AUC


def smoke_archs(summary: pd.DataFrame, archs: list[str]) -> dict[str, float]:
    """{arch: baseline macro PR-AUC} of the architectures that did not learn (below LEARNED_PR_AUC)."""
    out = {}
    for arch, headline in headline_numbers(summary, archs).items():
        if headline.baseline is not None and is_smoke_run(headline.baseline):
            out[arch] = headline.baseline
    return out


def smoke_sentence(smoke: dict[str, float]) -> str:
    """What the smoke runs of :func:`smoke_archs` are; "" when every architecture learnt."""
    if not smoke:
        return ""
    # three decimals: 0.499 shown as "0.50" would read as meeting the 0.50 bar
    names = ", ".join(f"{arch_label(a)} ({fmt(v, 3)})" for a, v in smoke.items())
    return (
        f"{esc(names)} did not learn within this run's training budget: macro PR-AUC of "
        f"`{CLEAN_TRAIN}` on `{CLEAN_TEST}` below {LEARNED_PR_AUC:.2f} (the class prior gives about 0.14). "
        "Their numbers show that the pipeline runs end to end; they say nothing about robustness."
    )


def coverage_notes(missing_archs: list[str], trained: list[str], n_folds: int) -> list[str]:
    """What this run did not train of the paper's grid (architectures, class-biased variants, folds)."""
    lines = []
    if missing_archs:
        lines.append("Not trained in this run: " + ", ".join(arch_label(a) for a in missing_archs) + ".")
    biased = [v for v in BIASED_VARIANTS if v in trained]
    if not biased:
        lines.append(
            f"No class-biased training variants (`{BIASED_VARIANTS[0]}` … `{BIASED_VARIANTS[-1]}`) were "
            "trained in this run, so the [Bias](bias.md) page and the nv-biased headline number are not "
            "available."
        )
    elif len(biased) < len(BIASED_VARIANTS):
        lines.append(
            f"Only {len(biased)} of {len(BIASED_VARIANTS)} class-biased training variants were trained "
            f"({', '.join(f'`{v}`' for v in biased)})."
        )
    if ALL_TRAIN not in trained:
        lines.append(f"`{ALL_TRAIN}` (artefacts on every training image) was not trained.")
    if 0 < n_folds < 5:
        lines.append(
            f"{n_folds} cross-validation fold{'s' if n_folds > 1 else ''} instead of the paper's 5"
            + (": confidence intervals are bootstrap intervals over test images." if n_folds == 1 else ".")
        )
    return lines


# --- the controls -----------------------------------------------------------------------------------


def paper_sentence() -> str:
    """The paper's headline numbers in one sentence, marked as copied."""
    order = list(PAPER["baseline"])
    names = "/".join(arch_label(a) for a in order)
    baselines = "/".join(two_digits(PAPER["baseline"][a]) for a in order)
    recall = "/".join(two_digits(PAPER["recall_drop_nv"][a]) for a in order)
    return (
        f"The paper (HAM10000; copied, not computed here) reported baseline macro PR-AUC {baselines} for "
        f"{names}, and nv-biased training cost {recall} in recall."
    )


def _control_row(controls: pd.DataFrame, arch: str, control: str) -> pd.Series | None:
    rows = controls[(controls["arch"] == arch) & (controls["control"] == control)]
    return None if rows.empty else rows.iloc[0]


def _has_verdict(row: pd.Series | None) -> bool:
    return row is not None and row["status"] in ("pass", "fail")


def _p_text(row: pd.Series) -> str:
    p = number(row["p_mcnemar_ref_max"])
    if p is None:
        return "exact McNemar p not available"
    several = (number(row["n_runs"]) or 0) > 1
    return f"exact McNemar p ≤ {fmt_p(p)} in every run" if several else f"exact McNemar p = {fmt_p(p)}"


def control_rules() -> dict[str, str]:
    """The acceptance rule of each control with a verdict, as the sentence states it."""
    return {
        "positive control": f"difference in differences ≥ +{ACCEPTANCE['positive_min_did_pp']:g} pp "
        f"with p < {ACCEPTANCE['positive_max_p']:g}",
        "negative control": f"|shift| ≤ {ACCEPTANCE['negative_max_abs_shift_pp']:g} pp",
    }


def controls_sentence(controls: pd.DataFrame, archs: list[str], synthetic: bool) -> str:
    """The plain sentence saying what the controls show, built only from the controls table's numbers
    (of the first architecture with controls), with the paper's numbers and where the data came from."""
    with_rows = [a for a in archs if not controls[controls["arch"] == a].empty]
    data = (
        "These results are from **synthetic data**, not HAM10000."
        if synthetic
        else "These results are from HAM10000."
    )
    if not with_rows:
        return f"No controls could be computed for this run. {paper_sentence()} {data}"
    arch = with_rows[0]
    label = arch_label(arch)
    pos, neg = _control_row(controls, arch, "positive"), _control_row(controls, arch, "negative")
    parts = []
    if pos is not None and _has_verdict(pos):
        parts.append(
            f"Adding artefacts moved the share of non-nv test images that the nv-biased {label} calls nv by "
            f"{fmt_pp(pos['shift_pp'])} (difference in differences vs {CLEAN_TRAIN} {fmt_pp(pos['did_pp'])}, "
            f"95% CI {fmt_interval(pos['did_lo'], pos['did_hi'])}, {esc(pos['interval'])}; "
            f"{_p_text(pos)})"
        )
    else:
        parts.append(
            f"The positive control is not available for {label} ({NV_BIASED} and {CLEAN_TRAIN} on "
            f"{CLEAN_TEST} and {ALL_TEST} are needed)"
        )
    if neg is not None and _has_verdict(neg):
        parts.append(f"{CLEAN_TRAIN}'s own share moved {fmt_pp(neg['shift_pp'])}")
    else:
        parts.append(f"the negative control ({CLEAN_TRAIN} on {ALL_TEST}) is not available")
    verdicts = []
    for (name, rule), row in zip(control_rules().items(), (pos, neg), strict=True):
        status = row["status"] if row is not None else "not available"
        verdicts.append(f"{name} **{status}** ({rule})")
    return f"{'; '.join(parts)}: {', '.join(verdicts)}. {paper_sentence()} {data}"


def instrument_verdict(ok: bool) -> str:
    """The instrument check's verdict (planted cheat and honest model through the real measures)."""
    if ok:
        return "**Passed**: the measures detect the planted cheat and do not detect the honest model."
    return (
        "**Failed**: the measures did not tell the planted cheat from the honest model; "
        "the controls on the overview cannot be trusted."
    )


# --- the remedy experiment ----------------------------------------------------------------------------

REMEDY_CLAIM = (
    "“automated superimposition of artefacts … as a further evolution of data augmentation” should make "
    "classifiers robust to artefacts"
)
"""The paper's proposal (its closing discussion), quoted as the issue that set up the experiment quotes it."""


def remedy_conditions() -> list[str]:
    """The augmented conditions the showcase trains (from its grid), in the evaluation's order."""
    from training.data.conditions import condition_label
    from training.run.sweep import PROFILES

    labels = {
        condition_label(variant, extra[0].get("augment_artefacts", 0.0))
        for _, variant, _, *extra in PROFILES["showcase"]["grid"]
        if extra
    }
    return [v for v in TRAINING_CONDITIONS if v in labels]


def augmented_conditions(effects_summary: pd.DataFrame | None) -> list[str]:
    """The augmented conditions with within-model effects: the evaluation's order, unknown ones after."""
    present = (
        set() if effects_summary is None or effects_summary.empty else set(effects_summary["train_variant"])
    )
    augmented = [v for v in TRAINING_CONDITIONS if v in present and is_augmented(v)]
    return augmented + sorted(v for v in present if is_augmented(v) and v not in augmented)


def remedy_verdict(lo: float | None, hi: float | None) -> str:
    """What an interval of (augmented - plain) says, from its numbers alone."""
    if lo is None or hi is None:
        return "no interval could be computed, so this run cannot tell"
    if hi < 0:
        return (
            "the interval lies below zero: with augmentation the model moved less toward the reference class"
        )
    if lo > 0:
        return (
            "the interval lies above zero: with augmentation the model moved more toward the reference class"
        )
    return "the interval includes zero: no difference this study can detect"


def summary_row(table: pd.DataFrame | None, arch: str, train: str, test: str) -> pd.Series | None:
    """The row of a summary table (effects_summary, remedy_summary) for one condition and test variant."""
    if table is None or table.empty:
        return None
    rows = table[
        (table["arch"] == arch) & (table["train_variant"] == train) & (table["test_variant"] == test)
    ]
    return None if rows.empty else rows.iloc[0]


def remedy_sentence(
    effects_summary: pd.DataFrame | None,
    remedy_summary: pd.DataFrame | None,
    arch: str,
    augmented: str,
    test_variant: str = ALL_TEST,
) -> str:
    """One plain sentence on one augmented condition against its plain counterpart, from the tables' numbers."""
    plain = base_variant(augmented)
    label = arch_label(arch)
    aug_row = summary_row(effects_summary, arch, augmented, test_variant)
    if aug_row is None:
        return f"{label} `{augmented}` has no within-model effect on `{test_variant}` in this run."
    reference = aug_row["reference_class"]
    n_runs = fmt_int(aug_row["n_runs"])
    text = (
        f"On `{test_variant}`, {label} `{augmented}` ({n_runs} run{'s' if n_runs != '1' else ''}) moved the "
        f"share of non-{esc(reference)} images it calls {esc(reference)} by {fmt_pp(aug_row['shift_mean'])} "
        f"{fmt_interval(aug_row['shift_lo'], aug_row['shift_hi'])}"
    )
    plain_row = summary_row(effects_summary, arch, plain, test_variant)
    if plain_row is not None:
        text += (
            f", `{plain}` by {fmt_pp(plain_row['shift_mean'])} "
            f"{fmt_interval(plain_row['shift_lo'], plain_row['shift_hi'])}"
        )
    remedy = summary_row(remedy_summary, arch, augmented, test_variant)
    if remedy_summary is None or remedy is None:
        return text + f"; `{plain}` of the same folds is missing, so the two cannot be paired."
    # The runs' table: the paired difference over the folds both conditions have.
    rows = remedy_summary[(remedy_summary["arch"] == arch) & (remedy_summary["train_variant"] == augmented)]
    below = above = 0
    for row in rows.itertuples(index=False):
        lo, hi = number(row.remedy_lo), number(row.remedy_hi)
        below += hi is not None and hi < 0
        above += lo is not None and lo > 0
    verdict = remedy_verdict(number(remedy["remedy_lo"]), number(remedy["remedy_hi"]))
    return (
        text + f". Augmented minus plain, paired per image and fold: {fmt_pp(remedy['remedy_mean'])} "
        f"{fmt_interval(remedy['remedy_lo'], remedy['remedy_hi'])} ({esc(remedy['interval'])}); "
        f"{verdict}. Over the {len(rows)} artefacted test variants measured, the interval lies below zero "
        f"on {below}, above zero on {above} and includes zero (or is missing) on {len(rows) - below - above}."
    )
