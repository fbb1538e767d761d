"""`ham-artefacts generate` and `ham-artefacts verify` (plus synth-ham10000 from cli_synth)."""

from __future__ import annotations

import argparse
import sys


def register(sub) -> None:
    from . import cli_synth

    cli_synth.register(sub)

    p = sub.add_parser(
        "generate",
        help="write the 22 artefact variant files (HDF5) and manifest.json from a HAM10000 source",
        description="One pass over the images (decode, artefact realization, rendering, encoding), then "
        "every requested variant file streamed from an on-disk row cache. Re-running resumes.",
    )
    p.add_argument(
        "--source", required=True, help="HAM10000 folder (Dataverse layout) or a synth-ham10000 output"
    )
    p.add_argument("--out", required=True, help="output folder for <variant>.h5 files and manifest.json")
    p.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    p.add_argument(
        "--workers", type=int, default=1, help="worker processes (output bytes do not depend on it)"
    )
    p.add_argument("--size", default=None, metavar="WxH", help="resize images, e.g. 300x225 (default: keep)")
    p.add_argument("--templates", default="builtin", help="'builtin' or a folder of artefact templates")
    p.add_argument(
        "--variants",
        nargs="+",
        default=None,
        metavar="NAME",
        help="variants to write (default all 22; see generator.variants)",
    )
    p.add_argument(
        "--families",
        nargs="+",
        default=None,
        metavar="FAMILY",
        help="artefact families the artefacted rows draw from (default the paper's three: bubble ruler "
        "marking; also hair dark_corner gel_border patches)",
    )
    p.add_argument(
        "--kinds",
        nargs="+",
        default=None,
        metavar="KIND",
        help="the same by kind names: each brings in its family (see 'templates list')",
    )
    p.add_argument(
        "--shard",
        default=None,
        metavar="i/n",
        help="do shard i of n (0 <= i < n) of the per-image work; files are written once all parts exist",
    )
    p.add_argument("--merge", action="store_true", help="write the variant files from all shard parts")
    p.add_argument("--keep-cache", action="store_true", help="keep the row cache (<out>/.cache) afterwards")
    p.add_argument(
        "--wait",
        type=float,
        default=None,
        metavar="S",
        help="seconds to wait for another generate/fetch writing into --out (default 10)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run_generate)

    v = sub.add_parser(
        "verify",
        help="check every file of an output folder against its manifest.json",
        description="Exit 0 only if every file listed in manifest.json has the recorded size and "
        "SHA-256; each bad file is named; exit 1 otherwise.",
    )
    v.add_argument("dir", help="output folder of generate (or fetch)")
    v.add_argument(
        "--content", action="store_true", help="also decode every row and compare content digests (slow)"
    )
    v.add_argument("--quiet", action="store_true", help="no progress bar")
    v.set_defaults(func=run_verify)


def run_generate(args: argparse.Namespace) -> int:
    from .sizes import parse_size
    from .variants.build import generate, parse_shard

    manifest = generate(
        args.source,
        args.out,
        seed=args.seed,
        workers=args.workers,
        size=parse_size(args.size),
        templates=args.templates,
        variants=args.variants,
        shard=parse_shard(args.shard),
        merge=args.merge,
        families=args.families,
        kinds=args.kinds,
        progress=not args.quiet,
        keep_cache=args.keep_cache,
        lock_wait=args.wait,
    )
    if manifest is not None:
        rows = sum(e["rows"] for e in manifest["files"])
        size = sum(e["bytes"] for e in manifest["files"])
        print(f"{args.out}: {len(manifest['files'])} files, {rows} rows, {size / 1e6:.1f} MB")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from .variants.manifest import MANIFEST_NAME, verify_dir

    problems = verify_dir(args.dir, content=args.content, progress=not args.quiet)
    for problem in problems:
        print(f"FAILED {problem}", file=sys.stderr)
    if problems:
        print(f"{args.dir}: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"{args.dir}: all files match {MANIFEST_NAME}")
    return 0
