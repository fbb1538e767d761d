"""The site's command-line reference, rendered from the real parser so that it cannot drift.

:func:`render_cli_reference` walks :func:`generator.cli.build_parser` (every subcommand, nested ones such
as ``templates list`` and ``sweep run`` included) and writes each command's one-line help and its
``--help`` text (usage, description, arguments) as Markdown. The MkDocs hook
(``training/export/mkdocs_hooks.py``) adds the result to the site as :data:`CLI_PAGE` at build time.
"""

from __future__ import annotations

import argparse
import functools
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

CLI_PAGE = "cli.md"  # the generated page's path in the site (the nav entry in mkdocs.yml names it)
HELP_WIDTH = 100  # columns of the rendered --help texts: fixed, so the page does not depend on the terminal

_CODE_SPAN = re.compile(r"(`[^`]*`)")


@dataclass(frozen=True)
class Command:
    """One command of the parser tree: ``path`` ("sweep", "run"), its parser and its one-line help."""

    path: tuple[str, ...]
    parser: argparse.ArgumentParser
    summary: str

    @property
    def name(self) -> str:
        return " ".join(self.path)


def _subcommands(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser, str]]:
    """(name, parser, help) of the direct subcommands of ``parser``, in the order ``--help`` lists them."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            summaries = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, subparser in action.choices.items():
                yield name, subparser, str(summaries.get(name, ""))


def iter_commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[Command]:
    """Every subcommand below ``parser``, depth first: a command, then its own subcommands."""
    for name, subparser, summary in _subcommands(parser):
        command = Command((*path, name), subparser, summary)
        yield command
        yield from iter_commands(subparser, command.path)


def command_names(parser: argparse.ArgumentParser | None = None) -> list[str]:
    """The names of every subcommand ("generate", "templates list", ...) of ``parser`` (default: the CLI's)."""
    return [command.name for command in iter_commands(parser or _cli_parser())]


def _cli_parser() -> argparse.ArgumentParser:
    from generator.cli import build_parser

    return build_parser()


def _help_text(parser: argparse.ArgumentParser) -> str:
    """``parser.format_help()`` at :data:`HELP_WIDTH` columns, whatever the terminal (argparse otherwise
    reads the width from ``$COLUMNS`` or the terminal)."""
    original = parser.formatter_class
    # argparse's formatter classes are HelpFormatter subclasses, whose width the partial fixes
    parser.formatter_class = functools.partial(cast(type[argparse.HelpFormatter], original), width=HELP_WIDTH)
    try:
        return parser.format_help().rstrip()
    finally:
        parser.formatter_class = original


def _markdown_text(text: str) -> str:
    """Help prose as Markdown (also inside a table cell): code spans kept as written; outside them HTML
    metacharacters and the table's ``|`` are escaped."""
    return "".join(
        part if _CODE_SPAN.fullmatch(part) else html.escape(part, quote=False).replace("|", "&#124;")
        for part in _CODE_SPAN.split(text)
    )


def _anchor(command: Command) -> str:
    return "-".join(command.path)


def render_cli_reference(parser: argparse.ArgumentParser | None = None) -> str:
    """The Markdown of the CLI reference page for ``parser`` (default: ``generator.cli.build_parser()``)."""
    parser = parser or _cli_parser()
    commands = list(iter_commands(parser))
    lines = [
        "# Command-line reference",
        "",
        f"Generated from the parser of `{parser.prog}` when the site is built, so it always matches the "
        "code. Every command also prints this with `--help`. What the CLI promises on errors, interruptions "
        "and concurrent runs is on [Methods & reproduce](methods.md#command-line-reliability).",
        "",
        "```text",
        _help_text(parser),
        "```",
        "",
        "| command | what it does |",
        "|---|---|",
        *(f"| [`{parser.prog} {c.name}`](#{_anchor(c)}) | {_markdown_text(c.summary)} |" for c in commands),
    ]
    for command in commands:
        lines += [
            "",
            f"{'#' * min(len(command.path) + 1, 6)} `{parser.prog} {command.name}` {{#{_anchor(command)}}}",
            "",
        ]
        if command.summary:
            lines += [_markdown_text(command.summary), ""]
        lines += ["```text", _help_text(command.parser), "```"]
    return "\n".join(lines) + "\n"
