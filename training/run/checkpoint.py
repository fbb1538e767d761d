"""A run folder's record of its progress: config.json, folds.csv, log.jsonl, last.pt, best.pt and DONE.

:class:`Checkpointer` writes them (rank 0 only under torchrun), resumes from ``last.pt`` and refuses a
folder that holds a run of another configuration, finished or not, or an unfinished run started on
other data, so that a resumed sweep whose profile or data changed never mixes old epochs or old
results into new ones. :func:`run_folder_lock` keeps a second process out of a folder being written.
:class:`StopRequest` turns SIGTERM / SIGINT into a stop at the next epoch boundary, after a checkpoint.

Every file here that cannot be read or written is one UserError naming it: checkpoints go through
:mod:`training.models.checkpoints` (weights-only loads, atomic writes that keep the previous
``last.pt`` on a full disk), config.json through ``generator.userio.read_json``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from generator.atomic import write_json_atomic, write_text_atomic
from generator.errors import UserError
from training.models.checkpoints import load_checkpoint, save_checkpoint
from training.run.config import DATA_RECORD, DONE_NAME, RUN_LOCK_WAIT_S, TrainConfig, comparable
from training.run.distributed import Dist, unwrap

logger = logging.getLogger(__name__)

_HELD = threading.local()
"""``folders``: the run folders whose lock this thread holds (sweep run takes it, then train again)."""
RESTART = "delete it to train the run from its first epoch"
"""What to do about a damaged last.pt."""


class RunFolderBusy(UserError):
    """Another process holds the run folder's lock (``sweep run --all`` skips such a job)."""


@contextlib.contextmanager
def run_folder_lock(run_dir: str | os.PathLike, wait: float = RUN_LOCK_WAIT_S) -> Iterator[None]:
    """One writer per run folder: ``<run_dir>/.ham-artefacts.lock`` (``generator.lock.folder_lock``, as
    fetch and generate take theirs) held for the block. Another process holding it is waited for
    ``wait`` seconds, then RunFolderBusy names it. Re-entrant within a thread; under torchrun only
    rank 0 takes it (the other ranks write nothing, and would wait for rank 0 forever)."""
    from generator.lock import folder_lock

    folder = Path(run_dir).resolve()
    held: set[Path] = _HELD.__dict__.setdefault("folders", set())
    if folder in held or int(os.environ.get("RANK", "0")) != 0:
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(folder_lock(folder, "train", wait=wait))
        except UserError as exc:
            raise RunFolderBusy(str(exc)) from None
        held.add(folder)
        try:
            yield
        finally:
            held.discard(folder)


@dataclass
class TrainState:
    """Where the loop stands: saved in last.pt beside the weights, so a resumed run continues the same
    early-stopping count."""

    epoch: int = 0
    """Epochs finished."""
    best_metric: float = -math.inf
    """The best validation macro PR-AUC so far (best.pt holds that epoch's weights)."""
    best_epoch: int = -1
    epochs_without_improvement: int = 0

    def end_epoch(self, metric: float) -> bool:
        """Count one finished epoch with validation ``metric``; returns whether it is the best so far."""
        self.epoch += 1
        improved = metric > self.best_metric
        if improved:
            self.best_metric, self.best_epoch, self.epochs_without_improvement = metric, self.epoch, 0
        else:
            self.epochs_without_improvement += 1
        return improved


def _rng_state(device: torch.device) -> dict:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, device: torch.device) -> None:
    # torch.set_rng_state / torch.cuda.set_rng_state take CPU ByteTensors only (TypeError otherwise),
    # whatever device a checkpoint's tensors were mapped to.
    torch.set_rng_state(state["torch"].cpu())
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)


def resume_from(path: Path, model, optimizer, scheduler, device: torch.device) -> dict:
    """Load ``last.pt`` into the model, optimizer, scheduler and RNGs; returns the loop state.

    Everything loads to the CPU first (the RNG states must stay there; load_state_dict copies the
    weights and the optimizer state onto their parameters' device), so a checkpoint written on any
    device resumes on any other.
    """
    checkpoint = load_checkpoint(path, map_location="cpu", remedy=RESTART)
    try:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        _set_rng_state(checkpoint["rng"], device)
        return {
            k: checkpoint[k] for k in ("epoch", "best_metric", "best_epoch", "epochs_without_improvement")
        }
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:  # a checkpoint of another run or model
        detail = " ".join(str(exc).split())[:120] or type(exc).__name__
        raise UserError(f"{path}: not a checkpoint of this run ({detail}); {RESTART}") from None


