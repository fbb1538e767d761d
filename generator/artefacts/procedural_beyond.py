"""Procedural templates of the kinds beyond the paper: hair, dark corners (the dermatoscope's field of
view), gel borders and calibration patches.

Kinds whose templates share properties within a set (one person's hair, one device's lens) have
generators that make a whole set at once, ``make_set(rng, count) -> [template, ...]``. Like
``procedural``, every template is an int16 HxWx3 signed difference from numpy element-wise arithmetic.
"""

from __future__ import annotations

import math

import numpy as np

from .texture import smooth_noise, to_template

SKIN_REFERENCE = (196, 150, 128)
"""A typical light skin tone; opaque artefacts (calibration stickers) are stored as their colour minus it."""


def _polyline_distance(
    points: np.ndarray, height: int, width: int, reach: float
) -> tuple[np.ndarray, np.ndarray]:
    """Distance of every pixel of a ``height`` x ``width`` grid to a polyline (k x 2 array of (row, col)),
    and the arc position (0 at the first point, 1 at the last) of the nearest point on it.

    Only pixels within ``reach`` of a segment get a finite distance (each segment is evaluated in its own
    bounding box, which keeps long diagonal strands cheap to draw)."""
    best = np.full((height, width), np.inf)
    where = np.zeros((height, width))
    lengths = np.sqrt(((points[1:] - points[:-1]) ** 2).sum(axis=1))
    starts = np.concatenate([[0.0], np.cumsum(lengths)])
    total = max(float(starts[-1]), 1e-9)
    for (ay, ax), (by, bx), start, length in zip(points[:-1], points[1:], starts[:-1], lengths, strict=True):
        y0, y1 = max(int(min(ay, by) - reach), 0), min(int(math.ceil(max(ay, by) + reach)) + 1, height)
        x0, x1 = max(int(min(ax, bx) - reach), 0), min(int(math.ceil(max(ax, bx) + reach)) + 1, width)
        y = np.arange(y0, y1, dtype=np.float64)[:, None]
        x = np.arange(x0, x1, dtype=np.float64)[None, :]
        t = np.clip(((y - ay) * (by - ay) + (x - ax) * (bx - ax)) / max(length * length, 1e-12), 0, 1)
        dist = np.sqrt((y - ay - t * (by - ay)) ** 2 + (x - ax - t * (bx - ax)) ** 2)
        window, window_where = best[y0:y1, x0:x1], where[y0:y1, x0:x1]
        closer = dist < window
        window[closer] = dist[closer]
        window_where[closer] = ((start + t * length) / total)[closer]
    return best, where


def hair_strand(rng: np.random.Generator, thickness: float, colour: np.ndarray) -> np.ndarray:
    """One hair: a gently curved, tapering dark strand (a cubic curve with a small wobble), anti-aliased,
    drawn at its own angle (insertion then only flips and quarter-turns it: no resampling of thin lines)."""
    length = rng.uniform(90, 360)
    # at least a slight curve: a ruler-straight hair looks drawn
    bend1, bend2 = rng.uniform(0.06, 0.3, size=2) * length * rng.choice([-1.0, 1.0], size=2)
    t = np.linspace(0, 1, 21)[:, None]
    # cubic Bezier from (0, 0) to (0, length) in (across, along) with two sideways control points
    across = 3 * (1 - t) ** 2 * t * bend1 + 3 * (1 - t) * t**2 * bend2
    across += rng.uniform(0, 1.5) * np.sin(t * rng.uniform(6, 14) + rng.uniform(0, 6.3))
    along = t * length
    angle = rng.uniform(0, math.pi / 2)
    rows = across * math.cos(angle) + along * math.sin(angle)
    cols = -across * math.sin(angle) + along * math.cos(angle)
    margin = thickness + 3
    height = int(math.ceil(float(rows.max() - rows.min()) + 2 * margin))
    width = int(math.ceil(float(cols.max() - cols.min()) + 2 * margin))
    points = np.hstack([rows - rows.min() + margin, cols - cols.min() + margin])
    dist, position = _polyline_distance(points, height, width, thickness / 2 + 2)
    # hairs taper towards the tip; the root end is cut off by the image or the skin surface
    taper = np.clip(1.0 - np.clip(position - 0.6, 0, None) / 0.4 * 0.7, 0.3, 1.0)
    radius = thickness / 2 * taper
    coverage = np.clip(radius + 0.5 - dist, 0, 1)
    # a hair is darkest along its axis and slightly translucent at the edges
    core = np.clip(1.0 - dist / np.maximum(radius + 0.5, 0.5), 0, 1) ** 0.5
    # pigment and the angle to the light vary along a hair
    along_light = 0.8 + 0.2 * np.sin(position * rng.uniform(4, 12) + rng.uniform(0, 6.3))
    shade = coverage * (0.55 + 0.45 * core) * along_light
    shade[shade < 0.04] = 0.0
    return to_template(-shade[:, :, None] * colour)


