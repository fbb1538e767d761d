"""The pages' building blocks: the template environment and the HTML that Markdown cannot express
(table cells with data-sort values, chart containers with their inline Vega-Lite spec, notes)."""

from __future__ import annotations

import functools
import json
from typing import Any

import jinja2

from training.evaluation.formats import esc, fmt_interval, fmt_pp, number


@functools.cache
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("training.export", "templates"),
        # The templates are Markdown, not HTML: what a page puts into its HTML is escaped where it is
        # put there (``| esc``, or by the module that built the fragment), as MkDocs would not.
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["esc"] = esc
    return environment


def render(template: str, **context: Any) -> str:
    """A page (or section) from its template in ``training/export/templates``."""
    return _environment().get_template(template).render(**context)


def not_available(title: str, text: str) -> str:
    """A visible note in place of a chart or table that this run has no data for."""
    return f'!!! note "{esc(title)}"\n    {text}\n'


def chart_block(chart_id: str, spec: dict, spec_href: str, caption: str) -> str:
    """A chart container: the spec travels inline (works from file:// too), the loader renders it."""
    payload = json.dumps(spec, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    return (
        f'<figure class="ham-figure">\n'
        f'<div class="ham-chart" id="{esc(chart_id)}"><script type="application/json">{payload}</script></div>\n'
        f'<figcaption>{esc(caption)} <a href="{esc(spec_href)}" download>Vega-Lite spec (JSON)</a></figcaption>\n'
        f"</figure>\n"
    )


def pp_ci(value: object, lo: object, hi: object) -> str:
    """A table cell's value in percentage points with its interval below ("—" when undefined)."""
    if number(value) is None:
        return "—"
    return f'{fmt_pp(value)}<br><span class="ham-ci">{fmt_interval(lo, hi)}</span>'


def td(text: str, sort_value: object = None, cls: str = "") -> str:
    """A table cell; ``sort_value`` becomes its data-sort attribute (empty when the number is NaN)."""
    attrs = ""
    if sort_value is not None:
        value = number(sort_value)
        attrs += f' data-sort="{"" if value is None else repr(value)}"'
    if cls:
        attrs += f' class="{cls}"'
    return f"<td{attrs}>{text}</td>"


def head_row(labels: list[str] | tuple[str, ...], sort_methods: tuple[str, ...] = ()) -> str:
    """The header cells of a table (with data-sort-method per column when given)."""
    if sort_methods:
        return "".join(
            f'<th data-sort-method="{m}">{h}</th>' for h, m in zip(labels, sort_methods, strict=True)
        )
    return "".join(f"<th>{h}</th>" for h in labels)


def table(head: str, body: list[str], classes: str = "ham-controls") -> str:
    """A table of header cells and body rows inside the div the site's CSS (and sorter) styles."""
    return (
        f'<div class="{classes}"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>\n"
    )


def fmt_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
