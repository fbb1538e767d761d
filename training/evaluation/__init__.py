"""Evaluation of trained models: metrics with confidence intervals, McNemar tests, bias, flips, Grad-CAM.

Reads the prediction tables of a runs folder (``<runs>/<arch>/<train_variant>/fold<k>/predictions/``)
and writes tidy result tables for the site export. Heavy libraries are imported inside functions.
"""

TABLES = (
    "metrics",
    "metrics_summary",
    "drops",
    "curves",
    "mcnemar",
    "bias",
    "bias_shift",
    "flips",
    "effects",
    "effects_summary",
    "effects_by_kind",
    "effects_by_kind_summary",
    "controls",
    "remedy",
    "remedy_summary",
)
"""Every table ``evaluate`` writes (CSV + JSON), in the order it writes them (its --help lists them from here)."""
