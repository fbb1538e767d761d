"""The overview page (index.md): the controls, the headline numbers beside the paper's, what the run
covers; and the methods page's instrument-check section."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from generator.variants import CLEAN_TEST, CLEAN_TRAIN
from training.evaluation import report
from training.evaluation.formats import esc, fmt, fmt_int, fmt_p, fmt_pp, number, text
from training.models import arch_label

from .markup import head_row, not_available, pp_ci, render, table

if TYPE_CHECKING:
    from ..results import Results

NOT_AVAILABLE = "n/a"
PAPER_PROFILE = "[paper profile](methods.md#reproduce-on-real-ham10000-gpu-cluster)"
NO_CURVES = ("No robustness curves", "The results folder has no PR-AUC curves (`curves.csv` is empty).")
CONTROL_LABELS = {
    "positive": "Positive: nv-biased model (train_nv), test_all vs test_none",
    "negative": "Negative: train_none, test_all vs test_none",
    "identity": "Identity: train_none, test_none vs itself",
}


def smoke_admonition(summary: pd.DataFrame, archs: list[str]) -> str:
    """A warning naming the smoke runs (:func:`training.evaluation.report.smoke_archs`); "" when every
    architecture learnt."""
    sentence = report.smoke_sentence(report.smoke_archs(summary, archs))
    return f'!!! warning "Smoke run: not a result"\n    {sentence}\n' if sentence else ""


def headline_table(summary: pd.DataFrame, archs: list[str]) -> str:
    """Our numbers beside the paper's; a number this run cannot give (variant not trained) is "n/a"."""
    ours = report.headline_numbers(summary, archs)
    smoke = report.smoke_archs(summary, archs)
    head = "".join(
        f'<th colspan="2">{esc(arch_label(a))}{"<br><small>smoke run</small>" if a in smoke else ""}</th>'
        for a in archs
    )
    sub = "".join('<th>this site</th><th class="ham-paper">paper</th>' for _ in archs)
    body = []
    for row in report.HEADLINE_ROWS:
        cells = []
        for arch in archs:
            value = ours[arch].value(row.key)
            cell = NOT_AVAILABLE if value is None else fmt(value, 3)
            if row.key == "baseline" and value is not None:
                lo, hi = ours[arch].baseline_lo, ours[arch].baseline_hi
                cell += f'<br><span class="ham-ci">[{fmt(lo, 3)}, {fmt(hi, 3)}]</span>'
            paper = report.PAPER[row.key].get(arch)
            cells.append(
                f'<td class="ham-ours">{cell}</td>'
                f'<td class="ham-paper">{fmt(paper, row.paper_digits) if paper is not None else "—"}</td>'
            )
        body.append(
            f'<tr><th scope="row">{esc(row.label)}<br><small>{esc(row.how)}</small></th>{"".join(cells)}</tr>'
        )
    out = (
        '<div class="ham-headline"><table>'
        f'<thead><tr><th rowspan="2"></th>{head}</tr><tr>{sub}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>\n"
    )
    notes = report.headline_gaps(ours)
    if notes:
        out += (
            f'<p class="ham-note"><strong>{NOT_AVAILABLE}</strong>: not available because '
            f"{esc('; '.join(notes))}.</p>\n"
        )
    return out


def coverage_admonition(results: Results) -> str:
    """A note saying what this run did not train (architectures, class-biased variants, folds); "" if complete."""
    trained = results.train_variants()
    lines = report.coverage_notes(results.missing_archs, trained, results.n_folds)
    if not lines:
        return ""
    body = "\n".join(f"    - {line}" for line in lines)
    return (
        f'!!! warning "This run covers part of the paper\'s grid"\n'
        f"    Training variants with results: {', '.join(f'`{v}`' for v in trained) or 'none'}.\n\n"
        f"{body}\n\n"
        f"    Run the {PAPER_PROFILE} (3 architectures × 9 training variants × 5 folds) for the full set.\n"
    )


