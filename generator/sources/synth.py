"""A synthetic stand-in for HAM10000 in the Harvard Dataverse layout (``ham-artefacts synth-ham10000``).

The real images may not be redistributed with the code, so demos and tests use this: dermatoscopy-
like JPEGs whose appearance depends on the diagnosis (colour, border irregularity, texture, size,
vessels), in the same folder layout, metadata format and class proportions as the real data.

Determinism: each lesion's appearance is a function of (seed, lesion_id) and each photograph's
viewing conditions (rotation, zoom, position, hair, illumination, noise) of (seed, image_id), so
the bytes written do not depend on the number of worker processes or the order of work.

Difficulty: on HAM10000, class appearance overlaps: nevi, melanomas and benign keratoses are
confused by experts and models alike, each lesion varies more than the class means differ, while
dermatofibromas and vascular lesions stand apart. With ``difficulty`` d > 0 each lesion's appearance
is drawn toward one of its class's usual confusers (``CONFUSERS``): colour, pattern, border
irregularity, softness and size are interpolated with a weight uniform on [0, d x reach] (reach 1
for nv / mel / bkl, less for the distinct classes). The label never changes. d = 0 is the old,
colour-coded twin; the default preset was chosen by measurement (README, "Calibrating the twin").

Rendering is vectorised numpy/OpenCV: a lesion is painted on its own square canvas (colour plus
opacity) in lesion coordinates, then warped into the photograph, so repeat images of one lesion
show the same lesion rotated, zoomed and shifted, as in real follow-up images.
"""

from __future__ import annotations

import csv
import functools
import io
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import CLASSES, __version__
from ..errors import UserError
from ..seeding import derive_seed
from ..sizes import parse_size
from ..userio import refuse_non_folder
from .ham10000 import (
    EXPECTED_COUNTS,
    MASK_DIR,
    METADATA_NAME,
    ONEHOT_COLUMNS,
    SYNTHETIC_MARKER,
)
from .ham10000 import REQUIRED_COLUMNS as HAM_COLUMNS
from .ham10000 import TEST_GROUND_TRUTH_NAME as TEST_GT_NAME
from .ham10000 import TEST_IMAGES_DIR as TEST_DIR
from .ham10000 import TRAIN_IMAGE_DIRS as TRAIN_DIRS

DEFAULT_SIZE = (600, 450)
MIN_PER_CLASS = 3
"""Every class gets at least this many images in each split, so tiny scales still have all classes."""
JPEG_QUALITY = 90
MAX_SCALE = 10.0
TRAIN_ID_START = 24306  # ISIC_0024306 is the first HAM10000 image id
TEST_ID_START = 34524  # first ISIC 2018 Task 3 test image id
ONEHOT_ORDER = ONEHOT_COLUMNS[1:]

DIFFICULTY_PRESETS = {"easy": 0.0, "ham": 0.42, "hard": 1.0}
"""Named difficulty settings. ``ham`` is the default, chosen by the calibration rule: ResNet-34 on
train_none under the showcase profile reaches a test_none macro PR-AUC in 0.70-0.88 (the paper: 0.80)."""
DEFAULT_DIFFICULTY = "ham"

# Which classes a lesion of each class may be mistaken for, with weights, and how far (reach) its
# appearance can drift toward them: the confusable trio nv / mel / bkl fully, akiec / bcc part way,
# df and vasc least (HAM10000's confusion matrices show the same structure).
CONFUSERS: dict[str, tuple[dict[str, float], float]] = {
    "nv": ({"mel": 0.5, "bkl": 0.4, "df": 0.1}, 1.0),
    "mel": ({"nv": 0.6, "bkl": 0.4}, 1.0),
    "bkl": ({"nv": 0.4, "mel": 0.3, "akiec": 0.3}, 1.0),
    "akiec": ({"bkl": 0.5, "bcc": 0.5}, 0.6),
    "bcc": ({"akiec": 0.5, "bkl": 0.3, "nv": 0.2}, 0.6),
    "df": ({"nv": 0.7, "bkl": 0.3}, 0.4),
    "vasc": ({"bcc": 0.5, "akiec": 0.5}, 0.4),
}


