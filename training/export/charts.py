"""Altair chart builders: result tables in, Vega-Lite specs (plain dicts) out.

Every chart embeds its (small) data inline, so a page needs no request besides the vendored
Vega bundle. Interactivity uses Vega-Lite params: dropdowns for class / variant, and a legend
bound point selection that dims the architectures not clicked.

A run may cover only part of the grid (the demo trains train_none, maybe train_nv, one fold). Every
builder returns None when nothing is left to plot, so the page can say what is missing instead of
showing an empty chart container.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from generator import CLASSES
from generator.variants import ALL_TEST, CLEAN_TRAIN
from training.models import arch_label

METRIC_LABELS = {"recall": "recall", "fpr": "FPR", "fnr": "FNR"}
ARCH_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")
WIDTH = "container"


def _arch_colour(archs: list[str]) -> alt.Color:
    labels = [arch_label(a) for a in archs]
    return alt.Color(
        "Architecture:N",
        scale=alt.Scale(domain=labels, range=list(ARCH_COLOURS[: len(labels)])),
        legend=alt.Legend(title="Architecture (click to highlight)", orient="bottom", symbolOpacity=1),
    )


def _with_arch(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["Architecture"] = frame["arch"].map(arch_label)
    if "class" in frame.columns:
        frame = frame.rename(columns={"class": "cls"})
    # 4 decimals is far below what a chart can show and halves the inline data.
    floats = frame.select_dtypes("float").columns
    frame[floats] = frame[floats].round(4)
    return frame


def _select(name: str, options: list[str], value: str, label: str) -> alt.Parameter:
    return alt.param(name=name, value=value, bind=alt.binding_select(options=options, name=label))


def _first(options: list[str], preferred: str) -> str:
    return preferred if preferred in options or not options else options[0]


def _plottable(frame: pd.DataFrame, archs: list[str], value: str):
    """(rows with an Architecture label, architectures present) for the listed architectures whose
    ``value`` is a number (NaN rows cannot be drawn); None when nothing is left to draw. Absent
    architectures get no legend entry or facet."""
    data = frame[frame["arch"].isin(archs) & pd.to_numeric(frame[value], errors="coerce").notna()]
    if data.empty:
        return None
    return _with_arch(data), [a for a in archs if a in set(data["arch"])]


def _to_dict(chart) -> dict:
    spec = chart.to_dict()  # validates against the Vega-Lite schema
    spec.setdefault("config", {}).setdefault("view", {})["stroke"] = None
    return spec


def robustness_chart(
    curves: pd.DataFrame, archs: list[str], interactive: bool = True, height: int = 320
) -> dict | None:
    """PR-AUC against % of test images with artefacts, 95% CI band per architecture."""
    plottable = _plottable(curves, archs, "mean")
    if plottable is None:
        return None
    data, archs = plottable
    data = data[["Architecture", "train_variant", "pct_artefact", "cls", "mean", "ci_lo", "ci_hi"]]
    trains = list(dict.fromkeys(data["train_variant"]))
    classes = [c for c in ("macro",) + CLASSES if c in set(data["cls"])]
    legend = alt.selection_point(fields=["Architecture"], bind="legend", name="arch_pick")
    if interactive:
        cls_param = _select("cls_pick", classes, _first(classes, "macro"), "Class ")
        train_param = _select("train_pick", trains, _first(trains, CLEAN_TRAIN), "Training variant ")
        params = [cls_param, train_param]
        base = alt.Chart(data).transform_filter("datum.cls == cls_pick && datum.train_variant == train_pick")
    else:
        params = []
        base = alt.Chart(
            data[
                (data["cls"] == _first(classes, "macro"))
                & (data["train_variant"] == _first(trains, CLEAN_TRAIN))
            ]
        )
    x = alt.X(
        "pct_artefact:Q",
        title="% of test images with artefacts",
        scale=alt.Scale(domain=[0, 100]),
        axis=alt.Axis(values=[0, 20, 40, 60, 80, 100]),
    )
    base = base.encode(x=x, color=_arch_colour(archs))
    band = base.mark_area().encode(
        y=alt.Y("ci_lo:Q", title="PR-AUC", scale=alt.Scale(zero=False)),
        y2="ci_hi:Q",
        opacity=alt.condition(legend, alt.value(0.22), alt.value(0.03)),
    )
    line = base.mark_line(point=alt.OverlayMarkDef(size=50, filled=True)).encode(
        y="mean:Q",
        opacity=alt.condition(legend, alt.value(1.0), alt.value(0.15)),
        tooltip=[
            alt.Tooltip("Architecture:N"),
            alt.Tooltip("train_variant:N", title="training"),
            alt.Tooltip("cls:N", title="class"),
            alt.Tooltip("pct_artefact:Q", title="% artefacts"),
            alt.Tooltip("mean:Q", title="PR-AUC", format=".3f"),
            alt.Tooltip("ci_lo:Q", title="95% CI low", format=".3f"),
            alt.Tooltip("ci_hi:Q", title="95% CI high", format=".3f"),
        ],
    )
    chart = alt.layer(band.add_params(legend), line).add_params(*params)
    return _to_dict(chart.properties(width=WIDTH, height=height))


def _per_test_variant(table: pd.DataFrame, archs: list[str], param_name: str):
    """Plottable shift rows, the architectures present and a test-variant selector (test_all first);
    None when there is nothing to draw."""
    plottable = _plottable(table, archs, "shift")
    if plottable is None:
        return None
    data, archs = plottable
    tests = list(dict.fromkeys(data["test_variant"]))
    return data, archs, _select(param_name, tests, _first(tests, ALL_TEST), "Test variant ")


def bias_heatmap(bias: pd.DataFrame, archs: list[str]) -> dict | None:
    """Shift of recall / FPR / FNR per class (columns) for each biased training variant (rows), per arch."""
    prepared = _per_test_variant(bias, archs, "bias_test")
    if prepared is None:
        return None
    data, archs, test_param = prepared
    data["Metric"] = data["metric"].map(METRIC_LABELS).fillna(data["metric"])
    data = data[
        ["Architecture", "train_variant", "test_variant", "cls", "Metric", "value", "baseline", "shift"]
    ]
    rows = [f"train_{c}" for c in CLASSES if f"train_{c}" in set(data["train_variant"])]
    rows += [v for v in dict.fromkeys(data["train_variant"]) if v not in rows]
    largest = data["shift"].abs().max()  # NaN-safe: pandas skips missing values
    limit = float(largest) if pd.notna(largest) and largest > 0 else 1.0
    base = alt.Chart().encode(
        x=alt.X("cls:N", sort=list(CLASSES), title="class"),
        y=alt.Y("train_variant:N", sort=rows, title="biased training variant"),
    )
    cells = base.mark_rect().encode(
        color=alt.Color(
            "shift:Q", title="shift", scale=alt.Scale(scheme="redblue", domain=[-limit, limit], reverse=True)
        ),
        tooltip=[
            alt.Tooltip("Architecture:N"),
            alt.Tooltip("train_variant:N", title="training"),
            alt.Tooltip("test_variant:N", title="test"),
            alt.Tooltip("cls:N", title="class"),
            alt.Tooltip("Metric:N"),
            alt.Tooltip("value:Q", format=".3f"),
            alt.Tooltip("baseline:Q", title=CLEAN_TRAIN, format=".3f"),
            alt.Tooltip("shift:Q", format="+.3f"),
        ],
    )
    # White digits on the saturated cells, black elsewhere, so every number stays legible.
    text = base.mark_text(fontSize=9).encode(
        text=alt.Text("shift:Q", format="+.2f"),
        color=alt.condition(f"abs(datum.shift) > {0.55 * limit}", alt.value("white"), alt.value("black")),
    )
    chart = (
        alt.layer(cells, text, data=data)
        .transform_filter("datum.test_variant == bias_test")
        .properties(width=190, height=190)
        .facet(
            row=alt.Row("Metric:N", sort=list(METRIC_LABELS.values()), title=None),
            column=alt.Column("Architecture:N", sort=[arch_label(a) for a in archs], title=None),
        )
        .add_params(test_param)
    )
    return _to_dict(chart)


def bias_shift_chart(bias_shift: pd.DataFrame, archs: list[str]) -> dict | None:
    """Share of predictions moved toward the biased class, per biased class and architecture."""
    prepared = _per_test_variant(bias_shift, archs, "shift_test")
    if prepared is None:
        return None
    data, archs, test_param = prepared
    legend = alt.selection_point(fields=["Architecture"], bind="legend", name="shift_arch")
    chart = (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X(
                "biased_class:N",
                sort=list(CLASSES),
                title="biased class (artefacts on its training images)",
                axis=alt.Axis(labelAngle=0),
            ),
            xOffset=alt.XOffset("Architecture:N", sort=[arch_label(a) for a in archs]),
            y=alt.Y("shift:Q", title="shift toward the biased class"),
            color=_arch_colour(archs),
            opacity=alt.condition(legend, alt.value(1.0), alt.value(0.2)),
            tooltip=[
                alt.Tooltip("Architecture:N"),
                alt.Tooltip("train_variant:N", title="training"),
                alt.Tooltip("test_variant:N", title="test"),
                alt.Tooltip("share_biased:Q", title="share predicted biased class", format=".3f"),
                alt.Tooltip("share_baseline:Q", title="same share, train_none", format=".3f"),
                alt.Tooltip("shift:Q", format="+.3f"),
            ],
        )
        .transform_filter("datum.test_variant == shift_test")
        .add_params(test_param, legend)
        .properties(width=WIDTH, height=300)
    )
    return _to_dict(chart)


def flips_chart(flips: pd.DataFrame, archs: list[str]) -> dict | None:
    """Share of predictions that change when the artefact is added, by artefact kind."""
    plottable = _plottable(flips, archs, "share")
    if plottable is None:
        return None
    data, archs = plottable
    data["label"] = data["train_variant"] + " → " + data["test_variant"]
    options = list(dict.fromkeys(data["label"]))
    pick = _select("flip_pick", options, _first(options, f"{CLEAN_TRAIN} → {ALL_TEST}"), "Training → test ")
    legend = alt.selection_point(fields=["Architecture"], bind="legend", name="flip_arch")
    kinds = sorted(dict.fromkeys(data["kind"]), key=lambda k: (k != "all", k))  # "all" first
    chart = (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X("kind:N", sort=kinds, title="artefact kind", axis=alt.Axis(labelAngle=-25)),
            xOffset=alt.XOffset("Architecture:N", sort=[arch_label(a) for a in archs]),
            y=alt.Y("share:Q", title="share of predictions flipped", axis=alt.Axis(format="%")),
            color=_arch_colour(archs),
            opacity=alt.condition(legend, alt.value(1.0), alt.value(0.2)),
            tooltip=[
                alt.Tooltip("Architecture:N"),
                alt.Tooltip("kind:N"),
                alt.Tooltip("n:Q", title="images"),
                alt.Tooltip("n_flipped:Q", title="flipped"),
                alt.Tooltip("share:Q", format=".1%"),
            ],
        )
        .transform_filter("datum.label == flip_pick")
        .add_params(pick, legend)
        .properties(width=WIDTH, height=260)
    )
    return _to_dict(chart)


def attention_chart(attention: pd.DataFrame, archs: list[str]) -> dict | None:
    """Mean artefact attention ratio with its 95% CI, per architecture and training variant.

    The ratio is (share of CAM mass on the artefact) / (share of image area it covers): 1 = no more
    drawn to the artefact than a uniform map, marked by a dashed rule.
    """
    plottable = _plottable(attention, archs, "attention_mean")
    if plottable is None:
        return None
    data, archs = plottable
    trains = list(dict.fromkeys(data["train_variant"]))
    base = alt.Chart(data).encode(
        y=alt.Y("train_variant:N", sort=trains, title="training variant"),
        yOffset=alt.YOffset("Architecture:N", sort=[arch_label(a) for a in archs]),
        color=_arch_colour(archs),
    )
    rules = base.mark_rule(strokeWidth=2).encode(
        x=alt.X("attention_ci_lo:Q", title="artefact attention ratio (1 = uniform map)"),
        x2="attention_ci_hi:Q",
    )
    points = base.mark_point(filled=True, size=60).encode(
        x="attention_mean:Q",
        tooltip=[
            alt.Tooltip("Architecture:N"),
            alt.Tooltip("train_variant:N", title="training"),
            alt.Tooltip("n:Q", title="images"),
            alt.Tooltip("attention_mean:Q", title="mean", format=".3f"),
            alt.Tooltip("attention_ci_lo:Q", title="95% CI low", format=".3f"),
            alt.Tooltip("attention_ci_hi:Q", title="95% CI high", format=".3f"),
        ],
    )
    uniform = (
        alt.Chart(pd.DataFrame({"uniform": [1.0]}))
        .mark_rule(strokeDash=[4, 4], color="grey")
        .encode(x="uniform:Q")
    )
    return _to_dict(
        alt.layer(uniform, rules, points).properties(width=WIDTH, height=max(120, 60 * len(trains)))
    )
