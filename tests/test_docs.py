"""The documentation where its readers look: a short README, the study on the site, a CLI reference that
is generated from the real parser, and a dataset card that names its known limitations."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README_MAX_BYTES = 15_000  # a README read in two minutes (MedMNIST's is 14.5 KB); the study lives on the site
SYNTHETIC_STATEMENT = "come from synthetic data"


def _hand_written_site_pages() -> set[str]:
    """site/*.md without the pages `ham-artefacts export` writes there (they are gitignored)."""
    from training.export.site import PAGES

    return {p.name for p in (REPO / "site").glob("*.md")} - set(PAGES)


def _walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(name, parser) of every subcommand, found through argparse's public parse structure."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield " ".join((*path, name)), sub
                yield from _walk(sub, (*path, name))


def test_readme_is_short_and_says_the_default_is_a_synthetic_twin():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.encode("utf-8")) <= README_MAX_BYTES
    assert "synthetic twin of HAM10000, not HAM10000" in readme
    for needle in ("make demo", "make test", "HAMArtefacts", "RandomArtefact", "CC BY-NC-SA 4.0", "MIT"):
        assert needle in readme, needle
    # the study, the benchmark tables and the real-data recipe moved out; the README links to them
    for link in (
        "site/study.md",
        "benchmarks/README.md",
        "site/methods.md#reproduce-on-real-ham10000-gpu-cluster",
    ):
        assert f"]({link})" in readme, link
    for moved in ("## The study", "## Performance", "### GPU benchmark", "sbatch"):
        assert moved not in readme, moved


def test_the_study_pages_carry_the_synthetic_statement_and_the_rule_is_stated_once():
    for page in ("study.md", "study-log.md"):
        text = (REPO / "site" / page).read_text(encoding="utf-8")
        assert SYNTHETIC_STATEMENT in text and "not from HAM10000" in text, page
    # The pre-registered positive-control threshold and the real-data recipe each live in one place.
    names = [
        "README.md",
        "benchmarks/README.md",
        *(f"site/{page}" for page in sorted(_hand_written_site_pages())),
    ]
    found = {name: (REPO / name).read_text(encoding="utf-8") for name in names}
    assert [n for n, t in found.items() for _ in re.finditer(r"\+15\b", t)] == ["site/study.md"]
    assert [n for n, t in found.items() if "sbatch" in t] == ["site/methods.md"]


def test_every_nav_entry_exists_and_the_new_pages_are_in_it():
    yaml = pytest.importorskip("yaml", reason="the site extra")
    from training.export.cli_reference import CLI_PAGE
    from training.export.site import PAGES

    nav = yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))["nav"]
    entries = [next(iter(item.values())) for item in nav]
    hand_written = _hand_written_site_pages()
    assert {"study.md", "study-log.md", CLI_PAGE} <= set(entries)
    for entry in entries:
        assert entry in hand_written or entry in PAGES or entry == CLI_PAGE, entry
    assert hand_written <= set(entries)  # no hand-written page left out of the nav


def test_cli_reference_lists_every_subcommand_with_its_usage_and_arguments(monkeypatch):
    from generator.cli import build_parser
    from training.export.cli_reference import command_names, render_cli_reference

    parser = build_parser()
    commands = dict(_walk(parser))
    assert {"generate", "templates list", "sweep run"} <= set(commands)  # nested ones count too
    assert command_names() == list(commands)
    page = render_cli_reference()
    sections = re.split(r"\n#{2,6} `ham-artefacts ", page)[1:]
    by_name = {section.split("`", 1)[0]: section for section in sections}
    assert list(by_name) == list(commands)
    for name, sub in commands.items():
        section = by_name[name]
        assert f"usage: ham-artefacts {name}" in " ".join(section.split()), name
        for action in sub._actions:
            for option in action.option_strings:
                assert option in section, f"{name}: {option}"
    # the page's text does not depend on the terminal width (argparse reads $COLUMNS)
    monkeypatch.setenv("COLUMNS", "40")
    assert render_cli_reference() == page


def test_cli_reference_follows_a_changed_parser():
    from generator.cli import build_parser
    from training.export.cli_reference import render_cli_reference

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    extra = sub.add_parser("frobnicate", help="a command | that did not exist <yesterday>")
    extra.add_argument("--widget-count", type=int, help="how many")
    page = render_cli_reference(parser)
    assert "## `ham-artefacts frobnicate` {#frobnicate}" in page and "--widget-count" in page
    # prose is escaped for Markdown: no raw HTML tag, no extra table column
    assert "a command &#124; that did not exist &lt;yesterday&gt;" in page


def test_mkdocs_hook_adds_the_generated_cli_page(tmp_path):
    pytest.importorskip("mkdocs")
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.files import Files

    from training.export.cli_reference import CLI_PAGE, render_cli_reference

    (tmp_path / "docs").mkdir()
    config = MkDocsConfig()
    config.load_dict(
        {
            "site_name": "t",
            "docs_dir": str(tmp_path / "docs"),
            "site_dir": str(tmp_path / "out"),
            "plugins": [],
            "hooks": [str(REPO / "training" / "export" / "mkdocs_hooks.py")],  # as mkdocs.yml loads it
        }
    )
    assert not config.validate()[0]
    files = config.plugins.on_files(Files([]), config=config)  # the event as `mkdocs build` runs it
    page = files.get_file_from_path(CLI_PAGE)
    assert page is not None and page.is_documentation_page()
    assert page.content_string == render_cli_reference()
    assert not (tmp_path / "docs" / CLI_PAGE).exists()  # generated in memory, never written into site/


def test_dataset_card_names_its_known_limitations():
    from generator.distribution.cards import huggingface_card

    manifest = json.loads((REPO / "results" / "showcase" / "data" / "manifest.json").read_text())
    assert manifest["synthetic"]
    card = huggingface_card(manifest)
    section = card.split("## Known limitations\n", 1)[1].split("\n## ", 1)[0]
    assert "Synthetic twin, not HAM10000" in section
    assert "vertical rulers 0.0 %" in section and "Only the inserted artefacts are labelled" in section
    assert card.index("## Known limitations") < card.index("## Licence and attribution")
    real = huggingface_card({**manifest, "synthetic": False, "image_size": [600, 450]})
    section = real.split("## Known limitations\n", 1)[1].split("\n## ", 1)[0]
    assert "Synthetic" not in section and "synthetic" not in section
    assert "vertical rulers 0.0 %" in section and "This build's images are 600×450 px." in section


def test_the_built_site_has_the_study_its_log_and_the_cli_reference(built_site):
    built = built_site / "build" / "site"
    for page in ("study.html", "study-log.html"):
        assert SYNTHETIC_STATEMENT in (built / page).read_text(encoding="utf-8"), page
    reference = (built / "cli.html").read_text(encoding="utf-8")
    assert 'id="sweep-run"' in reference and "usage: ham-artefacts sweep run" in reference
