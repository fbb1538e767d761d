"""Small synthetic variant files for the training tests, written through generator.variants.store.write_variant.

Each image is a skin-coloured background with one elliptical lesion whose colour depends on the
diagnosis (so a model can learn something in a few steps), a lesion mask equal to the ellipse, and, on
artefact rows, a dark stripe standing in for an artefact. Lesions repeat (two images share a lesion_id)
so grouped folds are exercised.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from generator import CLASSES
from generator.variants.store import Row, encode_mask, encode_png, write_variant

LESION_COLOURS = np.array(
    [
        [150, 60, 60],
        [90, 40, 110],
        [120, 100, 60],
        [60, 110, 70],
        [40, 30, 30],
        [110, 70, 40],
        [170, 30, 90],
    ],
    dtype=np.float64,
)


def synthetic_rows(
    n_images: int,
    split: str,
    seed: int = 0,
    size: tuple[int, int] = (80, 64),
    artefact_ids: set[str] | None = None,
) -> list[Row]:
    """``n_images`` rows; consecutive pairs share a lesion; diagnoses cycle through all 7 classes."""
    width, height = size
    rows = []
    yy, xx = np.mgrid[0:height, 0:width]
    for i in range(n_images):
        # images 2k and 2k+1 show the same lesion (same lesion_id, same diagnosis)
        label = (i // 2) % len(CLASSES)
        image_id = f"ISIC_{(9000000 if split == 'train' else 8000000) + i:07d}"
        lesion_id = f"HAM_{(9000000 if split == 'train' else 8000000) + i // 2:07d}"
        rng = np.random.default_rng([seed, i, 17])
        cy, cx = rng.uniform(0.35, 0.65) * height, rng.uniform(0.35, 0.65) * width
        ry, rx = rng.uniform(0.15, 0.3) * height, rng.uniform(0.15, 0.3) * width
        mask = (((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2) <= 1.0
        image = np.empty((height, width, 3), np.float64)
        image[:] = [215, 170, 150]
        image[mask] = LESION_COLOURS[label]
        image += rng.normal(0, 12, image.shape)
        has_artefact = artefact_ids is not None and image_id in artefact_ids
        artefact = np.zeros((height, width), bool)
        if has_artefact:
            row0 = int(rng.integers(0, height - 4))
            artefact[row0 : row0 + 3, :] = True
            image[artefact] = 20
        image = np.clip(image, 0, 255).astype(np.uint8)
        rows.append(
            Row(
                image_id=image_id,
                lesion_id=lesion_id,
                label=label,
                image_bytes=encode_png(image),
                lesion_mask_bytes=encode_mask(mask),
                artefact_mask_bytes=encode_mask(artefact),
                has_artefact=has_artefact,
                kind="ruler_horizontal" if has_artefact else "",
                record="{}" if has_artefact else "",
                metadata={"dx": CLASSES[label], "age": "50"},
            )
        )
    return rows


def write_synthetic_variant(path: Path, rows: list[Row], variant: str) -> Path:
    split = variant.split("_")[0]
    return write_variant(
        path,
        rows,
        len(rows),
        {
            "variant": {"name": variant, "split": split},
            "split": split,
            "seed": 0,
            "source_fingerprint": "synthetic-test",
            "templates": "none",
        },
    )


def write_synthetic_data(
    out: Path,
    n_train: int = 42,
    n_test: int = 14,
    size: tuple[int, int] = (80, 64),
    train_variants=("train_none", "train_all"),
    seed: int = 0,
) -> Path:
    """A data folder with the named training variants and all 13 test variants.

    train_all / test_all put an artefact on every image, test_<cls> on one class, test_<p> on the first
    p % of the images; other train variants are clean copies (enough for training tests).
    """
    from generator.variants import list_variants

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    train_ids = [r.image_id for r in synthetic_rows(n_train, "train", seed, size)]
    for variant in train_variants:
        ids = set(train_ids) if variant == "train_all" else set()
        write_synthetic_variant(
            out / f"{variant}.h5", synthetic_rows(n_train, "train", seed, size, ids), variant
        )
    clean = synthetic_rows(n_test, "test", seed, size)
    for variant in list_variants("test"):
        suffix = variant.split("_", 1)[1]
        if suffix == "none":
            ids = set()
        elif suffix == "all":
            ids = {r.image_id for r in clean}
        elif suffix in CLASSES:
            ids = {r.image_id for r in clean if CLASSES[r.label] == suffix}
        else:
            ids = {r.image_id for r in clean[: round(int(suffix) / 100 * n_test)]}
        write_synthetic_variant(
            out / f"{variant}.h5", synthetic_rows(n_test, "test", seed, size, ids), variant
        )
    return out


def digest_arrays(*arrays) -> str:
    """SHA-256 over each array's dtype, shape and bytes: records outputs that must stay byte-identical."""
    import hashlib

    hashed = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(np.asarray(array))
        hashed.update(str((array.dtype.str, array.shape)).encode())
        hashed.update(array.tobytes())
    return hashed.hexdigest()