def hair_set(rng: np.random.Generator, count: int) -> list[np.ndarray]:
    """Strands of one person's hair: a shared colour (black to mid brown) and thickness."""
    # HAM10000's hairs range from mid-brown, thin and translucent to black and thick
    darkness = rng.uniform(90, 190)
    colour = darkness * np.array([1.0, rng.uniform(0.75, 0.88), rng.uniform(0.6, 0.78)])
    thickness = rng.uniform(1.0, 3.2)
    return [
        hair_strand(rng, thickness * rng.uniform(0.8, 1.2), colour * rng.uniform(0.85, 1.1))
        for _ in range(count)
    ]


DARK_CORNER_FRAME = (450, 600)
"""(H, W) of a dark-corner template: HAM10000's image size; insertion scales it to the image."""


def dark_corner(rng: np.random.Generator) -> np.ndarray:
    """The round field of view of a dermatoscope: black outside a circle centred near the image centre,
    with a soft or hard edge, a little brown fringe and an uneven lens rim."""
    height, width = DARK_CORNER_FRAME
    half_diagonal = math.hypot(height, width) / 2
    radius = rng.uniform(0.62, 0.93) * half_diagonal
    edge = rng.uniform(0.01, 0.12) * radius
    aspect = rng.uniform(0.96, 1.0)
    cy = (height - 1) / 2 + rng.uniform(-0.015, 0.015) * height
    cx = (width - 1) / 2 + rng.uniform(-0.015, 0.015) * width
    phases = rng.uniform(0, 6.3, size=2)
    y = np.arange(height, dtype=np.float64)[:, None] - cy
    x = (np.arange(width, dtype=np.float64)[None, :] - cx) * aspect
    rho = np.sqrt(x * x + y * y)
    darkness = (rho > radius).astype(np.float64)
    # only the rim band needs the exact profile (keeps the builtin bank quick to build)
    rows, cols = np.nonzero(np.abs(rho - radius) < edge / 2 + 0.01 * radius + 1)
    by, bx = y[rows, 0], x[0, cols]
    theta = np.arctan2(by, bx)
    # the rim is not a perfect circle: the lens housing and the plate's pressure bend it a little
    wobble = radius * (0.006 * np.sin(2 * theta + phases[0]) + 0.004 * np.sin(5 * theta + phases[1]))
    step = np.clip((rho[rows, cols] - radius - wobble) / edge + 0.5, 0, 1)
    darkness[rows, cols] = step * step * (3 - 2 * step)  # smoothstep
    darkness[darkness < 0.01] = 0.0
    # light scattered in the lens tints the fading edge (brownish or violet, as in HAM10000) before
    # it turns black: the tinted channels are darkened less there
    fringe = 1 - darkness
    tint = np.array([30.0, 10.0, 0.0]) if rng.random() < 0.5 else np.array([25.0, 0.0, 35.0])
    template = -darkness[:, :, None] * (255 - tint * fringe[:, :, None])
    return to_template(template)


