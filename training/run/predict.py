"""Run one trained model over every test variant: ``predictions/<test_variant>.csv``, one row per test image.

Columns (the contract evaluation reads), rows sorted by image_id::

    image_id, y_true, score_akiec .. score_vasc, y_pred, has_artefact, artefact_kind
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from generator import CLASSES
from generator.errors import RunFailed, UserError
from training.evaluation.predictions import COLUMNS, SCORE_COLUMNS  # the one table contract, read there
from training.run.config import RUN_LOCK_WAIT_S

if TYPE_CHECKING:
    from generator.variants.verified import CheckedFile
    from training.run.checkpoint import Checkpointer
    from training.run.config import TrainConfig
    from training.run.distributed import Dist


def open_test_variants(
    data_dir: str | os.PathLike, variants=None, manifest: dict | None = None
) -> dict[str, CheckedFile]:
    """The test variant files of ``data_dir`` (all 13 unless ``variants`` narrows them), by name, each
    opened through its manifest entry and holding test_none's images in test_none's order (a file of
    another build would be predicted for other images); UserError naming the first that is not."""
    from generator.variants import CLEAN_TEST, list_variants
    from generator.variants.verified import open_split

    names = list(variants) if variants else list_variants("test")
    unknown = [n for n in names if n not in list_variants("test")]
    if unknown:
        raise UserError(f"--test-variants: unknown test variant {unknown[0]!r}")
    files = open_split(data_dir, names, CLEAN_TEST, manifest)
    return {name: files[name] for name in names}


def prediction_table(reader, indices: np.ndarray, scores: np.ndarray, y_pred: np.ndarray) -> pd.DataFrame:
    """The prediction table of one variant; every row of the file must be predicted exactly once."""
    if len(indices) != len(reader) or len(np.unique(indices)) != len(reader):
        raise RuntimeError(f"{reader.path.name}: predicted {len(np.unique(indices))} of {len(reader)} images")
    order = np.argsort(indices)
    indices, scores, y_pred = indices[order], scores[order], y_pred[order]
    table = pd.DataFrame(
        {
            "image_id": [reader.image_ids[i] for i in indices],
            "y_true": reader.labels[indices].astype(int),
            **{col: scores[:, c].astype(float) for c, col in enumerate(SCORE_COLUMNS)},
            "y_pred": y_pred.astype(int),
            "has_artefact": reader.has_artefact[indices].astype(int),
            "artefact_kind": [reader.artefact_kinds[i] for i in indices],
        },
        columns=list(COLUMNS),
    )
    return table.sort_values("image_id", kind="stable").reset_index(drop=True)


def check_predictions(predictions_dir: str | os.PathLike, data_dir: str | os.PathLike) -> None:
    """Raise RunFailed unless ``predictions_dir`` holds a table for every test variant of the registry,
    each with exactly one row per image of its variant file (what evaluation relies on)."""
    predictions_dir = Path(predictions_dir)
    for name, checked in open_test_variants(data_dir).items():
        table_path = predictions_dir / f"{name}.csv"
        if not table_path.is_file():
            raise RunFailed(f"{table_path}: prediction table missing")
        expected = sorted(checked.reader.image_ids)
        got = read_predictions(table_path)["image_id"].tolist()
        if got != expected:
            raise RunFailed(f"{table_path}: {len(got)} rows for the {len(expected)} images of {name}.h5")


def write_table(table: pd.DataFrame, path: Path) -> None:
    from generator.atomic import write_text_atomic

    write_text_atomic(path, table.to_csv(index=False, lineterminator="\n", float_format="%.8g"))


def read_predictions(path: str | os.PathLike) -> pd.DataFrame:
    """Read a prediction CSV back (artefact_kind stays a string, "" for clean rows)."""
    return pd.read_csv(path, dtype={"image_id": str, "artefact_kind": str}, keep_default_na=False)


def predict_variants(
    model,
    arch: str,
    data_dir,
    out_dir,
    image_size: int,
    *,
    device=None,
    batch_size: int = 32,
    workers: int = 0,
    amp: bool = True,
    dist=None,
    progress: bool = True,
    variants=None,
) -> list[Path]:
    """Predict every test variant of ``data_dir`` into ``out_dir/<variant>.csv``; returns the paths written.

    Under DDP each rank predicts a shard and rank 0 writes the merged tables (sampler padding removed).
    """
    import torch
    from torch.utils.data import Sampler, SequentialSampler, Subset

    from training.data.batches import training_targets
    from training.data.datasets import HAMArtefacts
    from training.data.transforms import eval_transform
    from training.run.distributed import Dist, gather_predictions
    from training.run.inference import channels_last_model, make_loader, predict_loader

    device = torch.device(device or "cpu")
    dist = dist or Dist()
    out_dir = Path(out_dir)
    model, channels_last = channels_last_model(model, arch, device)
    # The variants share their images: a clean image is byte-identical in every test variant and an
    # image's artefact is the same wherever it appears, so each distinct image is predicted once
    # (about 2 passes over the test set instead of 13, and one image always gets one prediction).
    # An image is identified by its id and its artefact realization record (which fixes every
    # changed pixel; tests/test_generate.py holds the generator to identical bytes and records across
    # variants), both small columns: no pass over the image bytes before the GPU gets work.
    cache: dict[tuple[str, str], tuple[np.ndarray, int]] = {}
    written = []
    for name, checked in open_test_variants(data_dir, variants).items():
        path = checked.path
        variant = HAMArtefacts(
            path.parent,
            name,
            target_types=training_targets(),
            transforms=eval_transform(image_size, float_output=False),
            decode_size=image_size,
        )
        reader = variant.reader
        keys = [
            (image_id, json.dumps(record, sort_keys=True) if record is not None else "")
            for image_id, record in zip(reader.image_ids, reader.records(), strict=True)
        ]
        first_rows: dict[tuple[str, str], int] = {}
        for i, key in enumerate(keys):
            if key not in cache:
                first_rows.setdefault(key, i)
        dataset = Subset(variant, sorted(first_rows.values()))
        if len(dataset):
            sampler: Sampler
            if dist.enabled:
                from torch.utils.data.distributed import DistributedSampler

                sampler = DistributedSampler(dataset, shuffle=False)
            else:
                sampler = SequentialSampler(dataset)
            loader = make_loader(dataset, batch_size, workers, device, sampler)
            indices, scores, y_pred = gather_predictions(
                dist,
                *predict_loader(
                    model,
                    arch,
                    loader,
                    device,
                    amp and device.type == "cuda",
                    channels_last,
                    progress=progress and dist.is_main,
                    desc=path.stem,
                ),
            )
            if len(indices) != len(dataset):
                raise RunFailed(
                    f"{path}: predicted {len(indices)} of {len(dataset)} distinct images "
                    "(the data loader stopped early)"
                )
            for row, score, pred in zip(indices, scores, y_pred, strict=True):
                cache[keys[row]] = (score, int(pred))
        if dist.is_main:
            all_rows = np.arange(len(reader))
            scores = np.stack([cache[k][0] for k in keys]) if keys else np.zeros((0, len(CLASSES)))
            y_pred = np.array([cache[k][1] for k in keys], dtype=np.int64)
            target = out_dir / f"{path.stem}.csv"
            write_table(prediction_table(reader, all_rows, scores, y_pred), target)
            written.append(target)
        reader.close()
    return written


def predict_run(
    run_dir,
    data_dir=None,
    *,
    device: str = "auto",
    batch_size: int | None = None,
    workers: int = 0,
    variants=None,
    progress: bool = True,
    wait: float = RUN_LOCK_WAIT_S,
) -> list[Path]:
    """Load ``<run_dir>/best.pt`` (architecture and size from config.json) and predict all test variants
    into ``<run_dir>/predictions/``. ``data_dir`` defaults to the run's training data folder. Holds the
    run folder's lock (another process writing it is waited for ``wait`` seconds)."""
    from training.models import load_trained
    from training.run.checkpoint import run_folder_lock
    from training.run.distributed import Dist, pick_device

    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file() or not (run_dir / "best.pt").is_file():
        raise UserError(f"{run_dir}: not a finished run (needs config.json and best.pt)")
    with run_folder_lock(run_dir, wait):
        model, config = load_trained(run_dir)
        torch_device = pick_device(device, Dist())
        model.to(torch_device)
        return predict_variants(
            model,
            config["arch"],
            data_dir or config["data"],
            run_dir / "predictions",
            config["image_size"],
            device=torch_device,
            batch_size=batch_size or config.get("eval_batch_size") or config["batch_size"],
            workers=workers,
            amp=bool(config.get("amp", True)),
            progress=progress,
            variants=variants,
        )


def predict_after_training(
    config: TrainConfig,
    checkpoints: Checkpointer,
    model,
    device,
    amp: bool,
    dist: Dist,
    progress: bool = True,
) -> dict:
    """Predict every test variant of a trained run with its best.pt (loaded into ``model``) and check the
    tables (RunFailed unless each has one row per test image); returns the summary's ``predictions``
    and ``predict_seconds``."""
    import time

    from training.run.distributed import unwrap

    checkpoints.load_best(model, device)
    t0 = time.time()
    written = predict_variants(
        unwrap(model),
        config.arch,
        Path(config.data),
        checkpoints.run_dir / "predictions",
        config.image_size,
        device=device,
        batch_size=config.eval_batch_size or config.batch_size,
        workers=config.workers,
        amp=amp,
        dist=dist,
        progress=progress,
    )
    result = {"predictions": len(written), "predict_seconds": time.time() - t0}
    if dist.is_main:  # the tables DONE vouches for
        check_predictions(checkpoints.run_dir / "predictions", Path(config.data))
    return result
