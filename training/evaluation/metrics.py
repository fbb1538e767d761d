"""Classification metrics, computed for a batch of image weightings at once.

Every function takes ``weights`` of shape (B, n): how many times each of the n images counts in each
of B evaluations. The point estimate is ``weights = ones((1, n))``; a bootstrap resample is a row of
multinomial counts. One code path serves both, so the bootstrap is vectorised and exactly consistent
with the point estimate.

Definitions (per class c, one-vs-rest; a detector's "no detection", y_pred = -1, predicts no class, so
it is a false negative for the true class and counts as incorrect for accuracy):

- pr_auc: average precision as in ``sklearn.metrics.average_precision_score`` on (y_true == c,
  score_c): sum over distinct score thresholds, descending, of (R_k - R_{k-1}) * P_k; tied scores form
  one threshold. NaN when class c has no image (no positives: undefined). Macro = mean over the
  classes that are defined.
- precision = TP / (TP + FP): NaN when c is never predicted.
- recall = TP / (TP + FN), fnr = FN / (TP + FN) = 1 - recall: NaN when c has no image.
- fpr = FP / (FP + TN): NaN when every image is of class c.
- accuracy = share of images with y_pred == y_true.
- balanced_accuracy = mean recall over the classes that have images (as sklearn's
  ``balanced_accuracy_score``).
"""

from __future__ import annotations

import warnings

import numpy as np

from generator import CLASSES

METRICS = ("pr_auc", "precision", "recall", "fpr", "fnr", "accuracy", "balanced_accuracy")
PER_CLASS = ("pr_auc", "precision", "recall", "fpr", "fnr")


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def _nanmean(values: np.ndarray, axis: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows stay NaN, on purpose
        return np.nanmean(values, axis=axis)


def _as_weights(weights: np.ndarray | None, n: int) -> np.ndarray:
    if weights is None:
        return np.ones((1, n))
    weights = np.asarray(weights, dtype=float)
    return weights[None, :] if weights.ndim == 1 else weights


def average_precision(
    positive: np.ndarray, score: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """Average precision of a binary problem for each row of ``weights`` (B,), NaN without positives."""
    positive = np.asarray(positive, dtype=float)
    score = np.asarray(score, dtype=float)
    weights = _as_weights(weights, len(score))
    order = np.argsort(-score, kind="mergesort")
    sorted_score, sorted_positive = score[order], positive[order]
    w = weights[:, order]
    # One threshold per distinct score value (tied scores form one group). Only groups holding a
    # positive add recall, so only their ends are needed: [start, end] index ranges in sorted order.
    ends = np.r_[np.flatnonzero(np.diff(sorted_score) != 0), len(score) - 1]
    starts = np.r_[0, ends[:-1] + 1]
    positives_in_group = np.add.reduceat(sorted_positive, starts).astype(np.int64)
    keep = positives_in_group > 0
    if not keep.any():
        return np.full(len(weights), np.nan)
    # Cumulative true-positive weight only needs the positive columns (a minority for most classes).
    cum_tp = np.cumsum(w[:, sorted_positive > 0], axis=1)
    last_positive = np.cumsum(positives_in_group)[keep] - 1  # column of cum_tp at each group end
    tp = cum_tp[:, last_positive]
    before = np.concatenate([np.zeros((len(w), 1)), tp[:, :-1]], axis=1)
    seen = np.cumsum(w, axis=1)[:, ends[keep]]
    precision = np.divide(tp, seen, out=np.zeros_like(tp), where=seen > 0)
    return _ratio(((tp - before) * precision).sum(axis=1), cum_tp[:, -1])


def metric_arrays(
    y_true: np.ndarray, scores: np.ndarray, y_pred: np.ndarray, weights: np.ndarray | None = None
) -> dict[tuple[str, str], np.ndarray]:
    """{(metric, class): values of shape (B,)} for every metric; class is a code, "macro" or "all"."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    scores = np.asarray(scores, dtype=float)
    k = len(CLASSES)
    weights = _as_weights(weights, len(y_true))
    truth = (y_true[:, None] == np.arange(k)).astype(float)  # (n, K); -1 predictions match no class
    pred = (y_pred[:, None] == np.arange(k)).astype(float)
    tp = weights @ (truth * pred)
    fp = weights @ ((1 - truth) * pred)
    fn = weights @ (truth * (1 - pred))
    tn = weights @ ((1 - truth) * (1 - pred))
    recall = _ratio(tp, tp + fn)
    per_class = {
        "precision": _ratio(tp, tp + fp),
        "recall": recall,
        "fpr": _ratio(fp, fp + tn),
        "fnr": _ratio(fn, tp + fn),
        "pr_auc": np.stack([average_precision(truth[:, c], scores[:, c], weights) for c in range(k)], axis=1),
    }
    out = {}
    for metric in PER_CLASS:
        for c, code in enumerate(CLASSES):
            out[(metric, code)] = per_class[metric][:, c]
    out[("pr_auc", "macro")] = _nanmean(per_class["pr_auc"], axis=1)
    out[("accuracy", "all")] = _ratio(weights @ (y_pred == y_true).astype(float), weights.sum(axis=1))
    out[("balanced_accuracy", "all")] = _nanmean(recall, axis=1)
    return out


def point_metrics(y_true, scores, y_pred) -> dict[tuple[str, str], float]:
    """{(metric, class): value} on the images as given."""
    return {key: float(values[0]) for key, values in metric_arrays(y_true, scores, y_pred).items()}