def _refuse_other_configuration(run_dir: Path, what: str, changed: list[str]) -> None:
    """UserError naming the fields in which the run in ``run_dir`` differs, if any."""
    if changed:
        raise UserError(
            f"{run_dir}: holds {what} with another configuration ({', '.join(changed)}; "
            "remove the run folder, or write the runs to another folder)"
        )


def finished_summary(config: TrainConfig, run_dir: str | os.PathLike) -> dict | None:
    """DONE's summary when ``run_dir`` holds a finished run of ``config`` (see :meth:`Checkpointer.finished`)."""
    return Checkpointer(run_dir).finished(config)


class Checkpointer:
    """The files of one run folder. Only rank 0 writes (``dist``); every rank reads ``last.pt``."""

    def __init__(self, run_dir: str | os.PathLike, dist: Dist | None = None):
        self.run_dir = Path(run_dir)
        self.dist = dist or Dist()
        self.config_file = self.run_dir / "config.json"
        self.log_file = self.run_dir / "log.jsonl"
        self.last = self.run_dir / "last.pt"
        self.best = self.run_dir / "best.pt"
        self.done = self.run_dir / DONE_NAME
        self.saved_epoch = 0
        """The epoch last.pt holds."""

    def finished(self, config: TrainConfig) -> dict | None:
        """DONE's summary when the folder holds a finished run of ``config``, None when it holds no
        finished run; UserError when the finished run had another configuration (its config.json
        differs in a field of the experiment)."""
        from generator.userio import read_json

        if not self.done.is_file():
            return None
        if self.config_file.exists():  # a bare DONE marker (no record at all) still counts as finished
            if not self.config_file.is_file():
                raise UserError(
                    f"{self.config_file}: not a file beside DONE; remove the run folder to train it again"
                )
            recorded = self._recorded()
            wanted = json.loads(json.dumps(comparable(asdict(config))))  # as config.json stores it
            # only the TrainConfig fields: config.json also records resolved ones (pretrained, world_size)
            # and what the run read (DATA_RECORD): a finished run recorded before that is still this run
            changed = sorted(k for k, v in wanted.items() if recorded.get(k) != v)
            _refuse_other_configuration(self.run_dir, "a finished run", changed)
        summary = read_json(self.done)
        if not isinstance(summary, dict):
            raise UserError(f"{self.done}: not a run summary (remove the run folder to train it again)")
        return summary

    def _recorded(self) -> dict:
        """config.json as the run wrote it; UserError naming it when it is damaged."""
        from generator.userio import read_json

        recorded = read_json(self.config_file)
        if not isinstance(recorded, dict):
            raise UserError(
                f"{self.config_file}: not a run configuration (remove the run folder to train it again)"
            )
        return recorded

    def begin(self, record: dict, folds_csv: str) -> None:
        """Record the run's configuration, the data it reads (``record[DATA_RECORD]``) and its folds;
        refuses a folder whose unfinished run (a last.pt) was started with another configuration or on
        other data."""
        from generator.variants.verified import refuse_other_data

        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            if self.last.is_file() and self.config_file.is_file():
                recorded = self._recorded()
                previous, current = comparable(recorded), comparable(record)
                changed = sorted(
                    k for k in previous.keys() | current.keys() if previous.get(k) != current.get(k)
                )
                _refuse_other_configuration(self.run_dir, "a run", changed)
                if DATA_RECORD in record:
                    refuse_other_data(recorded.get(DATA_RECORD), record[DATA_RECORD], self.run_dir)
            write_json_atomic(self.config_file, record)
            write_text_atomic(self.run_dir / "folds.csv", folds_csv)
        self.dist.barrier()

    def resume(self, model, optimizer, scheduler, device: torch.device) -> TrainState:
        """The state of ``last.pt`` loaded into the model, optimizer, scheduler and RNGs, or a fresh one.
        Log lines of epochs the checkpoint does not hold (written just before a kill) are dropped."""
        if not self.last.is_file():
            if self.dist.is_main:
                self._truncate_log(0)  # epochs logged before a kill that came before the first last.pt
            return TrainState()
        state = TrainState(**resume_from(self.last, model, optimizer, scheduler, device))
        if self.dist.is_main:
            self._truncate_log(state.epoch)
        self.saved_epoch = state.epoch
        logger.info("%s: resuming after epoch %d (last.pt)", self.run_dir, state.epoch)
        return state

    def save_last(self, model, optimizer, scheduler, device: torch.device, state: TrainState) -> None:
        if self.dist.is_main:
            save_checkpoint(
                {
                    "model": unwrap(model).state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "rng": _rng_state(device),
                    **asdict(state),
                },
                self.last,
            )
        self.saved_epoch = state.epoch

    def save_best(self, model) -> None:
        if self.dist.is_main:
            save_checkpoint(unwrap(model).state_dict(), self.best)

    def load_best(self, model, device: torch.device) -> None:
        state = load_checkpoint(
            self.best, map_location=device, remedy="delete it and last.pt to train the run again"
        )
        unwrap(model).load_state_dict(state)

    def log_epoch(self, record: dict) -> None:
        if self.dist.is_main:
            try:
                with open(self.log_file, "a", encoding="utf-8") as log:
                    log.write(json.dumps(record) + "\n")
            except OSError as exc:
                what = "no space left on device" if exc.errno == errno.ENOSPC else exc.strerror or str(exc)
                raise UserError(f"{self.log_file}: {what} (epoch {record.get('epoch')} not logged)") from None

    def mark_done(self, summary: dict) -> None:
        """DONE means "ready for evaluation"; the caller checks the prediction tables first."""
        if self.dist.is_main:
            write_json_atomic(self.done, summary)

    def _truncate_log(self, epochs_done: int) -> None:
        """Keep the log lines of the epochs last.pt holds. A last line cut short (a kill while it was
        written, after the last checkpoint) goes with the epochs the checkpoint does not hold; a line
        that is not JSON anywhere else is a damaged log: UserError naming it."""
        from generator.userio import parse_json

        if not self.log_file.is_file():
            return
        try:
            text = self.log_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"{self.log_file}: cannot read the log ({exc})") from None
        lines = text.splitlines()
        kept = []
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            if n == len(lines) and not text.endswith("\n"):
                try:
                    entry = json.loads(line)
                except ValueError:
                    logger.warning(
                        "%s: dropped the last line, cut short (%d characters)", self.log_file, len(line)
                    )
                    continue
            else:
                entry = parse_json(line, f"{self.log_file}: line {n}")
            if not isinstance(entry, dict) or not isinstance(entry.get("epoch", 0), int):
                raise UserError(
                    f"{self.log_file}: line {n} is not an epoch record (remove the run folder to train it again)"
                )
            if entry.get("epoch", 0) <= epochs_done:
                kept.append(line)
        if kept != lines:
            write_text_atomic(self.log_file, "".join(line + "\n" for line in kept))


class StopRequest:
    """SIGTERM / SIGINT ask the loop to stop at the next epoch boundary (checkpoint first) instead of
    killing it mid-epoch: a cluster's SIGTERM before the kill then loses no finished epoch although
    last.pt is not written every epoch. :meth:`resend` then delivers the signal as it would have been
    (SIGINT: KeyboardInterrupt; SIGTERM: the default handler ends the process). A second signal acts
    at once. Handlers are installed only in the main thread (Python's rule)."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.signum = None
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _handle(self, signum, frame):
        if self.signum is not None:  # a second signal: act at once
            self.__exit__()
            signal.raise_signal(signum)
            return
        self.signum = signum

    def requested(self, dist: Dist, device: torch.device) -> bool:
        """Whether any rank was asked to stop (one small collective per epoch under DDP)."""
        flag = self.signum is not None
        if dist.enabled:
            on = device if torch.distributed.get_backend() == "nccl" else torch.device("cpu")
            tensor = torch.tensor([int(flag)], device=on)
            torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.MAX)
            flag = bool(tensor.item())
        return flag

    def resend(self) -> None:
        signum = self.signum or signal.SIGTERM
        self.__exit__()
        signal.raise_signal(signum)
