"""Gallery PNGs: templates per kind side by side for several banks, and one insertion per kind."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .kinds import KINDS
from .templates import TemplateBank

SKIN = (196, 150, 128)
"""Neutral skin tone that templates are shown on."""
TILE = 112
LABEL_HEIGHT = 18


def demo_image(seed: int = 0, size: tuple[int, int] = (600, 450)) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic dermatoscopic-looking image (W, H = ``size``) and its 0/1 lesion mask.

    Skin with soft mottling and a vignette, and an irregular brown lesion slightly off centre.
    """
    from .texture import smooth_noise

    width, height = size
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    ny, nx = (y - height / 2) / (height / 2), (x - width / 2) / (width / 2)
    vignette = 1.0 - 0.35 * np.clip(nx * nx + ny * ny - 0.5, 0, None)
    mottling = smooth_noise(rng, height, width, 12) - 0.5
    skin = np.array(SKIN, dtype=np.float64)[None, None, :] * (vignette + 0.12 * mottling)[:, :, None]
    cy, cx = height * rng.uniform(0.42, 0.55), width * rng.uniform(0.42, 0.58)
    angle = np.arctan2(y - cy, x - cx)
    radius = min(width, height) * rng.uniform(0.17, 0.24)
    wobble = (
        1 + 0.12 * np.sin(3 * angle + rng.uniform(0, 6.3)) + 0.07 * np.sin(5 * angle + rng.uniform(0, 6.3))
    )
    dist = np.sqrt((y - cy) ** 2 + ((x - cx) * 0.85) ** 2) / (radius * wobble)
    lesion = dist < 1.0
    pigment = np.clip(1.15 - dist, 0, 1) ** 0.6 * (0.75 + 0.5 * smooth_noise(rng, height, width, 9))
    brown = np.array([95.0, 58.0, 42.0])
    image = skin * (1 - pigment[:, :, None]) + brown * pigment[:, :, None]
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), lesion.astype(np.uint8)


def template_tile(template, tile: int = TILE) -> np.ndarray:
    """A template added onto plain skin, scaled down (never up) to fit a ``tile`` x ``tile`` square."""
    from PIL import Image

    pixels = template.pixels.astype(np.int32)
    shown = np.clip(np.array(SKIN, dtype=np.int32)[None, None, :] + pixels, 0, 255).astype(np.uint8)
    height, width = shown.shape[:2]
    factor = min(1.0, (tile - 4) / max(height, width))
    if factor < 1.0:
        new_size = (max(1, round(width * factor)), max(1, round(height * factor)))
        shown = np.asarray(Image.fromarray(shown).resize(new_size, Image.Resampling.LANCZOS))
    canvas = np.empty((tile, tile, 3), dtype=np.uint8)
    canvas[:] = SKIN
    top, left = (tile - shown.shape[0]) // 2, (tile - shown.shape[1]) // 2
    canvas[top : top + shown.shape[0], left : left + shown.shape[1]] = shown
    return canvas


def _label(image, xy, text: str) -> None:
    from PIL import ImageDraw

    ImageDraw.Draw(image).text(xy, text, fill=(20, 20, 20))


def render_template_gallery(banks: list[tuple[str, TemplateBank]], per_kind: int = 6):
    """PIL image: one row per kind; for each bank a block of up to ``per_kind`` template tiles."""
    from PIL import Image

    block_w = per_kind * TILE
    width = 130 + len(banks) * (block_w + 16)
    height = LABEL_HEIGHT + len(KINDS) * (TILE + 8)
    sheet = Image.new("RGB", (width, height), (250, 250, 250))
    for column, (label, bank) in enumerate(banks):
        _label(sheet, (130 + column * (block_w + 16), 2), f"{label} ({bank.source})"[:90])
    for row, kind in enumerate(KINDS):
        top = LABEL_HEIGHT + row * (TILE + 8)
        _label(sheet, (4, top + TILE // 2 - 6), kind)
        for column, (_, bank) in enumerate(banks):
            templates = [t for s in bank.sets[kind] for t in s.templates]
            # spread the shown templates over the sets rather than showing the first set only
            step = max(1, len(templates) // per_kind)
            for index, template in enumerate(templates[::step][:per_kind]):
                tile = Image.fromarray(template_tile(template))
                sheet.paste(tile, (130 + column * (block_w + 16) + index * TILE, top))
    return sheet


def render_insertion_gallery(
    banks: list[tuple[str, TemplateBank]], seed: int = 0, size=(600, 450), scale=0.5
):
    """PIL image: the demo image with each kind inserted, one row per bank (the clean image first)."""
    from PIL import Image

    from . import insert_artefact

    image, mask = demo_image(seed, size)
    thumb_w, thumb_h = int(size[0] * scale), int(size[1] * scale)
    columns = ["clean"] + list(KINDS)
    sheet = Image.new(
        "RGB",
        (130 + len(columns) * (thumb_w + 6), LABEL_HEIGHT + len(banks) * (thumb_h + 8)),
        (250, 250, 250),
    )
    for index, name in enumerate(columns):
        _label(sheet, (130 + index * (thumb_w + 6), 2), name)
    for row, (label, bank) in enumerate(banks):
        top = LABEL_HEIGHT + row * (thumb_h + 8)
        _label(sheet, (4, top + thumb_h // 2 - 6), label[:20])
        for index, kind in enumerate(columns):
            if kind == "clean":
                shown = image
            elif bank.sets[kind]:
                shown = insert_artefact(image, mask, kind, bank, seed)[0]
            else:
                continue
            thumb = Image.fromarray(shown).resize((thumb_w, thumb_h), Image.Resampling.LANCZOS)
            sheet.paste(thumb, (130 + index * (thumb_w + 6), top))
    return sheet


def write_gallery(banks: list[tuple[str, TemplateBank]], out: str | Path, seed: int = 0) -> Path:
    """Template comparison on top, insertion examples below, as one PNG (written atomically)."""
    import io

    from PIL import Image

    from ..atomic import write_bytes_atomic

    templates = render_template_gallery(banks)
    insertions = render_insertion_gallery(banks, seed=seed)
    width = max(templates.width, insertions.width)
    sheet = Image.new("RGB", (width, templates.height + insertions.height + 10), (250, 250, 250))
    sheet.paste(templates, (0, 0))
    sheet.paste(insertions, (0, templates.height + 10))
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    write_bytes_atomic(out, buffer.getvalue())
    return Path(out)


def write_insertion_examples(bank: TemplateBank, out_dir: str | Path, seed: int = 0) -> list[Path]:
    """``<out_dir>/<kind>.png``: clean | with artefact side by side, for every kind in the bank."""
    from ..images import save_png

    image, mask = demo_image(seed)
    paths = []
    for kind in bank.kinds():
        inserted = insert_artefact_pair(image, mask, kind, bank, seed)
        path = Path(out_dir) / f"{kind}.png"
        save_png(path, inserted)
        paths.append(path)
    return paths


def insert_artefact_pair(
    image: np.ndarray, mask, kind: str, bank: TemplateBank, seed: int, gap: int = 8
) -> np.ndarray:
    """Clean image and the same image with ``kind`` inserted, side by side with a white ``gap`` (pixels)."""
    from . import insert_artefact

    inserted = insert_artefact(image, mask, kind, bank, seed)[0]
    spacer = np.full((image.shape[0], gap, 3), 255, dtype=np.uint8)
    return np.concatenate([image, spacer, inserted], axis=1)
