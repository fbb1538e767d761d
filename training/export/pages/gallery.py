"""The Grad-CAM gallery: each image clean and with its artefact, and the attention on the artefact."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from training.evaluation.formats import esc, fmt, number
from training.models import arch_label

from .markup import render

GALLERY_PER_GROUP = 12


def gallery_rows(index: pd.DataFrame, per_group: int = GALLERY_PER_GROUP) -> pd.DataFrame:
    """The Grad-CAM rows the gallery shows: the first ``per_group`` of each (arch, training variant)."""
    return index.groupby(["arch", "train_variant"], sort=False).head(per_group)


def _pair(row: Any, arch: str, train: str, image_href: Callable[[str], str]) -> str:
    """One image's figure: clean and with its artefact side by side, in the lightbox group of its model."""
    image_id, dx, kind = str(row.image_id), str(row.dx), str(row.kind)  # a row of gradcam/index
    title = f"{image_id} ({dx}, {kind})"
    attention_clean = fmt(number(row.attention_clean), 3)
    attention_artefact = fmt(number(row.attention_artefact), 3)
    figures = []
    for label, path, value in (
        ("clean", row.clean_png, attention_clean),
        ("with artefact", row.artefact_png, attention_artefact),
    ):
        desc = f"{arch_label(arch)}, {train}: {label}; attention on artefact {value}"
        figures.append(
            f'<img src="{esc(image_href(str(path)))}" alt="{esc(title)} {label}" loading="lazy" '
            f'data-gallery="{esc(f"{arch}-{train}")}" data-title="{esc(title)} — {label}" '
            f'data-description="{esc(desc)}">'
        )
    return (
        f'<figure class="ham-pair"><div class="ham-pair__images">{"".join(figures)}</div>'
        f"<figcaption><strong>{esc(image_id)}</strong> · {esc(dx)} · {esc(kind)}<br>"
        f"attention on artefact: clean {attention_clean} → "
        f"with artefact <strong>{attention_artefact}</strong></figcaption></figure>"
    )


def gallery_page(
    index: pd.DataFrame | None,
    archs: list[str],
    image_href: Callable[[str], str],
    attention_chart: str | None,
    per_group: int = GALLERY_PER_GROUP,
) -> str:
    """``image_href(path_in_results) -> str`` maps a PNG of the results folder to its site path."""
    if index is None or index.empty:
        return render("gallery.md.j2", sections=None)
    sections = []
    for arch in archs:
        arch_rows = index[index["arch"] == arch]
        if arch_rows.empty:
            continue
        groups = []
        for train, rows in arch_rows.groupby("train_variant", sort=False):
            shown = rows.head(per_group).itertuples(index=False)
            groups.append(
                {
                    "train": str(train),
                    "total": len(rows),
                    "figures": [_pair(row, arch, str(train), image_href) for row in shown],
                }
            )
        sections.append({"label": arch_label(arch), "groups": groups})
    return render(
        "gallery.md.j2",
        sections=sections,
        without=", ".join(arch_label(a) for a in archs if a not in set(index["arch"])),
        attention_chart=attention_chart,
        per_group=per_group,
    )
