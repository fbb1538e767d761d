"""One synthetic dermatoscopic photograph: skin, illumination, the warped lesion, hair and noise.

Each lesion's appearance is a function of (seed, lesion_id) and each photograph's viewing
conditions (rotation, zoom, position, hair, illumination, noise) of (seed, image_id).
"""

from __future__ import annotations

import numpy as np

from ...seeding import derive_seed
from .lesion import SHAPES, lerp_shape, paint_lesion, smooth_noise, unit_rgb
from .plan import PlannedImage, lesion_overlap

DEFAULT_SIZE = (600, 450)

_SKIN = (
    unit_rgb(232, 185, 165),
    unit_rgb(225, 170, 150),
    unit_rgb(215, 160, 130),
    unit_rgb(240, 200, 185),
    unit_rgb(195, 140, 110),
)
MAX_CANVAS = 256
"""Lesions are painted on a canvas of at most this side and scaled up by the warp: speed over detail."""


def render_image(
    planned: PlannedImage, seed: int, size: tuple[int, int] = DEFAULT_SIZE, difficulty: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """(rgb uint8 HxWx3, lesion mask uint8 0/1 HxW) of one synthetic dermatoscopic photograph."""
    import cv2

    w, h = size
    short = min(w, h)
    lesion_rng = np.random.default_rng(derive_seed(seed, "synth-lesion", planned.lesion_id))
    view = np.random.default_rng(derive_seed(seed, "synth-image", planned.image_id))

    # Skin and illumination are smooth, so they are computed at a quarter of the size.
    lw, lh = max(8, w // 4), max(8, h // 4)
    skin_tone = _SKIN[int(lesion_rng.integers(len(_SKIN)))] * lesion_rng.uniform(0.92, 1.05)
    low = np.empty((lh, lw, 3), np.float32)
    low[:] = np.clip(skin_tone * (1 + view.uniform(-0.04, 0.04, 3)), 0, 1)
    redness = smooth_noise(view, lh, lw, 3)  # patchy erythema: more red, less green/blue
    low *= 1 + 0.02 * redness[..., None] * np.array([0.3, -1.0, -0.7], np.float32)
    low *= (1 + 0.02 * smooth_noise(view, lh, lw, 4) + 0.012 * smooth_noise(view, lh, lw, 25))[..., None]
    yy, xx = np.mgrid[0:lh, 0:lw].astype(np.float32)
    aspect_w, aspect_h = w / max(w, h), h / max(w, h)
    r2 = ((xx + 0.5) / lw * 2 - 1) ** 2 * aspect_w**2 + ((yy + 0.5) / lh * 2 - 1) ** 2 * aspect_h**2
    gain = 1.0 - view.uniform(0.05, 0.3) * r2
    if view.random() < 0.3:  # the dermatoscope's dark circular field of view
        aperture = view.uniform(0.80, 0.97) ** 2 * (aspect_w**2 + aspect_h**2)
        gain *= np.clip((aperture - r2) / 0.05, 0.0, 1.0) * 0.95 + 0.03
    gain *= view.uniform(0.9, 1.05)
    white_balance = (1 + view.uniform(-0.03, 0.03, 3)).astype(np.float32)
    low *= white_balance

    # Lesion: painted in its own frame, warped into the photograph; with difficulty > 0 its shape
    # and colours are drawn toward a confuser class, painted with the same radius on a stream of its own.
    other, weight = lesion_overlap(planned.dx, planned.lesion_id, seed, difficulty)
    shape = lerp_shape(SHAPES[planned.dx], SHAPES[other], weight) if weight > 0 else SHAPES[planned.dx]
    radius_px = lesion_rng.uniform(*shape.radius) * short / 2
    paint_scale = min(1.0, MAX_CANVAS / (2.7 * radius_px))
    colour, opacity, inside = paint_lesion(planned.dx, lesion_rng, radius_px * paint_scale, shape)
    if weight > 0:
        confuser_rng = np.random.default_rng(derive_seed(seed, "synth-confuser", planned.lesion_id))
        colour = (1 - weight) * colour + weight * paint_lesion(
            other, confuser_rng, radius_px * paint_scale, shape
        )[0]
    side = opacity.shape[0]
    zoom = view.uniform(0.88, 1.12) / paint_scale
    angle = view.uniform(0, 360)
    centre = (w / 2 + view.uniform(-0.08, 0.08) * w, h / 2 + view.uniform(-0.08, 0.08) * h)
    m = np.asarray(cv2.getRotationMatrix2D((0, 0), angle, zoom), dtype=np.float64)  # float64 already
    m[:, 0] *= lesion_rng.uniform(0.72, 1.0)  # elongation: squeeze the canvas x axis
    m[:, 2] = np.array(centre) - m[:, :2] @ (side / 2, side / 2)
    # Warp only into the lesion's bounding box: most of the photograph is skin.
    corners = np.array([[0, 0, 1], [side, 0, 1], [0, side, 1], [side, side, 1]], float) @ m.T
    x0, y0 = np.maximum(np.floor(corners.min(axis=0)).astype(int) - 1, 0)
    x1, y1 = np.minimum(np.ceil(corners.max(axis=0)).astype(int) + 1, (w, h))
    m[:, 2] -= (x0, y0)
    box_size = (int(x1 - x0), int(y1 - y0))

    def warp(canvas: np.ndarray) -> np.ndarray:
        return np.asarray(
            cv2.warpAffine(
                canvas, m, box_size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
            )
        )

    premultiplied = warp(cv2.merge(list(colour * opacity * white_balance[:, None, None])))
    alpha = warp(opacity)
    mask = np.zeros((h, w), np.uint8)
    mask[y0:y1, x0:x1] = warp(inside) >= 0.5

    # Compose with single-channel factors: skin * grain * gain * (1 - alpha) + lesion * gain.
    gain_full = cv2.resize(gain, (w, h), interpolation=cv2.INTER_LINEAR)
    grain = cv2.resize(smooth_noise(view, h // 2, w // 2, 60), (w, h), interpolation=cv2.INTER_LINEAR)
    skin_factor = (1 + 0.022 * grain) * gain_full
    skin_factor[y0:y1, x0:x1] *= 1 - alpha
    img = np.asarray(cv2.resize(low, (w, h), interpolation=cv2.INTER_LINEAR), np.float32)  # no copy
    cv2.multiply(img, cv2.merge([skin_factor] * 3), dst=img)
    gain_roi = gain_full[y0:y1, x0:x1]
    img[y0:y1, x0:x1] += cv2.multiply(premultiplied, cv2.merge([gain_roi] * 3))

    # Hair: dark curved strands, anti-aliased; blended only where drawn.
    n_hair = 0 if view.random() < 0.45 else int(view.geometric(0.15))
    if n_hair:
        hair = np.zeros((h, w), np.uint8)
        thick = max(1, int(round(short / 300)))
        t = np.linspace(0, 1, 24)[:, None]
        for _ in range(min(n_hair, 30)):
            p0 = view.uniform(0, 1, 2) * (w, h)
            a = view.uniform(0, 2 * np.pi)
            length = view.uniform(0.3, 1.2) * max(w, h)
            p2 = p0 + length * np.array([np.cos(a), np.sin(a)])
            p1 = (p0 + p2) / 2 + view.normal(0, 0.15, 2) * length
            curve = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2
            cv2.polylines(
                hair,
                [np.round(curve * 4).astype(np.int32)],
                False,
                255,
                thick + int(view.integers(0, 2)),
                cv2.LINE_AA,
                shift=2,
            )
        drawn = hair > 0
        hair_weight = hair[drawn].astype(np.float32)[:, None] * (view.uniform(0.7, 0.95) / 255)
        hair_colour = unit_rgb(40, 28, 22) * view.uniform(0.5, 1.3)
        img[drawn] = img[drawn] * (1 - hair_weight) + hair_colour * hair_weight

    blurred = cv2.GaussianBlur(img, (0, 0), 0.5 + short / 900)
    noise = view.random((h, w), dtype=np.float32) - np.float32(0.5)  # uniform: cheaper than normal
    noise *= np.float32(view.uniform(0.008, 0.018) * np.sqrt(12))
    cv2.add(blurred, cv2.merge([noise] * 3), dst=blurred)
    rgb = cv2.convertScaleAbs(blurred, alpha=255.0)  # rounds and saturates to uint8
    return rgb, mask
