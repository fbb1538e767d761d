"""The one parser of `--size WxH`, shared by synth-ham10000 and generate."""

from __future__ import annotations

from .errors import UserError

MIN_SIDE = 32
MAX_SIDE = 4096


def parse_size(text: str | None) -> tuple[int, int] | None:
    """'WxH' -> (W, H); None passes through; UserError unless both sides are in [32, 4096]."""
    if text is None:
        return None
    try:
        w, h = (int(v) for v in str(text).strip().lower().split("x"))
    except ValueError:
        raise UserError(f"--size: expected WxH such as 600x450, got {text!r}") from None
    if not (MIN_SIDE <= w <= MAX_SIDE and MIN_SIDE <= h <= MAX_SIDE):
        raise UserError(f"--size: width and height must be between {MIN_SIDE} and {MAX_SIDE}, got {text!r}")
    return w, h
