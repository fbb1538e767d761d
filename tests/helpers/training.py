"""Small synthetic variant files for the training tests, written through generator.variants.store.write_variant,
and their manifest (generator.variants.manifest: the consumers read a folder only through it).

Each image is a skin-coloured background with one elliptical lesion whose colour depends on the
diagnosis (so a model can learn something in a few steps), a lesion mask equal to the ellipse, and, on
artefact rows, a dark stripe standing in for an artefact. Lesions repeat (two images share a lesion_id)
so grouped folds are exercised.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from generator import CLASSES
from generator.variants import CLEAN_TRAIN, VARIANTS
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


def write_synthetic_variant(path: Path, rows: list[Row], variant: str, seed: int = 0) -> Path:
    """One variant file; its folder is read only through a manifest: :func:`write_data_manifest` after the
    last file."""
    split = variant.split("_")[0]
    return write_variant(
        path,
        rows,
        len(rows),
        {
            "variant": {"name": variant, "split": split},
            "split": split,
            "seed": seed,
            "source_fingerprint": "synthetic-test",
            "templates": "none",
        },
    )


def write_data_manifest(folder: Path, seed: int = 0) -> dict:
    """``<folder>/manifest.json`` for the variant files written there (the generator's own entries)."""
    from generator.variants.manifest import write_manifest_of_files

    return write_manifest_of_files(folder, seed=seed, source_fingerprint="synthetic-test")


def write_synthetic_data(
    out: Path,
    n_train: int = 42,
    n_test: int = 14,
    size: tuple[int, int] = (80, 64),
    train_variants=(CLEAN_TRAIN, "train_all"),
    seed: int = 0,
) -> Path:
    """A data folder with the named training variants, all 13 test variants and their manifest.

    Each variant puts its artefact (a dark stripe) on the images its registry definition selects
    (``VARIANTS[v].selection``, with ``seed``): train_all / test_all on every image, *_<cls> on one
    class, test_<p> on a stratified p % of every class.
    """
    from generator.variants import list_variants

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for variant in [*train_variants, *list_variants("test")]:
        split = VARIANTS[variant].split
        n_images = n_train if split == "train" else n_test
        clean = synthetic_rows(n_images, split, seed, size)
        chosen = VARIANTS[variant].selection([r.label for r in clean], [r.image_id for r in clean], seed)
        ids = {r.image_id for r, on in zip(clean, chosen, strict=True) if on}
        write_synthetic_variant(
            out / f"{variant}.h5", synthetic_rows(n_images, split, seed, size, ids), variant, seed
        )
    write_data_manifest(out, seed)
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


def small_cnn(num_classes=7, image_size=32, weights=None, pretrained_layout=None, detector_options=None):
    """A few-layer CNN with BatchNorm and dropout, with build_model's signature, for fast engine tests
    (``monkeypatch.setitem(training.models.MODELS, "small_cnn", small_cnn)``): what the loop guarantees
    does not depend on the architecture, and ResNet-34 steps cost seconds on a shared 2-core CPU."""
    import torch

    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.BatchNorm2d(8),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(4),
        torch.nn.Flatten(),
        torch.nn.Dropout(0.2),
        torch.nn.Linear(128, num_classes),
    )
