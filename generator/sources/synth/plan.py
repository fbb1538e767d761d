"""The plan of the synthetic HAM10000: which images exist, of which lesion, with which metadata.

A pure function of (scale, seed, test_scale): class counts follow the published ones, images per lesion
follow HAM10000's repeat distribution, and the metadata (dx_type, age, sex, localization, dataset)
its marginals per class. Also the difficulty setting: how far a lesion's appearance is drawn toward a
class it is usually confused with (``CONFUSERS``, ``lesion_overlap``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ... import CLASSES
from ...errors import UserError
from ...seeding import derive_seed
from ..ham10000 import EXPECTED_COUNTS

MIN_PER_CLASS = 3
"""Every class gets at least this many images in each split, so tiny scales still have all classes."""
TRAIN_ID_START = 24306  # ISIC_0024306 is the first HAM10000 image id
TEST_ID_START = 34524  # first ISIC 2018 Task 3 test image id

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


def resolve_difficulty(value: float | str) -> float:
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


def _choices(rng: np.random.Generator, weights: dict[str, float], n: int) -> list[str]:
    """``n`` independent draws of the keys of ``weights`` (vectorised)."""
    keys = list(weights)
    p = np.array([weights[k] for k in keys], float)
    return [keys[i] for i in rng.choice(len(keys), size=n, p=p / p.sum())]


@dataclass(frozen=True)
class PlannedImage:
    image_id: str
    lesion_id: str
    dx: str
    split: str
    metadata: tuple[str, str, str, str, str]  # (dx_type, age, sex, localization, dataset)


def class_counts(scale: float, split: str) -> dict[str, int]:
    """Images per class at ``scale``: the published counts, rounded, with a floor of MIN_PER_CLASS."""
    return {c: max(MIN_PER_CLASS, int(round(scale * EXPECTED_COUNTS[split][c]))) for c in CLASSES}


def plan_dataset(scale: float, seed: int, test_scale: float | None = None) -> list[PlannedImage]:
    """All images (train then test) with lesion ids and metadata; a pure function of (scale, seed,
    test_scale). ``test_scale`` sizes the test split apart from the training split (default: ``scale``)."""
    rng = np.random.default_rng(derive_seed(seed, "synth-plan", repr(float(scale))))
    lesions: list[tuple[str, str, int]] = []  # (split, dx, n_images)
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
