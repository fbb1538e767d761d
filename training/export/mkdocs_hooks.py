"""MkDocs hook: read the export's flags (generated/site.json) into ``config.extra``.

The theme override shows the synthetic-data banner on every page when ``extra.synthetic`` is true.
A build without a prior ``ham-artefacts export`` fails with a message that says so. The hand-written
methods page gets the export's instrument-check result where it holds the marker. The command-line
reference page is rendered from the real parser at every build (never written into site/), so it
cannot drift from the code.
"""

from __future__ import annotations

import json
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

# Defined here because MkDocs loads this file by path, without its package (the export imports these).
INSTRUMENT_MARKER = "<!-- ham:instrument-check -->"  # where methods.md shows the instrument check
INSTRUMENT_PART = "instrument_check.md.part"  # under generated/; not .md, so MkDocs makes no page of it


def on_config(config, **kwargs):
    flags = Path(config["docs_dir"]) / "generated" / "site.json"
    if not flags.is_file():
        raise PluginError(f"{flags}: not found; run `ham-artefacts export --results DIR --data DIR` first")
    info = json.loads(flags.read_text(encoding="utf-8"))
    config["extra"]["synthetic"] = bool(info.get("synthetic"))
    return config


def on_files(files, config, **kwargs):
    # Imported here: MkDocs loads this file by path, and the reference needs the whole CLI parser.
    from training.export.cli_reference import CLI_PAGE, render_cli_reference

    files.append(File.generated(config, CLI_PAGE, content=render_cli_reference()))
    return files


def on_page_markdown(markdown, page, config, files, **kwargs):
    if INSTRUMENT_MARKER not in markdown:
        return markdown
    part = Path(config["docs_dir"]) / "generated" / INSTRUMENT_PART
    if not part.is_file():
        raise PluginError(f"{part}: not found; run `ham-artefacts export --results DIR --data DIR` again")
    return markdown.replace(INSTRUMENT_MARKER, part.read_text(encoding="utf-8"))
