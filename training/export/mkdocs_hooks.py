"""MkDocs hook: read the export's flags (generated/site.json) into ``config.extra``.

The theme override shows the synthetic-data banner on every page when ``extra.synthetic`` is true.
A build without a prior ``ham-artefacts export`` fails with a message that says so.
"""

from __future__ import annotations

import json
from pathlib import Path

from mkdocs.exceptions import PluginError


def on_config(config, **kwargs):
    flags = Path(config["docs_dir"]) / "generated" / "site.json"
    if not flags.is_file():
        raise PluginError(f"{flags}: not found; run `ham-artefacts export --results DIR --data DIR` first")
    info = json.loads(flags.read_text(encoding="utf-8"))
    config["extra"]["synthetic"] = bool(info.get("synthetic"))
    return config
