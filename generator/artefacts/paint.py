"""Compositing one template instance into an image: add the signed template, clip to [0, 255], and
touch only the instance's bounding box (only its non-empty tiles, for large warped instances).
"""

from __future__ import annotations

import numpy as np

from ..errors import UserError
from .geometry import FLIPS, inverse_coefficients, mip_level, shifted, transformed_size
from .placement import box_at

TILE = 32
"""Output tile size: tiles whose source footprint holds no template pixel are not warped at all."""
SMALL_WINDOW = 128 * 128
"""Instances covering at most this many pixels are warped in one call, without tiling."""


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

    def warp(plane: np.ndarray, sign: int, bias: int) -> np.ndarray:
        """One offset plane warped onto the box (3 channels; outside the template: -bias * sign)."""
        border = -bias * sign
        four = cv2.warpAffine(
            plane,
            matrix,
            size,
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(border, border, border, 0),
        )
        return np.asarray(cv2.cvtColor(four, cv2.COLOR_BGRA2BGR))

    if len(level.planes) == 1:
        plane, sign, bias = level.planes[0]
        cv2.addWeighted(region, 1.0, warp(plane, sign, bias), 1.0, float(bias), dst=region)
        return
    warped = [warp(plane, sign, bias) for plane, sign, bias in level.planes]
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
    level_index = mip_level(scale, template.shape)
    level = template.level(level_index)
    inverse = inverse_coefficients(template.shape, flip, scale, angle, level_index)
    if (y1 - y0) * (x1 - x0) <= SMALL_WINDOW:  # bubbles, spots: one call beats the tile bookkeeping
        _add_warped(out, level, shifted(inverse, x0 - left, y0 - top), y0, x0, y1, x1)
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
        _add_warped(out, level, shifted(inverse, rx0 - left, ry0 - top), ry0, rx0, ry1, rx1)
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
