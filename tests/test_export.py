"""`ham-artefacts export`: fabricated result tables in, generated MkDocs sources out (no browser, no build)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from helpers import site as fx

from generator import CLASSES
from generator.cli import main
from generator.errors import UserError


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    return fx.export_and_build(tmp_path_factory.mktemp("export"), build=False)


def _inline_specs(page: str) -> list[dict]:
    blocks = re.findall(r'<script type="application/json">(.*?)</script>', page, flags=re.S)
    return [json.loads(b.replace("<\\/", "</")) for b in blocks]


def test_writes_every_page_and_the_banner_flag(exported):
    site = exported / "site"
    for name in fx.GENERATED_PAGES:
        assert (site / name).stat().st_size > 200, name
    info = json.loads((site / "generated" / "site.json").read_text())
    assert info["synthetic"] is True
    assert info["archs"] == list(fx.ARCHS)
    # Hand-written sources are untouched and no staging folder is left behind.
    assert (site / "methods.md").read_text() == (fx.REPO / "site" / "methods.md").read_text()
    assert not list(site.glob(".generated-*"))


def test_overview_shows_our_numbers_beside_the_papers(exported):
    page = (exported / "site" / "index.md").read_text()
    summary = pd.read_csv(exported.parent / "results" / "metrics_summary.csv")
    for arch, baseline in fx.BASELINE_PR_AUC.items():
        assert f"{baseline:.3f}" in page
        row = summary[
            (summary.arch == arch)
            & (summary.train_variant == "train_none")
            & (summary.test_variant == "test_all")
            & (summary.metric == "pr_auc")
            & (summary["class"] == "macro")
        ]
        assert f"{-row.delta_vs_test_none.iloc[0]:.3f}" in page  # drop = sign-flipped delta, not recomputed
    for paper_value in ("0.80", "0.72", "0.030", "0.045", "0.011", "0.218", "0.129", "0.155"):
        assert f'<td class="ham-paper">{paper_value}</td>' in page
    assert "paper" in page and "Katsch" in page


def test_headline_numbers_are_selected_not_computed():
    from training.evaluation.report import headline_numbers

    rows = []
    for train, test, metric, mean, d_test, d_train in [
        ("train_none", "test_none", "pr_auc", 0.7, 0.0, 0.0),
        ("train_none", "test_all", "pr_auc", 0.6, -0.123, 0.0),
        ("train_nv", "test_all", "balanced_accuracy", 0.3, -0.05, -0.456),
        ("train_nv", "test_all", "recall", 0.3, -0.05, -0.999),  # per-class rows are never picked
    ]:
        cls = {"balanced_accuracy": "all", "recall": "nv"}.get(metric, "macro")
        rows.append(
            dict(
                arch="resnet34",
                train_variant=train,
                test_variant=test,
                metric=metric,
                **{"class": cls},
                mean=mean,
                ci_lo=mean - 0.1,
                ci_hi=mean + 0.1,
                n_folds=1,
                delta_vs_test_none=d_test,
                delta_vs_train_none=d_train,
            )
        )
    numbers = headline_numbers(pd.DataFrame(rows), ["resnet34", "maskrcnn_resnet34"])
    resnet = numbers["resnet34"]
    assert (resnet.baseline, resnet.baseline_lo, resnet.baseline_hi) == (
        0.7,
        pytest.approx(0.6),
        pytest.approx(0.8),
    )
    assert resnet.drop_all == pytest.approx(0.123)
    assert resnet.recall_drop_nv == pytest.approx(0.456)
    assert numbers["maskrcnn_resnet34"].baseline is None  # missing: shown as a dash


def test_charts_are_valid_vega_lite_with_the_promised_interactions(exported):
    import vl_convert as vlc

    from training.export.assets import vegalite_version

    charts = exported / "site" / "generated" / "charts"
    names = {p.stem for p in charts.glob("*.json")}
    assert {"overview", "robustness", "bias_heatmap", "bias_shift", "flips", "attention"} <= names
    for path in charts.glob("*.json"):
        vega = vlc.vegalite_to_vega(json.loads(path.read_text()), vl_version=vegalite_version())
        assert vega["marks"], path.name
    spec = json.loads((charts / "robustness.json").read_text())
    params = {p["name"]: p for p in spec["params"]}
    assert params["cls_pick"]["bind"]["options"] == ["macro", *CLASSES]
    assert params["arch_pick"]["bind"] == "legend" and params["arch_pick"]["select"]["fields"] == [
        "Architecture"
    ]
    data = next(iter(spec["datasets"].values()))
    assert sorted({row["pct_artefact"] for row in data}) == [0, 20, 40, 60, 80, 100]
    # The page carries the same spec inline (no fetch: works from file:// too).
    inline = _inline_specs((exported / "site" / "robustness.md").read_text())
    assert spec in inline


def test_significance_rows_are_highlighted_exactly_when_significant(exported):
    page = (exported / "site" / "significance.md").read_text()
    table = pd.read_csv(exported.parent / "results" / "mcnemar.csv")
    assert page.count('<tr class="ham-significant">') == int(table.significant.sum())
    assert "Fixture McNemar definition: n10 = correct clean" in page  # the evaluation's own wording
    assert page.count("<tr") - page.count("<thead><tr") == len(table) + 0 * len(fx.ARCHS)


def test_datasets_page_lists_every_variant_with_its_digests(exported):
    page = (exported / "site" / "datasets.md").read_text()
    manifest = json.loads((exported.parent / "data" / "manifest.json").read_text())
    assert len(manifest["files"]) == 22
    for entry in manifest["files"]:
        assert entry["sha256"] in page and entry["content_digest"] in page and entry["name"] in page
    from training.export.assets import reading_recipe

    recipe = reading_recipe()
    assert 1 <= len(recipe.splitlines()) <= 5 and "h5py.File" in recipe and recipe in page
    for kind in fx.KINDS:
        assert f"generated/examples/{kind}.png" in page
        assert (exported / "site" / "generated" / "examples" / f"{kind}.png").is_file()


def test_small_local_variant_files_travel_with_the_site(tmp_path):
    results = fx.write_results(tmp_path / "results", gradcam=False)
    data = fx.write_data(tmp_path / "data")
    manifest = json.loads((data / "manifest.json").read_text())
    for entry in manifest["files"]:
        (data / entry["name"]).write_bytes(b"not really hdf5")
    project = fx.make_site_project(tmp_path / "project")
    from training.export.site import export_site

    export_site(results, data, project / "site", progress=False)
    page = (project / "site" / "datasets.md").read_text()
    assert "generated/data/test_all.h5" in page
    assert (project / "site" / "generated" / "data" / "test_all.h5").read_bytes() == b"not really hdf5"
    assert "No Grad-CAM results" in (project / "site" / "gallery.md").read_text()


def test_gallery_groups_pairs_by_arch_and_training_variant(exported):
    page = (exported / "site" / "gallery.md").read_text()
    index = pd.read_csv(exported.parent / "results" / "gradcam" / "index.csv")
    for row in index.itertuples():
        assert f"generated/{row.clean_png}" in page and f"generated/{row.artefact_png}" in page
        assert f'data-gallery="{row.arch}-{row.train_variant}"' in page
        assert f"{row.attention_artefact:.3f}" in page
        assert (exported / "site" / "generated" / row.artefact_png).is_file()


def test_downloads_offer_every_table_and_the_citation(exported):
    page = (exported / "site" / "downloads.md").read_text()
    for stem in (
        "metrics",
        "metrics_summary",
        "curves",
        "mcnemar",
        "bias",
        "bias_shift",
        "flips",
        "gradcam/index",
        "gradcam/attention",
    ):
        for suffix in (".csv", ".json"):
            assert f"(generated/tables/{stem}{suffix})" in page
            assert (exported / "site" / "generated" / "tables" / f"{stem}{suffix}").is_file()
    assert "10.5826/dpc.1203a126" in page and "Katsch, Florian" in page and "@software{hamartefacts" in page
    assert "Fixture PR-AUC definition." in page


@pytest.mark.parametrize(
    ("mode", "results_flag", "manifest_flag", "expected"),
    [
        ("auto", False, False, False),
        ("auto", True, False, True),
        ("auto", False, True, True),
        ("yes", False, False, True),
        ("no", True, True, False),
    ],
)
def test_synthetic_banner_modes(mode, results_flag, manifest_flag, expected):
    from training.export.site import _is_synthetic

    assert _is_synthetic(mode, {"synthetic": results_flag}, {"synthetic": manifest_flag}) is expected


def test_missing_column_names_the_file(tmp_path):
    results = fx.write_results(tmp_path / "results", gradcam=False)
    data = fx.write_data(tmp_path / "data")
    curves = pd.read_csv(results / "curves.csv").drop(columns=["ci_hi"])
    curves.to_csv(results / "curves.csv", index=False)
    project = fx.make_site_project(tmp_path / "project")
    from training.export.site import export_site

    with pytest.raises(UserError, match=r"curves\.csv: missing column\(s\) ci_hi"):
        export_site(results, data, project / "site", progress=False)
    fx.write_results(results, gradcam=False)  # whole again
    (results / "bias.csv").unlink()
    with pytest.raises(UserError, match=r"bias\.csv: required result table not found"):
        export_site(results, data, project / "site", progress=False)


def test_failed_export_keeps_the_previous_site(tmp_path, monkeypatch):
    project = fx.export_and_build(tmp_path, build=False)
    site = project / "site"
    before = {p.relative_to(site): p.read_bytes() for p in site.rglob("*") if p.is_file()}
    index = pd.read_csv(tmp_path / "results" / "gradcam" / "index.csv")
    index.loc[0, "artefact_png"] = "../../outside.png"
    index.to_csv(tmp_path / "results" / "gradcam" / "index.csv", index=False)
    from training.export.site import export_site

    with pytest.raises(UserError, match="leaves the results folder"):
        export_site(tmp_path / "results", tmp_path / "data", site, progress=False)
    assert {p.relative_to(site): p.read_bytes() for p in site.rglob("*") if p.is_file()} == before

    # A failure half-way through (after the staging folder has files) also leaves no trace.
    index.loc[0, "artefact_png"] = index.loc[1, "artefact_png"]
    index.to_csv(tmp_path / "results" / "gradcam" / "index.csv", index=False)
    from training.export import charts

    def broken(*args, **kwargs):
        raise RuntimeError("chart failed")

    monkeypatch.setattr(charts, "bias_shift_chart", broken)
    with pytest.raises(RuntimeError, match="chart failed"):
        export_site(tmp_path / "results", tmp_path / "data", site, progress=False)
    assert {p.relative_to(site): p.read_bytes() for p in site.rglob("*") if p.is_file()} == before
    assert not list(site.glob(".generated-*"))


def test_cli_reports_bad_input_on_one_line(tmp_path, capsys):
    code = main(
        ["export", "--results", str(tmp_path / "nope"), "--data", str(tmp_path), "--site-dir", str(tmp_path)]
    )
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "results.json" in err


def test_vega_bundle_matches_altairs_vega_lite():
    import altair as alt

    bundle = fx.vega_bundle().read_text(encoding="utf-8")
    assert f'"{alt.SCHEMA_VERSION.lstrip("v")}"' in bundle  # Vega-Lite's own version string
    assert "window.vegaEmbed=" in bundle and "window.vega=" in bundle
    assert "cdn.jsdelivr" not in bundle.split("\n", 1)[0]


def test_gallery_shows_at_most_a_dozen_pairs_per_group():
    from training.export.pages import GALLERY_PER_GROUP, gallery_page

    n = GALLERY_PER_GROUP + 3
    index = pd.DataFrame(
        {
            "arch": ["resnet34"] * n,
            "train_variant": ["train_none"] * n,
            "image_id": [f"ISIC_{i:07d}" for i in range(n)],
            "dx": ["nv"] * n,
            "kind": ["bubble"] * n,
            "clean_png": [f"gradcam/r/t/{i}_clean.png" for i in range(n)],
            "artefact_png": [f"gradcam/r/t/{i}_artefact.png" for i in range(n)],
            "attention_clean": [0.1] * n,
            "attention_artefact": [float("nan")] + [0.5] * (n - 1),
        }
    )
    page = gallery_page(index, ["resnet34"], lambda rel: f"generated/{rel}", None)
    assert page.count('<figure class="ham-pair">') == GALLERY_PER_GROUP
    assert f"The first {GALLERY_PER_GROUP} of {n} images" in page
    assert "with artefact <strong>—</strong>" in page  # a missing attention value is a dash, not "nan"


def test_the_reading_recipe_on_the_datasets_page_runs(tmp_path, monkeypatch):
    import numpy as np

    from generator.variants.store import Row, encode_mask, encode_png, write_variant
    from training.export.assets import reading_recipe

    image = np.random.default_rng(0).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    mask = encode_mask(np.zeros((6, 8), np.uint8))
    row = Row("ISIC_0000001", "HAM_0000001", CLASSES.index("mel"), encode_png(image), mask, mask)
    write_variant(
        tmp_path / "test_all.h5",
        [row],
        1,
        {
            "variant": {"name": "test_all"},
            "split": "test",
            "seed": 0,
            "source_fingerprint": "x",
            "templates": "builtin",
        },
    )
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(reading_recipe(), scope)  # exactly the text the site shows
    assert np.array_equal(scope["image"], image)
    assert scope["label"] == "mel"
    scope["f"].close()


# ---- partial grids: the tiny demo profile trains train_none (maybe train_nv), one fold ----


def _chart_ids(page: str) -> list[str]:
    return re.findall(r'<div class="ham-chart" id="([^"]+)"', page)


@pytest.fixture(scope="module")
def only_train_none(tmp_path_factory) -> Path:
    """train_none only, Mask R-CNN not trained, no Grad-CAM: like a demo run cut short."""
    root = tmp_path_factory.mktemp("only-none")
    project = fx.make_site_project(root / "project")
    fx.write_results(root / "results", train_variants=("train_none",), archs=fx.ARCHS[:2], gradcam=False)
    fx.write_data(root / "data")
    from training.export.site import build_site, export_site

    export_site(
        root / "results", root / "data", project / "site", citation=fx.REPO / "CITATION.cff", progress=False
    )
    build_site(project / "mkdocs.yml")  # strict: the "not available" notes keep every link and anchor valid
    return project


def test_only_train_none_says_what_is_missing_instead_of_crashing(only_train_none):
    site = only_train_none / "site"
    bias = (site / "bias.md").read_text()
    assert not _chart_ids(bias)  # no empty chart container for the browser to fail on
    assert bias.count("No class-biased training variants") == 2 and "paper profile" in bias
    charts = {p.stem for p in (site / "generated" / "charts").glob("*.json")}
    assert charts == {"overview", "robustness", "flips"}
    index = (site / "index.md").read_text()
    assert "Not trained in this run: Mask R-CNN." in index
    assert "1 cross-validation fold instead of the paper's 5" in index
    recall_row = index.split("Recall drop, nv-biased training")[1].split("</tr>")[0]
    assert recall_row.count('<td class="ham-ours">n/a</td>') == 2  # ResNet-34 and Faster R-CNN columns
    assert "train_nv was not trained in this run" in index
    assert "No Grad-CAM results" in (site / "gallery.md").read_text()
    assert (only_train_none / "build" / "site" / "bias.html").is_file()


@pytest.fixture(scope="module")
def none_and_nv(tmp_path_factory) -> Path:
    """train_none + train_nv, as the tiny profile trains them, with NaN holes in several tables."""
    root = tmp_path_factory.mktemp("none-nv")
    results = fx.write_results(root / "results", train_variants=("train_none", "train_nv"))
    nan = float("nan")
    for stem, column, where in (
        ("curves", "mean", lambda f: f["pct_artefact"] == 40),
        ("bias", "shift", lambda f: f["class"] == "df"),
        ("mcnemar", "n01", lambda f: f["test_variant"] == "test_bcc"),
        ("gradcam/attention", "attention_mean", lambda f: f["arch"] == "resnet34"),
    ):
        frame = pd.read_csv(results / f"{stem}.csv")
        frame.loc[where(frame), column] = nan
        frame.to_csv(results / f"{stem}.csv", index=False)
    index = pd.read_csv(results / "gradcam" / "index.csv")
    index.loc[0, "attention_clean"] = nan
    index.to_csv(results / "gradcam" / "index.csv", index=False)
    fx.write_data(root / "data")
    project = fx.make_site_project(root / "project")
    from training.export.site import build_site, export_site

    export_site(results, root / "data", project / "site", citation=fx.REPO / "CITATION.cff", progress=False)
    build_site(project / "mkdocs.yml")
    return project


def test_train_nv_fills_the_bias_page_and_the_headline(none_and_nv):
    import vl_convert as vlc

    from training.export.assets import vegalite_version

    site = none_and_nv / "site"
    bias = (site / "bias.md").read_text()
    assert _chart_ids(bias) == ["chart-bias_heatmap", "chart-bias_shift"]
    assert (
        "Not trained: `train_akiec`, `train_bcc`, `train_bkl`, `train_df`, `train_mel`, `train_vasc`" in bias
    )
    heatmap = _inline_specs(bias)[0]
    rows = next(iter(heatmap["datasets"].values()))
    assert {r["train_variant"] for r in rows} == {"train_nv"}
    assert all(r["shift"] is not None for r in rows)  # NaN shifts are left out, not drawn as 0 or "null"
    for path in (site / "generated" / "charts").glob("*.json"):
        text = path.read_text()
        assert "NaN" not in text, path.name
        assert vlc.vegalite_to_vega(json.loads(text), vl_version=vegalite_version())["marks"], path.name

    # The headline's nv row is train_nv's own delta (sign-flipped), selected not recomputed.
    summary = pd.read_csv(none_and_nv.parent / "results" / "metrics_summary.csv")
    index = (site / "index.md").read_text()
    recall_row = index.split("Recall drop, nv-biased training")[1].split("</tr>")[0]
    assert "n/a" not in recall_row
    for arch in fx.ARCHS:
        row = summary[
            (summary.arch == arch)
            & (summary.train_variant == "train_nv")
            & (summary.test_variant == "test_all")
            & (summary.metric == "balanced_accuracy")
        ]
        assert f'<td class="ham-ours">{-row.delta_vs_train_none.iloc[0]:.3f}</td>' in recall_row
    assert "Only 1 of 7 class-biased training variants were trained (`train_nv`)" in index
    assert "Not trained in this run" not in index  # every architecture has results
    significance = (site / "significance.md").read_text()
    assert '<td data-sort="">—</td>' in significance  # the NaN n01 is a dash, sorted as empty


def test_empty_tables_give_notes_and_no_chart_containers(tmp_path):
    """Header-only tables (nothing evaluated yet, Grad-CAM not run): every page exported, no chart at all."""
    from training.export.results import SCHEMAS

    results = fx.write_results(tmp_path / "results", train_variants=("train_none",))
    for stem in ("curves", "mcnemar", "flips", "bias", "bias_shift", "gradcam/index", "gradcam/attention"):
        pd.DataFrame(columns=list(SCHEMAS[stem])).to_csv(results / f"{stem}.csv", index=False)
    data = fx.write_data(tmp_path / "data")
    project = fx.make_site_project(tmp_path / "project")
    from training.export.site import export_site

    export_site(results, data, project / "site", progress=False)
    site = project / "site"
    assert not list((site / "generated" / "charts").glob("*.json"))
    for name in fx.GENERATED_PAGES:
        assert not _chart_ids((site / name).read_text()), name
    assert "No robustness curves" in (site / "index.md").read_text()
    robustness = (site / "robustness.md").read_text()
    assert "No robustness curves" in robustness and "No prediction flips" in robustness
    assert "No McNemar tests" in (site / "significance.md").read_text()
    assert "No Grad-CAM results" in (site / "gallery.md").read_text()


# ---- controls first on the overview, instrument check on the methods page ----


def test_overview_shows_the_controls_first_with_their_numbers_and_verdicts(exported):
    page = (exported / "site" / "index.md").read_text()
    assert (
        page.index("## Controls")
        < page.index("## Headline numbers")
        < page.index("## Robustness at a glance")
    )
    controls = pd.read_csv(exported.parent / "results" / "controls.csv")
    section = page.split("## Controls")[1].split("## Headline numbers")[0]
    sentence = section.strip().split("\n")[0]
    shift, did, p = fx.POSITIVE_CONTROL["resnet34"]
    positive = controls[(controls.arch == "resnet34") & (controls.control == "positive")].iloc[0]
    # The sentence's numbers are the controls table's (ResNet-34 first), formatted, not recomputed.
    assert f"nv-biased ResNet-34 calls nv by {shift:+.1f} pp" in sentence
    assert f"train_none {did:+.1f} pp, 95% CI [{positive.did_lo:+.1f}, {positive.did_hi:+.1f}]" in sentence
    assert f"exact McNemar p = {p:.2e}" in sentence
    assert f"train_none's own share moved {fx.NEGATIVE_SHIFT['resnet34']:+.1f} pp" in sentence
    assert "positive control **pass**" in sentence and "negative control **pass**" in sentence
    assert "0.80/0.72/0.72" in sentence and "0.22/0.13/0.16" in sentence  # the paper, beside ours
    assert "**synthetic data**" in sentence
    # Every control of every architecture with its verdict: Faster R-CNN's positive control fails
    # (DiD 6.25 pp) and Mask R-CNN's negative control fails (shift 6.25 pp).
    assert section.count('<td class="ham-pass">') == int((controls.status == "pass").sum())
    assert section.count('<td class="ham-fail">') == int((controls.status == "fail").sum()) == 2
    assert section.count("<tr><td>") == len(controls)


def test_controls_sentence_for_ham10000_and_without_train_nv():
    from training.evaluation.report import controls_sentence

    rows = pd.DataFrame(
        [
            dict(
                control="positive",
                arch="resnet34",
                train_variant="train_nv",
                test_variant="test_all",
                reference_class="nv",
                n_runs=0,
                status="not available",
            ),
            dict(
                control="negative",
                arch="resnet34",
                train_variant="train_none",
                test_variant="test_all",
                reference_class="nv",
                n_runs=3,
                shift_pp=0.4,
                status="pass",
            ),
        ]
    )
    text = controls_sentence(rows, ["resnet34"], synthetic=False)
    assert "positive control is not available for ResNet-34" in text
    assert (
        "train_none's own share moved +0.4 pp" in text and "from HAM10000" in text and "synthetic" not in text
    )


def test_results_without_controls_table_say_to_rerun_evaluate(tmp_path):
    results = fx.write_results(
        tmp_path / "results", train_variants=("train_none",), gradcam=False, controls=False
    )
    data = fx.write_data(tmp_path / "data")
    project = fx.make_site_project(tmp_path / "project")
    from training.export.site import export_site

    export_site(results, data, project / "site", progress=False)
    page = (project / "site" / "index.md").read_text()
    assert page.index("## Controls") < page.index("## Headline numbers")
    assert "`controls.csv` is missing" in page and "0.80/0.72/0.72" in page


def test_export_runs_the_instrument_check_for_the_methods_page(exported):
    from training.export.mkdocs_hooks import INSTRUMENT_MARKER, INSTRUMENT_PART

    generated = exported / "site" / "generated"
    part = (generated / INSTRUMENT_PART).read_text()
    check = pd.read_csv(generated / "tables" / "instrument_check.csv")
    assert list(check["ok"]) == [True, True]
    assert "**Passed**" in part and part.count('<td class="ham-pass">') == 2
    assert "planted_cheat / train_nv" in part and "planted_honest / train_nv" in part
    assert json.loads((generated / "site.json").read_text())["instrument_check_ok"] is True
    assert INSTRUMENT_MARKER in (exported / "site" / "methods.md").read_text()
    assert "generated/tables/instrument_check.csv" in (exported / "site" / "downloads.md").read_text()


def test_bias_page_shows_each_model_against_itself(exported):
    page = (exported / "site" / "bias.md").read_text()
    summary = pd.read_csv(exported.parent / "results" / "effects_summary.csv")
    section = page.split("## Within-model shift, clean against artefact")[1].split("### By artefact kind")[0]
    rows = summary[summary.test_variant == "test_all"]
    assert section.count("<tr><td>") == len(rows) > 0
    nv = rows[(rows.arch == "resnet34") & (rows.train_variant == "train_nv")].iloc[0]
    assert f'<td data-sort="{float(nv.shift_mean)!r}">{nv.shift_mean:+.1f} pp' in section
    assert "1 run: bootstrap over images" in section


def test_bias_page_without_effects_says_to_rerun_evaluate(tmp_path):
    from training.export.pages import bias_page, within_model_table

    page = bias_page(
        None,
        None,
        ["train_none"],
        within_model_table(None, ["resnet34"]),
        by_kind=within_model_table(None, ["resnet34"], stem="effects_by_kind_summary"),
    )
    assert "No within-model effects" in page and "re-run `ham-artefacts evaluate`" in page
    assert "`effects_by_kind_summary.csv`" in page.split("### By artefact kind")[1]


def test_bias_page_splits_the_within_model_shift_by_artefact_kind(exported):
    from helpers.site import KIND_SHIFT, KINDS

    page = (exported / "site" / "bias.md").read_text()
    section = page.split("### By artefact kind")[1].split("## ")[0]
    summary = pd.read_csv(exported.parent / "results" / "effects_by_kind_summary.csv")
    assert section.count("<tr><td>") == len(summary) > 0 and "<th" in section and "artefact kind" in section
    nv = summary[(summary.arch == "resnet34") & (summary.train_variant == "train_nv")]
    assert list(nv.kind) == list(KINDS)
    for row in nv.itertuples():
        cell = f'<td>{row.kind}</td><td>nv</td><td>1</td><td data-sort="{float(row.shift_mean)!r}">'
        assert cell + f"{row.shift_mean:+.1f} pp" in section
    assert (
        nv.set_index("kind").loc["marking_spot", "shift_mean"]
        - nv.set_index("kind").loc["bubble", "shift_mean"]
        == KIND_SHIFT["marking_spot"] - KIND_SHIFT["bubble"]
    )


def test_a_blind_measure_shows_a_failed_instrument_check(tmp_path, monkeypatch, caplog):
    from training.evaluation import effects
    from training.export.mkdocs_hooks import INSTRUMENT_PART
    from training.export.site import export_site

    real = effects.effect_counts
    monkeypatch.setattr(effects, "effect_counts", lambda ind: real({**ind, "ref_artefact": ind["ref_clean"]}))
    results = fx.write_results(tmp_path / "results", train_variants=("train_none",), gradcam=False)
    data = fx.write_data(tmp_path / "data")
    project = fx.make_site_project(tmp_path / "project")
    info = export_site(results, data, project / "site", progress=False)
    assert "instrument check failed" in caplog.text
    part = (project / "site" / "generated" / INSTRUMENT_PART).read_text()
    assert "**Failed**" in part and '<td class="ham-fail"><strong>FAIL</strong>' in part
    assert (
        json.loads((project / "site" / "generated" / "site.json").read_text())["instrument_check_ok"] is False
    )
    assert info["pages"]


def test_architectures_that_did_not_learn_are_labelled_smoke_runs():
    from training.evaluation.report import LEARNED_PR_AUC, smoke_archs
    from training.export.pages import headline_table, smoke_admonition

    summary = fx.baseline_summary
    archs = ["resnet34", "fasterrcnn_resnet34", "maskrcnn_resnet34"]
    mixed = summary(
        {"resnet34": 0.71, "fasterrcnn_resnet34": LEARNED_PR_AUC - 0.01, "maskrcnn_resnet34": 0.2}
    )
    assert set(smoke_archs(mixed, archs)) == {"fasterrcnn_resnet34", "maskrcnn_resnet34"}
    text = smoke_admonition(mixed, archs)
    assert (
        text.startswith('!!! warning "Smoke run') and "Faster R-CNN (0.490)" in text and "ResNet" not in text
    )
    # just below the bar must not print as the bar itself
    assert "(0.499)" in smoke_admonition(summary({"resnet34": 0.499}), ["resnet34"])
    assert headline_table(mixed, archs).count("smoke run") == 2
    learnt = summary({arch: LEARNED_PR_AUC for arch in archs})  # the bar itself counts as learnt
    assert smoke_archs(learnt, archs) == {} and smoke_admonition(learnt, archs) == ""


# --- the Remedy section (issue 14) ------------------------------------------------------------------------


def _remedy_tables(rng, remedy_interval: tuple[float, float], tests=("test_all", "test_20", "test_mel")):
    """effects_summary and remedy_summary rows of ResNet-34 train_nv / train_nv+aug with known numbers."""
    summary, remedy = [], []
    lo, hi = remedy_interval
    for test in tests:
        for train in ("train_none", "train_nv", "train_nv+aug"):
            shift, did = float(rng.uniform(-40, 40)), float(rng.uniform(-40, 40))
            summary.append(
                dict(
                    arch="resnet34",
                    train_variant=train,
                    test_variant=test,
                    reference_class="nv",
                    n_runs=2,
                    folds="0;1",
                    interval="t across 2 runs",
                    shift_mean=shift,
                    shift_lo=shift - 3,
                    shift_hi=shift + 3,
                    did_mean=did,
                    did_lo=did - 4,
                    did_hi=did + 4,
                    p_mcnemar_ref_max=0.2,
                )
            )
        remedy.append(
            dict(
                arch="resnet34",
                train_variant="train_nv+aug",
                plain_variant="train_nv",
                test_variant=test,
                reference_class="nv",
                n_runs=2,
                folds="0;1",
                interval="t across 2 runs",
                shift_mean=summary[-1]["shift_mean"],
                plain_shift_mean=summary[-2]["shift_mean"],
                remedy_mean=(lo + hi) / 2,
                remedy_lo=lo,
                remedy_hi=hi,
                remedy_runs="",
            )
        )
    return pd.DataFrame(summary), pd.DataFrame(remedy)


@pytest.mark.parametrize("seed", range(6))
def test_remedy_section_states_what_the_numbers_show(seed):
    import numpy as np

    from training.evaluation.report import REMEDY_CLAIM
    from training.export.pages import remedy_section

    rng = np.random.default_rng(seed)
    lo = float(rng.uniform(-30, 20))
    hi = lo + float(rng.uniform(1, 25))
    summary, remedy = _remedy_tables(rng, (lo, hi))
    page = remedy_section(summary, remedy, ["resnet34"])
    assert "## Remedy: artefacts as a training augmentation" in page and REMEDY_CLAIM in page
    assert "Katsch, Rinner & Tschandl (2022)" in page
    verdict = "lies below zero" if hi < 0 else "lies above zero" if lo > 0 else "includes zero"
    sentence = page.split("### ResNet-34: `train_nv+aug`")[1].split("<div")[0]
    assert (
        verdict in sentence
        and sum(v in sentence for v in ("lies below zero:", "lies above zero:", "includes zero:")) == 1
    )
    nv, aug = (
        summary[(summary.train_variant == t) & (summary.test_variant == "test_all")].iloc[0]
        for t in ("train_nv", "train_nv+aug")
    )
    assert f"by {aug.shift_mean:+.1f} pp [{aug.shift_lo:+.1f}, {aug.shift_hi:+.1f}]" in sentence
    assert f"`train_nv` by {nv.shift_mean:+.1f} pp" in sentence
    assert f"{(lo + hi) / 2:+.1f} pp [{lo:+.1f}, {hi:+.1f}]" in sentence
    n_below, n_above = int(hi < 0) * 3, int(lo > 0) * 3
    assert (
        f"below zero on {n_below}, above zero on {n_above} and includes zero (or is missing) on "
        f"{3 - n_below - n_above}" in sentence
    )
    # one table row per test variant, in the registry's order, with the DiD of both conditions
    table = page.split("<tbody>")[1]
    assert [m for m in re.findall(r"<tr><td>(test_\w+)</td>", table)] == ["test_all", "test_mel", "test_20"]
    assert f"{aug.did_mean:+.1f} pp" in table and f"{nv.did_mean:+.1f} pp" in table


def test_remedy_section_says_plainly_when_the_augmented_runs_are_absent(exported):
    from training.evaluation.report import REMEDY_CLAIM, remedy_conditions
    from training.export.pages import remedy_section

    assert remedy_conditions() == ["train_none+aug", "train_nv+aug"]  # from the showcase grid
    for name in ("robustness.md", "bias.md"):
        page = (exported / "site" / name).read_text()
        section = page.split("## Remedy: artefacts as a training augmentation")[1]
        assert REMEDY_CLAIM in section and "Not tested in this run" in section
        assert "`train_none+aug`, `train_nv+aug`" in section and "<table>" not in section
    summary, remedy = _remedy_tables(__import__("numpy").random.default_rng(0), (-5.0, 5.0))
    unpaired = remedy_section(summary, remedy.iloc[0:0], ["resnet34"])
    assert "`train_nv` of the same folds is missing, so the two cannot be paired" in unpaired


def test_remedy_section_reaches_the_site_from_the_evaluation(tmp_path):
    """Augmented runs -> evaluate -> export: both pages show the measured remedy rows."""
    from helpers.evaluation import make_runs

    from training.evaluation.evaluate import evaluate
    from training.export.site import export_site

    runs = make_runs(
        tmp_path / "runs",
        archs=("resnet34",),
        folds=(0,),
        n_images=70,
        train_variants=("train_none", "train_nv", "train_nv+aug", "train_none+aug"),
    )
    evaluate(runs, tmp_path / "results", n_boot=20, progress=False)
    project = fx.make_site_project(tmp_path / "project")
    export_site(tmp_path / "results", fx.write_data(tmp_path / "data"), project / "site", progress=False)
    remedy = pd.read_csv(tmp_path / "results" / "remedy_summary.csv")
    row = remedy[(remedy.train_variant == "train_nv+aug") & (remedy.test_variant == "test_all")].iloc[0]
    for name in ("robustness.md", "bias.md"):
        section = (
            (project / "site" / name).read_text().split("## Remedy: artefacts as a training augmentation")[1]
        )
        assert "Not tested in this run" not in section
        assert "### ResNet-34: `train_none+aug`" in section and "### ResNet-34: `train_nv+aug`" in section
        assert f"{row.remedy_mean:+.1f} pp [{row.remedy_lo:+.1f}, {row.remedy_hi:+.1f}]" in section


def test_robustness_drop_table_gives_each_runs_drop_and_a_t_interval_across_runs():
    import numpy as np
    from scipy import stats

    from training.evaluation.aggregate import drops_table
    from training.export.pages import robustness_drop_table

    rows = []
    clean = {
        ("train_none", 0): 0.80,
        ("train_none", 1): 0.84,
        ("train_none", 2): 0.74,
        ("train_all", 0): 0.79,
    }
    drop = {
        ("train_none", 0): -0.07,
        ("train_none", 1): -0.05,
        ("train_none", 2): -0.07,
        ("train_all", 0): -0.02,
    }
    for (variant, fold), value in clean.items():
        for test, v in (("test_none", value), ("test_all", value + drop[(variant, fold)]), ("test_20", 0.1)):
            rows.append(
                dict(
                    arch="resnet34",
                    train_variant=variant,
                    fold=fold,
                    test_variant=test,
                    metric="pr_auc",
                    value=v,
                    boot_lo=v,
                    boot_hi=v,
                    **{"class": "macro"},
                )
            )
        rows.append(
            dict(
                arch="resnet34",
                train_variant=variant,
                fold=fold,
                test_variant="test_all",
                metric="recall",
                value=0.0,
                boot_lo=0.0,
                boot_hi=0.0,
                **{"class": "macro"},
            )
        )
    html = robustness_drop_table(drops_table(pd.DataFrame(rows)), ["resnet34"])
    values = np.array([-0.07, -0.05, -0.07])
    half = stats.t.ppf(0.975, 2) * values.std(ddof=1) / np.sqrt(3)
    none_row = html.split("<td>train_none</td>")[1].split("</tr>")[0]
    assert f"{values.mean():+.3f}" in none_row
    assert f"[{values.mean() - half:+.3f}, {values.mean() + half:+.3f}]" in none_row
    assert "-0.070, -0.050, -0.070" in none_row and "<td>3</td>" in none_row
    all_row = html.split("<td>train_all</td>")[1].split("</tr>")[0]
    assert "-0.020" in all_row and "—" in all_row  # one run: no interval
    assert html.index("<td>train_none</td>") < html.index("<td>train_all</td>")  # the evaluation's order
    assert "No drops" in robustness_drop_table(None, ["resnet34"])
    assert "No drop to show" in robustness_drop_table(
        drops_table(pd.DataFrame(rows)), ["resnet34"], "test_80"
    )
