"""Percentile bootstrap over images for every metric at once.

Each resample draws n images with replacement (``np.random.default_rng(seed)``) and is represented by
its count vector, so all metrics of all B resamples are a few matrix products (see ``metrics``). The
CI is the 2.5th and 97.5th percentile of the resampled values, ignoring resamples where a metric is
undefined (e.g. a rare class drawn zero times); NaN when it is undefined in every resample.
"""

from __future__ import annotations

import numpy as np

from .metrics import metric_arrays

DEFAULT_B = 2000
_BLOCK_ELEMENTS = 50_000  # resamples x images per block: temporaries stay in cache (measured fastest)


def resample_counts(n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, n) counts: row b says how often each image was drawn in resample b."""
    draws = rng.integers(0, n, size=(n_boot, n))
    offsets = (np.arange(n_boot) * n)[:, None]
    return np.bincount((draws + offsets).ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(float)


def percentile_interval(resampled: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise (lo, hi) percentiles of (K, B) resampled values, ignoring NaN; NaN for all-NaN rows."""
    tail = 100 * (1 - level) / 2
    lo = np.full(len(resampled), np.nan)
    hi = np.full(len(resampled), np.nan)
    if resampled.shape[1] == 0:
        return lo, hi
    complete = ~np.isnan(resampled).any(axis=1)
    if complete.any():  # one vectorised call for the usual case, no undefined resample
        lo[complete], hi[complete] = np.percentile(resampled[complete], [tail, 100 - tail], axis=1)
    for k in np.flatnonzero(~complete):
        values = resampled[k][~np.isnan(resampled[k])]
        if len(values):
            lo[k], hi[k] = np.percentile(values, [tail, 100 - tail])
    return lo, hi


def bootstrap_metrics(
    y_true, scores, y_pred, n_boot: int = DEFAULT_B, seed: int = 0, level: float = 0.95
) -> dict[tuple[str, str], tuple[float, float, float]]:
    """{(metric, class): (value, ci_lo, ci_hi)}: point estimate and percentile bootstrap CI."""
    n = len(y_true)
    rng = np.random.default_rng(seed)
    point = metric_arrays(y_true, scores, y_pred)
    keys = list(point)
    block = max(1, _BLOCK_ELEMENTS // max(n, 1))
    resampled = np.empty((len(keys), n_boot))
    for start in range(0, n_boot, block):
        counts = resample_counts(n, min(block, n_boot - start), rng)
        values = metric_arrays(y_true, scores, y_pred, counts)
        resampled[:, start : start + len(counts)] = [values[key] for key in keys]
    lo, hi = percentile_interval(resampled, level)
    return {key: (float(point[key][0]), float(lo[k]), float(hi[k])) for k, key in enumerate(keys)}
