"""How the report writes its numbers, so that a value reads the same in every sentence and table.

Table cells arrive as whatever pandas read (NumPy scalars, NaN for an empty cell, text); :func:`number`
and :func:`text` turn a cell into a float (None when there is no number) or a string, and the
formatters write "—" for a number that is not there.
"""

from __future__ import annotations

import html
import math
from decimal import ROUND_HALF_UP, Decimal
from typing import SupportsFloat

DASH = "—"
"""What a table or sentence shows for a number this run does not have."""


def number(value: object) -> float | None:
    """A cell as a float; None when it is empty, NaN or not a number."""
    if not isinstance(value, SupportsFloat) or isinstance(value, str):
        return None
    result = float(value)
    return None if math.isnan(result) else result


def text(value: object) -> str:
    """A cell as text; "" when it is empty (NaN)."""
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def fmt(value: float | None, digits: int = 3, sign: bool = False) -> str:
    if value is None or math.isnan(value):
        return DASH
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def fmt_int(value: object) -> str:
    whole = number(value)
    return DASH if whole is None else str(int(whole))


def fmt_p(value: float | None) -> str:
    if value is None or math.isnan(value):
        return DASH
    return f"{value:.2e}" if value < 1e-3 else f"{value:.4f}"


def fmt_pp(value: object, digits: int = 1, sign: bool = True) -> str:
    """Percentage points for prose and tables ("—" when undefined)."""
    points = number(value)
    return fmt(points, digits, sign) + ("" if points is None else " pp")


def fmt_interval(lo: object, hi: object, digits: int = 1) -> str:
    low, high = number(lo), number(hi)
    if low is None or high is None:
        return "no interval"
    return f"[{low:+.{digits}f}, {high:+.{digits}f}]"


def two_digits(value: float) -> str:
    """Rounded half up as a reader would (0.155 -> 0.16; binary floats would give 0.15)."""
    return str(Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def esc(value: object) -> str:
    """Text for the HTML inside the pages' Markdown."""
    return html.escape(str(value), quote=True)
