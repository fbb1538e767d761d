"""Instrument check: can the evaluation detect the effect it exists to measure?

Planted predictors with a known answer are written as prediction tables in the exact format
``training/run/predict.py`` writes, then put through the real ``evaluate`` and the export's own table
loader and control verdicts:

- ``planted_cheat``: its train_nv model calls ``nv`` whenever an image carries an artefact (and predicts
  like an artefact-blind model otherwise). The positive control must detect it.
- ``planted_honest``: its train_nv model ignores artefacts. The positive control must not detect it.

Every planted run is finished (``DONE``) and has a table for every test variant, each with the variant's
own artefacted images (the registry's rule), as ``evaluate`` requires of any run; the controls read
test_none and test_all. Both architectures' train_none models ignore artefacts, so both negative controls
must pass. An artefact-blind model is not a constant one: it is right on about 70% of images (different
per run), and on a tenth of the artefacted images its prediction is swapped with that of another image,
noise unrelated to the artefact, so "not detected" is not trivially a zero.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from generator import CLASSES
from generator.seeding import derive_seed
from generator.variants import CLEAN_TRAIN, VARIANTS, list_variants
from training.run.config import DONE_NAME

from .controls import POSITIVE_CONTROL
from .paired import DEFAULT_REFERENCE

PLANTED = {  # arch -> (what its train_nv model does, whether the positive control must detect it)
    "planted_cheat": ("calls nv whenever an artefact is present", True),
    "planted_honest": ("ignores artefacts", False),
}
PLANTED_TRAIN = (CLEAN_TRAIN, POSITIVE_CONTROL[0])
CHECK_COLUMNS = [
    "model",
    "behaviour",
    "must_detect",
    "detected",
    "positive_status",
    "did_pp",
    "did_lo",
    "did_hi",
    "p_mcnemar_ref_max",
    "negative_status",
    "negative_shift_pp",
    "ok",
]
KINDS = ("bubble", "ruler_horizontal", "marking_circle")


def _write_predictions(path: Path, image_ids, y_true, y_pred, has_artefact, kinds) -> None:
    """One prediction table with predict.py's columns, order and formatting."""
    from training.run.predict import write_table

    from .predictions import COLUMNS, SCORE_COLUMNS

    scores = np.full((len(y_pred), len(CLASSES)), 0.4 / (len(CLASSES) - 1))
    scores[np.arange(len(y_pred)), y_pred] = 0.6
    table = pd.DataFrame(
        {
            "image_id": image_ids,
            "y_true": y_true,
            **{col: scores[:, c] for c, col in enumerate(SCORE_COLUMNS)},
            "y_pred": y_pred,
            "has_artefact": has_artefact,
            "artefact_kind": kinds,
        },
        columns=list(COLUMNS),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    write_table(table.sort_values("image_id", kind="stable").reset_index(drop=True), path)


def plant_runs(root: str | Path, n_per_class: int = 60, folds=(0, 1, 2), seed: int = 0) -> Path:
    """Write ``<root>/<planted arch>/<train_variant>/fold<k>/{config.json,DONE,predictions/*.csv}``; return
    root."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    y_true = np.repeat(np.arange(len(CLASSES)), n_per_class)
    n = len(y_true)
    image_ids = np.array([f"ISIC_{9000000 + i:07d}" for i in range(n)], dtype=object)
    kinds = np.array(KINDS)[rng.integers(0, len(KINDS), n)]
    nv = CLASSES.index(DEFAULT_REFERENCE)
    artefacted = {
        test: VARIANTS[test].selection(y_true.tolist(), list(image_ids), seed)
        for test in list_variants("test")
    }
    for arch, (_, _) in PLANTED.items():
        for train in PLANTED_TRAIN:
            cheats = arch == "planted_cheat" and train == POSITIVE_CONTROL[0]
            for fold in folds:
                model = np.random.default_rng(derive_seed(seed, "planted", arch, train, fold))
                clean = np.where(model.random(n) < 0.7, y_true, model.integers(0, len(CLASSES), n))
                swapped = model.random(n) < 0.1
                blind = np.where(swapped, clean[model.permutation(n)], clean)
                run = root / arch / train / f"fold{fold}"
                for test, has in artefacted.items():
                    y_pred = np.where(has, nv if cheats else blind, clean)
                    _write_predictions(
                        run / "predictions" / f"{test}.csv",
                        image_ids,
                        y_true,
                        y_pred,
                        has.astype(int),
                        np.where(has, kinds, ""),
                    )
                (run / "config.json").write_text(
                    json.dumps(
                        {
                            "arch": arch,
                            "train_variant": train,
                            "fold": fold,
                            "synthetic": True,
                            "planted": True,
                        }
                    )
                    + "\n"
                )
                (run / DONE_NAME).write_text("{}\n")
    return root


def run_instrument_check(workdir: str | Path | None = None, seed: int = 0, n_boot: int = 200) -> pd.DataFrame:
    """Plant, evaluate, load back with the export's loader and read the control verdicts; one row per model.

    ``ok`` is True when the verdict is the planted truth (the cheat detected, the honest model not) and
    the artefact-blind train_none passes the negative control.
    """
    from training.export.results import load_results

    from .evaluate import evaluate

    with tempfile.TemporaryDirectory(prefix="ham-instrument-", dir=workdir) as tmp:
        runs = plant_runs(Path(tmp) / "runs", seed=seed)
        evaluate(runs, Path(tmp) / "results", n_boot=n_boot, seed=seed, progress=False)
        controls = load_results(Path(tmp) / "results")["controls"]
    rows = []
    for arch, (behaviour, must_detect) in PLANTED.items():
        mine = controls[controls["arch"] == arch].set_index("control")
        positive, negative = mine.loc["positive"], mine.loc["negative"]
        detected = positive["status"] == "pass"
        rows.append(
            {
                "model": f"{arch} / {POSITIVE_CONTROL[0]}",
                "behaviour": behaviour,
                "must_detect": must_detect,
                "detected": detected,
                "positive_status": positive["status"],
                "did_pp": positive["did_pp"],
                "did_lo": positive["did_lo"],
                "did_hi": positive["did_hi"],
                "p_mcnemar_ref_max": positive["p_mcnemar_ref_max"],
                "negative_status": negative["status"],
                "negative_shift_pp": negative["shift_pp"],
                "ok": bool(detected == must_detect and negative["status"] == "pass"),
            }
        )
    return pd.DataFrame(rows, columns=CHECK_COLUMNS)
