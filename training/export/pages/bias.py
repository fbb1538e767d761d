"""The bias page: class-biased training against clean training, and each model against itself."""

from __future__ import annotations

import pandas as pd

from generator.variants import ALL_TEST
from training.evaluation.formats import esc, fmt_int, fmt_p, number
from training.evaluation.report import BIASED_VARIANTS
from training.models import arch_label

from .markup import head_row, not_available, pp_ci, render, table, td
from .overview import PAPER_PROFILE


def within_model_table(
    summary: pd.DataFrame | None,
    archs: list[str],
    test_variant: str = ALL_TEST,
    stem: str = "effects_summary",
) -> str:
    """effects_summary rows on one test variant: each model against itself, clean vs with artefact.
    With ``effects_by_kind_summary`` (``stem``), one row per artefact kind, in a column of its own."""
    if summary is None or summary.empty:
        return not_available(
            "No within-model effects",
            f"The results folder has no `{stem}.csv`: re-run `ham-artefacts evaluate`.",
        )
    by_kind = "kind" in summary.columns
    rows = summary[summary["test_variant"] == test_variant]
    body = []
    for arch in archs:
        for row in rows[rows["arch"] == arch].itertuples(index=False):
            kind_cell = f"<td>{esc(row.kind)}</td>" if by_kind else ""
            body.append(
                f"<tr><td>{esc(arch_label(arch))}</td><td>{esc(row.train_variant)}</td>{kind_cell}"
                f"<td>{esc(row.reference_class)}</td><td>{fmt_int(row.n_runs)}</td>"
                f"{td(pp_ci(row.shift_mean, row.shift_lo, row.shift_hi), row.shift_mean)}"
                f"{td(pp_ci(row.did_mean, row.did_lo, row.did_hi), row.did_mean)}"
                f"{td(fmt_p(number(row.p_mcnemar_ref_max)), row.p_mcnemar_ref_max)}"
                f"<td>{esc(row.interval)}</td></tr>"
            )
    if not body:
        return not_available("No within-model effects", f"No model was evaluated on `{test_variant}`.")
    columns = (
        ("architecture", "default"),
        ("training", "default"),
        *([("artefact kind", "default")] if by_kind else []),
        ("reference class", "default"),
        ("runs", "number"),
        ("shift [95% CI]", "number"),
        ("DiD vs train_none [95% CI]", "number"),
        ("exact McNemar p (largest over runs)", "number"),
        ("interval", "default"),
    )
    head = head_row([label for label, _ in columns], tuple(method for _, method in columns))
    return table(head, body, "ham-sortable ham-controls")


def _quoted(names: list[str]) -> str:
    return ", ".join(f"`{v}`" for v in names)


def bias_page(
    heatmap: str | None,
    shift_chart: str | None,
    trained: list[str] | None = None,
    within: str | None = None,
    remedy: str | None = None,
    by_kind: str | None = None,
) -> str:
    """``trained``: the training variants with results in this run (for what-is-missing notes);
    ``within``: the within-model effects table (:func:`within_model_table`), ``by_kind`` the same split
    by artefact kind; ``remedy``: the Remedy section (:func:`.robustness.remedy_section`)."""
    trained = list(trained or [])
    biased = [v for v in BIASED_VARIANTS if v in trained]
    missing = [v for v in BIASED_VARIANTS if v not in trained]
    if not biased:
        reason = (
            f"No class-biased training variants (`{BIASED_VARIANTS[0]}` … `{BIASED_VARIANTS[-1]}`) were "
            f"trained in this run (it trained {_quoted(trained) or 'nothing'}); run the {PAPER_PROFILE} "
            "to fill this page."
        )
    else:
        reason = (
            "The evaluation wrote no rows for the class-biased training variants of this run "
            f"({_quoted(biased)}); re-run `ham-artefacts evaluate`."
        )
    if heatmap is None:
        heatmap = not_available("Not available in this run", reason)
    elif missing:
        heatmap = (
            f"Class-biased training variants in this run: {_quoted(biased)}. "
            f"Not trained: {_quoted(missing)} (the {PAPER_PROFILE} trains all).\n\n{heatmap}"
        )
    return render(
        "bias.md.j2",
        heatmap=heatmap,
        shift_chart=not_available("Not available in this run", reason)
        if shift_chart is None
        else shift_chart,
        within=within or "",
        by_kind=by_kind or "",
        remedy=remedy or "",
    )
