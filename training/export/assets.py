"""Offline assets: the one Vega/Vega-Lite/vega-embed bundle, and the h5py reading recipe."""

from __future__ import annotations

import re
from pathlib import Path

from generator.atomic import write_text_atomic
from generator.errors import UserError

BUNDLE_NAME = "vega-bundle.js"


def vegalite_version() -> str:
    """Altair's Vega-Lite version as "major.minor" (what vl_convert.javascript_bundle accepts)."""
    import altair as alt

    match = re.match(r"v?(\d+)\.(\d+)", alt.SCHEMA_VERSION)
    if not match:
        raise RuntimeError(f"cannot parse altair.SCHEMA_VERSION {alt.SCHEMA_VERSION!r}")
    return f"{match.group(1)}.{match.group(2)}"


def bundle_header() -> str:
    import altair as alt
    import vl_convert as vlc

    version = vlc.__version__  # type: ignore[attr-defined]  # vl-convert's stub omits it
    return (
        f"/*! Vega {vlc.get_vega_version()}, Vega-Lite {vegalite_version()} (altair {alt.__version__}, "
        f"schema {alt.SCHEMA_VERSION}), vega-embed: bundled offline by vl-convert {version}. "
        "Vega, Vega-Lite and vega-embed: BSD-3-Clause, (c) University of Washington Interactive Data Lab. */\n"
    )


def write_vega_bundle(path: Path, reuse: Path | None = None) -> None:
    """Write the bundle matched to altair's Vega-Lite version; reuse an identical earlier one (saves ~5 s)."""
    header = bundle_header()
    if reuse is not None and reuse.is_file():
        with reuse.open(encoding="utf-8") as f:
            if f.readline() == header:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(reuse.read_bytes())
                return
    import vl_convert as vlc

    # the stub makes `snippet` required; at run time it defaults to the one that sets window.vegaEmbed
    bundle = vlc.javascript_bundle(vl_version=vegalite_version())  # type: ignore[call-arg]
    write_text_atomic(path, header + bundle)


def reading_recipe() -> str:
    """The h5py reading recipe, taken verbatim from generator.variants.store's docstring (one source of truth)."""
    from generator.variants import store

    doc = store.__doc__ or ""
    marker = doc.find("Reading needs only")
    if marker < 0:
        raise UserError("generator/variants/store.py: docstring has no 'Reading needs only ...::' recipe")
    lines = doc[marker:].splitlines()[1:]
    recipe: list[str] = []
    for line in lines:
        if not line.strip():
            if recipe:
                break
            continue
        if not line.startswith("    "):
            break
        recipe.append(line[4:])
    if not recipe or len(recipe) > 5:
        raise UserError(
            f"generator/variants/store.py: reading recipe must have 1-5 lines, found {len(recipe)}"
        )
    return "\n".join(recipe)
