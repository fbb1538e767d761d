"""Within-model artefact effects, their variance across training runs, and the study's controls.

The paper's measures (PR-AUC drop, recall/FPR/FNR shifts between two models) mix the artefact's effect
with the difference between two training runs. The measures here hold the model fixed: the same
model (arch, train_variant, fold) predicts the same image clean (test_none) and with its artefact
(test_X), and the pair is compared.

Reference class: for a class-biased training variant ``train_<c>`` (and its augmented condition
``train_<c>+aug``, trained on the same images) it is ``c`` (the class the model may have learnt to
associate with artefacts); for every other variant (train_none, train_all, train_none+aug) it is
:data:`DEFAULT_REFERENCE`, so the negative control measures the same outcome as the nv-biased
positive control.

Per run and artefacted test variant (``effects`` table), over the images that carry an artefact in
test_X and whose true class is not the reference class:

- pct_ref_clean / pct_ref_artefact: % of them predicted as the reference class, clean / with artefact;
- shift_pp = pct_ref_artefact - pct_ref_clean (percentage points) = pct_to - pct_away, where pct_to is
  the % whose prediction moves to the reference class and pct_away the % that moves away from it;
- p_mcnemar_ref: exact McNemar (statsmodels ``mcnemar(exact=True)``) on "predicts the reference class";
- p_mcnemar_correct: exact McNemar on correctness (n_correct_to_wrong vs n_wrong_to_correct);
- did_pp = shift_pp - the shift of the train_none model of the same arch and fold on the same images
  with the same reference class (difference in differences); did_lo/did_hi and shift_lo/shift_hi are
  percentile bootstrap intervals over images (pairs resampled jointly for both models).

``effects_summary`` treats each fold as one training run (a replicate): the mean over runs with a
t-interval across runs when there are at least 2, else the single run's image-bootstrap interval,
labelled in ``interval``.

``remedy`` (issue 14: the paper's proposed remedy, artefacts as a training augmentation): per run of an
augmented condition ``X+aug`` and artefacted test variant, its shift beside that of the plain ``X``
model of the same arch and fold on the same images and reference class, and remedy_pp = the
augmented model's shift minus the plain model's (negative: augmentation reduced the shift toward the
reference class), with an image bootstrap interval. ``remedy_summary`` summarises it over runs like
``effects_summary``.

``effects_by_kind`` (and ``effects_by_kind_summary``): the same per-run measures on test_all, split by the
artefact kind each image carries (the prediction tables' artefact_kind), so a reader can see which kinds
carry a shortcut and which the model cannot see at its input size.

``controls``: the positive control (train_nv on test_all), the negative control (train_none on
test_all) and the identity control (test_none against itself, which must be exactly zero and is
checked), each with its verdict under :data:`ACCEPTANCE`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from generator import CLASSES
from generator.seeding import derive_seed
from training.data.conditions import base_variant, is_augmented

from .aggregate import t_interval
from .bias import biased_class
from .bootstrap import percentile_interval
from .predictions import TEST_VARIANTS, TRAIN_VARIANTS, pair_rows
from .significance import exact_mcnemar

DEFAULT_REFERENCE = "nv"
POSITIVE_CONTROL = ("train_nv", "test_all")
NEGATIVE_CONTROL = ("train_none", "test_all")
IDENTITY_CONTROL = ("train_none", "test_none")
# The study's acceptance rule (issue 11), fixed before any result was seen; never tuned.
ACCEPTANCE = {
    "positive_min_did_pp": 15.0,  # train_nv's shift toward nv beyond train_none's, percentage points
    "positive_max_p": 0.01,  # exact McNemar on "predicts nv", in every run
    "negative_max_abs_shift_pp": 5.0,  # train_none's own shift toward nv
}

EFFECT_COLUMNS = [
    "arch",
    "train_variant",
    "fold",
    "test_variant",
    "reference_class",
    "reference_from",
    "n",
    "n_ref_clean",
    "n_ref_artefact",
    "pct_ref_clean",
    "pct_ref_artefact",
    "shift_pp",
    "shift_lo",
    "shift_hi",
    "n_to",
    "n_away",
    "pct_to",
    "pct_away",
    "p_mcnemar_ref",
    "n_correct_to_wrong",
    "n_wrong_to_correct",
    "p_mcnemar_correct",
    "baseline_shift_pp",
    "did_pp",
    "did_lo",
    "did_hi",
]
KIND_EFFECT_COLUMNS = [*EFFECT_COLUMNS[:4], "kind", *EFFECT_COLUMNS[4:]]
KIND_TEST_VARIANT = "test_all"
"""The test variant split by kind: every image carries one artefact, of a kind drawn at random."""
SUMMARY_COLUMNS = [
    "arch",
    "train_variant",
    "test_variant",
    "reference_class",
    "n_runs",
    "folds",
    "interval",
    "shift_mean",
    "shift_lo",
    "shift_hi",
    "shift_runs",
    "did_mean",
    "did_lo",
    "did_hi",
    "did_runs",
    "p_mcnemar_ref_max",
    "p_mcnemar_ref_runs",
]
REMEDY_COLUMNS = [
    "arch",
    "train_variant",
    "plain_variant",
    "fold",
    "test_variant",
    "reference_class",
    "n",
    "shift_pp",
    "plain_shift_pp",
    "remedy_pp",
    "remedy_lo",
    "remedy_hi",
]
REMEDY_SUMMARY_COLUMNS = [
    "arch",
    "train_variant",
    "plain_variant",
    "test_variant",
    "reference_class",
    "n_runs",
    "folds",
    "interval",
    "shift_mean",
    "plain_shift_mean",
    "remedy_mean",
    "remedy_lo",
    "remedy_hi",
    "remedy_runs",
]
CONTROL_COLUMNS = [
    "control",
    "arch",
    "train_variant",
    "test_variant",
    "reference_class",
    "n_runs",
    "n_images",
    "interval",
    "shift_pp",
    "shift_lo",
    "shift_hi",
    "did_pp",
    "did_lo",
    "did_hi",
    "p_mcnemar_ref_max",
    "rule",
    "status",
    "passed",
]


def reference_class(train_variant: str) -> tuple[str, str]:
    """(class code, where it comes from) that a model's artefact effect is measured toward."""
    code = biased_class(train_variant)
    if code is not None:
        return code, "biased class"
    return DEFAULT_REFERENCE, f"default ({DEFAULT_REFERENCE}: no biased class)"


