"""Artefact insertion: draw a JSON-serialisable record (``realize``), then paint it (``render``).

The split makes every insertion replayable: the record names the template bank (fingerprint), the
template ids, flips, scales, whole-degree rotations and pixel centres, and ``render`` is a pure
function of (image, record, bank). Compositing adds the signed template to the image and clips to
[0, 255], touching only each instance's bounding box.

The rest of the artefact stage lives beside this module: the kind registry (``kinds``), template
banks (``templates``, ``procedural``, ``extract``), placement strategies (``placement``), the
gallery (``gallery``) and the training-time augmentation built on insertion (``augment``).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ..errors import UserError
from ..images import as_rgb, check_mask
from .kinds import DEFAULT_FAMILIES, FAMILIES, KindSpec, get_kind
from .placement import PLACEMENTS, box_at, make_scene
from .templates import TemplateBank

RECORD_FORMAT = "ham-artefacts-record/1"
FLIPS = ("none", "vertical", "horizontal")
"""Flip of the template before scaling: none, upside down (rows reversed), mirrored (columns reversed)."""


# --------------------------------------------------------------------------------------------- geometry
@functools.lru_cache(maxsize=4096)
def scaled_size(height: int, width: int, scale: float) -> tuple[int, int]:
    return max(1, int(round(height * scale))), max(1, int(round(width * scale)))


@functools.lru_cache(maxsize=4096)
def rotated_size(height: int, width: int, angle: int) -> tuple[int, int]:
    """Canvas (h, w) holding an (h, w) image rotated by ``angle`` degrees without cropping."""
    quarter = angle % 360
    if quarter % 90 == 0:
        return (height, width) if quarter % 180 == 0 else (width, height)
    rad = math.radians(angle)
    c, s = abs(math.cos(rad)), abs(math.sin(rad))
    return int(math.ceil(height * c + width * s - 1e-9)), int(math.ceil(width * c + height * s - 1e-9))


@functools.lru_cache(maxsize=4096)
def transformed_size(shape: tuple[int, int], scale: float, angle: int) -> tuple[int, int]:
    return rotated_size(*scaled_size(shape[0], shape[1], scale), angle)


def fit_scale(shape: tuple[int, int], scale: float, angle: int, image_hw: tuple[int, int]) -> float:
    """``scale`` reduced (to 4 decimals, downwards) until the transformed template fits in the image."""
    scale = math.floor(scale * 10000) / 10000
    for _ in range(64):
        height, width = transformed_size(shape, scale, angle)
        if height <= image_hw[0] and width <= image_hw[1]:
            return scale
        factor = min(image_hw[0] / height, image_hw[1] / width)
        scale = math.floor(scale * min(factor, 0.999) * 10000) / 10000
        if scale <= 0.0001:
            return 0.0001
    return scale


# --------------------------------------------------------------------------------------------- realize
def _draw_instances(
    spec: KindSpec, bank: TemplateBank, rng: np.random.Generator, image_hw, template_scale: float = 1.0
) -> tuple[str, list]:
    sets = bank.sets.get(spec.name) or []
    if not sets:
        raise UserError(f"--kind: the template bank {bank.source} has no {spec.name!r} templates")
    template_set = sets[int(rng.integers(len(sets)))]
    templates = list(template_set.templates)
    if spec.single_instance:
        chosen = [templates[int(rng.integers(len(templates)))]]
    else:
        chosen = [t for t in templates if rng.random() >= spec.remove_prob]
        if not chosen:
            chosen = [templates[0]]
        chosen += [t for t in list(chosen) if rng.random() < spec.replicate_prob]
    instances = []
    for template in chosen:
        flip = "none"
        if rng.random() < spec.flip_prob:
            flip = "horizontal" if rng.random() < 0.5 else "vertical"
        scale = 1.0
        if rng.random() < spec.resize_prob:
            scale = float(rng.uniform(*spec.resize_range))
        angle = 0
        if rng.random() < spec.rotate_prob:
            if spec.rotate_step == 1:
                angle = int(rng.integers(spec.rotate_range[0], spec.rotate_range[1] + 1))
            else:
                step = spec.rotate_step
                angle = step * int(
                    rng.integers(spec.rotate_range[0] // step, spec.rotate_range[1] // step + 1)
                )
        if spec.fill_image:  # as large as the image allows, whatever the template's own size
            scale = max(image_hw[0] / template.shape[0], image_hw[1] / template.shape[1])
        else:
            scale = scale * template_scale
        scale = fit_scale(template.shape, scale, angle, image_hw)
        height, width = scaled_size(*template.shape, scale)
        instances.append(
            {
                "template": template.id,
                "flip": flip,
                "scale": scale,
                "angle": angle,
                "size": transformed_size(template.shape, scale, angle),
                "extent": (width, height),
            }
        )
    return template_set.name, instances


def _realize(
    kind: str,
    bank: TemplateBank,
    image_shape,
    mask,
    rng: np.random.Generator,
    seed,
    template_scale: float = 1.0,
) -> dict:
    spec = get_kind(kind)
    height, width = int(image_shape[0]), int(image_shape[1])
    if height < 1 or width < 1:
        raise UserError(f"image: empty image of size {width}x{height}")
    lesion = check_mask(mask, (height, width))
    set_name, instances = _draw_instances(spec, bank, rng, (height, width), template_scale)
    scene = make_scene(height, width, lesion)
    centres = PLACEMENTS[spec.placement](scene, instances, rng, spec)
    placed = []
    for instance, centre in zip(instances, centres, strict=True):
        if centre is None:
            continue  # no room without overlapping another instance
        placed.append(
            {
                "template": instance["template"],
                "flip": instance["flip"],
                "scale": instance["scale"],
                "angle": instance["angle"],
                "centre": [int(centre[0]), int(centre[1])],
            }
        )
    record = {
        "format": RECORD_FORMAT,
        "kind": kind,
        "seed": seed,
        "bank": bank.fingerprint,
        "template_set": set_name,
        "image_shape": [height, width],
        "instances": placed,
    }
    if bank.families is not None and bank.families != DEFAULT_FAMILIES:
        # which sub-bank "bank" fingerprints, so that the whole bank can replay the record too
        record["families"] = list(bank.families)
    return record


def realize(
    kind: str, bank: TemplateBank, image_shape, mask=None, seed: int = 0, template_scale: float = 1.0
) -> dict:
    """Draw one insertion of ``kind``: a small JSON-serialisable record (no pixels are touched).

    ``image_shape`` is (H, W) or (H, W, C); ``mask`` is None, 0/1 or 0/255 of size HxW.
    ``template_scale`` multiplies every drawn template scale (templates are cut from 600x450
    HAM10000 images; a 300x225 image needs 0.5 for artefacts of the same relative size). The
    record holds the final scales, so ``render`` needs no such argument.
    """
    return _realize(kind, bank, image_shape, mask, np.random.default_rng(seed), int(seed), template_scale)


def realize_random(bank: TemplateBank, image_shape, mask=None, seed: int = 0) -> dict:
    """Family uniformly among those in the bank, then kind uniformly within it, then :func:`realize`.

    All from one ``default_rng(seed)`` stream.
    """
    rng = np.random.default_rng(seed)
    present = set(bank.kinds())
    families = [(family, [k for k in kinds if k in present]) for family, kinds in FAMILIES.items()]
    families = [(family, kinds) for family, kinds in families if kinds]
    if not families:
        raise UserError(f"--templates: the template bank {bank.source} holds no templates")
    _, kinds = families[int(rng.integers(len(families)))]
    kind = kinds[int(rng.integers(len(kinds)))]
    return _realize(kind, bank, image_shape, mask, rng, int(seed))


# --------------------------------------------------------------------------------------------- render
TILE = 32
"""Output tile size: tiles whose source footprint holds no template pixel are not warped at all."""
SMALL_WINDOW = 128 * 128
"""Instances covering at most this many pixels are warped in one call, without tiling."""


def _mip_level(scale: float, shape: tuple[int, int]) -> int:
    """Coarsest level k with scale * 2**k <= 1, so shrinking never samples thin lines bilinearly below 1/2."""
    level = 0
    while scale * (2 ** (level + 1)) <= 1.0 and min(shape) >= 2 ** (level + 2):
        level += 1
    return level


def _inverse_coefficients(shape, flip: str, scale: float, angle: int, level: int) -> tuple:
    """``(a00, a01, a02, a10, a11, a12)``: the 2x3 affine taking canvas pixel (x, y) to source pixel
    (x, y) of the template's mip ``level``, as plain floats (cheap to shift per output window).

    Forward, the template is flipped, scaled to ``scaled_size`` about pixel centres, rotated
    counter-clockwise by ``angle`` degrees about its centre (OpenCV's convention) and centred on a
    ``rotated_size`` canvas.
    """
    height, width = shape
    scaled_h, scaled_w = scaled_size(height, width, scale)
    canvas_h, canvas_w = rotated_size(scaled_h, scaled_w, angle)
    rad = math.radians(angle)
    cos, sin = math.cos(rad), math.sin(rad)
    # canvas (x, y) -> scaled, unrotated template (px, py): rotate back about the centres
    cx, cy = (canvas_w - 1) / 2.0, (canvas_h - 1) / 2.0
    hx, hy = (scaled_w - 1) / 2.0, (scaled_h - 1) / 2.0
    a00, a01, a02 = cos, -sin, hx - cos * cx + sin * cy
    a10, a11, a12 = sin, cos, hy - sin * cx - cos * cy
    # scaled -> original pixel centres: u = (p + 0.5) / s - 0.5, per axis
    sx, sy = scaled_w / width, scaled_h / height
    a00, a01, a02 = a00 / sx, a01 / sx, (a02 + 0.5) / sx - 0.5
    a10, a11, a12 = a10 / sy, a11 / sy, (a12 + 0.5) / sy - 0.5
    if flip == "horizontal":
        a00, a01, a02 = -a00, -a01, width - 1.0 - a02
    elif flip == "vertical":
        a10, a11, a12 = -a10, -a11, height - 1.0 - a12
    # original -> mip level pixel centres
    factor = float(2**level)
    a00, a01, a02 = a00 / factor, a01 / factor, (a02 + 0.5) / factor - 0.5
    a10, a11, a12 = a10 / factor, a11 / factor, (a12 + 0.5) / factor - 0.5
    return a00, a01, a02, a10, a11, a12


def _inverse_map(shape, flip: str, scale: float, angle: int, level: int) -> np.ndarray:
    """2x3 affine taking canvas pixel (x, y) to source pixel (x, y) of the template's mip ``level``.

    See :func:`_inverse_coefficients`.
    """
    a00, a01, a02, a10, a11, a12 = _inverse_coefficients(shape, flip, scale, angle, level)
    return np.array([[a00, a01, a02], [a10, a11, a12]])


def _shifted(inverse: tuple, dx: int, dy: int) -> np.ndarray:
    """The inverse map (coefficients a00..a12) for an output window whose origin is canvas pixel (dx, dy)."""
    a00, a01, a02, a10, a11, a12 = inverse
    return np.array([[a00, a01, a02 + a00 * dx + a01 * dy], [a10, a11, a12 + a10 * dx + a11 * dy]])


def _add_clipped(out: np.ndarray, y0: int, x0: int, delta: np.ndarray) -> None:
    """``out[box] = clip(out[box] + delta, 0, 255)`` for an int16 ``delta`` (OpenCV saturating add)."""
    import cv2

    region = out[y0 : y0 + delta.shape[0], x0 : x0 + delta.shape[1]]
    region[...] = cv2.add(region, np.ascontiguousarray(delta), dtype=cv2.CV_8U)


def _add_warped(out: np.ndarray, level, matrix: np.ndarray, y0: int, x0: int, y1: int, x1: int) -> None:
    """Warp the level's planes onto output box (y0, x0, y1, x1) and add them, clipped to [0, 255].

    The sums are exact: with one offset plane, ``image + plane + bias`` is evaluated by addWeighted in
    float32 (all terms are small integers, so exactly) and rounded/saturated once; with a positive and a
    negative plane, image + plane in int16, then the negative plane is subtracted with a single
    saturating conversion back to uint8.
    """
    import cv2

    region = out[y0:y1, x0:x1]
    size = (x1 - x0, y1 - y0)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    if len(level.planes) == 1:
        plane, sign, bias = level.planes[0]
        border = -bias * sign
        four = cv2.warpAffine(
            plane,
            matrix,
            size,
            flags=flags,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(border, border, border, 0),
        )
        cv2.addWeighted(region, 1.0, cv2.cvtColor(four, cv2.COLOR_BGRA2BGR), 1.0, float(bias), dst=region)
        return
    warped = []
    for plane, sign, bias in level.planes:
        border = -bias * sign
        four = cv2.warpAffine(
            plane,
            matrix,
            size,
            flags=flags,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(border, border, border, 0),
        )
        warped.append(cv2.cvtColor(four, cv2.COLOR_BGRA2BGR))
    summed = cv2.add(region, warped[0], dtype=cv2.CV_16S)
    region[...] = cv2.subtract(summed, warped[1], dtype=cv2.CV_8U)


def _paint_direct(out: np.ndarray, pixels: np.ndarray, centre) -> list:
    """Composite an untransformed (or quarter-turned) template: plain slicing, no resampling."""
    height, width = out.shape[:2]
    top, left, bottom, right = box_at(centre, pixels.shape[:2])
    y0, x0, y1, x1 = max(top, 0), max(left, 0), min(bottom, height), min(right, width)
    if y0 >= y1 or x0 >= x1:
        return []
    _add_clipped(out, y0, x0, pixels[y0 - top : y1 - top, x0 - left : x1 - left])
    return [(y0, x0, y1, x1)]


def _paint_warped(out: np.ndarray, template, flip: str, scale: float, angle: int, centre) -> list:
    """Warp only the non-empty tiles of the instance's canvas that fall inside the image, and add them."""

    height, width = out.shape[:2]
    canvas = transformed_size(template.shape, scale, angle)
    top, left, bottom, right = box_at(centre, canvas)
    y0, x0, y1, x1 = max(top, 0), max(left, 0), min(bottom, height), min(right, width)
    if y0 >= y1 or x0 >= x1:
        return []
    level_index = _mip_level(scale, template.shape)
    level = template.level(level_index)
    inverse = _inverse_coefficients(template.shape, flip, scale, angle, level_index)
    if (y1 - y0) * (x1 - x0) <= SMALL_WINDOW:  # bubbles, spots: one call beats the tile bookkeeping
        _add_warped(out, level, _shifted(inverse, x0 - left, y0 - top), y0, x0, y1, x1)
        return [(y0, x0, y1, x1)]
    # which output tiles can see a template pixel: map each tile's corner pixels back to the source
    tile_y = np.arange(y0, y1, TILE)
    tile_x = np.arange(x0, x1, TILE)
    last_y = np.minimum(tile_y + TILE, y1) - 1
    last_x = np.minimum(tile_x + TILE, x1) - 1
    # canvas coordinates of each tile's first and last row/column, corner index on the leading axes
    corner_y = np.empty((2, 1, tile_y.size, 1))
    corner_y[0, 0, :, 0] = tile_y - top
    corner_y[1, 0, :, 0] = last_y - top
    corner_x = np.empty((1, 2, 1, tile_x.size))
    corner_x[0, 0, 0, :] = tile_x - left
    corner_x[0, 1, 0, :] = last_x - left
    a00, a01, a02, a10, a11, a12 = inverse
    src_x = a00 * corner_x + a01 * corner_y + a02
    src_y = a10 * corner_x + a11 * corner_y + a12
    level_h, level_w = level.shape

    def source_bound(values: np.ndarray, low: bool, limit: int) -> np.ndarray:
        if low:
            bound = np.floor(values.min(axis=(0, 1))).astype(np.int64) - 1
        else:
            bound = np.ceil(values.max(axis=(0, 1))).astype(np.int64) + 2
        return np.minimum(np.maximum(bound, 0, out=bound), limit, out=bound)

    sx0, sx1 = source_bound(src_x, True, level_w), source_bound(src_x, False, level_w)
    sy0, sy1 = source_bound(src_y, True, level_h), source_bound(src_y, False, level_h)
    sat = level.support_sat
    filled = (sat[sy1, sx1] - sat[sy0, sx1] - sat[sy1, sx0] + sat[sy0, sx0]) > 0
    # runs of consecutive non-empty tiles (row by row, left to right) are warped in one call each
    padded = np.zeros((filled.shape[0], filled.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = filled
    edges = np.diff(padded, axis=1)
    run_rows, run_starts = np.nonzero(edges == 1)
    run_ends = np.nonzero(edges == -1)[1] - 1
    boxes = []
    tile_y, last_y, tile_x, last_x = tile_y.tolist(), last_y.tolist(), tile_x.tolist(), last_x.tolist()
    for row, start, end in zip(run_rows.tolist(), run_starts.tolist(), run_ends.tolist(), strict=True):
        ry0, ry1 = tile_y[row], last_y[row] + 1
        rx0, rx1 = tile_x[start], last_x[end] + 1
        _add_warped(out, level, _shifted(inverse, rx0 - left, ry0 - top), ry0, rx0, ry1, rx1)
        boxes.append((ry0, rx0, ry1, rx1))
    return boxes


def paint_instance(out: np.ndarray, template, flip: str, scale: float, angle: int, centre) -> list:
    """Add one transformed template into ``out`` in place; returns the pixel boxes that were touched."""
    if flip not in FLIPS:
        raise UserError(f"record: unknown flip {flip!r}; valid: {', '.join(FLIPS)}")
    quarter = angle % 360
    if scale == 1.0 and quarter % 90 == 0:
        pixels = template.pixels
        if flip == "vertical":
            pixels = pixels[::-1]
        elif flip == "horizontal":
            pixels = pixels[:, ::-1]
        return _paint_direct(out, np.rot90(pixels, k=quarter // 90), centre)
    return _paint_warped(out, template, flip, scale, angle, centre)


def _sub_bank_fingerprint(record: dict, bank: TemplateBank) -> str | None:
    """Fingerprint of the part of ``bank`` a record was drawn from: ``generate`` draws from the families it
    was given (the paper's three by default; other choices are named in the record's "families")."""
    try:
        return bank.for_families(record.get("families") or DEFAULT_FAMILIES, strict=False).fingerprint
    except UserError:
        return None


def _check_record(record: dict, bank: TemplateBank, image: np.ndarray) -> None:
    if not isinstance(record, dict) or "instances" not in record or "kind" not in record:
        raise UserError("record: not an artefact record (needs 'kind' and 'instances')")
    get_kind(record["kind"])
    if record.get("bank") not in (None, bank.fingerprint) and record["bank"] != _sub_bank_fingerprint(
        record, bank
    ):
        raise UserError(
            f"record: made with template bank {record['bank']}, but the bank given is {bank.fingerprint} "
            f"({bank.source})"
        )
    shape = record.get("image_shape")
    if shape is not None and list(shape) != [image.shape[0], image.shape[1]]:
        raise UserError(
            f"record: drawn for a {shape[1]}x{shape[0]} image, not {image.shape[1]}x{image.shape[0]}"
        )


def render(image: np.ndarray, record: dict, bank: TemplateBank) -> tuple[np.ndarray, np.ndarray]:
    """Paint ``record`` onto ``image``: ``(image_out uint8 HxWx3, artefact_mask bool HxW)``.

    The artefact mask is exactly the set of pixels whose value changed.
    """
    image = as_rgb(image)
    _check_record(record, bank, image)
    out = image.copy()
    boxes = []
    for instance in record["instances"]:
        template = bank.template(instance["template"])
        centre = (int(instance["centre"][0]), int(instance["centre"][1]))
        boxes += paint_instance(
            out,
            template,
            instance.get("flip", "none"),
            float(instance["scale"]),
            int(instance["angle"]),
            centre,
        )
    return out, _changed_pixels(image, out, boxes)


def _changed_pixels(image: np.ndarray, out: np.ndarray, boxes: list) -> np.ndarray:
    """Boolean HxW mask of the pixels (inside ``boxes``) where ``out`` differs from ``image`` in any channel.

    Per box: |out - image| per channel, saturated to 0/255, then a grey conversion, which is non-zero
    exactly where any channel is (every channel weight times 255 rounds to at least 29).
    """
    import cv2

    changed = np.zeros(image.shape[:2], dtype=np.uint8)
    for y0, x0, y1, x1 in boxes:
        difference = cv2.absdiff(out[y0:y1, x0:x1], image[y0:y1, x0:x1])
        _, saturated = cv2.threshold(difference, 0, 255, cv2.THRESH_BINARY)
        box = changed[y0:y1, x0:x1]
        cv2.max(box, cv2.cvtColor(saturated, cv2.COLOR_RGB2GRAY), dst=box)
    cv2.threshold(changed, 0, 1, cv2.THRESH_BINARY, dst=changed)
    return changed.view(bool)


def insert_artefact(image: np.ndarray, mask, kind: str, bank: TemplateBank, seed: int = 0):
    """``realize`` + ``render``: returns ``(image_out, artefact_mask, record)``."""
    image = as_rgb(image)
    record = realize(kind, bank, image.shape, mask, seed)
    out, artefact_mask = render(image, record, bank)
    return out, artefact_mask, record
