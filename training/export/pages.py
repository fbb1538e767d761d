"""Markdown page renderers. Each takes already-loaded tables and returns the page text.

Pages hold raw HTML where Markdown cannot express it (sortable tables with data-sort values,
chart containers with their inline Vega-Lite spec, the Grad-CAM gallery grid).
"""

from __future__ import annotations

import html
import json
import math

import pandas as pd

from generator import CLASSES
from generator.licences import KATSCH_2022_CITATION
from generator.variants import VARIANTS

from .charts import arch_label

BIASED_VARIANTS = tuple(
    name for name, spec in VARIANTS.items() if spec.split == "train" and spec.rule == "class"
)
NOT_AVAILABLE = "n/a"
PAPER_PROFILE = "[paper profile](methods.md#reproduce-on-real-ham10000-gpu-cluster)"

# Katsch, Rinner & Tschandl 2022 (Dermatol Pract Concept 12(3):e2022126), as reported in the paper.
PAPER = {
    "baseline": {"resnet34": 0.80, "fasterrcnn_resnet34": 0.72, "maskrcnn_resnet34": 0.72},
    "drop_all": {"resnet34": 0.030, "fasterrcnn_resnet34": 0.045, "maskrcnn_resnet34": 0.011},
    "recall_drop_nv": {"resnet34": 0.218, "fasterrcnn_resnet34": 0.129, "maskrcnn_resnet34": 0.155},
}
PAPER_CITATION = KATSCH_2022_CITATION