def resolve_difficulty(value) -> float:
    """A preset name or a number in [0, 1] -> the number."""
    if isinstance(value, str):
        if value in DIFFICULTY_PRESETS:
            return DIFFICULTY_PRESETS[value]
        try:
            value = float(value)
        except ValueError:
            raise UserError(
                f"--difficulty: {value!r} is not a number in [0, 1] or one of {', '.join(DIFFICULTY_PRESETS)}"
            ) from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
        raise UserError(
            f"--difficulty: must be in [0, 1] or one of {', '.join(DIFFICULTY_PRESETS)}, got {value!r}"
        )
    return float(value)


# Images per lesion: HAM10000 has 10,015 images of 7,470 lesions (about 1.34 per lesion).
_REPEATS = (np.arange(1, 7), np.array([0.76, 0.16, 0.05, 0.017, 0.009, 0.004]))

_DX_TYPE = {
    "akiec": {"histo": 1.0},
    "bcc": {"histo": 1.0},
    "bkl": {"histo": 0.5, "consensus": 0.3, "confocal": 0.2},
    "df": {"histo": 0.55, "consensus": 0.45},
    "mel": {"histo": 1.0},
    "nv": {"follow_up": 0.55, "histo": 0.3, "consensus": 0.13, "confocal": 0.02},
    "vasc": {"histo": 0.45, "consensus": 0.55},
}
_AGE = {
    "akiec": (67, 11),
    "bcc": (67, 12),
    "bkl": (60, 13),
    "df": (52, 13),
    "mel": (61, 15),
    "nv": (45, 15),
    "vasc": (50, 20),
}
_LOCALIZATION = {
    "back": 0.22,
    "lower extremity": 0.21,
    "trunk": 0.14,
    "upper extremity": 0.11,
    "abdomen": 0.10,
    "face": 0.07,
    "chest": 0.04,
    "foot": 0.03,
    "unknown": 0.02,
    "neck": 0.02,
    "scalp": 0.013,
    "hand": 0.009,
    "ear": 0.006,
    "genital": 0.005,
    "acral": 0.002,
}
_DATASET = {"vidir_molemax": 0.39, "vidir_modern": 0.35, "rosendahl": 0.22, "vienna_dias": 0.04}


def _choices(rng: np.random.Generator, weights: dict, n: int) -> list:
    """``n`` independent draws of the keys of ``weights`` (vectorised)."""
    keys = list(weights)
    p = np.array([weights[k] for k in keys], float)
    return [keys[i] for i in rng.choice(len(keys), size=n, p=p / p.sum())]


# --- the plan: which images exist, with which lesion and metadata ------------------------------


@dataclass(frozen=True)
class PlannedImage:
    image_id: str
    lesion_id: str
    dx: str
    split: str
    metadata: tuple  # (dx_type, age, sex, localization, dataset)


def class_counts(scale: float, split: str) -> dict[str, int]:
    """Images per class at ``scale``: the published counts, rounded, with a floor of MIN_PER_CLASS."""
    return {c: max(MIN_PER_CLASS, int(round(scale * EXPECTED_COUNTS[split][c]))) for c in CLASSES}


def plan_dataset(scale: float, seed: int, test_scale: float | None = None) -> list[PlannedImage]:
    """All images (train then test) with lesion ids and metadata; a pure function of (scale, seed,
    test_scale). ``test_scale`` sizes the test split apart from the training split (default: ``scale``)."""
    rng = np.random.default_rng(derive_seed(seed, "synth-plan", repr(float(scale))))
    lesions = []  # (split, dx, n_images)
    scales = {"train": scale, "test": scale if test_scale is None else test_scale}
    for split in ("train", "test"):
        for dx, n in class_counts(scales[split], split).items():
            sizes = rng.choice(_REPEATS[0], size=n, p=_REPEATS[1])  # more than enough lesions
            ends = np.cumsum(sizes)
            k = int(np.searchsorted(ends, n)) + 1  # the first k lesions cover n images
            sizes = sizes[:k].copy()
            sizes[-1] -= int(ends[k - 1]) - n
            lesions.extend((split, dx, int(m)) for m in sizes)
    n_train = sum(k for s, _, k in lesions if s == "train")
    n_test = sum(k for s, _, k in lesions if s == "test")
    lesion_numbers = rng.permutation(len(lesions))
    train_numbers = list(TRAIN_ID_START + rng.permutation(n_train))
    test_start = max(TEST_ID_START, TRAIN_ID_START + n_train + 100)
    test_numbers = list(test_start + rng.permutation(n_test))
    n_lesions = len(lesions)
    means = np.array([_AGE[dx][0] for _, dx, _ in lesions])
    sds = np.array([_AGE[dx][1] for _, dx, _ in lesions])
    ages = np.clip(5 * np.round(rng.normal(means, sds) / 5), 0, 85)
    age_missing = rng.random(n_lesions) < 0.006
    sexes = _choices(rng, {"male": 0.54, "female": 0.45, "unknown": 0.01}, n_lesions)
    places = _choices(rng, _LOCALIZATION, n_lesions)
    datasets = _choices(rng, _DATASET, n_lesions)
    dx_type = {dx: iter(_choices(rng, _DX_TYPE[dx], n_lesions)) for dx in CLASSES}
    planned = []
    for i, ((split, dx, k), number) in enumerate(zip(lesions, lesion_numbers, strict=True)):
        lesion_id = f"HAM_{number:07d}"
        age = "" if age_missing[i] else f"{ages[i]:.1f}"
        meta = (next(dx_type[dx]), age, sexes[i], places[i], datasets[i])
        numbers = train_numbers if split == "train" else test_numbers
        for _ in range(k):
            planned.append(PlannedImage(f"ISIC_{int(numbers.pop()):07d}", lesion_id, dx, split, meta))
    return planned


