"""Geometry of one template instance: its flip, scale and whole-degree rotation, the canvas that holds
it, and the inverse affine map the renderer warps with.

Forward, a template is flipped, scaled to ``scaled_size`` about pixel centres, rotated
counter-clockwise about its centre (OpenCV's convention) and centred on a ``rotated_size`` canvas.
Shrunk templates are sampled from a mip level (``mip_level``), so thin lines never alias.
"""

from __future__ import annotations

import functools
import math

import numpy as np

FLIPS = ("none", "vertical", "horizontal")
"""Flip of the template before scaling: none, upside down (rows reversed), mirrored (columns reversed)."""


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


def mip_level(scale: float, shape: tuple[int, int]) -> int:
    """Coarsest level k with scale * 2**k <= 1, so shrinking never samples thin lines bilinearly below 1/2."""
    level = 0
    while scale * (2 ** (level + 1)) <= 1.0 and min(shape) >= 2 ** (level + 2):
        level += 1
    return level


def inverse_coefficients(shape, flip: str, scale: float, angle: int, level: int) -> tuple:
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


def shifted(inverse: tuple, dx: int, dy: int) -> np.ndarray:
    """The inverse map (coefficients a00..a12) for an output window whose origin is canvas pixel (dx, dy)."""
    a00, a01, a02, a10, a11, a12 = inverse
    return np.array([[a00, a01, a02 + a00 * dx + a01 * dy], [a10, a11, a12 + a10 * dx + a11 * dy]])
