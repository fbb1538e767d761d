"""Within-model artefact effects, run variance, controls with their verdicts, and the instrument check."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest
from statsmodels.stats.contingency_tables import mcnemar

from generator import CLASSES
from generator.variants import ALL_TEST, CLEAN_TEST
from training.evaluation import aggregate, effects, paired
from training.evaluation.controls import ACCEPTANCE, controls_table, identity_check
from training.evaluation.predictions import RunKey
from training.evaluation.remedy import remedy_table, summarise_remedy

NV, MEL, BKL = CLASSES.index("nv"), CLASSES.index("mel"), CLASSES.index("bkl")


def _table(ids, y_true, y_pred, has):
    frame = pd.DataFrame(
        {
            "image_id": ids,
            "y_true": y_true,
            "y_pred": y_pred,
            "has_artefact": has,
            "artefact_kind": ["bubble" if h else "" for h in has],
        }
    )
    for code in CLASSES:
        frame[f"score_{code}"] = 0.1
    return frame


def _known_pair():
    """12 images: 10 non-nv with an artefact, 1 nv image and 1 image without its artefact (both excluded).

    Clean -> with artefact: 5 move to nv, 1 moves away, 1 stays nv, 3 stay non-nv (two right, one wrong).
    """
    ids = [f"i{k:02d}" for k in range(12)]
    y_true = [MEL] * 5 + [BKL] * 5 + [NV, MEL]
    clean = [MEL, MEL, MEL, BKL, BKL, NV, NV, BKL, BKL, MEL, BKL, NV]
    artefact = [NV, NV, NV, NV, NV, MEL, NV, BKL, BKL, MEL, MEL, MEL]
    has = [1] * 10 + [1, 0]
    return _table(ids, y_true, clean, [0] * 12), _table(ids, y_true, artefact, has)


def test_effect_counts_by_hand_and_exact_mcnemar_equals_statsmodels_and_binomtest():
    clean, variant = _known_pair()
    counts = effects.effect_counts(effects.paired_indicators(clean, variant, "nv"))
    assert counts["n"] == 10
    assert (counts["n_ref_clean"], counts["n_ref_artefact"]) == (2, 6)
    assert (counts["pct_ref_clean"], counts["pct_ref_artefact"], counts["shift_pp"]) == (20.0, 60.0, 40.0)
    assert (counts["n_to"], counts["n_away"], counts["pct_to"], counts["pct_away"]) == (5, 1, 50.0, 10.0)
    # Rows: clean predicts nv no / yes; columns: with artefact no / yes.
    p = mcnemar([[3, 5], [1, 1]], exact=True).pvalue
    assert counts["p_mcnemar_ref"] == pytest.approx(p) == pytest.approx(binomtest(1, 6, 0.5).pvalue)
    # Correctness: images 0-2 are right clean and called nv with the artefact; 3-4 are wrong both ways;
    # 5 (bkl) is wrong both ways (nv, then mel); 7-8 right both ways. Nothing goes wrong -> right.
    assert (counts["n_correct_to_wrong"], counts["n_wrong_to_correct"]) == (3, 0)
    assert counts["p_mcnemar_correct"] == pytest.approx(mcnemar([[5, 0], [3, 2]], exact=True).pvalue)
    assert counts["p_mcnemar_correct"] == pytest.approx(binomtest(0, 3, 0.5).pvalue) == 0.25


def test_shift_is_moves_to_minus_moves_away_and_mcnemar_matches_binomtest_on_random_tables():
    rng = np.random.default_rng(4)
    for _ in range(60):
        n = int(rng.integers(1, 80))
        ids = [f"x{k:03d}" for k in range(n)]
        y_true = rng.integers(0, len(CLASSES), n)
        clean = _table(ids, y_true, rng.integers(-1, len(CLASSES), n), [0] * n)
        variant = _table(ids[::-1], y_true[::-1], rng.integers(-1, len(CLASSES), n), rng.integers(0, 2, n))
        ind = effects.paired_indicators(clean, variant, "nv")
        c = effects.effect_counts(ind)
        if c["n"] == 0:
            assert math.isnan(c["shift_pp"])
            continue
        assert c["shift_pp"] == pytest.approx(c["pct_to"] - c["pct_away"])
        discordant = c["n_to"] + c["n_away"]
        expected = binomtest(min(c["n_to"], c["n_away"]), discordant, 0.5).pvalue if discordant else 1.0
        assert c["p_mcnemar_ref"] == pytest.approx(expected)


def test_reference_class_is_the_biased_class_else_nv():
    assert effects.reference_class("train_mel") == ("mel", "biased class")
    for train in ("train_none", "train_all", "train_none_aug"):
        code, source = effects.reference_class(train)
        assert code == "nv" and "no biased class" in source


def _runs(shifts_biased, shift_none, n=40, folds=(0,)):
    """Tables where, on n non-nv artefacted images, each model's clean->artefact moves to nv are known.

    ``shifts_biased[k]`` images move to nv for train_nv in fold k; ``shift_none`` for train_none.
    """
    ids = [f"im{k:03d}" for k in range(n)]
    y_true = [MEL] * n
    tables = {}
    for k, fold in enumerate(folds):
        for train, moved in (("train_nv", shifts_biased[k]), ("train_none", shift_none)):
            clean = _table(ids, y_true, [MEL] * n, [0] * n)
            pred = [NV] * moved + [MEL] * (n - moved)
            tables[RunKey("resnet34", train, fold, CLEAN_TEST)] = clean
            tables[RunKey("resnet34", train, fold, ALL_TEST)] = _table(ids, y_true, pred, [1] * n)
    return tables


def test_did_against_train_none_of_the_same_fold_with_a_bootstrap_interval():
    table = effects.effects_table(_runs([12], 2), n_boot=500, seed=1)
    row = table[(table.train_variant == "train_nv")].iloc[0]
    assert row["shift_pp"] == 30.0 and row["baseline_shift_pp"] == 5.0 and row["did_pp"] == 25.0
    assert row["did_lo"] < 25.0 < row["did_hi"] and row["shift_lo"] < 30.0 < row["shift_hi"]
    none = table[(table.train_variant == "train_none")].iloc[0]
    assert none["shift_pp"] == 5.0 and math.isnan(none["did_pp"])  # train_none is the baseline itself
    again = effects.effects_table(_runs([12], 2), n_boot=500, seed=1)
    pd.testing.assert_frame_equal(table, again)


def test_bootstrap_interval_of_a_mean_matches_resampling_images():
    values = np.repeat([-100.0, 0.0, 100.0], [7, 20, 13])
    lo, hi = effects.mean_interval(values, 4000, seed=0)
    rng = np.random.default_rng(1)
    direct = np.array([values[rng.integers(0, len(values), len(values))].mean() for _ in range(4000)])
    assert lo == pytest.approx(np.percentile(direct, 2.5), abs=3) and hi == pytest.approx(
        np.percentile(direct, 97.5), abs=3
    )
    assert effects.mean_interval(values, 0, seed=0) == (pytest.approx(float("nan"), nan_ok=True),) * 2


def test_run_variance_uses_t_across_runs_and_labels_a_single_run():
    many = effects.summarise_effects(
        effects.effects_table(_runs([8, 12, 16], 2, folds=(0, 1, 2)), n_boot=200)
    )
    row = many[many.train_variant == "train_nv"].iloc[0]
    mean, lo, hi = aggregate.t_interval([20.0, 30.0, 40.0])
    assert (row["shift_mean"], row["shift_lo"], row["shift_hi"]) == pytest.approx((mean, lo, hi))
    assert row["n_runs"] == 3 and row["interval"] == "t across 3 runs" and row["shift_runs"] == "20;30;40"
    assert row["did_runs"] == "15;25;35"
    one = effects.effects_table(_runs([12], 2), n_boot=200)
    single = effects.summarise_effects(one)
    row, run = (
        single[single.train_variant == "train_nv"].iloc[0],
        one[one.train_variant == "train_nv"].iloc[0],
    )
    assert row["interval"] == "1 run: bootstrap over images"
    assert (row["did_lo"], row["did_hi"]) == (run["did_lo"], run["did_hi"])
    no_boot = effects.summarise_effects(effects.effects_table(_runs([12], 2), n_boot=0))
    assert (no_boot["interval"] == "1 run: no interval").all() and no_boot["shift_lo"].isna().all()


@pytest.mark.parametrize(
    "n, moved_biased, moved_none, p_ok, positive, negative",
    [
        (40, 8, 2, True, "pass", "pass"),  # DiD = 20 - 5 = 15 pp exactly: passes (>=); p = 2^-7
        (80, 8, 0, True, "fail", "pass"),  # p = 2^-7 but DiD only 10 pp
        (40, 7, 0, False, "fail", "pass"),  # DiD 17.5 pp but p = 2^-6 >= 0.01
        (40, 8, 3, True, "fail", "fail"),  # train_none moved 7.5 pp: negative fails, DiD 12.5
        (40, 2, 2, False, "fail", "pass"),  # nothing happens
    ],
)
def test_control_verdicts_follow_the_acceptance_rule(n, moved_biased, moved_none, p_ok, positive, negative):
    tables = _runs([moved_biased], moved_none, n=n)
    controls = controls_table(tables, effects.summarise_effects(effects.effects_table(tables, n_boot=0)))
    by = controls.set_index("control")
    assert by.loc["positive", "status"] == positive and by.loc["negative", "status"] == negative
    assert (by.loc["positive", "p_mcnemar_ref_max"] < ACCEPTANCE["positive_max_p"]) == p_ok
    assert by.loc["identity", "status"] == "pass" and by.loc["identity", "shift_pp"] == 0.0


def test_positive_control_needs_every_run_significant():
    # Mean DiD 25 pp, but one run moved only 3 of 40 images (p = 0.25): not accepted.
    tables = _runs([20, 20, 3], 0, folds=(0, 1, 2))
    controls = controls_table(tables, effects.summarise_effects(effects.effects_table(tables, n_boot=0)))
    positive = controls.set_index("control").loc["positive"]
    assert positive["did_pp"] == pytest.approx((50 + 50 + 7.5) / 3)
    assert positive["p_mcnemar_ref_max"] == pytest.approx(binomtest(0, 3, 0.5).pvalue)
    assert positive["status"] == "fail"


def test_controls_not_available_without_train_nv():
    tables = {k: v for k, v in _runs([8], 0).items() if k[1] == "train_none"}
    controls = controls_table(tables, effects.summarise_effects(effects.effects_table(tables, n_boot=0)))
    positive = controls.set_index("control").loc["positive"]
    assert positive["status"] == "not available" and positive["passed"] is None


def test_identity_control_is_zero_and_raises_when_the_pairing_is_broken(monkeypatch):
    tables = _runs([8], 2)
    assert identity_check(tables) == {"n_runs": 1, "n_images": 40, "shift_pp": 0.0}
    tables[RunKey("resnet34", "train_none", 0, CLEAN_TEST)].loc[:9, "y_pred"] = NV

    def shifted(first, second):  # pairs image k with image k+1: no longer an identity
        n = len(first)
        return np.arange(n - 1), np.arange(1, n)

    monkeypatch.setattr(paired, "pair_rows", shifted)
    with pytest.raises(RuntimeError, match="identity control failed for resnet34/train_none/fold0"):
        identity_check(tables)


def test_evaluate_writes_effect_tables_and_lists_them(tmp_path):
    from helpers.evaluation import make_runs

    from training.evaluation.evaluate import evaluate

    runs = make_runs(
        tmp_path / "runs",
        archs=("resnet34",),
        train_variants=("train_none", "train_nv", "train_mel"),
        folds=(0, 1),
        n_images=70,
    )
    info = evaluate(runs, tmp_path / "out", n_boot=50, progress=False)
    for stem in ("effects", "effects_summary", "controls"):
        assert f"{stem}.csv" in info["tables"] and f"{stem}.json" in info["tables"]
        table = pd.read_csv(tmp_path / "out" / f"{stem}.csv")
        assert len(json.loads((tmp_path / "out" / f"{stem}.json").read_text())) == len(table) > 0
    assert info["acceptance"] == ACCEPTANCE
    table = pd.read_csv(tmp_path / "out" / "effects.csv")
    assert set(table.loc[table.train_variant == "train_mel", "reference_class"]) == {"mel"}
    assert set(table.loc[table.train_variant == "train_none", "reference_class"]) == {"nv"}
    assert "test_none" not in set(table.test_variant)
    # The fixture's biased models pull artefacted images toward their class; train_none does not.
    biased = table[(table.train_variant != "train_none") & (table.test_variant == "test_all")]
    assert (biased["did_pp"] > 0).all()
    # From the prediction tables alone, the same verdicts.
    controls = pd.read_csv(tmp_path / "out" / "controls.csv")
    again = effects.acceptance(runs)
    assert list(again["status"]) == list(controls["status"])


# --- the instrument check ---------------------------------------------------------------------------


def test_planted_tables_have_the_prediction_format_and_load(tmp_path):
    from training.evaluation.instrument import plant_runs
    from training.evaluation.predictions import load_predictions
    from training.run.predict import COLUMNS, read_predictions

    runs = plant_runs(tmp_path / "runs", n_per_class=5, folds=(0,))
    csv = runs / "planted_cheat" / "train_nv" / "fold0" / "predictions" / "test_all.csv"
    raw = read_predictions(csv)
    assert tuple(raw.columns) == COLUMNS and list(raw["image_id"]) == sorted(raw["image_id"])
    table = load_predictions(csv)
    assert (table["y_pred"] == NV).all() and (table["has_artefact"] == 1).all()  # the cheat
    honest = load_predictions(
        runs / "planted_honest" / "train_nv" / "fold0" / "predictions" / "test_none.csv"
    )
    assert (honest["has_artefact"] == 0).all() and (honest["artefact_kind"] == "").all()


def test_instrument_check_detects_the_cheat_and_not_the_honest_model():
    from training.evaluation.instrument import run_instrument_check

    check = run_instrument_check().set_index("model")
    cheat, honest = check.loc["planted_cheat / train_nv"], check.loc["planted_honest / train_nv"]
    assert (
        cheat["must_detect"]
        and cheat["detected"]
        and cheat["did_pp"] > 80
        and cheat["p_mcnemar_ref_max"] < 1e-20
    )
    assert not honest["must_detect"] and not honest["detected"] and abs(honest["did_pp"]) < 5
    assert honest["negative_shift_pp"] != 0  # the artefact-blind noise is real, not a constant model
    assert check["ok"].all()


def test_instrument_check_fails_when_the_measure_is_blind(monkeypatch):
    """A broken measure (every shift reads 0) must show up as a failed instrument check."""
    from training.evaluation import instrument

    real = effects.effect_counts

    def blind(ind):
        return real({**ind, "ref_artefact": ind["ref_clean"]})

    monkeypatch.setattr(effects, "effect_counts", blind)
    check = instrument.run_instrument_check(n_boot=0)
    assert not check["ok"].all()


def test_did_interval_is_labelled_when_train_none_has_fewer_runs():
    tables = _runs([8, 12, 16], 2, folds=(0, 1, 2))
    for test in (CLEAN_TEST, ALL_TEST):
        del (
            tables[RunKey("resnet34", "train_none", 1, test)],
            tables[RunKey("resnet34", "train_none", 2, test)],
        )
    summary = effects.summarise_effects(effects.effects_table(tables, n_boot=100))
    row = summary[summary.train_variant == "train_nv"].iloc[0]
    assert row["interval"] == "t across 3 runs; DiD: 1 run: bootstrap over images"
    assert row["did_mean"] == 15.0 and row["did_runs"] == "15;;"
    assert row["did_lo"] <= 15.0 <= row["did_hi"]


# --- the remedy experiment: augmented conditions X+aug -------------------------------------------------------


def _remedy_runs(moved: dict[str, list[int]], n=40, folds=(0,)):
    """Tables where, on n non-nv artefacted images, ``moved[train][k]`` move to nv in fold k."""
    ids = [f"im{k:03d}" for k in range(n)]
    y_true = [MEL] * n
    tables = {}
    for train, per_fold in moved.items():
        for k, fold in enumerate(folds):
            tables[RunKey("resnet34", train, fold, CLEAN_TEST)] = _table(ids, y_true, [MEL] * n, [0] * n)
            pred = [NV] * per_fold[k] + [MEL] * (n - per_fold[k])
            tables[RunKey("resnet34", train, fold, ALL_TEST)] = _table(ids, y_true, pred, [1] * n)
    return tables


def test_augmented_conditions_are_biased_like_their_variant_and_compared_with_train_none():
    from training.evaluation.bias import biased_class

    assert biased_class("train_nv+aug") == "nv" and biased_class("train_none+aug") is None
    assert effects.reference_class("train_nv+aug") == ("nv", "biased class")
    tables = _remedy_runs({"train_none": [2], "train_nv": [12], "train_nv+aug": [4], "train_none+aug": [1]})
    table = effects.effects_table(tables, n_boot=200, seed=0).set_index("train_variant")
    # the registry order: each condition right after its plain variant
    assert list(table.index) == ["train_none", "train_none+aug", "train_nv", "train_nv+aug"]
    assert table.loc["train_nv+aug", "shift_pp"] == 10.0 and table.loc["train_nv+aug", "did_pp"] == 5.0
    assert table.loc["train_none+aug", "shift_pp"] == 2.5 and table.loc["train_none+aug", "did_pp"] == -2.5


def test_remedy_is_augmented_minus_plain_paired_per_image_and_fold():
    tables = _remedy_runs({"train_none": [2], "train_nv": [12], "train_nv+aug": [4], "train_none+aug": [3]})
    remedy = remedy_table(tables, n_boot=500, seed=3).set_index("train_variant")
    row = remedy.loc["train_nv+aug"]
    assert row["plain_variant"] == "train_nv" and row["reference_class"] == "nv" and row["n"] == 40
    assert (row["shift_pp"], row["plain_shift_pp"], row["remedy_pp"]) == (10.0, 30.0, -20.0)
    assert row["remedy_lo"] < -20.0 < row["remedy_hi"] < 0  # 8 images moved fewer, none more: clearly below 0
    none = remedy.loc["train_none+aug"]
    assert (none["plain_variant"], none["remedy_pp"]) == ("train_none", 2.5)
    assert list(remedy.index) == ["train_none+aug", "train_nv+aug"]  # plain models get no remedy row
    pd.testing.assert_frame_equal(remedy_table(tables, n_boot=500, seed=3).set_index("train_variant"), remedy)
    # without the plain run of the same fold there is nothing to pair with
    del tables[RunKey("resnet34", "train_nv", 0, ALL_TEST)]
    assert set(remedy_table(tables, n_boot=0).train_variant) == {"train_none+aug"}


def test_remedy_summary_uses_t_across_runs_and_labels_a_single_run():
    tables = _remedy_runs({"train_nv": [12, 16, 20], "train_nv+aug": [4, 12, 8]}, folds=(0, 1, 2))
    summary = summarise_remedy(remedy_table(tables, n_boot=100))
    row = summary.iloc[0]
    mean, lo, hi = aggregate.t_interval([-20.0, -10.0, -30.0])
    assert row["interval"] == "t across 3 runs" and row["remedy_runs"] == "-20;-10;-30"
    assert (row["remedy_mean"], row["remedy_lo"], row["remedy_hi"]) == pytest.approx((mean, lo, hi))
    assert row["shift_mean"] == pytest.approx(20.0) and row["plain_shift_mean"] == pytest.approx(40.0)
    one = summarise_remedy(
        remedy_table(_remedy_runs({"train_nv": [12], "train_nv+aug": [4]}), n_boot=100)
    ).iloc[0]
    assert one["interval"] == "1 run: bootstrap over images" and one["remedy_lo"] < -20 < one["remedy_hi"]
    assert summarise_remedy(remedy_table({}, n_boot=0)).empty


def test_evaluate_discovers_augmented_runs_after_their_variant_and_writes_the_remedy(tmp_path):
    from helpers.evaluation import make_runs

    from training.evaluation.evaluate import evaluate
    from training.evaluation.predictions import discover_runs

    # The fixture pulls train_nv's artefacted images toward nv and gives "train_nv+aug" no pull: a remedy
    # that worked. The tables must say so, without anything else breaking.
    variants = ("train_nv+aug", "train_none", "train_nv", "train_none+aug")
    runs = make_runs(
        tmp_path / "runs", archs=("resnet34",), train_variants=variants, folds=(0, 1), n_images=140
    )
    assert [(r.train_variant, r.fold) for r in discover_runs(runs)] == [
        (v, f) for v in ("train_none", "train_none+aug", "train_nv", "train_nv+aug") for f in (0, 1)
    ]
    info = evaluate(runs, tmp_path / "out", n_boot=50, progress=False)
    assert info["train_variants"] == ["train_none", "train_none+aug", "train_nv", "train_nv+aug"]
    for stem in ("remedy", "remedy_summary"):
        assert f"{stem}.csv" in info["tables"] and stem in info["definitions"]
    remedy = pd.read_csv(tmp_path / "out" / "remedy_summary.csv")
    assert set(remedy.train_variant) == {"train_none+aug", "train_nv+aug"}
    row = remedy[(remedy.train_variant == "train_nv+aug") & (remedy.test_variant == "test_all")].iloc[0]
    assert row["remedy_mean"] < 0 and row["plain_variant"] == "train_nv" and row["n_runs"] == 2
    bias_shift = pd.read_csv(tmp_path / "out" / "bias_shift.csv")
    assert set(bias_shift.train_variant) == {
        "train_nv",
        "train_nv+aug",
    }  # both biased toward nv, vs train_none
    controls = pd.read_csv(tmp_path / "out" / "controls.csv")
    assert set(controls.train_variant) == {"train_nv", "train_none"}  # the controls stay the plain models'


# --- effects by artefact kind -------------------------------------------------------------------------
KIND_CYCLE = (
    "marking_spot",
    "bubble",
    "ruler_vertical",
    "marking_circle",
    "ruler_horizontal",
)  # not registry order


def _kind_table(ids, y_true, y_pred, kinds):
    frame = _table(ids, y_true, y_pred, [1 if k else 0 for k in kinds])
    frame["artefact_kind"] = list(kinds)
    return frame


def _kind_runs(moved_nv: set[int], moved_none: set[int], n: int = 50):
    """n mel images, kinds cycling over KIND_CYCLE; the images in ``moved_*`` are called nv with their
    artefact by train_nv / train_none, the rest stay mel."""
    ids = [f"k{i:03d}" for i in range(n)]
    kinds = [KIND_CYCLE[i % len(KIND_CYCLE)] for i in range(n)]
    y_true = [MEL] * n
    tables = {}
    for train, moved in (("train_nv", moved_nv), ("train_none", moved_none)):
        tables[RunKey("resnet34", train, 0, CLEAN_TEST)] = _kind_table(ids, y_true, [MEL] * n, [""] * n)
        tables[RunKey("resnet34", train, 0, ALL_TEST)] = _kind_table(
            ids, y_true, [NV if i in moved else MEL for i in range(n)], kinds
        )
    return tables


def test_effects_by_kind_locate_a_shortcut_that_only_one_kind_carries():
    from generator.artefacts.kinds import KINDS

    bubbles = {i for i in range(50) if i % 5 == 1}  # all 10 bubble images move to nv
    spots = {0, 5}  # 2 of the 10 spot images
    table = effects.effects_by_kind_table(_kind_runs(bubbles | spots, {5}), n_boot=200, seed=3)
    nv = table[table.train_variant == "train_nv"].set_index("kind")
    assert list(nv.index) == [k for k in KINDS if k in KIND_CYCLE]  # registry order, whatever the data's
    assert (nv["n"] == 10).all() and (nv["test_variant"] == "test_all").all()
    assert nv.loc["bubble", "shift_pp"] == 100.0 and nv.loc["bubble", "did_pp"] == 100.0
    # the DiD's baseline is train_none on the same images: one of the ten spot images moved
    assert (nv.loc["marking_spot", "shift_pp"], nv.loc["marking_spot", "baseline_shift_pp"]) == (20.0, 10.0)
    assert nv.loc["marking_spot", "did_pp"] == 10.0
    for kind in ("ruler_horizontal", "ruler_vertical", "marking_circle"):
        assert nv.loc[kind, "shift_pp"] == 0.0 and nv.loc[kind, "p_mcnemar_ref"] == 1.0
    assert nv.loc["bubble", "p_mcnemar_ref"] < 0.01
    summary = effects.summarise_effects(table, by_kind=True)
    assert list(summary.columns[:5]) == ["arch", "train_variant", "test_variant", "kind", "reference_class"]
    assert len(summary) == 10 and summary.groupby(["train_variant", "kind"]).size().max() == 1


def test_effects_by_kind_partition_each_run_of_the_whole_variant():
    """On random tables the kinds split test_all's images: counts add up to the effects row, and the
    whole variant's shift is the image-weighted mean of the kinds' shifts."""
    rng = np.random.default_rng(11)
    for _ in range(25):
        n = int(rng.integers(5, 90))
        ids = [f"r{i:03d}" for i in range(n)]
        y_true = rng.integers(0, len(CLASSES), n)
        kinds = rng.choice(KIND_CYCLE, n)
        tables = {}
        for train in ("train_nv", "train_none"):
            tables[RunKey("resnet34", train, 0, CLEAN_TEST)] = _kind_table(
                ids, y_true, rng.integers(0, len(CLASSES), n), [""] * n
            )
            tables[RunKey("resnet34", train, 0, ALL_TEST)] = _kind_table(
                ids, y_true, rng.integers(0, len(CLASSES), n), kinds
            )
        whole = effects.effects_table(tables, n_boot=0)
        whole = whole[whole.test_variant == "test_all"].set_index("train_variant")
        by_kind = effects.effects_by_kind_table(tables, n_boot=0)
        for train, rows in by_kind.groupby("train_variant"):
            for column in ("n", "n_to", "n_away", "n_ref_clean", "n_ref_artefact"):
                assert rows[column].sum() == whole.loc[train, column]
            weighted = (rows["shift_pp"] * rows["n"]).sum() / rows["n"].sum()
            assert weighted == pytest.approx(whole.loc[train, "shift_pp"])
        if "train_nv" in set(by_kind.train_variant):
            rows = by_kind[by_kind.train_variant == "train_nv"]
            did = (rows["did_pp"] * rows["n"]).sum() / rows["n"].sum()
            assert did == pytest.approx(whole.loc["train_nv", "did_pp"])


def test_evaluate_writes_every_listed_table_in_order_and_help_names_them(tmp_path, capsys):
    from helpers.evaluation import make_runs

    from generator.cli import main
    from training.evaluation import TABLES
    from training.evaluation.evaluate import evaluate

    runs = make_runs(
        tmp_path / "runs",
        archs=("resnet34",),
        train_variants=("train_none", "train_nv"),
        folds=(0,),
        n_images=40,
    )
    info = evaluate(runs, tmp_path / "out", n_boot=20, progress=False)
    assert [name[:-4] for name in info["tables"] if name.endswith(".csv")] == list(TABLES)
    by_kind = pd.read_csv(tmp_path / "out" / "effects_by_kind.csv")
    assert len(by_kind) > 0 and set(by_kind.test_variant) == {"test_all"}
    assert main(["evaluate", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert all(name in text for name in TABLES)
