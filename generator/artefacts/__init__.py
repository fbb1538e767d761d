"""Artefact insertion: draw a JSON-serialisable record (``realize``), then paint it (``render``).

The split makes every insertion replayable: the record names the template bank (fingerprint), the
template ids, flips, scales, whole-degree rotations and pixel centres, and ``render`` is a pure
function of (image, record, bank). Compositing adds the signed template to the image and clips to
[0, 255], touching only each instance's bounding box.

The rest of the artefact stage lives beside this module: the kind registry (``kinds``), template
banks (``templates``, ``procedural``, ``extract``), placement strategies (``placement``), an
instance's geometry (``geometry``) and its compositing (``paint``), the gallery (``gallery``) and the
training-time augmentation built on insertion (``augment``).
"""

from __future__ import annotations

import numpy as np

from ..errors import UserError
from ..images import as_rgb, check_mask
from .geometry import FLIPS, fit_scale, rotated_size, scaled_size, transformed_size
from .kinds import DEFAULT_FAMILIES, FAMILIES, KindSpec, get_kind
from .paint import paint_instance
from .placement import PLACEMENTS, make_scene
from .templates import TemplateBank

__all__ = [
    "FLIPS",
    "RECORD_FORMAT",
    "fit_scale",
    "insert_artefact",
    "paint_instance",
    "realize",
    "realize_random",
    "render",
    "rotated_size",
    "scaled_size",
    "transformed_size",
]

RECORD_FORMAT = "ham-artefacts-record/1"


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
