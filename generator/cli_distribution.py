"""CLI faces of the distribution area: fetch, list, info, publish (thin: parse, call, print)."""

from __future__ import annotations

import argparse
import json

from .distribution.fetch import MIN_SPEED, SPEED_WINDOW_S
from .lock import DEFAULT_WAIT_S
from .userio import printable


def register(sub) -> None:
    p = sub.add_parser(
        "fetch",
        help="download and verify ready-made variant files from a manifest",
        description="Download the files a manifest lists (resuming, in parallel), check "
        "SHA-256 and rename into place. Refuses unsafe manifests.",
    )
    p.add_argument(
        "--manifest",
        required=True,
        metavar="URL|PATH",
        help="manifest.json as http(s):// or file:// URL, file path, or folder holding it",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="folder to download into")
    p.add_argument("--variants", nargs="+", metavar="VARIANT", help="only these variants (default: all)")
    p.add_argument(
        "--base-url", metavar="URL", help="where the files are (overrides the manifest's base_url)"
    )
    p.add_argument("--workers", type=int, default=4, help="parallel downloads (default 4)")
    p.add_argument("--retries", type=int, default=4, help="retries per file on transient errors (default 4)")
    p.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="seconds one network read may wait (default 60)",
    )
    p.add_argument(
        "--min-speed",
        type=float,
        default=MIN_SPEED,
        metavar="BYTES_PER_S",
        help=f"a transfer slower than this over {SPEED_WINDOW_S:.0f} s is cut and resumed "
        f"(default {MIN_SPEED})",
    )
    p.add_argument(
        "--wait",
        type=float,
        default=DEFAULT_WAIT_S,
        metavar="S",
        help=f"seconds to wait for another fetch/generate writing into --out (default {DEFAULT_WAIT_S:.0f})",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run_fetch)

    p = sub.add_parser("list", help="list the dataset variants (INFO registry)")
    p.add_argument("--manifest", metavar="URL|PATH", help="manifest for counts (default: packaged one)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run_list)

    p = sub.add_parser("info", help="describe one variant: classes, counts, licence, citation, SHA-256")
    p.add_argument("variant")
    p.add_argument("--manifest", metavar="URL|PATH", help="manifest for counts (default: packaged one)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run_info)

    p = sub.add_parser(
        "publish", help="prepare an upload folder (files, manifest with base URL, labels, README)"
    )
    p.add_argument("--data", required=True, metavar="DIR", help="generated data folder (with manifest.json)")
    p.add_argument(
        "--out", required=True, metavar="DIR", help="upload folder to create (must not exist or be empty)"
    )
    p.add_argument("--base-url", required=True, metavar="URL", help="where the files will be served from")
    p.add_argument("--variants", nargs="+", metavar="VARIANT", help="only these variants (default: all)")
    p.add_argument("--no-verify", action="store_true", help="skip re-hashing the files (sizes still checked)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run_publish)


def run_fetch(args: argparse.Namespace) -> int:
    from .distribution.fetch import fetch

    outcomes = fetch(
        args.manifest,
        args.out,
        variants=args.variants,
        base_url=args.base_url,
        workers=args.workers,
        retries=args.retries,
        progress=not args.no_progress,
        timeout=args.timeout,
        min_speed=args.min_speed,
        lock_wait=args.wait,
    )
    for o in outcomes:
        print(f"{o.status:<10} {o.path}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from .distribution.info import build_info, format_list

    info = build_info(args.manifest)
    # printable: descriptions and licences come from a manifest, which may hold terminal escapes
    print(json.dumps(info, indent=2) if args.json else printable(format_list(info), limit=None))
    return 0


def run_info(args: argparse.Namespace) -> int:
    from .distribution.info import format_info, variant_info

    entry = variant_info(args.variant, args.manifest)
    print(json.dumps(entry, indent=2) if args.json else printable(format_info(entry), limit=None))
    return 0


def run_publish(args: argparse.Namespace) -> int:
    from .distribution.publish import publish

    out = publish(
        args.data,
        args.out,
        args.base_url,
        variants=args.variants,
        verify=not args.no_verify,
        progress=not args.no_progress,
    )
    print(out)
    return 0
