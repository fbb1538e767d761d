"""The significance page: every McNemar test of every model, clean against each artefacted test variant."""

from __future__ import annotations

import pandas as pd

from training.evaluation.formats import esc, fmt, fmt_int, fmt_p, number
from training.models import arch_label

from .markup import head_row, not_available, render, table, td

MCNEMAR_DEFINITION = (
    "Continuity-corrected McNemar test on the paired correct/incorrect predictions of one model, "
    "test_none vs the test variant; n10 = correct on the clean image, wrong with the artefact; n01 = the reverse. "
    "Holm correction within each family."
)
"""Shown when results.json has no definition of its own (an older results folder)."""
COLUMNS = (
    ("training", "default"),
    ("fold", "number"),
    ("test", "default"),
    ("n01", "number"),
    ("n10", "number"),
    ("statistic", "number"),
    ("p", "number"),
    ("exact p", "number"),
    ("Holm p", "number"),
    ("family", "default"),
    ("significant", "default"),
)


def _is_significant(value: object) -> bool:
    return str(value).lower() in ("true", "1")


def significance_page(mcnemar: pd.DataFrame, archs: list[str], definitions: dict | None = None) -> str:
    definition = (definitions or {}).get("mcnemar")
    sections = []
    for arch in archs:
        rows = mcnemar[mcnemar["arch"] == arch]
        if rows.empty:
            continue
        body = []
        for row in rows.itertuples(index=False):
            significant = _is_significant(row.significant)
            cells = [
                td(esc(row.train_variant)),
                td(fmt_int(row.fold), row.fold),
                td(esc(row.test_variant)),
                td(fmt_int(row.n01), row.n01),
                td(fmt_int(row.n10), row.n10),
                td(fmt(number(row.statistic), 2), row.statistic),
                td(fmt_p(number(row.p_value)), row.p_value),
                td(fmt_p(number(row.p_exact)), row.p_exact),
                td(fmt_p(number(row.p_holm)), row.p_holm),
                td(esc(row.family)),
                td("yes" if significant else "no"),
            ]
            cls = ' class="ham-significant"' if significant else ""
            body.append(f"<tr{cls}>{''.join(cells)}</tr>")
        head = head_row([label for label, _ in COLUMNS], tuple(method for _, method in COLUMNS))
        sections.append(
            {
                "label": arch_label(arch),
                "n_significant": int(rows["significant"].astype(str).str.lower().isin(["true", "1"]).sum()),
                "n": len(rows),
                "table": table(head, body, "ham-sortable"),
            }
        )
    no_tests = (
        not_available("No McNemar tests", "The results folder has no McNemar rows (`mcnemar.csv` is empty).")
        if mcnemar.empty
        else ""
    )
    return render(
        "significance.md.j2",
        source="from the evaluation's results.json" if definition else "the evaluation contract",
        definition=definition or MCNEMAR_DEFINITION,
        no_tests=no_tests,
        sections=sections,
    )
