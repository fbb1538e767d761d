"""What crosses the boundary with the user: JSON read from their files, text echoed to their terminal.

* :func:`parse_json` / :func:`read_json`: any malformed document (bad syntax, bad UTF-8, nesting deep
  enough to exhaust the recursion limit, integers past Python's digit limit) becomes one
  :class:`~generator.errors.UserError` naming the file.
* :func:`refuse_non_folder`: an output path that exists as a file is one UserError naming the
  option, checked before any work (not after minutes of it).
* :func:`printable`: text from a manifest or a server (descriptions, licences, file names, URLs) with
  control characters escaped, so a hostile manifest cannot drive the terminal, and shortened, so a
  10,000-character name does not flood it.
"""

from __future__ import annotations

import json
import os
import unicodedata

from .errors import UserError

ECHO_LIMIT = 120  # characters of a name or URL echoed in a message


def parse_json(data: bytes | str, where: str):
    """``json.loads(data)``, or UserError naming ``where``."""
    try:
        if isinstance(data, bytes):
            data = data.decode("utf-8")
        return json.loads(data)
    except RecursionError:
        raise UserError(f"{where}: JSON nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{where}: not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise UserError(
            f"{where}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    except ValueError as exc:  # e.g. an integer longer than sys.get_int_max_str_digits()
        raise UserError(f"{where}: not usable JSON ({printable(str(exc))})") from None


def read_json(path: str | os.PathLike, where: str | None = None):
    """Parse the JSON file ``path``; UserError naming it when it is missing, unreadable or malformed."""
    where = where or printable(os.fspath(path))
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise UserError(f"{where}: cannot read ({exc.strerror or exc})") from None
    return parse_json(data, where)


def refuse_non_folder(path: str | os.PathLike, flag: str = "--out") -> None:
    """UserError when ``path`` exists and is not a folder (where a command will write its output)."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise UserError(f"{flag}: {printable(os.fspath(path))} exists and is not a folder")


def printable(text, limit: int | None = ECHO_LIMIT) -> str:
    """``text`` safe to print: control and format characters (ESC, CR, NUL, bidi overrides...) escaped
    as ``\\xNN`` / ``\\uNNNN``; longer than ``limit`` characters: the head and tail around an ellipsis."""
    text = str(text)
    if limit is not None and len(text) > limit:
        keep = max(limit - 1, 2)
        text = text[: keep - keep // 3] + "\u2026" + text[len(text) - keep // 3 :]
    return "".join(
        ch if ch in "\n\t" and limit is None or unicodedata.category(ch)[0] != "C" else ascii(ch)[1:-1]
        for ch in text
    )
