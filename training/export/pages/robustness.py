"""The robustness page: PR-AUC curves, prediction flips, the PR-AUC drop per training condition, and
the Remedy section it shares with the bias page."""

from __future__ import annotations

import pandas as pd

from generator.variants import ALL_TEST, CLEAN_TEST, list_variants
from training.data.conditions import base_variant, is_augmented
from training.evaluation import report
from training.evaluation.formats import esc, fmt, fmt_int, number
from training.evaluation.predictions import TEST_VARIANTS
from training.models import arch_label

from .markup import head_row, not_available, pp_ci, render, table
from .overview import NO_CURVES, PAPER_PROFILE


def robustness_page(
    chart: str | None,
    flips_chart: str | None,
    trained: list[str] | None = None,
    remedy: str | None = None,
    drops: str | None = None,
) -> str:
    """``remedy``: the Remedy section (:func:`remedy_section`); ``drops``: the PR-AUC drop per training
    condition (:func:`robustness_drop_table`), shown before it."""
    if chart is None:
        chart = not_available(*NO_CURVES)
    elif trained is not None and len([v for v in trained if not is_augmented(v)]) < len(
        list_variants("train")
    ):
        chart = (
            f"Training variants in this run: {', '.join(f'`{v}`' for v in trained)}; the others need the "
            f"{PAPER_PROFILE}.\n\n{chart}"
        )
    return render(
        "robustness.md.j2",
        chart=chart,
        flips_chart=flips_chart,
        no_flips=not_available(
            "No prediction flips",
            "The results folder has no prediction-flip rows (`flips.csv` is absent or empty).",
        ),
        drops=drops or "",
        remedy=remedy or "",
    )


def robustness_drop_table(drops: pd.DataFrame | None, archs: list[str], test_variant: str = ALL_TEST) -> str:
    """The evaluation's ``drops`` rows on one test variant: macro PR-AUC on ``test_none`` and on
    ``test_variant`` and the drop between them, per training condition (the paper's robustness
    measure), with its t-interval across runs, so a reader sees run-to-run spread beside the effect."""
    title = "\n## Macro PR-AUC drop per training condition"
    if drops is None or drops.empty:
        return f"{title}\n\n" + not_available(
            "No drops", "The results folder has no `drops.csv`: re-run `ham-artefacts evaluate`."
        )
    rows = drops[drops["test_variant"] == test_variant]
    body = []
    for arch in archs:
        for row in rows[rows["arch"] == arch].itertuples(index=False):  # the evaluation's order of conditions
            lo, hi = number(row.drop_lo), number(row.drop_hi)
            interval = "—" if lo is None else f"[{fmt(lo, 3, sign=True)}, {fmt(hi, 3, sign=True)}]"
            per_run = ", ".join(fmt(float(d), 3, sign=True) for d in str(row.drop_runs).split(";") if d)
            body.append(
                f"<tr><td>{esc(arch_label(arch))}</td><td>{esc(row.train_variant)}</td><td>{fmt_int(row.n_runs)}</td>"
                f"<td>{fmt(number(row.test_none_mean))}</td><td>{fmt(number(row.variant_mean))}</td>"
                f'<td>{fmt(number(row.drop_mean), 3, sign=True)}<br><span class="ham-ci">{interval}</span></td>'
                f"<td>{esc(per_run)}</td></tr>"
            )
    if not body:
        return f"{title}\n\n" + not_available(
            "No drop to show", f"No run was evaluated on both `{CLEAN_TEST}` and `{test_variant}`."
        )
    head = head_row(
        (
            "architecture",
            "training",
            "runs",
            f"{CLEAN_TEST} (mean)",
            f"{esc(test_variant)} (mean)",
            "drop [95% CI across runs]",
            "drop per run",
        )
    )
    return (
        f"{title}, `{esc(test_variant)}` against `{CLEAN_TEST}`\n\n"
        "The paper's robustness measure for every training condition, including the augmented ones: the same "
        f"model's macro PR-AUC on `{esc(test_variant)}` minus on `{CLEAN_TEST}` (negative: artefacts cost "
        "PR-AUC). With two or more runs the interval is a t-interval across runs; with one run there is none.\n\n"
        + table(head, body)
    )


def _cell(row: pd.Series | None, measure: str) -> str:
    return "—" if row is None else pp_ci(row[f"{measure}_mean"], row[f"{measure}_lo"], row[f"{measure}_hi"])


def remedy_table_html(
    effects_summary: pd.DataFrame | None, remedy_summary: pd.DataFrame | None, arch: str, augmented: str
) -> str:
    """Every test variant: shift and DiD vs train_none of the plain and the augmented condition, and their
    paired difference."""
    plain = base_variant(augmented)
    body = []
    for test in TEST_VARIANTS:
        aug_row = report.summary_row(effects_summary, arch, augmented, test)
        plain_row = report.summary_row(effects_summary, arch, plain, test)
        remedy = report.summary_row(remedy_summary, arch, augmented, test)
        if aug_row is None and plain_row is None:
            continue
        body.append(
            f"<tr><td>{esc(test)}</td><td>{_cell(plain_row, 'shift')}</td><td>{_cell(aug_row, 'shift')}</td>"
            f"<td>{_cell(remedy, 'remedy')}</td><td>{_cell(plain_row, 'did')}</td><td>{_cell(aug_row, 'did')}</td>"
            f"<td>{'—' if remedy is None else fmt_int(remedy['n_runs'])}</td>"
            f"<td>{'' if remedy is None else esc(remedy['interval'])}</td></tr>"
        )
    if not body:
        return ""
    head = head_row(
        (
            "test variant",
            f"shift, {esc(plain)} [95% CI]",
            f"shift, {esc(augmented)} [95% CI]",
            "augmented − plain [95% CI]",
            f"DiD vs train_none, {esc(plain)}",
            f"DiD vs train_none, {esc(augmented)}",
            "paired runs",
            "interval",
        )
    )
    return table(head, body)


def remedy_section(
    effects_summary: pd.DataFrame | None, remedy_summary: pd.DataFrame | None, archs: list[str]
) -> str:
    """The "Remedy" section: the paper's claim quoted, and our measured answer beside it (or why there is none)."""
    augmented = report.augmented_conditions(effects_summary)
    parts = []
    for arch in archs:
        for condition in augmented:
            assert effects_summary is not None  # augmented conditions come from it
            if effects_summary[
                (effects_summary["arch"] == arch) & (effects_summary["train_variant"] == condition)
            ].empty:
                continue
            parts.append(
                {
                    "arch": arch_label(arch),
                    "condition": condition,
                    "sentence": report.remedy_sentence(effects_summary, remedy_summary, arch, condition),
                    "table": remedy_table_html(effects_summary, remedy_summary, arch, condition),
                }
            )
    not_tested = None
    if not augmented:
        wanted = ", ".join(f"`{v}`" for v in report.remedy_conditions())
        not_tested = not_available(
            "Not tested in this run",
            f"No augmented condition ({wanted}) was trained or evaluated here, so this run gives "
            "no answer to the claim. `make showcase` trains them; one run: `ham-artefacts train "
            "--augment-artefacts 0.5 …`.",
        )
    return render("remedy.md.j2", claim=report.REMEDY_CLAIM, parts=parts, not_tested=not_tested)
