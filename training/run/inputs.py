"""What a run reads, checked before it writes anything: the training variant, the folds and the test variants.

Each file is opened through its manifest entry (:func:`generator.variants.verified.open_checked`: size,
SHA-256, rows and class counts), and every variant of a split must hold its clean variant's images in
the same order. The folds come from train_none: a training file of another build would otherwise lose,
without a word, the rows the folds do not know, and a test file of another build would be predicted
for other images (issue 24). What was read goes into config.json (``DATA_RECORD``), and a resumed run
refuses data that differs (:meth:`training.run.checkpoint.Checkpointer.begin`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from generator.variants import CLEAN_TRAIN
from generator.variants.verified import CheckedFile, data_record, listed_variants, manifest_of, open_split
from training.data.folds import make_folds
from training.run.config import TrainConfig


@dataclass
class RunInputs:
    """The checked files of one run."""

    training: CheckedFile
    """The training variant."""
    folds: pd.DataFrame
    """image_id, lesion_id, dx, fold of train_none (training.data.folds.make_folds)."""
    record: dict
    """What config.json records the run read (generator.variants.verified.data_record)."""


def open_inputs(config: TrainConfig) -> RunInputs:
    """The training variant and train_none (its folds) of ``config.data``, and, when the run predicts,
    every test variant, each checked; UserError naming the first file that is not what its manifest
    lists, or that holds other images than its split's clean variant."""
    from training.run.predict import open_test_variants

    data_dir = Path(config.data)
    manifest = manifest_of(data_dir)
    # A folder fetched with one training variant alone has no train_none: the folds then come from the
    # training variant itself, which holds the same images (the assignment depends on nothing else).
    reference = CLEAN_TRAIN if CLEAN_TRAIN in listed_variants(manifest) else config.train_variant
    files = open_split(data_dir, [config.train_variant], reference, manifest)
    base = files[reference].reader
    folds = make_folds(base.image_ids, base.lesion_ids, base.metadata["dx"], config.n_folds, config.seed)
    read = list(files.values())
    if config.predict:  # checked now, not after hours of training
        read += open_test_variants(data_dir, manifest=manifest).values()
    return RunInputs(files[config.train_variant], folds, data_record(data_dir, read))