def gel_border(rng: np.random.Generator) -> np.ndarray:
    """A strip along an image edge (row 0 is the edge): bright, bluish-white gel with an uneven inner
    boundary, a glossy highlight along that boundary and a thin refraction shadow just outside it."""
    length = int(rng.integers(260, 600))
    depth = rng.uniform(18, 60)
    height = int(math.ceil(depth * 1.6 + 12))
    x = np.arange(length, dtype=np.float64)[None, :]
    y = np.arange(height, dtype=np.float64)[:, None]
    u = x / (length - 1)
    # the gel layer thins out towards the ends of the strip and its boundary meanders
    envelope = np.clip(np.sin(np.pi * u) * rng.uniform(1.1, 1.8), 0, 1) ** 0.7
    amplitudes, phases = rng.uniform(0.04, 0.15, size=3), rng.uniform(0, 2 * math.pi, size=3)
    frequencies = rng.uniform([0.5, 1.5, 3.0], [1.5, 3.0, 5.0])
    meander = 0.75 + sum(
        a * np.sin(2 * math.pi * f * u + p) for a, f, p in zip(amplitudes, frequencies, phases, strict=True)
    )
    boundary = depth * envelope * meander
    inside = np.clip(boundary - y + 0.5, 0, 1)
    gel = inside * rng.uniform(22, 55) * (0.7 + 0.6 * smooth_noise(rng, height, length, 6))
    gel *= np.clip(1.0 - 0.5 * y / np.maximum(boundary, 1.0), 0.4, 1.0)  # thicker (brighter) at the edge
    gloss = rng.uniform(30, 80) * np.exp(-(((y - boundary + 1.5) / rng.uniform(1.2, 2.8)) ** 2))
    gloss *= (0.5 + 0.5 * smooth_noise(rng, 1, length, 10)) * (boundary > 2)
    shadow = -rng.uniform(12, 30) * np.exp(-(((y - boundary - 2.5) / 1.5) ** 2)) * (boundary > 2)
    total = gel + gloss + shadow
    total[np.abs(total) < 1.0] = 0.0
    tint = np.array([0.9, 0.97, 1.05])  # thin gel films reflect slightly bluish light
    return to_template(total[:, :, None] * tint)


_STICKER_COLOURS = np.array(
    [
        (40, 170, 80),
        (30, 110, 200),
        (240, 210, 40),
        (235, 120, 30),
        (210, 40, 50),
        (150, 60, 170),
        (245, 245, 240),
    ],
    dtype=np.float64,
)
"""Printed colours of round calibration stickers and colour-chart fields: green, blue, yellow, orange,
red, violet, white (white only in charts: white dots would be mistaken for bubble highlights)."""


def _rounded_box(y: np.ndarray, x: np.ndarray, half_h: float, half_w: float, corner: float) -> np.ndarray:
    """Signed distance (negative inside) to a rounded rectangle centred at the origin."""
    qy, qx = np.abs(y) - half_h + corner, np.abs(x) - half_w + corner
    outside = np.sqrt(np.maximum(qy, 0) ** 2 + np.maximum(qx, 0) ** 2)
    return outside + np.minimum(np.maximum(qy, qx), 0) - corner


def patch(rng: np.random.Generator) -> np.ndarray:
    """A calibration sticker: a round coloured dot, a square label, or a small chart of coloured fields,
    with a thin dark outline, a soft shadow and a sheen."""
    shape = rng.choice(["dot", "dot", "square", "chart"])
    if shape == "chart":
        cells = int(rng.integers(3, 6))
        side = rng.uniform(12, 20)
        half_h, half_w, corner = side / 2 + 2, cells * side / 2 + 2, 2.0
    elif shape == "square":
        half_h = half_w = rng.uniform(10, 24)
        corner = rng.uniform(2, 6)
    else:
        half_h = half_w = corner = rng.uniform(8, 26)
    pad = 6
    height, width = int(2 * (half_h + pad)), int(2 * (half_w + pad))
    y = np.arange(height, dtype=np.float64)[:, None] - (height - 1) / 2
    x = np.arange(width, dtype=np.float64)[None, :] - (width - 1) / 2
    sdf = _rounded_box(y, x, half_h, half_w, corner)
    inside = np.clip(0.5 - sdf, 0, 1)
    if shape == "chart":
        order = rng.permutation(len(_STICKER_COLOURS))[:cells]
        field = np.clip(((x + cells * side / 2) // side).astype(int), 0, cells - 1)
        colour = _STICKER_COLOURS[order][field][0][None, :, :] * np.ones((height, 1, 1))
    else:
        colour = np.ones((height, width, 1)) * _STICKER_COLOURS[int(rng.integers(len(_STICKER_COLOURS) - 1))]
    colour = colour * rng.uniform(0.85, 1.0)  # faded print, light through the plate
    target = colour - np.array(SKIN_REFERENCE, dtype=np.float64)
    outline = np.exp(-(((sdf + 0.8) / 0.8) ** 2)) * rng.uniform(40, 90)
    sheen = rng.uniform(10, 35) * np.exp(
        -(((y + half_h * 0.4) ** 2 + (x - half_w * 0.3) ** 2) / (0.5 * half_h) ** 2)
    )
    shadow = np.exp(-np.maximum(sdf, 0) / 2.0) * (1 - inside) * rng.uniform(15, 35) * (sdf > 0)
    total = inside[:, :, None] * (target + sheen[:, :, None]) - (outline + shadow)[:, :, None]
    total[np.abs(total).max(axis=2) < 1.5] = 0.0
    return to_template(total)
