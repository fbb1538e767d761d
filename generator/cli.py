"""The single console script, ``ham-artefacts``.

Each subcommand lives in a small module with a ``register(subparsers)`` function; the module
imports its heavy dependencies (torch, h5py, mkdocs...) inside the command, so that
``ham-artefacts insert`` never pays for torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
from .errors import UserError

# Order here is the order in `--help`. A module that fails to import (an optional extra not
# installed) only hides its own commands.
COMMAND_MODULES = (
    "generator.cli_artefacts",
    "generator.cli_data",
    "generator.cli_dist",
    "training.cli",
    "training.evaluation.cli",
    "training.export.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ham-artefacts",
        description="Artefact datasets for HAM10000, model training and a robustness results site.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and (exc.name == name or name.startswith(exc.name + ".")):
                continue  # that command group is not built yet / not installed
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except UserError as exc:
        print(f"ham-artefacts {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        # `ham-artefacts list | head`: the reader went away; not an error worth a traceback.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