# --- rendering helpers ------------------------------------------------------------------------


def _noise(rng: np.random.Generator, h: int, w: int, cells: float) -> np.ndarray:
    """Smooth zero-mean, roughly unit-variance noise with about ``cells`` features across."""
    import cv2

    ch = max(2, int(round(cells * h / max(h, w)))) + 2
    cw = max(2, int(round(cells * w / max(h, w)))) + 2
    grid = rng.standard_normal((ch, cw)).astype(np.float32)
    field = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    return field / max(float(field.std()), 1e-3)


def _blend(canvas: np.ndarray, weight: np.ndarray, colour) -> None:
    """In place on a planar 3xHxW canvas: canvas = canvas * (1 - weight) + colour * weight."""
    canvas *= 1.0 - weight
    canvas += weight * np.asarray(colour, np.float32)[:, None, None]


def _jitter(rng, colour, amount=0.06):
    return np.clip(np.asarray(colour, np.float32) * (1 + rng.uniform(-amount, amount, 3)), 0, 1)


def _rgb(*values):
    return np.array(values, np.float32) / 255.0


def _draw_tree(layer, rng, start, angle, length, width, depth, max_depth=3):
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


# Lesion radius (fraction of half the short image side), border irregularity, edge softness,
# maximum opacity; per class. Irregularity is the amplitude of the low Fourier modes of r(theta).
_SHAPE = {
    "akiec": dict(radius=(0.35, 0.65), irregular=0.10, soft=(0.15, 0.28), opacity=(0.80, 0.95)),
    "bcc": dict(radius=(0.35, 0.65), irregular=0.09, soft=(0.08, 0.16), opacity=(0.82, 0.95)),
    "bkl": dict(radius=(0.45, 0.80), irregular=0.07, soft=(0.03, 0.07), opacity=(0.88, 0.98)),
    "df": dict(radius=(0.25, 0.45), irregular=0.04, soft=(0.15, 0.30), opacity=(0.85, 0.95)),
    "mel": dict(radius=(0.50, 0.85), irregular=0.17, soft=(0.04, 0.10), opacity=(0.92, 1.00)),
    "nv": dict(radius=(0.35, 0.65), irregular=0.035, soft=(0.06, 0.12), opacity=(0.90, 0.99)),
    "vasc": dict(radius=(0.22, 0.45), irregular=0.06, soft=(0.03, 0.06), opacity=(0.92, 1.00)),
}


@functools.lru_cache(maxsize=48)
def _polar_grid(side: int):
    """(dx, dy, rho, theta index into a 1024-entry table) of a side x side canvas about its centre."""
    c = side / 2.0
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    dxs, dys = xx - c, yy - c
    index = ((np.arctan2(dys, dxs) + np.pi) * (1024 / (2 * np.pi))).astype(np.int32) % 1024
    grid = (dxs, dys, np.hypot(dxs, dys), index)
    for a in grid:
        a.setflags(write=False)
    return grid


