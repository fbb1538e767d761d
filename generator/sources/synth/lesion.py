"""One synthetic lesion, painted in its own frame: colour, opacity and inside-mask canvases.

Each class has its own dermatoscopic structures (pigment network, blotches, veils, vessels, cysts,
lacunae...) and border (``SHAPES``); ``lerp_shape`` mixes two classes' borders for the difficulty
setting. The photograph (``photo``) warps the canvases into the image.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np


def smooth_noise(rng: np.random.Generator, h: int, w: int, cells: float) -> np.ndarray:
    """Smooth zero-mean, roughly unit-variance noise with about ``cells`` features across."""
    import cv2

    ch = max(2, int(round(cells * h / max(h, w)))) + 2
    cw = max(2, int(round(cells * w / max(h, w)))) + 2
    grid = rng.standard_normal((ch, cw)).astype(np.float32)
    field = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    return field / max(float(field.std()), 1e-3)


def _blend(canvas: np.ndarray, weight: np.ndarray, colour: np.ndarray) -> None:
    """In place on a planar 3xHxW canvas: canvas = canvas * (1 - weight) + colour * weight."""
    canvas *= 1.0 - weight
    canvas += weight * np.asarray(colour, np.float32)[:, None, None]


def _jitter(rng: np.random.Generator, colour: np.ndarray, amount: float = 0.06) -> np.ndarray:
    return np.clip(np.asarray(colour, np.float32) * (1 + rng.uniform(-amount, amount, 3)), 0, 1)


def unit_rgb(*values: float) -> np.ndarray:
    """An 8-bit colour as float32 in [0, 1]."""
    return np.array(values, np.float32) / 255.0


def _draw_tree(
    layer: np.ndarray,
    rng: np.random.Generator,
    start: np.ndarray,
    angle: float,
    length: float,
    width: float,
    depth: int,
    max_depth: int = 3,
) -> None:
    """A branching, tapering line (arborizing vessel) drawn on a float layer."""
    import cv2

    pts = [np.array(start, float)]
    n = 8
    for _ in range(n):
        angle += rng.normal(0, 0.35)
        pts.append(pts[-1] + length / n * np.array([np.cos(angle), np.sin(angle)]))
    cv2.polylines(
        layer, [np.round(np.array(pts)).astype(np.int32)], False, 1.0, max(1, int(round(width))), cv2.LINE_AA
    )
    if depth < max_depth:
        for _ in range(int(rng.integers(1, 3))):
            j = int(rng.integers(2, n))
            _draw_tree(
                layer,
                rng,
                pts[j],
                angle + rng.choice([-1, 1]) * rng.uniform(0.4, 1.1),
                length * rng.uniform(0.45, 0.7),
                width * 0.7,
                depth + 1,
                max_depth,
            )


@dataclass(frozen=True)
class LesionShape:
    """A class's lesion size and border; each range is drawn uniformly per lesion."""

    radius: tuple[float, float]
    """Fraction of half the short image side."""
    irregular: float
    """Amplitude of the low Fourier modes of the border r(theta)."""
    soft: tuple[float, float]
    """Edge softness."""
    opacity: tuple[float, float]
    """Maximum opacity."""


SHAPES = {
    "akiec": LesionShape(radius=(0.35, 0.65), irregular=0.10, soft=(0.15, 0.28), opacity=(0.80, 0.95)),
    "bcc": LesionShape(radius=(0.35, 0.65), irregular=0.09, soft=(0.08, 0.16), opacity=(0.82, 0.95)),
    "bkl": LesionShape(radius=(0.45, 0.80), irregular=0.07, soft=(0.03, 0.07), opacity=(0.88, 0.98)),
    "df": LesionShape(radius=(0.25, 0.45), irregular=0.04, soft=(0.15, 0.30), opacity=(0.85, 0.95)),
    "mel": LesionShape(radius=(0.50, 0.85), irregular=0.17, soft=(0.04, 0.10), opacity=(0.92, 1.00)),
    "nv": LesionShape(radius=(0.35, 0.65), irregular=0.035, soft=(0.06, 0.12), opacity=(0.90, 0.99)),
    "vasc": LesionShape(radius=(0.22, 0.45), irregular=0.06, soft=(0.03, 0.06), opacity=(0.92, 1.00)),
}


