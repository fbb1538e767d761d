"""Reading the HAM10000 tables: the metadata, and the test ground truth in either format (HAM
metadata columns, or the ISIC challenge one-hot table). Every problem is a UserError naming the file
and row; an implausible age is stored as unknown, with one counted warning per file."""

from __future__ import annotations

import csv
import io
import logging
import math
import re
from pathlib import Path

from .. import CLASSES
from ..errors import UserError
from .layout import AGE_RANGE, ONEHOT_COLUMNS, REQUIRED_COLUMNS

logger = logging.getLogger(__name__)


def read_table(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header (stripped) and (line number, values) rows of a comma- or tab-separated file."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not a UTF-8 text table ({exc.reason})") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from None
    lines = text.splitlines()
    header_line = next((ln for ln in lines if ln.strip()), None)
    if header_line is None:
        raise UserError(f"{path}: empty file (expected a header row)")
    delimiter = "\t" if "\t" in header_line else ","
    reader = csv.reader(
        io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"', skipinitialspace=True
    )
    header: list[str] | None = None
    rows: list[tuple[int, list[str]]] = []
    try:
        for values in reader:
            if not any(v.strip() for v in values):
                continue
            values = [v.strip() for v in values]
            if header is None:
                header = values
            else:
                rows.append((reader.line_num, values))
    except csv.Error as exc:
        raise UserError(f"{path}, line {reader.line_num}: malformed table ({exc})") from None
    assert header is not None
    return header, rows


def _rows_as_dicts(path: Path, header: list[str], rows, required: tuple[str, ...]):
    lower = [h.lower() for h in header]
    missing = [c for c in required if c.lower() not in lower]
    if missing:
        raise UserError(
            f"{path}: missing required column(s) {', '.join(missing)} (found: {', '.join(header) or 'none'})"
        )
    for line, values in rows:
        if len(values) != len(header):
            raise UserError(f"{path}, row {line}: expected {len(header)} fields, found {len(values)}")
        yield line, dict(zip(lower, values, strict=True))


def _check_new_id(path: Path, line: int, image_id: str, seen: dict[str, int], column: str) -> None:
    """``image_id`` well formed and not listed before (``seen``: id -> row, updated)."""
    if not re.fullmatch(r"ISIC_\d+", image_id):
        raise UserError(
            f"{path}, row {line}: malformed image_id {image_id!r} (expected ISIC_ followed by digits)"
        )
    if image_id in seen:
        raise UserError(
            f"{path}, row {line}: duplicate {column} {image_id} (first listed at row {seen[image_id]})"
        )
    seen[image_id] = line


def _plausible_age(path: Path, line: int, age: str) -> bool:
    """Whether ``age`` (non-empty) is a plausible age; UserError when it is not a number at all."""
    try:
        value = float(age)
    except ValueError:
        raise UserError(
            f"{path}, row {line}: age {age!r} is not a number (leave it empty if unknown)"
        ) from None
    return math.isfinite(value) and AGE_RANGE[0] <= value <= AGE_RANGE[1]


def parse_ham_rows(path: Path, header, rows) -> list[tuple[int, dict]]:
    """Validated HAM10000-metadata rows: known dx, unique image_id, numeric or empty age.

    An age outside AGE_RANGE (negative, inf, 1e308...) becomes empty (stored as NaN), counted in
    one warning naming the file and the first such row."""
    out = []
    seen: dict[str, int] = {}
    implausible: list[tuple[int, str]] = []
    for line, row in _rows_as_dicts(path, header, rows, REQUIRED_COLUMNS):
        image_id = row["image_id"]
        _check_new_id(path, line, image_id, seen, "image_id")
        dx = row["dx"].lower()
        if dx not in CLASSES:
            raise UserError(
                f"{path}, row {line} ({image_id}): unknown dx {row['dx']!r} (expected one of {', '.join(CLASSES)})"
            )
        if not row["lesion_id"]:
            raise UserError(f"{path}, row {line} ({image_id}): empty lesion_id")
        if row["age"] and not _plausible_age(path, line, row["age"]):
            implausible.append((line, row["age"]))
            row["age"] = ""
        row["dx"] = dx
        out.append((line, row))
    if not out:
        raise UserError(f"{path}: no data rows")
    if implausible:
        line, age = implausible[0]
        low, high = AGE_RANGE
        logger.warning(
            f"{path}: {len(implausible)} implausible age(s) (first: row {line}, {age!r}; expected "
            f"{low:g} to {high:g}) stored as unknown (NaN)"
        )
    return out


def parse_onehot_rows(path: Path, header, rows) -> list[tuple[int, dict]]:
    """ISIC 2018 Task 3 ground truth (image,MEL,NV,...): one 1.0 per row, turned into HAM-style rows."""
    out = []
    seen: dict[str, int] = {}
    for line, row in _rows_as_dicts(path, header, rows, ONEHOT_COLUMNS):
        image_id = row["image"]
        _check_new_id(path, line, image_id, seen, "image")
        try:
            scores = {c: float(row[c.lower()]) for c in ONEHOT_COLUMNS[1:]}
        except ValueError:
            raise UserError(f"{path}, row {line} ({image_id}): class columns must be 0 or 1") from None
        hot = [c for c, v in scores.items() if v == 1.0]
        if len(hot) != 1 or any(v not in (0.0, 1.0) for v in scores.values()):
            raise UserError(f"{path}, row {line} ({image_id}): expected exactly one class column set to 1")
        dx = hot[0].lower()
        out.append(
            (
                line,
                {
                    "lesion_id": "",
                    "image_id": image_id,
                    "dx": dx,
                    "dx_type": "",
                    "age": "",
                    "sex": "",
                    "localization": "",
                    "dataset": "",
                },
            )
        )
    if not out:
        raise UserError(f"{path}: no data rows")
    return out


def pick_ground_truth(tables: list[Path]) -> tuple[Path, str, list[tuple[int, dict]]] | None:
    """The test ground-truth table among the ISIC2018_Task3_Test_* files (other tables are ignored)."""
    recognised = []
    for path in tables:
        header, rows = read_table(path)
        cols = {h.lower() for h in header}
        if {c.lower() for c in ONEHOT_COLUMNS} <= cols:
            recognised.append((path, "onehot", header, rows))
        elif set(REQUIRED_COLUMNS) <= cols:
            recognised.append((path, "ham", header, rows))
    if not recognised:
        return None
    # Prefer a file that says it is the ground truth, then the HAM format (it has lesion ids).
    recognised.sort(key=lambda t: ("groundtruth" not in t[0].name.lower(), t[1] != "ham", str(t[0])))
    path, fmt, header, rows = recognised[0]
    parsed = parse_ham_rows(path, header, rows) if fmt == "ham" else parse_onehot_rows(path, header, rows)
    return path, fmt, parsed