def _paint_lesion(dx: str, rng: np.random.Generator, radius_px: float, shape: dict | None = None):
    """(colour 3xHxW planar, opacity HxW, inside HxW) float32 canvases of one lesion in its own frame.

    The lesion is drawn isotropic; its elongation is applied by the warp into the photograph.
    ``shape`` overrides the class's border and opacity parameters (``_SHAPE[dx]``).
    """
    import cv2

    shape = _SHAPE[dx] if shape is None else shape
    side = 16 * int(np.ceil(2.7 * radius_px / 16))  # few distinct sides, so the polar grid is cached
    c = side / 2.0
    dxs, dys, rho, index = _polar_grid(side)
    # Border: r(theta) = R (1 + sum_k a_k cos(k theta + phi_k)), looked up in a 1-D table.
    table_theta = np.linspace(-np.pi, np.pi, 1024, endpoint=False)
    r = np.ones_like(table_theta)
    irregular = shape["irregular"] * rng.uniform(0.6, 1.4)
    for k in range(2, 13):
        amp = irregular * rng.uniform(0.3, 1.0) / (k / 2.0) ** (1.0 if dx == "mel" else 1.5)
        r += amp * np.cos(k * table_theta + rng.uniform(0, 2 * np.pi))
    r = (np.maximum(r, 0.35) * radius_px).astype(np.float32)
    d = rho / r[index]  # < 1 inside the lesion
    inside = (d < 1.0).astype(np.float32)
    soft = rng.uniform(*shape["soft"])
    opacity = np.clip((1.0 - d) / soft + 0.5, 0.0, 1.0) * rng.uniform(*shape["opacity"])

    n = lambda cells: _noise(rng, side, side, cells)  # noqa: E731 - a local shorthand
    centre = np.clip(1.0 - d, 0.0, 1.0)  # 1 at the centre, 0 at the border
    colour = np.empty((3, side, side), np.float32)  # planar: per-pixel factors broadcast fast

    if dx == "nv":
        colour[:] = _jitter(rng, _rgb(150, 100, 70) * rng.uniform(0.65, 1.1), 0.08)[:, None, None]
        colour *= 1.0 - rng.uniform(0.1, 0.35) * centre  # darker centre
        if rng.random() < 0.75:  # regular pigment network
            net = np.exp(-((n(rng.uniform(9, 14)) / 0.5) ** 2))
            colour *= 1.0 - rng.uniform(0.3, 0.5) * net * (1 - 0.4 * centre)
        if rng.random() < 0.3:  # regular globules
            glob = np.zeros((side, side), np.float32)
            for _ in range(int(rng.integers(8, 25))):
                p = c + rng.uniform(-0.6, 0.6, 2) * radius_px
                cv2.circle(glob, (int(p[0]), int(p[1])), max(1, int(0.05 * radius_px)), 1.0, -1, cv2.LINE_AA)
            _blend(colour, glob * 0.6 * inside, _rgb(95, 60, 45))
        colour *= 1 + 0.04 * n(20)
    elif dx == "mel":
        colour[:] = _jitter(rng, _rgb(105, 65, 48) * rng.uniform(0.7, 1.05), 0.08)[:, None, None]
        tilt = rng.uniform(0, 2 * np.pi)  # asymmetric darkening
        ramp = (np.cos(tilt) * dxs + np.sin(tilt) * dys) / radius_px
        colour *= 1.0 - 0.25 * np.clip(ramp + 0.3, 0, 1.2)
        blotch = np.clip((n(5) - 0.3) * 2.0, 0, 1)  # black blotches
        _blend(colour, blotch * 0.85, _rgb(35, 25, 28))
        if rng.random() < 0.65:  # blue-white veil
            veil = np.clip((n(3) - 0.2) * 1.5, 0, 1) * centre**0.3
            _blend(colour, veil * rng.uniform(0.5, 0.8), _jitter(rng, _rgb(95, 105, 135)))
        if rng.random() < 0.5:  # regression: white-grey scar-like areas
            reg = np.clip((n(6) - 0.9) * 2.0, 0, 1)
            _blend(colour, reg * 0.7, _rgb(200, 190, 195))
        if rng.random() < 0.35:  # red areas
            _blend(colour, np.clip((n(4) - 1.0) * 2.0, 0, 1) * 0.6, _rgb(170, 60, 60))
        net = np.exp(-((n(rng.uniform(7, 12)) / 0.45) ** 2))  # atypical thick network
        colour *= 1.0 - 0.45 * net * np.clip(n(3) + 0.5, 0, 1)
        dots = np.zeros((side, side), np.float32)  # irregular peripheral dots
        for _ in range(int(rng.integers(10, 40))):
            a, rr = rng.uniform(0, 2 * np.pi), rng.uniform(0.6, 1.05)
            p = c + radius_px * rr * np.array([np.cos(a), np.sin(a)])
            cv2.circle(
                dots, (int(p[0]), int(p[1])), max(1, int(rng.uniform(0.02, 0.06) * radius_px)), 1.0, -1
            )
        _blend(colour, dots * 0.8, _rgb(45, 30, 30))
        colour *= 1 + 0.07 * n(25)
    elif dx == "bkl":
        colour[:] = _jitter(rng, _rgb(175, 130, 90) * rng.uniform(0.6, 1.05), 0.1)[:, None, None]
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
        _blend(colour, spots * 0.75, _rgb(235, 225, 205))
        _blend(colour, pits * 0.7, _rgb(80, 55, 40))
    elif dx == "bcc":
        colour[:] = _jitter(rng, _rgb(228, 150, 158), 0.06)[:, None, None]  # pink, pearly
        _blend(colour, np.clip(n(6) * 0.3, 0, 1), _rgb(240, 225, 225))  # shiny white areas
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
            nests = cv2.GaussianBlur(nests, (0, 0), 0.02 * radius_px + 0.5)
            _blend(colour, nests * 0.85, _jitter(rng, _rgb(85, 90, 115)))
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
        _blend(colour, vessels * 0.9, _jitter(rng, _rgb(190, 30, 45)))
        if rng.random() < 0.3:  # ulceration
            _blend(colour, np.clip((n(4) - 1.2) * 3, 0, 1) * centre, _rgb(110, 40, 30))
    elif dx == "akiec":
        colour[:] = _jitter(rng, _rgb(205, 125, 115), 0.07)[:, None, None]  # erythema
        colour *= 1 + 0.1 * n(8)
        scale_patch = np.clip((n(rng.uniform(6, 12)) - 0.2) * 1.5, 0, 1) * np.sqrt(
            centre
        )  # white-yellow scale
        _blend(colour, scale_patch * rng.uniform(0.5, 0.85), _jitter(rng, _rgb(235, 220, 195)))
        dots = np.zeros((side, side), np.float32)  # dotted / glomerular vessels
        for _ in range(int(rng.integers(20, 60))):
            p = c + rng.uniform(-0.8, 0.8, 2) * radius_px
            cv2.circle(dots, (int(p[0]), int(p[1])), max(1, int(0.025 * radius_px)), 1.0, -1)
        _blend(colour, dots * (1 - scale_patch) * 0.8, _rgb(175, 40, 50))
        if rng.random() < 0.3:  # faint brown pseudo-network
            colour *= 1.0 - 0.15 * np.exp(-((n(10) / 0.4) ** 2))
    elif dx == "df":
        colour[:] = _jitter(rng, _rgb(150, 100, 75) * rng.uniform(0.85, 1.1), 0.08)[:, None, None]
        net = np.exp(-((n(rng.uniform(14, 20)) / 0.3) ** 2))  # delicate peripheral network
        colour *= 1.0 - 0.35 * net * (1 - centre)
        scar = np.clip((centre - rng.uniform(0.35, 0.55)) * 4 + 0.4 * n(5), 0, 1)  # central white patch
        _blend(colour, scar * 0.9, _jitter(rng, _rgb(238, 225, 215), 0.03))
    elif dx == "vasc":
        colour[:] = _jitter(rng, _rgb(205, 120, 130), 0.06)[:, None, None]  # pink-red septa between lacunae
        purple = rng.random() < 0.4
        lacunae = np.zeros((side, side, 3), np.float32)
        weight = np.zeros((side, side), np.float32)
        for _ in range(int(rng.integers(20, 45))):
            p = c + rng.uniform(-0.8, 0.8, 2) * radius_px
            rad = max(1, int(rng.uniform(0.1, 0.22) * radius_px))
            base = _rgb(120, 35, 75) if purple else _rgb(165, 30, 45)
            col = tuple(float(v) for v in _jitter(rng, base * rng.uniform(0.55, 1.1), 0.08))
            cv2.circle(lacunae, (int(p[0]), int(p[1])), rad, col, -1, cv2.LINE_AA)
            cv2.circle(weight, (int(p[0]), int(p[1])), rad, 1.0, -1, cv2.LINE_AA)
        weight = cv2.GaussianBlur(weight, (0, 0), 0.015 * radius_px + 0.4) * 0.95
        colour *= 1.0 - weight
        colour += lacunae.transpose(2, 0, 1) * (0.95 * (weight > 0))
        colour *= 1 + 0.05 * n(20)
    else:  # pragma: no cover - CLASSES is fixed
        raise ValueError(dx)
    return np.clip(colour, 0, 1), opacity.astype(np.float32), inside


