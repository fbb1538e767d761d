"""The validation measure a run picks its best epoch by, and the chance baseline it must beat."""

from __future__ import annotations

import numpy as np

from generator import NUM_CLASSES


def macro_pr_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Mean one-vs-rest average precision over the classes present in ``y_true``."""
    from sklearn.metrics import average_precision_score

    y_true = np.asarray(y_true)
    values = [
        average_precision_score(y_true == c, scores[:, c])
        for c in range(scores.shape[1])
        if (y_true == c).any()
    ]
    return float(np.mean(values)) if values else float("nan")


def prior_pr_auc(y_true: np.ndarray, num_classes: int = NUM_CLASSES) -> float:
    """Macro PR-AUC of a chance scorer: the mean prevalence of the classes present (the baseline to beat)."""
    y_true = np.asarray(y_true)
    return float(np.mean([(y_true == c).mean() for c in range(num_classes) if (y_true == c).any()]))
