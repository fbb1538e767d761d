"""Write-to-temporary-then-rename helpers, so readers never see a half-written file; a full disk is
one :class:`~generator.errors.UserError` naming the file ("no space left on device"), not an OSError
deep inside a library (HDF5 reports it as a RuntimeError mentioning errno 28)."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from pathlib import Path

from .errors import UserError
from .userio import printable

_DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
_DISK_FULL_TEXTS = tuple(f"errno = {code}," for code in _DISK_FULL_ERRNOS) + (
    os.strerror(errno.ENOSPC),
    os.strerror(errno.EDQUOT),
)


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk (or the user's quota) is full: an OSError with ENOSPC/EDQUOT, or
    an HDF5 error (OSError or RuntimeError) whose text carries that errno."""
    if isinstance(exc, OSError) and exc.errno in _DISK_FULL_ERRNOS:
        return True
    return isinstance(exc, OSError | RuntimeError) and any(text in str(exc) for text in _DISK_FULL_TEXTS)


def disk_full_error(path: str | os.PathLike) -> UserError:
    """The one message of a full disk while writing ``path``."""
    return UserError(
        f"{printable(os.fspath(path))}: no space left on device (free some space, then run the same "
        "command again: finished files are kept)"
    )


@contextlib.contextmanager
def disk_full_names(path: str | os.PathLike):
    """Turn a full-disk error raised in the block into :func:`disk_full_error` of ``path``."""
    try:
        yield
    except (OSError, RuntimeError) as exc:
        if is_disk_full(exc):
            raise disk_full_error(path) from None
        raise


def require_free_space(folder: str | os.PathLike, need_bytes: int, what: str) -> None:
    """UserError when ``folder``'s file system has less than ``need_bytes`` free (a cheap check before
    a long write; the writes themselves still map a full disk to :func:`disk_full_error`)."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return  # cannot tell: the writes will say so if it does not fit
    if free < need_bytes:
        raise UserError(
            f"{printable(os.fspath(folder))}: no space left for {what}: it needs about "
            f"{_size(need_bytes)}, {_size(free)} free"
        )


def _size(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".partial"):
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    On any failure the temporary file is removed; a full disk is :func:`disk_full_error` of ``path``.
    """
    path = Path(path)
    with disk_full_names(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            yield tmp
            # mkstemp creates 0600 files; published datasets must be readable by a web server's user.
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike, obj) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")