def _lerp_shape(own: dict, other: dict, weight: float) -> dict:
    """Shape parameters (numbers and ranges) interpolated from ``own`` toward ``other``."""
    mix = {}
    for key, value in own.items():
        if isinstance(value, tuple):
            mix[key] = tuple((1 - weight) * a + weight * b for a, b in zip(value, other[key], strict=True))
        else:
            mix[key] = (1 - weight) * value + weight * other[key]
    return mix


def lesion_overlap(dx: str, lesion_id: str, seed: int, difficulty: float) -> tuple[str, float]:
    """(confuser class, weight) of one lesion: how far its appearance is drawn toward which class.

    Drawn from a stream of its own, so difficulty 0 leaves every other draw, and the old bytes, as
    they were."""
    if difficulty <= 0:
        return dx, 0.0
    rng = np.random.default_rng(derive_seed(seed, "synth-overlap", lesion_id))
    confusers, reach = CONFUSERS[dx]
    other = _choices(rng, confusers, 1)[0]
    return other, float(rng.uniform(0.0, difficulty * reach))


_SKIN = (
    _rgb(232, 185, 165),
    _rgb(225, 170, 150),
    _rgb(215, 160, 130),
    _rgb(240, 200, 185),
    _rgb(195, 140, 110),
)
MAX_CANVAS = 256
"""Lesions are painted on a canvas of at most this side and scaled up by the warp: speed over detail."""


