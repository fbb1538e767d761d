"""The single console script, ``ham-artefacts``.

Each subcommand lives in a small module with a ``register(subparsers)`` function; the module
imports its heavy dependencies (torch, h5py, mkdocs...) inside the command, so that
``ham-artefacts insert`` never pays for torch.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import sys

from . import __version__
from .errors import UserError
from .userio import printable

# Order here is the order in `--help`. A module that fails to import (an optional extra not
# installed) only hides its own commands.
COMMAND_MODULES = (
    "generator.cli_artefacts",
    "generator.cli_data",
    "generator.cli_distribution",
    "training.cli",
    "training.evaluation.cli",
    "training.run.showcase",
    "training.export.cli",
)


DEBUG_FLAG = "--debug"
LOGGED_PACKAGES = ("generator", "training")
"""The loggers the CLI shows (``logging.getLogger(__name__)`` in every library module)."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (exit 2); subparsers inherit the class."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {printable(message)} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ham-artefacts",
        description="Artefact datasets for HAM10000, model training and a robustness results site.",
        epilog=f"Progress and warnings go to stderr, results to stdout. --quiet and --verbose come before "
        f"the command (ham-artefacts --quiet train ...); a command's own --quiet, where it has one, is the "
        f"same as the global one. Errors are one line on stderr (exit 2: bad input, environment, network or "
        f"disk; 1: a failed check or run; 130: interrupted). {DEBUG_FLAG}, anywhere on the line, shows the "
        f"traceback.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(DEBUG_FLAG, action="store_true", help="print the traceback of an error")
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument(
        "-q",
        "--quiet",
        dest="log_level",
        action="store_const",
        const=logging.WARNING,
        help="only warnings and errors: no progress lines or progress bars",
    )
    verbosity.add_argument(
        "-v",
        "--verbose",
        dest="log_level",
        action="store_const",
        const=logging.DEBUG,
        help="debug messages too (e.g. every training epoch)",
    )
    parser.set_defaults(log_level=logging.INFO)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # --debug is accepted anywhere, so that it can be added to any failing command line as it is.
    debug = DEBUG_FLAG in argv
    argv = [a for a in argv if a != DEBUG_FLAG]
    prog = "ham-artefacts"
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        prog = f"ham-artefacts {args.command}"
        if args.log_level >= logging.WARNING or getattr(args, "quiet", False):
            args.log_level = logging.WARNING
            if hasattr(args, "quiet"):  # the command's own --quiet: no progress bars
                args.quiet = True
        with logging_to_stderr(args.log_level):
            return int(args.func(args) or 0)
    except SystemExit as exc:  # argparse: --help, --version and usage errors (already printed)
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    except BrokenPipeError:
        # `ham-artefacts list | head`: the reader went away; not an error worth a traceback.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        _close_progress_bars()
        # fetch keeps its .part files, generate its row cache, train its last.pt
        print(f"{prog}: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI's one rule: one line, a meaningful exit code
        _close_progress_bars()
        if debug:
            import traceback

            traceback.print_exc()
        message, code = describe_error(exc)
        print(f"{prog}: error: {message}", file=sys.stderr)
        return code


@contextlib.contextmanager
def logging_to_stderr(level: int):
    """Show the project's log records at ``level`` and above on stderr, message only, while a command
    runs; records still propagate (pytest's caplog sees them). Restored afterwards, so that
    ``main()`` called twice in one process (the tests) never stacks handlers."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    loggers = [logging.getLogger(name) for name in LOGGED_PACKAGES]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(level)
    try:
        yield
    finally:
        for logger, previous in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(previous)


def describe_error(exc: BaseException) -> tuple[str, int]:
    """(one-line message, exit code) for an exception that reached the CLI's top level.

    Exit 2 for anything that comes from input, the environment, the network or the disk; 1 for a
    failed run (RunFailed) and for a bug, which says how to see its traceback.
    """
    if isinstance(exc, UserError):
        message, code = str(exc), exc.exit_code
    elif isinstance(exc, ModuleNotFoundError) and exc.name:
        from .extras import missing_module_message

        message, code = missing_module_message(exc.name), 2
    elif isinstance(exc, OSError):
        # disk full, permission denied, a folder where a file belongs, a vanished file...
        names = [n for n in (exc.filename, exc.filename2) if n is not None]
        what = exc.strerror or str(exc) or type(exc).__name__
        message, code = (f"{' -> '.join(printable(n) for n in names)}: {what}" if names else what), 2
    elif isinstance(exc, RecursionError):
        message, code = "input nested too deeply (recursion limit exceeded)", 2
    elif isinstance(exc, ValueError):
        # unparseable input deep inside a library: huge integers, malformed URLs, bad numbers
        message, code = f"invalid input: {exc}", 2
    else:
        message, code = (
            f"internal error {type(exc).__name__}: {exc} (rerun with {DEBUG_FLAG} for the traceback)",
            1,
        )
    return printable(" ".join(message.split()), limit=2000) or type(exc).__name__, code


def _close_progress_bars() -> None:
    """Close live tqdm bars so that the error starts on a line of its own."""
    tqdm_module = sys.modules.get("tqdm")
    if tqdm_module is None:
        return
    for bar in list(getattr(tqdm_module.tqdm, "_instances", ())):
        try:
            bar.close()
        except Exception:  # noqa: BLE001, S110 - a bar that cannot close must not hide the real error
            pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
