"""An advisory lock per output folder, so that two ``fetch`` or ``generate`` runs (or several DataLoader
/ DDP processes calling ``HAMArtefacts(download=True)``) never write into one folder at once.

The lock is ``fcntl.flock`` on ``<folder>/.ham-artefacts.lock``: the kernel drops it when its holder
exits, even after kill -9, so a crash never leaves a stale lock. The file is removed on release; a
waiter that wins the lock on a file removed meanwhile notices (another inode now sits at the path)
and tries again, so two holders can never coexist.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from .errors import UserError
from .userio import printable

LOCK_NAME = ".ham-artefacts.lock"
DEFAULT_WAIT_S = 10.0


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, what: str, wait: float = DEFAULT_WAIT_S, poll: float = 0.1):
    """Hold ``<folder>/.ham-artefacts.lock`` for the block; wait up to ``wait`` seconds for another
    holder, then raise UserError naming the folder (and the holder's pid when it is known)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no advisory locks, run unguarded as before
        yield
        return
    path = Path(folder) / LOCK_NAME
    deadline = time.monotonic() + max(wait, 0.0)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            if time.monotonic() >= deadline:
                pid, _, holder_what = holder.partition(" ")
                by = f" by process {pid}" if pid.isdigit() else ""
                raise UserError(
                    f"{folder}: in use{by} (a {printable(holder_what or 'fetch or generate', 40)} "
                    f"run is writing into it); wait for it to finish or choose another folder"
                ) from None
            time.sleep(poll)
            continue
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # the previous holder removed the file between our open and our flock
            os.close(fd)
            continue
        break
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {what}\n".encode())
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        os.close(fd)  # closing releases the flock


def _read_holder(fd: int) -> str:
    """ "<pid> <what>" as the holder wrote it ("" while it has not yet)."""
    try:
        return os.pread(fd, 64, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
