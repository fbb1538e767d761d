"""Markdown page renderers. Each takes already-loaded tables and returns the page text.

The pages' prose lives in Jinja2 templates (``training/export/templates``); the numbers and sentences
they show are chosen by :mod:`training.evaluation.report`; the modules here lay out what Markdown
cannot express as raw HTML (sortable tables with data-sort values, chart containers with their inline
Vega-Lite spec, the Grad-CAM gallery grid).
"""

from __future__ import annotations

from .bias import bias_page, within_model_table
from .datasets import datasets_page, downloads_page
from .gallery import GALLERY_PER_GROUP, gallery_page, gallery_rows
from .markup import chart_block, not_available
from .overview import (
    coverage_admonition,
    headline_table,
    instrument_section,
    overview_page,
    smoke_admonition,
)
from .robustness import remedy_section, robustness_drop_table, robustness_page
from .significance import significance_page

__all__ = [
    "GALLERY_PER_GROUP",
    "bias_page",
    "chart_block",
    "coverage_admonition",
    "datasets_page",
    "downloads_page",
    "gallery_page",
    "gallery_rows",
    "headline_table",
    "instrument_section",
    "not_available",
    "overview_page",
    "remedy_section",
    "robustness_drop_table",
    "robustness_page",
    "significance_page",
    "smoke_admonition",
    "within_model_table",
]