@functools.lru_cache(maxsize=48)
def _polar_grid(side: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dy, rho, theta index into a 1024-entry table) of a side x side canvas about its centre."""
    c = side / 2.0
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    dxs, dys = xx - c, yy - c
    index = ((np.arctan2(dys, dxs) + np.pi) * (1024 / (2 * np.pi))).astype(np.int32) % 1024
    grid = (dxs, dys, np.hypot(dxs, dys), index)
    for a in grid:
        a.setflags(write=False)
    return grid


def paint_lesion(
    dx: str, rng: np.random.Generator, radius_px: float, shape: LesionShape | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(colour 3xHxW planar, opacity HxW, inside HxW) float32 canvases of one lesion in its own frame.

    The lesion is drawn isotropic; its elongation is applied by the warp into the photograph.
    ``shape`` overrides the class's border and opacity parameters (``SHAPES[dx]``).
    """
    import cv2

    shape = SHAPES[dx] if shape is None else shape
    side = 16 * int(np.ceil(2.7 * radius_px / 16))  # few distinct sides, so the polar grid is cached
    c = side / 2.0
    dxs, dys, rho, index = _polar_grid(side)
    # Border: r(theta) = R (1 + sum_k a_k cos(k theta + phi_k)), looked up in a 1-D table.
    table_theta = np.linspace(-np.pi, np.pi, 1024, endpoint=False)
    r = np.ones_like(table_theta)
    irregular = shape.irregular * rng.uniform(0.6, 1.4)
    for k in range(2, 13):
        amp = irregular * rng.uniform(0.3, 1.0) / (k / 2.0) ** (1.0 if dx == "mel" else 1.5)
        r += amp * np.cos(k * table_theta + rng.uniform(0, 2 * np.pi))
    r = (np.maximum(r, 0.35) * radius_px).astype(np.float32)
    d = rho / r[index]  # < 1 inside the lesion
    inside = (d < 1.0).astype(np.float32)
    soft = rng.uniform(*shape.soft)
    opacity = np.clip((1.0 - d) / soft + 0.5, 0.0, 1.0) * rng.uniform(*shape.opacity)

    n = lambda cells: smooth_noise(rng, side, side, cells)  # noqa: E731 - a local shorthand
    centre = np.clip(1.0 - d, 0.0, 1.0)  # 1 at the centre, 0 at the border
    colour = np.empty((3, side, side), np.float32)  # planar: per-pixel factors broadcast fast

    if dx == "nv":
        colour[:] = _jitter(rng, unit_rgb(150, 100, 70) * rng.uniform(0.65, 1.1), 0.08)[:, None, None]
        colour *= 1.0 - rng.uniform(0.1, 0.35) * centre  # darker centre
        if rng.random() < 0.75:  # regular pigment network
            net = np.exp(-((n(rng.uniform(9, 14)) / 0.5) ** 2))
            colour *= 1.0 - rng.uniform(0.3, 0.5) * net * (1 - 0.4 * centre)
        if rng.random() < 0.3:  # regular globules
            glob = np.zeros((side, side), np.float32)
            for _ in range(int(rng.integers(8, 25))):
                p = c + rng.uniform(-0.6, 0.6, 2) * radius_px
                cv2.circle(glob, (int(p[0]), int(p[1])), max(1, int(0.05 * radius_px)), 1.0, -1, cv2.LINE_AA)
            _blend(colour, glob * 0.6 * inside, unit_rgb(95, 60, 45))
        colour *= 1 + 0.04 * n(20)
    elif dx == "mel":
        colour[:] = _jitter(rng, unit_rgb(105, 65, 48) * rng.uniform(0.7, 1.05), 0.08)[:, None, None]
        tilt = rng.uniform(0, 2 * np.pi)  # asymmetric darkening
        ramp = (np.cos(tilt) * dxs + np.sin(tilt) * dys) / radius_px
        colour *= 1.0 - 0.25 * np.clip(ramp + 0.3, 0, 1.2)
        blotch = np.clip((n(5) - 0.3) * 2.0, 0, 1)  # black blotches
        _blend(colour, blotch * 0.85, unit_rgb(35, 25, 28))
        if rng.random() < 0.65:  # blue-white veil
            veil = np.clip((n(3) - 0.2) * 1.5, 0, 1) * centre**0.3
            _blend(colour, veil * rng.uniform(0.5, 0.8), _jitter(rng, unit_rgb(95, 105, 135)))
        if rng.random() < 0.5:  # regression: white-grey scar-like areas
            reg = np.clip((n(6) - 0.9) * 2.0, 0, 1)
            _blend(colour, reg * 0.7, unit_rgb(200, 190, 195))
        if rng.random() < 0.35:  # red areas
            _blend(colour, np.clip((n(4) - 1.0) * 2.0, 0, 1) * 0.6, unit_rgb(170, 60, 60))
        net = np.exp(-((n(rng.uniform(7, 12)) / 0.45) ** 2))  # atypical thick network
        colour *= 1.0 - 0.45 * net * np.clip(n(3) + 0.5, 0, 1)
        dots = np.zeros((side, side), np.float32)  # irregular peripheral dots
        for _ in range(int(rng.integers(10, 40))):
            a, rr = rng.uniform(0, 2 * np.pi), rng.uniform(0.6, 1.05)
            p = c + radius_px * rr * np.array([np.cos(a), np.sin(a)])
            cv2.circle(
                dots, (int(p[0]), int(p[1])), max(1, int(rng.uniform(0.02, 0.06) * radius_px)), 1.0, -1
            )
        _blend(colour, dots * 0.8, unit_rgb(45, 30, 30))
        colour *= 1 + 0.07 * n(25)
    elif dx == "bkl":
        colour[:] = _jitter(rng, unit_rgb(175, 130, 90) * rng.uniform(0.6, 1.05), 0.1)[:, None, None]
        ridges = np.exp(-((n(rng.uniform(12, 20)) / 0.4) ** 2))  # cerebriform fissures and ridges
        colour *= 1.0 + rng.uniform(0.12, 0.25) * ridges - 0.1
        colour *= 1 + 0.08 * n(35)  # waxy, crumbly texture
        spots = np.zeros((side, side), np.float32)  # milia-like cysts (white)
        pits = np.zeros((side, side), np.float32)  # comedo-like openings (dark)
        for layer, count in ((spots, rng.integers(3, 15)), (pits, rng.integers(3, 20))):
            for _ in range(int(count)):
                p = c + rng.uniform(-0.65, 0.65, 2) * radius_px
                cv2.circle(
                    layer,
                    (int(p[0]), int(p[1])),
                    max(1, int(rng.uniform(0.025, 0.06) * radius_px)),
                    1.0,
                    -1,
                    cv2.LINE_AA,
                )
        _blend(colour, spots * 0.75, unit_rgb(235, 225, 205))
        _blend(colour, pits * 0.7, unit_rgb(80, 55, 40))
    elif dx == "bcc":
        colour[:] = _jitter(rng, unit_rgb(228, 150, 158), 0.06)[:, None, None]  # pink, pearly
        _blend(colour, np.clip(n(6) * 0.3, 0, 1), unit_rgb(240, 225, 225))  # shiny white areas
        if rng.random() < 0.65:  # blue-grey ovoid nests
            nests = np.zeros((side, side), np.float32)
            for _ in range(int(rng.integers(2, 8))):
                p = c + rng.uniform(-0.55, 0.55, 2) * radius_px
                axes = (
                    max(1, int(rng.uniform(0.06, 0.16) * radius_px)),
                    max(1, int(rng.uniform(0.04, 0.1) * radius_px)),
                )
                cv2.ellipse(
                    nests, (int(p[0]), int(p[1])), axes, rng.uniform(0, 180), 0, 360, 1.0, -1, cv2.LINE_AA
                )
            blurred_nests = cv2.GaussianBlur(nests, (0, 0), 0.02 * radius_px + 0.5)
            _blend(colour, blurred_nests * 0.85, _jitter(rng, unit_rgb(85, 90, 115)))
        vessels = np.zeros((side, side), np.float32)  # arborizing vessels
        for _ in range(int(rng.integers(2, 5))):
            start = c + rng.uniform(-0.5, 0.5, 2) * radius_px
            _draw_tree(
                vessels,
                rng,
                start,
                rng.uniform(0, 2 * np.pi),
                rng.uniform(0.5, 0.9) * radius_px,
                max(1.0, 0.035 * radius_px),
                0,
            )
        _blend(colour, vessels * 0.9, _jitter(rng, unit_rgb(190, 30, 45)))
        if rng.random() < 0.3:  # ulceration
            _blend(colour, np.clip((n(4) - 1.2) * 3, 0, 1) * centre, unit_rgb(110, 40, 30))
    elif dx == "akiec":
        colour[:] = _jitter(rng, unit_rgb(205, 125, 115), 0.07)[:, None, None]  # erythema
        colour *= 1 + 0.1 * n(8)
        scale_patch = np.clip((n(rng.uniform(6, 12)) - 0.2) * 1.5, 0, 1) * np.sqrt(
            centre
        )  # white-yellow scale
        _blend(colour, scale_patch * rng.uniform(0.5, 0.85), _jitter(rng, unit_rgb(235, 220, 195)))
        dots = np.zeros((side, side), np.float32)  # dotted / glomerular vessels
        for _ in range(int(rng.integers(20, 60))):
            p = c + rng.uniform(-0.8, 0.8, 2) * radius_px
            cv2.circle(dots, (int(p[0]), int(p[1])), max(1, int(0.025 * radius_px)), 1.0, -1)
        _blend(colour, dots * (1 - scale_patch) * 0.8, unit_rgb(175, 40, 50))
        if rng.random() < 0.3:  # faint brown pseudo-network
            colour *= 1.0 - 0.15 * np.exp(-((n(10) / 0.4) ** 2))
    elif dx == "df":
        colour[:] = _jitter(rng, unit_rgb(150, 100, 75) * rng.uniform(0.85, 1.1), 0.08)[:, None, None]
        net = np.exp(-((n(rng.uniform(14, 20)) / 0.3) ** 2))  # delicate peripheral network
        colour *= 1.0 - 0.35 * net * (1 - centre)
        scar = np.clip((centre - rng.uniform(0.35, 0.55)) * 4 + 0.4 * n(5), 0, 1)  # central white patch
        _blend(colour, scar * 0.9, _jitter(rng, unit_rgb(238, 225, 215), 0.03))
    elif dx == "vasc":
        # pink-red septa between lacunae
        colour[:] = _jitter(rng, unit_rgb(205, 120, 130), 0.06)[:, None, None]
        purple = rng.random() < 0.4
        lacunae = np.zeros((side, side, 3), np.float32)
        weight = np.zeros((side, side), np.float32)
        for _ in range(int(rng.integers(20, 45))):
            p = c + rng.uniform(-0.8, 0.8, 2) * radius_px
            rad = max(1, int(rng.uniform(0.1, 0.22) * radius_px))
            base = unit_rgb(120, 35, 75) if purple else unit_rgb(165, 30, 45)
            col = tuple(float(v) for v in _jitter(rng, base * rng.uniform(0.55, 1.1), 0.08))
            cv2.circle(lacunae, (int(p[0]), int(p[1])), rad, col, -1, cv2.LINE_AA)
            cv2.circle(weight, (int(p[0]), int(p[1])), rad, 1.0, -1, cv2.LINE_AA)
        blurred = cv2.GaussianBlur(weight, (0, 0), 0.015 * radius_px + 0.4) * 0.95
        colour *= 1.0 - blurred
        colour += lacunae.transpose(2, 0, 1) * (0.95 * (blurred > 0))
        colour *= 1 + 0.05 * n(20)
    else:  # pragma: no cover - CLASSES is fixed
        raise ValueError(dx)
    return np.clip(colour, 0, 1), opacity.astype(np.float32), inside


def lerp_shape(own: LesionShape, other: LesionShape, weight: float) -> LesionShape:
    """Shape parameters (numbers and ranges) interpolated from ``own`` toward ``other``."""

    def mix(a: float, b: float) -> float:
        return (1 - weight) * a + weight * b

    def mix_range(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
        return mix(a[0], b[0]), mix(a[1], b[1])

    return LesionShape(
        radius=mix_range(own.radius, other.radius),
        irregular=mix(own.irregular, other.irregular),
        soft=mix_range(own.soft, other.soft),
        opacity=mix_range(own.opacity, other.opacity),
    )
