"""Where artefacts go: lesion-aware position densities and placement strategies (the paper's rules).

Densities are evaluated on a coarse grid of square cells (about 64 cells across the short side)
so that a placement costs well under a millisecond; a position is drawn as a cell (from an integer
cumulative distribution, so draws are exact on any machine) and then a pixel inside that cell.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import numpy as np

from .kinds import KindSpec

REFERENCE_SHORT_SIDE = 450
"""Image short side for which the reference's 15-pixel lesion blur was chosen; the blur scales with size."""
LESION_BLUR_SIGMA = 15.0
SCATTER_ATTEMPTS = 10
PERIPHERY_ATTEMPTS = 25
_PERIPHERY_BATCH = 4
_QUANT = float(1 << 30)

Box = tuple[int, int, int, int]  # top, left, bottom, right (exclusive), in pixels


class Scene:
    """Per-image placement context: the lesion (or a central stand-in) on the coarse grid.

    The grid quantities are computed on first use: a placement that only needs the centroid (circle
    markings) never pays for the cell counts and the blur.
    """

    def __init__(self, height: int, width: int, cell: int, pixels: np.ndarray, centroid: tuple[float, float]):
        self.height = height
        self.width = width
        self.cell = cell
        self._pixels = pixels
        self.centroid = centroid
        """Lesion centre of mass (row, col) in pixels."""

    @property
    def grid_shape(self) -> tuple[int, int]:
        return -(-self.height // self.cell), -(-self.width // self.cell)

    @functools.cached_property
    def lesion_counts(self) -> np.ndarray:
        """Lesion pixels per cell, int64 (exact, for order-independent sums)."""
        return _cell_counts(self._pixels, self.cell, *self.grid_shape)

    @functools.cached_property
    def lesion_cells(self) -> np.ndarray:
        """Lesion fraction per cell, float64 (grid_h x grid_w)."""
        return self.lesion_counts / float(self.cell * self.cell)

    @functools.cached_property
    def blurred(self) -> np.ndarray:
        """Gaussian-blurred lesion fraction per cell, in [0, 1]."""
        sigma = LESION_BLUR_SIGMA * min(self.height, self.width) / REFERENCE_SHORT_SIDE / self.cell
        return np.clip(_gaussian_blur(self.lesion_cells, sigma), 0.0, 1.0)


def cell_size(height: int, width: int) -> int:
    return max(1, min(height, width) // 64)


def make_scene(height: int, width: int, lesion: np.ndarray | None) -> Scene:
    """Build the placement context; ``lesion`` is a boolean HxW mask or None (central ellipse)."""
    import cv2

    cell = cell_size(height, width)
    if lesion is None or not lesion.any():
        lesion = _central_lesion(height, width)
    pixels = np.ascontiguousarray(lesion).view(np.uint8)
    row_counts = cv2.reduce(pixels, 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel().astype(np.int64)
    col_counts = cv2.reduce(pixels, 0, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel().astype(np.int64)
    # integer moments, so the centroid does not depend on floating-point summation order
    total = int(row_counts.sum())
    centroid_row = int(row_counts @ np.arange(height, dtype=np.int64)) / total
    centroid_col = int(col_counts @ np.arange(width, dtype=np.int64)) / total
    return Scene(height, width, cell, pixels, (centroid_row, centroid_col))


def _cell_counts(pixels: np.ndarray, cell: int, grid_h: int, grid_w: int) -> np.ndarray:
    """Lesion pixels per ``cell`` x ``cell`` block (int64, grid_h x grid_w) of a 0/1 uint8 image.

    Rows k, k + cell, ... are summed for each k (strided adds, exact integers), then the same for
    columns: cheaper than a full-resolution summed-area table.
    """
    import cv2

    width = pixels.shape[1]
    small = cell * cell <= 255  # block sums fit in uint8: saturating OpenCV adds never saturate
    rows = np.zeros((grid_h, width), dtype=np.uint8 if small else np.uint32)
    for k in range(min(cell, pixels.shape[0])):
        strided = pixels[k::cell]
        target = rows[: strided.shape[0]]
        if small:
            cv2.add(target, strided, dst=target)
        else:
            target += strided
    blocks = np.zeros((grid_h, grid_w), dtype=rows.dtype)
    for k in range(min(cell, width)):
        strided = rows[:, k::cell]
        blocks[:, : strided.shape[1]] += strided
    return blocks.astype(np.int64)


@functools.lru_cache(maxsize=16)
def _central_lesion(height: int, width: int) -> np.ndarray:
    """Stand-in lesion when no mask is given: an ellipse at the image centre (half the image extents)."""
    y = np.linspace(-2.0, 2.0, height)[:, None]
    x = np.linspace(-2.0, 2.0, width)[None, :]
    lesion = (x * x + y * y) < 1.0
    lesion.flags.writeable = False
    return lesion


@functools.lru_cache(maxsize=64)
def _gaussian_kernel(sigma: float) -> np.ndarray:
    radius = max(1, int(math.ceil(3 * sigma)))
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    return kernel / kernel.sum()


def _gaussian_blur(grid: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur with mirrored edges (like scipy.ndimage.gaussian_filter's default)."""
    import cv2

    if sigma <= 0:
        return grid.copy()
    kernel = _gaussian_kernel(round(sigma, 6))
    radius = kernel.size // 2
    if radius >= min(grid.shape):  # OpenCV cannot mirror a border wider than the grid
        pad = [(radius, radius), (radius, radius)]
        padded = np.pad(grid, pad, mode="symmetric")
        blurred = cv2.sepFilter2D(padded, cv2.CV_64F, kernel, kernel, borderType=cv2.BORDER_REFLECT)
        return blurred[radius:-radius, radius:-radius]
    return cv2.sepFilter2D(grid, cv2.CV_64F, kernel, kernel, borderType=cv2.BORDER_REFLECT)


@functools.lru_cache(maxsize=16)
def beta_density(grid_h: int, grid_w: int) -> np.ndarray:
    """Centre-weighted beta(1.5, 1.5) density at cell centres (unnormalised), as in the reference."""
    rows = (np.arange(grid_h) + 0.5) / grid_h
    cols = (np.arange(grid_w) + 0.5) / grid_w
    density = np.outer(np.sqrt(rows * (1 - rows)), np.sqrt(cols * (1 - cols)))
    density.flags.writeable = False
    return density


class CellSampler:
    """Draw pixel positions from a per-cell weight grid, exactly reproducibly."""

    def __init__(self, scene: Scene, weights: np.ndarray):
        self.scene = scene
        peak = float(weights.max()) if weights.size else 0.0
        if not peak > 0:
            weights = np.ones_like(weights)
            peak = 1.0
        # integer weights make the cumulative sums (and so every draw) independent of summation order
        quantised = np.floor(weights * (_QUANT / peak)).astype(np.int64).ravel()
        self.cdf = np.cumsum(quantised)
        self.grid_w = weights.shape[1]

    def draw(self, rng: np.random.Generator, count: int) -> list[tuple[int, int]]:
        """``count`` positions (row, col), drawn in one vectorised batch."""
        picks = rng.integers(0, int(self.cdf[-1]), size=count)
        offsets = rng.integers(0, self.scene.cell, size=(count, 2))
        index = np.searchsorted(self.cdf, picks, side="right")
        cell = self.scene.cell
        rows = np.minimum(index // self.grid_w * cell + offsets[:, 0], self.scene.height - 1)
        cols = np.minimum(index % self.grid_w * cell + offsets[:, 1], self.scene.width - 1)
        return list(zip(rows.tolist(), cols.tolist(), strict=True))


def box_at(centre: tuple[int, int], size: tuple[int, int]) -> Box:
    """Pixel box of an instance of ``size`` (h, w) centred at ``centre``; the same rule as rendering."""
    top, left = centre[0] - size[0] // 2, centre[1] - size[1] // 2
    return top, left, top + size[0], left + size[1]


def _overlaps(box: Box, boxes: Sequence[Box]) -> bool:
    return any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in boxes)


# ----------------------------------------------------------------------------------------------- strategies
PlacementFn = Callable[[Scene, list, np.random.Generator, KindSpec], list]
PLACEMENTS: dict[str, PlacementFn] = {}


def register_placement(name: str):
    """Decorator adding a placement strategy ``fn(scene, instances, rng, spec) -> centres`` to PLACEMENTS.

    ``instances`` is a list of dicts with at least ``size`` (h, w) and ``angle``; the result has one
    (row, col) centre per instance, or None for an instance that is dropped.
    """

    def decorate(fn: PlacementFn) -> PlacementFn:
        PLACEMENTS[name] = fn
        return fn

    return decorate


@register_placement("scatter")
def place_scatter(scene: Scene, instances: list, rng: np.random.Generator, spec: KindSpec) -> list:
    """Beta(1.5, 1.5) centre-weighted density times (1 - blurred lesion)**2; no overlaps where possible."""
    # squared, so the density is strongly reduced already near the (blurred) lesion border
    sampler = CellSampler(scene, beta_density(*scene.grid_shape) * (1.0 - scene.blurred) ** 2)
    boxes: list[Box] = []
    centres = []
    candidates = sampler.draw(rng, SCATTER_ATTEMPTS * len(instances))
    for number, instance in enumerate(instances):
        placed = None
        for centre in candidates[number * SCATTER_ATTEMPTS : (number + 1) * SCATTER_ATTEMPTS]:
            box = box_at(centre, instance["size"])
            if not _overlaps(box, boxes):
                placed = centre
                boxes.append(box)
                break
        centres.append(placed)
    return centres


@register_placement("lesion_centre")
def place_lesion_centre(scene: Scene, instances: list, rng: np.random.Generator, spec: KindSpec) -> list:
    """Centred on the lesion's centre of mass (the image centre without a mask)."""
    row, col = scene.centroid
    return [(int(row), int(col)) for _ in instances]


@register_placement("below_lesion")
def place_below_lesion(scene: Scene, instances: list, rng: np.random.Generator, spec: KindSpec) -> list:
    """Lower third of the image, middle third of its width, away from the lesion (the reference's rule)."""
    grid_h, grid_w = scene.grid_shape
    cell = scene.cell
    region = np.zeros((grid_h, grid_w), dtype=bool)
    # cells lying wholly in the lower third of the rows and the middle third of the columns
    rows = np.arange(grid_h) * cell
    cols = np.arange(grid_w) * cell
    lower_third = rows >= math.ceil(2 * scene.height / 3)
    middle_third = (cols >= scene.width / 3) & (cols + cell <= 2 * scene.width / 3)
    region[np.ix_(lower_third, middle_third)] = True
    if not region.any():  # very small images: the lowest cell row
        region[-1, :] = True
    peak = float(scene.blurred.max())
    away = 1.0 - scene.blurred / peak if peak > 0 else np.ones_like(scene.blurred)
    weights = np.where(region, beta_density(grid_h, grid_w) * away, 0.0)
    if not weights.max() > 0:
        weights = np.where(region, beta_density(grid_h, grid_w) + 1e-12, 0.0)
    sampler = CellSampler(scene, weights)
    return sampler.draw(rng, len(instances))


def _lesion_hits(lesion: tuple, centres: np.ndarray, instance: dict) -> np.ndarray:
    """Lesion pixels (of the cells whose centre it covers) under the rotated rectangle of ``instance``.

    ``lesion`` is ``(cell centre rows, cell centre cols, lesion pixel counts)`` of the cells touching
    the lesion; ``centres`` is an (n, 2) array of (row, col). Integer sums: exact in any order.
    """
    rows, cols, counts = lesion
    if rows.size == 0:
        return np.zeros(len(centres), dtype=np.int64)
    cy = rows[None, :] - centres[:, :1]
    cx = cols[None, :] - centres[:, 1:]
    angle = math.radians(instance["angle"])
    # image rows grow downwards, so a counter-clockwise rotation by `angle` maps the template x axis to
    # (cos, -sin) in (col, row) coordinates
    along = cx * math.cos(angle) - cy * math.sin(angle)
    across = cx * math.sin(angle) + cy * math.cos(angle)
    length, thickness = instance["extent"]
    inside = (np.abs(along) <= length / 2) & (np.abs(across) <= thickness / 2)
    return (inside * counts[None, :]).sum(axis=1, dtype=np.int64)


@register_placement("periphery")
def place_periphery(scene: Scene, instances: list, rng: np.random.Generator, spec: KindSpec) -> list:
    """Periphery of the image (inverse beta density), away from the lesion; retries to avoid touching it."""
    beta = beta_density(*scene.grid_shape)
    weights = (1.0 - beta / float(beta.max())) * (1.0 - scene.blurred)
    sampler = CellSampler(scene, weights)
    cell_rows, cell_cols = np.nonzero(scene.lesion_cells)
    lesion = (
        (cell_rows + 0.5) * scene.cell,
        (cell_cols + 0.5) * scene.cell,
        scene.lesion_counts[cell_rows, cell_cols],
    )
    centres = []
    for instance in instances:
        candidates = sampler.draw(rng, PERIPHERY_ATTEMPTS)
        points = np.array(candidates, dtype=np.float64)
        # the first candidate clear of the lesion, else the first one touching it least; candidates
        # are tested a few at a time, since one of the first is usually clear
        hits = []
        chosen = None
        for start in range(0, PERIPHERY_ATTEMPTS, _PERIPHERY_BATCH):
            batch = _lesion_hits(lesion, points[start : start + _PERIPHERY_BATCH], instance)
            clear = np.flatnonzero(batch == 0)
            if clear.size:
                chosen = start + int(clear[0])
                break
            hits.append(batch)
        if chosen is None:
            chosen = int(np.argmin(np.concatenate(hits)))
        centres.append(candidates[chosen])
    return centres


@register_placement("anywhere")
def place_anywhere(scene: Scene, instances: list, rng: np.random.Generator, spec: KindSpec) -> list:
    """Uniform over the whole image, the lesion included (hair grows everywhere, and is not shaved for
    dermoscopy); instances may cross each other and the image border."""
    return CellSampler(scene, np.ones(scene.grid_shape)).draw(rng, len(instances))


@register_placement("image_centre")
def place_image_centre(scene: Scene, instances: list, rng: np.random.Generator, spec: KindSpec) -> list:
    """The image centre, whatever the lesion: the dermatoscope's field of view is centred on the sensor."""
    return [(scene.height // 2, scene.width // 2) for _ in instances]


EDGE_BY_ANGLE = {0: "top", 90: "left", 180: "bottom", 270: "right"}
"""Which image edge a strip template (its row 0 being the outer edge) faces after a counter-clockwise
turn by that many degrees."""


@register_placement("edge")
def place_edge(scene: Scene, instances: list, rng: np.random.Generator, spec: KindSpec) -> list:
    """Flush with the image edge that the instance's turn makes it face, at a uniform position along it."""
    centres = []
    for instance in instances:
        height, width = instance["size"]
        side = EDGE_BY_ANGLE[instance["angle"] % 360]
        along = scene.width - width if side in ("top", "bottom") else scene.height - height
        offset = int(rng.integers(0, max(along, 0) + 1))
        if side == "top":
            centres.append((height // 2, offset + width // 2))
        elif side == "bottom":
            centres.append((scene.height - height + height // 2, offset + width // 2))
        elif side == "left":
            centres.append((offset + height // 2, width // 2))
        else:
            centres.append((offset + height // 2, scene.width - width + width // 2))
    return centres
