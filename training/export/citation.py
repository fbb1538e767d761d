"""Citation box from CITATION.cff: a plain-text reference and BibTeX for the project and its papers."""

from __future__ import annotations

import re
from pathlib import Path

from generator.errors import UserError


def load_cff(path: str | Path) -> dict:
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"{path}: cannot read citation file ({exc})") from None
    if not isinstance(data, dict) or "title" not in data:
        raise UserError(f"{path}: not a CITATION.cff (no title)")
    return data


def _names(authors) -> list[str]:
    out = []
    for author in authors or []:
        if "family-names" in author:
            out.append(f"{author['family-names']}, {author.get('given-names', '')}".strip(", "))
        elif "name" in author:
            out.append(str(author["name"]))
    return out


def _short_names(authors) -> str:
    parts = []
    for author in authors or []:
        if "family-names" in author:
            initials = "".join(p[0] for p in str(author.get("given-names", "")).split() if p)
            parts.append(f"{author['family-names']} {initials}".strip())
        elif "name" in author:
            parts.append(str(author["name"]))
    return ", ".join(parts)


def _key(entry: dict) -> str:
    authors = entry.get("authors") or [{}]
    first = authors[0].get("family-names") or authors[0].get("name") or "anon"
    word = re.sub(r"[^a-z0-9]", "", str(first).lower().split()[0]) or "anon"
    return f"{word}{entry.get('year', '')}"


def _bibtex(entry: dict, kind: str) -> str:
    fields = [("title", entry.get("title")), ("author", " and ".join(_names(entry.get("authors"))))]
    if kind == "article":
        fields += [
            ("journal", entry.get("journal")),
            ("year", entry.get("year")),
            ("volume", entry.get("volume")),
            ("number", entry.get("issue")),
            ("pages", entry.get("start")),
            ("doi", entry.get("doi")),
        ]
    else:
        fields += [
            ("version", entry.get("version")),
            ("year", entry.get("year")),
            ("url", entry.get("url")),
            ("note", "Software"),
        ]
    body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields if value not in (None, ""))
    return f"@{kind}{{{_key(entry) if kind == 'article' else 'hamartefacts'},\n{body}\n}}"


def _text(entry: dict) -> str:
    parts = [_short_names(entry.get("authors")), str(entry.get("title", "")).rstrip(".")]
    if entry.get("journal"):
        volume = (
            f"{entry.get('volume', '')}({entry['issue']})"
            if entry.get("issue")
            else str(entry.get("volume", ""))
        )
        parts.append(f"{entry['journal']}. {entry.get('year', '')};{volume}:{entry.get('start', '')}")
    if entry.get("doi"):
        parts.append(f"doi:{entry['doi']}")
    return ". ".join(p for p in parts if p) + "."


def citation_box(path: str | Path) -> tuple[str, list[str]]:
    """Return (BibTeX of the project + preferred citation + references, plain-text citations)."""
    cff = load_cff(path)
    entries, texts = [_bibtex(cff, "software")], [f"{_text(cff)} Version {cff.get('version', '')}."]
    for entry in ([cff["preferred-citation"]] if cff.get("preferred-citation") else []) + list(
        cff.get("references") or []
    ):
        entries.append(_bibtex(entry, "article"))
        texts.append(_text(entry))
    return "\n\n".join(entries), texts
