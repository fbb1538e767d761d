"""Procedural artefact templates (signed RGB differences) generated from a seed, with no data files.

Every function returns an int16 HxWx3 array meant to be *added* to a skin image, like the templates
extracted from the original with/without photographs. Only numpy element-wise arithmetic is used,
so the same seed gives the same pixels on any machine. This module draws the paper's kinds (bubbles,
rulers, ink markings) and lays out the builtin bank; the other kinds are in ``procedural_beyond``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .procedural_beyond import dark_corner, gel_border, hair_set, patch
from .texture import smooth_noise, to_template


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
    return to_template(total[:, :, None] * tint)


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
    ink *= 0.75 + 0.25 * smooth_noise(rng, height, length, max(2, length // 80))
    ink[ink < 0.04] = 0.0
    colour = darkness * np.array([1.0, rng.uniform(0.95, 1.05), rng.uniform(0.9, 1.1)])
    strip = -ink[:, :, None] * colour
    if rng.random() < 0.5:
        strip = strip[::-1]  # ticks hang from the upper or the lower edge
    return to_template(strip)


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
    field += 0.45 * (smooth_noise(rng, height, width, 7) - 0.5)
    alpha = np.clip((field - 0.45) / 0.15, 0, 1)
    density = (
        alpha * (0.3 + 0.7 * smooth_noise(rng, height, width, 5)) * (0.25 + 0.75 * _grain(rng, field.shape))
    )
    density[density < 0.03] = 0.0
    return to_template(-density[:, :, None] * _ink_colour(rng))


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
    template[rows, cols] = to_template(-values[:, None] * _ink_colour(rng))
    return template


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
