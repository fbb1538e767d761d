"""Write result tables: CSV plus the same rows as JSON (records), both atomically."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from generator.atomic import atomic_path, write_text_atomic


def write_table(table: pd.DataFrame, out_dir: str | Path, stem: str) -> list[Path]:
    """``<out_dir>/<stem>.csv`` and ``<out_dir>/<stem>.json``; NaN is an empty CSV cell and JSON null."""
    out_dir = Path(out_dir)
    csv_path, json_path = out_dir / f"{stem}.csv", out_dir / f"{stem}.json"
    with atomic_path(csv_path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.10g")
    write_text_atomic(json_path, table.to_json(orient="records", double_precision=10) + "\n")
    return [csv_path, json_path]
