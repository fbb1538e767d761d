"""Procedural artefact templates (signed RGB differences) generated from a seed, with no data files.

Every function returns an int16 HxWx3 array meant to be *added* to a skin image, like the templates
extracted from the original with/without photographs. Only numpy element-wise arithmetic is used,
so the same seed gives the same pixels on any machine.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [0, 1]: a random ``cells``-sized grid, bilinearly upsampled."""
    grid = rng.random((cells + 1, cells + 1))
    ys = np.linspace(0, cells, height)
    xs = np.linspace(0, cells, width)
    y0 = np.minimum(ys.astype(int), cells - 1)
    x0 = np.minimum(xs.astype(int), cells - 1)
    fy = (ys - y0)[:, None]
    fx = (xs - x0)[None, :]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _grain(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Speckled ink texture in [0, 1]: lightly smoothed white noise pushed towards 0 and 1.

    Felt-tip ink on skin is granular (it catches in skin furrows), not a flat wash.
    """
    noise = rng.random(shape)
    if noise.ndim == 2 and min(noise.shape) > 2:
        smooth = noise.copy()
        smooth[1:-1, 1:-1] = (
            noise[1:-1, 1:-1] * 2 + noise[:-2, 1:-1] + noise[2:, 1:-1] + noise[1:-1, :-2] + noise[1:-1, 2:]
        ) / 6
        noise = smooth
    return np.clip((noise - 0.3) / 0.35, 0, 1)


def _to_template(channels: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(channels), -255, 255).astype(np.int16)


def _ink_colour(rng: np.random.Generator) -> np.ndarray:
    """Per-channel darkening of violet/purple surgical ink on skin: green most, blue least."""
    green = rng.uniform(130, 200)
    red = green * rng.uniform(0.6, 0.85)
    blue = green * rng.uniform(0.25, 0.5)
    return np.array([red, green, blue])


def bubble(rng: np.random.Generator) -> np.ndarray:
    """An air bubble: dark refraction edge, bright specular rim on the lit side and a highlight spot."""
    radius = rng.uniform(7, 30)
    aspect = rng.uniform(0.82, 1.0)
    size = int(math.ceil(2 * radius + 8))
    centre = (size - 1) / 2
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    dy, dx = (y - centre) / radius, (x - centre) / (radius * aspect)
    dist = np.sqrt(dx * dx + dy * dy)
    light = rng.uniform(0, 2 * math.pi)
    ly, lx = math.sin(light), math.cos(light)
    # cosine between the pixel direction and the light direction: rims are brightest facing the light
    facing = (dx * lx + dy * ly) / np.maximum(dist, 1e-6)
    edge_width = 1.6 / radius
    edge = -rng.uniform(25, 55) * np.exp(-(((dist - 1.0) / edge_width) ** 2))
    rim = rng.uniform(45, 95) * np.exp(-(((dist - 0.86) / 0.07) ** 2)) * np.clip(0.25 + 0.75 * facing, 0, 1)
    back_rim = rng.uniform(15, 35) * np.exp(-(((dist - 0.9) / 0.06) ** 2)) * np.clip(-facing, 0, 1)
    hx, hy = 0.5 * lx, 0.5 * ly
    spot_radius = rng.uniform(0.1, 0.18)
    highlight = rng.uniform(110, 190) * np.exp(-(((dx - hx) ** 2 + (dy - hy) ** 2) / spot_radius**2))
    refraction = rng.uniform(6, 16) * np.exp(-(((dist - 0.55) / 0.12) ** 2))
    body = np.where(dist < 1.0, rng.uniform(2, 8), 0.0)
    total = edge + rim + back_rim + highlight + refraction + body
    total = np.where(dist < 1.0 + 3 * edge_width, total, 0.0)
    tint = np.array([1.0, 1.02, 1.06])  # the contact fluid reflects slightly bluish light
    return _to_template(total[:, :, None] * tint)


def ruler(rng: np.random.Generator, length_range: tuple[int, int]) -> np.ndarray:
    """A horizontal ruler strip: dark minor ticks each mm, longer ticks each 5 mm and 10 mm, and a base line."""
    length = int(rng.integers(length_range[0], length_range[1] + 1))
    height = int(rng.integers(44, 66))
    spacing = rng.uniform(6.5, 11.0)  # pixels per millimetre at dermatoscope magnification
    minor = rng.uniform(0.18, 0.28) * height
    thickness = rng.uniform(0.9, 2.0)
    darkness = rng.uniform(85, 140)
    x = np.arange(length, dtype=np.float64)[None, :]
    y = np.arange(height, dtype=np.float64)[:, None]
    base = rng.uniform(0.06, 0.14) * height
    offset = rng.uniform(0, spacing)
    first_major = int(rng.integers(0, 10))
    # nearest tick to every column, its distance and its length (every 5th and 10th tick is longer)
    tick_index = np.rint((x - offset) / spacing)
    across = np.clip(thickness / 2 + 0.5 - np.abs(x - offset - tick_index * spacing), 0, 1)
    position = (tick_index.astype(np.int64) + first_major) % 10
    tick_len = minor * np.where(position == 0, 2.3, np.where(position % 5 == 0, 1.6, 1.0))
    along = np.clip(base + tick_len - y, 0, 1) * np.clip(y - base + 1, 0, 1)
    ink = across * along * (tick_index >= 0)
    base_line = np.clip(thickness / 2 + 0.5 - np.abs(y - base), 0, 1) * np.ones_like(x)
    ink = np.maximum(ink, base_line)
    # printed scales are slightly uneven: faded patches and anti-aliased edges
    ink *= 0.75 + 0.25 * _smooth_noise(rng, height, length, max(2, length // 80))
    ink[ink < 0.04] = 0.0
    colour = darkness * np.array([1.0, rng.uniform(0.95, 1.05), rng.uniform(0.9, 1.1)])
    strip = -ink[:, :, None] * colour
    if rng.random() < 0.5:
        strip = strip[::-1]  # ticks hang from the upper or the lower edge
    return _to_template(strip)


def ink_spot(rng: np.random.Generator) -> np.ndarray:
    """A violet ink spot or short stroke with uneven ink density and a soft, irregular edge."""
    height, width = int(rng.integers(30, 110)), int(rng.integers(30, 170))
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    field = np.zeros((height, width))
    for _ in range(int(rng.integers(1, 5))):
        # elongated, rotated blobs: dabs and short strokes of a felt-tip pen
        cy, cx = rng.uniform(0.3, 0.7) * height, rng.uniform(0.3, 0.7) * width
        along, across = (
            rng.uniform(0.1, 0.35) * max(height, width),
            rng.uniform(0.04, 0.15) * min(height, width),
        )
        angle = rng.uniform(0, math.pi)
        u = (x - cx) * math.cos(angle) + (y - cy) * math.sin(angle)
        v = -(x - cx) * math.sin(angle) + (y - cy) * math.cos(angle)
        field += np.exp(-((u / along) ** 2 + (v / across) ** 2))
    field += 0.45 * (_smooth_noise(rng, height, width, 7) - 0.5)
    alpha = np.clip((field - 0.45) / 0.15, 0, 1)
    density = (
        alpha * (0.3 + 0.7 * _smooth_noise(rng, height, width, 5)) * (0.25 + 0.75 * _grain(rng, field.shape))
    )
    density[density < 0.03] = 0.0
    return _to_template(-density[:, :, None] * _ink_colour(rng))


def _noise_at(rng: np.random.Generator, u: np.ndarray, v: np.ndarray, cells: int) -> np.ndarray:
    """Low-frequency noise in [0, 1] at points (u, v) in [0, 1]^2 (bilinear on a random grid)."""
    grid = rng.random((cells + 1, cells + 1))
    gu, gv = np.clip(u, 0, 1) * cells, np.clip(v, 0, 1) * cells
    i0 = np.minimum(gu.astype(int), cells - 1)
    j0 = np.minimum(gv.astype(int), cells - 1)
    fu, fv = gu - i0, gv - j0
    top = grid[i0, j0] * (1 - fv) + grid[i0, j0 + 1] * fv
    bottom = grid[i0 + 1, j0] * (1 - fv) + grid[i0 + 1, j0 + 1] * fv
    return top * (1 - fu) + bottom * fu


def ink_circle(rng: np.random.Generator) -> np.ndarray:
    """A hand-drawn violet circle (one or more arcs) with a wobbling radius and uneven ink density."""
    radius = rng.uniform(85, 185)
    aspect = rng.uniform(0.78, 1.0)
    width = rng.uniform(2.5, 6.5)
    amplitudes = rng.uniform(0, 0.03, size=3)
    phases = rng.uniform(0, 2 * math.pi, size=3)
    size = int(math.ceil(2 * radius * (1 + amplitudes.sum()) + 2 * width + 8))
    centre = (size - 1) / 2
    dy = (np.arange(size, dtype=np.float32) - np.float32(centre))[:, None]
    dx = ((np.arange(size, dtype=np.float32) - np.float32(centre)) / np.float32(aspect))[None, :]
    rho = np.sqrt(dx * dx + dy * dy)
    # only pixels that the wobbling stroke can reach are evaluated (a thin annulus), which keeps the
    # builtin bank cheap to build
    band = np.abs(rho - radius) < radius * amplitudes.sum() + width
    rows, cols = np.nonzero(band)
    bdy, bdx = dy[rows, 0].astype(np.float64), dx[0, cols].astype(np.float64)
    brho = np.maximum(np.sqrt(bdx * bdx + bdy * bdy), 1e-6)
    theta = np.arctan2(bdy, bdx)
    wobble = sum(a * np.sin(h * theta + p) for a, h, p in zip(amplitudes, (2, 3, 5), phases, strict=True))
    stroke = np.clip(width / 2 + 0.7 - np.abs(brho - radius * (1 + wobble)), 0, 1)
    # the pen is lifted at one or two gaps; a gap is where the arc parameter falls outside the drawn span
    start = rng.uniform(-math.pi, math.pi)
    span = rng.uniform(1.4, 2.0) * math.pi
    phase = np.mod(theta - start, 2 * math.pi)
    drawn = np.clip((span - phase) / 0.15, 0, 1) * np.clip(phase / 0.15, 0, 1)
    if rng.random() < 0.5:
        gap = rng.uniform(0.2, 0.6) * span
        drawn *= np.clip(np.abs(phase - gap) / 0.08 - 1.0, 0, 1)
    pressure = 0.5 + 0.5 * rng.uniform(0.3, 0.8) * np.cos(3 * theta + rng.uniform(0, 2 * math.pi))
    pressure += 0.5 * (_noise_at(rng, rows / size, cols / size, 8) - 0.5)
    values = stroke * drawn * np.clip(pressure, 0.15, 1) * (0.2 + 0.8 * _grain(rng, stroke.shape))
    values[values < 0.03] = 0.0
    template = np.zeros((size, size, 3), dtype=np.int16)
    template[rows, cols] = _to_template(-values[:, None] * _ink_colour(rng))
    return template


# ------------------------------------------------------------------------------------- beyond the paper
# Kinds whose templates share properties within a set (one person's hair, one device's lens): their
# generators make a whole set at once, ``make_set(rng, count) -> [template, ...]``.

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
    return _to_template(-shade[:, :, None] * colour)


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
    return _to_template(template)


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
    gel = inside * rng.uniform(22, 55) * (0.7 + 0.6 * _smooth_noise(rng, height, length, 6))
    gel *= np.clip(1.0 - 0.5 * y / np.maximum(boundary, 1.0), 0.4, 1.0)  # thicker (brighter) at the edge
    gloss = rng.uniform(30, 80) * np.exp(-(((y - boundary + 1.5) / rng.uniform(1.2, 2.8)) ** 2))
    gloss *= (0.5 + 0.5 * _smooth_noise(rng, 1, length, 10)) * (boundary > 2)
    shadow = -rng.uniform(12, 30) * np.exp(-(((y - boundary - 2.5) / 1.5) ** 2)) * (boundary > 2)
    total = gel + gloss + shadow
    total[np.abs(total) < 1.0] = 0.0
    tint = np.array([0.9, 0.97, 1.05])  # thin gel films reflect slightly bluish light
    return _to_template(total[:, :, None] * tint)


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
    return _to_template(total)


# Shape of the builtin bank: kind -> (number of template sets, templates per set range, generator).
BUILTIN_LAYOUT = {
    "bubble": (5, (3, 7), bubble),
    "ruler_horizontal": (4, (1, 1), lambda rng: ruler(rng, (260, 420))),
    "ruler_vertical": (4, (1, 1), lambda rng: ruler(rng, (650, 1100))),
    "marking_circle": (4, (1, 1), ink_circle),
    "marking_spot": (6, (1, 3), ink_spot),
    "dark_corner": (6, (1, 1), dark_corner),
    "gel_border": (5, (1, 1), gel_border),
    "patches": (6, (1, 3), patch),
}

BUILTIN_SET_LAYOUT = {
    "hair": (6, (2, 12), hair_set),
}
"""Like :data:`BUILTIN_LAYOUT` for kinds whose generator makes a whole set at once."""


def builtin_sets(seed: int) -> list[tuple[str, str, list[tuple[str, np.ndarray]]]]:
    """``[(set_name, kind, [(template_name, pixels), ...]), ...]`` for the procedural bank of ``seed``.

    Every set has its own seed (derived from the kind and set number), so adding a kind leaves the
    templates of the others unchanged.
    """
    from ..seeding import derive_seed

    layouts: list[tuple[str, int, tuple[int, int], Callable[..., list]]]
    layouts = [
        (kind_name, n_sets, counts, lambda rng, count, make=make: [make(rng) for _ in range(count)])
        for kind_name, (n_sets, counts, make) in BUILTIN_LAYOUT.items()
    ]
    layouts += [
        (kind_name, n_sets, counts, make_set)
        for kind_name, (n_sets, counts, make_set) in BUILTIN_SET_LAYOUT.items()
    ]
    sets = []
    for kind_name, n_sets, (lo, hi), make_set in layouts:
        for set_index in range(n_sets):
            rng = np.random.default_rng(derive_seed(seed, "builtin-templates", kind_name, set_index))
            count = int(rng.integers(lo, hi + 1))
            templates = [(f"{index:02d}", pixels) for index, pixels in enumerate(make_set(rng, count))]
            sets.append((f"{kind_name}_{set_index:02d}", kind_name, templates))
    return sets