def controls_table_html(controls: pd.DataFrame, archs: list[str]) -> str:
    """Every control of every architecture: what was compared, the numbers, the rule and the verdict."""
    body = []
    for arch in archs:
        for row in controls[controls["arch"] == arch].itertuples(index=False):
            status = str(row.status)
            cls = {"pass": "ham-pass", "fail": "ham-fail"}.get(status, "ham-na")
            control = str(row.control)
            shift = (
                "0 (exactly)"
                if control == "identity" and number(row.shift_pp) == 0
                else pp_ci(row.shift_pp, row.shift_lo, row.shift_hi)
            )
            p = number(row.p_mcnemar_ref_max)
            body.append(
                f"<tr><td>{esc(arch_label(arch))}</td><td>{esc(CONTROL_LABELS.get(control, control))}</td>"
                f"<td>{fmt_int(row.n_runs)}</td><td>{fmt_int(row.n_images)}</td><td>{shift}</td>"
                f"<td>{pp_ci(row.did_pp, row.did_lo, row.did_hi)}</td><td>{fmt_p(p)}</td>"
                f"<td>{esc(text(row.interval))}</td><td><small>{esc(row.rule)}</small></td>"
                f'<td class="{cls}"><strong>{esc(status)}</strong></td></tr>'
            )
    head = head_row(
        (
            "architecture",
            "control",
            "runs",
            "images",
            "shift toward nv [95% CI]",
            "DiD vs train_none [95% CI]",
            "exact McNemar p (largest over runs)",
            "interval",
            "rule",
            "verdict",
        )
    )
    return table(head, body)


def controls_section(results: Results, synthetic: bool) -> str:
    """The overview's first section: what the controls show, then every control with its verdict."""
    controls = results.tables.get("controls")
    if controls is None:
        return render(
            "controls_missing.md.j2",
            note=not_available(
                "No controls in this results folder",
                "`controls.csv` is missing: it is written by `ham-artefacts evaluate`; re-run it on the runs folder.",
            ),
            paper=report.paper_sentence(),
        )
    return render(
        "controls.md.j2",
        sentence=report.controls_sentence(controls, results.archs, synthetic),
        table=controls_table_html(controls, results.archs),
    )


def overview_page(results: Results, manifest: dict, chart: str | None, synthetic: bool | None = None) -> str:
    archs = results.archs
    if synthetic is None:
        synthetic = bool(manifest.get("synthetic") or results.info.get("synthetic"))
    summary = results["metrics_summary"]
    return render(
        "index.md.j2",
        synthetic=synthetic,
        n_train=sum(f["rows"] for f in manifest["files"] if f["variant"] == CLEAN_TRAIN),
        n_test=sum(f["rows"] for f in manifest["files"] if f["variant"] == CLEAN_TEST),
        n_files=len(manifest["files"]),
        n_archs=len(archs),
        controls=controls_section(results, synthetic),
        smoke=smoke_admonition(summary, archs),
        coverage=coverage_admonition(results),
        headline=headline_table(summary, archs),
        citation=report.PAPER_CITATION,
        chart=chart or not_available(*NO_CURVES),
    )


def instrument_section(check: pd.DataFrame) -> str:
    """The methods page's instrument-check result (the MkDocs hook inserts it at INSTRUMENT_MARKER)."""
    rows = []
    for row in check.itertuples(index=False):
        rows.append(
            f"<tr><td><code>{esc(row.model)}</code></td><td>{esc(row.behaviour)}</td>"
            f"<td>{'yes' if row.must_detect else 'no'}</td><td>{'yes' if row.detected else 'no'}</td>"
            f"<td>{pp_ci(row.did_pp, row.did_lo, row.did_hi)}</td>"
            f"<td>{fmt_p(number(row.p_mcnemar_ref_max))}</td><td>{fmt_pp(row.negative_shift_pp)} "
            f"({esc(row.negative_status)})</td>"
            f'<td class="{"ham-pass" if row.ok else "ham-fail"}"><strong>{"pass" if row.ok else "FAIL"}</strong></td></tr>'
        )
    head = head_row(
        (
            "planted model",
            "behaviour",
            "must be detected",
            "detected",
            "DiD vs train_none [95% CI]",
            "exact McNemar p (largest over runs)",
            "its train_none: shift (negative control)",
            "check",
        )
    )
    verdict = report.instrument_verdict(bool(check["ok"].all()))
    return f"{verdict} Computed by `ham-artefacts export` when this site was generated.\n\n" + table(
        head, rows
    )
