"""Results site export: evaluation tables + data manifest -> MkDocs sources (Markdown, Vega-Lite specs, downloads).

The export reads only result tables and the data manifest; it runs no models and recomputes no
statistics (it selects, reshapes and formats). The one exception is the instrument check, which puts
planted prediction tables (not the results) through ``evaluate`` to show the measures can detect an effect. ``mkdocs build --strict`` then builds the static,
fully offline site. Entry point: :func:`training.export.site.export_site`.
"""

from __future__ import annotations

__all__ = ["export_site", "build_site"]


def __getattr__(name):
    # Lazy: pandas/altair are only needed when exporting.
    if name in __all__:
        from . import site

        return getattr(site, name)
    raise AttributeError(f"module 'training.export' has no attribute {name!r}")
