"""`mkdocs build --strict` of the exported site: offline by construction, banner, strict link validation."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml
from helpers import site as fx

from generator.errors import UserError

# Anything that would make the browser fetch from another host: scripts, styles, fonts, images, frames.
EXTERNAL_RESOURCE = re.compile(
    r"""<(?:script|link|img|iframe|source|embed)\b[^>]*\b(?:src|href)\s*=\s*["']?(?:https?:)?//"""
    r"""|url\(\s*["']?(?:https?:)?//|@import\s+["']?(?:url\()?\s*["']?(?:https?:)?//""",
    re.IGNORECASE,
)


@pytest.fixture(scope="module")
def built(built_site) -> Path:
    return built_site / "build" / "site"


def test_every_page_is_built_with_the_synthetic_banner(built):
    names = {p.name for p in built.glob("*.html")}
    expected = {
        "index.html",
        "robustness.html",
        "bias.html",
        "significance.html",
        "gallery.html",
        "datasets.html",
        "methods.html",
        "downloads.html",
    }
    assert expected <= names
    for name in expected:
        page = (built / name).read_text(encoding="utf-8")
        assert "Synthetic data, not HAM10000 results." in page, name


def test_nothing_is_loaded_from_another_host(built):
    offenders = []
    for path in built.rglob("*"):
        if path.suffix in (".html", ".css") and path.is_file():
            for match in EXTERNAL_RESOURCE.finditer(path.read_text(encoding="utf-8", errors="replace")):
                offenders.append(f"{path.relative_to(built)}: {match.group(0)}")
    assert not offenders, offenders
    config = yaml.safe_load((fx.REPO / "mkdocs.yml").read_text())
    assert config["theme"]["font"] is False
    assert "navigation.instant" not in config["theme"].get("features", [])
    # The offline plugin's iframe-worker shim is vendored, not fetched from unpkg.
    assert all(not p.startswith("http") for p in config["extra"]["polyfills"])
    assert (built / "assets" / "javascripts" / "iframe-worker-shim.js").is_file()
    assert (built / "generated" / "vendor" / "vega-bundle.js").stat().st_size > 500_000
    assert (built / "search" / "search_index.js").is_file()  # offline search from file://


def test_strict_build_fails_on_a_broken_link_or_anchor(tmp_path, capfd, built_site):
    from training.export.site import build_site

    project = tmp_path / "project"
    shutil.copytree(built_site, project, ignore=shutil.ignore_patterns("build"))
    methods = project / "site" / "methods.md"
    methods.write_text(
        methods.read_text() + "\n[gone](no-such-page.md) [gone](robustness.md#no-such-anchor)\n"
    )
    capfd.readouterr()
    with pytest.raises(UserError, match="mkdocs build failed"):
        build_site(project / "mkdocs.yml")
    log = capfd.readouterr().err
    assert "'no-such-page.md', but the target is not found" in log
    assert "does not contain an anchor '#no-such-anchor'" in log


def test_build_without_export_says_what_to_do(tmp_path):
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.exceptions import PluginError

    from training.export import mkdocs_hooks

    config = MkDocsConfig()
    config["docs_dir"] = str(tmp_path)
    with pytest.raises(PluginError, match="run `ham-artefacts export"):
        mkdocs_hooks.on_config(config)
    (tmp_path / "generated").mkdir()
    (tmp_path / "generated" / "site.json").write_text('{"synthetic": false}')
    config["extra"] = {}
    assert mkdocs_hooks.on_config(config)["extra"]["synthetic"] is False


def test_methods_page_shows_the_instrument_check(built):
    page = (built / "methods.html").read_text(encoding="utf-8")
    assert 'id="instrument-check"' in page
    assert "ham:instrument-check" not in page  # the hook replaced the marker
    section = page.split('id="instrument-check"')[1]
    assert "Passed" in section and "planted_cheat / train_nv" in section and "ignores artefacts" in section
    overview = (built / "index.html").read_text(encoding="utf-8")
    assert overview.index('id="controls"') < overview.index('id="headline-numbers"')


def test_methods_marker_without_an_instrument_result_fails_the_build(tmp_path):
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.exceptions import PluginError

    from training.export import mkdocs_hooks

    config = MkDocsConfig()
    config["docs_dir"] = str(tmp_path)
    assert mkdocs_hooks.on_page_markdown("no marker", None, config, None) == "no marker"
    with pytest.raises(PluginError, match="instrument_check.md.part: not found"):
        mkdocs_hooks.on_page_markdown(f"x {mkdocs_hooks.INSTRUMENT_MARKER}", None, config, None)
