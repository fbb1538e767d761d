"""Evaluation: metrics on hand-computed cases, bootstrap, McNemar + Holm, aggregation, flips, bias, and
the `evaluate` command end to end on a fabricated runs folder."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from helpers.evaluation import ARCHS, TEST_VARIANTS, TRAIN_VARIANTS, make_runs
from sklearn.metrics import average_precision_score, balanced_accuracy_score

from generator import CLASSES
from generator.variants import ALL_TEST, CLEAN_TEST, CLEAN_TRAIN
from training.evaluation import aggregate, bias, flips, significance
from training.evaluation.bootstrap import bootstrap_metrics, resample_counts
from training.evaluation.metrics import average_precision, point_metrics
from training.evaluation.predictions import RunKey


def _scores(n, column=None, values=None):
    scores = np.full((n, len(CLASSES)), 0.1)
    if column is not None:
        scores[:, column] = values
    return scores


# --- metrics ------------------------------------------------------------------------------------


def test_pr_auc_with_tied_scores_matches_hand_computation():
    # Class akiec: scores 0.9 (pos), 0.9 (neg) tie -> one threshold: P = 1/2, R = 1/2; then 0.5 (pos):
    # P = 2/3, R = 1. AP = 1/2 * 1/2 + 1/2 * 2/3 = 7/12.
    y_true = np.array([0, 1, 0, 1])
    scores = _scores(4, 0, [0.9, 0.9, 0.5, 0.1])
    values = point_metrics(y_true, scores, np.zeros(4, int))
    assert values[("pr_auc", "akiec")] == pytest.approx(7 / 12)
    assert average_precision_score(y_true == 0, scores[:, 0]) == pytest.approx(7 / 12)
    # bcc's column is all ties: one threshold at recall 1 with precision = prevalence.
    assert values[("pr_auc", "bcc")] == pytest.approx(0.5)
    for code in CLASSES[2:]:  # absent classes: AP undefined, not 0
        assert math.isnan(values[("pr_auc", code)])
    assert values[("pr_auc", "macro")] == pytest.approx((7 / 12 + 0.5) / 2)


def test_weighted_average_precision_equals_sklearn_with_sample_weight():
    rng = np.random.default_rng(3)
    for _ in range(100):
        n = int(rng.integers(2, 30))
        positive = rng.integers(0, 2, n)
        score = rng.integers(0, 4, n) / 3  # many ties
        weight = rng.integers(0, 4, n).astype(float)
        if (positive * weight).sum() == 0:
            assert math.isnan(average_precision(positive, score, weight)[0])
            continue
        expected = average_precision_score(positive, score, sample_weight=weight)
        assert average_precision(positive, score, weight)[0] == pytest.approx(expected, abs=1e-12)


def test_confusion_metrics_with_absent_classes():
    # truth akiec, akiec, bcc, bcc; predicted akiec, bcc, bcc, bkl. mel..vasc absent and never predicted.
    v = point_metrics(np.array([0, 0, 1, 1]), _scores(4), np.array([0, 1, 1, 2]))
    assert (v[("precision", "akiec")], v[("recall", "akiec")], v[("fpr", "akiec")], v[("fnr", "akiec")]) == (
        1.0,
        0.5,
        0.0,
        0.5,
    )
    assert (v[("precision", "bcc")], v[("recall", "bcc")], v[("fpr", "bcc")], v[("fnr", "bcc")]) == (
        0.5,
        0.5,
        0.5,
        0.5,
    )
    # bkl: absent from the truth but predicted once -> recall/FNR undefined, FPR = 1/4, precision 0.
    assert math.isnan(v[("recall", "bkl")]) and math.isnan(v[("fnr", "bkl")])
    assert v[("fpr", "bkl")] == 0.25 and v[("precision", "bkl")] == 0.0
    # df: absent and never predicted -> precision undefined too, FPR 0.
    assert math.isnan(v[("precision", "df")]) and v[("fpr", "df")] == 0.0
    assert v[("accuracy", "all")] == 0.5
    assert v[("balanced_accuracy", "all")] == 0.5


def test_fpr_undefined_when_every_image_is_the_class():
    v = point_metrics(np.array([5, 5, 5]), _scores(3), np.array([5, 5, 0]))
    assert math.isnan(v[("fpr", "nv")])
    assert v[("fnr", "nv")] == pytest.approx(1 / 3)
    assert v[("fpr", "akiec")] == pytest.approx(1 / 3)


def test_no_detection_counts_as_wrong_and_predicts_no_class():
    v = point_metrics(np.array([0, 1]), _scores(2), np.array([-1, 1]))
    assert v[("accuracy", "all")] == 0.5
    assert v[("recall", "akiec")] == 0.0 and v[("fnr", "akiec")] == 1.0
    assert v[("fpr", "akiec")] == 0.0 and math.isnan(v[("precision", "akiec")])


def test_balanced_accuracy_matches_sklearn():
    rng = np.random.default_rng(5)
    y_true, y_pred = rng.integers(0, 7, 200), rng.integers(0, 7, 200)
    v = point_metrics(y_true, _scores(200), y_pred)
    assert v[("balanced_accuracy", "all")] == pytest.approx(balanced_accuracy_score(y_true, y_pred))


# --- bootstrap ----------------------------------------------------------------------------------


def _toy(n=120, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 7
    scores = rng.random((n, 7))
    scores[np.arange(n), y] += 0.4
    return y, scores, scores.argmax(axis=1)


def test_bootstrap_reproducible_with_seed_and_differs_with_another():
    y, scores, pred = _toy()
    first = bootstrap_metrics(y, scores, pred, n_boot=300, seed=11)
    again = bootstrap_metrics(y, scores, pred, n_boot=300, seed=11)
    other = bootstrap_metrics(y, scores, pred, n_boot=300, seed=12)
    assert first == again
    assert first != other
    assert first[("pr_auc", "macro")][0] == other[("pr_auc", "macro")][0]  # point estimate unchanged


def test_bootstrap_interval_brackets_the_estimate_and_narrows_with_more_images():
    widths = []
    for n in (70, 700):
        y, scores, pred = _toy(n)
        value, lo, hi = bootstrap_metrics(y, scores, pred, n_boot=500, seed=0)[("accuracy", "all")]
        assert lo <= value <= hi
        widths.append(hi - lo)
    assert widths[1] < widths[0] / 2  # ~ 1/sqrt(n): 700 images give a CI ~3x narrower


def test_resample_counts_draw_n_images_per_resample():
    counts = resample_counts(50, 40, np.random.default_rng(0))
    assert counts.shape == (40, 50) and (counts.sum(axis=1) == 50).all()
    assert counts.mean() == pytest.approx(1.0)


# --- McNemar and Holm ---------------------------------------------------------------------------


def test_mcnemar_edwards_statistic_and_exact_p_by_hand():
    statistic, p_value, p_exact = significance.mcnemar_test(10, 12, 3, 20)
    assert statistic == pytest.approx((abs(12 - 3) - 1) ** 2 / (12 + 3))  # 64/15
    assert p_value == pytest.approx(math.erfc(math.sqrt(64 / 15 / 2)))  # chi-square 1 df survival
    # Exact two-sided binomial: 2 * P(X <= 3), X ~ Bin(15, 1/2) = 2 * (1 + 15 + 105 + 455) / 2^15.
    assert p_exact == pytest.approx(2 * 576 / 2**15)


def test_mcnemar_no_exact_p_from_25_discordant_pairs_and_no_discordance_is_p_one():
    statistic, p_value, p_exact = significance.mcnemar_test(0, 20, 5, 0)
    assert statistic == pytest.approx(14**2 / 25) and math.isnan(p_exact)
    assert significance.mcnemar_test(7, 0, 0, 9) == (0.0, 1.0, 1.0)


def test_contingency_counts_paired_outcomes():
    clean = np.array([1, 1, 1, 0, 0, 1], bool)
    variant = np.array([1, 0, 0, 0, 1, 1], bool)
    assert significance.contingency(clean, variant) == (1, 1, 2, 2)


def test_holm_by_hand():
    # Sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> running max.
    adjusted = significance.holm([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])


# --- aggregation, flips, bias -------------------------------------------------------------------


def test_t_interval_by_hand():
    mean, lo, hi = aggregate.t_interval([1.0, 2.0, 3.0, float("nan")])
    half = 4.302652729911275 / math.sqrt(3)  # t(0.975, 2) * sd(=1) / sqrt(3)
    assert (mean, lo, hi) == pytest.approx((2.0, 2.0 - half, 2.0 + half))


def _metric_rows(rows):
    return pd.DataFrame(
        rows,
        columns=[
            "arch",
            "train_variant",
            "fold",
            "test_variant",
            "metric",
            "class",
            "value",
            "boot_lo",
            "boot_hi",
        ],
    )


def test_summary_uses_t_across_folds_bootstrap_for_one_fold_and_deltas():
    rows = []
    for fold, value in enumerate((0.6, 0.7, 0.8)):
        rows.append(("r", "train_none", fold, "test_none", "accuracy", "all", value, 0, 1))
        rows.append(("r", "train_none", fold, "test_all", "accuracy", "all", value - 0.1, 0, 1))
    rows.append(("r", "train_bcc", 0, "test_all", "accuracy", "all", 0.4, 0.3, 0.5))
    summary = aggregate.summarise(_metric_rows(rows)).set_index(["train_variant", "test_variant"])
    clean = summary.loc[("train_none", "test_none")]
    mean, lo, hi = aggregate.t_interval([0.6, 0.7, 0.8])
    assert (clean["mean"], clean["ci_lo"], clean["ci_hi"], clean["n_folds"]) == pytest.approx(
        (mean, lo, hi, 3)
    )
    assert summary.loc[("train_none", "test_all"), "delta_vs_test_none"] == pytest.approx(-0.1)
    biased = summary.loc[("train_bcc", "test_all")]
    assert (biased["ci_lo"], biased["ci_hi"], biased["n_folds"]) == (0.3, 0.5, 1)
    assert biased["delta_vs_train_none"] == pytest.approx(0.4 - 0.6)
    assert math.isnan(biased["delta_vs_test_none"])  # no train_bcc model on test_none here


def _table(ids, y_true, y_pred, has=None, kinds=None):
    n = len(ids)
    frame = pd.DataFrame(
        {
            "image_id": ids,
            "y_true": y_true,
            "y_pred": y_pred,
            "has_artefact": has if has is not None else [0] * n,
            "artefact_kind": kinds if kinds is not None else [""] * n,
        }
    )
    for code in CLASSES:
        frame[f"score_{code}"] = 0.1
    return frame


def test_flips_pair_by_image_id_and_count_only_artefacted_images():
    clean = _table(["a", "b", "c", "d"], [0, 1, 2, 3], [0, 1, 2, 3])
    # Rows in another order; "d" has no artefact in this variant so its change does not count.
    variant = _table(
        ["d", "c", "b", "a"],
        [3, 2, 1, 0],
        [0, 2, 0, 4],
        has=[0, 1, 1, 1],
        kinds=["", "bubble", "bubble", "ruler_vertical"],
    )
    table = flips.flips_table(
        {RunKey("m", CLEAN_TRAIN, 0, CLEAN_TEST): clean, RunKey("m", CLEAN_TRAIN, 0, ALL_TEST): variant}
    )
    by_kind = table.set_index("kind")
    assert by_kind.loc["all", ["n", "n_flipped"]].tolist() == [3, 2]
    assert by_kind.loc["bubble", ["n", "n_flipped", "share"]].tolist() == [2, 1, 0.5]
    assert by_kind.loc["ruler_vertical", "share"] == 1.0


def test_bias_shift_is_change_in_share_predicted_as_biased_class():
    ids = ["a", "b", "c", "d"]
    tables = {
        RunKey("m", CLEAN_TRAIN, 0, ALL_TEST): _table(ids, [0, 1, 2, 3], [0, 1, 2, 3]),
        RunKey("m", "train_mel", 0, ALL_TEST): _table(ids, [0, 1, 2, 3], [4, 4, 4, 3]),
    }
    row = bias.bias_shift_table(tables).iloc[0]
    assert (row["biased_class"], row["share_biased"], row["share_baseline"], row["shift"]) == (
        "mel",
        0.75,
        0,
        0.75,
    )


# --- evaluate end to end ------------------------------------------------------------------------

EXPECTED_TABLES = ("metrics", "metrics_summary", "curves", "mcnemar", "bias", "bias_shift", "flips")


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    from generator.cli import main

    root = tmp_path_factory.mktemp("evaluation")
    runs = make_runs(root / "runs", n_images=35)  # 3 archs x 9 train variants x 1 fold x 13 test variants
    assert main(["evaluate", "--runs", str(runs), "--out", str(root / "results"), "--bootstrap", "100"]) == 0
    return root / "results"


def _never_predicted(runs, row) -> bool:
    csv = (
        runs
        / row["arch"]
        / row["train_variant"]
        / f"fold{row['fold']}"
        / "predictions"
        / f"{row['test_variant']}.csv"
    )
    return CLASSES.index(row["class"]) not in set(pd.read_csv(csv)["y_pred"])


def test_evaluate_writes_every_table_without_nan_where_data_exists(evaluated):
    n_runs = len(ARCHS) * len(TRAIN_VARIANTS)
    for stem in EXPECTED_TABLES:
        table = pd.read_csv(evaluated / f"{stem}.csv", keep_default_na=False, na_values=[""])
        records = json.loads((evaluated / f"{stem}.json").read_text())
        assert len(records) == len(table) > 0, stem
        if stem == "mcnemar":
            # p_exact is NaN by definition from 25 discordant pairs, and only there.
            assert (table["p_exact"].isna() == (table["n01"] + table["n10"] >= 25)).all()
            table = table.drop(columns="p_exact")
        if stem in ("metrics", "metrics_summary"):
            # Every class is in every test table, so the only undefined metric is the precision of a
            # class a model never predicted (detectors that often find nothing).
            undefined = table.isna().any(axis=1)
            assert set(table.loc[undefined, "metric"]) <= {"precision"}, stem
            if stem == "metrics":
                assert all(
                    _never_predicted(evaluated.parent / "runs", row) for _, row in table[undefined].iterrows()
                )
                assert (table.loc[undefined, "value"].isna()).all()
            table = table[~undefined]
        assert not table.isna().any().any(), f"{stem} has NaN"
    metrics = pd.read_csv(evaluated / "metrics.csv").dropna(subset=["value"])
    assert len(pd.read_csv(evaluated / "metrics.csv")) == n_runs * len(TEST_VARIANTS) * (5 * len(CLASSES) + 3)
    assert set(metrics["metric"]) == {
        "pr_auc",
        "precision",
        "recall",
        "fpr",
        "fnr",
        "accuracy",
        "balanced_accuracy",
    }
    assert (
        (metrics["boot_lo"] <= metrics["value"] + 1e-12) & (metrics["value"] <= metrics["boot_hi"] + 1e-12)
    ).all()
    curves = pd.read_csv(evaluated / "curves.csv")
    assert sorted(set(curves["pct_artefact"])) == [0, 20, 40, 60, 80, 100]
    mcnemar = pd.read_csv(evaluated / "mcnemar.csv")
    assert len(mcnemar) == n_runs * (len(TEST_VARIANTS) - 1)
    assert (mcnemar["p_holm"] >= mcnemar["p_value"] - 1e-12).all()
    assert mcnemar.groupby("family").size().eq(len(TEST_VARIANTS) - 1).all()
    bias_shift = pd.read_csv(evaluated / "bias_shift.csv")
    # The fixture's biased models pull artefacted images toward their class.
    assert (bias_shift.loc[bias_shift["test_variant"] == "test_all", "shift"] > 0).all()
    info = json.loads((evaluated / "results.json").read_text())
    assert info["synthetic"] is True and info["archs"] == sorted(ARCHS)
    assert info["bootstrap"]["B"] == 100


def test_evaluate_is_deterministic_and_independent_of_other_runs(evaluated, tmp_path):
    from training.evaluation.evaluate import evaluate

    # The same run as in the module fixture (same fabrication seed and size), alone in its folder.
    runs = make_runs(tmp_path / "runs", archs=("resnet34",), train_variants=("train_none",), n_images=35)
    evaluate(runs, tmp_path / "a", n_boot=100, seed=0, progress=False)
    evaluate(runs, tmp_path / "b", n_boot=100, seed=0, progress=False, workers=2)
    assert (tmp_path / "a" / "metrics.csv").read_bytes() == (tmp_path / "b" / "metrics.csv").read_bytes()
    # Per-table derived seeds: its numbers, CIs included, do not depend on the other 26 runs.
    alone = pd.read_csv(tmp_path / "a" / "metrics.csv")
    full = pd.read_csv(evaluated / "metrics.csv")
    full = full[(full["arch"] == "resnet34") & (full["train_variant"] == "train_none")].reset_index(drop=True)
    pd.testing.assert_frame_equal(alone, full)


def test_bad_prediction_table_is_a_one_line_user_error(tmp_path, capsys):
    from generator.cli import main

    runs = make_runs(
        tmp_path / "runs",
        archs=("resnet34",),
        train_variants=("train_none",),
        test_variants=("test_none",),
        n_images=14,
    )
    csv = runs / "resnet34" / "train_none" / "fold0" / "predictions" / "test_none.csv"
    csv.write_text(csv.read_text().replace("y_pred", "prediction"))
    assert main(["evaluate", "--runs", str(runs), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "test_none.csv" in err and "y_pred" in err
    assert not (tmp_path / "out").exists()


def test_an_out_that_is_a_file_is_refused_before_any_work(tmp_path, capsys):
    from generator.cli import main

    runs = make_runs(
        tmp_path / "runs",
        archs=("resnet34",),
        train_variants=("train_none",),
        test_variants=("test_none",),
        n_images=14,
    )
    (tmp_path / "out").write_text("not a folder")
    assert main(["evaluate", "--runs", str(runs), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(tmp_path / "out") in err[0] and "not a folder" in err[0]
    assert (tmp_path / "out").read_text() == "not a folder"


def test_percentile_interval_ignores_undefined_resamples():
    from training.evaluation.bootstrap import percentile_interval

    rng = np.random.default_rng(0)
    values = rng.random((4, 200))
    values[1, ::3] = np.nan
    values[2] = np.nan
    lo, hi = percentile_interval(values)
    assert lo[0] == pytest.approx(np.percentile(values[0], 2.5)) and hi[3] == pytest.approx(
        np.percentile(values[3], 97.5)
    )
    assert lo[1] == pytest.approx(np.nanpercentile(values[1], 2.5))
    assert math.isnan(lo[2]) and math.isnan(hi[2])


def test_drops_are_each_runs_own_pr_auc_drop_with_a_t_interval_across_runs(evaluated):
    from training.evaluation.aggregate import t_interval

    metrics = pd.read_csv(evaluated / "metrics.csv")
    drops = pd.read_csv(
        evaluated / "drops.csv", keep_default_na=False, na_values=[""], dtype={"drop_runs": str}
    )
    summary = pd.read_csv(evaluated / "metrics_summary.csv")
    macro = metrics[(metrics["metric"] == "pr_auc") & (metrics["class"] == "macro")]
    # one row per condition and test variant other than test_none
    assert len(drops) == len(macro.drop_duplicates(["arch", "train_variant", "test_variant"])) - len(
        macro.drop_duplicates(["arch", "train_variant"])
    )
    assert "test_none" not in set(drops["test_variant"])
    for row in drops.itertuples(index=False):
        runs = macro[(macro["arch"] == row.arch) & (macro["train_variant"] == row.train_variant)]
        by_fold = runs.pivot_table(index="fold", columns="test_variant", values="value")
        expected = (by_fold[row.test_variant] - by_fold["test_none"]).to_numpy()
        assert [float(d) for d in row.drop_runs.split(";")] == pytest.approx(expected, abs=1e-5)
        mean, lo, hi = t_interval(expected)
        assert row.drop_mean == pytest.approx(mean) and row.n_runs == len(expected)
        assert (pd.isna(row.drop_lo) and len(expected) < 2) or row.drop_lo == pytest.approx(lo)
        # the same mean as metrics_summary's delta, which has no interval
        delta = summary[
            (summary["arch"] == row.arch)
            & (summary["train_variant"] == row.train_variant)
            & (summary["test_variant"] == row.test_variant)
            & (summary["metric"] == "pr_auc")
            & (summary["class"] == "macro")
        ]["delta_vs_test_none"].iloc[0]
        assert row.drop_mean == pytest.approx(delta)


def test_drops_interval_covers_the_runs_and_shrinks_with_more_runs():
    from training.evaluation.aggregate import drops_table

    rng = np.random.default_rng(0)

    def table(n_runs):
        rows = []
        for fold in range(n_runs):
            clean = rng.uniform(0.7, 0.9)
            for test, value in (("test_none", clean), ("test_all", clean - 0.06 + rng.normal(0, 0.02))):
                rows.append(
                    dict(
                        arch="resnet34",
                        train_variant="train_none",
                        fold=fold,
                        test_variant=test,
                        metric="pr_auc",
                        value=value,
                        boot_lo=value,
                        boot_hi=value,
                        **{"class": "macro"},
                    )
                )
        return drops_table(pd.DataFrame(rows)).iloc[0]

    one, three, twenty = table(1), table(3), table(20)
    assert one.n_runs == 1 and np.isnan(one.drop_lo) and np.isnan(one.drop_hi)
    assert three.drop_lo < three.drop_mean < three.drop_hi
    assert twenty.drop_lo < -0.06 < twenty.drop_hi  # covers the planted drop
    assert twenty.drop_hi - twenty.drop_lo < three.drop_hi - three.drop_lo


def test_clean_pairs_pair_each_artefacted_table_with_its_runs_clean_one():
    from training.evaluation.predictions import clean_pairs

    tables = {
        RunKey("resnet34", "train_nv", 0, ALL_TEST): pd.DataFrame({"t": [1]}),
        RunKey("resnet34", "train_nv", 0, CLEAN_TEST): pd.DataFrame({"t": [0]}),
        RunKey("resnet34", "train_nv", 1, ALL_TEST): pd.DataFrame({"t": [2]}),  # fold 1 has no clean table
        RunKey("resnet34", "train_nv", 0, "test_mel"): pd.DataFrame({"t": [3]}),
    }
    pairs = list(clean_pairs(tables))
    assert [key for key, _, _ in pairs] == [
        RunKey("resnet34", "train_nv", 0, ALL_TEST),
        RunKey("resnet34", "train_nv", 0, "test_mel"),
    ]  # the tables' order; the clean table is never paired with itself
    for key, clean, table in pairs:
        assert clean is tables[key._replace(test_variant=CLEAN_TEST)] and table is tables[key]
