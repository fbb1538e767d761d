"""Orchestrate the export: tables + manifest in, MkDocs sources out (then optionally ``mkdocs build``).

Layout written under the MkDocs docs folder (``site/``)::

    index.md robustness.md bias.md significance.md gallery.md datasets.md downloads.md   generated pages
    generated/site.json           flags read by the MkDocs hook (synthetic banner)
    generated/instrument_check.md.part   instrument-check result, inserted into methods.md by the hook
    generated/vendor/vega-bundle.js   Vega + Vega-Lite + vega-embed, one offline bundle
    generated/charts/*.json       Vega-Lite specs (also inlined in the pages)
    generated/tables/...          every result table (CSV + JSON), results.json, manifest.json
    generated/gradcam/...         Grad-CAM PNGs;  generated/examples/<kind>.png;  generated/data/*.h5 (small demo)

Hand-written sources (methods.md, assets/, overrides/) are never touched. The generated folder is
staged beside the old one and swapped in, so an interrupted export leaves the previous site intact.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from generator.atomic import write_json_atomic, write_text_atomic
from generator.errors import UserError
from generator.variants.manifest import MANIFEST_NAME

from .mkdocs_hooks import INSTRUMENT_PART

GENERATED = "generated"
PAGES = (
    "index.md",
    "robustness.md",
    "bias.md",
    "significance.md",
    "gallery.md",
    "datasets.md",
    "downloads.md",
)
COPY_DATA_LIMIT = 128 * 1024 * 1024  # copy variant files into the site only when small (the embedded demo)
REPO_ROOT = Path(__file__).resolve().parents[2]
logger = logging.getLogger(__name__)


def _is_synthetic(mode: str, results_info: dict, manifest: dict) -> bool:
    if mode == "yes":
        return True
    if mode == "no":
        return False
    if mode != "auto":
        raise UserError(f"--synthetic: expected auto, yes or no, not {mode!r}")
    return bool(results_info.get("synthetic")) or bool(manifest.get("synthetic"))


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


def _link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link big variant files (written atomically, never in place); copy when linking fails."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _inside(root: Path, relative: str, what: str) -> Path:
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()):
        raise UserError(f"{what}: path {relative!r} leaves the results folder")
    if not path.is_file():
        raise UserError(f"{what}: {path} not found")
    return path


def export_site(
    results_dir: str | Path,
    data_dir: str | Path,
    site_dir: str | Path,
    synthetic: str = "auto",
    citation: str | Path | None = None,
    progress: bool = True,
) -> dict:
    """Write the generated pages and assets into ``site_dir``; return a small summary dict."""
    from tqdm import tqdm

    from generator import __version__
    from generator.variants.manifest import load_manifest

    from . import charts, pages
    from .assets import BUNDLE_NAME, reading_recipe, write_vega_bundle
    from .citation import citation_box
    from .results import SCHEMAS, load_results

    results_dir, data_dir, site_dir = Path(results_dir), Path(data_dir), Path(site_dir)
    citation = Path(citation) if citation else REPO_ROOT / "CITATION.cff"
    if not site_dir.is_dir():
        raise UserError(f"--site-dir {site_dir}: not a folder (the MkDocs sources, e.g. site/)")
    # Read and check every input before the progress bar starts, so bad input fails on one line.
    results = load_results(results_dir)
    manifest = load_manifest(data_dir)
    is_synthetic = _is_synthetic(synthetic, results.info, manifest)
    if not is_synthetic and (results.info.get("synthetic") or manifest.get("synthetic")):
        logger.warning("export: warning: the inputs say synthetic, but --synthetic no hides the demo banner")
    citation_bibtex, citation_texts = citation_box(citation)
    recipe = reading_recipe()
    archs = results.archs
    index = results["gradcam/index"] if results.has("gradcam/index") else None
    if index is not None:  # a row without both images (Grad-CAM failed for it) has nothing to show
        index = index[(index["clean_png"] != "") & (index["artefact_png"] != "")]
    gallery_images = []
    if index is not None:
        for column in ("clean_png", "artefact_png"):
            for relative in pages.gallery_rows(index)[column]:
                src = _inside(results_dir, relative, f"{results_dir / 'gradcam/index.csv'}: {column}")
                gallery_images.append((src, Path(relative).as_posix()))
    # The instrument check: planted predictors through the real evaluate and this export's loader.
    from training.evaluation.instrument import run_instrument_check

    instrument = run_instrument_check()
    if not instrument["ok"].all():
        logger.warning(
            "export: warning: the instrument check failed (see the methods page): the controls cannot be "
            "trusted"
        )
    steps = tqdm(total=5, desc="export", unit="step", disable=not progress, file=sys.stderr)

    staging = Path(tempfile.mkdtemp(prefix=".generated-", dir=site_dir))  # dot: MkDocs ignores leftovers
    staging.chmod(0o755)  # mkdtemp makes it private; the site is for everyone
    try:
        g = staging
        steps.set_postfix_str("vega bundle")
        write_vega_bundle(g / "vendor" / BUNDLE_NAME, reuse=site_dir / GENERATED / "vendor" / BUNDLE_NAME)
        steps.update()

        # Downloads: every result table verbatim (CSV + JSON), results.json and the manifest.
        steps.set_postfix_str("tables")
        downloads: list[tuple[str, str, str]] = []  # (title, csv href or "", json href or "")
        for stem in SCHEMAS:
            csv = results_dir / f"{stem}.csv"
            if not csv.is_file():
                continue
            hrefs = {}
            for path in (csv, csv.with_suffix(".json")):
                if path.is_file():
                    _copy(path, g / "tables" / f"{stem}{path.suffix}")
                    hrefs[path.suffix] = f"{GENERATED}/tables/{stem}{path.suffix}"
            downloads.append((stem, hrefs.get(".csv", ""), hrefs.get(".json", "")))
        from training.evaluation.output import write_table

        write_table(instrument, g / "tables", "instrument_check")
        downloads.append(
            (
                "instrument_check",
                f"{GENERATED}/tables/instrument_check.csv",
                f"{GENERATED}/tables/instrument_check.json",
            )
        )
        write_text_atomic(g / INSTRUMENT_PART, pages.instrument_section(instrument))
        _copy(results_dir / "results.json", g / "tables" / "results.json")
        shutil.copyfile(data_dir / MANIFEST_NAME, g / "tables" / MANIFEST_NAME)
        downloads.append(("results.json", "", f"{GENERATED}/tables/results.json"))
        downloads.append((f"{MANIFEST_NAME} (datasets)", "", f"{GENERATED}/tables/{MANIFEST_NAME}"))
        steps.update()

        # Charts: specs as files (downloads) and inline in the pages.
        steps.set_postfix_str("charts")
        # A builder returns None when this run has nothing to plot (e.g. no class-biased training
        # variant): the page then says what is missing, and no empty chart container is emitted.
        specs = {
            "overview": charts.robustness_chart(results["curves"], archs, interactive=False, height=260),
            "robustness": charts.robustness_chart(results["curves"], archs),
            "bias_heatmap": charts.bias_heatmap(results["bias"], archs),
            "bias_shift": charts.bias_shift_chart(results["bias_shift"], archs),
            "flips": charts.flips_chart(results["flips"], archs) if results.has("flips") else None,
            "attention": (
                charts.attention_chart(results["gradcam/attention"], archs)
                if results.has("gradcam/attention")
                else None
            ),
        }
        charted = {name: spec for name, spec in specs.items() if spec is not None}
        blocks = {}
        captions = {
            "overview": "Macro PR-AUC (train_none) against % of test images with artefacts, 95% CI bands.",
            "robustness": "PR-AUC against % of test images with artefacts; 95% CI bands.",
            "bias_heatmap": "Shift of recall, FPR and FNR per class for each biased training variant.",
            "bias_shift": "Shift of predictions toward the biased class.",
            "flips": "Share of predictions flipped by the artefact, per kind.",
            "attention": "Artefact attention ratio (1 = uniform map), mean and 95% CI.",
        }
        for name, spec in charted.items():
            write_json_atomic(g / "charts" / f"{name}.json", spec)
            blocks[name] = pages.chart_block(
                f"chart-{name}", spec, f"{GENERATED}/charts/{name}.json", captions[name]
            )
            downloads.append((f"chart: {name} (Vega-Lite)", "", f"{GENERATED}/charts/{name}.json"))
        steps.update()

        # Images: Grad-CAM pairs and the artefact examples.
        steps.set_postfix_str("images")
        for src, relative in gallery_images:
            _copy(src, g / relative)
        examples = []
        for path in sorted((data_dir / "examples").glob("*.png")):
            _copy(path, g / "examples" / path.name)
            examples.append((path.stem, f"{GENERATED}/examples/{path.name}"))
        if not examples:
            raise UserError(f"{data_dir / 'examples'}: no <kind>.png example images")

        # Variant files: a public base_url wins; else small local files travel with the site.
        local = [data_dir / f["name"] for f in manifest["files"]]
        copy_data = (
            not manifest.get("base_url")
            and all(p.is_file() for p in local)
            and sum(p.stat().st_size for p in local) <= COPY_DATA_LIMIT
        )
        if copy_data:
            for path in local:
                _link_or_copy(path, g / "data" / path.name)
        steps.update()

        # Dataset card and Croissant metadata (generate/publish write them); the card travels as .txt
        # here, since MkDocs would turn a README.md into a page of the site.
        cards = []
        for name, label, shipped in (
            ("README.md", "dataset card (README.md)", "README.md.txt"),
            ("croissant.json", "Croissant metadata (croissant.json)", "croissant.json"),
        ):
            if manifest.get("base_url"):
                cards.append((label, manifest["base_url"].rstrip("/") + "/" + name))
            elif (data_dir / name).is_file():
                _copy(data_dir / name, g / "data" / shipped)
                cards.append((label, f"{GENERATED}/data/{shipped}"))

        def download_href(entry: dict) -> str | None:
            if manifest.get("base_url"):
                return manifest["base_url"].rstrip("/") + "/" + entry["name"]
            return f"{GENERATED}/data/{entry['name']}" if copy_data else None

        remedy = pages.remedy_section(
            results.tables.get("effects_summary"), results.tables.get("remedy_summary"), archs
        )
        texts = {
            "index.md": pages.overview_page(
                results, manifest, blocks.get("overview"), synthetic=is_synthetic
            ),
            "robustness.md": pages.robustness_page(
                blocks.get("robustness"),
                blocks.get("flips"),
                results.train_variants(),
                remedy,
                pages.robustness_drop_table(results.tables.get("drops"), archs),
            ),
            "bias.md": pages.bias_page(
                blocks.get("bias_heatmap"),
                blocks.get("bias_shift"),
                results.train_variants(),
                pages.within_model_table(results.tables.get("effects_summary"), archs),
                remedy,
                pages.within_model_table(
                    results.tables.get("effects_by_kind_summary"), archs, stem="effects_by_kind_summary"
                ),
            ),
            "significance.md": pages.significance_page(
                results["mcnemar"], archs, results.info.get("definitions")
            ),
            "gallery.md": pages.gallery_page(
                index, archs, lambda rel: f"{GENERATED}/{Path(rel).as_posix()}", blocks.get("attention")
            ),
            "datasets.md": pages.datasets_page(manifest, recipe, examples, download_href, cards),
            "downloads.md": pages.downloads_page(
                downloads, citation_bibtex, citation_texts, results.info.get("definitions")
            ),
        }
        info = {
            "synthetic": is_synthetic,
            "generated_by": __version__,
            "archs": archs,
            "instrument_check_ok": bool(instrument["ok"].all()),
            "results": str(results_dir),
            "data": str(data_dir),
            "pages": list(PAGES),
        }
        write_json_atomic(g / "site.json", info)
        for path in g.rglob("*"):  # atomic writes are private (mkstemp); published files are not
            if path.parent != g / "data":  # hard links: leave the user's variant files alone
                path.chmod(0o755 if path.is_dir() else 0o644)

        # Swap the new generated folder in, then the pages (each atomically).
        steps.set_postfix_str("swap")
        old = site_dir / GENERATED
        trash = None
        if old.exists():
            trash = Path(tempfile.mkdtemp(prefix=".generated-old-", dir=site_dir))
            os.replace(old, trash / GENERATED)
        os.replace(staging, old)
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)
    except BaseException:
        steps.close()
        shutil.rmtree(staging, ignore_errors=True)
        raise
    for name, text in texts.items():
        write_text_atomic(site_dir / name, text)
        (site_dir / name).chmod(0o644)
    steps.update()
    steps.close()
    return info


def build_site(config_file: str | Path = "mkdocs.yml", strict: bool = True) -> None:
    """Run ``mkdocs build`` (strict by default) in a subprocess; UserError if it fails."""
    command = [sys.executable, "-m", "mkdocs", "build", "--config-file", str(config_file)]
    if strict:
        command.append("--strict")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # silence Material's end-of-life notice
    done = subprocess.run(command, check=False, env=env)
    if done.returncode != 0:
        raise UserError(
            f"{config_file}: mkdocs build failed (exit {done.returncode}); see the messages above"
        )
