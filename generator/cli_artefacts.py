"""Commands ``insert`` and ``templates {list,gallery,extract}``."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    insert = subparsers.add_parser(
        "insert",
        help="insert one artefact into an image",
        description="Insert an artefact of one kind into an image (deterministic for a given seed).",
    )
    insert.add_argument("--image", required=True, help="input image (RGB, grayscale or RGBA)")
    insert.add_argument(
        "--mask", help="lesion mask, 0/1 or 0/255, same size as the image (default: image centre)"
    )
    insert.add_argument("--kind", required=True, help="artefact kind (see `templates list`)")
    insert.add_argument("--templates", default="builtin", help="'builtin' (default) or a template directory")
    insert.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    insert.add_argument("--out", required=True, help="output PNG")
    insert.add_argument("--artefact-mask-out", help="also write the mask of changed pixels (PNG, 0/255)")
    insert.add_argument("--record-out", help="also write the JSON record that replays this insertion")
    insert.set_defaults(func=run_insert)

    templates = subparsers.add_parser("templates", help="inspect, preview and extract artefact templates")
    tsub = templates.add_subparsers(dest="templates_command", metavar="SUBCOMMAND")
    templates.set_defaults(func=_templates_help(templates))

    listing = tsub.add_parser("list", help="count template sets and templates per kind")
    listing.add_argument("--templates", default="builtin", help="'builtin' (default) or a template directory")
    listing.set_defaults(func=run_list)

    gallery = tsub.add_parser(
        "gallery", help="render a gallery PNG of the templates and one insertion per kind"
    )
    gallery.add_argument("--templates", default="builtin", help="'builtin' (default) or a template directory")
    gallery.add_argument(
        "--compare",
        action="append",
        default=[],
        help="another bank to show beside it (repeatable), e.g. a real template directory",
    )
    gallery.add_argument("--seed", type=int, default=0)
    gallery.add_argument("--out", required=True, help="output PNG")
    gallery.set_defaults(func=run_gallery)

    examples = tsub.add_parser(
        "examples",
        help="insert each kind into the bundled synthetic demo image",
        description="Write demo.png and demo_mask.png (a synthetic lesion image) and <kind>.png, the clean "
        "image beside the image with that kind inserted, for every kind in the bank.",
    )
    examples.add_argument(
        "--templates", default="builtin", help="'builtin' (default) or a template directory"
    )
    examples.add_argument("--seed", type=int, default=0)
    examples.add_argument("--out", required=True, help="output directory")
    examples.set_defaults(func=run_examples)

    extract = tsub.add_parser(
        "extract",
        help="make a template set from your own images (meta.json layout)",
        description="From a with/without pair (--with, --without), or from one image and a mask of the "
        "artefact (--image, --artefact-mask; the artefact-free image is made by inpainting).",
    )
    extract.add_argument("--kind", required=True)
    extract.add_argument("--out", required=True, help="template directory to create or extend")
    extract.add_argument("--with", dest="with_path", help="image with the artefact")
    extract.add_argument("--without", dest="without_path", help="the same image without the artefact")
    extract.add_argument("--image", help="image with the artefact (inpainting workflow)")
    extract.add_argument("--artefact-mask", help="mask of the artefact's pixels (inpainting workflow)")
    extract.add_argument("--name", help="template set name (default: the image's file stem)")
    extract.add_argument("--inpaint-radius", type=int, default=5)
    extract.set_defaults(func=run_extract)


def _templates_help(parser: argparse.ArgumentParser):
    def show(args) -> int:
        parser.print_help()
        return 2

    return show


def run_insert(args: argparse.Namespace) -> int:
    import json

    from .artefacts import insert_artefact
    from .artefacts.kinds import get_kind
    from .artefacts.templates import TemplateBank
    from .atomic import write_text_atomic
    from .images import load_image, load_mask, save_png

    get_kind(args.kind)  # fail fast, before reading anything
    image = load_image(args.image)
    mask = load_mask(args.mask, image.shape) if args.mask else None
    bank = TemplateBank.load(args.templates)
    out, artefact_mask, record = insert_artefact(image, mask, args.kind, bank, args.seed)
    record["templates"] = args.templates
    save_png(args.out, out)
    if args.artefact_mask_out:
        save_png(args.artefact_mask_out, artefact_mask)
    if args.record_out:
        write_text_atomic(args.record_out, json.dumps(record, indent=2) + "\n")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from .artefacts.templates import TemplateBank

    bank = TemplateBank.load(args.templates)
    sets, templates = bank.counts(), bank.template_counts()
    print(f"templates: {bank.source}  fingerprint: {bank.fingerprint}")
    print(f"{'kind':<18}{'sets':>6}{'templates':>11}")
    for kind in sets:
        print(f"{kind:<18}{sets[kind]:>6}{templates[kind]:>11}")
    print(f"{'total':<18}{sum(sets.values()):>6}{sum(templates.values()):>11}")
    return 0


def run_gallery(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .artefacts.gallery import write_gallery
    from .artefacts.templates import TemplateBank

    specs = [args.templates, *args.compare]
    banks = [
        (spec if spec == "builtin" else Path(spec).resolve().name, TemplateBank.load(spec)) for spec in specs
    ]
    path = write_gallery(banks, args.out, seed=args.seed)
    print(path)
    return 0


def run_examples(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .artefacts.gallery import demo_image, write_insertion_examples
    from .artefacts.templates import TemplateBank
    from .images import save_png

    bank = TemplateBank.load(args.templates)
    image, mask = demo_image(args.seed)
    out = Path(args.out)
    save_png(out / "demo.png", image)
    save_png(out / "demo_mask.png", mask.astype(bool))
    for path in write_insertion_examples(bank, out, seed=args.seed):
        print(path)
    return 0


def run_extract(args: argparse.Namespace) -> int:
    from .artefacts.extract import extract_template

    entry = extract_template(
        args.out,
        args.kind,
        with_path=args.with_path,
        without_path=args.without_path,
        image_path=args.image,
        artefact_mask_path=args.artefact_mask,
        name=args.name,
        inpaint_radius=args.inpaint_radius,
    )
    print(f"{args.out}: added template set {entry['name']} ({args.kind})")
    return 0
