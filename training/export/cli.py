"""``ham-artefacts export``: write the results site's generated MkDocs sources (and optionally build it)."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    parser = sub.add_parser(
        "export",
        help="write the results site's pages, charts and downloads into the MkDocs sources",
        description="Read evaluation tables (--results) and the data manifest (--data), write Markdown pages, "
        "Vega-Lite specs, tables and images into --site-dir; then `mkdocs build --strict` builds the site.",
    )
    parser.add_argument(
        "--results", required=True, help="evaluation results folder (metrics_summary.csv, ...)"
    )
    parser.add_argument(
        "--data", required=True, help="data folder with manifest.json and examples/<kind>.png"
    )
    parser.add_argument("--site-dir", default="site", help="MkDocs sources folder (default: site)")
    parser.add_argument(
        "--synthetic",
        choices=("auto", "yes", "no"),
        default="auto",
        help="show the 'embedded demo' banner: auto = when results or manifest say synthetic",
    )
    parser.add_argument(
        "--citation", default=None, help="CITATION.cff for the citation box (default: the repo's)"
    )
    parser.add_argument("--build", action="store_true", help="then run `mkdocs build --strict`")
    parser.add_argument(
        "--config", default="mkdocs.yml", help="mkdocs.yml used by --build (default: mkdocs.yml)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .site import build_site, export_site

    info = export_site(
        args.results, args.data, args.site_dir, synthetic=args.synthetic, citation=args.citation
    )
    banner = " (synthetic-data banner on)" if info["synthetic"] else ""
    print(f"exported {len(info['pages'])} pages into {args.site_dir}{banner}")
    if args.build:
        build_site(args.config)
        print("built the site; view it with `make serve`")
    return 0
