"""The datasets page (every variant file, how to read it, the artefact examples) and the downloads page."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from generator import CLASSES
from training.evaluation.formats import esc

from .markup import fmt_bytes, render

REBUILD = "rebuild them with the commands on [Methods & reproduce](methods.md)"


def _file_row(entry: dict, href: str | None) -> str:
    name = (
        f'<a href="{esc(href)}"><code>{esc(entry["name"])}</code></a>'
        if href
        else f"<code>{esc(entry['name'])}</code>"
    )
    return (
        f'<tr><td>{name}</td><td>{esc(entry["split"])}</td><td data-sort="{entry["rows"]}">{entry["rows"]}</td>'
        f'<td data-sort="{entry["n_artefact"]}">{entry["n_artefact"]}</td>'
        f'<td data-sort="{entry["bytes"]}">{fmt_bytes(entry["bytes"])}</td><td>{esc(entry["description"])}</td></tr>'
    )


def _details(entry: dict, href: str | None) -> dict[str, str]:
    """What a variant's collapsible block shows, as text for the template."""
    kinds = entry["artefact_counts"]
    return {
        "variant": str(entry["variant"]),
        "rows": str(entry["rows"]),
        "n_artefact": str(entry["n_artefact"]),
        "description": esc(entry["description"]),
        "classes": "".join(f"<td>{entry['class_counts'].get(c, 0)}</td>" for c in CLASSES),
        "kinds": ", ".join(f"{esc(k)} {v}" for k, v in kinds.items() if v) or "none",
        "size": fmt_bytes(entry["bytes"]),
        "bytes": str(entry["bytes"]),
        "sha256": str(entry["sha256"]),
        "content_digest": str(entry["content_digest"]),
        "link": f"[download `{entry['name']}`]({href})"
        if href
        else "not published: build it with the commands on [Methods & reproduce](methods.md)",
    }


def datasets_page(
    manifest: dict,
    recipe: str,
    examples: list[tuple[str, str]],
    download_href: Callable[[dict], str | None],
    cards: Sequence[tuple[str, str]] = (),
) -> str:
    """``download_href(entry) -> str | None``: where a variant file can be downloaded; ``cards``:
    (label, href) of the dataset card and Croissant metadata."""
    files = manifest["files"]
    size = manifest.get("image_size")
    base_url = manifest.get("base_url")
    if base_url:
        where = f"Files download from <{base_url}>."
    elif files and download_href(files[0]):
        where = "Files download from this site (links in the table)."
    else:
        where = f"The files are not published with this site: {REBUILD}."
    if cards:
        where += " Metadata for data hubs: " + " · ".join(f"[{label}]({href})" for label, href in cards) + "."
    examples_html = "".join(
        f'<figure class="ham-example"><img src="{esc(src)}" alt="{esc(kind)} example" data-gallery="examples" '
        f'data-title="{esc(kind)}" data-description="clean (left) and with a {esc(kind)} artefact (right)">'
        f"<figcaption>{esc(kind)}</figcaption></figure>"
        for kind, src in examples
    )
    return render(
        "datasets.md.j2",
        manifest=manifest,
        n_files=len(files),
        size_text=f"{size[0]}×{size[1]} px" if size else "source size",
        where=where,
        rows="".join(_file_row(entry, download_href(entry)) for entry in files),
        recipe=recipe,
        examples=examples_html,
        class_heads="".join(f"<th>{c}</th>" for c in CLASSES),
        details=[_details(entry, download_href(entry)) for entry in files],
    )


def downloads_page(
    downloads: list[tuple[str, str, str]],
    citation_bibtex: str,
    citation_texts: list[str],
    definitions: dict | None = None,
) -> str:
    """``downloads``: (title, csv_href or "", json_href or ""); ``definitions`` from results.json."""
    rows = []
    for title, csv_href, json_href in downloads:
        links = " · ".join(
            f"[{kind}]({href})" for kind, href in (("CSV", csv_href), ("JSON", json_href)) if href
        )
        rows.append(f"| `{title}` | {links} |")
    glossary = ""
    if isinstance(definitions, dict) and definitions:
        glossary = "\n".join(f"`{esc(k)}`\n:   {esc(v)}\n" for k, v in definitions.items())
    return render(
        "downloads.md.j2",
        table="\n".join(rows),
        glossary=glossary,
        texts="\n\n".join(f"    {esc(text)}" for text in citation_texts),
        bibtex=citation_bibtex,
    )
