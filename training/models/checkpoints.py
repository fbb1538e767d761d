"""Reading and writing checkpoints (``last.pt``, ``best.pt``, ImageNet weights) with errors a user can act on.

torch's own errors name no file: a truncated or garbage checkpoint gives its unpickling text (which even
suggests ``weights_only=False``, the one thing never to do with a file one cannot vouch for), and a full disk
gives "[enforce fail at inline_container.cc] unexpected pos". Here each becomes one line naming the file and
what to do. Loads are always ``weights_only=True``. Writes go to a temporary file renamed into place, so a
failed write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import errno
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

from generator.atomic import atomic_path, is_disk_full
from generator.errors import UserError

# What torch.load raises on a file that is not a whole checkpoint (truncated, garbage, another format).
_DAMAGED = (
    RuntimeError,
    pickle.UnpicklingError,
    EOFError,
    zipfile.BadZipFile,
    ValueError,
    KeyError,
    AttributeError,
)


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu", remedy: str | None = None) -> Any:
    """``torch.load(path, weights_only=True)``; UserError naming the file when it is missing or damaged."""
    import torch

    path = Path(path)
    remedy = remedy or "delete it and train the run again"
    if not path.is_file():
        raise UserError(f"{path}: checkpoint not found ({remedy})")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except _DAMAGED as exc:
        raise UserError(f"{path}: damaged or not a checkpoint ({_detail(exc)}); {remedy}") from exc
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EISDIR, errno.EIO):
            raise UserError(f"{path}: cannot read checkpoint ({exc.strerror or exc})") from exc
        # a truncated zip makes torch's reader seek past the end of the file (EINVAL)
        raise UserError(f"{path}: damaged or not a checkpoint ({exc.strerror or exc}); {remedy}") from exc


def _detail(exc: BaseException) -> str:
    """What torch found wrong, in a few words: its weights-only unpickler's own finding rather than the
    paragraph around it (which suggests ``weights_only=False``)."""
    text = str(exc)
    marker = "WeightsUnpickler error:"
    if marker in text:
        found = next((line.strip() for line in text.split(marker, 1)[1].splitlines() if line.strip()), "")
        return f"refused by the weights-only unpickler: {found[:100]}"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0][:120] if lines else type(exc).__name__


def _disk_full(exc: BaseException) -> bool:
    # torch's zip writer reports a short write as an enforce failure, not as ENOSPC
    return is_disk_full(exc) or (
        isinstance(exc, RuntimeError) and ("unexpected pos" in str(exc) or "file write failed" in str(exc))
    )


def save_checkpoint(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` into a temporary file renamed into place; a full disk is one line naming the path."""
    import torch

    path = Path(path)
    with atomic_path(path, suffix=".pt.partial") as tmp:  # removes the temporary file on any failure
        try:
            torch.save(obj, tmp)
        except (OSError, RuntimeError) as exc:
            if _disk_full(exc):
                raise UserError(
                    f"{path}: no space left on device (checkpoint not written; the previous one is intact)"
                ) from None
            if isinstance(exc, OSError):
                raise UserError(f"{path}: cannot write checkpoint ({exc.strerror or exc})") from exc
            raise