def paired_indicators(
    clean: pd.DataFrame, variant: pd.DataFrame, reference: str, artefacted_only: bool = True
) -> dict[str, np.ndarray]:
    """Per-image outcomes of one model, paired by image_id, on the images the effect is measured on.

    Images: those carrying an artefact in ``variant`` (all paired images when ``artefacted_only`` is
    False: the identity control) whose true class is not ``reference``. Returns image_id, and boolean
    arrays ref_clean / ref_artefact (predicts the reference class) and correct_clean / correct_artefact.
    """
    label = CLASSES.index(reference)
    i, j = pair_rows(clean, variant)
    keep = clean["y_true"].to_numpy()[i] != label
    if artefacted_only:
        keep &= variant["has_artefact"].to_numpy()[j] == 1
    i, j = i[keep], j[keep]
    truth = clean["y_true"].to_numpy()[i]
    pred_clean, pred_artefact = clean["y_pred"].to_numpy()[i], variant["y_pred"].to_numpy()[j]
    return {
        "image_id": clean["image_id"].to_numpy()[i],
        "ref_clean": pred_clean == label,
        "ref_artefact": pred_artefact == label,
        "correct_clean": pred_clean == truth,
        "correct_artefact": pred_artefact == truth,
    }


def effect_counts(ind: dict[str, np.ndarray]) -> dict:
    """Shares (in %), shift and exact McNemar p-values from :func:`paired_indicators`' arrays."""
    n = len(ind["ref_clean"])
    ref_clean, ref_art = ind["ref_clean"], ind["ref_artefact"]
    n_to, n_away = int((~ref_clean & ref_art).sum()), int((ref_clean & ~ref_art).sum())
    n_c2w = int((ind["correct_clean"] & ~ind["correct_artefact"]).sum())
    n_w2c = int((~ind["correct_clean"] & ind["correct_artefact"]).sum())

    def pct(count: int) -> float:
        return 100.0 * count / n if n else float("nan")

    return {
        "n": n,
        "n_ref_clean": int(ref_clean.sum()),
        "n_ref_artefact": int(ref_art.sum()),
        "pct_ref_clean": pct(int(ref_clean.sum())),
        "pct_ref_artefact": pct(int(ref_art.sum())),
        "shift_pp": pct(int(ref_art.sum()) - int(ref_clean.sum())),
        "n_to": n_to,
        "n_away": n_away,
        "pct_to": pct(n_to),
        "pct_away": pct(n_away),
        "p_mcnemar_ref": exact_mcnemar(n_to, n_away),
        "n_correct_to_wrong": n_c2w,
        "n_wrong_to_correct": n_w2c,
        "p_mcnemar_correct": exact_mcnemar(n_w2c, n_c2w),
    }