def fmt(value, digits: int = 3, sign: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def fmt_int(value) -> str:
    return "—" if value is None or pd.isna(value) else str(int(value))


def fmt_p(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.2e}" if value < 1e-3 else f"{value:.4f}"


def fmt_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def esc(text) -> str:
    return html.escape(str(text), quote=True)


def chart_block(chart_id: str, spec: dict, spec_href: str, caption: str) -> str:
    """A chart container: the spec travels inline (works from file:// too), the loader renders it."""
    payload = json.dumps(spec, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    return (
        f'<figure class="ham-figure">\n'
        f'<div class="ham-chart" id="{esc(chart_id)}"><script type="application/json">{payload}</script></div>\n'
        f'<figcaption>{esc(caption)} <a href="{esc(spec_href)}" download>Vega-Lite spec (JSON)</a></figcaption>\n'
        f"</figure>\n"
    )


def _summary_value(
    summary: pd.DataFrame, arch: str, train: str, test: str, metric: str, column: str, cls: str = "macro"
):
    rows = summary[
        (summary["arch"] == arch)
        & (summary["train_variant"] == train)
        & (summary["test_variant"] == test)
        & (summary["metric"] == metric)
        & (summary["class"] == cls)
    ]
    if rows.empty or pd.isna(rows.iloc[0][column]):
        return None
    return float(rows.iloc[0][column])


def _mean_recall_delta(summary: pd.DataFrame, arch: str):
    """Mean recall over classes is balanced accuracy; fall back to a "macro" recall row if one exists."""
    for metric, cls in (("balanced_accuracy", "all"), ("recall", "macro")):
        value = _summary_value(summary, arch, "train_nv", "test_all", metric, "delta_vs_train_none", cls)
        if value is not None:
            return value
    return None


def headline_numbers(summary: pd.DataFrame, archs: list[str]) -> dict[str, dict[str, dict]]:
    """Our headline numbers, selected from metrics_summary (drops are the sign-flipped deltas)."""
    out: dict[str, dict[str, dict]] = {}
    for arch in archs:
        mean = _summary_value(summary, arch, "train_none", "test_none", "pr_auc", "mean")
        lo = _summary_value(summary, arch, "train_none", "test_none", "pr_auc", "ci_lo")
        hi = _summary_value(summary, arch, "train_none", "test_none", "pr_auc", "ci_hi")
        delta_all = _summary_value(summary, arch, "train_none", "test_all", "pr_auc", "delta_vs_test_none")
        delta_nv = _mean_recall_delta(summary, arch)
        out[arch] = {
            "baseline": {"value": mean, "lo": lo, "hi": hi},
            "drop_all": {"value": None if delta_all is None else -delta_all},
            "recall_drop_nv": {"value": None if delta_nv is None else -delta_nv},
        }
    return out


LEARNED_PR_AUC = 0.50
"""An architecture whose train_none model stays below this test_none macro PR-AUC did not learn within
the run's budget: its pages call it a smoke run, not a result (the study's bar for the detectors)."""


def smoke_archs(summary: pd.DataFrame, archs: list[str]) -> dict[str, float]:
    """{arch: baseline macro PR-AUC} of the architectures that did not learn (below LEARNED_PR_AUC)."""
    out = {}
    for arch in archs:
        value = headline_numbers(summary, [arch])[arch]["baseline"]["value"]
        if value is not None and value < LEARNED_PR_AUC:
            out[arch] = value
    return out


def smoke_admonition(summary: pd.DataFrame, archs: list[str]) -> str:
    """A warning naming the smoke runs; "" when every architecture learnt."""
    smoke = smoke_archs(summary, archs)
    if not smoke:
        return ""
    # three decimals: 0.499 shown as "0.50" would read as meeting the 0.50 bar
    names = ", ".join(f"{arch_label(a)} ({fmt(v, 3)})" for a, v in smoke.items())
    return (
        f'!!! warning "Smoke run: not a result"\n'
        f"    {esc(names)} did not learn within this run's training budget: macro PR-AUC of "
        f"`train_none` on `test_none` below {LEARNED_PR_AUC:.2f} (the class prior gives about 0.14). Their "
        f"numbers show that the pipeline runs end to end; they say nothing about robustness.\n"
    )


def headline_table(summary: pd.DataFrame, archs: list[str]) -> str:
    """Our numbers beside the paper's; a number this run cannot give (variant not trained) is "n/a"."""
    ours = headline_numbers(summary, archs)
    rows = [
        ("baseline", "Baseline PR-AUC (macro)", "train_none on test_none, mean [95% CI]", 2),
        ("drop_all", "PR-AUC drop, artefacts on all test images", "train_none: test_none − test_all", 3),
        (
            "recall_drop_nv",
            "Recall drop, nv-biased training",
            "test_all: train_none − train_nv (mean recall over classes = balanced accuracy)",
            3,
        ),
    ]
    smoke = smoke_archs(summary, archs)
    head = "".join(
        f'<th colspan="2">{esc(arch_label(a))}{"<br><small>smoke run</small>" if a in smoke else ""}</th>'
        for a in archs
    )
    sub = "".join('<th>this site</th><th class="ham-paper">paper</th>' for _ in archs)
    body = []
    for key, label, how, digits in rows:
        cells = []
        for arch in archs:
            entry = ours[arch][key]
            text = NOT_AVAILABLE if entry["value"] is None else fmt(entry["value"], 3)
            if key == "baseline" and entry["value"] is not None:
                text += f'<br><span class="ham-ci">[{fmt(entry["lo"], 3)}, {fmt(entry["hi"], 3)}]</span>'
            paper = PAPER[key].get(arch)
            cells.append(
                f'<td class="ham-ours">{text}</td>'
                f'<td class="ham-paper">{fmt(paper, digits) if paper is not None else "—"}</td>'
            )
        body.append(
            f'<tr><th scope="row">{esc(label)}<br><small>{esc(how)}</small></th>{"".join(cells)}</tr>'
        )
    table = (
        '<div class="ham-headline"><table>'
        f'<thead><tr><th rowspan="2"></th>{head}</tr><tr>{sub}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>\n"
    )
    notes = []
    for key, what in (
        ("baseline", "train_none was not evaluated on test_none"),
        ("drop_all", "train_none was not evaluated on test_all"),
        ("recall_drop_nv", "the nv-biased training variant train_nv was not trained in this run"),
    ):
        missing = [arch_label(a) for a in archs if ours[a][key]["value"] is None]
        if missing:
            notes.append(f"{what} ({', '.join(missing)})")
    if notes:
        table += (
            f'<p class="ham-note"><strong>{NOT_AVAILABLE}</strong>: not available because '
            f"{esc('; '.join(notes))}.</p>\n"
        )
    return table


def coverage_admonition(results) -> str:
    """A note saying what this run did not train (architectures, class-biased variants, folds); "" if complete."""
    lines = []
    if results.missing_archs:
        lines.append(
            "Not trained in this run: " + ", ".join(arch_label(a) for a in results.missing_archs) + "."
        )
    trained = results.train_variants()
    biased = [v for v in BIASED_VARIANTS if v in trained]
    if not biased:
        lines.append(
            "No class-biased training variants (`train_akiec` … `train_vasc`) were trained in this run, "
            "so the [Bias](bias.md) page and the nv-biased headline number are not available."
        )
    elif len(biased) < len(BIASED_VARIANTS):
        lines.append(
            f"Only {len(biased)} of {len(BIASED_VARIANTS)} class-biased training variants were trained "
            f"({', '.join(f'`{v}`' for v in biased)})."
        )
    if "train_all" not in trained:
        lines.append("`train_all` (artefacts on every training image) was not trained.")
    n_folds = results.n_folds
    if 0 < n_folds < 5:
        lines.append(
            f"{n_folds} cross-validation fold{'s' if n_folds > 1 else ''} instead of the paper's 5"
            + (": confidence intervals are bootstrap intervals over test images." if n_folds == 1 else ".")
        )
    if not lines:
        return ""
    body = "\n".join(f"    - {line}" for line in lines)
    return (
        f'!!! warning "This run covers part of the paper\'s grid"\n'
        f"    Training variants with results: {', '.join(f'`{v}`' for v in trained) or 'none'}.\n\n"
        f"{body}\n\n"
        f"    Run the {PAPER_PROFILE} (3 architectures × 9 training variants × 5 folds) for the full set.\n"
    )


def not_available(title: str, text: str) -> str:
    """A visible note in place of a chart or table that this run has no data for."""
    return f'!!! note "{esc(title)}"\n    {text}\n'


def _pp(value, digits: int = 1, sign: bool = True) -> str:
    """Percentage points for prose and tables ("—" when undefined)."""
    return fmt(None if value is None or pd.isna(value) else float(value), digits, sign) + (
        "" if value is None or pd.isna(value) else " pp"
    )


def _interval(lo, hi, digits: int = 1) -> str:
    if lo is None or hi is None or pd.isna(lo) or pd.isna(hi):
        return "no interval"
    return f"[{float(lo):+.{digits}f}, {float(hi):+.{digits}f}]"


def _pp_ci(value, lo, hi) -> str:
    """A table cell's value in percentage points with its interval below ("—" when undefined)."""
    if value is None or pd.isna(value):
        return "—"
    return f'{_pp(value)}<br><span class="ham-ci">{_interval(lo, hi)}</span>'


def _control_row(controls: pd.DataFrame, arch: str, control: str):
    rows = controls[(controls["arch"] == arch) & (controls["control"] == control)]
    return None if rows.empty else rows.iloc[0]


def _available(row) -> bool:
    return row is not None and row["status"] in ("pass", "fail")


def _p_text(row) -> str:
    p = row["p_mcnemar_ref_max"]
    if pd.isna(p):
        return "exact McNemar p not available"
    return (
        f"exact McNemar p ≤ {fmt_p(float(p))} in every run"
        if int(row["n_runs"]) > 1
        else f"exact McNemar p = {fmt_p(float(p))}"
    )


def _two_digits(value: float) -> str:
    """Rounded half up as a reader would (0.155 -> 0.16; binary floats would give 0.15)."""
    from decimal import ROUND_HALF_UP, Decimal

    return str(Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _paper_sentence(archs: list[str]) -> str:
    order = list(PAPER["baseline"])
    names = "/".join(arch_label(a) for a in order)
    baselines = "/".join(_two_digits(PAPER["baseline"][a]) for a in order)
    recall = "/".join(_two_digits(PAPER["recall_drop_nv"][a]) for a in order)
    return (
        f"The paper (HAM10000; copied, not computed here) reported baseline macro PR-AUC {baselines} for "
        f"{names}, and nv-biased training cost {recall} in recall."
    )


def controls_sentence(controls: pd.DataFrame, archs: list[str], synthetic: bool) -> str:
    """The plain sentence saying what the controls show, built only from the controls table's numbers."""
    from training.evaluation.controls import ACCEPTANCE

    with_rows = [a for a in archs if not controls[controls["arch"] == a].empty]
    data = (
        "These results are from **synthetic data**, not HAM10000."
        if synthetic
        else "These results are from HAM10000."
    )
    if not with_rows:
        return f"No controls could be computed for this run. {_paper_sentence(archs)} {data}"
    arch = with_rows[0]
    label = arch_label(arch)
    pos, neg = _control_row(controls, arch, "positive"), _control_row(controls, arch, "negative")
    parts = []
    if _available(pos):
        parts.append(
            f"Adding artefacts moved the share of non-nv test images that the nv-biased {label} calls nv by "
            f"{_pp(pos['shift_pp'])} (difference in differences vs train_none {_pp(pos['did_pp'])}, 95% CI "
            f"{_interval(pos['did_lo'], pos['did_hi'])}, {esc(pos['interval'])}; {_p_text(pos)})"
        )
    else:
        parts.append(
            f"The positive control is not available for {label} (train_nv and train_none on test_none "
            "and test_all are needed)"
        )
    if _available(neg):
        parts.append(f"train_none's own share moved {_pp(neg['shift_pp'])}")
    else:
        parts.append("the negative control (train_none on test_all) is not available")
    verdicts = []
    for name, row, rule in (
        (
            "positive control",
            pos,
            f"difference in differences ≥ +{ACCEPTANCE['positive_min_did_pp']:g} pp "
            f"with p < {ACCEPTANCE['positive_max_p']:g}",
        ),
        ("negative control", neg, f"|shift| ≤ {ACCEPTANCE['negative_max_abs_shift_pp']:g} pp"),
    ):
        status = row["status"] if row is not None else "not available"
        verdicts.append(f"{name} **{status}** ({rule})")
    return f"{'; '.join(parts)}: {', '.join(verdicts)}. {_paper_sentence(archs)} {data}"


def controls_table_html(controls: pd.DataFrame, archs: list[str]) -> str:
    """Every control of every architecture: what was compared, the numbers, the rule and the verdict."""
    what = {
        "positive": "Positive: nv-biased model (train_nv), test_all vs test_none",
        "negative": "Negative: train_none, test_all vs test_none",
        "identity": "Identity: train_none, test_none vs itself",
    }
    body = []
    for arch in archs:
        for row in controls[controls["arch"] == arch].itertuples(index=False):
            status = str(row.status)
            cls = {"pass": "ham-pass", "fail": "ham-fail"}.get(status, "ham-na")
            runs = fmt_int(row.n_runs)
            shift = (
                "0 (exactly)"
                if row.control == "identity" and row.shift_pp == 0
                else _pp_ci(row.shift_pp, row.shift_lo, row.shift_hi)
            )
            did = _pp_ci(row.did_pp, row.did_lo, row.did_hi)
            p = fmt_p(float(row.p_mcnemar_ref_max)) if not pd.isna(row.p_mcnemar_ref_max) else "—"
            interval = "" if pd.isna(row.interval) else str(row.interval)
            body.append(
                f"<tr><td>{esc(arch_label(arch))}</td><td>{esc(what.get(row.control, row.control))}</td>"
                f"<td>{runs}</td><td>{fmt_int(row.n_images)}</td><td>{shift}</td><td>{did}</td><td>{p}</td>"
                f"<td>{esc(interval)}</td><td><small>{esc(row.rule)}</small></td>"
                f'<td class="{cls}"><strong>{esc(status)}</strong></td></tr>'
            )
    head = "".join(
        f"<th>{h}</th>"
        for h in (
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
    return (
        f'<div class="ham-controls"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>\n"
    )


def controls_section(results, synthetic: bool) -> str:
    """The overview's first section: what the controls show, then every control with its verdict."""
    if "controls" not in results.tables:
        return (
            "## Controls\n\n"
            + not_available(
                "No controls in this results folder",
                "`controls.csv` is missing: it is written by `ham-artefacts evaluate`; re-run it on the runs folder.",
            )
            + f"\n{_paper_sentence(results.archs)}\n"
        )
    controls = results["controls"]
    return f"""## Controls

{controls_sentence(controls, results.archs, synthetic)}

Shift = percentage points of non-nv test images carrying an artefact that the same model calls `nv`
with the artefact minus clean (paired per image). DiD = that shift minus train_none's on the same
images (same architecture and fold). Each fold is one training run: with several runs the interval
is a t-interval across runs, with one run a bootstrap over images. The
[instrument check](methods.md#instrument-check) shows these measures detect a planted cheat and
not an honest model. Per-run numbers: `effects`, `effects_summary` and `controls` in
[Downloads](downloads.md).

{controls_table_html(controls, results.archs)}"""


def overview_page(results, manifest: dict, chart: str | None, synthetic: bool | None = None) -> str:
    archs = results.archs
    n_test = sum(f["rows"] for f in manifest["files"] if f["variant"] == "test_none")
    n_train = sum(f["rows"] for f in manifest["files"] if f["variant"] == "train_none")
    if synthetic is None:
        synthetic = bool(manifest.get("synthetic") or results.info.get("synthetic"))
    synthetic_text = (
        "synthetic data (a generated twin of HAM10000, not its images)" if synthetic else "HAM10000"
    )
    return f"""---
hide:
  - toc
---

# Artefacts in dermatoscopic images: robustness results

How much do **bubbles, rulers and ink markings** change the predictions of a classifier (ResNet-34)
and of two object detectors (Faster R-CNN, Mask R-CNN) on the seven HAM10000 classes? This site
reproduces the questions of Katsch, Rinner & Tschandl (2022) on {esc(synthetic_text)}:
{n_train} training and {n_test} test images, {len(manifest["files"])} dataset variants, {len(archs)} architectures.

{controls_section(results, synthetic)}
{smoke_admonition(results["metrics_summary"], archs)}
{coverage_admonition(results)}
## Headline numbers

Our numbers beside **the values reported in the paper** (columns marked *paper*; they are
copied from the publication, not computed here).

{headline_table(results["metrics_summary"], archs)}
<p class="ham-note">Paper: {esc(PAPER_CITATION)}.</p>

## Robustness at a glance

{chart or not_available("No robustness curves", "The results folder has no PR-AUC curves (`curves.csv` is empty).")}
## Where to look next

- [Robustness](robustness.md): PR-AUC against the share of test images with artefacts, per class.
- [Bias](bias.md): what training with artefacts on one class only does to recall, FPR and FNR.
- [Significance](significance.md): paired McNemar tests with Holm correction.
- [Grad-CAM gallery](gallery.md): where the networks look, clean and with artefacts.
- [Datasets](datasets.md): the {len(manifest["files"])} variant files, their checksums and how to read them.
- [Methods & reproduce](methods.md) and [Downloads](downloads.md).
"""


def robustness_page(
    chart: str | None,
    flips_chart: str | None,
    trained: list[str] | None = None,
    remedy: str | None = None,
    drops: str | None = None,
) -> str:
    """``remedy``: the Remedy section (:func:`remedy_section`); ``drops``: the PR-AUC drop per training
    condition (:func:`robustness_drop_table`), shown before it."""
    from training.data.conditions import is_augmented

    flips = (
        f"""
## Which artefacts flip predictions

Share of test images whose predicted class changes when the artefact is added (paired clean vs
artefacted copy of the same image), by artefact kind.

{flips_chart}"""
        if flips_chart
        else "\n## Which artefacts flip predictions\n\n"
        + not_available(
            "No prediction flips",
            "The results folder has no prediction-flip rows (`flips.csv` is absent or empty).",
        )
    )
    if chart is None:
        chart = not_available(
            "No robustness curves", "The results folder has no PR-AUC curves (`curves.csv` is empty)."
        )
    elif trained is not None and len([v for v in trained if not is_augmented(v)]) < 9:
        chart = (
            f"Training variants in this run: {', '.join(f'`{v}`' for v in trained)}; the others need the "
            f"{PAPER_PROFILE}.\n\n{chart}"
        )
    return f"""# Robustness

PR-AUC of each architecture as the share of test images carrying an artefact grows from 0 % (test_none)
through test_20 … test_80 to 100 % (test_all). Bands are 95% confidence intervals from the evaluation
tables. Choose the class (or the macro average) and the training variant below the chart; click a
legend entry to highlight one architecture (shift-click for several, double-click to reset).

{chart}{flips}
{drops or ""}
{remedy or ""}"""


def robustness_drop_table(
    drops: pd.DataFrame | None, archs: list[str], test_variant: str = "test_all"
) -> str:
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
            interval = (
                "—"
                if pd.isna(row.drop_lo)
                else f"[{fmt(row.drop_lo, 3, sign=True)}, {fmt(row.drop_hi, 3, sign=True)}]"
            )
            per_run = ", ".join(fmt(float(d), 3, sign=True) for d in str(row.drop_runs).split(";") if d)
            body.append(
                f"<tr><td>{esc(arch_label(arch))}</td><td>{esc(row.train_variant)}</td><td>{fmt_int(row.n_runs)}</td>"
                f"<td>{fmt(row.test_none_mean)}</td><td>{fmt(row.variant_mean)}</td>"
                f'<td>{fmt(row.drop_mean, 3, sign=True)}<br><span class="ham-ci">{interval}</span></td>'
                f"<td>{esc(per_run)}</td></tr>"
            )
    if not body:
        return f"{title}\n\n" + not_available(
            "No drop to show", f"No run was evaluated on both `test_none` and `{test_variant}`."
        )
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "architecture",
            "training",
            "runs",
            "test_none (mean)",
            f"{esc(test_variant)} (mean)",
            "drop [95% CI across runs]",
            "drop per run",
        )
    )
    return (
        f"{title}, `{esc(test_variant)}` against `test_none`\n\n"
        "The paper's robustness measure for every training condition, including the augmented ones: the same "
        f"model's macro PR-AUC on `{esc(test_variant)}` minus on `test_none` (negative: artefacts cost PR-AUC). "
        "With two or more runs the interval is a t-interval across runs; with one run there is none.\n\n"
        f'<div class="ham-controls"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody>'
        "</table></div>\n"
    )


def within_model_table(
    summary: pd.DataFrame | None,
    archs: list[str],
    test_variant: str = "test_all",
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
                f"{_td(_pp_ci(row.shift_mean, row.shift_lo, row.shift_hi), row.shift_mean)}"
                f"{_td(_pp_ci(row.did_mean, row.did_lo, row.did_hi), row.did_mean)}{_td(fmt_p(float(row.p_mcnemar_ref_max)), row.p_mcnemar_ref_max)}"
                f"<td>{esc(row.interval)}</td></tr>"
            )
    if not body:
        return not_available("No within-model effects", f"No model was evaluated on `{test_variant}`.")
    head = "".join(
        f'<th data-sort-method="{m}">{h}</th>'
        for h, m in (
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
    )
    return (
        f'<div class="ham-sortable ham-controls"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>\n"
    )


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
    by artefact kind; ``remedy``: the Remedy section (:func:`remedy_section`)."""
    trained = list(trained or [])
    biased = [v for v in BIASED_VARIANTS if v in trained]
    missing = [v for v in BIASED_VARIANTS if v not in trained]
    if not biased:
        reason = (
            f"No class-biased training variants (`train_akiec` … `train_vasc`) were trained in this run "
            f"(it trained {', '.join(f'`{v}`' for v in trained) or 'nothing'}); run the {PAPER_PROFILE} "
            "to fill this page."
        )
    else:
        reason = (
            "The evaluation wrote no rows for the class-biased training variants of this run "
            f"({', '.join(f'`{v}`' for v in biased)}); re-run `ham-artefacts evaluate`."
        )
    if heatmap is None:
        heatmap = not_available("Not available in this run", reason)
    elif missing:
        heatmap = (
            f"Class-biased training variants in this run: {', '.join(f'`{v}`' for v in biased)}. "
            f"Not trained: {', '.join(f'`{v}`' for v in missing)} (the {PAPER_PROFILE} trains all).\n\n"
            f"{heatmap}"
        )
    if shift_chart is None:
        shift_chart = not_available("Not available in this run", reason)
    return f"""# Bias

*Biased training*: the variant `train_<class>` puts artefacts on every training image of one class
and on no other. A model can then learn “artefact ⇒ that class”. The heatmaps show, for each biased
training variant (rows) and each class (columns), the shift of recall, false-positive rate (FPR) and
false-negative rate (FNR) relative to clean training (`train_none`) on the same test variant:
red cells are higher than with clean training, blue cells lower. Hover a cell for the values.

{heatmap}
## Shift toward the biased class

Share of test predictions that name the biased class, minus the same share for the model trained
on clean images.

{shift_chart}
## Within-model shift, clean against artefact

The comparisons above set two different training runs side by side, so part of any difference is
the difference between two models. Here each model is compared with itself: the percentage points
of non-reference test images it calls the reference class (the biased class, else `nv`) with the
artefact (`test_all`) minus clean (`test_none`), paired per image, and the difference in differences
against `train_none`. Every test variant, and every run, is in `effects` and `effects_summary` on
[Downloads](downloads.md).

{within or ""}
### By artefact kind

The same measures on `test_all`, over the images that carry each kind (each test image carries one,
drawn at random), in `effects_by_kind` and `effects_by_kind_summary` on [Downloads](downloads.md).
A kind that barely changes the model's input cannot move its predictions, whatever the model learnt,
so a kind near zero for every model, the biased ones included, points to an artefact the model does
not see at its input size rather than to robustness.

{by_kind or ""}
{remedy or ""}"""


def _td(text: str, sort_value=None, cls: str = "") -> str:
    attrs = ""
    if sort_value is not None:
        value = "" if isinstance(sort_value, float) and math.isnan(sort_value) else repr(float(sort_value))
        attrs += f' data-sort="{value}"'
    if cls:
        attrs += f' class="{cls}"'
    return f"<td{attrs}>{text}</td>"


MCNEMAR_DEFINITION = (
    "Continuity-corrected McNemar test on the paired correct/incorrect predictions of one model, "
    "test_none vs the test variant; n10 = correct on the clean image, wrong with the artefact; n01 = the reverse. "
    "Holm correction within each family."
)


def significance_page(mcnemar: pd.DataFrame, archs: list[str], definitions: dict | None = None) -> str:
    definition = (definitions or {}).get("mcnemar")
    source = "from the evaluation's results.json" if definition else "the evaluation contract"
    definition = definition or MCNEMAR_DEFINITION
    parts = [
        f"""---
hide:
  - toc
---

# Significance

Paired McNemar tests between the predictions on a clean test set and on its artefacted copy
(`test_none` vs each other test variant) for the same model.

!!! info "Definition ({source})"
    {esc(definition)}

*p* is the asymptotic p-value, *exact p* the binomial one where n01 + n10 < 25 (— otherwise),
*Holm p* the Holm-adjusted p-value within its family.
<span class="ham-significant-key">Highlighted rows</span> are significant (Holm p < 0.05).
Click a column header to sort.
"""
    ]
    if mcnemar.empty:
        parts.append(
            "\n"
            + not_available(
                "No McNemar tests", "The results folder has no McNemar rows (`mcnemar.csv` is empty)."
            )
        )
    for arch in archs:
        rows = mcnemar[mcnemar["arch"] == arch]
        if rows.empty:
            continue
        n_sig = int(rows["significant"].astype(str).str.lower().isin(["true", "1"]).sum())
        parts.append(f"\n## {esc(arch_label(arch))}\n\n{n_sig} of {len(rows)} comparisons significant.\n")
        head = "".join(
            f'<th data-sort-method="{method}">{label}</th>'
            for label, method in [
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
            ]
        )
        body = []
        for row in rows.itertuples(index=False):
            significant = str(row.significant).lower() in ("true", "1")
            cells = [
                _td(esc(row.train_variant)),
                _td(fmt_int(row.fold), row.fold),
                _td(esc(row.test_variant)),
                _td(fmt_int(row.n01), row.n01),
                _td(fmt_int(row.n10), row.n10),
                _td(fmt(float(row.statistic), 2), row.statistic),
                _td(fmt_p(float(row.p_value)), row.p_value),
                _td(fmt_p(float(row.p_exact)), row.p_exact),
                _td(fmt_p(float(row.p_holm)), row.p_holm),
                _td(esc(row.family)),
                _td("yes" if significant else "no"),
            ]
            cls = ' class="ham-significant"' if significant else ""
            body.append(f"<tr{cls}>{''.join(cells)}</tr>")
        parts.append(
            f'<div class="ham-sortable"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>\n"
        )
    return "".join(parts)


GALLERY_PER_GROUP = 12


def gallery_rows(index: pd.DataFrame, per_group: int = GALLERY_PER_GROUP) -> pd.DataFrame:
    """The Grad-CAM rows the gallery shows: the first ``per_group`` of each (arch, training variant)."""
    return index.groupby(["arch", "train_variant"], sort=False).head(per_group)


def gallery_page(
    index: pd.DataFrame | None,
    archs: list[str],
    image_href,
    attention_chart: str | None,
    per_group: int = GALLERY_PER_GROUP,
) -> str:
    """``image_href(path_in_results) -> str`` maps a PNG of the results folder to its site path."""
    parts = [
        """# Grad-CAM gallery

Grad-CAM heat maps for the same test image without (left) and with (right) its artefact. The
*attention on the artefact* is a ratio: the share of the Grad-CAM mass inside the artefact mask divided
by the share of the image the mask covers (for the clean image: the same region). 1 means the map is no
more drawn to the artefact than a uniform map, above 1 it is attracted to it; — means undefined (an
all-zero map, e.g. a detector that found nothing). Click an image to open the lightbox; the arrows
browse the images of one architecture and training variant.
"""
    ]
    if index is None or index.empty:
        parts.append(
            '\n!!! note "No Grad-CAM results"\n    The results folder has no Grad-CAM images '
            "(`gradcam/index.csv` is absent or empty): run `ham-artefacts gradcam`.\n"
        )
        return "".join(parts)
    without = [arch_label(a) for a in archs if a not in set(index["arch"])]
    if without:
        parts.append(f"\nNo Grad-CAM images for {esc(', '.join(without))} in this run.\n")
    if attention_chart:
        parts.append(f"\n## Attention on artefacts\n\n{attention_chart}")
    for arch in archs:
        arch_rows = index[index["arch"] == arch]
        if arch_rows.empty:
            continue
        parts.append(f"\n## {esc(arch_label(arch))}\n")
        for train, rows in arch_rows.groupby("train_variant", sort=False):
            gallery = f"{arch}-{train}"
            parts.append(f"\n### {esc(arch_label(arch))} · {esc(train)}\n\n")
            if len(rows) > per_group:
                parts.append(
                    f"The first {per_group} of {len(rows)} images; all attention values are in "
                    "[Downloads](downloads.md) (`gradcam/index`).\n\n"
                )
                rows = rows.head(per_group)
            parts.append('<div class="ham-gallery">\n')
            for row in rows.itertuples(index=False):
                title = f"{row.image_id} ({row.dx}, {row.kind})"
                figures = []
                for label, path, value in (
                    ("clean", row.clean_png, row.attention_clean),
                    ("with artefact", row.artefact_png, row.attention_artefact),
                ):
                    desc = (
                        f"{arch_label(arch)}, {train}: {label}; attention on artefact {fmt(float(value), 3)}"
                    )
                    figures.append(
                        f'<img src="{esc(image_href(path))}" alt="{esc(title)} {label}" loading="lazy" '
                        f'data-gallery="{esc(gallery)}" data-title="{esc(title)} — {label}" '
                        f'data-description="{esc(desc)}">'
                    )
                parts.append(
                    f'<figure class="ham-pair"><div class="ham-pair__images">{"".join(figures)}</div>'
                    f"<figcaption><strong>{esc(row.image_id)}</strong> · {esc(row.dx)} · {esc(row.kind)}<br>"
                    f"attention on artefact: clean {fmt(float(row.attention_clean), 3)} → "
                    f"with artefact <strong>{fmt(float(row.attention_artefact), 3)}</strong></figcaption></figure>\n"
                )
            parts.append("</div>\n")
    return "".join(parts)


def datasets_page(
    manifest: dict,
    recipe: str,
    examples: list[tuple[str, str]],
    download_href,
    cards: list[tuple[str, str]] = (),
) -> str:
    """``download_href(entry) -> str | None``: where a variant file can be downloaded; ``cards``:
    (label, href) of the dataset card and Croissant metadata."""
    files = manifest["files"]
    size = manifest.get("image_size")
    rows = []
    for entry in files:
        href = download_href(entry)
        name = (
            f'<a href="{esc(href)}"><code>{esc(entry["name"])}</code></a>'
            if href
            else f"<code>{esc(entry['name'])}</code>"
        )
        rows.append(
            f'<tr><td>{name}</td><td>{esc(entry["split"])}</td><td data-sort="{entry["rows"]}">{entry["rows"]}</td>'
            f'<td data-sort="{entry["n_artefact"]}">{entry["n_artefact"]}</td>'
            f'<td data-sort="{entry["bytes"]}">{fmt_bytes(entry["bytes"])}</td><td>{esc(entry["description"])}</td></tr>'
        )
    details = []
    for entry in files:
        classes = "".join(f"<td>{entry['class_counts'].get(c, 0)}</td>" for c in CLASSES)
        kinds = entry["artefact_counts"]
        kind_text = ", ".join(f"{esc(k)} {v}" for k, v in kinds.items() if v) or "none"
        href = download_href(entry)
        link = (
            f"[download `{entry['name']}`]({href})"
            if href
            else "not published: build it with the commands on [Methods & reproduce](methods.md)"
        )
        details.append(f"""??? info "{entry["variant"]}: {entry["rows"]} images, {entry["n_artefact"]} with an artefact"
    {esc(entry["description"])}

    <div class="ham-counts"><table><thead><tr>{"".join(f"<th>{c}</th>" for c in CLASSES)}</tr></thead><tbody><tr>{classes}</tr></tbody></table></div>

    - Artefacts by kind: {kind_text}
    - Size: {fmt_bytes(entry["bytes"])} ({entry["bytes"]} bytes)
    - SHA-256: `{entry["sha256"]}`
    - Content digest: `{entry["content_digest"]}`
    - {link}
""")
    example_html = "".join(
        f'<figure class="ham-example"><img src="{esc(src)}" alt="{esc(kind)} example" data-gallery="examples" '
        f'data-title="{esc(kind)}" data-description="clean (left) and with a {esc(kind)} artefact (right)">'
        f"<figcaption>{esc(kind)}</figcaption></figure>"
        for kind, src in examples
    )
    size_text = f"{size[0]}×{size[1]} px" if size else "source size"
    base_url = manifest.get("base_url")
    if base_url:
        where = f"Files download from <{base_url}>."
    elif files and download_href(files[0]):
        where = "Files download from this site (links in the table)."
    else:
        where = "The files are not published with this site: rebuild them with the commands on [Methods & reproduce](methods.md)."
    if cards:
        where += " Metadata for data hubs: " + " · ".join(f"[{label}]({href})" for label, href in cards) + "."
    return f"""---
hide:
  - toc
---

# Datasets

{len(files)} variant files, generated with seed {manifest["seed"]} by ham-artefacts {esc(manifest["generator_version"])}
at {size_text}; templates `{esc(manifest["templates"])}`. {where}
Licence: {esc(manifest["licence"])}.

<div class="ham-sortable"><table><thead><tr><th>file</th><th>split</th><th data-sort-method="number">images</th>
<th data-sort-method="number">with artefact</th><th data-sort-method="number">size</th><th>description</th></tr></thead>
<tbody>{"".join(rows)}</tbody></table></div>

## Reading a variant file

Only h5py, NumPy and Pillow are needed:

```python
{recipe}
```

Check a download with `sha256sum FILE` against the table below, or `ham-artefacts verify DIR`.

## Artefact kinds

Each example shows the same image clean (left) and with the artefact (right).

<div class="ham-examples">{example_html}</div>

## Every variant

{"".join(details)}
"""


def downloads_page(
    downloads: list[tuple[str, str, str]],
    citation_bibtex: str,
    citation_texts: list[str],
    definitions: dict | None = None,
) -> str:
    """``downloads``: (title, csv_href or "", json_href or ""); ``definitions`` from results.json."""
    rows = []
    for title, csv_href, json_href in downloads:
        links = " · ".join(
            f"[{kind}]({href})" for kind, href in (("CSV", csv_href), ("JSON", json_href)) if href
        )
        rows.append(f"| `{title}` | {links} |")
    table = "\n".join(rows)
    texts = "\n\n".join(f"    {esc(text)}" for text in citation_texts)
    glossary = ""
    if isinstance(definitions, dict) and definitions:
        items = "\n".join(f"`{esc(k)}`\n:   {esc(v)}\n" for k, v in definitions.items())
        glossary = f"\n## Definitions\n\nAs recorded by the evaluation in `results.json`.\n\n{items}\n"
    return f"""# Downloads

Every table behind this site, as CSV and as JSON (records orientation), exactly as the evaluation wrote it.

| table | download |
|---|---|
{table}
{glossary}
## Cite

!!! quote "How to cite (generated from CITATION.cff)"
{texts}

```bibtex
{citation_bibtex}
```
"""


def instrument_section(check: pd.DataFrame) -> str:
    """The methods page's instrument-check result (the MkDocs hook inserts it at INSTRUMENT_MARKER)."""
    ok = bool(check["ok"].all())
    verdict = (
        "**Passed**: the measures detect the planted cheat and do not detect the honest model."
        if ok
        else "**Failed**: the measures did not tell the planted cheat from the honest model; "
        "the controls on the overview cannot be trusted."
    )
    rows = []
    for row in check.itertuples(index=False):
        rows.append(
            f"<tr><td><code>{esc(row.model)}</code></td><td>{esc(row.behaviour)}</td>"
            f"<td>{'yes' if row.must_detect else 'no'}</td><td>{'yes' if row.detected else 'no'}</td>"
            f"<td>{_pp_ci(row.did_pp, row.did_lo, row.did_hi)}</td>"
            f"<td>{fmt_p(float(row.p_mcnemar_ref_max))}</td><td>{_pp(row.negative_shift_pp)} "
            f"({esc(row.negative_status)})</td>"
            f'<td class="{"ham-pass" if row.ok else "ham-fail"}"><strong>{"pass" if row.ok else "FAIL"}</strong></td></tr>'
        )
    head = "".join(
        f"<th>{h}</th>"
        for h in (
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
    return (
        f"{verdict} Computed by `ham-artefacts export` when this site was generated.\n\n"
        f'<div class="ham-controls"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody>'
        f"</table></div>\n"
    )


REMEDY_CLAIM = (
    "“automated superimposition of artefacts … as a further evolution of data augmentation” should make "
    "classifiers robust to artefacts"
)
"""The paper's proposal (its closing discussion), quoted as the issue that set up the experiment quotes it."""


def remedy_conditions() -> list[str]:
    """The augmented conditions the showcase trains (from its grid), in the evaluation's order."""
    from training.data.conditions import condition_label
    from training.evaluation.predictions import TRAINING_CONDITIONS
    from training.run.sweep import PROFILES

    labels = {
        condition_label(variant, extra[0].get("augment_artefacts", 0.0))
        for _, variant, _, *extra in PROFILES["showcase"]["grid"]
        if extra
    }
    return [v for v in TRAINING_CONDITIONS if v in labels]


def _verdict(mean, lo, hi) -> str:
    """What an interval of (augmented - plain) says, from its numbers alone."""
    if lo is None or hi is None or pd.isna(lo) or pd.isna(hi):
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


def _summary_row(table: pd.DataFrame | None, arch: str, train: str, test: str):
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
    test_variant: str = "test_all",
) -> str:
    """One plain sentence on one augmented condition against its plain counterpart, from the tables' numbers."""
    from training.data.conditions import base_variant

    plain = base_variant(augmented)
    label = arch_label(arch)
    aug_row = _summary_row(effects_summary, arch, augmented, test_variant)
    if aug_row is None:
        return f"{label} `{augmented}` has no within-model effect on `{test_variant}` in this run."
    reference = aug_row["reference_class"]
    text = (
        f"On `{test_variant}`, {label} `{augmented}` ({fmt_int(aug_row['n_runs'])} run"
        f"{'s' if int(aug_row['n_runs']) != 1 else ''}) moved the share of non-{esc(reference)} images it calls "
        f"{esc(reference)} by {_pp(aug_row['shift_mean'])} {_interval(aug_row['shift_lo'], aug_row['shift_hi'])}"
    )
    plain_row = _summary_row(effects_summary, arch, plain, test_variant)
    if plain_row is not None:
        text += f", `{plain}` by {_pp(plain_row['shift_mean'])} {_interval(plain_row['shift_lo'], plain_row['shift_hi'])}"
    remedy = _summary_row(remedy_summary, arch, augmented, test_variant)
    if remedy is None:
        return text + f"; `{plain}` of the same folds is missing, so the two cannot be paired."
    # The runs' table: the paired difference over the folds both conditions have.
    below = above = 0
    rows = remedy_summary[(remedy_summary["arch"] == arch) & (remedy_summary["train_variant"] == augmented)]
    for row in rows.itertuples(index=False):
        below += bool(pd.notna(row.remedy_hi) and row.remedy_hi < 0)
        above += bool(pd.notna(row.remedy_lo) and row.remedy_lo > 0)
    return (
        text + f". Augmented minus plain, paired per image and fold: {_pp(remedy['remedy_mean'])} "
        f"{_interval(remedy['remedy_lo'], remedy['remedy_hi'])} ({esc(remedy['interval'])}); "
        f"{_verdict(remedy['remedy_mean'], remedy['remedy_lo'], remedy['remedy_hi'])}. Over the {len(rows)} "
        f"artefacted test variants measured, the interval lies below zero on {below}, above zero on {above} "
        f"and includes zero (or is missing) on {len(rows) - below - above}."
    )


def remedy_table_html(
    effects_summary: pd.DataFrame | None, remedy_summary: pd.DataFrame | None, arch: str, augmented: str
) -> str:
    """Every test variant: shift and DiD vs train_none of the plain and the augmented condition, and their
    paired difference."""
    from training.data.conditions import base_variant
    from training.evaluation.predictions import TEST_VARIANTS

    plain = base_variant(augmented)
    body = []
    for test in TEST_VARIANTS:
        aug_row = _summary_row(effects_summary, arch, augmented, test)
        plain_row = _summary_row(effects_summary, arch, plain, test)
        remedy = _summary_row(remedy_summary, arch, augmented, test)
        if aug_row is None and plain_row is None:
            continue

        def cell(row, measure):
            return (
                "—"
                if row is None
                else _pp_ci(row[f"{measure}_mean"], row[f"{measure}_lo"], row[f"{measure}_hi"])
            )

        body.append(
            f"<tr><td>{esc(test)}</td><td>{cell(plain_row, 'shift')}</td><td>{cell(aug_row, 'shift')}</td>"
            f"<td>{cell(remedy, 'remedy')}</td><td>{cell(plain_row, 'did')}</td><td>{cell(aug_row, 'did')}</td>"
            f"<td>{'—' if remedy is None else fmt_int(remedy['n_runs'])}</td>"
            f"<td>{'' if remedy is None else esc(remedy['interval'])}</td></tr>"
        )
    if not body:
        return ""
    head = "".join(
        f"<th>{h}</th>"
        for h in (
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
    return (
        f'<div class="ham-controls"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>\n"
    )


def remedy_section(
    effects_summary: pd.DataFrame | None, remedy_summary: pd.DataFrame | None, archs: list[str]
) -> str:
    """The "Remedy" section: the paper's claim quoted, and our measured answer beside it (or why there is none)."""
    from training.data.conditions import is_augmented
    from training.evaluation.predictions import TRAINING_CONDITIONS

    claim = (
        f"**The paper's claim.** Katsch, Rinner & Tschandl (2022) propose that {REMEDY_CLAIM}. Their "
        "`train_all` put an artefact on every training image; random, class-independent artefacts on a share "
        "of the images were not tested."
    )
    present = (
        set() if effects_summary is None or effects_summary.empty else set(effects_summary["train_variant"])
    )
    augmented = [v for v in TRAINING_CONDITIONS if v in present and is_augmented(v)]
    augmented += sorted(v for v in present if is_augmented(v) and v not in augmented)
    if not augmented:
        wanted = ", ".join(f"`{v}`" for v in remedy_conditions())
        return (
            f"## Remedy: artefacts as a training augmentation\n\n{claim}\n\n"
            + not_available(
                "Not tested in this run",
                f"No augmented condition ({wanted}) was trained or evaluated here, so this run gives "
                "no answer to the claim. `make showcase` trains them; one run: `ham-artefacts train "
                "--augment-artefacts 0.5 …`.",
            )
            + "\n"
        )
    parts = []
    for arch in archs:
        for condition in augmented:
            if effects_summary[
                (effects_summary["arch"] == arch) & (effects_summary["train_variant"] == condition)
            ].empty:
                continue
            parts.append(
                f"### {esc(arch_label(arch))}: `{esc(condition)}`\n\n"
                f"{remedy_sentence(effects_summary, remedy_summary, arch, condition)}\n\n"
                f"{remedy_table_html(effects_summary, remedy_summary, arch, condition)}\n"
            )
    return f"""## Remedy: artefacts as a training augmentation

{claim}

**Our measurement.** `X+aug` is trained like `X` plus, on half of the training images of every class,
an artefact inserted on the fly (`--augment-artefacts 0.5`, built-in templates). Each model is
compared with itself, clean (`test_none`) against artefacted (`test_X`), toward its reference class
(the biased class, else `nv`); "augmented − plain" pairs the `X+aug` and `X` runs of the same folds
image by image (negative: the augmented model moved less). DiD is against `train_none`. Rows: the
artefacted test variants; `test_none` is the clean reference itself, and a variant whose artefacted
images all belong to the reference class (`test_nv` for `nv`) has no image to measure. Per-run
numbers: `remedy`, `remedy_summary` and `effects` in [Downloads](downloads.md).

{"".join(parts)}"""
