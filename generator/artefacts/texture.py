"""Textures shared by the procedural templates and the gallery's demo image, and the conversion of a
float signed difference to a template (int16, clipped to [-255, 255]).

Only numpy element-wise arithmetic is used, so the same seed gives the same pixels on any machine.
"""

from __future__ import annotations

import numpy as np


def smooth_noise(rng: np.random.Generator, height: int, width: int, cells: int) -> np.ndarray:
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


def to_template(channels: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(channels), -255, 255).astype(np.int16)