def mean_interval(per_image: np.ndarray, n_boot: int, seed: int, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval (in the units of ``per_image``) of the mean of per-image values."""
    if n_boot <= 0 or len(per_image) == 0:
        return float("nan"), float("nan")
    # The values take a handful of distinct levels (-200..+200 pp), so drawing n images with replacement
    # is drawing multinomial counts of the levels: the same distribution at O(levels) per resample.
    levels, counts = np.unique(per_image, return_counts=True)
    n = len(per_image)
    draws = np.random.default_rng(seed).multinomial(n, counts / n, size=n_boot)
    lo, hi = percentile_interval((draws @ levels / n)[None, :], level)
    return float(lo[0]), float(hi[0])


def _delta(ind: dict[str, np.ndarray]) -> np.ndarray:
    """Per-image change in "predicts the reference class", in percentage points (-100, 0 or +100)."""
    return 100.0 * (ind["ref_artefact"].astype(float) - ind["ref_clean"].astype(float))


def effects_table(
    tables: dict[tuple[str, str, int, str], pd.DataFrame], n_boot: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """effects table: one row per run and artefacted test variant with at least one qualifying image."""
    rows = []
    for (arch, train, fold, test), table in tables.items():
        clean = tables.get((arch, train, fold, "test_none"))
        if test == "test_none" or clean is None:
            continue
        reference, source = reference_class(train)
        ind = paired_indicators(clean, table, reference)
        if len(ind["ref_clean"]) == 0:
            continue  # e.g. test_nv: its artefacted images are all of the reference class
        key = (arch, train, fold, test)
        rows.append(
            _effect_row(
                tables,
                key,
                ind,
                reference,
                source,
                n_boot,
                derive_seed(seed, "effects-shift", *key),
                derive_seed(seed, "effects-did", *key),
            )
        )
    if not rows:
        return pd.DataFrame(columns=EFFECT_COLUMNS)
    return _sorted(pd.DataFrame(rows)[EFFECT_COLUMNS])


def _effect_row(
    tables,
    key: tuple[str, str, int, str],
    ind: dict[str, np.ndarray],
    reference: str,
    source: str,
    n_boot: int,
    shift_seed: int,
    did_seed: int,
) -> dict:
    """One run's effect on the images of ``ind``: counts, shift with its interval, and the DiD against
    train_none of the same arch and fold on the same images."""
    arch, train, fold, test = key
    row = {
        "arch": arch,
        "train_variant": train,
        "fold": fold,
        "test_variant": test,
        "reference_class": reference,
        "reference_from": source,
        **effect_counts(ind),
    }
    row["shift_lo"], row["shift_hi"] = mean_interval(_delta(ind), n_boot, shift_seed)
    row["baseline_shift_pp"] = row["did_pp"] = row["did_lo"] = row["did_hi"] = float("nan")
    if train != "train_none":
        compared = _compare(tables, ind, (arch, "train_none", fold, test), reference, n_boot, did_seed)
        if compared is not None:
            row["baseline_shift_pp"], row["did_pp"], row["did_lo"], row["did_hi"] = compared
    return row


def effects_by_kind_table(
    tables: dict[tuple[str, str, int, str], pd.DataFrame], n_boot: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """effects_by_kind: :func:`effects_table`'s row for each run on test_all, once per artefact kind
    (registry order), over the images that carry that kind; the DiD pairs them with train_none's
    shift on the same images."""
    from generator.artefacts.kinds import KINDS

    rows = []
    for (arch, train, fold, test), table in tables.items():
        clean = tables.get((arch, train, fold, "test_none"))
        if test != KIND_TEST_VARIANT or clean is None:
            continue
        reference, source = reference_class(train)
        ind = paired_indicators(clean, table, reference)
        kind_of = dict(zip(table["image_id"], table["artefact_kind"].astype(str), strict=True))
        kinds = np.array([kind_of[i] for i in ind["image_id"]], dtype=object)
        present = set(kinds)
        for kind in [k for k in KINDS if k in present] + sorted(present - set(KINDS)):
            part = {name: values[kinds == kind] for name, values in ind.items()}
            rows.append(
                {
                    "kind": kind,
                    **_effect_row(
                        tables,
                        (arch, train, fold, test),
                        part,
                        reference,
                        source,
                        n_boot,
                        derive_seed(seed, "kind-shift", arch, train, fold, kind),
                        derive_seed(seed, "kind-did", arch, train, fold, kind),
                    ),
                }
            )
    if not rows:
        return pd.DataFrame(columns=KIND_EFFECT_COLUMNS)
    return _sorted(pd.DataFrame(rows)[KIND_EFFECT_COLUMNS])  # a stable sort: kinds stay in registry order


def _sorted(table: pd.DataFrame) -> pd.DataFrame:
    """Rows in the registries' order of training and test variants (then architecture and fold)."""
    order = {
        "train_variant": {v: i for i, v in enumerate(TRAIN_VARIANTS)},
        "test_variant": {v: i for i, v in enumerate(TEST_VARIANTS)},
    }

    def rank(col: pd.Series) -> pd.Series:
        if col.name not in order:
            return col
        ranks = order[str(col.name)]
        return col.map(lambda v: ranks.get(v, len(ranks)))

    return table.sort_values(
        ["arch", "train_variant", "fold", "test_variant"], kind="stable", key=rank
    ).reset_index(drop=True)


def _compare(
    tables,
    ind: dict[str, np.ndarray],
    other: tuple[str, str, int, str],
    reference: str,
    n_boot: int,
    seed: int,
) -> tuple[float, float, float, float] | None:
    """(the other model's shift, this shift minus it, interval) on the images both measure, or None.

    ``other`` = (arch, train_variant, fold, test_variant) of the model compared with; the two are
    paired image by image so the bootstrap resamples images, not models.
    """
    other_clean = tables.get((*other[:3], "test_none"))
    other_variant = tables.get(other)
    if other_clean is None or other_variant is None:
        return None
    base = paired_indicators(other_clean, other_variant, reference)
    _, a, b = np.intersect1d(ind["image_id"], base["image_id"], assume_unique=True, return_indices=True)
    if not len(a):
        return None
    base_delta = _delta(base)[b]  # the other model on the same images (a subset: one artefact kind)
    difference = _delta(ind)[a] - base_delta
    lo, hi = mean_interval(difference, n_boot, seed)
    return float(base_delta.mean()), float(difference.mean()), lo, hi


def remedy_table(
    tables: dict[tuple[str, str, int, str], pd.DataFrame], n_boot: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """remedy table: each augmented run (``X+aug``) against the plain ``X`` run of its arch and fold."""
    rows = []
    for (arch, train, fold, test), table in tables.items():
        clean = tables.get((arch, train, fold, "test_none"))
        if not is_augmented(train) or test == "test_none" or clean is None:
            continue
        reference, _ = reference_class(train)
        ind = paired_indicators(clean, table, reference)
        plain = base_variant(train)
        compared = _compare(
            tables,
            ind,
            (arch, plain, fold, test),
            reference,
            n_boot,
            derive_seed(seed, "effects-remedy", arch, train, fold, test),
        )
        if not len(ind["ref_clean"]) or compared is None:
            continue
        plain_shift, remedy, lo, hi = compared
        rows.append(
            {
                "arch": arch,
                "train_variant": train,
                "plain_variant": plain,
                "fold": fold,
                "test_variant": test,
                "reference_class": reference,
                "n": len(ind["ref_clean"]),
                "shift_pp": float(_delta(ind).mean()),
                "plain_shift_pp": plain_shift,
                "remedy_pp": remedy,
                "remedy_lo": lo,
                "remedy_hi": hi,
            }
        )
    if not rows:
        return pd.DataFrame(columns=REMEDY_COLUMNS)
    return _sorted(pd.DataFrame(rows)[REMEDY_COLUMNS])


def summarise_remedy(remedy: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """remedy_summary: the remedy table over training runs, with the same interval rule as
    :func:`summarise_effects` (t across >= 2 runs, else the one run's image bootstrap)."""
    rows = []
    keys = ["arch", "train_variant", "plain_variant", "test_variant", "reference_class"]
    for key, group in remedy.groupby(keys, sort=False):
        group = group.sort_values("fold")
        values, mean, lo, hi, interval = _over_runs(group, "remedy", level)
        rows.append(
            {
                **dict(zip(keys, key, strict=True)),
                "n_runs": len(group),
                "folds": ";".join(str(int(f)) for f in group["fold"]),
                "interval": interval,
                "shift_mean": float(group["shift_pp"].mean()),
                "plain_shift_mean": float(group["plain_shift_pp"].mean()),
                "remedy_mean": mean,
                "remedy_lo": lo,
                "remedy_hi": hi,
                "remedy_runs": _runs_text(values),
            }
        )
    if not rows:
        return pd.DataFrame(columns=REMEDY_SUMMARY_COLUMNS)
    return pd.DataFrame(rows)[REMEDY_SUMMARY_COLUMNS]


def _over_runs(group: pd.DataFrame, measure: str, level: float):
    """(per-run values, mean, lo, hi, label) of ``<measure>_pp`` over a group's runs: a t-interval
    across the runs that have a value, or with one such run its image bootstrap interval
    (``<measure>_lo`` / ``_hi``)."""
    values = group[f"{measure}_pp"].to_numpy(dtype=float)
    defined = np.isfinite(values)
    mean, lo, hi = t_interval(values, level)
    label = f"t across {defined.sum()} runs"
    if defined.sum() == 1:  # one run: fall back to its image bootstrap
        one = group[defined].iloc[0]
        lo, hi = float(one[f"{measure}_lo"]), float(one[f"{measure}_hi"])
        label = "1 run: bootstrap over images" if np.isfinite(lo) else "1 run: no interval"
    return values, mean, lo, hi, label


def _runs_text(values) -> str:
    return ";".join("" if pd.isna(v) else f"{v:.6g}" for v in values)


def summarise_effects(effects: pd.DataFrame, level: float = 0.95, by_kind: bool = False) -> pd.DataFrame:
    """effects_summary: mean over training runs (folds) with a t-interval across runs (>= 2 runs).

    With one run the interval is that run's image bootstrap (``interval`` says which was used), or
    NaN without a bootstrap. ``by_kind``: summarise :func:`effects_by_kind_table` (one row per kind).
    """
    rows = []
    keys = ["arch", "train_variant", "test_variant", *(["kind"] if by_kind else []), "reference_class"]
    columns = [*SUMMARY_COLUMNS[:3], "kind", *SUMMARY_COLUMNS[3:]] if by_kind else SUMMARY_COLUMNS
    for key, group in effects.groupby(keys, sort=False):
        group = group.sort_values("fold")
        row = dict(zip(keys, key, strict=True))
        row["n_runs"] = len(group)
        row["folds"] = ";".join(str(int(f)) for f in group["fold"])
        labels = {}
        for measure in ("shift", "did"):
            values, mean, lo, hi, labels[measure] = _over_runs(group, measure, level)
            row[f"{measure}_mean"], row[f"{measure}_lo"], row[f"{measure}_hi"] = mean, lo, hi
            row[f"{measure}_runs"] = _runs_text(values)
        # The DiD needs train_none of the same fold; say so when it had fewer runs than the shift.
        row["interval"] = (
            labels["shift"]
            if (labels["did"] == labels["shift"] or group["did_pp"].isna().all())
            else f"{labels['shift']}; DiD: {labels['did']}"
        )
        row["p_mcnemar_ref_max"] = float(group["p_mcnemar_ref"].max())
        row["p_mcnemar_ref_runs"] = _runs_text(group["p_mcnemar_ref"])
        rows.append(row)
    if not rows:
        return pd.DataFrame(columns=columns)
    return pd.DataFrame(rows)[columns]


def identity_check(tables: dict[tuple[str, str, int, str], pd.DataFrame]) -> dict:
    """test_none against itself for every train_none run: must be exactly zero (raises otherwise).

    An identity: a model's prediction of an image cannot differ from itself, so any non-zero value
    means the pairing or the counting is broken, and every other effect would be wrong too.
    """
    n_images, n_runs = 0, 0
    for (arch, train, fold, test), table in tables.items():
        if (train, test) != IDENTITY_CONTROL:
            continue
        counts = effect_counts(paired_indicators(table, table, DEFAULT_REFERENCE, artefacted_only=False))
        bad = (counts["n_to"], counts["n_away"], counts["n_correct_to_wrong"], counts["n_wrong_to_correct"])
        if any(bad) or counts["p_mcnemar_ref"] != 1.0 or counts["p_mcnemar_correct"] != 1.0:
            raise RuntimeError(
                f"identity control failed for {arch}/{train}/fold{fold}: test_none against itself "
                f"moved (to, away, correct->wrong, wrong->correct) = {bad}"
            )
        n_images += counts["n"]
        n_runs += 1
    return {"n_runs": n_runs, "n_images": n_images, "shift_pp": 0.0 if n_runs else float("nan")}


def controls_table(
    tables: dict[tuple[str, str, int, str], pd.DataFrame], summary: pd.DataFrame
) -> pd.DataFrame:
    """controls table: positive, negative and identity control per architecture, with verdicts.

    status is "pass", "fail" or "not available" (the variant was not trained or not tested);
    passed is True/False, or empty when not available.
    """
    rows: list[dict[str, object]] = []
    archs = sorted({key[0] for key in tables})
    rule_positive = (
        f"did_pp >= {ACCEPTANCE['positive_min_did_pp']:g} and exact McNemar p < "
        f"{ACCEPTANCE['positive_max_p']:g} in every run"
    )
    rule_negative = f"|shift_pp| <= {ACCEPTANCE['negative_max_abs_shift_pp']:g}"
    for arch in archs:
        identity = identity_check({k: t for k, t in tables.items() if k[0] == arch})
        for control, (train, test), rule in (
            ("positive", POSITIVE_CONTROL, rule_positive),
            ("negative", NEGATIVE_CONTROL, rule_negative),
        ):
            match = (
                summary[
                    (summary["arch"] == arch)
                    & (summary["train_variant"] == train)
                    & (summary["test_variant"] == test)
                ]
                if not summary.empty
                else summary
            )
            row: dict[str, object] = {
                "control": control,
                "arch": arch,
                "train_variant": train,
                "test_variant": test,
                "reference_class": DEFAULT_REFERENCE,
                "rule": rule,
            }
            if match.empty:
                rows.append({**row, "n_runs": 0, "status": "not available", "passed": None})
                continue
            s = match.iloc[0]
            n_images = [
                len(
                    paired_indicators(
                        tables[(arch, train, int(f), "test_none")],
                        tables[(arch, train, int(f), test)],
                        DEFAULT_REFERENCE,
                    )["ref_clean"]
                )
                for f in s["folds"].split(";")
            ]
            row.update(
                n_runs=int(s["n_runs"]),
                n_images=int(max(n_images)),
                interval=s["interval"],
                shift_pp=s["shift_mean"],
                shift_lo=s["shift_lo"],
                shift_hi=s["shift_hi"],
                did_pp=s["did_mean"],
                did_lo=s["did_lo"],
                did_hi=s["did_hi"],
                p_mcnemar_ref_max=s["p_mcnemar_ref_max"],
            )
            if control == "positive":
                if pd.isna(s["did_mean"]):
                    rows.append({**row, "status": "not available", "passed": None})
                    continue
                passed = bool(
                    s["did_mean"] >= ACCEPTANCE["positive_min_did_pp"]
                    and s["p_mcnemar_ref_max"] < ACCEPTANCE["positive_max_p"]
                )
            else:
                passed = bool(abs(s["shift_mean"]) <= ACCEPTANCE["negative_max_abs_shift_pp"])
            rows.append({**row, "status": "pass" if passed else "fail", "passed": passed})
        row = {
            "control": "identity",
            "arch": arch,
            "train_variant": IDENTITY_CONTROL[0],
            "test_variant": IDENTITY_CONTROL[1],
            "reference_class": DEFAULT_REFERENCE,
            "rule": "test_none against itself: shift exactly 0 (checked in code)",
        }
        if identity["n_runs"]:
            rows.append(
                {
                    **row,
                    "n_runs": identity["n_runs"],
                    "n_images": identity["n_images"],
                    "interval": "identity",
                    "shift_pp": 0.0,
                    "shift_lo": 0.0,
                    "shift_hi": 0.0,
                    "p_mcnemar_ref_max": 1.0,
                    "status": "pass",
                    "passed": True,
                }
            )
        else:
            rows.append({**row, "n_runs": 0, "status": "not available", "passed": None})
    if not rows:
        return pd.DataFrame(columns=CONTROL_COLUMNS)
    return pd.DataFrame(rows).reindex(columns=CONTROL_COLUMNS)


def acceptance(runs_dir, n_boot: int = 0, seed: int = 0) -> pd.DataFrame:
    """The controls with their verdicts, from a runs folder's prediction tables alone."""
    from .predictions import load_runs

    tables = load_runs(runs_dir)
    return controls_table(tables, summarise_effects(effects_table(tables, n_boot=n_boot, seed=seed)))
