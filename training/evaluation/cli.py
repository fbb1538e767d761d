"""``ham-artefacts evaluate`` and ``ham-artefacts gradcam``: thin faces over the library functions."""

from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    from . import TABLES

    p = subparsers.add_parser(
        "evaluate",
        help="metrics with CIs, McNemar tests, bias and flips from a runs folder",
        description="Read the prediction tables of a runs folder (<runs>/<arch>/<train_variant>/fold<k>/"
        f"predictions/<test_variant>.csv) and write {', '.join(TABLES[:-1])} and {TABLES[-1]} "
        "(CSV + JSON) and results.json to --out. Only finished runs (with DONE) are read; each run needs "
        "a table for every test variant, all with test_none's images and labels and has_artefact as the "
        "variant defines it, or evaluate stops naming the run, the table and the first bad row.",
    )
    p.add_argument("--runs", required=True, help="runs folder written by `ham-artefacts train`/`sweep`")
    p.add_argument("--out", required=True, help="results folder to write")
    p.add_argument(
        "--data",
        default=None,
        metavar="DIR",
        help="data folder the runs were predicted on: also check every table's images, labels and "
        "artefacts against its variant file (opened through manifest.json)",
    )
    p.add_argument(
        "--include-unfinished",
        action="store_true",
        help="also read runs without DONE (default: list and skip them); their tables are checked alike",
    )
    p.add_argument(
        "--bootstrap",
        type=_non_negative,
        default=2000,
        metavar="B",
        help="bootstrap resamples over images per table (default 2000; 0 disables the CIs)",
    )
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="processes for the bootstrap (default 1; results do not depend on it)",
    )
    p.set_defaults(func=run_evaluate)

    g = subparsers.add_parser(
        "gradcam",
        help="Grad-CAM overlays and artefact attention of trained models",
        description="For a fixed seeded sample of test images (every class, every artefact kind), write "
        "Grad-CAM overlays of each model on the clean image and on the image with its artefact, "
        "and the artefact attention ratio, under <out>/gradcam/.",
    )
    g.add_argument("--runs", required=True, help="runs folder with best.pt and config.json per run")
    g.add_argument("--data", required=True, help="data folder holding test_none.h5 and test_all.h5")
    g.add_argument("--out", required=True, help="results folder (writes <out>/gradcam/)")
    g.add_argument("--n", type=_positive, default=24, help="images per model (default 24)")
    g.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    g.add_argument("--fold", type=int, default=None, help="fold whose model to use (default: lowest found)")
    g.add_argument(
        "--arch",
        action="append",
        dest="archs",
        metavar="ARCH",
        help="only this architecture (repeatable; default: all found)",
    )
    g.add_argument(
        "--train-variant",
        action="append",
        dest="train_variants",
        metavar="VARIANT",
        help="only this training variant (repeatable; default: all found)",
    )
    g.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    g.set_defaults(func=run_gradcam)


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def run_evaluate(args) -> int:
    import logging

    from .evaluate import evaluate

    info = evaluate(
        args.runs,
        args.out,
        n_boot=args.bootstrap,
        seed=args.seed,
        progress=args.log_level < logging.WARNING,  # the global --quiet: no progress bars
        workers=args.workers,
        include_unfinished=args.include_unfinished,
        data_dir=args.data,
    )
    print(
        f"evaluated {info['n_prediction_tables']} prediction tables of {len(info['archs'])} architecture(s) "
        f"in {info['seconds']} s -> {args.out}",
        file=sys.stderr,
    )
    return 0


def run_gradcam(args) -> int:
    from .gradcam import run_gradcam as gradcam

    summary = gradcam(
        args.runs,
        args.data,
        args.out,
        n_images=args.n,
        seed=args.seed,
        fold=args.fold,
        device=args.device,
        progress=True,
        archs=args.archs,
        train_variants=args.train_variants,
    )
    print(
        f"Grad-CAM for {summary['n_models']} model(s), {summary['n_images']} image(s) each -> "
        f"{args.out}/gradcam",
        file=sys.stderr,
    )
    return 0
