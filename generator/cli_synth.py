"""``ham-artefacts synth-ham10000``: write the synthetic HAM10000 stand-in (registered by cli_data)."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    from .sources.synth import DEFAULT_DIFFICULTY, DIFFICULTY_PRESETS

    parser = sub.add_parser(
        "synth-ham10000",
        help="write a synthetic HAM10000 in the Dataverse layout (demo and tests)",
        description="Write a deterministic synthetic stand-in for HAM10000 + the ISIC 2018 Task 3 test set "
        "in the Harvard Dataverse layout: JPEG images, metadata, segmentation PNGs, test images and ground truth.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--out", required=True, help="output folder (must not exist or be empty)")
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="fraction of the real set size (1.0 = 10,015 training + 1,511 test images)",
    )
    parser.add_argument(
        "--test-scale",
        type=float,
        default=None,
        help="size the test split apart from the training split (default: --scale)",
    )
    parser.add_argument(
        "--difficulty",
        default=DEFAULT_DIFFICULTY,
        help=f"class overlap: a number in [0, 1] or a preset ({', '.join(f'{k}={v}' for k, v in DIFFICULTY_PRESETS.items())})",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--size", default="600x450", help="image size WxH")
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument(
        "--test-format",
        choices=("onehot", "ham"),
        default="onehot",
        help="test ground truth: ISIC one-hot CSV or HAM10000 metadata columns",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from .sizes import parse_size
    from .sources.synth import synthesize_ham10000

    out = synthesize_ham10000(
        args.out,
        scale=args.scale,
        seed=args.seed,
        size=parse_size(args.size),
        workers=args.workers,
        test_format=args.test_format,
        progress=not args.quiet,
        difficulty=args.difficulty,
        test_scale=args.test_scale,
    )
    print(f"wrote synthetic HAM10000 to {out}", file=sys.stderr)
    return 0