def render_image(
    planned: PlannedImage, seed: int, size: tuple[int, int] = DEFAULT_SIZE, difficulty: float = 0.0
):
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
    redness = _noise(view, lh, lw, 3)  # patchy erythema: more red, less green/blue
    low *= 1 + 0.02 * redness[..., None] * np.array([0.3, -1.0, -0.7], np.float32)
    low *= (1 + 0.02 * _noise(view, lh, lw, 4) + 0.012 * _noise(view, lh, lw, 25))[..., None]
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
    shape = _lerp_shape(_SHAPE[planned.dx], _SHAPE[other], weight) if weight > 0 else _SHAPE[planned.dx]
    radius_px = lesion_rng.uniform(*shape["radius"]) * short / 2
    paint_scale = min(1.0, MAX_CANVAS / (2.7 * radius_px))
    colour, opacity, inside = _paint_lesion(planned.dx, lesion_rng, radius_px * paint_scale, shape)
    if weight > 0:
        confuser_rng = np.random.default_rng(derive_seed(seed, "synth-confuser", planned.lesion_id))
        colour = (1 - weight) * colour + weight * _paint_lesion(
            other, confuser_rng, radius_px * paint_scale, shape
        )[0]
    side = opacity.shape[0]
    zoom = view.uniform(0.88, 1.12) / paint_scale
    angle = view.uniform(0, 360)
    centre = (w / 2 + view.uniform(-0.08, 0.08) * w, h / 2 + view.uniform(-0.08, 0.08) * h)
    m = cv2.getRotationMatrix2D((0, 0), angle, zoom)
    m[:, 0] *= lesion_rng.uniform(0.72, 1.0)  # elongation: squeeze the canvas x axis
    m[:, 2] = np.array(centre) - m[:, :2] @ (side / 2, side / 2)
    # Warp only into the lesion's bounding box: most of the photograph is skin.
    corners = np.array([[0, 0, 1], [side, 0, 1], [0, side, 1], [side, side, 1]], float) @ m.T
    x0, y0 = np.maximum(np.floor(corners.min(axis=0)).astype(int) - 1, 0)
    x1, y1 = np.minimum(np.ceil(corners.max(axis=0)).astype(int) + 1, (w, h))
    m[:, 2] -= (x0, y0)
    warp = dict(
        dsize=(int(x1 - x0), int(y1 - y0)),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    premultiplied = cv2.warpAffine(
        cv2.merge(list(colour * opacity * white_balance[:, None, None])), m, **warp
    )
    alpha = cv2.warpAffine(opacity, m, **warp)
    mask = np.zeros((h, w), np.uint8)
    mask[y0:y1, x0:x1] = cv2.warpAffine(inside, m, **warp) >= 0.5

    # Compose with single-channel factors: skin * grain * gain * (1 - alpha) + lesion * gain.
    gain_full = cv2.resize(gain, (w, h), interpolation=cv2.INTER_LINEAR)
    grain = cv2.resize(_noise(view, h // 2, w // 2, 60), (w, h), interpolation=cv2.INTER_LINEAR)
    skin_factor = (1 + 0.022 * grain) * gain_full
    skin_factor[y0:y1, x0:x1] *= 1 - alpha
    img = cv2.resize(low, (w, h), interpolation=cv2.INTER_LINEAR)
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
        weight = hair[drawn].astype(np.float32)[:, None] * (view.uniform(0.7, 0.95) / 255)
        hair_colour = _rgb(40, 28, 22) * view.uniform(0.5, 1.3)
        img[drawn] = img[drawn] * (1 - weight) + hair_colour * weight

    img = cv2.GaussianBlur(img, (0, 0), 0.5 + short / 900)
    noise = view.random((h, w), dtype=np.float32) - np.float32(0.5)  # uniform: cheaper than normal
    noise *= np.float32(view.uniform(0.008, 0.018) * np.sqrt(12))
    cv2.add(img, cv2.merge([noise] * 3), dst=img)
    rgb = cv2.convertScaleAbs(img, alpha=255.0)  # rounds and saturates to uint8
    return rgb, mask


# --- writing the Dataverse layout -------------------------------------------------------------


def _encode_jpeg(rgb: np.ndarray) -> bytes:
    import cv2

    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:  # pragma: no cover
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


def _encode_mask_png(mask: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(
        ".png", np.where(mask > 0, 255, 0).astype(np.uint8), [cv2.IMWRITE_PNG_COMPRESSION, 6]
    )
    if not ok:  # pragma: no cover
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def _render_and_write(job) -> str:
    planned, seed, size, difficulty, image_path, mask_path = job
    rgb, mask = render_image(planned, seed, size, difficulty)
    Path(image_path).write_bytes(_encode_jpeg(rgb))
    if mask_path is not None:  # the test set has no segmentations, as in reality
        Path(mask_path).write_bytes(_encode_mask_png(mask))
    return planned.image_id


def _keep_freed_memory() -> None:
    """Ask glibc to reuse freed image-sized buffers instead of returning them to the kernel.

    Every image allocates and frees tens of MB of temporaries; by default glibc maps and unmaps
    them, and the page faults cost about a third of the rendering time. No effect off glibc.
    """
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 64 << 20)  # M_MMAP_THRESHOLD: serve blocks up to 64 MB from the heap
        libc.mallopt(-1, 256 << 20)  # M_TRIM_THRESHOLD: keep up to 256 MB of free heap
    except (OSError, AttributeError):
        pass


def _worker_init() -> None:
    import cv2

    cv2.setNumThreads(1)  # the pool already uses every core
    _keep_freed_memory()


def _marker_text(
    scale: float, seed: int, size, test_format: str, difficulty: float, test_scale: float
) -> str:
    return (
        "Synthetic stand-in for HAM10000 written by ham-artefacts synth-ham10000.\n"
        "These are NOT real dermatoscopic images; results on them say nothing about real lesions.\n"
        f"scale={float(scale)!r}\nseed={int(seed)}\nsize={size[0]}x{size[1]}\ntest_format={test_format}\n"
        f"difficulty={float(difficulty)!r}\ntest_scale={float(test_scale)!r}\n"
        f"generator_version={__version__}\n"
    )


def _table_text(header, rows) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def _check_scale(value, flag: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{flag}: not a number: {value!r}") from None
    if not (0 < value <= MAX_SCALE) or not np.isfinite(value):
        raise UserError(f"{flag}: must be > 0 and <= {MAX_SCALE}, got {value}")
    return value


def synthesize_ham10000(
    out: str | os.PathLike,
    scale: float = 1.0,
    seed: int = 0,
    size: tuple[int, int] = DEFAULT_SIZE,
    *,
    workers: int = 1,
    test_format: str = "onehot",
    progress: bool = True,
    difficulty: float | str = DEFAULT_DIFFICULTY,
    test_scale: float | None = None,
) -> Path:
    """Write a synthetic HAM10000 in the Dataverse layout to ``out``; return ``out``.

    ``scale`` 1.0 gives 10,015 training and 1,511 test images; ``size`` is (W, H). The test
    ground truth is the ISIC one-hot table (``test_format="onehot"``) or HAM metadata columns
    (``"ham"``). ``difficulty`` (a preset name or a number in [0, 1]) sets how much class appearance
    overlaps; ``test_scale`` sizes the test split apart from the training one (default ``scale``).
    The folder appears complete or not at all (built beside it, then renamed).
    If ``out`` already holds a synthetic set made with the same parameters, it is kept as is.
    """
    from tqdm import tqdm

    scale = _check_scale(scale, "--scale")
    test_scale = scale if test_scale is None else _check_scale(test_scale, "--test-scale")
    difficulty = resolve_difficulty(difficulty)
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise UserError(f"--seed: must be a non-negative integer, got {seed!r}")
    if isinstance(size, str):
        size = parse_size(size)
    size = (int(size[0]), int(size[1]))
    if not (32 <= size[0] <= 4096 and 32 <= size[1] <= 4096):
        raise UserError(f"--size: width and height must be between 32 and 4096, got {size[0]}x{size[1]}")
    if test_format not in ("onehot", "ham"):
        raise UserError(f"--test-format: expected onehot or ham, got {test_format!r}")
    if int(workers) < 1:
        raise UserError(f"--workers: must be at least 1, got {workers}")

    out = Path(out)
    marker = _marker_text(scale, seed, size, test_format, difficulty, test_scale)
    refuse_non_folder(out)
    if out.exists():
        if (out / SYNTHETIC_MARKER).is_file() and (out / SYNTHETIC_MARKER).read_text() == marker:
            if progress:
                print(
                    f"{out}: synthetic HAM10000 with these parameters already present; kept", file=sys.stderr
                )
            return out
        if any(out.iterdir()):
            raise UserError(f"{out}: exists and is not empty (choose a new folder)")

    planned = plan_dataset(scale, seed, test_scale)
    train = sorted((p for p in planned if p.split == "train"), key=lambda p: p.image_id)
    test = sorted((p for p in planned if p.split == "test"), key=lambda p: p.image_id)
    half = (len(train) + 1) // 2
    part = {p.image_id: TRAIN_DIRS[0] if i < half else TRAIN_DIRS[1] for i, p in enumerate(train)}

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    except OSError as exc:
        raise UserError(f"{out}: cannot create output ({exc.strerror or exc})") from None
    try:
        for name in (*TRAIN_DIRS, MASK_DIR, TEST_DIR):
            (tmp / name).mkdir()
        jobs = [
            (
                p,
                int(seed),
                size,
                difficulty,
                str(tmp / part[p.image_id] / f"{p.image_id}.jpg"),
                str(tmp / MASK_DIR / f"{p.image_id}_segmentation.png"),
            )
            for p in train
        ]
        jobs += [
            (p, int(seed), size, difficulty, str(tmp / TEST_DIR / f"{p.image_id}.jpg"), None) for p in test
        ]
        bar = tqdm(total=len(jobs), desc="synth-ham10000", unit="img", disable=not progress, leave=False)
        if int(workers) == 1:
            _keep_freed_memory()
            for job in jobs:
                _render_and_write(job)
                bar.update()
        else:
            import multiprocessing

            ctx = multiprocessing.get_context("spawn")
            with ctx.Pool(int(workers), initializer=_worker_init) as pool:
                for _ in pool.imap_unordered(_render_and_write, jobs, chunksize=16):
                    bar.update()
        bar.close()

        # Metadata grouped by diagnosis, then lesion, like the published file.
        meta_rows = [
            (p.lesion_id, p.image_id, p.dx, *p.metadata)
            for p in sorted(train, key=lambda p: (p.dx, p.lesion_id, p.image_id))
        ]
        (tmp / METADATA_NAME).write_text(_table_text(HAM_COLUMNS, meta_rows), encoding="utf-8")
        if test_format == "onehot":
            gt_rows = [
                (p.image_id, *("1.0" if p.dx == c.lower() else "0.0" for c in ONEHOT_ORDER)) for p in test
            ]
            gt_text = _table_text(("image", *ONEHOT_ORDER), gt_rows)
        else:
            gt_text = _table_text(HAM_COLUMNS, [(p.lesion_id, p.image_id, p.dx, *p.metadata) for p in test])
        (tmp / TEST_GT_NAME).write_text(gt_text, encoding="utf-8")
        (tmp / SYNTHETIC_MARKER).write_text(marker, encoding="utf-8")
        if out.exists():
            out.rmdir()  # empty (checked above)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
