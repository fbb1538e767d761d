"""One model's predictions of the same images, clean and with their artefact, paired image by image.

The within-model measures (:mod:`.effects`, :mod:`.remedy`, :mod:`.controls`) are all built from
the per-image outcomes here: which images count, whether the model calls them the reference class
clean and with the artefact, the counts and exact McNemar p-values of those outcomes, and a
percentile bootstrap over images of their mean.

Reference class: for a class-biased training variant ``train_<c>`` (and its augmented condition
``train_<c>+aug``, trained on the same images) it is ``c`` (the class the model may have learnt to
associate with artefacts); for every other variant (train_none, train_all, train_none+aug) it is
:data:`DEFAULT_REFERENCE`, so the negative control measures the same outcome as the nv-biased
positive control.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from generator import CLASSES
from generator.variants import CLEAN_TEST

from .bias import biased_class
from .bootstrap import percentile_interval
from .predictions import PredictionTables, RunKey, pair_rows
from .significance import exact_mcnemar

DEFAULT_REFERENCE = "nv"

Indicators = dict[str, np.ndarray]
"""image_id and the boolean arrays ref_clean / ref_artefact / correct_clean / correct_artefact."""


def reference_class(train_variant: str) -> tuple[str, str]:
    """(class code, where it comes from) that a model's artefact effect is measured toward."""
    code = biased_class(train_variant)
    if code is not None:
        return code, "biased class"
    return DEFAULT_REFERENCE, f"default ({DEFAULT_REFERENCE}: no biased class)"


def paired_indicators(
    clean: pd.DataFrame, variant: pd.DataFrame, reference: str, artefacted_only: bool = True
) -> Indicators:
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


def effect_counts(ind: Indicators) -> dict:
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


def reference_delta(ind: Indicators) -> np.ndarray:
    """Per-image change in "predicts the reference class", in percentage points (-100, 0 or +100)."""
    return 100.0 * (ind["ref_artefact"].astype(float) - ind["ref_clean"].astype(float))


def compare(
    tables: PredictionTables,
    ind: Indicators,
    other: RunKey,
    reference: str,
    n_boot: int,
    seed: int,
) -> tuple[float, float, float, float] | None:
    """(the other model's shift, this shift minus it, interval) on the images both measure, or None.

    ``other`` names the model (and test variant) compared with; the two are paired image by image so
    the bootstrap resamples images, not models.
    """
    other_clean = tables.get(other._replace(test_variant=CLEAN_TEST))
    other_variant = tables.get(other)
    if other_clean is None or other_variant is None:
        return None
    base = paired_indicators(other_clean, other_variant, reference)
    _, a, b = np.intersect1d(ind["image_id"], base["image_id"], assume_unique=True, return_indices=True)
    if not len(a):
        return None
    base_delta = reference_delta(base)[b]  # the other model on the same images (a subset: one artefact kind)
    difference = reference_delta(ind)[a] - base_delta
    lo, hi = mean_interval(difference, n_boot, seed)
    return float(base_delta.mean()), float(difference.mean()), lo, hi
