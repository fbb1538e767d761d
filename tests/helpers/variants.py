"""A tiny HAM10000 folder in the Dataverse layout, written directly (fast, fully controlled).

Used by the variants/generate/manifest tests; the golden test uses the real synth-ham10000.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from generator import CLASSES
from generator.sources.ham10000 import ONEHOT_COLUMNS

ONEHOT_ORDER = ONEHOT_COLUMNS[1:]  # the ISIC ground truth's class columns, after "image"


def _jpeg(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _image(rng: np.random.Generator, label: int, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    skin = np.array([200, 160, 140], float) + rng.normal(0, 6, (h, w, 3))
    cy, cx = h / 2 + rng.uniform(-h / 8, h / 8), w / 2 + rng.uniform(-w / 8, w / 8)
    r = min(h, w) * rng.uniform(0.2, 0.35)
    mask = ((yy - cy) ** 2 + (xx - cx) ** 2) < r * r
    lesion = np.array([60 + 20 * label, 40, 30 + 10 * label], float)
    skin[mask] = lesion + rng.normal(0, 8, (int(mask.sum()), 3))
    return np.clip(skin, 0, 255).astype(np.uint8), mask


def make_source(
    root: Path,
    train_per_class=(4, 5, 4, 3, 4, 9, 3),
    test_per_class=(5, 4, 5, 3, 6, 10, 3),
    size=(64, 48),
    seed: int = 0,
) -> Path:
    """Write the layout under ``root``; returns ``root``. Counts are per class in CLASSES order."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    (root / "HAM10000_images_part_1").mkdir(parents=True, exist_ok=True)
    (root / "HAM10000_segmentations_lesion_tschandl").mkdir(exist_ok=True)
    (root / "ISIC2018_Task3_Test_Images").mkdir(exist_ok=True)
    rows = ["lesion_id,image_id,dx,dx_type,age,sex,localization,dataset"]
    number = 24306
    lesion = 0
    for label, count in enumerate(train_per_class):
        for j in range(count):
            image_id = f"ISIC_{number:07d}"
            number += 1
            if j % 3 != 1:  # every third image repeats the previous lesion
                lesion += 1
            rgb, mask = _image(rng, label, size)
            (root / "HAM10000_images_part_1" / f"{image_id}.jpg").write_bytes(_jpeg(rgb))
            Image.fromarray((mask * 255).astype(np.uint8)).save(
                root / "HAM10000_segmentations_lesion_tschandl" / f"{image_id}_segmentation.png"
            )
            age = "" if j == 2 else str(30 + 5 * j)
            rows.append(f"HAM_{lesion:07d},{image_id},{CLASSES[label]},histo,{age},male,back,vidir_modern")
    (root / "HAM10000_metadata.csv").write_text("\n".join(rows) + "\n")
    gt = ["image," + ",".join(ONEHOT_ORDER)]
    number = 34321
    for label, count in enumerate(test_per_class):
        for _ in range(count):
            image_id = f"ISIC_{number:07d}"
            number += 1
            rgb, _ = _image(rng, label, size)
            (root / "ISIC2018_Task3_Test_Images" / f"{image_id}.jpg").write_bytes(_jpeg(rgb))
            onehot = ["1.0" if c.lower() == CLASSES[label] else "0.0" for c in ONEHOT_ORDER]
            gt.append(f"{image_id}," + ",".join(onehot))
    (root / "ISIC2018_Task3_Test_GroundTruth.csv").write_text("\n".join(gt) + "\n")
    (root / "SYNTHETIC.txt").write_text("synthetic test fixture\n")
    return root
