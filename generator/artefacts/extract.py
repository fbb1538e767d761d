"""``templates extract``: turn a user's own photographs into a template set in the meta.json layout.

Two workflows (the paper's Figure 2): a with/without pair of the same crop, or a single image plus a
mask of the artefact, where the artefact-free image is made by inpainting (OpenCV ``cv2.inpaint``).
The result is written as ``<out>/src/<name>/<name>_with_NN.png`` / ``_without_NN.png`` plus a
``meta.json`` entry (appended to an existing bank, replacing an entry of the same name).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from ..images import encode_png, load_image, load_mask
from .kinds import get_kind

MARGIN = 3
"""Pixels kept around the artefact's bounding box in the cropped pair."""


def _bounding_box(changed: np.ndarray, margin: int) -> tuple[int, int, int, int] | None:
    rows, cols = np.nonzero(changed.any(axis=1))[0], np.nonzero(changed.any(axis=0))[0]
    if rows.size == 0:
        return None
    height, width = changed.shape
    return (
        max(0, rows[0] - margin),
        max(0, cols[0] - margin),
        min(height, rows[-1] + 1 + margin),
        min(width, cols[-1] + 1 + margin),
    )


def inpaint_without(image: np.ndarray, artefact_mask: np.ndarray, radius: int = 5) -> np.ndarray:
    """The image with the masked artefact removed by Telea inpainting (the 'without' image)."""
    import cv2

    mask8 = artefact_mask.astype(np.uint8) * 255
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    return cv2.cvtColor(cv2.inpaint(bgr, mask8, float(radius), cv2.INPAINT_TELEA), cv2.COLOR_BGR2RGB)


def extract_template(
    out_dir: str | Path,
    kind: str,
    *,
    with_path: str | Path | None = None,
    without_path: str | Path | None = None,
    image_path: str | Path | None = None,
    artefact_mask_path: str | Path | None = None,
    name: str | None = None,
    inpaint_radius: int = 5,
) -> dict:
    """Add one template set to the bank at ``out_dir``; returns the meta.json entry written."""
    from ..atomic import write_bytes_atomic, write_json_atomic

    spec = get_kind(kind)
    if with_path is not None or without_path is not None:
        if with_path is None or without_path is None or image_path is not None:
            raise UserError(
                "templates extract: give --with and --without together (or --image and --artefact-mask)"
            )
        with_image, without_image = load_image(with_path), load_image(without_path)
        if with_image.shape != without_image.shape:
            raise UserError(
                f"{without_path}: size {without_image.shape[1]}x{without_image.shape[0]} differs from "
                f"{with_path} ({with_image.shape[1]}x{with_image.shape[0]})"
            )
        changed = np.any(with_image != without_image, axis=2)
        source = Path(with_path)
    elif image_path is not None and artefact_mask_path is not None:
        with_image = load_image(image_path)
        artefact = load_mask(artefact_mask_path, with_image.shape)
        if not artefact.any():
            raise UserError(f"{artefact_mask_path}: the artefact mask is empty")
        without_image = inpaint_without(with_image, artefact, inpaint_radius)
        changed = artefact
        source = Path(image_path)
    else:
        raise UserError("templates extract: give --with/--without, or --image with --artefact-mask")
    box = _bounding_box(changed, MARGIN)
    if box is None:
        raise UserError(f"{with_path}: identical to {without_path}; there is no artefact to extract")
    y0, x0, y1, x1 = box
    name = name or source.stem
    if not name or "/" in name or name.startswith("."):
        raise UserError(f"--name: {name!r} is not a usable template set name")
    out_dir = Path(out_dir)
    # the bank's meta.json is read before anything is written, so a malformed one leaves no stray PNGs
    meta_path = out_dir / "meta.json"
    meta: Any = {"_comment": "Artefact template sets (ham-artefacts templates extract).", "artefacts": []}
    if meta_path.exists() or meta_path.is_symlink():
        from ..userio import read_json

        meta = read_json(meta_path)
        if (
            not isinstance(meta, dict)
            or not isinstance(meta.get("artefacts"), list)
            or not all(isinstance(e, dict) for e in meta["artefacts"])
        ):
            raise UserError(f"{meta_path}: expected an object with an 'artefacts' list of objects")
    folder = out_dir / "src" / name
    existing = sorted(folder.glob(f"{name}_with_*.png")) if folder.is_dir() else []
    number = len(existing) + 1
    write_bytes_atomic(folder / f"{name}_with_{number:02d}.png", encode_png(with_image[y0:y1, x0:x1]))
    write_bytes_atomic(folder / f"{name}_without_{number:02d}.png", encode_png(without_image[y0:y1, x0:x1]))
    entry = {"class": spec.meta_class}
    if spec.meta_subclass is not None:
        entry["subclass"] = spec.meta_subclass
    entry.update({"preprocessor": "difference", "name": name, "artefact_folder": f"src/{name}"})
    meta["artefacts"] = [e for e in meta["artefacts"] if e.get("name") != name] + [entry]
    write_json_atomic(meta_path, meta)
    return entry
