"""Fabricated runs folders for the evaluation tests: plausible prediction tables, no training needed.

Every image gets a fixed clean "evidence" for its true class; an artefact (where the test variant puts
one by the registry's own selection rule, so that the tables pass evaluate's input checks) adds a pull
toward the class a class-biased model was trained to associate with artefacts, plus a little noise, so
flips, bias shifts and McNemar discordance all occur.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from generator import CLASSES
from generator.artefacts.kinds import DEFAULT_FAMILIES, FAMILIES
from generator.seeding import derive_seed
from generator.variants import VARIANTS, list_variants
from training.models import ARCHITECTURES

ARCHS = tuple(ARCHITECTURES)
TRAIN_VARIANTS = tuple(list_variants("train"))
TEST_VARIANTS = tuple(list_variants("test"))
KINDS = tuple(kind for family in DEFAULT_FAMILIES for kind in FAMILIES[family])
"""The kinds of the paper's three families, the ones artefacted rows draw from by default."""


def make_runs(
    root: Path,
    archs=ARCHS,
    train_variants=TRAIN_VARIANTS,
    folds=(0,),
    test_variants=TEST_VARIANTS,
    n_images: int = 70,
    seed: int = 0,
) -> Path:
    """Write ``<root>/<arch>/<train_variant>/fold<k>/{config.json,DONE,predictions/*.csv}``; return root."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    labels = np.arange(n_images) % len(CLASSES)  # every class present
    rng.shuffle(labels)
    image_ids = [f"ISIC_{1000000 + i:07d}" for i in range(n_images)]
    kinds = np.array(KINDS)[rng.integers(0, len(KINDS), n_images)]
    for arch in archs:
        for train in train_variants:
            code = train.removeprefix("train_")
            pull = CLASSES.index(code) if code in CLASSES else None
            for fold in folds:
                run = root / arch / train / f"fold{fold}"
                (run / "predictions").mkdir(parents=True, exist_ok=True)
                model_rng = np.random.default_rng(derive_seed(seed, arch, train, fold))
                evidence = model_rng.normal(0, 1, (n_images, len(CLASSES)))
                evidence[np.arange(n_images), labels] += 1.5
                for test in test_variants:
                    has = VARIANTS[test].selection(labels, image_ids, seed)  # as the data defines it
                    noise_rng = np.random.default_rng(derive_seed(seed, arch, train, fold, test))
                    logits = evidence + has[:, None] * noise_rng.normal(0, 0.6, evidence.shape)
                    if pull is not None:
                        logits[has, pull] += 1.5
                    scores = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
                    y_pred = scores.argmax(axis=1)
                    if arch != "resnet34":  # detectors sometimes find nothing
                        y_pred = np.where(scores.max(axis=1) < 0.25, -1, y_pred)
                    lines = [
                        "image_id,y_true,"
                        + ",".join(f"score_{c}" for c in CLASSES)
                        + ",y_pred,has_artefact,artefact_kind"
                    ]
                    for i in range(n_images):
                        lines.append(
                            ",".join(
                                [
                                    image_ids[i],
                                    str(labels[i]),
                                    *(f"{s:.6f}" for s in scores[i]),
                                    str(y_pred[i]),
                                    str(int(has[i])),
                                    kinds[i] if has[i] else "",
                                ]
                            )
                        )
                    (run / "predictions" / f"{test}.csv").write_text("\n".join(lines) + "\n")
                (run / "config.json").write_text(
                    json.dumps(
                        {
                            "arch": arch,
                            "train_variant": train,
                            "fold": fold,
                            "image_size": 32,
                            "synthetic": True,
                        }
                    )
                )
                (run / "DONE").write_text("{}\n")
    return root
